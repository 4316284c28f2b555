/**
 * A container's cgroup, as the runtime created it from OCI `linux.cgroupsPath`
 * (cgroupfs driver): on cgroup v1 one directory per hierarchy,
 * `<root>/<controller>/<path>`; on pure v2 one directory, `<root>/<path>`.
 *
 * Reads the numbers `docker stats` needs and cleans up after the runtime, which
 * removes the container's own directory but never the shared parent.
 */
import { existsSync, readdirSync, readFileSync, realpathSync, rmdirSync, statfsSync } from 'node:fs';
import { readdir, readFile, rmdir } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { FailedPreconditionError, InternalError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { rmdirAll } from '../native/native.js';

export type CgroupVersion = 1 | 2;

export interface CgroupStats {
  cpuUsageNs: bigint;
  memoryUsage: number;
  /** The host's total memory when unlimited. */
  memoryLimit: number;
  memoryInactiveFile: number;
  pids: number;
  pidsLimit: number | null;
  blkioReadBytes: number;
  blkioWriteBytes: number;
  oomKillCount: number;
}

const DEFAULT_ROOT = '/sys/fs/cgroup';
const CGROUP2_SUPER_MAGIC = 0x63677270;
/** Linux reports /proc/stat in USER_HZ, which is 100 on every architecture we run on. */
const CLK_TCK = 100n;

/**
 * The host's own cgroup layout (under /sys/fs/cgroup) does not change while
 * the daemon runs, so it is probed once; other roots (tests) every time.
 */
let hostVersion: CgroupVersion | null = null;
let hostHierarchies: string[] | null = null;

/** 2 only when the root itself is cgroup2; a hybrid host's empty `unified` mount does not count. */
export function detectCgroupVersion(root: string = DEFAULT_ROOT): CgroupVersion {
  if (root !== DEFAULT_ROOT) return probeCgroupVersion(root);
  hostVersion ??= probeCgroupVersion(root);
  return hostVersion;
}

function probeCgroupVersion(root: string): CgroupVersion {
  try {
    if (statfsSync(root).type === CGROUP2_SUPER_MAGIC) return 2;
  } catch {
    // fall through to the file test
  }
  return existsSync(join(root, 'cgroup.controllers')) ? 2 : 1;
}

/** `/a/b` → `a/b`; anything that could leave the cgroup tree is refused. */
function relativePath(cgroupsPath: string): string {
  const parts = cgroupsPath.split('/').filter((p) => p !== '');
  if (!cgroupsPath.startsWith('/') || parts.length === 0 || parts.some((p) => p === '.' || p === '..'))
    throw new InvalidArgumentError(`Invalid cgroups path: ${cgroupsPath}`);
  return parts.join('/');
}

/** Every v1 hierarchy under the root, once each: `cpu` and `cpuacct` are often symlinks to one `cpu,cpuacct` mount. */
function hierarchies(root: string, version: CgroupVersion): string[] {
  if (version === 2) return [root];
  if (root !== DEFAULT_ROOT) return listHierarchies(root);
  if (hostHierarchies) return hostHierarchies;
  const list = listHierarchies(root);
  // An empty list means nothing is mounted yet: probe again next time.
  if (list.length) hostHierarchies = list;
  return list;
}

function listHierarchies(root: string): string[] {
  const seen = new Set<string>();
  for (const e of readdirSync(root, { withFileTypes: true })) {
    if (!e.isDirectory() && !e.isSymbolicLink()) continue;
    try {
      seen.add(realpathSync(join(root, e.name)));
    } catch {
      // dangling symlink
    }
  }
  return [...seen];
}

async function readText(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return null; // the controller is not enabled here, or the cgroup is gone
  }
}

async function readNumber(file: string): Promise<number | null> {
  const t = (await readText(file))?.trim();
  return t === undefined || t === '' || t === 'max' ? null : Number(t);
}

/** `key value` lines (memory.stat, cpu.stat, memory.events, memory.oom_control). */
async function readKeyed(file: string): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  for (const line of ((await readText(file)) ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) map.set(k, v);
  }
  return map;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The common case first: an empty leaf cgroup goes with one rmdir, done
 * synchronously (a quick syscall, no thread-pool round trip). True when `dir`
 * is gone; false when it needs the full treatment (children, busy).
 */
function removeLeafSync(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** rmdir children first; EBUSY means tasks are still leaving, so it is retried for a while. */
async function removeTree(dir: string): Promise<void> {
  if (removeLeafSync(dir)) return;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  for (const e of entries) if (e.isDirectory()) await removeTree(join(dir, e.name));
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || attempt >= 40) {
        throw new FailedPreconditionError(`Cannot remove cgroup ${dir}: ${code === 'EBUSY' ? 'still has processes' : code}`, {
          cause: e,
        });
      }
      await sleep(50);
    }
  }
}

