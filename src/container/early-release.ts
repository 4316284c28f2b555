/**
 * Releasing a container's host resources the moment its init exits. The
 * kernel says so at once through a pidfd (native `watchExit`), while conmon
 * still reaps the init and writes its exit files, which is when the daemon
 * learns the exit code. The release (unmount, cgroups, runtime state,
 * network) runs in that gap, and the exit handling then only waits for it.
 */
import { watchExit } from '../native/native.js';

export interface EarlyRelease {
  /** True once the release succeeded, false when it failed (the exit handling then releases again). */
  done: Promise<boolean>;
  /** Whether the cgroup had seen an OOM kill, read before the release removed it. */
  oomKilled: boolean;
}

export interface ReleaseHooks {
  /** False once the exit was handled by other means (then nothing is done). */
  stillRunning(): boolean;
  /** Read before the release, which removes the cgroup. */
  oomKilled(): boolean;
  release(): Promise<void>;
}

export class EarlyReleases {
  #pending = new Map<string, EarlyRelease>();

  /**
   * Watches the init `pid` of container `id`: once it exits, and while
   * `stillRunning()` holds (the exit was not handled meanwhile), reads
   * `oomKilled()` and runs `release`. Nothing happens when the process is
   * already gone.
   */
  watch(id: string, pid: number, hooks: ReleaseHooks): void {
    try {
      watchExit(pid, () => this.#begin(id, hooks));
    } catch {
      // No pidfd to poll: the exit file alone will do, as it did before.
    }
  }

  #begin(id: string, hooks: ReleaseHooks): void {
    if (this.#pending.has(id) || !hooks.stillRunning()) return;
    const oomKilled = hooks.oomKilled();
    const done = hooks.release().then(
      () => true,
      () => false,
    );
    this.#pending.set(id, { done, oomKilled });
  }

  /** The early release of `id`, if one began (consumed). */
  take(id: string): EarlyRelease | null {
    const r = this.#pending.get(id) ?? null;
    this.#pending.delete(id);
    return r;
  }
}
