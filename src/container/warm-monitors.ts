/**
 * conmon started ahead for created containers. Docker clients send `create`,
 * then `attach`/`wait`, then `start`; a conmon spawned at create has done its
 * own start (exec, dynamic linking, argument parsing) by the time the start
 * arrives, and waits on its start pipe. One unused after `ttlMs`, or whose
 * container is removed, or left when the daemon stops, is killed; one left by
 * a daemon that dies is killed by the kernel (its parent-death signal is
 * SIGKILL, see native/spawn.c), since conmon takes the start pipe's end of
 * file as a go-ahead.
 */
import type { PendingCreate } from './conmon.js';

export class WarmMonitors {
  #warm = new Map<string, { pending: PendingCreate; timer: NodeJS.Timeout }>();

  /** `max`: at most this many at once, so a burst of creates does not start a burst of conmons. */
  constructor(private readonly ttlMs = 10_000, private readonly max = 8) {}

  /** Spawns one for `id` with `spawn` unless there is one, or too many; a failing spawn is left to the start to report. */
  prepare(id: string, spawn: () => PendingCreate): void {
    if (this.#warm.size >= this.max || this.#warm.has(id)) return;
    let pending: PendingCreate;
    try {
      pending = spawn();
    } catch {
      return;
    }
    const timer = setTimeout(() => this.drop(id), this.ttlMs);
    timer.unref();
    this.#warm.set(id, { pending, timer });
  }

  /** The container's conmon if it still waits (it is then the caller's), else null. */
  take(id: string): PendingCreate | null {
    const w = this.#warm.get(id);
    if (!w) return null;
    clearTimeout(w.timer);
    this.#warm.delete(id);
    if (w.pending.waiting()) return w.pending;
    w.pending.abort();
    return null;
  }

  /** Kills the container's waiting conmon, if any. */
  drop(id: string): void {
    this.take(id)?.abort();
  }

  dropAll(): void {
    for (const id of [...this.#warm.keys()]) this.drop(id);
  }
}
