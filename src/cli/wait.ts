/**
 * `POST /containers/{id}/wait`: the daemon sends headers at once and the body
 * only when the condition is met, so the request must be issued (and its
 * headers received) before `start`, or a fast container's exit is missed.
 */
import type http from 'node:http';
import type { VesselClient } from '../client/client.js';
import { InternalError } from '../core/errors.js';
import { pathName } from './path-name.js';

export interface PendingWait {
  /** The container's exit status once the condition is met. */
  status: Promise<number>;
  /** Abandons the wait (closes the connection). */
  cancel(): void;
}

export type WaitCondition = 'next-exit' | 'removed' | 'not-running';

export async function beginWait(client: VesselClient, id: string, condition?: WaitCondition): Promise<PendingWait> {
  const res = await client.stream('POST', `/containers/${pathName(id)}/wait`, { query: { condition } });
  const status = readWaitBody(res);
  // The caller may cancel before the body arrives; do not report that as unhandled.
  status.catch(() => undefined);
  return { status, cancel: () => res.destroy() };
}

function readWaitBody(res: http.IncomingMessage): Promise<number> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      ended = true;
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          StatusCode?: number;
          Error?: { Message?: string } | null;
        };
        if (body.Error?.Message) reject(new InternalError(`Error waiting for container: ${body.Error.Message}`));
        else resolve(Number(body.StatusCode ?? 0));
      } catch {
        reject(new InternalError('Error waiting for container: invalid response from the daemon'));
      }
    });
    res.on('error', () => undefined);
    res.on('close', () => {
      if (!ended) reject(new InternalError('Error waiting for container: unexpected EOF'));
    });
  });
}
