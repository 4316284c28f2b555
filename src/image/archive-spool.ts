/** Reading an image archive in one pass into a private directory, safely (see archive.ts). */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract, type Extract, type Header } from 'tar-stream';
import { InternalError, VesselError, errorMessage } from '../core/errors.js';
import { MAX_JSON_BYTES, invalid } from './archive-names.js';
import { drained, type EntrySink } from './tar-pack.js';

/** An entry being read: its header plus its data. */
type Entry = AsyncIterable<Buffer> & { header: Header };
export interface SpooledFile {
  /** The normalized archive name it was first stored under. */
  name: string;
  /** Where its bytes are (a counter-named file inside the spool directory). */
  path: string;
  digest: string;
  size: number;
}

/** Normalizes an archive entry name (`./a//b/` → `a/b`); '' is the archive root. Rejects escapes. */
export function normalizeEntryName(raw: string): string {
  if (raw.includes('\0')) throw invalid(`entry name with a NUL byte`);
  if (raw.startsWith('/')) throw invalid(`absolute entry name ${JSON.stringify(raw)}`);
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw invalid(`entry name ${JSON.stringify(raw)} leaves the archive`);
  return parts.join('/');
}

const MAX_LINK_HOPS = 16;

export class ArchiveSpool {
  readonly #files = new Map<string, SpooledFile>();
  /** Symbolic links: name → target (already resolved against the link's directory). */
  readonly #symlinks = new Map<string, string>();
  #count = 0;

  private constructor(readonly dir: string) {}

  /**
   * Reads the whole tar (plain or gzip) from `input` into `dir` (which must
   * exist and be private). Every file is hashed while it is written.
   */
  static async read(input: Readable, dir: string): Promise<ArchiveSpool> {
    const spool = new ArchiveSpool(dir);
    const extract = tarExtract();
    const consuming = (async () => {
      for await (const entry of extract as AsyncIterable<Entry>) await spool.#take(entry);
    })();
    const feeding = feed(input, extract);
    feeding.catch((e: unknown) => extract.destroy(e instanceof Error ? e : new Error(String(e))));
    consuming.catch((e: unknown) => extract.destroy(e instanceof Error ? e : new Error(String(e))));
    const [f, c] = await Promise.allSettled([feeding, consuming]);
    if (f.status === 'rejected') throw classifySpoolError(f.reason);
    if (c.status === 'rejected') throw classifySpoolError(c.reason);
    return spool;
  }

