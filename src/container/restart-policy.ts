/**
 * Restart policies (Docker semantics), as pure decisions.
 *
 * - `no`: never restart.
 * - `always`: restart on every exit unless the user stopped it; a user-stopped
 *   container still comes back when the daemon starts.
 * - `unless-stopped`: like `always`, but a user-stopped container stays
 *   stopped across daemon restarts too.
 * - `on-failure[:N]`: restart only after a non-zero exit, at most N times
 *   (unlimited when N is 0).
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { RestartPolicy } from './model.js';

export interface ExitFacts {
  exitCode: number;
  manuallyStopped: boolean;
  restartCount: number;
  /** True when deciding at daemon start-up rather than at the moment of exit. */
  daemonStartup: boolean;
}

export function shouldRestart(policy: RestartPolicy | undefined, facts: ExitFacts): boolean {
  switch (policy?.Name ?? 'no') {
    case 'always':
      return !facts.manuallyStopped || facts.daemonStartup;
    case 'unless-stopped':
      return !facts.manuallyStopped;
    case 'on-failure': {
      if (facts.manuallyStopped || facts.exitCode === 0) return false;
      const max = policy?.MaximumRetryCount ?? 0;
      return max <= 0 || facts.restartCount < max;
    }
    default:
      return false;
  }
}

/** Back-off before restart number `restartCount + 1`: 100 ms doubling to 60 s; reset after 10 s of healthy running. */
export function restartDelayMs(restartCount: number, ranForMs: number): number {
  if (ranForMs >= 10_000) return 100;
  return Math.min(60_000, 100 * 2 ** Math.min(restartCount, 10));
}

export function parseRestartPolicy(value: string): RestartPolicy {
  const [name, count] = value.split(':');
  switch (name) {
    case '':
    case 'no':
      if (count !== undefined) break;
      return { Name: 'no' };
    case 'always':
    case 'unless-stopped':
      if (count !== undefined) break;
      return { Name: name };
    case 'on-failure': {
      if (count === undefined) return { Name: 'on-failure', MaximumRetryCount: 0 };
      const n = Number(count);
      if (!Number.isInteger(n) || n < 0) break;
      return { Name: 'on-failure', MaximumRetryCount: n };
    }
  }
  throw new InvalidArgumentError(`Invalid restart policy: ${value}`);
}

export function validateRestartPolicy(p: RestartPolicy | undefined): void {
  if (!p) return;
  if (!['', 'no', 'always', 'on-failure', 'unless-stopped'].includes(p.Name)) {
    throw new InvalidArgumentError(`Invalid restart policy: ${p.Name}`);
  }
  if (p.Name !== 'on-failure' && p.MaximumRetryCount) {
    throw new InvalidArgumentError(`Maximum retry count cannot be used with restart policy '${p.Name}'`);
  }
  if ((p.MaximumRetryCount ?? 0) < 0) throw new InvalidArgumentError('Maximum retry count cannot be negative');
}
