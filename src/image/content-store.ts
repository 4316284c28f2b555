/**
 * Content-addressed blob store in OCI image-layout terms:
 * `<root>/blobs/sha256/<hex>`. Writes go to `<root>/ingest/` first and are
 * renamed into place only after size and digest are verified, so a blob in
 * `blobs/` is always complete and correct.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import { IngestFile } from './ingest-file.js';
import { InvalidArgumentError, NotFoundError } from '../core/errors.js';

export interface BlobInfo {
  digest: string;
  size: number;
}

/**
 * Lets a reader follow a blob while it is written (a pull unpacks the layer
 * from its ingest file as it grows): `opened` runs once the ingest file
 * exists, before any byte is written; `written` reports how many bytes are
 * in the file so far (readable by others through the page cache).
 */
export interface IngestWatcher {
  opened(file: string): Promise<void> | void;
  written(total: number): void;
}

export class ContentStore {
  constructor(readonly root: string) {}

  async init(): Promise<void> {
    await fs.mkdir(path.join(this.root, 'blobs', 'sha256'), { recursive: true });
    await fs.mkdir(path.join(this.root, 'ingest'), { recursive: true });
    // Leftovers of writes interrupted by a crash are never valid blobs.
    for (const f of await fs.readdir(path.join(this.root, 'ingest'))) {
      await fs.rm(path.join(this.root, 'ingest', f), { force: true, recursive: true });
    }
  }

  blobPath(digest: string): string {
    const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
    if (!m) throw new InvalidArgumentError(`Invalid digest: ${digest}`);
    return path.join(this.root, 'blobs', 'sha256', m[1] as string);
  }

  async has(digest: string): Promise<boolean> {
    try {
      await fs.access(this.blobPath(digest));
      return true;
    } catch {
      return false;
    }
  }

  /** Streams `input` into the store; verifies `expected` when given. */
  async write(input: Readable, expected?: { digest?: string; size?: number }, watcher?: IngestWatcher): Promise<BlobInfo> {
    const tmp = path.join(this.root, 'ingest', randomBytes(8).toString('hex'));
    const hash = createHash('sha256');
    let size = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    });
    try {
      const sink = watcher ? await IngestFile.open(tmp, watcher) : createWriteStream(tmp, { mode: 0o644 });
      await pipeline(input, counter, sink);
      const digest = `sha256:${hash.digest('hex')}`;
      if (expected?.digest && expected.digest !== digest) {
        throw new InvalidArgumentError(`Digest mismatch: expected ${expected.digest}, got ${digest}`);
      }
      if (expected?.size !== undefined && expected.size !== size) {
        throw new InvalidArgumentError(`Size mismatch for ${digest}: expected ${expected.size}, got ${size}`);
      }
      await fs.rename(tmp, this.blobPath(digest));
      return { digest, size };
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e;
    }
  }

  async writeBytes(data: Buffer | string): Promise<BlobInfo> {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
    const digest = `sha256:${createHash('sha256').update(buf).digest('hex')}`;
    const p = this.blobPath(digest);
    if (!(await this.has(digest))) {
      const tmp = path.join(this.root, 'ingest', randomBytes(8).toString('hex'));
      await fs.writeFile(tmp, buf, { mode: 0o644 });
      await fs.rename(tmp, p);
    }
    return { digest, size: buf.length };
  }

  async readBytes(digest: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.blobPath(digest));
    } catch (e) {
      throw new NotFoundError(`Blob not found: ${digest}`, { cause: e });
    }
  }

  openRead(digest: string): Readable {
    return createReadStream(this.blobPath(digest));
  }

  async remove(digest: string): Promise<void> {
    await fs.rm(this.blobPath(digest), { force: true });
  }

  async list(): Promise<string[]> {
    const names = await fs.readdir(path.join(this.root, 'blobs', 'sha256'));
    return names.map((n) => `sha256:${n}`);
  }
}
