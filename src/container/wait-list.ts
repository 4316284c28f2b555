/**
 * Clients waiting on a container (`POST /containers/{id}/wait`, and the
 * daemon's own stop and run): each waits for one condition, and is answered
 * with the container's exit code and error once the manager reports that the
 * condition came to pass.
 */
import type { WaitCondition } from './manager-types.js';

export interface WaitResult {
  StatusCode: number;
  Error: { Message: string } | null;
}

interface Waiter {
  condition: WaitCondition;
  resolve: (r: WaitResult) => void;
}

export class WaitList {
  #byId = new Map<string, Waiter[]>();

  /** Resolves at the next `notify` of `id` that names `condition`. */
  add(id: string, condition: WaitCondition): Promise<WaitResult> {
    return new Promise((resolve) => {
      const list = this.#byId.get(id) ?? [];
      list.push({ condition, resolve });
      this.#byId.set(id, list);
    });
  }

  /** Answers the waiters of `id` whose condition is among `conditions`; the others keep waiting. */
  notify(id: string, state: { ExitCode: number; Error: string }, conditions: WaitCondition[]): void {
    const list = this.#byId.get(id);
    if (!list) return;
    const keep = list.filter((w) => !conditions.includes(w.condition));
    const result: WaitResult = { StatusCode: state.ExitCode, Error: state.Error ? { Message: state.Error } : null };
    for (const w of list) if (conditions.includes(w.condition)) w.resolve(result);
    if (keep.length) this.#byId.set(id, keep);
    else this.#byId.delete(id);
  }

  /** How many waiters `id` has (for tests). */
  count(id: string): number {
    return this.#byId.get(id)?.length ?? 0;
  }
}
