/**
 * Connecting to a QEMU-owned unix socket that may not exist yet: QEMU creates
 * its QMP and chardev sockets a moment after it starts, so ENOENT and
 * ECONNREFUSED are retried until the deadline.
 */
import { createConnection, type Socket } from 'node:net';
import { UnavailableError } from '../core/errors.js';

const RETRYABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

function once(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ path });
    const onError = (e: Error): void => {
      s.destroy();
      reject(e);
    };
    s.once('error', onError);
    s.once('connect', () => {
      s.off('error', onError);
      resolve(s);
    });
  });
}

/** Connect, retrying while the socket is missing or refused, for up to `timeoutMs`. */
export async function connectUnix(path: string, timeoutMs: number, what = 'socket'): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await once(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (!RETRYABLE.has(code) || Date.now() >= deadline) {
        throw new UnavailableError(`Cannot connect to ${what} ${path}: ${code || (e as Error).message}`, { cause: e });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
