/**
 * HTTP(S) to one registry host. HTTPS first; plain HTTP only when the host
 * is insecure (loopback, `--insecure-registry`, `--insecure`), after HTTPS
 * failed, as Docker does. The scheme that worked is remembered per host for
 * the life of the process. Insecure hosts also skip TLS certificate checks.
 *
 * Every request has an idle timeout; transport failures become one
 * UnavailableError naming the registry.
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { UnavailableError, InvalidArgumentError } from '../../core/errors.js';
import { VERSION } from '../../version.js';

/** A body streamed from its source; `open` is called once per attempt, so an auth retry can resend it. */
export interface StreamBody {
  readonly length: number;
  open(): Readable;
}

export interface SendOptions {
  headers?: Record<string, string>;
  body?: Buffer | StreamBody;
}

const USER_AGENT = `vessel/${VERSION}`;
const IDLE_TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 5;
/** How long a streamed body waits for `100 Continue` before it is sent regardless. */
const CONTINUE_WAIT_MS = 1000;
/** Scheme that worked, per host (`127.0.0.1:5000` → `http`). */
const knownScheme = new Map<string, 'https' | 'http'>();

export class Transport {
  readonly #httpAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  readonly #httpsAgent: https.Agent;

  constructor(
    readonly host: string,
    readonly insecure: boolean,
  ) {
    this.#httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 8, rejectUnauthorized: !insecure });
  }

  /** The base URL in use (after negotiation), e.g. `http://127.0.0.1:5000`. */
  get base(): string {
    return `${knownScheme.get(this.host) ?? 'https'}://${this.host}`;
  }

  /**
   * Sends a request; `target` is a path on the registry (`/v2/...`) or an
   * absolute URL (upload `Location`s, redirects). Redirects of GET/HEAD are
   * followed; credentials are dropped when a redirect leaves the host.
   */
  async send(method: string, target: string, opts: SendOptions = {}): Promise<http.IncomingMessage> {
    if (!knownScheme.has(this.host) && !/^https?:\/\//.test(target)) await this.#negotiate();
    let url = new URL(target, this.base);
    let headers = { ...opts.headers };
    for (let hop = 0; ; hop++) {
      const res = await this.#once(method, url, headers, opts.body);
      const loc = res.headers.location;
      if ((method === 'GET' || method === 'HEAD') && [301, 302, 303, 307, 308].includes(res.statusCode ?? 0) && loc) {
        if (hop >= MAX_REDIRECTS) throw new UnavailableError(`Too many redirects from registry ${this.host}`);
        res.resume();
        const next = new URL(loc, url);
        if (next.host !== url.host) {
          const { Authorization: _drop, ...rest } = headers;
          headers = rest;
        }
        url = next;
        continue;
      }
      return res;
    }
  }

  /** Frees pooled sockets. */
  close(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }

  async #negotiate(): Promise<void> {
    try {
      const res = await this.#once('GET', new URL(`https://${this.host}/v2/`), {}, undefined);
      res.resume();
      knownScheme.set(this.host, 'https');
    } catch (e) {
      if (!this.insecure) throw e;
      const res = await this.#once('GET', new URL(`http://${this.host}/v2/`), {}, undefined);
      res.resume();
      knownScheme.set(this.host, 'http');
    }
  }

  #once(method: string, url: URL, headers: Record<string, string>, body: Buffer | StreamBody | undefined): Promise<http.IncomingMessage> {
    if (url.protocol === 'http:' && !this.insecure) {
      return Promise.reject(new InvalidArgumentError(`Refusing plain HTTP to registry ${url.host}: it is not an insecure registry`));
    }
    const mod = url.protocol === 'https:' ? https : http;
    const agent = url.protocol === 'https:' ? this.#httpsAgent : this.#httpAgent;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, {
        method,
        agent,
        headers: {
          'User-Agent': USER_AGENT,
          ...(body ? { 'Content-Length': String(body.length) } : method === 'PUT' || method === 'POST' || method === 'PATCH' ? { 'Content-Length': '0' } : {}),
          // A streamed body waits for the server's go-ahead, so a refusal (413, 401)
          // comes back as a response instead of a broken pipe halfway through.
          ...(isStream(body) ? { Expect: '100-continue' } : {}),
          ...headers,
        },
      });
      req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
      let sending = false;
      req.on('response', (res) => {
        res.setTimeout(IDLE_TIMEOUT_MS, () => res.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
        // Answered before the body went out: the connection cannot be reused.
        if (isStream(body) && !sending) res.once('end', () => req.destroy());
        resolve(res);
      });
      req.on('error', (e) => reject(transportError(url.host, e)));
      if (!isStream(body)) {
        req.end(body);
        return;
      }
      const stream = body;
      const send = (): void => {
        if (sending) return;
        sending = true;
        clearTimeout(noContinue);
        const source = stream.open();
        source.on('error', (e) => req.destroy(e));
        source.pipe(req);
      };
      // A server that ignores Expect never says 100: send anyway after a while, as curl does.
      const noContinue = setTimeout(send, CONTINUE_WAIT_MS);
      req.on('continue', send);
      req.on('response', () => clearTimeout(noContinue));
      req.flushHeaders();
    });
  }
}

function isStream(body: Buffer | StreamBody | undefined): body is StreamBody {
  return body !== undefined && !Buffer.isBuffer(body);
}

function transportError(host: string, e: Error): UnavailableError {
  const code = (e as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOTFOUND' || code === 'EAI_AGAIN'
      ? 'host not found'
      : code === 'ECONNREFUSED'
        ? 'connection refused'
        : code === 'ETIMEDOUT'
          ? 'timed out'
          : e.message;
  return new UnavailableError(`Cannot reach registry ${host}: ${why}`, { cause: e });
}

/** Reads a whole (small) response body, refusing more than `limit` bytes. */
export function readBody(res: http.IncomingMessage, limit = 16 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    res.on('data', (c: Buffer) => {
      n += c.length;
      if (n > limit) {
        res.destroy();
        reject(new InvalidArgumentError(`Registry response too large (over ${limit} bytes)`));
        return;
      }
      chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
  });
}
