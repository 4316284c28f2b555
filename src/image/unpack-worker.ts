/**
 * Worker-thread entry of `unpack-in-worker.ts`: runs `unpackLayer` off the
 * daemon's main thread, whose event loop would otherwise stall on the
 * unpacker's synchronous file-system calls (by design; see layer-unpack.ts).
 *
 * Input is a file (`workerData.file`, read here), a file still being
 * written (`workerData.fd`, followed as the parent posts `{ type: 'grow',
 * size }` … `{ type: 'end' }`; see follow-file.ts), or chunks posted by
 * the parent: `{ type: 'chunk', data }` … `{ type: 'end' }`. Each chunk is
 * acknowledged (`{ type: 'ack', bytes }`) once the unpacker's input stream
 * has taken it, which is how the parent keeps a bounded window in flight.
 * `{ type: 'abort' }` stops the unpack (its directory is removed). The last
 * message is `{ type: 'done', result }` or `{ type: 'failed', error }`.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { followFile } from './follow-file.js';
import { unpackLayer, type UnpackOptions } from './layer-unpack.js';

export interface UnpackWorkerData {
  dest: string;
  file?: string;
  /** A descriptor (opened by the parent, which closes it) of a file that grows. */
  fd?: number;
  expectedDigest?: string;
  expectedDiffId?: string;
}

export type ToWorker = { type: 'chunk'; data: Uint8Array } | { type: 'grow'; size: number } | { type: 'end' } | { type: 'abort' };

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
}

export type FromWorker =
  | { type: 'ack'; bytes: number }
  | { type: 'done'; result: Awaited<ReturnType<typeof unpackLayer>> }
  | { type: 'failed'; error: SerializedError };

if (!parentPort) throw new Error('unpack-worker.js must run in a worker thread');
const port: MessagePort = parentPort;
const data = workerData as UnpackWorkerData;
const ac = new AbortController();
const post = (m: FromWorker): void => port.postMessage(m);

/** Chunks from the parent, handed to the unpacker as it asks for them. */
function portStream(): Readable {
  const queue: Buffer[] = [];
  let ended = false;
  let wanted = false;
  const stream = new Readable({
    highWaterMark: 1024 * 1024,
    read() {
      wanted = true;
      pump();
    },
  });
  function pump(): void {
    while (wanted && queue.length > 0) {
      const chunk = queue.shift() as Buffer;
      post({ type: 'ack', bytes: chunk.length });
      wanted = stream.push(chunk);
    }
    if (ended && queue.length === 0) stream.push(null);
  }
  port.on('message', (m: ToWorker) => {
    if (m.type === 'chunk') queue.push(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
    else if (m.type === 'grow') return;
    else if (m.type === 'end') ended = true;
    else if (m.type === 'abort') ac.abort(new Error('Unpack aborted'));
    pump();
  });
  return stream;
}

/** The growing file, as the parent announces its length. */
function followedInput(fd: number): Readable {
  const f = followFile(fd);
  port.on('message', (m: ToWorker) => {
    if (m.type === 'grow') f.grow(m.size);
    else if (m.type === 'end') f.end();
    else if (m.type === 'abort') {
      ac.abort(new Error('Unpack aborted'));
      f.end(); // a reader waiting for more wakes up and stops
    }
  });
  return f.stream;
}

async function run(): Promise<void> {
  const options: UnpackOptions = { signal: ac.signal };
  if (data.expectedDigest !== undefined) options.expectedDigest = data.expectedDigest;
  if (data.expectedDiffId !== undefined) options.expectedDiffId = data.expectedDiffId;
  if (data.file !== undefined) port.on('message', (m: ToWorker) => m.type === 'abort' && ac.abort(new Error('Unpack aborted')));
  const input =
    data.file !== undefined
      ? createReadStream(data.file, { highWaterMark: 1024 * 1024 })
      : data.fd !== undefined
        ? followedInput(data.fd)
        : portStream();
  try {
    const result = await unpackLayer(input, data.dest, options);
    post({ type: 'done', result });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const code = (err as NodeJS.ErrnoException).code;
    post({ type: 'failed', error: { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) } });
  } finally {
    input.destroy();
    port.removeAllListeners('message');
    port.unref(); // nothing left to keep the thread alive (the parent also terminates it)
  }
}

void run();
