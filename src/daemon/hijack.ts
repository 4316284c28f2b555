/**
 * Raw bidirectional streams for attach and exec (Docker's "hijack").
 *
 * Docker CLIs send `Connection: Upgrade` / `Upgrade: tcp` and need exactly
 * `101 UPGRADED`; after that the socket carries raw bytes (TTY) or 8-byte
 * framed stdout/stderr (no TTY) one way, and raw stdin the other. Older
 * clients without Upgrade get a plain 200 response streamed the same way.
 */
import type { Duplex } from 'node:stream';
import type { RequestContext } from './router.js';

export interface RawStream {
  write(data: Buffer): void;
  end(): void;
  onData(cb: (data: Buffer) => void): void;
  /** The client half-closed (no more stdin) or went away. */
  onEnd(cb: () => void): void;
  /** The connection is gone entirely. */
  onClose(cb: () => void): void;
}

/**
 * The body of an Upgrade request. Node hands it over as the first bytes of the
 * raw socket, so take exactly Content-Length bytes; the rest is stdin.
 */
export async function takeUpgradeBody(ctx: RequestContext): Promise<Buffer> {
  const up = ctx.upgrade;
  if (!up) return Buffer.alloc(0);
  const length = Number(ctx.req.headers['content-length'] ?? 0);
  if (!length) return Buffer.alloc(0);
  let buf = up.head;
  if (buf.length < length) {
    const socket = up.socket;
    const chunks: Buffer[] = [buf];
    let have = buf.length;
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        chunks.push(d);
        have += d.length;
        if (have >= length) {
          socket.off('data', onData);
          socket.pause();
          resolve();
        }
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.once('end', () => resolve());
    });
    buf = Buffer.concat(chunks);
  }
  up.head = buf.subarray(length);
  return buf.subarray(0, length);
}

export function hijack(ctx: RequestContext, tty: boolean, extraHeaders: Record<string, string> = {}): RawStream {
  const contentType = tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream';
  if (ctx.upgrade) {
    const socket: Duplex = ctx.upgrade.socket;
    const extra = Object.entries(extraHeaders)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(
      `HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n${extra}\r\n`,
    );
    socket.on('error', () => {});
    // The client may half-close its side (stdin EOF) and still read output.
    (socket as Duplex & { allowHalfOpen?: boolean }).allowHalfOpen = true;
    return {
      write: (d) => {
        if (!socket.destroyed && socket.writable) socket.write(d);
      },
      end: () => {
        if (!socket.destroyed) socket.end();
      },
      onData: (cb) => {
        const rest = ctx.upgrade!.head;
        if (rest.length) setImmediate(() => cb(rest));
        socket.on('data', cb);
        socket.resume();
      },
      onEnd: (cb) => {
        socket.once('end', cb);
        socket.once('close', cb);
      },
      onClose: (cb) => socket.once('close', cb),
    };
  }
  const { req, res } = ctx;
  res.writeHead(200, { 'Content-Type': contentType, ...extraHeaders });
  res.flushHeaders();
  return {
    write: (d) => {
      if (!res.writableEnded) res.write(d);
    },
    end: () => {
      if (!res.writableEnded) res.end();
    },
    onData: (cb) => req.on('data', cb),
    onEnd: (cb) => {
      req.once('end', cb);
      res.once('close', cb);
    },
    onClose: (cb) => res.once('close', cb),
  };
}
