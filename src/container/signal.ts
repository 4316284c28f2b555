/** Signal names as users type them (`kill -s HUP`, `SIGTERM`, `9`). */
import { InvalidArgumentError } from '../core/errors.js';

export function normalizeSignal(sig: string): string {
  const s = sig.toUpperCase();
  if (/^\d+$/.test(s)) return s;
  const name = s.startsWith('SIG') ? s : `SIG${s}`;
  if (!/^SIG[A-Z0-9+-]+$/.test(name)) throw new InvalidArgumentError(`Invalid signal: ${sig}`);
  return name;
}
