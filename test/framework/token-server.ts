/**
 * `TokenServer`: a small Bearer token issuer for docker-registry's `auth.token`
 * mode (the role of Docker Hub's auth.docker.io). It checks Basic credentials,
 * grants the requested repository actions to that user, and signs an RS256
 * JWT whose `x5c` header carries a self-signed certificate (made with
 * openssl) that the registry trusts through `rootcertbundle`.
 */
import { spawnSync } from 'node:child_process';
import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';

export const TOKEN_SERVICE = 'vessel-test-registry';
export const TOKEN_ISSUER = 'vessel-test-issuer';

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export class TokenServer {
  readonly certFile: string;
  readonly #key: KeyObject;
  readonly #certDer: string;
  #server: http.Server | null = null;
  port = 0;
  /** Every token request: scopes asked for and whether credentials were right. */
  readonly requests: Array<{ scopes: string[]; user: string | null }> = [];

  /** `field` is the JSON member the token is returned in (registries use either). */
  constructor(
    readonly dir: string,
    readonly users: Record<string, string>,
    readonly field: 'token' | 'access_token' = 'token',
  ) {
    const keyFile = path.join(dir, 'token.key');
    this.certFile = path.join(dir, 'token.crt');
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', this.certFile, '-days', '2', '-subj', '/CN=vessel-test-token'], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr || r.error}`);
    this.#key = createPrivateKey(readFileSync(keyFile));
    const pem = readFileSync(this.certFile, 'utf8');
    this.#certDer = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  }

  get realm(): string {
    return `http://127.0.0.1:${this.port}/token`;
  }

  async start(): Promise<this> {
    this.#server = http.createServer((req, res) => this.#handle(req, res));
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this;
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    let user: string | null = null;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const [u, ...p] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
      if (!u || this.users[u] !== p.join(':')) {
        this.requests.push({ scopes: url.searchParams.getAll('scope'), user: null });
        res.writeHead(401, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ details: 'incorrect username or password' }));
        return;
      }
      user = u;
    }
    const scopes = url.searchParams.getAll('scope');
    this.requests.push({ scopes, user });
    // Anonymous callers get a token without access; users get what they ask for.
    const access = user
      ? scopes.map((s) => {
          const [type, name, actions] = s.split(':');
          return { type, name, actions: (actions ?? '').split(',').filter(Boolean) };
        })
      : [];
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [this.#certDer] };
    const claims = {
      iss: TOKEN_ISSUER,
      sub: user ?? '',
      aud: url.searchParams.get('service') ?? '',
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    };
    const signing = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${signing}.${b64url(sign('sha256', Buffer.from(signing), this.#key))}`;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ [this.field]: token, expires_in: 300 }));
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}
