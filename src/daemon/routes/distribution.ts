/**
 * Docker Engine API for registries: pull (POST /images/create?fromImage=,
 * dispatched here from images.ts), push (POST /images/{name}/push) and
 * login (POST /auth). Credentials arrive per request in `X-Registry-Auth`
 * (base64url JSON); the daemon stores none.
 *
 * `insecure=1` on pull/push is a Vessel extension (the CLI's --insecure).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidArgumentError, UnavailableError, errorMessage } from '../../core/errors.js';
import { log } from '../../core/log.js';
import type { Credentials } from '../../registry/client/auth.js';
import { authKeyOf, hostOfServer, isInsecureRegistry, resolveRemote } from '../../registry/client/endpoint.js';
import type { ImageRecord } from '../../image/image-store.js';
import { UnauthorizedError } from '../../registry/client/errors.js';
import { parsePlatform } from '../../registry/client/platform.js';
import type { ProgressMessage } from '../../registry/client/progress.js';
import { pullImage } from '../../registry/client/pull.js';
import { pushImage } from '../../registry/client/push.js';
import { RegistryClient } from '../../registry/client/registry-client.js';
import type { DaemonContext } from '../context.js';
import { sendJson } from '../context.js';
import { boolParam, readJson, type Router } from '../router.js';

/** Decodes `X-Registry-Auth`; empty, `{}` or credential-less headers mean anonymous. */
export function decodeRegistryAuth(header: string | string[] | undefined): Credentials | null {
  const raw = Array.isArray(header) ? header[0] : header;
  if (!raw || !raw.trim()) return null;
  let doc: { username?: unknown; password?: unknown; auth?: unknown };
  try {
    doc = JSON.parse(Buffer.from(raw.trim(), 'base64').toString('utf8')) as typeof doc;
  } catch {
    throw new InvalidArgumentError('Invalid X-Registry-Auth header: not base64url-encoded JSON');
  }
  if (typeof doc?.username === 'string' && doc.username && typeof doc.password === 'string') {
    return { username: doc.username, password: doc.password };
  }
  if (typeof doc?.auth === 'string' && doc.auth) {
    const text = Buffer.from(doc.auth, 'base64').toString('utf8');
    const i = text.indexOf(':');
    if (i > 0) return { username: text.slice(0, i), password: text.slice(i + 1) };
  }
  return null;
}

/**
 * Decodes `X-Registry-Config` (POST /build): base64 JSON mapping each
 * registry (as `docker login` names it) to `{username, password}` or `{auth}`.
 */
export function decodeRegistryConfig(header: string | string[] | undefined): Map<string, Credentials> {
  const raw = Array.isArray(header) ? header[0] : header;
  const out = new Map<string, Credentials>();
  if (!raw || !raw.trim()) return out;
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(Buffer.from(raw.trim(), 'base64').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new InvalidArgumentError('Invalid X-Registry-Config header: not base64-encoded JSON');
  }
  for (const [server, entry] of Object.entries(doc ?? {})) {
    const c = decodeRegistryAuth(Buffer.from(JSON.stringify(entry ?? {})).toString('base64'));
    if (c) out.set(authKeyOf(server), c);
  }
  return out;
}

/**
 * The build's base-image puller: `FROM` (or `COPY --from`) of an image that
 * is missing, or any with `--pull`, is pulled like `POST /images/create`,
 * its progress interleaved with the build's output.
 */
export function basePuller(
  ctx: DaemonContext,
  req: IncomingMessage,
  send: (m: object) => void,
  signal: AbortSignal,
): (name: string) => Promise<ImageRecord> {
  return async (name: string) => {
    const auths = decodeRegistryConfig(req.headers['x-registry-config']);
    const remote = resolveRemote(name);
    const r = await pullImage(ctx.images, name, {
      signal,
      platform: parsePlatform(null),
      credentials: auths.get(remote.authKey) ?? null,
      insecureRegistries: ctx.config.insecureRegistries,
      progress: send,
    });
    send({ status: r.upToDate ? `Status: Image is up to date for ${r.name}` : `Status: Downloaded newer image for ${r.name}` });
    return r.image;
  };
}

/** JSON-lines progress; a failure becomes the final `{"error","errorDetail"}` line (HTTP 200 already sent). */
async function progressStream(
  res: ServerResponse,
  what: string,
  work: (send: (m: ProgressMessage) => void) => Promise<void>,
): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  const send = (m: object) => {
    if (!res.destroyed) res.write(JSON.stringify(m) + '\n');
  };
  try {
    await work(send);
  } catch (e) {
    log.info(`${what} failed`, { error: errorMessage(e) });
    send({ error: errorMessage(e), errorDetail: { message: errorMessage(e) } });
  }
  res.end();
}

/** `fromImage` may carry the tag or digest itself; else `tag` holds a tag or a digest. */
function pullReference(query: URLSearchParams): string {
  const from = query.get('fromImage') ?? '';
  const tag = query.get('tag') ?? '';
  if (!tag) return from;
  return tag.startsWith('sha256:') ? `${from}@${tag}` : `${from}:${tag}`;
}

export async function pullRoute(ctx: DaemonContext, req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const reference = pullReference(query);
  const platform = parsePlatform(query.get('platform'));
  const credentials = decodeRegistryAuth(req.headers['x-registry-auth']);
  // A client that goes away (Ctrl-C) cancels the pull; it is undone like any failure.
  const ac = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ac.abort(new UnavailableError('Pull cancelled: the client went away'));
  });
  await progressStream(res, `pull ${reference}`, async (send) => {
    const r = await pullImage(ctx.images, reference, {
      signal: ac.signal,
      platform,
      credentials,
      insecure: boolParam(query, 'insecure'),
      insecureRegistries: ctx.config.insecureRegistries,
      progress: send,
    });
    send({ status: r.upToDate ? `Status: Image is up to date for ${r.name}` : `Status: Downloaded newer image for ${r.name}` });
  });
}

export function distributionRoutes(r: Router, ctx: DaemonContext): void {
  r.add('POST', '/images/(.+)/push', async ({ req, res, params, query }) => {
    const name = params[0]!;
    const tag = query.get('tag');
    const reference = tag && !name.slice(name.lastIndexOf('/') + 1).includes(':') ? `${name}:${tag}` : name;
    const credentials = decodeRegistryAuth(req.headers['x-registry-auth']);
    await progressStream(res, `push ${reference}`, async (send) => {
      await pushImage(ctx.images, reference, {
        credentials,
        insecure: boolParam(query, 'insecure'),
        insecureRegistries: ctx.config.insecureRegistries,
        progress: send,
      });
    });
  });

  r.add('POST', '/auth', async ({ req, res }) => {
    const body = await readJson<{ username?: unknown; password?: unknown; serveraddress?: unknown } | undefined>(req);
    const server = typeof body?.serveraddress === 'string' && body.serveraddress ? body.serveraddress : 'docker.io';
    const username = typeof body?.username === 'string' ? body.username : '';
    const password = typeof body?.password === 'string' ? body.password : '';
    const host = hostOfServer(server);
    const client = new RegistryClient(host, {
      insecure: isInsecureRegistry(host, ctx.config.insecureRegistries),
      credentials: username ? { username, password } : null,
    });
    try {
      await client.checkLogin();
      sendJson(res, 200, { Status: 'Login Succeeded', IdentityToken: '' });
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
      sendJson(res, 401, { message: errorMessage(e) });
    } finally {
      client.close();
    }
  });
}
