/**
 * The file end of a watched content-store write (see `IngestWatcher`): a
 * Writable over a file handle that reports, after each write returned, how
 * many bytes the file holds, so that a reader can follow it safely.
 */
import { promises as fs, type promises } from 'node:fs';
import { Writable } from 'node:stream';
import type { IngestWatcher } from './content-store.js';

export class IngestFile extends Writable {
  #total = 0;

  private constructor(
    private readonly fh: promises.FileHandle,
    private readonly watcher: IngestWatcher,
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  /** Creates `file` and tells the watcher before anything is written. */
  static async open(file: string, watcher: IngestWatcher): Promise<IngestFile> {
    const fh = await fs.open(file, 'wx', 0o644);
    try {
      await watcher.opened(file);
    } catch (e) {
      await fh.close();
      throw e;
    }
    return new IngestFile(fh, watcher);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (error?: Error | null) => void): void {
    this.#append(chunks.map((c) => c.chunk)).then(() => cb(), cb);
  }

  async #append(buffers: Buffer[]): Promise<void> {
    let pending = buffers;
    while (pending.length > 0) {
      const { bytesWritten } = await this.fh.writev(pending);
      this.#total += bytesWritten;
      pending = skip(pending, bytesWritten);
    }
    this.watcher.written(this.#total);
  }

  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    this.fh.close().then(
      () => cb(error),
      () => cb(error),
    );
  }
}

/** The buffers that remain once `n` bytes of them were written. */
function skip(buffers: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  let left = n;
  for (const b of buffers) {
    if (left >= b.length) {
      left -= b.length;
      continue;
    }
    out.push(left > 0 ? b.subarray(left) : b);
    left = 0;
  }
  return out;
}
