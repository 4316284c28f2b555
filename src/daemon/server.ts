/**
 * The daemon's HTTP API server on a unix socket. Requests and Upgrade
 * requests share one router; errors become `{"message"}` with the status from
 * http-errors.ts (written by hand on a raw socket when the request asked to
 * upgrade, since no ServerResponse exists there).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { log } from '../core/log.js';
import { UnavailableError } from '../core/errors.js';
import { httpErrorBody, httpStatusOf } from './http-errors.js';
import { Router, type RequestContext } from './router.js';

export function socketPathOf(host: string): string {
  return host.replace(/^unix:\/\//, '');
}

async function socketInUse(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(p);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class ApiServer {
  readonly server: http.Server;

  constructor(private readonly router: Router) {
    this.server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => void this.#dispatch(req, res, undefined));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.#dispatch(req, null, { socket, head });
    });
    this.server.on('clientError', (_e, socket) => socket.destroy());
  }

  async listen(host: string, group: string | null): Promise<void> {
    const p = socketPathOf(host);
    await fs.mkdir(path.dirname(p), { recursive: true, mode: 0o755 });
    if (await socketInUse(p)) throw new UnavailableError(`Another daemon is already serving ${host}`);
    await fs.rm(p, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(p, () => resolve());
    });
    await fs.chmod(p, 0o660);
    if (group) {
      const gid = await groupId(group);
      if (gid !== null) await fs.chown(p, 0, gid);
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections?.();
    });
  }

  async #dispatch(req: IncomingMessage, res: ServerResponse | null, upgrade: { socket: Duplex; head: Buffer } | undefined): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://vessel');
    const match = this.router.match(req.method ?? 'GET', url.pathname);
    const started = Date.now();
    try {
      if (!match) {
        this.#fail(res, upgrade, 404, { message: `Page not found: ${req.method} ${url.pathname}` });
        return;
      }
      const ctx: RequestContext = {
        req,
        res: res as ServerResponse,
        params: match.params,
        query: url.searchParams,
        ...(upgrade ? { upgrade } : {}),
      };
      await match.handler(ctx);
    } catch (e) {
      const status = httpStatusOf(e);
      if (status >= 500) log.error('request failed', { method: req.method, path: url.pathname, error: String((e as Error)?.stack ?? e) });
      this.#fail(res, upgrade, status, httpErrorBody(e));
    } finally {
      log.debug('request', { method: req.method, path: url.pathname, ms: Date.now() - started });
    }
  }

  #fail(res: ServerResponse | null, upgrade: { socket: Duplex } | undefined, status: number, body: { message: string }): void {
    if (res) {
      if (res.headersSent) {
        res.end();
        return;
      }
      if (status === 304) {
        res.writeHead(304);
        res.end();
        return;
      }
      const text = JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    if (upgrade && !upgrade.socket.destroyed) {
      const text = JSON.stringify(body);
      // Drop whatever of the request is still unread (a body), so that the
      // client's close is noticed and the socket does not linger.
      upgrade.socket.on('error', () => undefined);
      upgrade.socket.resume();
      upgrade.socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
      );
    }
  }
}

async function groupId(name: string): Promise<number | null> {
  const text = await fs.readFile('/etc/group', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name) return Number(f[2]);
  }
  log.warn('socket group not found', { group: name });
  return null;
}
