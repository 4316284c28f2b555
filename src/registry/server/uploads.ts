/**
 * Blob upload sessions. A session is a directory `uploads/<uuid>/` with the
 * bytes received so far (`data`) and `state.json` (repository, start time),
 * so an upload can continue across requests and server restarts. Requests
 * on one session are serialised. Completing a session hashes the data,
 * compares it to the digest the client claims and only then renames the
 * file into `blobs/`; on a mismatch the session is discarded.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError } from './errors.js';
import type { RegistryStorage } from './storage.js';

export interface UploadState {
  name: string;
  startedAt: string;
}

export interface UploadSession extends UploadState {
  uuid: string;
  size: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Parses `Content-Range: <start>-<end>` (an optional `bytes ` prefix is tolerated). */
export function parseContentRange(header: string): { start: number; end: number } {
  const m = /^(?:bytes[ =])?(\d+)-(\d+)$/.exec(header.trim());
  const start = Number(m?.[1]);
  const end = Number(m?.[2]);
  if (!m || end < start) throw new RegistryError('BLOB_UPLOAD_INVALID', `Invalid Content-Range: ${header}`, { status: 416 });
  return { start, end };
}

export class UploadManager {
  readonly #locks = new Map<string, Promise<unknown>>();

  constructor(private readonly storage: RegistryStorage) {}

  private dir(uuid: string): string {
    return path.join(this.storage.root, 'uploads', uuid);
  }

  private dataPath(uuid: string): string {
    return path.join(this.dir(uuid), 'data');
  }

  /** Runs `fn` after every earlier operation on the same session has finished. */
  private async locked<T>(uuid: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(uuid) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    this.#locks.set(uuid, next);
    try {
      return await next;
    } finally {
      if (this.#locks.get(uuid) === next) this.#locks.delete(uuid);
    }
  }

  async create(name: string): Promise<UploadSession> {
    const uuid = randomUUID();
    const state: UploadState = { name, startedAt: new Date().toISOString() };
    await fs.mkdir(this.dir(uuid), { recursive: true });
    await fs.writeFile(this.dataPath(uuid), '');
    await fs.writeFile(path.join(this.dir(uuid), 'state.json'), JSON.stringify(state));
    return { uuid, size: 0, ...state };
  }

  /** The session, which must belong to `name`; BLOB_UPLOAD_UNKNOWN otherwise. */
  async get(name: string, uuid: string): Promise<UploadSession> {
    const unknown = new RegistryError('BLOB_UPLOAD_UNKNOWN', `Unknown upload: ${uuid}`, { detail: { uuid } });
    if (!UUID.test(uuid)) throw unknown;
    try {
      const state = JSON.parse(await fs.readFile(path.join(this.dir(uuid), 'state.json'), 'utf8')) as UploadState;
      if (state.name !== name) throw unknown;
      const size = (await fs.stat(this.dataPath(uuid))).size;
      return { uuid, size, ...state };
    } catch (e) {
      if (e instanceof RegistryError) throw e;
      throw unknown;
    }
  }

  /**
   * Appends `body` to the session. With `range`, the chunk must start where
   * the data ends (416 otherwise); without, it is simply appended (a
   * streamed upload). Returns the new size.
   */
  append(name: string, uuid: string, body: Readable, range?: { start: number; end: number }): Promise<number> {
    return this.locked(uuid, async () => {
      const session = await this.get(name, uuid);
      if (range && range.start !== session.size) {
        throw new RegistryError('BLOB_UPLOAD_INVALID', `Chunk out of order: upload has ${session.size} bytes, chunk starts at ${range.start}`, {
          status: 416,
          headers: { Range: rangeHeader(session.size) },
        });
      }
      await pipeline(body, createWriteStream(this.dataPath(uuid), { flags: 'a' }));
      return (await fs.stat(this.dataPath(uuid))).size;
    });
  }

  /**
   * Appends an optional final chunk, verifies the whole upload against
   * `digest` and moves it into the blob store. The session is gone after
   * this call whether it succeeded or not.
   */
  complete(name: string, uuid: string, digest: string, body?: Readable, range?: { start: number; end: number }): Promise<number> {
    return this.locked(uuid, async () => {
      const session = await this.get(name, uuid);
      if (range && range.start !== session.size) {
        throw new RegistryError('BLOB_UPLOAD_INVALID', `Chunk out of order: upload has ${session.size} bytes, chunk starts at ${range.start}`, {
          status: 416,
          headers: { Range: rangeHeader(session.size) },
        });
      }
      try {
        if (body) await pipeline(body, createWriteStream(this.dataPath(uuid), { flags: 'a' }));
        const { digest: actual, size } = await hashFile(this.dataPath(uuid));
        if (actual !== digest) {
          throw new RegistryError('DIGEST_INVALID', `Digest mismatch: expected ${digest}, got ${actual}`, { detail: { expected: digest, actual } });
        }
        await this.storage.commitBlob(this.dataPath(uuid), digest);
        await this.storage.linkBlob(name, digest);
        return size;
      } finally {
        await fs.rm(this.dir(uuid), { recursive: true, force: true });
      }
    });
  }

  cancel(name: string, uuid: string): Promise<void> {
    return this.locked(uuid, async () => {
      await this.get(name, uuid);
      await fs.rm(this.dir(uuid), { recursive: true, force: true });
    });
  }

  /** Every session with its start time (for garbage collection). */
  async list(): Promise<Array<{ uuid: string; startedAt: Date; size: number }>> {
    const out: Array<{ uuid: string; startedAt: Date; size: number }> = [];
    for (const uuid of await fs.readdir(path.join(this.storage.root, 'uploads')).catch(() => [] as string[])) {
      const dir = this.dir(uuid);
      const st = await fs.stat(path.join(dir, 'state.json')).catch(() => undefined);
      const data = await fs.stat(this.dataPath(uuid)).catch(() => undefined);
      // A session without state is a crashed create: as old as its directory.
      const started = st ? st.mtime : ((await fs.stat(dir).catch(() => undefined))?.mtime ?? new Date(0));
      const lastWrite = data && data.mtime > started ? data.mtime : started;
      out.push({ uuid, startedAt: lastWrite, size: data?.size ?? 0 });
    }
    return out;
  }

  async remove(uuid: string): Promise<void> {
    await fs.rm(this.dir(uuid), { recursive: true, force: true });
  }
}

/** `Range` header value for `size` bytes received (`0-0` when empty, as distribution does). */
export function rangeHeader(size: number): string {
  return `0-${Math.max(0, size - 1)}`;
}

export async function hashFile(file: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** Streams `body` into tmp/, verifies `digest` and commits it (a monolithic upload). */
export async function writeVerifiedBlob(storage: RegistryStorage, body: Readable, digest: string): Promise<number> {
  const tmp = storage.tempPath();
  try {
    await pipeline(body, createWriteStream(tmp));
    const { digest: actual, size } = await hashFile(tmp);
    if (actual !== digest) {
      throw new RegistryError('DIGEST_INVALID', `Digest mismatch: expected ${digest}, got ${actual}`, { detail: { expected: digest, actual } });
    }
    await storage.commitBlob(tmp, digest);
    return size;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}
