/** Docker Engine API: POST /build (classic builder protocol) and POST /build/prune. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, errorMessage } from '../../core/errors.js';
import { log } from '../../core/log.js';
import { BuildExecutor } from '../../build/executor.js';
import { checkTagName } from '../../image/image-store.js';
import { unpackLayer } from '../../image/layer-unpack.js';
import { parseDockerignore } from '../../build/dockerignore.js';
import type { DaemonContext } from '../context.js';
import { sendJson } from '../context.js';
import { boolParam, type Router } from '../router.js';
import { basePuller } from './distribution.js';

function jsonMap(q: URLSearchParams, name: string): Record<string, string> {
  const raw = q.get(name);
  if (!raw) return {};
  const v = JSON.parse(raw) as Record<string, string | null>;
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null)) as Record<string, string>;
}

export function buildRoutes(r: Router, ctx: DaemonContext, executor: BuildExecutor): void {
  r.add('POST', '/build', async ({ req, res, query }) => {
    const tags = query.getAll('t').map(checkTagName);
    const dockerfileName = query.get('dockerfile') || 'Dockerfile';
    const buildArgs = new Map(Object.entries(jsonMap(query, 'buildargs')));
    const labels = jsonMap(query, 'labels');
    const contextDir = await fs.mkdtemp(path.join(executor.tmpDir, 'build-'));
    res.writeHead(200, { 'Content-Type': 'application/json' });
    const send = (m: object) => {
      if (!res.destroyed) res.write(`${JSON.stringify(m)}\n`);
    };
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const pullBase = basePuller(ctx, req, send, abort.signal);
    try {
      // The context is unpacked with the same checks as image layers: nothing escapes the directory.
      await fs.rm(contextDir, { recursive: true, force: true });
      await unpackLayer(req, contextDir);
      const dfPath = path.posix.normalize(`/${dockerfileName}`).slice(1);
      const text = await fs.readFile(path.join(contextDir, dfPath), 'utf8').catch(() => {
        throw new InvalidArgumentError(`Cannot locate specified Dockerfile: ${dockerfileName}`);
      });
      // As Docker's daemon: the Dockerfile and .dockerignore go away when .dockerignore names them.
      const ignoreText = await fs.readFile(path.join(contextDir, '.dockerignore'), 'utf8').catch(() => null);
      if (ignoreText !== null) {
        const matcher = parseDockerignore(ignoreText);
        for (const f of [dfPath, '.dockerignore']) {
          if (matcher.ignores(f, false)) await fs.rm(path.join(contextDir, f), { force: true });
        }
      }
      const image = await executor.build({
        contextDir,
        dockerfile: text,
        buildArgs,
        target: query.get('target') || null,
        noCache: boolParam(query, 'nocache'),
        labels,
        tags,
        send,
        signal: abort.signal,
        pull: boolParam(query, 'pull'),
        pullBase,
      });
      send({ aux: { ID: image.id } });
      send({ stream: `Successfully built ${image.id.slice(7, 19)}\n` });
      for (const t of tags) send({ stream: `Successfully tagged ${t}\n` });
    } catch (e) {
      log.debug('build failed', { error: errorMessage(e) });
      send({ error: errorMessage(e), errorDetail: { message: errorMessage(e) } });
    } finally {
      await fs.rm(contextDir, { recursive: true, force: true }).catch(() => {});
      res.end();
    }
  });

  r.add('POST', '/build/prune', ({ res }) => {
    const n = executor.cache.prune();
    sendJson(res, 200, { CachesDeleted: n ? [`${n} build cache entries`] : [], SpaceReclaimed: 0 });
  });
}
