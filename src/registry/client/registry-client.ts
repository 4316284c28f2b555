/**
 * The distribution API calls Vessel makes on one registry host: version
 * check, manifests (GET with every Accept type, PUT with exact bytes),
 * blobs (HEAD, streaming GET, cross-repo mount, monolithic and chunked
 * upload). Authentication is answered per request (see auth.ts).
 */
import type http from 'node:http';
import { createReadStream, promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import { InvalidArgumentError, NotFoundError } from '../../core/errors.js';
import { RegistryAuth, type Credentials } from './auth.js';
import { repositoryScope } from './challenge.js';
import { UnauthorizedError, registryError } from './errors.js';
import { MANIFEST_ACCEPT, sha256Of } from './manifest.js';
import { Transport, readBody, type SendOptions } from './transport.js';

export interface RegistryClientOptions {
  insecure: boolean;
  credentials: Credentials | null;
}

export interface FetchedManifest {
  bytes: Buffer;
  contentType: string;
  digest: string;
}

/** Blobs up to this size go in one PUT; bigger ones are streamed in one PATCH. */
export const MONOLITHIC_MAX = 512 * 1024;
/** After a 413 for a whole-blob PATCH, chunks of this size (halved on each further 413)... */
export const FALLBACK_CHUNK = 32 * 1024 * 1024;
/** ...down to this size; a 413 below it is an error. */
const MIN_CHUNK = 1024 * 1024;

type Access = 'pull' | 'push';

export class RegistryClient {
  readonly transport: Transport;
  readonly auth: RegistryAuth;

  constructor(
    readonly host: string,
    options: RegistryClientOptions,
  ) {
    this.transport = new Transport(host, options.insecure);
    this.auth = new RegistryAuth(host, options.credentials, options.insecure);
  }

  close(): void {
    this.transport.close();
  }

  /**
   * Sends one request with whatever authorization `scope` needs; on a 401,
   * learns the challenge and retries once. A final 401 throws
   * UnauthorizedError; other non-2xx answers are returned, not thrown.
   */
  async request(method: string, target: string, scope: string, opts: SendOptions = {}): Promise<http.IncomingMessage> {
    for (let attempt = 0; ; attempt++) {
      const auth = await this.auth.headers(scope);
      const res = await this.transport.send(method, target, { ...opts, headers: { ...opts.headers, ...auth } });
      if (res.statusCode !== 401) return res;
      res.resume();
      if ('Authorization' in auth) this.auth.forget(scope);
      if (attempt > 0 || !this.auth.learn(res.headers['www-authenticate'])) {
        throw new UnauthorizedError(
          this.auth.credentials
            ? `Authentication to ${this.host} failed: incorrect username or password, or no access to ${scope || 'the registry'}`
            : `Authentication required by ${this.host}: run 'vessel login ${this.host}'`,
        );
      }
    }
  }

  /** GET /v2/: checks the registry speaks the API and the credentials are accepted. */
  async checkLogin(): Promise<void> {
    const failed = () =>
      new UnauthorizedError(`Login to ${this.host} failed: ${this.auth.credentials ? 'incorrect username or password' : 'credentials required'}`);
    let res: http.IncomingMessage;
    try {
      res = await this.request('GET', '/v2/', '');
    } catch (e) {
      if (e instanceof UnauthorizedError) throw failed();
      throw e;
    }
    const body = await readBody(res, 1024 * 1024);
    if (res.statusCode === 401 || res.statusCode === 403) throw failed();
    if ((res.statusCode ?? 0) >= 300) throw registryError(res.statusCode ?? 0, body, `Registry ${this.host}`);
  }

  /** Fetches a manifest by tag or digest; checks the bytes against `Docker-Content-Digest` and a requested digest. */
  async getManifest(repo: string, ref: string): Promise<FetchedManifest> {
    const res = await this.#pullRequest(repo, `/v2/${repo}/manifests/${ref}`, { headers: { Accept: MANIFEST_ACCEPT.join(', ') } });
    const bytes = await readBody(res, 4 * 1024 * 1024);
    if (res.statusCode !== 200) throw this.#pullError(res.statusCode ?? 0, bytes, repo, `Fetching manifest ${repo}:${ref} from ${this.host}`);
    const digest = sha256Of(bytes);
    const claimed = res.headers['docker-content-digest'];
    if (ref.startsWith('sha256:') && digest !== ref) {
      throw new InvalidArgumentError(`Manifest digest mismatch for ${this.host}/${repo}@${ref}: the registry sent content with digest ${digest}`);
    }
    if (typeof claimed === 'string' && claimed.startsWith('sha256:') && claimed !== digest) {
      throw new InvalidArgumentError(`Manifest digest mismatch for ${this.host}/${repo}:${ref}: the registry says ${claimed}, the content is ${digest}`);
    }
    return { bytes, contentType: String(res.headers['content-type'] ?? ''), digest };
  }

  /** Starts a blob download; the caller verifies what it reads. */
  async getBlob(repo: string, digest: string): Promise<http.IncomingMessage> {
    const res = await this.#pullRequest(repo, `/v2/${repo}/blobs/${digest}`);
    if (res.statusCode !== 200) {
      const body = await readBody(res, 1024 * 1024).catch(() => Buffer.alloc(0));
      throw this.#pullError(res.statusCode ?? 0, body, repo, `Fetching blob ${digest} from ${this.host}/${repo}`);
    }
    return res;
  }

  /** Size of a blob in `repo`, or null when the registry does not have it there. */
  async headBlob(repo: string, digest: string, access: Access[] = ['pull', 'push']): Promise<number | null> {
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, repositoryScope(repo, access));
    res.resume();
    if (res.statusCode === 200) return Number(res.headers['content-length'] ?? -1);
    if (res.statusCode === 404) return null;
    throw registryError(res.statusCode ?? 0, Buffer.alloc(0), `Checking blob ${digest} in ${this.host}/${repo}`);
  }

  /**
   * Asks the registry to link `digest` from `from` into `repo`. True when
   * mounted (201); false when it started an upload instead (202), which is cancelled.
   */
  async mountBlob(repo: string, digest: string, from: string): Promise<boolean> {
    const q = new URLSearchParams({ mount: digest, from });
    const scope = `${repositoryScope(repo, ['pull', 'push'])} ${repositoryScope(from, ['pull'])}`;
    let res: http.IncomingMessage;
    try {
      res = await this.request('POST', `/v2/${repo}/blobs/uploads/?${q}`, scope);
    } catch (e) {
      if (e instanceof UnauthorizedError) return false; // no pull access to `from`: upload instead
      throw e;
    }
    const body = await readBody(res, 1024 * 1024);
    if (res.statusCode === 201) return true;
    if (res.statusCode === 202) {
      const loc = res.headers.location;
      if (loc) (await this.request('DELETE', loc, repositoryScope(repo, ['pull', 'push'])).catch(() => null))?.resume();
      return false;
    }
    if (res.statusCode === 403 || res.statusCode === 404) return false;
    throw registryError(res.statusCode ?? 0, body, `Mounting blob ${digest} into ${this.host}/${repo}`);
  }

  /**
   * Uploads the blob stored at `file`: one PUT for small blobs, else one
   * streamed PATCH (chunks only when the registry refuses that with 413) and
   * a closing PUT. `progress` gets bytes sent.
   */
  async uploadBlob(repo: string, blob: { digest: string; size: number; file: string }, progress?: (sent: number) => void): Promise<void> {
    const scope = repositoryScope(repo, ['pull', 'push']);
    const what = `Uploading blob ${blob.digest} to ${this.host}/${repo}`;
    const start = await this.request('POST', `/v2/${repo}/blobs/uploads/`, scope);
    const startBody = await readBody(start, 1024 * 1024);
    if (start.statusCode !== 202) throw registryError(start.statusCode ?? 0, startBody, what);
    let location = requireLocation(start, what);
    if (blob.size <= MONOLITHIC_MAX) {
      const data = await readWhole(blob.file, blob.size);
      const res = await this.request('PUT', withDigest(location, blob.digest), scope, {
        headers: { 'Content-Type': 'application/octet-stream' },
        body: data,
      });
      const body = await readBody(res, 1024 * 1024);
      if (res.statusCode !== 201) throw registryError(res.statusCode ?? 0, body, what);
      progress?.(blob.size);
      return;
    }
    // The whole blob streams in one PATCH, as Docker's client sends it: no
    // per-chunk round trips, and the registry keeps one hash running. A
    // registry (or a proxy in front of it) that refuses a body that big with
    // 413 gets chunks instead, 32 MiB and halved on each further 413.
    let limit = Infinity;
    for (let offset = 0; offset < blob.size; ) {
      const from = offset;
      const n = Math.min(limit, blob.size - from);
      const patch = await this.request('PATCH', location, scope, {
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${from}-${from + n - 1}` },
        body: { length: n, open: () => blobStream(blob.file, from, n, progress) },
      });
      const patchBody = await readBody(patch, 1024 * 1024);
      if (patch.statusCode === 413 && n > MIN_CHUNK) {
        limit = limit === Infinity ? Math.min(FALLBACK_CHUNK, Math.ceil(n / 2)) : Math.ceil(n / 2);
        continue;
      }
      if (patch.statusCode !== 202) throw registryError(patch.statusCode ?? 0, patchBody, what);
      location = requireLocation(patch, what);
      offset += n;
    }
    const res = await this.request('PUT', withDigest(location, blob.digest), scope);
    const body = await readBody(res, 1024 * 1024);
    if (res.statusCode !== 201) throw registryError(res.statusCode ?? 0, body, what);
  }

  /** PUTs manifest bytes as they are; returns the digest, checked against the registry's answer. */
  async putManifest(repo: string, ref: string, bytes: Buffer, mediaType: string): Promise<string> {
    const digest = sha256Of(bytes);
    const res = await this.request('PUT', `/v2/${repo}/manifests/${ref}`, repositoryScope(repo, ['pull', 'push']), {
      headers: { 'Content-Type': mediaType },
      body: bytes,
    });
    const body = await readBody(res, 1024 * 1024);
    if (res.statusCode !== 201 && res.statusCode !== 200) {
      throw registryError(res.statusCode ?? 0, body, `Uploading manifest ${repo}:${ref} to ${this.host}`);
    }
    const claimed = res.headers['docker-content-digest'];
    if (typeof claimed === 'string' && claimed !== digest) {
      throw new InvalidArgumentError(`Registry ${this.host} stored manifest ${repo}:${ref} as ${claimed}, but its content is ${digest}`);
    }
    return digest;
  }

  async #pullRequest(repo: string, target: string, opts: SendOptions = {}): Promise<http.IncomingMessage> {
    try {
      return await this.request('GET', target, repositoryScope(repo, ['pull']), opts);
    } catch (e) {
      if (e instanceof UnauthorizedError) throw this.#pullError(401, Buffer.alloc(0), repo, '');
      throw e;
    }
  }

  #pullError(status: number, body: Buffer, repo: string, what: string): Error {
    if (status === 401 || status === 403) {
      return new UnauthorizedError(
        `Pull access denied for ${this.host}/${repo}: the repository does not exist or may require 'vessel login'`,
      );
    }
    const e = registryError(status, body, what);
    return status === 404 ? new NotFoundError(e.message) : e;
  }
}

/** Fills `buf` from `position` (a read may return fewer bytes than asked). */
/** A small blob, read whole; a file shorter than its recorded size is an error. */
async function readWhole(file: string, size: number): Promise<Buffer> {
  const data = await fs.readFile(file);
  if (data.length < size) throw new InvalidArgumentError(`Local blob ${file} ended early at byte ${data.length}`);
  return data.subarray(0, size);
}

/** `length` bytes of the blob from `start` as a stream, reporting the blob's bytes read so far. */
function blobStream(file: string, start: number, length: number, progress?: (sent: number) => void): Readable {
  const stream = createReadStream(file, { start, end: start + length - 1, highWaterMark: 1024 * 1024 });
  if (progress) {
    let sent = start;
    stream.on('data', (c) => progress((sent += c.length)));
  }
  return stream;
}

function requireLocation(res: http.IncomingMessage, what: string): string {
  const loc = res.headers.location;
  if (!loc) throw new InvalidArgumentError(`${what}: the registry sent no upload Location`);
  return loc;
}

function withDigest(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}
