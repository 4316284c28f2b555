/**
 * Terminal plumbing for attached sessions (run, start -a, exec): copying a
 * hijacked socket to stdout/stderr, feeding stdin, raw mode, window-size
 * propagation and signal forwarding.
 */
import type net from 'node:net';
import { FrameDecoder, STDERR, SYSTEMERR } from '../api/stdcopy.js';
import { InternalError } from '../core/errors.js';

export interface PumpOptions {
  /** Raw byte stream (TTY) rather than 8-byte-header frames. */
  tty: boolean;
  /** Forward this process's stdin to the socket, half-closing at EOF. */
  stdin: boolean;
  /** Receives the payload of frames with this private stream id (run-stream.ts's STATUS_FRAME) instead of stdout. */
  status?: { stream: number; onFrame: (payload: Buffer) => void };
}

export interface StreamSession {
  /** Settles when the daemon closes the stream; rejects on an in-band error (frame 3). */
  done: Promise<void>;
  /**
   * Waits for the rest of the stream after the exit status is known. Docker
   * reads until the daemon closes it; we do too, but give up once no bytes
   * have flowed for `idleMs` (a daemon that never closes must not hang us).
   */
  drain(idleMs?: number): Promise<void>;
  close(): void;
}

/** Copies the attach/exec stream to stdout/stderr (and stdin to it) until the daemon closes it. */
export function pumpStream(socket: net.Socket, opts: PumpOptions): StreamSession {
  let lastActivity = Date.now();
  const done = new Promise<void>((resolve, reject) => {
    const decoder = new FrameDecoder();
    let failed: Error | undefined;

    const write = (dest: NodeJS.WriteStream, data: Buffer) => {
      // Stop reading from the daemon while the terminal/pipe catches up.
      if (!dest.write(data)) {
        socket.pause();
        dest.once('drain', () => socket.resume());
      }
    };

    socket.on('data', (chunk: Buffer) => {
      lastActivity = Date.now();
      if (opts.tty) {
        write(process.stdout, chunk);
        return;
      }
      for (const f of decoder.push(chunk)) {
        if (f.stream === SYSTEMERR) failed ??= new InternalError(f.payload.toString('utf8').trim() || 'error from daemon in stream');
        else if (opts.status && f.stream === opts.status.stream) opts.status.onFrame(f.payload);
        else write(f.stream === STDERR ? process.stderr : process.stdout, f.payload);
      }
    });
    // Transport errors after the container ends are not interesting: the exit
    // status comes from wait/inspect. Settle on close either way.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      stopStdin();
      if (failed) reject(failed);
      else resolve();
    });

    const stdin = process.stdin;
    const onStdinEnd = () => {
      if (!socket.destroyed) socket.end();
    };
    function stopStdin() {
      if (!opts.stdin) return;
      stdin.unpipe(socket);
      stdin.off('end', onStdinEnd);
      stdin.pause();
    }
    // A socket handed over paused (run-request.ts) would otherwise never flow.
    socket.resume();
    if (opts.stdin) {
      stdin.pipe(socket, { end: false });
      stdin.once('end', onStdinEnd);
      stdin.on('error', onStdinEnd);
    }
  });
  done.catch(() => undefined);

  const drain = async (idleMs = 2000): Promise<void> => {
    let finished = false;
    const settled = done.finally(() => {
      finished = true;
    });
    while (!finished) {
      await Promise.race([settled.catch(() => undefined), new Promise((r) => setTimeout(r, 100))]);
      // A paused socket means our own output is the bottleneck, not the daemon.
      if (socket.isPaused()) lastActivity = Date.now();
      if (!finished && Date.now() - lastActivity > idleMs) {
        socket.destroy();
        break;
      }
    }
    return done;
  };
  return { done, drain, close: () => socket.destroy() };
}

/** Puts the local terminal in raw mode; returns a function restoring it (idempotent). */
export function setRawTerminal(): () => void {
  const stdin = process.stdin;
  if (!stdin.isTTY) return () => undefined;
  stdin.setRawMode(true);
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    try {
      stdin.setRawMode(false);
    } catch {
      // The terminal may already be gone.
    }
  };
  // process.exit() skips finally blocks of pending promises; this still runs.
  process.once('exit', restore);
  return restore;
}

/**
 * Sends the terminal size now and on every SIGWINCH. Like Docker, a 0x0 size
 * (no real terminal) is never sent. Returns a function to stop monitoring.
 */
export function monitorTtySize(resize: (h: number, w: number) => Promise<unknown>): () => void {
  const out = process.stdout;
  if (!out.isTTY) return () => undefined;
  const send = () => {
    const [w, h] = out.getWindowSize();
    if (h > 0 && w > 0) resize(h, w).catch(() => undefined);
  };
  send();
  out.on('resize', send);
  return () => out.off('resize', send);
}

export const PROXIED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;

/**
 * Docker's sig-proxy: signals this CLI receives are delivered to the
 * container instead (as `INT`, `TERM`, ... like the Docker CLI sends them).
 */
export function forwardSignals(kill: (signal: string) => Promise<unknown>): () => void {
  const handlers = PROXIED_SIGNALS.map((sig) => {
    const h = () => void kill(sig.slice(3)).catch(() => undefined);
    process.on(sig, h);
    return [sig, h] as const;
  });
  return () => {
    for (const [sig, h] of handlers) process.off(sig, h);
  };
}

/** Rejects when the input is a pipe but -t -i asks for a terminal (Docker's CheckTty). */
export function checkTty(attachStdin: boolean, tty: boolean): void {
  if (tty && attachStdin && !process.stdin.isTTY) {
    throw new InternalError('the input device is not a TTY');
  }
}
