/**
 * CLI-local failure types. They extend the core taxonomy so the top-level
 * handler can print every failure the same way (`vessel: <message>`).
 */
import { InvalidArgumentError } from '../core/errors.js';

/** Bad command line: unknown flag, missing argument, malformed value. */
export class UsageError extends InvalidArgumentError {
  override name = 'UsageError';
}
