/**
 * Answering a registry's `WWW-Authenticate` challenge.
 *
 * - Basic: the credentials go with every request to the host.
 * - Bearer: GET `realm?service=&scope=` (with Basic credentials if we have
 *   any), take `token` or `access_token` from the JSON answer, cache it per
 *   scope until it expires, and send `Authorization: Bearer`.
 *
 * The first 401 teaches us the scheme; the request is then retried once
 * (request bodies are Buffers, so a retry can resend them).
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { pickChallenge, parseChallenges, type Challenge } from './challenge.js';
import { isInsecureRegistry } from './endpoint.js';
import { UnauthorizedError, registryErrorText } from './errors.js';
import { Transport, readBody } from './transport.js';

export interface Credentials {
  username: string;
  password: string;
}

interface Token {
  value: string;
  expires: number;
}

export class RegistryAuth {
  #challenge: Challenge | null = null;
  readonly #tokens = new Map<string, Token>();

  constructor(
    readonly host: string,
    readonly credentials: Credentials | null,
    private readonly insecure: boolean,
  ) {}

  /** Whether a challenge has been seen (so headers() will authenticate). */
  get challenged(): boolean {
    return this.#challenge !== null;
  }

  /** Records the challenge of a 401 answer; false if there is nothing usable to answer it with. */
  learn(header: string | string[] | undefined): boolean {
    const c = pickChallenge(parseChallenges(header));
    if (!c) return false;
    this.#challenge = c;
    return c.scheme === 'bearer' || (c.scheme === 'basic' && this.credentials !== null);
  }

  /** Drops the cached token for `scope` (after it was refused). */
  forget(scope: string): void {
    this.#tokens.delete(scope);
  }

  /** The Authorization header for a request needing `scope`, or none when no challenge was seen. */
  async headers(scope: string): Promise<Record<string, string>> {
    const c = this.#challenge;
    if (!c) return {};
    if (c.scheme === 'basic') return this.credentials ? { Authorization: basicHeader(this.credentials) } : {};
    if (c.scheme !== 'bearer') return {};
    const cached = this.#tokens.get(scope);
    if (cached && cached.expires > Date.now()) return { Authorization: `Bearer ${cached.value}` };
    const token = await this.#fetchToken(c, scope);
    this.#tokens.set(scope, token);
    return { Authorization: `Bearer ${token.value}` };
  }

  async #fetchToken(c: Challenge, scope: string): Promise<Token> {
    const realm = c.params.realm;
    if (!realm) throw new InvalidArgumentError(`Registry ${this.host} sent a Bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new InvalidArgumentError(`Registry ${this.host} sent an invalid token realm: ${realm}`);
    }
    if (c.params.service) url.searchParams.set('service', c.params.service);
    for (const one of scope.split(' ').filter(Boolean)) url.searchParams.append('scope', one);
    const transport = new Transport(url.host, this.insecure || isInsecureRegistry(url.host));
    try {
      const headers: Record<string, string> = { Accept: 'application/json' };
      if (this.credentials) headers.Authorization = basicHeader(this.credentials);
      const res = await transport.send('GET', url.toString(), { headers });
      const body = await readBody(res, 1024 * 1024);
      if (res.statusCode === 401 || res.statusCode === 403) {
        throw new UnauthorizedError(`Authentication to ${this.host} failed: ${registryErrorText(body) || 'unauthorized'}`);
      }
      if ((res.statusCode ?? 0) >= 300) {
        throw new UnauthorizedError(`Token request to ${url.host} failed: HTTP ${res.statusCode}`);
      }
      let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
      try {
        doc = JSON.parse(body.toString('utf8')) as typeof doc;
      } catch {
        throw new UnauthorizedError(`Token server ${url.host} answered with invalid JSON`);
      }
      const value = typeof doc.token === 'string' && doc.token ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : '';
      if (!value) throw new UnauthorizedError(`Token server ${url.host} returned no token`);
      const ttl = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
      return { value, expires: Date.now() + Math.max(1, ttl - 5) * 1000 };
    } finally {
      transport.close();
    }
  }
}

export function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}
