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

export function hijack(ctx: RequestContext, tty: boolean): RawStream {
  const contentType = tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream';
  if (ctx.upgrade) {
    const socket: Duplex = ctx.upgrade.socket;
    socket.write(
      `HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`,
    );
    const head = ctx.upgrade.head;
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
        if (head.length) setImmediate(() => cb(head));
        socket.on('data', cb);
      },
      onEnd: (cb) => {
        socket.once('end', cb);
        socket.once('close', cb);
      },
      onClose: (cb) => socket.once('close', cb),
    };
  }
  const { req, res } = ctx;
  res.writeHead(200, { 'Content-Type': contentType });
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
