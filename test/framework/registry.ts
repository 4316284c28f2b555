/**
 * `TestRegistry`: Debian's real `docker-registry` (distribution 2.8) on a
 * free 127.0.0.1 port with its own storage root, optionally behind
 * htpasswd Basic auth. Fails loudly when the binary is missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface RegistryAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export class TestRegistry {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'vreg-'));
  port = 0;
  #proc: ChildProcess | null = null;
  #log = '';

  /**
   * `auth`: htpasswd Basic auth with that user. `token`: Bearer tokens from
   * a token server (see token-server.ts); `auth` then only serves request().
   */
  constructor(
    readonly auth?: { username: string; password: string },
    readonly token?: { realm: string; service: string; issuer: string; certFile: string },
    /** Serve HTTPS with a fresh self-signed certificate for 127.0.0.1. */
    readonly tls = false,
  ) {}

  /** `127.0.0.1:PORT` */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get storage(): string {
    return path.join(this.dir, 'storage');
  }

  get log(): string {
    return this.#log;
  }

  /** The blob's `data` file in the registry's filesystem storage. */
  blobDataPath(digest: string): string {
    const hex = digest.replace(/^sha256:/, '');
    return path.join(this.storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
  }

  async start(): Promise<this> {
    this.port = await freePort();
    let authYaml = '';
    if (this.token) {
      const t = this.token;
      authYaml = `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n    issuer: ${t.issuer}\n    rootcertbundle: ${t.certFile}\n`;
    } else if (this.auth) {
      const r = spawnSync('htpasswd', ['-Bbn', this.auth.username, this.auth.password], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`htpasswd failed: ${r.stderr || r.error}`);
      writeFileSync(path.join(this.dir, 'htpasswd'), r.stdout);
      authYaml = `auth:\n  htpasswd:\n    realm: basic-realm\n    path: ${path.join(this.dir, 'htpasswd')}\n`;
    }
    let tlsYaml = '';
    if (this.tls) {
      const key = path.join(this.dir, 'tls.key');
      const crt = path.join(this.dir, 'tls.crt');
      const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr || r.error}`);
      tlsYaml = `  tls:\n    certificate: ${crt}\n    key: ${key}\n`;
    }
    const cfg = path.join(this.dir, 'config.yml');
    writeFileSync(
      cfg,
      `version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: ${this.storage}\n  delete:\n    enabled: true\nhttp:\n  addr: ${this.host}\n${tlsYaml}${authYaml}`,
    );
    const proc = spawn(REGISTRY_BIN, ['serve', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#proc = proc;
    proc.stdout?.on('data', (d: Buffer) => (this.#log += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (this.#log += d.toString()));
    const spawnError = new Promise<never>((_, reject) => proc.once('error', (e) => reject(new Error(`${REGISTRY_BIN}: ${e.message}`))));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`docker-registry exited early:\n${this.#log}`);
      const up = await Promise.race([this.request('GET', '/v2/').then((r) => r.status > 0, () => false), spawnError]);
      if (up) return this;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`docker-registry did not come up:\n${this.#log}`);
  }

  /** A raw request to the registry (with the Basic credentials when it has auth). */
  request(method: string, p: string, headers: Record<string, string> = {}, body?: Buffer): Promise<RegistryAnswer> {
    const auth = this.auth ? { Authorization: `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64')}` } : {};
    return new Promise((resolve, reject) => {
      const mod = this.tls ? https : http;
      const req = mod.request({ host: '127.0.0.1', port: this.port, method, path: p, headers: { ...auth, ...headers }, rejectUnauthorized: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Uploads a blob into `repo` directly (POST + PUT ?digest=), for building test fixtures. */
  async putBlob(repo: string, data: Buffer): Promise<{ digest: string; size: number }> {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    const start = await this.request('POST', `/v2/${repo}/blobs/uploads/`);
    if (start.status !== 202) throw new Error(`POST upload: ${start.status} ${start.body}`);
    const loc = new URL(String(start.headers.location), `http://${this.host}`);
    loc.searchParams.set('digest', digest);
    const put = await this.request('PUT', `${loc.pathname}${loc.search}`, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(data.length) }, data);
    if (put.status !== 201) throw new Error(`PUT blob: ${put.status} ${put.body}`);
    return { digest, size: data.length };
  }

  /** PUTs a manifest (or index) document; returns its digest. */
  async putManifest(repo: string, ref: string, mediaType: string, doc: unknown): Promise<{ digest: string; size: number }> {
    const data = Buffer.from(JSON.stringify(doc));
    const r = await this.request('PUT', `/v2/${repo}/manifests/${ref}`, { 'Content-Type': mediaType, 'Content-Length': String(data.length) }, data);
    if (r.status !== 201) throw new Error(`PUT manifest: ${r.status} ${r.body}`);
    return { digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.length };
  }

  async stop(): Promise<void> {
    const p = this.#proc;
    if (p && p.exitCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A TCP relay in front of a registry that, once `armed`, cuts every
 * connection after `cutAfter` bytes of registry → client data: a network
 * failure in the middle of a blob download, on demand.
 */
export class CuttingProxy {
  armed = false;
  /** Once armed: 'cut' closes the connection, 'stall' just stops forwarding (a hung download). */
  mode: 'cut' | 'stall' = 'cut';
  #server: net.Server | null = null;
  readonly #sockets = new Set<net.Socket>();
  port = 0;

  constructor(
    readonly targetPort: number,
    readonly cutAfter = 1024 * 1024,
  ) {}

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.#server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      this.#sockets.add(client).add(upstream);
      let sent = 0;
      client.on('data', (c) => upstream.write(c));
      upstream.on('data', (c: Buffer) => {
        sent += c.length;
        if (this.armed && sent > this.cutAfter) {
          if (this.mode === 'stall') {
            upstream.pause();
            return;
          }
          client.destroy();
          upstream.destroy();
          return;
        }
        client.write(c);
      });
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}

/**
 * An HTTP proxy in front of a registry that refuses request bodies over
 * `maxBody` bytes with 413, as nginx's client_max_body_size does: at once,
 * before the body is read (and without `100 Continue` when the client asked
 * for it). It records each request's method, length and status.
 */
export class BodyLimitProxy {
  #server: http.Server | null = null;
  port = 0;
  readonly requests: string[] = [];

  constructor(
    readonly targetPort: number,
    readonly maxBody: number,
  ) {}

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const forward = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const length = Number(req.headers['content-length'] ?? 0);
      if (length > this.maxBody) {
        this.requests.push(`${req.method} ${length} 413`);
        res.writeHead(413, { Connection: 'close', 'Content-Type': 'text/plain' });
        res.end('request entity too large\n');
        req.resume();
        return;
      }
      const { expect: _expect, ...headers } = req.headers;
      const up = http.request({ host: '127.0.0.1', port: this.targetPort, method: req.method, path: req.url, headers }, (ures) => {
        this.requests.push(`${req.method} ${length} ${ures.statusCode}`);
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        ures.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    };
    this.#server = http.createServer(forward);
    // `Expect: 100-continue`: the go-ahead only for a body that fits, as nginx does.
    this.#server.on('checkContinue', (req, res) => {
      if (Number(req.headers['content-length'] ?? 0) <= this.maxBody) res.writeContinue();
      forward(req, res);
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}
