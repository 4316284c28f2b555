/**
 * The parts of the API client that need no HTTP machinery: the daemon
 * address, and the mapping of transport failures and error responses to
 * VesselErrors. `vessel run`'s one-request path (run-request.ts) uses only
 * these, so it does not load node:http.
 */
import {
  ConflictError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  NotModifiedError,
  UnavailableError,
  type VesselError,
} from '../core/errors.js';

export type Endpoint = { kind: 'unix'; socketPath: string } | { kind: 'tcp'; hostname: string; port: number };

/** Parses `unix:///path`, `/path` or `tcp://host:port`. */
export function parseHost(spec: string): Endpoint {
  if (spec.startsWith('unix://')) {
    const socketPath = spec.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw new InvalidArgumentError(`invalid host: ${spec}: socket path must be absolute`);
    return { kind: 'unix', socketPath };
  }
  if (spec.startsWith('/')) return { kind: 'unix', socketPath: spec };
  if (spec.startsWith('tcp://')) {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(spec);
    if (!m) throw new InvalidArgumentError(`invalid host: ${spec}`);
    const hostname = (m[1] as string).replace(/^\[|\]$/g, '');
    return { kind: 'tcp', hostname, port: m[2] ? Number(m[2]) : 2375 };
  }
  throw new InvalidArgumentError(`invalid host: ${spec}: expected unix:///path or tcp://host:port`);
}

/** One UnavailableError for a failed connection to the daemon at `host`. */
export function transportError(host: string, e: Error): VesselError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ENOTDIR' || code === 'EHOSTUNREACH') {
    return new UnavailableError(`Cannot connect to the Vessel daemon at ${host}: is vesseld running?`, { cause: e });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new UnavailableError(`permission denied while trying to connect to the Vessel daemon at ${host}`, { cause: e });
  }
  return new UnavailableError(`error during connect to ${host}: ${e.message}`, { cause: e });
}

/** Maps a status and an error body (`{"message"}` or text) to a VesselError. */
export function errorFromResponse(status: number, body: Buffer, fallback?: string): VesselError {
  let message = '';
  const text = body.toString('utf8').trim();
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed?.message === 'string') message = parsed.message;
  } catch {
    message = text;
  }
  if (status === 304) return new NotModifiedError(message || 'Not modified');
  message = (message || fallback || `request failed with status ${status}`).split('\n')[0] as string;
  if (status === 400) return new InvalidArgumentError(message);
  if (status === 404) return new NotFoundError(message);
  if (status === 409) return new ConflictError(message);
  return new InternalError(message);
}
