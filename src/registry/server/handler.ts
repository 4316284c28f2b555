/**
 * The distribution-spec request handler: authentication, routing, name
 * validation, dispatch to the endpoint handlers and turning failures into
 * the spec's error bodies.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HtpasswdAuth } from './auth.js';
import { cancelUpload, deleteBlob, finishUpload, getBlob, patchUpload, startUpload, uploadStatus } from './blob-handlers.js';
import type { RequestContext } from './context.js';
import { RegistryError } from './errors.js';
import { send, sendError } from './http.js';
import { catalog, deleteManifest, getManifest, listTags, putManifest, referrers } from './manifest-handlers.js';
import { checkName } from './names.js';
import { matchRoute, METHODS, type Route } from './routes.js';
import type { RegistryStorage } from './storage.js';
import type { UploadManager } from './uploads.js';

export interface RequestLog {
  method: string;
  path: string;
  status: number;
  durationMs: number;
  user?: string;
  error?: string;
}

export interface HandlerOptions {
  storage: RegistryStorage;
  uploads: UploadManager;
  auth?: HtpasswdAuth | undefined;
  onRequest?: ((entry: RequestLog) => void) | undefined;
}

export class RegistryHandler {
  constructor(private readonly options: HandlerOptions) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const entry: RequestLog = { method: req.method ?? 'GET', path: req.url ?? '/', status: 0, durationMs: 0 };
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    try {
      await this.dispatch(req, res, entry);
    } catch (e) {
      const err =
        e instanceof RegistryError
          ? e
          : new RegistryError('UNKNOWN', `Internal error: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
      entry.error = err.message;
      if (res.headersSent) {
        res.destroy();
      } else {
        // An unread body would otherwise stall a keep-alive connection.
        if (!req.readableEnded) res.setHeader('Connection', 'close');
        sendError(res, err);
      }
      req.resume();
    } finally {
      entry.status = res.statusCode;
      entry.durationMs = Date.now() - started;
      this.options.onRequest?.(entry);
    }
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, entry: RequestLog): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://registry.invalid');
    let pathname: string;
    try {
      pathname = decodeURIComponent(url.pathname);
    } catch {
      throw new RegistryError('UNSUPPORTED', `Invalid path: ${url.pathname}`, { status: 400 });
    }
    if (this.options.auth) entry.user = await this.options.auth.check(req.headers.authorization);
    const route = matchRoute(pathname);
    if (!route) throw new RegistryError('UNSUPPORTED', `Not a registry endpoint: ${pathname}`, { status: 404 });
    const method = req.method ?? 'GET';
    if (!METHODS[route.kind].includes(method)) {
      throw new RegistryError('UNSUPPORTED', `Method ${method} not allowed on ${pathname}`, {
        headers: { Allow: METHODS[route.kind].join(', ') },
      });
    }
    if ('name' in route) checkName(route.name);
    const ctx: RequestContext = { req, res, url, storage: this.options.storage, uploads: this.options.uploads };
    await serveRoute(ctx, route, method);
  }
}

async function serveRoute(ctx: RequestContext, route: Route, method: string): Promise<void> {
  switch (route.kind) {
    case 'base':
      send(ctx.res, 200, { 'Content-Type': 'application/json' }, '{}');
      return;
    case 'catalog':
      return catalog(ctx);
    case 'tags':
      return listTags(ctx, route.name);
    case 'referrers':
      return referrers(ctx, route.name, route.digest);
    case 'manifest':
      if (method === 'PUT') return putManifest(ctx, route.name, route.reference);
      if (method === 'DELETE') return deleteManifest(ctx, route.name, route.reference);
      return getManifest(ctx, route.name, route.reference);
    case 'blob':
      if (method === 'DELETE') return deleteBlob(ctx, route.name, route.digest);
      return getBlob(ctx, route.name, route.digest);
    case 'uploads':
      return startUpload(ctx, route.name);
    case 'upload':
      if (method === 'PATCH') return patchUpload(ctx, route.name, route.uuid);
      if (method === 'PUT') return finishUpload(ctx, route.name, route.uuid);
      if (method === 'DELETE') return cancelUpload(ctx, route.name, route.uuid);
      return uploadStatus(ctx, route.name, route.uuid);
  }
}
