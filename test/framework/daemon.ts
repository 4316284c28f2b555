/**
 * `TestDaemon`: a real vesseld on a private root and socket, driven through
 * the real `vessel` CLI. Integration tests make one (or several, side by
 * side) and count what is left behind with `leftovers()`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { privateNetwork } from './netconf.js';
import { execRootFor } from '../../src/container/paths.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const VESSEL = path.join(REPO, 'bin', 'vessel');
const VESSELD = path.join(REPO, 'bin', 'vesseld');
/** Shared download cache so each test daemon does not fetch busybox-static again. */
export const SHARED_CACHE = '/var/tmp/vessel-test-cache';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface DaemonOptions {
  runtime?: string;
  extraArgs?: string[];
  /** Extra environment for vesseld (e.g. VESSEL_QEMU, VESSEL_CACHE_DIR). */
  env?: NodeJS.ProcessEnv;
}

/** Daemons made by this process and not destroyed yet. */
const live = new Set<TestDaemon>();
let armed = false;

/**
 * On exit, and on the signals a test runner or a terminal sends, removes
 * what the daemons not yet destroyed left on the host. A signal still ends
 * the process (with 128 + signal number), after the cleanup.
 */
function armSafetyNet(): void {
  if (armed) return;
  armed = true;
  process.on('exit', () => TestDaemon.destroyAllSync());
  for (const [sig, num] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]] as const) {
    process.once(sig, () => {
      TestDaemon.destroyAllSync();
      process.exit(128 + num);
    });
  }
}

export class TestDaemon {
  readonly root: string;
  readonly socket: string;
  readonly host: string;
  /** This daemon's own default bridge and subnet (kept across restart()). */
  readonly network = privateNetwork();
  #proc: ChildProcess | null = null;
  #log = '';

  constructor(readonly options: DaemonOptions = {}) {
    this.root = mkdtempSync(path.join(os.tmpdir(), 'vt-'));
    // Traversable, as /var/lib is for the real root: QEMU runs as an unprivileged user and opens disks below it.
    chmodSync(this.root, 0o711);
    this.socket = path.join(this.root, 'api.sock');
    this.host = `unix://${this.socket}`;
    mkdirSync(this.workDir);
    live.add(this);
    armSafetyNet();
  }

  /**
   * vesseld's working directory: empty and private, so that anything the
   * daemon or its helpers write relative to their cwd is contained (and
   * visible to tests) instead of littering the repository.
   */
  get workDir(): string {
    return path.join(this.root, 'cwd');
  }

  get cgroupParent(): string {
    return `/vessel-${createHash('sha256').update(path.resolve(this.root, 'state')).digest('hex').slice(0, 8)}`;
  }

  get stateRoot(): string {
    return path.join(this.root, 'state');
  }

  /** The daemon's default exec root (runtime state, bundles): on a tmpfs, outside `root`. */
  get execRoot(): string {
    return execRootFor(this.stateRoot);
  }

  get log(): string {
    return this.#log;
  }

