/**
 * A VM's own cgroup: `<parent>/<name>` in the cpu, cpuacct and memory
 * hierarchies on cgroup v1 (this host is hybrid, with cpu and cpuacct possibly
 * mounted separately), or one directory on cgroup v2.
 *
 * QEMU is multi-threaded (vCPU, I/O and RCU threads); addProcess moves the
 * whole thread group and then checks every thread, moving stragglers created
 * during the move one by one through `tasks` (v1).
 *
 * Weight is docker/v2-style 1..10000 (100 = default share). v1 maps it to
 * cpu.shares = weight × 1024 / 100, so ratios between VMs are the same on both.
 */
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { detectCgroupVersion, type CgroupVersion } from '../container/cgroups.js';

export interface VmCgroupOptions {
  /** Default /sys/fs/cgroup. */
  root?: string;
  /** Default: detected from the root. */
  version?: CgroupVersion;
}

const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory'] as const;
type V1Controller = (typeof V1_CONTROLLERS)[number];
const CFS_PERIOD_US = 100_000;

function checkPart(kind: string, p: string): string[] {
  const parts = p.split('/').filter((x) => x !== '');
  if (parts.length === 0 || parts.some((x) => x === '.' || x === '..' || !/^[A-Za-z0-9_.:@-]+$/.test(x))) {
    throw new InvalidArgumentError(`Invalid cgroup ${kind}: ${JSON.stringify(p)}`);
  }
  return parts;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function errno(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

export class VmCgroup {
  readonly root: string;
  readonly version: CgroupVersion;
  /** Path relative to each hierarchy, e.g. `vessel-vms/web`. */
  readonly path: string;
  readonly #parent: string;

  constructor(parent: string, name: string, options: VmCgroupOptions = {}) {
    this.#parent = checkPart('parent', parent).join('/');
    const n = checkPart('name', name);
    if (n.length !== 1) throw new InvalidArgumentError(`Invalid cgroup name: ${JSON.stringify(name)}`);
    this.path = `${this.#parent}/${n[0]}`;
    this.root = options.root ?? '/sys/fs/cgroup';
    this.version = options.version ?? detectCgroupVersion(this.root);
  }

  /** Create (idempotent) the cgroup under `parent`, e.g. create('vessel-vms', 'web'). */
  static async create(parent: string, name: string, options: VmCgroupOptions = {}): Promise<VmCgroup> {
    const cg = new VmCgroup(parent, name, options);
    await cg.#create();
    return cg;
  }

  /** The hierarchy mount holding a v1 controller (`cpu` may be its own mount or `cpu,cpuacct`). */
  #mount(controller: V1Controller): string {
    const direct = join(this.root, controller);
    if (existsSync(direct)) return realpathSync(direct);
    const joined = readdirSync(this.root).find((n) => n.split(',').includes(controller));
    if (!joined) throw new FailedPreconditionError(`cgroup v1 controller ${controller} is not mounted under ${this.root}`);
    return realpathSync(join(this.root, joined));
  }

  /** Distinct directories of this cgroup (v1: one per hierarchy; v2: one). */
  dirs(): string[] {
    if (this.version === 2) return [join(this.root, this.path)];
    return [...new Set(V1_CONTROLLERS.map((c) => this.#mount(c)))].map((m) => join(m, this.path));
  }

  #dir(controller: V1Controller): string {
    return this.version === 2 ? join(this.root, this.path) : join(this.#mount(controller), this.path);
  }

  async #create(): Promise<void> {
    if (this.version === 1) {
      for (const d of this.dirs()) await mkdir(d, { recursive: true });
      return;
    }
    // v2: controllers must be enabled in every ancestor's subtree_control, top down.
    const parts = this.path.split('/');
    let dir = this.root;
    for (const p of parts) {
      await this.#enableV2(dir);
      dir = join(dir, p);
      await mkdir(dir, { recursive: true });
    }
  }

  async #enableV2(dir: string): Promise<void> {
    let available: string[] = [];
    try {
      available = (await readFile(join(dir, 'cgroup.controllers'), 'utf8')).trim().split(/\s+/);
    } catch {
      return;
    }
    const want = ['cpu', 'memory'].filter((c) => available.includes(c));
    if (want.length === 0) return;
    try {
      await writeFile(join(dir, 'cgroup.subtree_control'), want.map((c) => `+${c}`).join(' '));
    } catch (e) {
      throw new FailedPreconditionError(`Cannot enable cgroup controllers ${want.join(', ')} in ${dir}: ${errno(e)}`, { cause: e });
    }
  }

  async #write(controller: V1Controller, file: string, value: string): Promise<void> {
    const path = join(this.#dir(controller), file);
    try {
      await writeFile(path, value);
    } catch (e) {
      const code = errno(e);
      if (code === 'ENOENT' && !existsSync(this.#dir(controller))) throw new NotFoundError(`No such cgroup: ${this.path}`, { cause: e });
      if (code === 'ENOENT' || code === 'EACCES') {
        throw new FailedPreconditionError(`cgroup v${this.version} ${file} is not available for ${this.path} (controller not enabled?)`, { cause: e });
      }
      throw new FailedPreconditionError(`Cannot write ${value.trim()} to ${path}: ${code}`, { cause: e });
    }
  }

  /** Move a process and all of its threads into this cgroup. */
  async addProcess(pid: number): Promise<void> {
    if (!Number.isInteger(pid) || pid <= 0) throw new InvalidArgumentError(`Invalid pid: ${pid}`);
    if (!existsSync(`/proc/${pid}`)) throw new NotFoundError(`No such process: ${pid}`);
    for (const d of this.dirs()) {
      try {
        await writeFile(join(d, 'cgroup.procs'), String(pid));
      } catch (e) {
        if (errno(e) === 'ESRCH') throw new NotFoundError(`No such process: ${pid}`, { cause: e });
        throw new FailedPreconditionError(`Cannot move process ${pid} into cgroup ${this.path}: ${errno(e)}`, { cause: e });
      }
      if (this.version === 1) await this.#moveStragglers(pid, d);
    }
  }

  /** Threads started while cgroup.procs was being written may have stayed behind. */
  async #moveStragglers(pid: number, dir: string): Promise<void> {
    for (let round = 0; round < 3; round++) {
      const inside = new Set((await readFile(join(dir, 'tasks'), 'utf8')).split('\n').filter(Boolean).map(Number));
      let tids: number[];
      try {
        tids = (await readdir(`/proc/${pid}/task`)).map(Number);
      } catch {
        return; // the process exited
      }
      const missing = tids.filter((t) => !inside.has(t));
      if (missing.length === 0) return;
      for (const t of missing) await writeFile(join(dir, 'tasks'), String(t)).catch(() => {}); // a thread may have exited
    }
  }

  /** Thread ids (v1 `tasks`) or process ids (v2 `cgroup.procs`) now in the cgroup's cpu hierarchy. */
  async tasks(): Promise<number[]> {
    const file = this.version === 2 ? 'cgroup.threads' : 'tasks';
    try {
      return (await readFile(join(this.#dir('cpu'), file), 'utf8')).split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  /** Relative CPU weight, 1..10000 (100 = a default process's share). */
  async setCpuWeight(weight: number): Promise<void> {
    if (!Number.isInteger(weight) || weight < 1 || weight > 10000) throw new InvalidArgumentError(`Invalid CPU weight: ${weight} (1..10000)`);
    if (this.version === 2) await this.#write('cpu', 'cpu.weight', String(weight));
    else await this.#write('cpu', 'cpu.shares', String(Math.max(2, Math.round((weight * 1024) / 100))));
  }

  /** Hard CPU limit in percent of one CPU (150 = 1.5 CPUs); null removes it. */
  async setCpuCap(percentOfOneCpu: number | null): Promise<void> {
    if (percentOfOneCpu !== null && !(percentOfOneCpu >= 1 && percentOfOneCpu <= 100_000)) {
      throw new InvalidArgumentError(`Invalid CPU cap: ${percentOfOneCpu}% (1..100000, percent of one CPU)`);
    }
    const quota = percentOfOneCpu === null ? null : Math.round((percentOfOneCpu / 100) * CFS_PERIOD_US);
    if (this.version === 2) {
      await this.#write('cpu', 'cpu.max', `${quota ?? 'max'} ${CFS_PERIOD_US}`);
    } else {
      await this.#write('cpu', 'cpu.cfs_period_us', String(CFS_PERIOD_US));
      await this.#write('cpu', 'cpu.cfs_quota_us', String(quota ?? -1));
    }
  }

  /** Memory limit in bytes; null removes it. */
  async setMemoryLimit(bytes: number | null): Promise<void> {
    if (bytes !== null && (!Number.isSafeInteger(bytes) || bytes < 4096)) throw new InvalidArgumentError(`Invalid memory limit: ${bytes}`);
    if (this.version === 2) await this.#write('memory', 'memory.max', bytes === null ? 'max' : String(bytes));
    else await this.#write('memory', 'memory.limit_in_bytes', bytes === null ? '-1' : String(bytes));
  }

  /** CPU time used by everything in the cgroup, in ns. */
  async cpuUsageNs(): Promise<bigint> {
    try {
      if (this.version === 2) {
        const stat = await readFile(join(this.#dir('cpu'), 'cpu.stat'), 'utf8');
        const m = /^usage_usec (\d+)$/m.exec(stat);
        return m ? BigInt(m[1]!) * 1000n : 0n;
      }
      return BigInt((await readFile(join(this.#dir('cpuacct'), 'cpuacct.usage'), 'utf8')).trim() || '0');
    } catch (e) {
      throw new NotFoundError(`No such cgroup: ${this.path}`, { cause: e });
    }
  }

  /**
   * Remove the cgroup's directories. Tasks that have just exited keep a
   * cgroup busy for a moment, so EBUSY is retried for `timeoutMs`.
   */
  async remove(timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const d of this.dirs()) {
      for (;;) {
        try {
          await rmdir(d);
          break;
        } catch (e) {
          const code = errno(e);
          if (code === 'ENOENT') break;
          if (code !== 'EBUSY' || Date.now() >= deadline) {
            throw new FailedPreconditionError(`Cannot remove cgroup ${d}: ${code === 'EBUSY' ? 'processes are still in it' : code}`, { cause: e });
          }
          await sleep(50);
        }
      }
    }
  }
}
