/**
 * Docker Engine API: image archives.
 *
 * - `GET /images/get?names=a&names=b` and `GET /images/{name}/get`: a tar
 *   (OCI image layout + docker-archive manifest.json). Unknown names fail
 *   with 404 before any byte is sent; a failure while streaming cuts the
 *   connection, so a client never mistakes a truncated archive for a whole one.
 * - `POST /images/load?quiet=`: a tar body (plain or gzip); answers with a
 *   JSON-lines stream: progress (unless quiet), then
 *   `{"stream":"Loaded image: name:tag\n"}` per name, or
 *   `{"stream":"Loaded image ID: sha256:…\n"}` for an image without names;
 *   a failure ends the stream with an `error` object.
 */
import { PassThrough } from 'node:stream';
import { errorMessage } from '../../core/errors.js';
import { log } from '../../core/log.js';
import { loadImageArchive, OutputClosedError, planSave, selectImages, writeImageArchive } from '../../image/archive.js';
import type { DaemonContext } from '../context.js';
import { boolParam, type Router } from '../router.js';

export function imageArchiveRoutes(r: Router, ctx: DaemonContext): void {
  const save = async (res: import('node:http').ServerResponse, names: string[]) => {
    const plan = await planSave(ctx.images, selectImages(ctx.images, names));
    res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    try {
      await writeImageArchive(ctx.images, plan, res);
    } catch (e) {
      res.destroy(); // no clean end of the chunked body: the client sees the truncation
      if (e instanceof OutputClosedError) {
        log.debug('image save: client went away', { error: errorMessage(e) });
        return;
      }
      throw e;
    }
  };

  r.add('GET', '/images/get', async ({ res, query }) => {
    await save(res, query.getAll('names').filter(Boolean));
  });

  r.add('GET', '/images/(.+)/get', async ({ res, params }) => {
    await save(res, [params[0]!]);
  });

  r.add('POST', '/images/load', async ({ req, res, query }) => {
    const quiet = boolParam(query, 'quiet');
    res.writeHead(200, { 'Content-Type': 'application/json' });
    const send = (m: object) => {
      if (!res.destroyed) res.write(JSON.stringify(m) + '\n');
    };
    // The archive reader may destroy what it reads; the request itself must
    // survive a failure so that the error line still reaches the client.
    const body = new PassThrough({ highWaterMark: 256 * 1024 });
    req.pipe(body);
    // pipe() does not pass on an aborted upload; without this the reader would wait forever.
    const aborted = () => {
      if (!req.complete) body.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    };
    req.once('close', aborted);
    try {
      await loadImageArchive(ctx.images, body, {
        progress: quiet ? undefined : (m) => send(m),
        onLoaded: (img) => {
          if (img.names.length === 0) send({ stream: `Loaded image ID: ${img.id}\n` });
          for (const n of img.names) send({ stream: `Loaded image: ${n}\n` });
        },
      });
    } catch (e) {
      send({ errorDetail: { message: errorMessage(e) }, error: errorMessage(e) });
    } finally {
      req.off('close', aborted);
      req.unpipe(body);
      req.resume(); // drain what the client still sends
    }
    res.end();
  });
}
