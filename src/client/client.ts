/**
 * A typed HTTP client for vesseld's Docker Engine API (v1.41), over a unix
 * socket or plain TCP. Every non-success status becomes the matching
 * VesselError subclass carrying the daemon's `{"message"}`, and transport
 * failures become one UnavailableError, so callers never see raw errno noise.
 */
import http from 'node:http';
import type net from 'node:net';
import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { InternalError, UnavailableError, type VesselError } from '../core/errors.js';
import { API_VERSION, VERSION } from '../version.js';
import { errorFromResponse, parseHost, transportError, type Endpoint } from './endpoint.js';

export { API_VERSION };
export { errorFromResponse, parseHost, transportError, type Endpoint };
export const DEFAULT_HOST = 'unix:///run/vessel/vessel.sock';

export type QueryValue = string | number | boolean | undefined | null;

export interface RequestOptions {
  query?: Record<string, QueryValue>;
  /** A plain value is sent as JSON; a Buffer or Readable as-is. */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface ClientResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export class VesselClient {
  readonly host: string;
  readonly endpoint: Endpoint;
  readonly #agent = new http.Agent({ keepAlive: true });

  constructor(host: string = DEFAULT_HOST) {
    this.host = host;
    this.endpoint = parseHost(host);
  }

  /** `/v1.41/path?query`; booleans become 1/0, empty values are left out. */
  url(path: string, query?: Record<string, QueryValue>): string {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined || v === null) continue;
      qs.append(k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v));
    }
    const q = qs.toString();
    return `/v${API_VERSION}${path}${q ? `?${q}` : ''}`;
  }

  /** Sends a request and buffers the whole response, whatever its status. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<ClientResponse> {
    const res = await this.#send(method, path, opts);
    const body = await readAll(res);
    return { status: res.statusCode ?? 0, headers: res.headers, body };
  }

  /** Like request, but throws on any status other than 2xx. */
  async call(method: string, path: string, opts: RequestOptions = {}): Promise<ClientResponse> {
    const r = await this.request(method, path, opts);
    if (r.status < 200 || r.status >= 300) throw errorFromResponse(r.status, r.body);
    return r;
  }

  /** Sends a request and decodes a JSON response body (undefined when empty). */
  async json<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const r = await this.call(method, path, opts);
    if (r.body.length === 0) return undefined as T;
    try {
      return JSON.parse(r.body.toString('utf8')) as T;
    } catch {
      throw new InternalError(`Invalid JSON from the daemon for ${method} ${path}`);
    }
  }

  /**
   * Starts a request whose body is consumed as it arrives (logs, wait,
   * JSON-lines progress). Resolves once the headers are in.
   */
  async stream(method: string, path: string, opts: RequestOptions = {}): Promise<http.IncomingMessage> {
    const res = await this.#send(method, path, opts);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw errorFromResponse(status, await readAll(res));
    return res;
  }

  /**
   * Hijacks a connection for attach/exec: sends `Connection: Upgrade`,
   * `Upgrade: tcp`, and resolves with the raw socket after a 101.
   */
  upgrade(method: string, path: string, opts: RequestOptions = {}): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const req = this.#rawRequest(method, path, opts, {
        Connection: 'Upgrade',
        Upgrade: 'tcp',
      }, false);
      req.on('upgrade', (res, socket, head) => {
        if (res.statusCode !== 101) {
          socket.destroy();
          reject(new InternalError(`unable to upgrade to tcp, received ${res.statusCode}`));
          return;
        }
        // Bytes that arrived with the 101 belong to the stream.
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      req.on('response', (res) => {
        readAll(res).then(
          (body) => reject(errorFromResponse(res.statusCode ?? 0, body, `unable to upgrade to tcp, received ${res.statusCode}`)),
          reject,
        );
      });
      req.on('error', (e) => reject(this.#transportError(e)));
      writeBody(req, opts.body);
    });
  }

  /** Frees pooled keep-alive sockets so the process can exit. */
  close(): void {
    this.#agent.destroy();
  }

  #send(method: string, path: string, opts: RequestOptions): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = this.#rawRequest(method, path, opts, {}, true);
      req.on('response', resolve);
      req.on('error', (e) => reject(this.#transportError(e)));
      writeBody(req, opts.body);
    });
  }

  #rawRequest(
    method: string,
    path: string,
    opts: RequestOptions,
    extra: Record<string, string>,
    pooled: boolean,
  ): http.ClientRequest {
    const headers: Record<string, string> = {
      Host: 'vessel',
      'User-Agent': `Vessel-Client/${VERSION} (${process.platform})`,
      ...extra,
      ...opts.headers,
    };
    const b = opts.body;
    if (b !== undefined && !Buffer.isBuffer(b) && !(b instanceof Readable)) {
      headers['Content-Type'] ??= 'application/json';
    }
    const target =
      this.endpoint.kind === 'unix'
        ? { socketPath: this.endpoint.socketPath }
        : { host: this.endpoint.hostname, port: this.endpoint.port };
    const options: http.RequestOptions & { servername: string } = {
      ...target,
      method,
      path: this.url(path, opts.query),
      headers,
      // Hijacked connections must not go back into the keep-alive pool.
      agent: pooled ? this.#agent : false,
      // No TLS here: an empty server name stops the agent from deriving one
      // from the Host header, whose first net.isIP() compiles a large regular
      // expression (milliseconds of every CLI run).
      servername: '',
    };
    return http.request(options);
  }

  #transportError(e: Error): VesselError {
    return transportError(this.host, e);
  }
}


function writeBody(req: http.ClientRequest, body: unknown): void {
  if (body === undefined) {
    req.end();
  } else if (Buffer.isBuffer(body)) {
    req.end(body);
  } else if (body instanceof Readable) {
    body.on('error', (e) => req.destroy(e));
    body.pipe(req);
  } else {
    req.end(JSON.stringify(body));
  }
}

export function readAll(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      ended = true;
      resolve(Buffer.concat(chunks));
    });
    stream.on('error', (e) => reject(new UnavailableError(`connection to the daemon failed: ${e.message}`, { cause: e })));
    // A connection dropped mid-body must not leave the caller waiting forever.
    stream.on('close', () => {
      if (!ended) reject(new UnavailableError('connection to the daemon closed before the response was complete'));
    });
  });
}


/** Yields each JSON object of a newline-delimited JSON stream. */
export async function* jsonLines<T = Record<string, unknown>>(stream: Readable): AsyncGenerator<{ value: T; raw: string }> {
  // A decoder keeps multi-byte characters split across chunks intact.
  const decoder = new StringDecoder('utf8');
  let buf = '';
  for await (const chunk of stream) {
    buf += typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer);
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const raw = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (raw) yield { value: parseLine<T>(raw), raw };
    }
  }
  const rest = (buf + decoder.end()).trim();
  if (rest) yield { value: parseLine<T>(rest), raw: rest };
}

function parseLine<T>(raw: string): T {
  try {
    return JSON.parse(raw) as T;
  } catch {
    throw new InternalError(`Invalid JSON in stream from the daemon: ${raw.slice(0, 80)}`);
  }
}
