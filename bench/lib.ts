/**
 * Shared pieces of the benchmark commands (`bench/run-latency`, `bench/density`):
 * a private vesseld on a temp root, the real CLI, a keep-alive API client,
 * timing/statistics helpers and a cleanup stack that also runs on Ctrl-C.
 *
 * Deliberately self-contained (no imports from src/): the benches drive the
 * daemon only from the outside, the way a user would.
 */
import { privateNetwork } from '../test/framework/netconf.js';
import { containerPaths, daemonPaths } from '../src/container/paths.js';
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/bench/lib.js → the repository root. */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const VESSEL = path.join(REPO, 'bin', 'vessel');
export const VESSELD = path.join(REPO, 'bin', 'vesseld');
/** Shared download cache (the busybox-static .deb), the same one the tests use. */
export const SHARED_CACHE = process.env.VESSEL_CACHE_DIR || '/var/tmp/vessel-test-cache';

// ---- progress output ------------------------------------------------------

/** Progress goes to stderr so `--json` output on stdout stays clean. */
export function note(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- cleanup stack --------------------------------------------------------

type Cleanup = { name: string; fn: () => Promise<void> | void };
const cleanups: Cleanup[] = [];
let cleaning: Promise<void> | null = null;
/** Set by the first signal; until cleanup starts, new work (spawns, requests) is refused. */
let interrupted = false;

export class Interrupted extends Error {
  constructor() {
    super('interrupted');
  }
}

/** Throws once a signal arrived and cleanup has not begun: the bench stops starting new work. */
export function checkInterrupted(): void {
  if (interrupted && !cleaning) throw new Interrupted();
}

/** Registers an undo step; steps run in reverse order, each at most once. */
export function onCleanup(name: string, fn: () => Promise<void> | void): () => void {
  const entry = { name, fn };
  cleanups.push(entry);
  return () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

export function runCleanups(): Promise<void> {
  if (!cleaning) {
    cleaning = (async () => {
      while (cleanups.length) {
        const c = cleanups.pop()!;
        try {
          await c.fn();
        } catch (e) {
          note(`cleanup: ${c.name}: ${(e as Error).message}`);
        }
      }
    })();
  }
  return cleaning;
}

/**
 * Runs `main` with the cleanup stack armed: a normal end, an exception,
 * SIGINT, SIGTERM or SIGHUP all undo everything registered. On a signal the
 * step in flight is allowed to finish (up to 20 s; a terminal Ctrl-C also
 * reaches the child it is waiting for) and nothing new is started, so cleanup
 * never races the bench. A third signal gives up and exits at once.
 */
export function runMain(main: () => Promise<number | void>): void {
  let signals = 0;
  let settled: Promise<unknown> = Promise.resolve();
  const finish = async (code: number) => {
    await runCleanups();
    process.exit(code);
  };
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    interrupted = true;
    if (signals === 1) {
      note(`\n${sig}: stopping and cleaning up (press Ctrl-C twice more to abandon cleanup)`);
      void Promise.race([settled, sleep(20_000)]).then(() => finish(sig === 'SIGINT' ? 130 : 143));
    } else if (signals >= 3) {
      note('cleanup abandoned; leftovers may remain under /tmp/vessel-bench-*');
      process.exit(1);
    }
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);
  process.on('unhandledRejection', (e: unknown) => {
    if (interrupted) return; // pieces torn down by the interruption
    note(`error (unhandled): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    void finish(1);
  });
  const p = main().then(
    async (code) => {
      if (!interrupted) await finish(typeof code === 'number' ? code : 0);
    },
    async (e: unknown) => {
      if (interrupted) return; // the signal handler cleans up and exits
      note(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      await finish(1);
    },
  );
  settled = p;
}

// ---- processes ------------------------------------------------------------

export interface Exec {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to process exit, ms. */
  ms: number;
}

/**
 * Spawns a process and times it from just before spawn() to its `exit` event.
 * stdin is /dev/null; stdout is /dev/null unless `capture` is set; stderr is
 * kept for error messages.
 */
export function execTimed(
  cmd: string,
  args: string[],
  opts: { capture?: boolean; env?: NodeJS.ProcessEnv; timeoutMs?: number; detached?: boolean } = {},
): Promise<Exec> {
  if (interrupted && !cleaning) return Promise.reject(new Interrupted());
  return new Promise((resolve, reject) => {
    const stdio: StdioOptions = ['ignore', opts.capture ? 'pipe' : 'ignore', 'pipe'];
    const t0 = performance.now();
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio, env: opts.env ?? process.env, detached: opts.detached ?? false });
    } catch (e) {
      reject(e);
      return;
    }
    let ms = 0;
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', () => (ms = performance.now() - t0));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (!ms) ms = performance.now() - t0;
      resolve({ code: code ?? (signal ? 128 : 255), stdout, stderr, ms });
    });
  });
}

/** Like execTimed but throws with the output when the command fails. */
export async function execOk(cmd: string, args: string[], opts: Parameters<typeof execTimed>[2] = {}): Promise<Exec> {
  const r = await execTimed(cmd, args, { capture: true, ...opts });
  if (r.code !== 0) {
    throw new Error(`${path.basename(cmd)} ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout.trim()}\nstderr: ${r.stderr.trim()}`);
  }
  return r;
}

export function which(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = path.join(dir, name);
    if (existsSync(p)) return p;
  }
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    const p = path.join(dir, name);
    if (existsSync(p)) return p;
  }
  return null;
}

/**
 * The path of `bin`, installing Debian package `pkg` with apt-get first when it
 * is missing (one `apt-get update` and retry on failure); null if that fails.
 * apt's output goes to stderr so `--json` output stays clean.
 */
export function tryInstallTool(bin: string, pkg = bin, why = ''): string | null {
  const found = which(bin);
  if (found) return found;
  note(`${bin} not found: installing it with \`apt-get install -y ${pkg}\`${why ? ` (${why})` : ''}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', pkg], { stdio: ['ignore', 2, 2], env, timeout: 600_000 });
  if (install().status !== 0) {
    note('apt-get install failed; running `apt-get update` and trying once more');
    spawnSync('apt-get', ['update'], { stdio: ['ignore', 2, 2], env, timeout: 600_000 });
    install();
  }
  return which(bin);
}

/** `tryInstallTool`, failing the bench when the tool cannot be had. */
export function ensureTool(bin: string, pkg = bin): string {
  const p = tryInstallTool(bin, pkg);
  if (!p) throw new Error(`could not install ${pkg} (apt-get install -y ${pkg})`);
  return p;
}

export type FlagRule =
  | { key: string; int: readonly [number, number] }
  | { key: string; set: boolean }
  | { key: string; oneOf: readonly string[] };

/**
 * The benches' command lines: `--flag V`, `--flag=V` or a switch, per
 * `rules`; `-h`/`--help` prints `usage` and exits; anything else is an error.
 */
export function parseBenchFlags<T extends object>(argv: string[], usage: string, defaults: T, rules: Record<string, FlagRule>): T {
  const o = { ...defaults } as Record<string, unknown>;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    if (flag === '-h' || flag === '--help') {
      process.stdout.write(usage);
      process.exit(0);
    }
    const rule = rules[flag];
    if (!rule) throw new Error(`unknown argument ${a}\n${usage}`);
    if ('set' in rule) {
      o[rule.key] = rule.set;
      continue;
    }
    const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if ('int' in rule) {
      const n = Number(v);
      const [lo, hi] = rule.int;
      if (v === undefined || !Number.isInteger(n) || n < lo || n > hi) throw new Error(`${flag} needs an integer from ${lo} to ${hi}`);
      o[rule.key] = n;
    } else {
      if (v === undefined || !rule.oneOf.includes(v)) throw new Error(`${flag} needs one of ${rule.oneOf.join(', ')}`);
      o[rule.key] = v;
    }
  }
  return o as T;
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('the benches need root (mounts, cgroups, runc)');
}

// ---- statistics -----------------------------------------------------------

export interface Summary {
  n: number;
  median: number;
  p10: number;
  p90: number;
  mean: number;
  min: number;
  max: number;
}

/** Percentile with linear interpolation between closest ranks. */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function summarize(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  return {
    n: s.length,
    median: percentile(s, 50),
    p10: percentile(s, 10),
    p90: percentile(s, 90),
    mean: s.reduce((a, b) => a + b, 0) / (s.length || 1),
    min: s[0] ?? NaN,
    max: s[s.length - 1] ?? NaN,
  };
}

export const r1 = (x: number) => Math.round(x * 10) / 10;
export const r2 = (x: number) => Math.round(x * 100) / 100;

// ---- host facts -------------------------------------------------------------

export function loadAverage(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

export function machineLine(): string {
  let distro = 'linux';
  try {
    const m = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'));
    if (m) distro = m[1]!;
  } catch {
    /* unknown */
  }
  const mem = (os.totalmem() / 2 ** 30).toFixed(1);
  return `${os.availableParallelism?.() ?? os.cpus().length} vCPU, ${mem} GiB, ${distro}, kernel ${os.release()}, node ${process.version}`;
}

/** One version line of a tool, or '-'. */
export function toolVersion(cmd: string, args: string[] = ['--version']): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return (r.stdout || r.stderr || '-').split('\n')[0]!.trim();
}

// ---- API client -------------------------------------------------------------

export interface ApiResponse {
  status: number;
  body: string;
}

/**
 * A minimal Docker-API client over the unix socket with a keep-alive agent,
 * so the bench's own overhead per request is one write and one read on an
 * already-open connection.
 */
export class Api {
  readonly agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  constructor(readonly socketPath: string) {}

  /** Sends a request; resolves once the response headers arrive (body still streaming). */
  begin(method: string, urlPath: string, body?: unknown): Promise<http.IncomingMessage> {
    if (interrupted && !cleaning) return Promise.reject(new Interrupted());
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = http.request(
        {
          socketPath: this.socketPath,
          agent: this.agent,
          method,
          path: `/v1.41${urlPath}`,
          headers: {
            Host: 'localhost',
            ...(data ? { 'Content-Type': 'application/json', 'Content-Length': String(data.length) } : { 'Content-Length': '0' }),
          },
        },
        resolve,
      );
      req.on('error', reject);
      req.end(data);
    });
  }

  static readBody(res: http.IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
  }

  async request(method: string, urlPath: string, body?: unknown): Promise<ApiResponse> {
    const res = await this.begin(method, urlPath, body);
    return { status: res.statusCode ?? 0, body: await Api.readBody(res) };
  }

  /** Like request() but throws unless the status is 2xx; returns parsed JSON (or null). */
  async ok<T = unknown>(method: string, urlPath: string, body?: unknown): Promise<T> {
    const r = await this.request(method, urlPath, body);
    if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${urlPath}: HTTP ${r.status}: ${r.body.trim()}`);
    return (r.body.trim() ? JSON.parse(r.body) : null) as T;
  }

  close(): void {
    this.agent.destroy();
  }
}

// ---- a private daemon ---------------------------------------------------------

export interface StartedLine {
  bundleMs: number;
  createMs: number;
  startMs: number;
}

/**
 * A private vesseld on a temp root and socket, started the way the test
 * harness does (detached, debug log captured). `destroy()` (also registered
 * as a cleanup step) removes every container, stops the daemon, kills any
 * conmon left for this root, unmounts what is left under it, removes its
 * cgroup parent and deletes the temp directory.
 */
export class BenchDaemon {
  readonly dir: string;
  readonly stateRoot: string;
  readonly socket: string;
  readonly host: string;
  proc: ChildProcess | null = null;
  log = '';
  readonly api: Api;
  /** The default network's private bridge and subnet (removed by destroy()). */
  readonly network = privateNetwork();

  constructor(prefix = 'vessel-bench-') {
    this.dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    this.stateRoot = path.join(this.dir, 'state');
    this.socket = path.join(this.dir, 'api.sock');
    this.host = `unix://${this.socket}`;
    this.api = new Api(this.socket);
    note(`private daemon root ${this.dir} (cgroup parent ${this.cgroupParent})`);
    onCleanup(`daemon ${this.dir}`, () => this.destroy());
  }

  /** The daemon's cgroup parent (`/vessel-<sha256(root)[:8]>`), as src/container/paths.ts derives it. */
  get cgroupParent(): string {
    return `/vessel-${createHash('sha256').update(path.resolve(this.stateRoot)).digest('hex').slice(0, 8)}`;
  }

  /** The daemon's default exec root (runc state, bundles), usually on a tmpfs outside `dir`. */
  get execRoot(): string {
    return daemonPaths(this.stateRoot).run;
  }

  /** A container's config.json, as the daemon wrote it for its last start. */
  specFile(id: string): string {
    return containerPaths(daemonPaths(this.stateRoot), id).specFile;
  }

  get pid(): number {
    return this.proc?.pid ?? 0;
  }

  async start(): Promise<void> {
    if (!existsSync(path.join(REPO, 'dist', 'src', 'daemon', 'main.js'))) {
      throw new Error('dist/src is missing: run `npx tsc -p tsconfig.json` first');
    }
    const proc = spawn(VESSELD, ['--root', this.stateRoot, '--host', this.host, '--log-level', 'debug', ...this.network.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, VESSEL_CACHE_DIR: SHARED_CACHE },
      // Its own temp dir as cwd: anything a helper drops in the cwd (conmon pidfile-<id>) goes away with it.
      cwd: this.dir,
      detached: true, // its own process group: a terminal Ctrl-C reaches only the bench, which then cleans up
    });
    this.proc = proc;
    const grab = (d: Buffer) => {
      this.log += d.toString();
      // Keep memory bounded on long runs: only the tail matters for errors; timing lines are parsed as they come.
      if (this.log.length > 4_000_000) this.log = this.log.slice(-2_000_000);
    };
    proc.stdout?.on('data', grab);
    proc.stderr?.on('data', grab);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`vesseld exited early:\n${this.log}`);
      if (existsSync(this.socket)) {
        const r = await this.api.request('GET', '/version').catch(() => null);
        if (r?.status === 200) return;
      }
      await sleep(100);
    }
    throw new Error(`vesseld did not come up within 30 s:\n${this.log}`);
  }

  cli(args: string[], opts: { capture?: boolean; timeoutMs?: number } = {}): Promise<Exec> {
    return execTimed(VESSEL, ['--host', this.host, ...args], { capture: true, ...opts });
  }

  async ok(args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.cli(args, opts);
    if (r.code !== 0) throw new Error(`vessel ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout.trim()}\nstderr: ${r.stderr.trim()}`);
    return r.stdout;
  }

  async bootstrapBusybox(): Promise<void> {
    if ((await this.cli(['image', 'inspect', 'busybox'])).code === 0) return;
    await this.ok(['image', 'bootstrap', 'busybox', '--quiet'], { timeoutMs: 300_000 });
  }

  /** `container started` debug lines logged so far, from offset `from` of the log. */
  startedLines(from = 0): StartedLine[] {
    const out: StartedLine[] = [];
    const re = /container started .*?bundleMs=(\d+) createMs=(\d+) startMs=(\d+)/g;
    const text = this.log.slice(from);
    let m: RegExpExecArray | null;
    while ((m = re.exec(text))) out.push({ bundleMs: Number(m[1]), createMs: Number(m[2]), startMs: Number(m[3]) });
    return out;
  }

  /** Every conmon process serving this daemon's root. */
  conmonPids(): number[] {
    const out: number[] = [];
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (/(^|\/)conmon\0/.test(cmd) && cmd.includes(this.stateRoot)) out.push(Number(pid));
      } catch {
        /* gone */
      }
    }
    return out;
  }

  /** Mount points at or below this bench's temp directory. */
  mounts(): string[] {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => (l.split(' ')[4] ?? '').replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))))
      .filter((m) => m === this.dir || m.startsWith(`${this.dir}/`));
  }

  /** Container cgroups left under this daemon's parent, in any v1 controller (or v2). */
  cgroups(): string[] {
    return childCgroups(this.cgroupParent);
  }

  /** Entries left in the daemon's runtime state directory (runc --root). */
  runtimeState(): string[] {
    const dir = path.join(this.execRoot, 'runtime');
    const out: string[] = [];
    if (!existsSync(dir)) return out;
    for (const rt of readdirSync(dir)) {
      try {
        for (const e of readdirSync(path.join(dir, rt))) out.push(`${rt}/${e}`);
      } catch {
        /* not a directory */
      }
    }
    return out;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  }

  #destroyed = false;
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.api.close();
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      const ids = (await this.cli(['ps', '-aq'], { timeoutMs: 30_000 }).catch(() => null))?.stdout.split('\n').filter(Boolean) ?? [];
      if (ids.length) await this.cli(['rm', '-f', ...ids], { timeoutMs: 300_000 }).catch(() => null);
      const vms = (await this.cli(['vm', 'ls', '-q'], { timeoutMs: 30_000 }).catch(() => null))?.stdout.split('\n').filter(Boolean) ?? [];
      if (vms.length) await this.cli(['vm', 'rm', '-f', ...vms], { timeoutMs: 120_000 }).catch(() => null);
      await this.stop();
    }
    // QEMU processes of VMs this daemon started (they outlive it by design).
    for (const pid of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if ((cmd.split('\0')[0] ?? '').includes('qemu-system') && cmd.includes(this.stateRoot)) process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const pid of this.conmonPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    // Whatever runc still knows about under this root (an interrupted start).
    const runcRoot = path.join(this.execRoot, 'runtime', 'runc');
    if (existsSync(runcRoot)) {
      for (const id of readdirSync(runcRoot)) spawnSync('runc', ['--root', runcRoot, 'delete', '--force', id], { stdio: 'ignore' });
    }
    for (const m of this.mounts().reverse()) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
    removeCgroupTree(this.cgroupParent);
    // The daemon keeps its bridges and nft table when it stops (as a real host would): remove them.
    spawnSync('ip', ['link', 'del', this.network.bridge], { stdio: 'ignore' });
    spawnSync('nft', ['delete', 'table', 'ip', `vessel_${this.cgroupParent.replace(/^\/vessel-/, '')}`], { stdio: 'ignore' });
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.execRoot, { recursive: true, force: true });
  }
}

