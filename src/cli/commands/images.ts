/**
 * Image listing and housekeeping: `images`/`image ls`, `image rm`/`rmi`,
 * `image tag`/`tag`, `image history`, `image prune`.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { confirm, connect, forEachName, out, type Command, type CommandTable } from '../command.js';
import { encodeFilters } from '../envfile.js';
import { ellipsis, goTime, pathName, renderListing, renderTable, shortId, splitRepoTag, type Row } from '../format.js';
import { humanSize, timeAgo } from '../units.js';

interface ImageSummary {
  Id: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Created?: number;
  Size?: number;
  SharedSize?: number;
  Containers?: number;
}

/** One row per tag (an untagged image is one `<none>` row), as `docker images` shows. */
export function imageRows(images: ImageSummary[], noTrunc: boolean, now = Date.now()): Row[] {
  return images.flatMap((img) => {
    const tags = img.RepoTags?.filter((t) => t !== '<none>:<none>') ?? [];
    const refs = tags.length ? tags : ['<none>:<none>'];
    return refs.map((ref) => {
      const { repo, tag } = splitRepoTag(ref);
      const size = humanSize(img.Size ?? 0);
      return {
        Containers: img.Containers === undefined || img.Containers < 0 ? 'N/A' : String(img.Containers),
        CreatedAt: img.Created ? goTime(img.Created) : '',
        CreatedSince: img.Created ? timeAgo(img.Created, now) : 'N/A',
        // The digest this row's repository was pulled or pushed as (Docker's DIGEST column).
        Digest: (img.RepoDigests?.find((d) => d.startsWith(`${repo}@`)) ?? (tags.length ? undefined : img.RepoDigests?.[0]))?.split('@')[1] ?? '<none>',
        ID: noTrunc ? img.Id : shortId(img.Id),
        Repository: repo || '<none>',
        SharedSize: img.SharedSize === undefined || img.SharedSize < 0 ? 'N/A' : humanSize(img.SharedSize),
        Size: size,
        Tag: tag || '<none>',
        UniqueSize: 'N/A',
        VirtualSize: size,
      };
    });
  });
}

const ls: Command = {
  usage: '[OPTIONS] [REPOSITORY[:TAG]]',
  summary: 'List images',
  flags: [
    { long: 'all', short: 'a', type: 'bool', help: 'Show all images (default hides intermediate images)' },
    { long: 'filter', short: 'f', type: 'list', value: 'filter', help: 'Filter output based on conditions provided' },
    { long: 'format', type: 'string', help: "Format output: 'table', 'json', 'table TEMPLATE' or a Go template" },
    { long: 'digests', type: 'bool', help: 'Show digests' },
    { long: 'no-trunc', type: 'bool', help: "Don't truncate output" },
    { long: 'quiet', short: 'q', type: 'bool', help: 'Only show image IDs' },
  ],
  maxArgs: 1,
  async run(ctx, args) {
    const filters = args.list('filter');
    // `images busybox` is Docker's shorthand for a reference filter.
    if (args.positionals[0]) filters.push(`reference=${args.positionals[0]}`);
    const list = await connect(ctx).json<ImageSummary[]>('GET', '/images/json', {
      query: { all: args.bool('all') || undefined, filters: encodeFilters(filters) },
    });
    const rows = imageRows(list, args.bool('no-trunc'));
    if (args.bool('quiet')) {
      await out([...new Set(rows.map((r) => r.ID))].map((id) => `${id}\n`).join(''));
      return 0;
    }
    await out(
      renderListing(rows, args.str('format'), [
        ['REPOSITORY', 'Repository'],
        ['TAG', 'Tag'],
        ...(args.bool('digests') ? ([['DIGEST', 'Digest']] as Array<[string, string]>) : []),
        ['IMAGE ID', 'ID'],
        ['CREATED', 'CreatedSince'],
        ['SIZE', 'Size'],
      ]),
    );
    return 0;
  },
};

type DeleteItem = { Untagged?: string; Deleted?: string };

function deletedLines(items: DeleteItem[] | null | undefined): string {
  return (items ?? [])
    .map((d) => (d.Untagged ? `Untagged: ${d.Untagged}\n` : d.Deleted ? `Deleted: ${d.Deleted}\n` : ''))
    .join('');
}

