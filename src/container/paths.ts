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
  /**
   * Runtime state that means nothing after a reboot (Docker's exec root):
   * runc's state, conmon's exit files, sockets and pid files, and each
   * container's bundle. On a tmpfs when there is one (`execRootFor`), so the
   * two dozen files a container start creates and its removal deletes never
   * touch the disk.
   */
  run: string;
  runtimeRoot: string;
  exits: string;
  sockets: string;
  /** runc's pid files (conmon asks for one per start; runc writes it with O_SYNC). */
  pids: string;
  /** Each container's bundle: config.json, conmon's files, the /etc files, exec sessions. */
  bundles: string;
  /**
   * Scratch space for work in progress (build contexts, COPY staging): private
   * to this daemon, emptied at start-up, so a daemon killed mid-build leaves
   * nothing in the host's /tmp and nothing behind once its root is removed.
   */
  tmp: string;
  /** The same on the exec root (the bundles of removed containers, on their way out). */
  runTmp: string;
  /** cgroup parent for every container of this daemon, e.g. `/vessel-1a2b3c4d`. */
  cgroupParent: string;
}

/** The tag that keeps two daemons apart on one host: from the root's absolute path. */
function rootTag(abs: string): string {
  return createHash('sha256').update(abs).digest('hex').slice(0, 8);
}

/** `execRoot` defaults to `execRootFor(root)`. */
export function daemonPaths(root: string, execRoot?: string): DaemonPaths {
  const abs = path.resolve(root);
  const hash = rootTag(abs);
  const run = path.resolve(execRoot ?? execRootFor(abs));
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
    bundles: path.join(run, 'containers'),
    tmp: path.join(abs, 'tmp'),
    runTmp: path.join(run, 'tmp'),
    cgroupParent: `/vessel-${hash}`,
  };
}

export interface ContainerPaths {
  /** On disk, under the root: the writable layer, the mount point, the log. */
  dir: string;
  /** Under the exec root: what conmon and the runtime need while the container runs. */
  bundle: string;
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
  const bundle = path.join(p.bundles, id);
  return {
    dir,
    bundle,
    specFile: path.join(bundle, 'config.json'),
    upper: path.join(dir, 'upper'),
    work: path.join(dir, 'work'),
    rootfs: path.join(dir, 'rootfs'),
    log: path.join(dir, 'ctr.log'),
    persist: path.join(bundle, 'persist'),
    pidFile: path.join(p.pids, `${id}.pid`),
    conmonPidFile: path.join(bundle, 'conmon.pid'),
    // Written afresh at every start (as Podman does), so they live with the bundle.
    hostname: path.join(bundle, 'hostname'),
    hosts: path.join(bundle, 'hosts'),
    resolvConf: path.join(bundle, 'resolv.conf'),
    execs: path.join(bundle, 'exec'),
  };
}

const TMPFS_MAGIC = 0x01021994;

function isTmpfs(dir: string): boolean {
  try {
    return statfsSync(dir).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * The default exec root of the daemon whose root is `root`: `vessel-<tag>` on
 * the first of `tmpfsDirs` that is a tmpfs (/run, else /dev/shm), else
 * `<root>/run`. The tag comes from the root's path, so two daemons never share
 * one. A tmpfs matters beyond speed: an ext4 without a journal (as on these
 * machines) skips every inode freed in the last minute when it allocates one,
 * so files made and deleted per container on disk slow every later start.
 */
export function execRootFor(root: string, tmpfsDirs = ['/run', '/dev/shm']): string {
  const abs = path.resolve(root);
  const tmpfs = tmpfsDirs.find(isTmpfs);
  return tmpfs ? path.join(tmpfs, `vessel-${rootTag(abs)}`) : path.join(abs, 'run');
}
