/** The only place that maps Vessel's error taxonomy to HTTP status codes. */
import { VesselError, errorMessage, type ErrorKind } from '../core/errors.js';

const STATUS: Record<ErrorKind, number> = {
  NotFound: 404,
  AlreadyExists: 409,
  InvalidArgument: 400,
  FailedPrecondition: 409,
  Conflict: 409,
  NotModified: 304,
  Unavailable: 503,
  Internal: 500,
};

export function httpStatusOf(e: unknown): number {
  if (e instanceof VesselError) return STATUS[e.kind];
  if (e instanceof SyntaxError) return 400;
  return 500;
}

export function httpErrorBody(e: unknown): { message: string } {
  return { message: errorMessage(e) };
}
