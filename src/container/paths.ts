/** Where a daemon keeps things, derived from its root; nothing is shared between two roots. */
import { createHash } from 'node:crypto';
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
    pidFile: path.join(dir, 'pid'),
    conmonPidFile: path.join(dir, 'conmon.pid'),
    hostname: path.join(dir, 'hostname'),
    hosts: path.join(dir, 'hosts'),
    resolvConf: path.join(dir, 'resolv.conf'),
    execs: path.join(dir, 'exec'),
  };
}
