/**
 * `volume create|ls|inspect|rm|prune`, as Docker's CLI prints them.
 */
import { confirm, connect, forEachName, inspectCommand, out, type Command, type CommandTable } from '../command.js';
import { encodeFilters, toMap } from '../envfile.js';
import { UsageError } from '../errors.js';
import { pathName, renderListing, type Row } from '../format.js';
import { humanSize } from '../units.js';

interface Volume {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt?: string;
  Labels?: Record<string, string> | null;
  Scope?: string;
  Options?: Record<string, string> | null;
}

const create: Command = {
  usage: '[OPTIONS] [VOLUME]',
  summary: 'Create a volume',
  flags: [
    { long: 'driver', short: 'd', type: 'string', help: 'Specify volume driver name', defaultText: '"local"' },
    { long: 'label', type: 'list', help: 'Set metadata for a volume' },
    { long: 'name', type: 'string', help: 'Specify volume name' },
    { long: 'opt', short: 'o', type: 'list', help: 'Set driver specific options' },
  ],
  maxArgs: 1,
  async run(ctx, args) {
    const flagName = args.str('name');
    const posName = args.positionals[0];
    if (flagName && posName && flagName !== posName) {
      throw new UsageError(`conflicting options: either specify --name or provide positional arg, not both`);
    }
    const v = await connect(ctx).json<Volume>('POST', '/volumes/create', {
      body: {
        Name: posName ?? flagName ?? '',
        Driver: args.str('driver') ?? 'local',
        DriverOpts: toMap(args.list('opt')),
        Labels: toMap(args.list('label')),
      },
    });
    await out(`${v.Name}\n`);
    return 0;
  },
};

function labelText(labels: Record<string, string> | null | undefined): string {
  return Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

const ls: Command = {
  usage: '[OPTIONS]',
  summary: 'List volumes',
  flags: [
    { long: 'filter', short: 'f', type: 'list', value: 'filter', help: "Provide filter values (e.g. 'dangling=true')" },
    { long: 'format', type: 'string', help: "Format output: 'table', 'json', 'table TEMPLATE' or a Go template" },
    { long: 'quiet', short: 'q', type: 'bool', help: 'Only display volume names' },
  ],
  maxArgs: 0,
  async run(ctx, args) {
    const res = await connect(ctx).json<{ Volumes?: Volume[] | null }>('GET', '/volumes', {
      query: { filters: encodeFilters(args.list('filter')) },
    });
    const vols = [...(res.Volumes ?? [])].sort((a, b) => a.Name.localeCompare(b.Name));
    if (args.bool('quiet')) {
      await out(vols.map((v) => `${v.Name}\n`).join(''));
      return 0;
    }
    const rows: Row[] = vols.map((v) => ({
      Driver: v.Driver,
      Name: v.Name,
      Mountpoint: v.Mountpoint,
      Scope: v.Scope ?? 'local',
      Labels: labelText(v.Labels),
      CreatedAt: v.CreatedAt ?? '',
    }));
    await out(
      renderListing(rows, args.str('format'), [
        ['DRIVER', 'Driver'],
        ['VOLUME NAME', 'Name'],
      ]),
    );
    return 0;
  },
};

const inspect = inspectCommand('volume', '/volumes');

const rm: Command = {
  usage: '[OPTIONS] VOLUME [VOLUME...]',
  summary: 'Remove one or more volumes',
  flags: [{ long: 'force', short: 'f', type: 'bool', help: 'Force the removal of one or more volumes' }],
  minArgs: 1,
  async run(ctx, args) {
    const client = connect(ctx);
    return forEachName(args.positionals, async (name) => {
      await client.call('DELETE', `/volumes/${pathName(name)}`, { query: { force: args.bool('force') || undefined } });
      await out(`${name}\n`);
    });
  },
};

const prune: Command = {
  usage: '[OPTIONS]',
  summary: 'Remove all unused local volumes',
  flags: [
    { long: 'filter', type: 'list', value: 'filter', help: "Provide filter values (e.g. 'label=<label>')" },
    { long: 'force', short: 'f', type: 'bool', help: 'Do not prompt for confirmation' },
  ],
  maxArgs: 0,
  async run(ctx, args) {
    if (!args.bool('force')) {
      const q = 'WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?';
      if (!(await confirm(q))) return 0;
    }
    const res = await connect(ctx).json<{ VolumesDeleted?: string[] | null; SpaceReclaimed?: number }>('POST', '/volumes/prune', {
      query: { filters: encodeFilters(args.list('filter')) },
    });
    const deleted = res.VolumesDeleted ?? [];
    const list = deleted.length ? `Deleted Volumes:\n${deleted.map((n) => `${n}\n`).join('')}\n` : '';
    await out(`${list}Total reclaimed space: ${humanSize(res.SpaceReclaimed ?? 0)}\n`);
    return 0;
  },
};

export const commands: CommandTable = {
  'volume create': create,
  'volume ls': ls,
  'volume inspect': inspect,
  'volume rm': rm,
  'volume prune': prune,
};
