/**
 * Releasing what a started container holds on the host: the rootfs mount,
 * the runtime's state, the cgroups and the network. The steps are independent
 * and run together: the unmount on a thread-pool thread (a millisecond of
 * kernel time), the state and cgroups meanwhile, the network teardown too.
 */
import { existsSync, promises as fs, rmdirSync, unlinkSync } from 'node:fs';
import type { NetworkManager } from '../network/network-manager.js';
import { releaseBundle } from './bundle.js';
import { ContainerCgroup } from './cgroups.js';
import type { ContainerPaths } from './paths.js';
import type { OciRuntime } from './runtime.js';

export interface ReleaseTarget {
  id: string;
  paths: ContainerPaths;
  runtime: OciRuntime;
  /** The container's cgroup path, e.g. `/vessel-<tag>/<id>`. */
  cgroupPath: string;
  networks: Pick<NetworkManager, 'teardown'>;
  /** The init process that exited, when that is known. */
  exitedPid: number | null;
  /** The init is known to have exited (a pidfd said so), though conmon may not have reaped it yet. */
  initExited?: boolean;
}

export async function releaseContainer(t: ReleaseTarget): Promise<void> {
  const results = await Promise.allSettled([releaseBundle(t.paths), releaseRuntimeState(t), t.networks.teardown(t.id)]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** The runtime's state and the container's cgroups. */
async function releaseRuntimeState(t: ReleaseTarget): Promise<void> {
  const { runtime } = t;
  const cgroup = new ContainerCgroup(t.cgroupPath);
  const stateDir = `${runtime.root}/${t.id}`;
  try {
    if (existsSync(stateDir)) {
      // Once the init process has exited (a private pid namespace takes every
      // other process with it), `runc delete` only removes the cgroups and the
      // state directory; doing that here saves a runtime process per exit.
      if (t.initExited || (t.exitedPid && !existsSync(`/proc/${t.exitedPid}`))) {
        await Promise.all([cgroup.remove(), removeRuntimeStateDir(stateDir)]);
        return;
      }
      if (existsSync(runtime.binary)) await runtime.delete(t.id);
    }
  } catch {
    try {
      if (existsSync(runtime.binary)) await runtime.delete(t.id);
    } finally {
      await cgroup.remove().catch(() => {});
    }
    return;
  }
  await cgroup.remove().catch(() => {});
}

/**
 * runc's state directory of an exited container: state.json alone, so two
 * syscalls (on the caller's thread, cheaper than two thread-pool round trips)
 * rather than a recursive walk.
 */
async function removeRuntimeStateDir(dir: string): Promise<void> {
  try {
    unlinkSync(`${dir}/state.json`);
    rmdirSync(dir);
  } catch {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** conmon's OOM marker, or the cgroup's OOM-kill count (one small file, read synchronously). */
export function sawOomKill(persistDir: string, cgroupPath: string): boolean {
  return existsSync(`${persistDir}/oom`) || new ContainerCgroup(cgroupPath).oomKillCountSync() > 0;
}
