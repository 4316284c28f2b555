/**
 * `unpackLayer` in a worker thread (`unpack-worker.ts`), so that the
 * unpacker's synchronous file-system calls do not stall the daemon's event
 * loop: API requests, and the download feeding this very unpack, keep going.
 *
 * `startUnpack` takes the layer as a stream of chunks, e.g. straight from a
 * registry response while the same bytes go to the content store; at most
 * `WINDOW` bytes are in flight to the worker, so a slow disk slows the
 * download instead of filling memory. `unpackFileInWorker` reads a file.
 *
 * Guarantees are unpackLayer's: on any failure (including `abort()`) the
 * destination is removed before `result` rejects, also when the worker dies.
 */
import { promises as fsp } from 'node:fs';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { InternalError, InvalidArgumentError, NotFoundError, UnavailableError } from '../core/errors.js';
import { LayerSecurityError, type UnpackResult } from './layer-unpack.js';
import type { FromWorker, SerializedError, ToWorker, UnpackWorkerData } from './unpack-worker.js';

/** Bytes posted to the worker and not yet taken by its unpacker. */
const WINDOW = 8 * 1024 * 1024;
const WORKER_URL = new URL('./unpack-worker.js', import.meta.url);

export interface UnpackExpectations {
  expectedDigest?: string;
  expectedDiffId?: string;
}

export interface WorkerUnpack {
  /** Hands one chunk to the unpacker; resolves when there is room for more, rejects once the unpack failed. */
  write(chunk: Uint8Array): Promise<void>;
  /** No more input: the unpack finishes and `result` settles. */
  end(): void;
  /** Stops the unpack; `result` rejects once its directory is removed. */
  abort(): void;
  readonly result: Promise<UnpackResult>;
}

export function startUnpack(dest: string, expect: UnpackExpectations = {}): WorkerUnpack {
  return spawnUnpack({ dest, ...expect });
}

export function unpackFileInWorker(file: string, dest: string, expect: UnpackExpectations = {}): Promise<UnpackResult> {
  return spawnUnpack({ dest, file, ...expect }).result;
}

/** Unpacks a complete file; `abort()` stops it (the destination is removed before `result` rejects). */
export function startFileUnpack(file: string, dest: string, expect: UnpackExpectations = {}): Pick<WorkerUnpack, 'abort' | 'result'> {
  return spawnUnpack({ dest, file, ...expect });
}

/** A file that another party is still writing, unpacked as it grows (see follow-file.ts). */
export interface FollowUnpack {
  /** The file now holds `size` bytes. */
  grow(size: number): void;
  /** The file is complete at the last announced size. */
  end(): void;
  abort(): void;
  readonly result: Promise<UnpackResult>;
}

/**
 * Unpacks the file open as `fd` while it is written. The descriptor stays
 * the caller's: close it once `result` settled (the worker is done with it then).
 */
export function startFollowUnpack(fd: number, dest: string, expect: UnpackExpectations = {}): FollowUnpack {
  const u = spawnUnpack({ dest, fd, ...expect });
  return {
    grow: (size) => u.post({ type: 'grow', size }),
    end: () => u.post({ type: 'end' }),
    abort: () => u.abort(),
    result: u.result,
  };
}

/** Unpacks a stream (e.g. a decompressor's output). */
export async function unpackStreamInWorker(input: Readable, dest: string, expect: UnpackExpectations = {}): Promise<UnpackResult> {
  const u = startUnpack(dest, expect);
  try {
    for await (const chunk of input) await u.write(chunk as Buffer);
    u.end();
  } catch (e) {
    u.abort();
    await u.result.catch(() => {}); // nothing is still writing once this settles
    throw e;
  }
  return u.result;
}

function spawnUnpack(data: UnpackWorkerData): WorkerUnpack & { post(m: ToWorker): void } {
  const worker = new Worker(WORKER_URL, { workerData: data });
  let inFlight = 0;
  let failure: Error | undefined;
  let settled = false;
  let reported = false;
  let waiters: Array<() => void> = [];
  const wake = (): void => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const send = (m: ToWorker, transfer?: ArrayBuffer[]): void => {
    if (!settled) worker.postMessage(m, transfer);
  };

  const result = new Promise<UnpackResult>((resolve, reject) => {
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      failure = e;
      wake();
      reject(e);
    };
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'ack') {
        inFlight -= m.bytes;
        if (inFlight < WINDOW) wake();
      } else if (m.type === 'done') {
        settled = true;
        wake();
        resolve(m.result);
        void worker.terminate(); // its work, including any cleanup, is over once it reports
      } else {
        // Reject only once the thread is gone and its directory removed: a caller that reports
        // the failure right away must find nothing left behind.
        const err = revive(m.error);
        failure = err;
        reported = true;
        wake();
        void worker
          .terminate()
          .then(() => fsp.rm(data.dest, { recursive: true, force: true }))
          .finally(() => fail(err));
      }
    });
    // A worker that dies without reporting may have left a partial directory: remove it first.
    const died = (why: string): void => {
      if (settled || reported) return;
      void fsp.rm(data.dest, { recursive: true, force: true }).finally(() => fail(new InternalError(`Cannot unpack layer: the unpack worker ${why}`)));
    };
    worker.on('error', (e) => died(`failed: ${e.message}`));
    worker.on('exit', (code) => died(`exited with status ${code}`));
  });
  result.catch(() => {}); // the caller learns of failures from write() or result, whichever it awaits

  return {
    result,
    async write(chunk: Uint8Array): Promise<void> {
      if (failure) throw failure;
      if (settled) throw new InternalError('Cannot unpack layer: input after the end');
      const copy = new Uint8Array(chunk.byteLength); // transferred, so the caller keeps its buffer
      copy.set(chunk);
      inFlight += copy.byteLength;
      send({ type: 'chunk', data: copy }, [copy.buffer as ArrayBuffer]);
      while (inFlight >= WINDOW && !settled) await new Promise<void>((r) => waiters.push(r));
      if (failure) throw failure;
    },
    end: () => send({ type: 'end' }),
    abort: () => send({ type: 'abort' }),
    post: (m) => send(m),
  };
}

/** The worker's error as the class it had there (errors cannot cross threads with their prototype). */
function revive(e: SerializedError): Error {
  switch (e.name) {
    case 'LayerSecurityError':
      return new LayerSecurityError(e.message);
    case 'InvalidArgumentError':
      return new InvalidArgumentError(e.message);
    case 'NotFoundError':
      return new NotFoundError(e.message);
    case 'UnavailableError':
      return new UnavailableError(e.message);
    case 'InternalError':
      return new InternalError(e.message);
    default: {
      const err: Error & { code?: string } = new Error(e.message);
      err.name = e.name;
      if (e.code !== undefined) err.code = e.code;
      return err;
    }
  }
}
