/**
 * Docker's multiplexed stream framing, used by attach, exec and logs when the
 * container has no TTY: an 8-byte header [stream, 0, 0, 0, size(BE uint32)]
 * followed by `size` bytes of payload. Stream 0 = stdin, 1 = stdout,
 * 2 = stderr, 3 = a system error from the daemon.
 */
export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const SYSTEMERR = 3;
export type StreamId = 0 | 1 | 2 | 3;

/** `stream` may also be a private id such as run-stream.ts's STATUS_FRAME. */
export function encodeFrame(stream: StreamId | number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** Incremental decoder: feed it chunks, get whole frames back. */
export class FrameDecoder {
  #pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Array<{ stream: StreamId; payload: Buffer }> {
    this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    const frames: Array<{ stream: StreamId; payload: Buffer }> = [];
    while (this.#pending.length >= 8) {
      const size = this.#pending.readUInt32BE(4);
      if (this.#pending.length < 8 + size) break;
      const stream = (this.#pending[0] ?? 1) as StreamId;
      frames.push({ stream, payload: this.#pending.subarray(8, 8 + size) });
      this.#pending = this.#pending.subarray(8 + size);
    }
    return frames;
  }

  /** Bytes buffered that do not yet form a whole frame. */
  get pendingBytes(): number {
    return this.#pending.length;
  }
}
