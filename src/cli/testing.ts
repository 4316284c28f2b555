/**
 * Test support for the CLI's end-to-end tests: a small HTTP server on a unix
 * socket that stands in for vesseld (recording exactly what the CLI sends),
 * and a runner for the built CLI as a child process.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../../bin/vessel', import.meta.url));
export const ID = 'c0ffee'.padEnd(64, '0');

export interface Recorded {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export type Handler = (req: Recorded, res: http.ServerResponse, daemon: FakeDaemon) => void;
export type UpgradeHandler = (req: Recorded, socket: net.Socket, daemon: FakeDaemon) => void;

export class FakeDaemon {
  readonly requests: Recorded[] = [];
  /**
   * Upgrade requests for anything but attach and exec start (Vessel's
   * `POST /vessel/run`), answered 404 as Docker does, so the CLI falls back to
   * Docker's request sequence; kept apart from `requests`.
   */
  readonly rejected: Recorded[] = [];
  readonly server: http.Server;
  readonly socketPath: string;
  /** Open hijacked sockets and pending wait responses, by purpose. */
  attach?: net.Socket;
  waitRes?: http.ServerResponse;
  readonly #hijacked = new Set<net.Socket>();

  constructor(handler: Handler, upgrade?: UpgradeHandler) {
    this.socketPath = join(mkdtempSync(join(tmpdir(), 'vessel-cli-')), 'd.sock');
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const rec = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
        this.requests.push(rec);
        handler(rec, res, this);
      });
    });
    this.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
      const rec = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' };
      if (!/\/(attach|exec\/[^/]+\/start)(\?|$)/.test(rec.url.split('?')[0] ?? '')) {
        this.rejected.push(rec);
        const text = JSON.stringify({ message: 'page not found' });
        socket.on('error', () => undefined);
        socket.resume(); // read (and drop) the request body, so the client's close is seen
        socket.end(`HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${text.length}\r\nConnection: close\r\n\r\n${text}`);
        return;
      }
      this.requests.push(rec);
      this.#hijacked.add(socket);
      socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
      upgrade?.(rec, socket, this);
    });
  }

  listen(): Promise<void> {
    return new Promise((r) => this.server.listen(this.socketPath, r));
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    // Hijacked sockets are no longer tracked by the HTTP server.
    for (const s of this.#hijacked) s.destroy();
    // The socket's private temp directory goes too (the socket file with it).
    return new Promise((r) =>
      this.server.close(() => {
        rmSync(dirname(this.socketPath), { recursive: true, force: true });
        r();
      }),
    );
  }

  /** "POST /containers/create?name=web" style summaries, without the version prefix. */
  get calls(): string[] {
    return this.requests.map((r) => `${r.method} ${r.url.replace(/^\/v1\.41/, '')}`);
  }
}

export function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(
  host: string,
  args: string[],
  opts: { stdin?: string; onSpawn?: (p: ReturnType<typeof spawn>) => void } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, '--host', host, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (opts.stdin !== undefined) child.stdin.end(opts.stdin);
    opts.onSpawn?.(child);
  });
}

export async function withDaemon(handler: Handler, upgrade: UpgradeHandler | undefined, fn: (d: FakeDaemon, host: string) => Promise<void>) {
  const d = new FakeDaemon(handler, upgrade);
  try {
    await d.listen();
    await fn(d, `unix://${d.socketPath}`);
  } finally {
    await d.close();
  }
}

/** A daemon for `run`: create, attach, wait (headers flushed at once), start. */
export function runHandler(onStart: (d: FakeDaemon) => void, extra?: Handler): Handler {
  return (req, res, d) => {
    if (req.url.startsWith('/v1.41/containers/create')) return json(res, 201, { Id: ID, Warnings: [] });
    if (req.url.includes('/wait')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      d.waitRes = res;
      return;
    }
    if (req.url.endsWith('/start')) {
      res.writeHead(204).end();
      setTimeout(() => onStart(d), 20);
      return;
    }
    if (extra) return extra(req, res, d);
    json(res, 404, { message: `unexpected ${req.method} ${req.url}` });
  };
}

export const finish = (d: FakeDaemon, frames: Buffer[], status: number) => {
  for (const f of frames) d.attach?.write(f);
  d.attach?.end();
  setTimeout(() => d.waitRes?.end(JSON.stringify({ StatusCode: status, Error: null }) + '\n'), 20);
};

export const keepAttach: UpgradeHandler = (_req, socket, d) => {
  d.attach = socket;
};