// ---- cgroups ----------------------------------------------------------------

function cgroupBases(): string[] {
  const base = '/sys/fs/cgroup';
  if (!existsSync(base)) return [];
  if (existsSync(path.join(base, 'cgroup.controllers'))) return [base]; // pure v2
  const out: string[] = [];
  for (const e of readdirSync(base)) {
    const p = path.join(base, e);
    try {
      if (statSync(p).isDirectory()) out.push(p);
    } catch {
      /* race */
    }
  }
  return out;
}

/** Child cgroups directly under `parent` in every hierarchy. */
export function childCgroups(parent: string): string[] {
  const out: string[] = [];
  for (const b of cgroupBases()) {
    const dir = path.join(b, parent);
    if (!existsSync(dir)) continue;
    for (const e of readdirSync(dir)) {
      try {
        if (statSync(path.join(dir, e)).isDirectory()) out.push(path.join(dir, e));
      } catch {
        /* gone */
      }
    }
  }
  return out;
}

/** rmdir `parent` and its (empty) children in every hierarchy; cgroups with live tasks stay. */
export function removeCgroupTree(parent: string): void {
  for (const b of cgroupBases()) {
    const dir = path.join(b, parent);
    if (!existsSync(dir)) continue;
    const walk = (d: string) => {
      let entries: string[] = [];
      try {
        entries = readdirSync(d);
      } catch {
        return;
      }
      for (const e of entries) {
        const p = path.join(d, e);
        try {
          if (statSync(p).isDirectory()) walk(p);
        } catch {
          /* gone */
        }
      }
      try {
        rmdirSync(d);
      } catch {
        /* busy or gone */
      }
    };
    walk(dir);
  }
}

// ---- memory ---------------------------------------------------------------------

/** /proc/meminfo in KiB. */
export function meminfo(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
    const m = /^(\S+):\s+(\d+)/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** A field of /proc/<pid>/smaps_rollup in KiB (0 when the process is gone). */
export function smapsRollup(pid: number, field = 'Pss'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** A field of /proc/<pid>/status in KiB (VmRSS, ...). */
export function procStatusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export const MiB = 1024; // KiB per MiB