  async #take(entry: Entry): Promise<void> {
    const h = entry.header;
    try {
      const name = normalizeEntryName(h.name);
      switch (h.type) {
        case 'file':
        case 'contiguous-file':
        case null:
        case undefined: {
          if (name === '') throw invalid('a file entry without a name');
          const file = await this.#store(name, entry);
          this.#symlinks.delete(name);
          this.#files.set(name, file);
          return;
        }
        case 'directory':
          return;
        case 'symlink': {
          const target = h.linkname ?? '';
          if (target.startsWith('/')) throw invalid(`symbolic link ${JSON.stringify(h.name)} points outside the archive`);
          const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(name), target));
          if (resolved === '..' || resolved.startsWith('../')) {
            throw invalid(`symbolic link ${JSON.stringify(h.name)} points outside the archive`);
          }
          this.#files.delete(name);
          this.#symlinks.set(name, normalizeEntryName(resolved));
          return;
        }
        case 'link': {
          const target = this.get(normalizeEntryName(h.linkname ?? ''));
          if (!target) throw invalid(`hard link ${JSON.stringify(h.name)} to a missing entry ${JSON.stringify(h.linkname)}`);
          this.#symlinks.delete(name);
          this.#files.set(name, target);
          return;
        }
        default:
          throw invalid(`unexpected ${h.type} entry ${JSON.stringify(h.name)}`);
      }
    } finally {
      for await (const _ of entry); // tar-stream stalls until every entry's data is consumed
    }
  }

  async #store(name: string, data: AsyncIterable<Buffer>): Promise<SpooledFile> {
    const file = path.join(this.dir, String(++this.#count));
    const hash = createHash('sha256');
    let size = 0;
    const fh = await fs.open(file, 'wx', 0o600);
    try {
      for await (const chunk of data) {
        hash.update(chunk);
        size += chunk.length;
        await fh.write(chunk);
      }
    } finally {
      await fh.close();
    }
    return { name, path: file, digest: `sha256:${hash.digest('hex')}`, size };
  }

  /** The file stored under `name`, following links inside the archive; undefined when absent. */
  get(name: string): SpooledFile | undefined {
    let n = normalizeEntryName(name);
    for (let hops = 0; hops <= MAX_LINK_HOPS; hops++) {
      const f = this.#files.get(n);
      if (f) return f;
      // A link may also sit on a parent directory (`<id>/` → `../<other>/`).
      const parts = n.split('/');
      let next: string | undefined;
      for (let i = parts.length; i > 0 && next === undefined; i--) {
        const target = this.#symlinks.get(parts.slice(0, i).join('/'));
        if (target !== undefined) next = [target, ...parts.slice(i)].filter(Boolean).join('/');
      }
      if (next === undefined) return undefined;
      n = normalizeEntryName(next);
    }
    throw invalid(`too many levels of links at ${JSON.stringify(name)}`);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** The file at `name`, or a clear error naming `what` it should have been. */
  need(name: string, what: string): SpooledFile {
    const f = this.get(name);
    if (!f) throw invalid(`${what} ${JSON.stringify(name)} is missing`);
    return f;
  }

  async readJson<T>(file: SpooledFile, what: string): Promise<T> {
    if (file.size > MAX_JSON_BYTES) throw invalid(`${what} is too large (${file.size} bytes)`);
    const text = await fs.readFile(file.path, 'utf8');
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw invalid(`${what} is not valid JSON: ${errorMessage(e)}`);
    }
  }

  open(file: SpooledFile): Readable {
    return createReadStream(file.path);
  }
}

/** Decompresses gzip (sniffed) and writes `input` into the tar parser; never throws on the parser's own failure. */
async function feed(input: Readable, extract: Extract): Promise<void> {
  const it: AsyncIterator<Buffer> = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  for (let length = 0; length < 2; ) {
    const r = await it.next();
    if (r.done) break;
    const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    head.push(chunk);
    length += chunk.length;
  }
  const magic = Buffer.concat(head);
  const gzipped = magic[0] === 0x1f && magic[1] === 0x8b;
  async function* replay(): AsyncGenerator<Buffer> {
    try {
      yield* head;
      for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
    } finally {
      await it.return?.();
    }
  }
  async function sink(source: AsyncIterable<Buffer>): Promise<void> {
    for await (const chunk of source) {
      if (extract.destroyed) return; // the reading side failed and holds the error
      if (!extract.write(chunk)) await drained(extract as unknown as Pick<EntrySink, 'on' | 'off'>);
    }
    extract.end(null);
  }
  if (gzipped) await pipeline(replay(), createGunzip({ chunkSize: 128 * 1024 }), sink);
  else await pipeline(replay(), sink);
}


function classifySpoolError(e: unknown): unknown {
  if (e instanceof VesselError) return e;
  const code = String((e as NodeJS.ErrnoException)?.code);
  const text = errorMessage(e);
  if (code.startsWith('Z_')) return invalid(`gzip: ${text}`);
  if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || /aborted/i.test(text)) return invalid('the upload ended early');
  // File system failures while spooling (ENOSPC…) are the daemon's, not the archive's.
  if (/^E[A-Z0-9]+$/.test(code)) return new InternalError(`Cannot spool image archive: ${text}`, { cause: e });
  if (/unexpected end/i.test(text)) return invalid('the tar is truncated');
  return invalid(`not a tar archive: ${text}`);
}