const rm: Command = {
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  summary: 'Remove one or more images',
  flags: [
    { long: 'force', short: 'f', type: 'bool', help: 'Force removal of the image' },
    { long: 'no-prune', type: 'bool', help: 'Do not delete untagged parents' },
  ],
  minArgs: 1,
  async run(ctx, args) {
    const client = connect(ctx);
    const query = { force: args.bool('force') || undefined, noprune: args.bool('no-prune') || undefined };
    return forEachName(args.positionals, async (name) => {
      const items = await client.json<DeleteItem[]>('DELETE', `/images/${pathName(name)}`, { query });
      await out(deletedLines(items));
    });
  },
};

const tag: Command = {
  usage: 'SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]',
  summary: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
  flags: [],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, args) {
    const [source, target] = args.positionals as [string, string];
    if (target.includes('@')) throw new InvalidArgumentError('refusing to create a tag with a digest reference');
    const { repo, tag: t } = splitRepoTag(target);
    if (!repo || /[A-Z\s]/.test(repo)) throw new InvalidArgumentError(`invalid reference format: ${target}`);
    await connect(ctx).call('POST', `/images/${pathName(source)}/tag`, { query: { repo, tag: t || 'latest' } });
    return 0;
  },
};

interface HistoryItem {
  Id: string;
  Created?: number;
  CreatedBy?: string;
  Size?: number;
  Comment?: string;
}

const history: Command = {
  usage: '[OPTIONS] IMAGE',
  summary: 'Show the history of an image',
  flags: [
    { long: 'human', short: 'H', type: 'bool', help: 'Print sizes and dates in human readable format', defaultText: 'true' },
    { long: 'no-trunc', type: 'bool', help: "Don't truncate output" },
    { long: 'quiet', short: 'q', type: 'bool', help: 'Only show image IDs' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, args) {
    const name = args.positionals[0] as string;
    const items = await connect(ctx).json<HistoryItem[]>('GET', `/images/${pathName(name)}/history`);
    const trunc = !args.bool('no-trunc');
    const human = args.has('human') ? args.bool('human') : true;
    const id = (h: HistoryItem) => (h.Id === '<missing>' || !h.Id ? '<missing>' : trunc ? shortId(h.Id) : h.Id);
    if (args.bool('quiet')) {
      await out(items.map((h) => `${id(h)}\n`).join(''));
      return 0;
    }
    const rows = items.map((h) => {
      const by = (h.CreatedBy ?? '').replace(/\t/g, ' ');
      return [
        id(h),
        human ? timeAgo(h.Created ?? 0) : new Date((h.Created ?? 0) * 1000).toISOString(),
        trunc ? ellipsis(by, 45) : by,
        human ? humanSize(h.Size ?? 0) : String(h.Size ?? 0),
        h.Comment ?? '',
      ];
    });
    await out(renderTable([['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], ...rows]));
    return 0;
  },
};

const prune: Command = {
  usage: '[OPTIONS]',
  summary: 'Remove unused images',
  flags: [
    { long: 'all', short: 'a', type: 'bool', help: 'Remove all unused images, not just dangling ones' },
    { long: 'filter', type: 'list', value: 'filter', help: 'Provide filter values (e.g. "until=<timestamp>")' },
    { long: 'force', short: 'f', type: 'bool', help: 'Do not prompt for confirmation' },
  ],
  maxArgs: 0,
  async run(ctx, args) {
    const all = args.bool('all');
    if (!args.bool('force')) {
      const what = all ? 'all images without at least one container associated to them' : 'all dangling images';
      if (!(await confirm(`WARNING! This will remove ${what}.\nAre you sure you want to continue?`))) return 0;
    }
    const filters = [...args.list('filter'), `dangling=${all ? 'false' : 'true'}`];
    const res = await connect(ctx).json<{ ImagesDeleted?: DeleteItem[] | null; SpaceReclaimed?: number }>(
      'POST',
      '/images/prune',
      { query: { filters: encodeFilters(filters) } },
    );
    const deleted = deletedLines(res.ImagesDeleted);
    await out(`${deleted ? `Deleted Images:\n${deleted}\n` : ''}Total reclaimed space: ${humanSize(res.SpaceReclaimed ?? 0)}\n`);
    return 0;
  },
};

export const commands: CommandTable = {
  images: ls,
  'image ls': ls,
  'image rm': rm,
  'image tag': tag,
  'image history': history,
  'image prune': prune,
};
