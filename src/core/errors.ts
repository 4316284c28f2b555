/**
 * The closed error taxonomy of Vessel (after containerd's errdefs).
 *
 * Every failure a user can see is one of these classes. Code wraps lower-level
 * failures with context and keeps the original as `cause`. Only
 * `src/daemon/http-errors.ts` maps them to HTTP status codes, and only the CLI
 * turns them into a one-line message and an exit code.
 *
 * Message style: capitalised, no trailing period, colon before detail, e.g.
 * `No such container: web`.
 */
export type ErrorKind =
  | 'NotFound'
  | 'AlreadyExists'
  | 'InvalidArgument'
  | 'FailedPrecondition'
  | 'Conflict'
  | 'NotModified'
  | 'Unavailable'
  | 'Internal';

export class VesselError extends Error {
  readonly kind: ErrorKind = 'Internal';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

export class NotFoundError extends VesselError {
  override readonly kind = 'NotFound' as const;
  override name = 'NotFoundError';
}
export class AlreadyExistsError extends VesselError {
  override readonly kind = 'AlreadyExists' as const;
  override name = 'AlreadyExistsError';
}
export class InvalidArgumentError extends VesselError {
  override readonly kind = 'InvalidArgument' as const;
  override name = 'InvalidArgumentError';
}
export class FailedPreconditionError extends VesselError {
  override readonly kind = 'FailedPrecondition' as const;
  override name = 'FailedPreconditionError';
}
export class ConflictError extends VesselError {
  override readonly kind = 'Conflict' as const;
  override name = 'ConflictError';
}
/** The operation had nothing to do (start of a running container); HTTP 304. */
export class NotModifiedError extends VesselError {
  override readonly kind = 'NotModified' as const;
  override name = 'NotModifiedError';
}
export class UnavailableError extends VesselError {
  override readonly kind = 'Unavailable' as const;
  override name = 'UnavailableError';
}
export class InternalError extends VesselError {
  override readonly kind = 'Internal' as const;
  override name = 'InternalError';
}

export function isVesselError(e: unknown): e is VesselError {
  return e instanceof VesselError;
}

/** A one-line, human-readable message for any thrown value. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message.split('\n')[0] ?? e.message;
  return String(e).split('\n')[0] ?? String(e);
}
