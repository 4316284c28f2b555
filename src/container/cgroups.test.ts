import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import {
  ContainerCgroup,
  detectCgroupVersion,
  hostMemoryTotal,
  leftoverCgroups,
  onlineCpus,
  systemCpuUsageNs,
} from './cgroups.js';

const ROOT = '/sys/fs/cgroup';
const CONTROLLERS = ['memory', 'pids', 'cpu', 'cpuacct', 'blkio'];
const MiB = 1024 * 1024;
const realV1 = process.getuid?.() === 0 && existsSync(join(ROOT, 'memory', 'cgroup.procs')) && detectCgroupVersion() === 1;
function requireV1(): void {
  assert.ok(realV1, 'needs root on a host with cgroup v1 controllers (this test cannot run here)');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** rmdir that waits for killed processes to leave (EBUSY meanwhile). */
async function rmdirPatiently(dir: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      return await rmdir(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || i > 100) throw e;
      await sleep(50);
    }
  }
}

/** Removes a test parent (two levels) from every hierarchy, without relying on the code under test. */
async function scrub(parent: string): Promise<void> {
  for (const h of await readdir(ROOT)) {
    const dir = join(ROOT, h, parent);
    if (!existsSync(dir)) continue;
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      for (const f of await readdir(join(dir, e.name), { withFileTypes: true })) if (f.isDirectory()) await rmdirPatiently(join(dir, e.name, f.name));
      await rmdirPatiently(join(dir, e.name));
    }
    await rmdirPatiently(dir);
  }
}

/** "major:minor" of the whole disk holding `path`, for blkio rules (which partitions do not take). */
function diskOf(path: string): string | null {
  const dev = statSync(path).dev;
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & ~0xff);
  const sys = `/sys/dev/block/${major}:${minor}`;
  if (!existsSync(sys)) return null;
  return existsSync(join(sys, 'partition')) ? readFileSync(join(sys, '..', 'dev'), 'utf8').trim() : `${major}:${minor}`;
}

