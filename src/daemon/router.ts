/**
 * A minimal router for the daemon's HTTP API. Paths may carry a `/v1.NN`
 * version prefix (Docker clients always send one). Image names appear in
 * paths unescaped (`/images/127.0.0.1:5000/app:v1/json`), so patterns are
 * regular expressions with greedy groups where a name may contain slashes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: string[];
  query: URLSearchParams;
  /** Set for `Upgrade` requests: the raw socket and any bytes already read. */
  upgrade?: { socket: Duplex; head: Buffer };
}

export type Handler = (ctx: RequestContext) => Promise<void> | void;

interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

export class Router {
  #routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler): this {
    this.#routes.push({ method, pattern: new RegExp(`^${pattern}$`), handler });
    return this;
  }

  match(method: string, rawPath: string): { handler: Handler; params: string[] } | null {
    const path = rawPath.replace(/^\/v\d+\.\d+(?=\/)/, '');
    for (const r of this.#routes) {
      if (r.method !== method && !(method === 'HEAD' && r.method === 'GET')) continue;
      const m = r.pattern.exec(path);
      if (m) return { handler: r.handler, params: m.slice(1).map((s) => decodeURIComponent(s ?? '')) };
    }
    return null;
  }
}

/** Docker's boolean query parsing: '', 0, no, false, none are false. */
export function boolParam(q: URLSearchParams, name: string, dflt = false): boolean {
  const v = q.get(name);
  if (v === null) return dflt;
  return !['', '0', 'no', 'false', 'none'].includes(v.toLowerCase());
}

/** Docker `filters`: JSON map form `{"k":{"v":true}}` or legacy list form `{"k":["v"]}`. */
export function parseFilters(q: URLSearchParams): Record<string, string[]> {
  const raw = q.get('filters');
  if (!raw) return {};
  const parsed = JSON.parse(raw) as Record<string, string[] | Record<string, boolean>>;
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(parsed)) {
    out[k] = Array.isArray(v) ? v.map(String) : Object.keys(v).filter((x) => v[x]);
  }
  return out;
}

export async function readBody(req: IncomingMessage, limit = 16 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) throw new Error('Request body too large');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function readJson<T>(req: IncomingMessage): Promise<T> {
  const body = await readBody(req);
  if (body.length === 0) return {} as T;
  return JSON.parse(body.toString('utf8')) as T;
}
