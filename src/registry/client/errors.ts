/**
 * Registry error responses (`{"errors":[{"code","message","detail"}]}`)
 * turned into Vessel's error taxonomy, with one-line messages.
 */
import {
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
  type VesselError,
} from '../../core/errors.js';

/** The registry refused our credentials (or we had none). The daemon answers 401 for these on /auth. */
export class UnauthorizedError extends FailedPreconditionError {
  override name = 'UnauthorizedError';
}

/** `MANIFEST_UNKNOWN: manifest unknown` from a registry error body, or '' if there is none. */
export function registryErrorText(body: Buffer): string {
  try {
    const doc = JSON.parse(body.toString('utf8')) as { errors?: Array<{ code?: string; message?: string }> };
    const first = doc.errors?.[0];
    if (first) return [first.code, first.message].filter(Boolean).join(': ');
  } catch {
    /* not JSON */
  }
  const text = body.toString('utf8').trim().split('\n')[0] ?? '';
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

/** An error for a failed registry call: `what` says what we tried (`Fetching manifest of team/app:v1`). */
export function registryError(status: number, body: Buffer, what: string): VesselError {
  const detail = registryErrorText(body) || `HTTP ${status}`;
  const msg = `${what}: ${detail}`;
  if (status === 401 || status === 403) return new UnauthorizedError(msg);
  if (status === 404) return new NotFoundError(msg);
  if (status === 400 || status === 405 || status === 413 || status === 416) return new InvalidArgumentError(msg);
  if (status === 429 || status >= 502) return new UnavailableError(msg);
  return new InternalError(msg);
}