  async start(): Promise<this> {
    const args = ['--root', this.stateRoot, '--host', this.host, '--log-level', 'debug', ...this.network.args];
    if (this.options.runtime) args.push('--runtime', this.options.runtime);
    args.push(...(this.options.extraArgs ?? []));
    const proc = spawn(VESSELD, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, VESSEL_CACHE_DIR: SHARED_CACHE, ...this.options.env },
      cwd: this.workDir,
      detached: true,
    });
    this.#proc = proc;
    proc.stdout?.on('data', (d: Buffer) => (this.#log += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (this.#log += d.toString()));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (!TestDaemon.#alive(proc)) throw new Error(`vesseld exited early:\n${this.#log}`);
      if (existsSync(this.socket) && (await this.cli(['version'])).code === 0) return this;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`vesseld did not come up:\n${this.#log}`);
  }

  /** A child that was killed by a signal has exitCode null but a signalCode. */
  static #alive(p: ChildProcess): boolean {
    return p.exitCode === null && p.signalCode === null;
  }

  /** Whether this daemon's vesseld process is running. */
  get running(): boolean {
    return !!this.#proc && TestDaemon.#alive(this.#proc);
  }

  get pid(): number {
    return this.#proc?.pid ?? 0;
  }

  /** Runs the real CLI against this daemon. */
  cli(args: string[], options: { input?: string | Buffer; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
    return new Promise((resolve, reject) => {
      const p = spawn(VESSEL, ['--host', this.host, ...args], {
        stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        env: { ...process.env, ...options.env },
      });
      let stdout = '';
      let stderr = '';
      p.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      if (options.input !== undefined) p.stdin?.end(options.input);
      const t = setTimeout(() => {
        p.kill('SIGKILL');
        // The daemon's side of the story: its debug log since shortly before.
        const tail = this.#log.split('\n').slice(-40).join('\n');
        reject(new Error(`vessel ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}\nvesseld log (last 40 lines):\n${tail}`));
      }, options.timeoutMs ?? 120_000);
      p.on('close', (code) => {
        clearTimeout(t);
        resolve({ code: code ?? 255, stdout, stderr });
      });
    });
  }

  /** Like cli() but fails the test with the output when the command fails. */
  async ok(args: string[], options: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<string> {
    const r = await this.cli(args, options);
    if (r.code !== 0) throw new Error(`vessel ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  }

  async ensureBusybox(): Promise<void> {
    if ((await this.cli(['image', 'inspect', 'busybox'])).code !== 0) {
      await this.ok(['image', 'bootstrap', 'busybox', '--quiet'], { timeoutMs: 300_000 });
    }
  }

  /** Graceful stop (SIGTERM); containers keep running. */
  async stop(): Promise<void> {
    const p = this.#proc;
    if (!p || !TestDaemon.#alive(p)) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }

  /**
   * Starts vesseld again on the same root and socket (after `stop()` or
   * `kill9()`), as an administrator restarting the daemon would.
   */
  async restart(): Promise<this> {
    const p = this.#proc;
    if (p && TestDaemon.#alive(p)) throw new Error('restart(): vesseld is still running; stop() or kill9() it first');
    this.#log += '\n---- restart ----\n';
    return this.start();
  }

  /** Simulates a crash. */
  async kill9(): Promise<void> {
    const p = this.#proc;
    if (!p || !TestDaemon.#alive(p)) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  /** What this daemon holds on the host: mounts, cgroups, runtime state, conmon processes. */
  leftovers(): { mounts: string[]; cgroups: string[]; runtimeState: string[]; conmons: number[]; containerDirs: string[]; bundles: string[] } {
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((m) => m.startsWith(this.root));
    const cgroups: string[] = [];
    for (const ctl of ['memory', 'pids', 'cpu', 'cpuacct', 'blkio', 'freezer', 'devices', 'cpuset', 'systemd', 'unified', '']) {
      const dir = path.join('/sys/fs/cgroup', ctl, this.cgroupParent);
      if (existsSync(dir)) {
        for (const e of readdirSync(dir)) {
          if (statSync(path.join(dir, e)).isDirectory()) cgroups.push(path.join(dir, e));
        }
      }
    }
    const runtimeDir = path.join(this.execRoot, 'runtime');
    const runtimeState: string[] = [];
    if (existsSync(runtimeDir)) {
      for (const rt of readdirSync(runtimeDir)) {
        for (const e of readdirSync(path.join(runtimeDir, rt))) runtimeState.push(`${rt}/${e}`);
      }
    }
    const conmons: number[] = [];
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (cmd.startsWith('/usr/bin/conmon') && cmd.includes(this.stateRoot)) conmons.push(Number(pid));
      } catch {
        /* gone */
      }
    }
    const cdir = path.join(this.stateRoot, 'containers');
    const containerDirs = existsSync(cdir) ? readdirSync(cdir) : [];
    const bdir = path.join(this.execRoot, 'containers');
    const bundles = existsSync(bdir) ? readdirSync(bdir) : [];
    return { mounts, cgroups, runtimeState, conmons, containerDirs, bundles };
  }

  /** Stops everything this daemon made and removes its root. */
  async destroy(): Promise<void> {
    if (this.#proc && TestDaemon.#alive(this.#proc)) {
      const ids = (await this.cli(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
      if (ids.length) await this.cli(['rm', '-f', ...ids]);
      const vms = (await this.cli(['vm', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
      if (vms.length) await this.cli(['vm', 'rm', '-f', ...vms], { timeoutMs: 60_000 });
      await this.stop();
    }
    this.#destroySync();
  }

  /**
   * Everything of destroy() that needs no running daemon, synchronous so that
   * the exit/signal safety net below can run it too: a test file killed by the
   * runner (timeout, Ctrl-C) never reaches its after() hook, and its detached
   * vesseld would otherwise keep its bridge, nft table and namespaces forever.
   */
  #destroySync(): void {
    live.delete(this);
    if (this.#proc && TestDaemon.#alive(this.#proc)) this.#proc.kill('SIGKILL');
    // VMs a crashed daemon left running.
    for (const pid of this.qemuPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    // Containers a crashed (or never restarted) daemon left running.
    const runtimeDir = path.join(this.execRoot, 'runtime');
    for (const entry of this.leftovers().runtimeState) {
      const [rt, id] = entry.split('/') as [string, string];
      spawnSync(rt === 'crun' ? 'crun' : 'runc', ['--root', path.join(runtimeDir, rt), 'delete', '--force', id], { stdio: 'ignore', timeout: 30_000 });
    }
    for (const pid of this.leftovers().conmons) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const m of this.leftovers().mounts.reverse()) spawnSync('umount', ['-l', m]);
    for (const cg of this.leftovers().cgroups.reverse()) spawnSync('rmdir', [cg]);
    // The daemon's (by then empty) cgroup parents.
    for (const ctl of ['memory', 'pids', 'cpu', 'cpuacct', 'blkio', 'freezer', 'devices', 'cpuset', 'systemd', 'unified', 'net_cls', 'net_prio', 'perf_event', 'hugetlb', 'rdma', 'misc']) {
      const dir = path.join('/sys/fs/cgroup', ctl, this.cgroupParent);
      if (existsSync(dir)) spawnSync('rmdir', [dir]);
    }
    // Networking the daemon keeps while stopped: its bridges, nft table and any namespaces.
    const net = this.networkLeftovers();
    for (const ns of net.netns) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    for (const link of [...net.vethsOnBridges, ...net.bridges]) spawnSync('ip', ['link', 'del', link], { stdio: 'ignore' });
    spawnSync('nft', ['delete', 'table', 'ip', `vessel_${this.tag}`], { stdio: 'ignore' });
    rmSync(this.root, { recursive: true, force: true });
    rmSync(this.execRoot, { recursive: true, force: true });
  }

  /** Cleans up every daemon not destroyed yet; for process exit only. */
  static destroyAllSync(): void {
    for (const d of [...live]) {
      try {
        d.#destroySync();
      } catch {
        /* best effort: the process is going away */
      }
    }
  }

  /** QEMU processes of this daemon's VMs (their command lines name files under its root). */
  qemuPids(): number[] {
    const out: number[] = [];
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if ((cmd.split('\0')[0] ?? '').includes('qemu-system') && cmd.includes(this.stateRoot)) out.push(Number(pid));
      } catch {
        /* gone */
      }
    }
    return out;
  }

  /** The per-daemon tag in host object names (netns, bridges, nft table). */
  get tag(): string {
    return this.cgroupParent.replace(/^\/vessel-/, '');
  }

  /** Network objects on the host that belong to this daemon. */
  networkLeftovers(): { netns: string[]; bridges: string[]; vethsOnBridges: string[] } {
    const netns = (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '')
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith(`vessel-${this.tag}-`));
    const links = JSON.parse(spawnSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' }).stdout || '[]') as Array<{ ifname: string; master?: string }>;
    const bridges = links.map((l) => l.ifname).filter((n) => n === this.network.bridge || n.startsWith(`vb${this.tag.slice(0, 4)}`));
    const vethsOnBridges = links.filter((l) => l.master && bridges.includes(l.master)).map((l) => l.ifname);
    return { netns, bridges, vethsOnBridges };
  }
}
