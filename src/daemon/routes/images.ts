/** Docker Engine API: /images/..., plus Vessel's /vessel/images/bootstrap. */
import type { ServerResponse } from 'node:http';
import { InvalidArgumentError } from '../../core/errors.js';
import { errorMessage } from '../../core/errors.js';
import { bootstrapImage } from '../../image/bootstrap.js';
import { checkTagName, type ImageRecord } from '../../image/image-store.js';
import { importRootfs } from '../../image/import.js';
import type { DaemonContext } from '../context.js';
import { sendJson } from '../context.js';
import { boolParam, parseFilters, type Router } from '../router.js';
import { pullRoute } from './distribution.js';

const NAME = '(.+)';

function unixTime(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000) || 0;
}

export function imageSummary(i: ImageRecord): Record<string, unknown> {
  return {
    Id: i.id,
    ParentId: '',
    RepoTags: i.tags.length ? i.tags : ['<none>:<none>'],
    RepoDigests: i.repoDigests,
    Created: unixTime(i.created),
    Size: i.size,
    SharedSize: -1,
    VirtualSize: i.size,
    Labels: i.config.config?.Labels ?? {},
    Containers: -1,
  };
}

export function imageInspect(i: ImageRecord, ctx: DaemonContext): Record<string, unknown> {
  const dirs = ctx.images.layerPaths(i);
  return {
    Id: i.id,
    RepoTags: i.tags,
    RepoDigests: i.repoDigests,
    Parent: '',
    Comment: i.config.history?.at(-1)?.comment ?? '',
    Created: i.created,
    Container: '',
    DockerVersion: '',
    Author: i.config.author ?? '',
    Config: i.config.config ?? {},
    Architecture: i.config.architecture,
    Os: i.config.os,
    Size: i.size,
    VirtualSize: i.size,
    GraphDriver: { Name: 'overlay', Data: { LowerDir: dirs.join(':') } },
    RootFS: { Type: 'layers', Layers: i.config.rootfs.diff_ids },
    Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
    Descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: i.manifestDigest },
  };
}

/** A JSON-lines progress stream (Docker's jsonmessage); errors end it with an `error` object. */
async function progressStream(res: ServerResponse, work: (send: (m: object) => void) => Promise<void>): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  const send = (m: object) => {
    if (!res.destroyed) res.write(JSON.stringify(m) + '\n');
  };
  try {
    await work(send);
  } catch (e) {
    send({ error: errorMessage(e), errorDetail: { message: errorMessage(e) } });
  }
  res.end();
}

export function imageRoutes(r: Router, ctx: DaemonContext): void {
  const usedBy = (id: string) => ctx.manager.store.usersOfImage(id);

  r.add('GET', '/images/json', ({ res, query }) => {
    const filters = parseFilters(query);
    let list = ctx.images.list();
    if (filters.dangling?.includes('true')) list = list.filter((i) => i.tags.length === 0);
    if (filters.reference?.length) {
      list = list.filter((i) => i.tags.some((t) => filters.reference!.some((ref) => t === ref || t.startsWith(`${ref}:`))));
    }
    sendJson(res, 200, list.map(imageSummary));
  });

  r.add('POST', '/images/create', async ({ req, res, query }) => {
    const fromSrc = query.get('fromSrc');
    if (query.get('fromImage') && !fromSrc) return pullRoute(ctx, req, res, query);
    if (fromSrc !== '-') {
      const image = query.get('fromImage') ?? '';
      throw new InvalidArgumentError(
        `Cannot pull ${image}: registry pulls are not available yet; use vessel image bootstrap or vessel image import`,
      );
    }
    const repo = query.get('repo');
    const tag = repo ? `${repo}${query.get('tag') ? `:${query.get('tag')}` : ''}` : null;
    if (tag) checkTagName(tag); // a bad name fails before the upload is read
    const changes = query.getAll('changes');
    if (changes.length) throw new InvalidArgumentError('Import --change is not supported yet');
    await progressStream(res, async (send) => {
      const image = await importRootfs(ctx.images, req, {
        tag,
        progress: (m) => send(m),
        comment: query.get('message') || 'Imported from tarball',
      });
      send({ status: image.id });
    });
  });

  r.add('POST', '/vessel/images/bootstrap', async ({ res, query }) => {
    const name = query.get('image');
    if (!name) throw new InvalidArgumentError('Which image? busybox or debian:bookworm');
    await progressStream(res, async (send) => {
      const image = await bootstrapImage(ctx.images, name, {
        cacheDir: ctx.paths.cache,
        progress: (m) => send(m),
        refresh: boolParam(query, 'refresh'),
      });
      send({ status: `Bootstrapped ${image.tags.join(', ')}` });
      send({ aux: { ID: image.id } });
    });
  });

  r.add('POST', '/images/prune', async ({ res, query }) => {
    const filters = parseFilters(query);
    const all = filters.dangling?.includes('false') ?? false;
    const { deleted, reclaimed } = await ctx.images.prune({ all, usedBy });
    sendJson(res, 200, { ImagesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
  });

  r.add('GET', `/images/${NAME}/json`, ({ res, params }) => {
    sendJson(res, 200, imageInspect(ctx.images.resolve(params[0]!), ctx));
  });

  r.add('GET', `/images/${NAME}/history`, ({ res, params }) => {
    const image = ctx.images.resolve(params[0]!);
    const history = [...(image.config.history ?? [])];
    const layers = image.layers.map((c) => ctx.images.getLayer(c));
    let li = 0;
    const rows = history.map((h, idx) => {
      const size = h.empty_layer ? 0 : (layers[li++]?.size ?? 0);
      return {
        Id: idx === history.length - 1 ? image.id : '<missing>',
        Created: unixTime(h.created ?? image.created),
        CreatedBy: h.created_by ?? '',
        Tags: idx === history.length - 1 ? image.tags : null,
        Size: size,
        Comment: h.comment ?? '',
      };
    });
    sendJson(res, 200, rows.reverse());
  });

  r.add('POST', `/images/${NAME}/tag`, ({ res, params, query }) => {
    const repo = query.get('repo');
    if (!repo) throw new InvalidArgumentError('Missing repo for tag');
    ctx.images.tag(params[0]!, `${repo}:${query.get('tag') || 'latest'}`);
    res.writeHead(201);
    res.end();
  });

  r.add('DELETE', `/images/${NAME}`, async ({ res, params, query }) => {
    sendJson(res, 200, await ctx.images.remove(params[0]!, { force: boolParam(query, 'force'), usedBy }));
  });
}
