/** Docker Engine API: /volumes/... */
import { InvalidArgumentError } from '../../core/errors.js';
import { matchesVolumeFilters, type CreateVolumeRequest } from '../../volume/volume-service.js';
import type { DaemonContext } from '../context.js';
import { sendEmpty, sendJson } from '../context.js';
import { boolParam, parseFilters, readJson, type Router } from '../router.js';

const NAME = '([^/]+)';

export function volumeRoutes(r: Router, ctx: DaemonContext): void {
  const { volumes } = ctx;

  r.add('POST', '/volumes/create', async ({ req, res }) => {
    const body = await readJson<CreateVolumeRequest>(req);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new InvalidArgumentError('Invalid volume create request');
    if (body.Name !== undefined && typeof body.Name !== 'string') throw new InvalidArgumentError('Invalid volume name: must be a string');
    sendJson(res, 201, volumes.view(await volumes.create(body)));
  });

  r.add('GET', '/volumes', ({ res, query }) => {
    const filters = parseFilters(query);
    const list = volumes.list().filter((v) => matchesVolumeFilters(v, volumes.users(v.name).length > 0, filters));
    sendJson(res, 200, { Volumes: list.map((v) => volumes.view(v)), Warnings: [] });
  });

  r.add('POST', '/volumes/prune', async ({ res, query }) => {
    const filters = parseFilters(query);
    for (const k of Object.keys(filters)) {
      if (k !== 'label' && k !== 'label!') throw new InvalidArgumentError(`Invalid filter '${k}'`);
    }
    sendJson(res, 200, await volumes.prune(filters));
  });

  r.add('GET', `/volumes/${NAME}`, ({ res, params }) => {
    sendJson(res, 200, volumes.view(volumes.get(params[0]!)));
  });

  r.add('DELETE', `/volumes/${NAME}`, async ({ res, params, query }) => {
    await volumes.remove(params[0]!, boolParam(query, 'force'));
    sendEmpty(res, 204);
  });
}
