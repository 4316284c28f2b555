/**
 * A Readable over a file that another party is still writing: it reads up
 * to the length announced with `grow(n)` and waits for more until `end()`.
 * Used by the unpack worker to follow a blob's ingest file during a pull,
 * so the download never waits for the unpacker and memory stays bounded.
 *
 * The descriptor belongs to the caller, who closes it once the reader is done.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';

const read = promisify(fs.read);
const CHUNK = 1024 * 1024;

export interface FollowedFile {
  readonly stream: Readable;
  /** The file now holds at least `size` bytes. */
  grow(size: number): void;
  /** No more bytes will come: the stream ends at the last announced size. */
  end(): void;
}

export function followFile(fd: number): FollowedFile {
  let available = 0;
  let ended = false;
  let wake: (() => void) | null = null;
  const poke = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  async function* chunks(): AsyncGenerator<Buffer> {
    let pos = 0;
    for (;;) {
      if (pos < available) {
        const buf = Buffer.allocUnsafe(Math.min(CHUNK, available - pos));
        const { bytesRead } = await read(fd, buf, 0, buf.length, pos);
        if (bytesRead === 0) throw new Error(`Blob file ended at ${pos} bytes, ${available} were announced`);
        pos += bytesRead;
        yield buf.subarray(0, bytesRead);
      } else if (ended) {
        return;
      } else {
        await new Promise<void>((r) => (wake = r));
      }
    }
  }
  return {
    stream: Readable.from(chunks(), { objectMode: false }),
    grow(size) {
      if (size > available) available = size;
      poke();
    },
    end() {
      ended = true;
      poke();
    },
  };
}