test('detectCgroupVersion tells this hybrid host from a v2 tree', async () => {
  if (realV1) assert.equal(detectCgroupVersion(), 1);
  const dir = await mkdtemp(join(tmpdir(), 'vessel-cgv-'));
  try {
    assert.equal(detectCgroupVersion(dir), 1);
    await writeFile(join(dir, 'cgroup.controllers'), 'cpu io memory pids\n');
    assert.equal(detectCgroupVersion(dir), 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('cgroups paths that could escape the tree are refused', () => {
  assert.throws(() => new ContainerCgroup('relative/x', { version: 1 }), InvalidArgumentError);
  assert.throws(() => new ContainerCgroup('/a/../../etc', { version: 1 }), InvalidArgumentError);
  assert.throws(() => new ContainerCgroup('/', { version: 1 }), InvalidArgumentError);
  assert.equal(new ContainerCgroup('//vessel-a//c1/', { version: 1 }).path, '/vessel-a/c1');
});

test('host figures: cpu count, memory total and system cpu time', async () => {
  const online = readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
  assert.ok(onlineCpus() >= 1);
  if (/^0-(\d+)$/.test(online)) assert.equal(onlineCpus(), Number(online.split('-')[1]) + 1);
  assert.equal(hostMemoryTotal(), totalmem());
  const a = await systemCpuUsageNs();
  const until = Date.now() + 100;
  while (Date.now() < until) {
    // burn a little CPU so the counter must move
  }
  const b = await systemCpuUsageNs();
  assert.ok(a > 0n && b > a, `${a} < ${b}`);
  // Whole ticks of 10 ms.
  assert.equal(a % 10_000_000n, 0n);
});

test('v2 files are parsed from a cgroup2-style tree', async () => {
  const root = await mkdtemp(join(tmpdir(), 'vessel-cg2-'));
  try {
    await writeFile(join(root, 'cgroup.controllers'), 'cpu io memory pids\n');
    const dir = join(root, 'vessel-x', 'c1');
    await mkdir(join(dir, 'sub'), { recursive: true });
    const files: Record<string, string> = {
      'memory.current': '10485760\n',
      'memory.max': '33554432\n',
      'memory.stat': 'anon 1000\nfile 2000\ninactive_file 4096\nactive_file 0\n',
      'cpu.stat': 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n',
      'pids.current': '3\n',
      'pids.max': 'max\n',
      'io.stat': '8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n',
      'memory.events': 'low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0\n',
      'cgroup.procs': '12\n10\n',
    };
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    await writeFile(join(dir, 'sub', 'cgroup.procs'), '11\n');

    const cg = new ContainerCgroup('/vessel-x/c1', { root });
    assert.equal(cg.version, 2);
    assert.equal(await cg.exists(), true);
    assert.deepEqual(await cg.readStats(), {
      cpuUsageNs: 1_500_000n,
      memoryUsage: 10 * MiB,
      memoryLimit: Math.min(32 * MiB, totalmem()),
      memoryInactiveFile: 4096,
      pids: 3,
      pidsLimit: null,
      blkioReadBytes: 4097,
      blkioWriteBytes: 8194,
      oomKillCount: 2,
    });
    assert.equal(await cg.oomKillCount(), 2);
    assert.deepEqual(await cg.pids(), [10, 11, 12]);

    await writeFile(join(dir, 'memory.max'), 'max\n');
    await writeFile(join(dir, 'pids.max'), '100\n');
    const s = await cg.readStats();
    assert.equal(s.memoryLimit, totalmem());
    assert.equal(s.pidsLimit, 100);

    // Ordinary directories with files cannot be rmdir'ed: they are reported as left over.
    const left = await leftoverCgroups('/vessel-x', { root });
    assert.deepEqual(left, [join(root, 'vessel-x', 'c1', 'sub'), join(root, 'vessel-x', 'c1'), join(root, 'vessel-x')]);

    const gone = new ContainerCgroup('/vessel-x/gone', { root });
    assert.equal(await gone.exists(), false);
    assert.equal(await gone.oomKillCount(), 0);
    assert.deepEqual(await gone.pids(), []);
    await assert.rejects(gone.readStats(), NotFoundError);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('stats, pids and removal of a real v1 cgroup', { timeout: 60_000 }, async (t) => {
  requireV1();
  const parent = `vessel-cgtest-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const work = await mkdtemp(join(tmpdir(), 'vessel-cgio-'));
  const pidsToKill: number[] = [];
  try {
    for (const c of CONTROLLERS) await mkdir(join(ROOT, c, parent, 'c1'), { recursive: true });
    await writeFile(join(ROOT, 'memory', parent, 'c1', 'memory.limit_in_bytes'), String(64 * MiB));
    await writeFile(join(ROOT, 'pids', parent, 'c1', 'pids.max'), '50');
    // Recent kernels count blkio.throttle bytes only for cgroups that have a throttle rule: set one far above any real rate.
    const disk = diskOf(work);
    const blkioCounted =
      disk !== null &&
      (await writeFile(join(ROOT, 'blkio', parent, 'c1', 'blkio.throttle.write_bps_device'), `${disk} 100000000000`).then(
        () => true,
        () => false,
      ));
    // The shell joins the cgroup itself before doing any work, so all of that work is charged to it.
    const script =
      'for f in "$@"; do echo $$ > "$f"; done; i=0; while [ $i -lt 50000 ]; do i=$((i+1)); done; ' +
      'dd if=/dev/zero of="$OUT" bs=1M count=4 oflag=direct 2>/dev/null; sleep 60 & exec sleep 60';
    const procs = CONTROLLERS.map((c) => join(ROOT, c, parent, 'c1', 'cgroup.procs'));
    const child = spawn('/bin/sh', ['-c', script, 'sh', ...procs], { env: { ...process.env, OUT: join(work, 'f') }, stdio: 'ignore' });
    pidsToKill.push(child.pid!);

    const cg = new ContainerCgroup(`/${parent}/c1`);
    assert.equal(cg.version, 1);
    assert.equal(await cg.exists(), true);
    await waitFor(async () => (await cg.pids()).length === 2, 20_000, 'shell and background sleep');
    await waitFor(() => readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim() === 'sleep', 5000, 'exec');
    const pids = await cg.pids();
    assert.ok(pids.includes(child.pid!));
    const bg = pids.find((p) => p !== child.pid)!;
    pidsToKill.push(bg);

    const s = await cg.readStats();
    assert.equal(s.memoryLimit, 64 * MiB);
    assert.ok(s.memoryUsage > 0 && s.memoryUsage <= 64 * MiB, `memory ${s.memoryUsage}`);
    assert.ok(s.memoryInactiveFile >= 0);
    assert.equal(s.pids, 2);
    assert.equal(s.pidsLimit, 50);
    assert.ok(s.cpuUsageNs > 1_000_000n, `cpu ${s.cpuUsageNs}`);
    if (blkioCounted) assert.ok(s.blkioWriteBytes >= 4 * MiB, `written ${s.blkioWriteBytes}`);
    else t.diagnostic(`blkio not checked: no throttle rule possible for ${work}`);
    assert.equal(s.oomKillCount, 0);

    // A process in a child cgroup (only in the pids hierarchy) still belongs to the container.
    await mkdir(join(ROOT, 'pids', parent, 'c1', 'sub'));
    await writeFile(join(ROOT, 'pids', parent, 'c1', 'sub', 'cgroup.procs'), String(bg));
    assert.deepEqual(await cg.pids(), [child.pid!, bg].sort((a, b) => a - b));

    // Unlimited reads as the host's memory; "max" pids as null.
    await writeFile(join(ROOT, 'memory', parent, 'c1', 'memory.limit_in_bytes'), '-1');
    await writeFile(join(ROOT, 'pids', parent, 'c1', 'pids.max'), 'max');
    const u = await cg.readStats();
    assert.equal(u.memoryLimit, hostMemoryTotal());
    assert.equal(u.pidsLimit, null);

    // Busy while processes live: refused, after the brief retries.
    await assert.rejects(cg.remove(), FailedPreconditionError);
    for (const p of pidsToKill) process.kill(p, 'SIGKILL');
    await exited(child);
    await waitFor(async () => (await cg.pids()).length === 0, 5000, 'processes to leave');
    await cg.remove();
    assert.equal(await cg.exists(), false);
    for (const c of CONTROLLERS) assert.equal(existsSync(join(ROOT, c, parent, 'c1')), false, c);
    await assert.rejects(cg.readStats(), NotFoundError);
    assert.equal(await cg.oomKillCount(), 0);
    assert.deepEqual(await cg.pids(), []);
    await cg.remove(); // removing again is fine

    assert.deepEqual(await leftoverCgroups(`/${parent}`), []);
    for (const h of await readdir(ROOT)) assert.equal(existsSync(join(ROOT, h, parent)), false, h);
  } finally {
    for (const p of pidsToKill) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await scrub(parent);
    await rm(work, { recursive: true, force: true });
  }
});

test('a real OOM kill is counted', { timeout: 60_000 }, async () => {
  requireV1();
  const parent = `vessel-cgtest-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)']).toString().trim();
  try {
    const dir = join(ROOT, 'memory', parent, 'oom');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'memory.limit_in_bytes'), String(32 * MiB));
    // With swap the allocation could be pushed out instead of killed.
    if (existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) await writeFile(join(dir, 'memory.memsw.limit_in_bytes'), String(32 * MiB));
    const cg = new ContainerCgroup(`/${parent}/oom`);
    assert.equal(await cg.oomKillCount(), 0);
    const child = spawn(
      '/bin/sh',
      ['-c', 'echo $$ > "$1" && exec "$2" -c "b = bytearray(100 * 1024 * 1024)"', 'sh', join(dir, 'cgroup.procs'), python],
      { stdio: 'ignore' },
    );
    const { signal } = await exited(child);
    assert.equal(signal, 'SIGKILL');
    assert.ok((await cg.oomKillCount()) >= 1);
    assert.ok((await cg.readStats()).oomKillCount >= 1);
    await cg.remove();
    assert.deepEqual(await leftoverCgroups(`/${parent}`), []);
  } finally {
    await scrub(parent);
  }
});
