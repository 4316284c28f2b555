/** Where a daemon keeps things, derived from its root; nothing is shared between two roots. */
import { createHash } from 'node:crypto';
import { statfsSync } from 'node:fs';
import path from 'node:path';

export interface DaemonPaths {
  root: string;
  db: string;
  images: string;
  containers: string;
  cache: string;
  run: string;
  runtimeRoot: string;
  exits: string;
  sockets: string;
  /**
   * runc's pid files (conmon asks for one per start; runc writes it with
   * O_SYNC, a disk write on every start when it lands on disk). The daemon
   * points this at a tmpfs when there is one (`pidFileDir`).
   */
  pids: string;
  /**
   * Scratch space for work in progress (build contexts, COPY staging): private
   * to this daemon, emptied at start-up, so a daemon killed mid-build leaves
   * nothing in the host's /tmp and nothing behind once its root is removed.
   */
  tmp: string;
  /** cgroup parent for every container of this daemon, e.g. `/vessel-1a2b3c4d`. */
  cgroupParent: string;
}

export function daemonPaths(root: string): DaemonPaths {
  const abs = path.resolve(root);
  const hash = createHash('sha256').update(abs).digest('hex').slice(0, 8);
  const run = path.join(abs, 'run');
  return {
    root: abs,
    db: path.join(abs, 'vessel.db'),
    images: abs,
    containers: path.join(abs, 'containers'),
    // Downloaded packages only (no state), so test daemons may share one.
    cache: process.env.VESSEL_CACHE_DIR || path.join(abs, 'cache'),
    run,
    runtimeRoot: path.join(run, 'runtime'),
    exits: path.join(run, 'exits'),
    sockets: path.join(run, 'sock'),
    pids: path.join(run, 'pids'),
    tmp: path.join(abs, 'tmp'),
    cgroupParent: `/vessel-${hash}`,
  };
}

export interface ContainerPaths {
  dir: string;
  specFile: string;
  upper: string;
  work: string;
  rootfs: string;
  log: string;
  persist: string;
  pidFile: string;
  conmonPidFile: string;
  hostname: string;
  hosts: string;
  resolvConf: string;
  execs: string;
}

export function containerPaths(p: DaemonPaths, id: string): ContainerPaths {
  const dir = path.join(p.containers, id);
  return {
    dir,
    specFile: path.join(dir, 'config.json'),
    upper: path.join(dir, 'upper'),
    work: path.join(dir, 'work'),
    rootfs: path.join(dir, 'rootfs'),
    log: path.join(dir, 'ctr.log'),
    persist: path.join(dir, 'persist'),
    pidFile: path.join(p.pids, `${id}.pid`),
    conmonPidFile: path.join(dir, 'conmon.pid'),
    hostname: path.join(dir, 'hostname'),
    hosts: path.join(dir, 'hosts'),
    resolvConf: path.join(dir, 'resolv.conf'),
    execs: path.join(dir, 'exec'),
  };
}

const TMPFS_MAGIC = 0x01021994;

/**
 * Where runc's pid files go: a directory of this daemon's own on /dev/shm when
 * that is a tmpfs (an O_SYNC write there costs nothing), else under `run/`.
 * The files live for the moment between `runc create` and conmon reading them.
 */
export function pidFileDir(p: DaemonPaths, shm = '/dev/shm'): string {
  try {
    if (statfsSync(shm).type === TMPFS_MAGIC) return path.join(shm, `vessel-${p.cgroupParent.replace(/^\/vessel-/, '')}-pids`);
  } catch {
    /* no /dev/shm */
  }
  return path.join(p.run, 'pids');
}