/** Directories that exist at or below `dir`, deepest first. */
async function listTree(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) if (e.isDirectory()) out.push(...(await listTree(join(dir, e.name))));
  out.push(dir);
  return out;
}

export class ContainerCgroup {
  readonly root: string;
  readonly version: CgroupVersion;
  readonly path: string;
  readonly #rel: string;

  constructor(cgroupsPath: string, options: { root?: string; version?: CgroupVersion } = {}) {
    this.#rel = relativePath(cgroupsPath);
    this.path = `/${this.#rel}`;
    this.root = options.root ?? DEFAULT_ROOT;
    this.version = options.version ?? detectCgroupVersion(this.root);
  }

  /** The directory holding a controller's files. v1 finds the hierarchy even when co-mounted, e.g. `cpu,cpuacct`. */
  #dir(controller: string): string {
    if (this.version === 2) return join(this.root, this.#rel);
    let mount = join(this.root, controller);
    if (!existsSync(mount)) {
      const joined = readdirSync(this.root).find((n) => n.split(',').includes(controller));
      if (joined) mount = join(this.root, joined);
    }
    return join(mount, this.#rel);
  }

  async exists(): Promise<boolean> {
    if (this.version === 2) return existsSync(this.#dir(''));
    return ['pids', 'memory', 'cpu', 'cpuacct'].some((c) => existsSync(this.#dir(c)));
  }

  async readStats(): Promise<CgroupStats> {
    if (!(await this.exists())) throw new NotFoundError(`No such cgroup: ${this.path}`);
    const host = hostMemoryTotal();
    const [pids, pidsLimit, oomKillCount] = await Promise.all([
      readNumber(join(this.#dir('pids'), 'pids.current')),
      readNumber(join(this.#dir('pids'), 'pids.max')),
      this.oomKillCount(),
    ]);
    const common = { pids: pids ?? 0, pidsLimit, oomKillCount };
    if (this.version === 2) {
      const dir = this.#dir('');
      const [cpu, usage, limit, stat, io] = await Promise.all([
        readKeyed(join(dir, 'cpu.stat')),
        readNumber(join(dir, 'memory.current')),
        readNumber(join(dir, 'memory.max')),
        readKeyed(join(dir, 'memory.stat')),
        readText(join(dir, 'io.stat')),
      ]);
      // io.stat: `8:0 rbytes=1 wbytes=2 rios=3 ...` per device.
      let read = 0;
      let written = 0;
      for (const m of (io ?? '').matchAll(/\b([rw])bytes=(\d+)/g)) {
        if (m[1] === 'r') read += Number(m[2]);
        else written += Number(m[2]);
      }
      return {
        ...common,
        cpuUsageNs: BigInt(cpu.get('usage_usec') ?? '0') * 1000n,
        memoryUsage: usage ?? 0,
        memoryLimit: limit === null ? host : Math.min(limit, host),
        memoryInactiveFile: Number(stat.get('inactive_file') ?? 0),
        blkioReadBytes: read,
        blkioWriteBytes: written,
      };
    }
    const mem = this.#dir('memory');
    const [cpu, usage, limit, stat, blkio] = await Promise.all([
      readText(join(this.#dir('cpuacct'), 'cpuacct.usage')),
      readNumber(join(mem, 'memory.usage_in_bytes')),
      readNumber(join(mem, 'memory.limit_in_bytes')),
      readKeyed(join(mem, 'memory.stat')),
      this.#blkioV1(),
    ]);
    return {
      ...common,
      cpuUsageNs: BigInt(cpu?.trim() || '0'),
      memoryUsage: usage ?? 0,
      // "Unlimited" is a page-counter maximum near 2^63.
      memoryLimit: limit === null ? host : Math.min(limit, host),
      // total_ counts the subtree, which is what usage_in_bytes covers too.
      memoryInactiveFile: Number(stat.get('total_inactive_file') ?? stat.get('inactive_file') ?? 0),
      blkioReadBytes: blkio.read,
      blkioWriteBytes: blkio.write,
    };
  }

  /**
   * v1 byte counters. The throttle file works with any I/O scheduler, but
   * recent kernels (6.x) fill it only for cgroups that have a throttle rule;
   * the scheduler's own files (bfq, cfq) are the fallback. Without either the
   * kernel keeps no per-cgroup count and we report 0, as docker does.
   */
  async #blkioV1(): Promise<{ read: number; write: number }> {
    const dir = this.#dir('blkio');
    for (const name of ['blkio.throttle.io_service_bytes_recursive', 'blkio.bfq.io_service_bytes_recursive', 'blkio.io_service_bytes_recursive']) {
      let read = 0;
      let write = 0;
      // `8:0 Read 4096` per device and operation, then `Total N`.
      for (const line of ((await readText(join(dir, name))) ?? '').split('\n')) {
        const [dev, op, value] = line.trim().split(/\s+/);
        if (!dev?.includes(':') || value === undefined) continue;
        if (op === 'Read') read += Number(value);
        else if (op === 'Write') write += Number(value);
      }
      if (read || write) return { read, write };
    }
    return { read: 0, write: 0 };
  }

  /** Number of OOM kills recorded for this cgroup (v1: memory.oom_control 'oom_kill N'; v2: memory.events 'oom_kill N'). 0 if the cgroup is gone. */
  async oomKillCount(): Promise<number> {
    const file = this.version === 2 ? join(this.#dir(''), 'memory.events') : join(this.#dir('memory'), 'memory.oom_control');
    return Number((await readKeyed(file)).get('oom_kill') ?? 0);
  }

  /** As `oomKillCount`, synchronously; 0 when the file cannot be read (cgroup gone). */
  oomKillCountSync(): number {
    const file = this.version === 2 ? join(this.#dir(''), 'memory.events') : join(this.#dir('memory'), 'memory.oom_control');
    try {
      return Number(/^oom_kill (\d+)$/m.exec(readFileSync(file, 'utf8'))?.[1] ?? 0);
    } catch {
      return 0;
    }
  }

  /** All pids in the cgroup and its children: exec'd processes can land in sub-cgroups the container made. */
  async pids(): Promise<number[]> {
    let dir = this.#dir('pids');
    if (this.version === 1 && !existsSync(dir)) dir = this.#dir('cpu');
    const found = new Set<number>();
    for (const d of await listTree(dir)) {
      for (const line of ((await readText(join(d, 'cgroup.procs'))) ?? '').split('\n')) {
        if (/^\d+$/.test(line.trim())) found.add(Number(line));
      }
    }
    return [...found].sort((a, b) => a - b);
  }

  /** Remove the cgroup directories (all controllers), children first; ignore ENOENT; retry briefly on EBUSY. */
  async remove(): Promise<void> {
    const dirs = hierarchies(this.root, this.version).map((h) => join(h, this.#rel));
    try {
      // The common case: an empty leaf in each hierarchy, all removed in one thread-pool job.
      await rmdirAll(dirs);
      return;
    } catch {
      // Children or tasks still leaving: the thorough way below.
    }
    for (const d of dirs) await removeTree(d);
  }
}

/** Remove a whole parent like /vessel-abc123 (used by tests and daemon cleanup); returns the list of dirs that remained (should be []). */
export async function leftoverCgroups(parentPath: string, options: { root?: string } = {}): Promise<string[]> {
  const root = options.root ?? DEFAULT_ROOT;
  const rel = relativePath(parentPath);
  const left: string[] = [];
  for (const h of hierarchies(root, detectCgroupVersion(root))) {
    const dir = join(h, rel);
    try {
      await removeTree(dir);
    } catch {
      // reported below as what remained
    }
    left.push(...(await listTree(dir)));
  }
  return left;
}

/** Like docker's system_cpu_usage: user..softirq of the `cpu` line (guest time is already inside user and nice). */
export async function systemCpuUsageNs(): Promise<bigint> {
  const stat = await readFile('/proc/stat', 'utf8');
  const line = stat.split('\n').find((l) => l.startsWith('cpu '));
  const fields = line?.trim().split(/\s+/).slice(1, 8) ?? [];
  if (fields.length < 7) throw new InternalError('Unexpected /proc/stat format');
  const ticks = fields.reduce((sum, f) => sum + BigInt(f), 0n);
  return (ticks * 1_000_000_000n) / CLK_TCK;
}

/** CPUs online on the host (`0-3,6`), not the ones this process may use. */
export function onlineCpus(): number {
  try {
    let n = 0;
    for (const range of readFileSync('/sys/devices/system/cpu/online', 'utf8').trim().split(',')) {
      const [a, b] = range.split('-').map(Number) as [number, number | undefined];
      n += b === undefined ? 1 : b - a + 1;
    }
    if (n > 0) return n;
  } catch {
    // no sysfs
  }
  return cpus().length || 1;
}

export function hostMemoryTotal(): number {
  return totalmem();
}
