/** Docker Engine API: /containers/{id}/archive (the daemon side of `cp`). */
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError } from '../../core/errors.js';
import { encodeStat } from '../../volume/archive.js';
import type { DaemonContext } from '../context.js';
import { sendEmpty } from '../context.js';
import { boolParam, type Router } from '../router.js';

const ID = '([^/]+)';
const STAT_HEADER = 'X-Docker-Container-Path-Stat';

function pathParam(q: URLSearchParams): string {
  const p = q.get('path');
  if (!p) throw new InvalidArgumentError('Path cannot be empty');
  return p;
}

export function archiveRoutes(r: Router, ctx: DaemonContext): void {
  const { archiver } = ctx;

  // GET streams the tar; HEAD (routed here too) only stats.
  r.add('GET', `/containers/${ID}/archive`, async ({ req, res, params, query }) => {
    const p = pathParam(query);
    if (req.method === 'HEAD') {
      const stat = await archiver.stat(params[0]!, p);
      res.writeHead(200, { [STAT_HEADER]: encodeStat(stat), 'Content-Type': 'application/json' });
      res.end();
      return;
    }
    await archiver.get(params[0]!, p, async (stat, tar) => {
      res.writeHead(200, { [STAT_HEADER]: encodeStat(stat), 'Content-Type': 'application/x-tar' });
      await pipeline(tar, res);
    });
  });

  r.add('PUT', `/containers/${ID}/archive`, async ({ req, res, params, query }) => {
    const p = pathParam(query);
    await archiver.put(params[0]!, p, req, { noOverwriteDirNonDir: boolParam(query, 'noOverwriteDirNonDir') });
    sendEmpty(res, 200);
  });
}
