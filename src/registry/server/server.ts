/**
 * `RegistryServer`: an OCI distribution-spec v1.1 registry over one storage
 * root, usable standalone (`vessel registry serve`) or embedded (vesseld's
 * `--registry-addr`).
 *
 * ```ts
 * const registry = new RegistryServer({ root: '/var/lib/vessel/registry' });
 * const { port } = await registry.listen('127.0.0.1:5000');
 * // or mount it into another node:http server: registry.handle(req, res)
 * await registry.close();
 * ```
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError, UnavailableError } from '../../core/errors.js';
import { HtpasswdAuth } from './auth.js';
import { RegistryError } from './errors.js';
import { RegistryHandler, type RequestLog } from './handler.js';
import { RegistryStorage } from './storage.js';
import { UploadManager } from './uploads.js';

export interface RegistryServerOptions {
  /** Storage root directory; created when missing. */
  root: string;
  /** Path of an htpasswd file with bcrypt entries; enables Basic auth. */
  htpasswd?: string | undefined;
  /** Realm announced in the Basic challenge. */
  realm?: string | undefined;
  /** Called once per finished request (for access logs). */
  onRequest?: ((entry: RequestLog) => void) | undefined;
}

/** Parses `host:port`, `[v6]:port`, `:port` (all interfaces) or `port`. */
export function parseListenAddress(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr) ?? /^()()(\d+)$/.exec(addr);
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port > 65535) throw new InvalidArgumentError(`Invalid listen address: ${addr}: expected HOST:PORT`);
  return { host: m[1] || m[2] || '0.0.0.0', port };
}

export class RegistryServer {
  readonly storage: RegistryStorage;
  readonly #handler: RegistryHandler;
  readonly #ready: Promise<void>;
  #server: Server | undefined;

  constructor(options: RegistryServerOptions) {
    this.storage = new RegistryStorage(options.root);
    const auth = options.htpasswd ? HtpasswdAuth.load(options.htpasswd, options.realm) : undefined;
    this.#handler = new RegistryHandler({ storage: this.storage, uploads: new UploadManager(this.storage), auth, onRequest: options.onRequest });
    this.#ready = this.storage.init();
    // Reported by handle()/listen(); avoid an unhandled rejection before then.
    this.#ready.catch(() => undefined);
  }

  /** Serves one request; suitable as a node:http request listener. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.#ready;
    } catch (e) {
      const err = new RegistryError('UNKNOWN', `Registry storage unavailable: ${e instanceof Error ? e.message : String(e)}`, { status: 503 });
      res.writeHead(err.status, { 'Content-Type': 'application/json' }).end(err.body());
      req.resume();
      return;
    }
    await this.#handler.handle(req, res);
  }

  async listen(addr: string): Promise<{ host: string; port: number }> {
    if (this.#server) throw new InvalidArgumentError('Registry server is already listening');
    const { host, port } = parseListenAddress(addr);
    await this.#ready;
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new UnavailableError(`Cannot listen on ${addr}: ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}`, { cause: e })),
      );
      server.listen(port, host, () => resolve());
    });
    this.#server = server;
    const bound = server.address() as AddressInfo;
    return { host: bound.address, port: bound.port };
  }

  /** Stops accepting connections and closes idle and active ones. */
  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 2000).unref();
    });
  }
}
