/** Small node:http helpers shared by the registry's request handlers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RegistryError } from './errors.js';

export type Headers = Record<string, string | number>;

export function send(res: ServerResponse, status: number, headers: Headers = {}, body?: string | Buffer): void {
  const h: Headers = { ...headers };
  if (body !== undefined && h['Content-Length'] === undefined) h['Content-Length'] = Buffer.byteLength(body);
  if (body === undefined && h['Content-Length'] === undefined) h['Content-Length'] = 0;
  res.writeHead(status, h);
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Headers = {}): void {
  send(res, status, { 'Content-Type': 'application/json', ...headers }, JSON.stringify(value));
}

export function sendError(res: ServerResponse, err: RegistryError): void {
  send(res, err.status, { 'Content-Type': 'application/json', ...err.headers }, err.body());
}

/** Reads the whole body; SIZE_INVALID (413) past `limit` bytes. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function tooLarge(limit: number): RegistryError {
  return new RegistryError('SIZE_INVALID', `Payload too large: the limit is ${limit} bytes`, { status: 413 });
}

/** Whether the request announces a body (Content-Length > 0 or chunked). */
export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  if (len !== undefined) return Number(len) > 0;
  return req.headers['transfer-encoding'] !== undefined;
}

/** `?n=&last=` pagination over a sorted list; the Link header when more remain. */
export function paginate(all: string[], url: URL): { items: string[]; link?: string } {
  const last = url.searchParams.get('last');
  const nRaw = url.searchParams.get('n');
  let items = last ? all.filter((x) => x > last) : all;
  if (nRaw === null) return { items };
  const n = Number(nRaw);
  if (!Number.isSafeInteger(n) || n < 0) throw new RegistryError('UNSUPPORTED', `Invalid page size: ${nRaw}`, { status: 400 });
  const more = items.length > n;
  items = items.slice(0, n);
  if (!more || items.length === 0) return { items };
  const next = new URL(url.pathname, 'http://x');
  next.searchParams.set('n', String(n));
  next.searchParams.set('last', items[items.length - 1] as string);
  return { items, link: `<${next.pathname}${next.search}>; rel="next"` };
}
