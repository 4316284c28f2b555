import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { QmpClient } from './qmp/client.js';
import { VmCgroup } from './cgroup.js';

const parent = `vessel-test-vmcg-${process.pid}`;
const procs: ChildProcess[] = [];
const groups: VmCgroup[] = [];

function burn(cpu: number): ChildProcess {
  const p = spawn('taskset', ['-c', String(cpu), 'sh', '-c', 'while :; do :; done'], { stdio: 'ignore' });
  procs.push(p);
  return p;
}

async function killAll(): Promise<void> {
  await Promise.all(
    procs.splice(0).map((p) =>
      p.exitCode === null && p.signalCode === null ? new Promise((r) => (p.once('exit', r), p.kill('SIGKILL'))) : null,
    ),
  );
}

async function group(name: string, opts: { root?: string; version?: 1 | 2 } = {}): Promise<VmCgroup> {
  const g = await VmCgroup.create(parent, name, opts);
  groups.push(g);
  return g;
}

after(async () => {
  await killAll();
  for (const g of groups) await g.remove().catch(() => {});
  for (const h of ['cpu', 'cpuacct', 'memory', 'unified']) {
    const d = join('/sys/fs/cgroup', h, parent);
    if (existsSync(d)) rmdirSync(d);
  }
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('VmCgroup (cgroup v1 on this host)', () => {
  it('creates directories in cpu, cpuacct and memory and removes them', async () => {
    const g = await group('plain');
    assert.equal(g.version, 1);
    assert.equal(g.dirs().length, 3);
    for (const d of g.dirs()) assert.ok(existsSync(d), d);
    await g.remove();
    for (const d of g.dirs()) assert.ok(!existsSync(d), d);
    await g.remove(); // idempotent
  });

  it('moves every thread of a running QEMU, then removes after it exits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vessel-vmcg-'));
    const sock = join(dir, 'qmp.sock');
    const q = spawn('qemu-system-x86_64', ['-accel', 'tcg', '-M', 'q35', '-nodefaults', '-display', 'none', '-no-user-config', '-m', '64', '-smp', '2', '-S',
      '-qmp', `unix:${sock},server=on,wait=off`], { stdio: 'ignore' });
    procs.push(q);
    const g = await group('qemu');
    try {
      const qmp = await QmpClient.connect(sock, { connectTimeoutMs: 10_000 });
      await g.addProcess(q.pid!);
      const inside = new Set(await g.tasks());
      const tids = readdirSync(`/proc/${q.pid}/task`).map(Number);
      assert.ok(tids.length > 2, `QEMU has ${tids.length} threads`);
      for (const t of tids) assert.ok(inside.has(t), `thread ${t} not moved`);
      for (const c of await qmp.queryCpusFast()) assert.ok(inside.has(c.threadId), `vCPU ${c.cpuIndex} thread not moved`);
      await assert.rejects(g.remove(100), /Cannot remove cgroup .*: processes are still in it/);
      await qmp.quit();
      await new Promise((r) => (q.exitCode !== null ? r(null) : q.once('exit', r)));
      await g.remove();
      for (const d of g.dirs()) assert.ok(!existsSync(d));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('weights 1:2 split one CPU about 1:2', async () => {
    const a = await group('w-low');
    const b = await group('w-high');
    try {
      await a.setCpuWeight(100);
      await b.setCpuWeight(200);
      const pa = burn(0);
      const pb = burn(0);
      await a.addProcess(pa.pid!);
      await b.addProcess(pb.pid!);
      await sleep(300);
      const [a0, b0] = [await a.cpuUsageNs(), await b.cpuUsageNs()];
      await sleep(4000);
      const da = Number((await a.cpuUsageNs()) - a0);
      const db = Number((await b.cpuUsageNs()) - b0);
      const ratio = da / db;
      assert.ok(db > 1e9, `high-weight group used only ${db / 1e9} s`);
      assert.ok(Math.abs(ratio - 0.5) <= 0.05, `usage ratio ${ratio.toFixed(3)} not within 10 % of 0.5`);
    } finally {
      await killAll();
      await a.remove();
      await b.remove();
    }
  });

  it('a 50 % cap holds', async () => {
    const g = await group('cap');
    try {
      await g.setCpuCap(50);
      const p = burn(1);
      await g.addProcess(p.pid!);
      await sleep(300);
      const u0 = await g.cpuUsageNs();
      const t0 = process.hrtime.bigint();
      await sleep(3000);
      const share = Number((await g.cpuUsageNs()) - u0) / Number(process.hrtime.bigint() - t0);
      assert.ok(share <= 0.55, `capped group used ${(share * 100).toFixed(1)} % of a CPU`);
      assert.ok(share >= 0.3, `capped group used only ${(share * 100).toFixed(1)} % of a CPU`);
      await g.setCpuCap(null);
    } finally {
      await killAll();
      await g.remove();
    }
  });

  it('rejects bad values and unknown pids in one line', async () => {
    const g = await group('bad');
    await assert.rejects(g.setCpuWeight(0), /Invalid CPU weight: 0 \(1\.\.10000\)/);
    await assert.rejects(g.setCpuCap(0), /Invalid CPU cap/);
    await assert.rejects(g.addProcess(999_999_999), /No such process: 999999999/);
    assert.throws(() => new VmCgroup(parent, '../x'), /Invalid cgroup name/);
    await g.setMemoryLimit(256 * 1024 * 1024);
    await g.setMemoryLimit(null);
    await g.remove();
  });
});

describe('VmCgroup on the cgroup v2 mount (no controllers delegated there on this host)', () => {
  it('creates, moves a process, counts CPU, and reports a missing cpu controller clearly', async () => {
    const g = await group('v2', { root: '/sys/fs/cgroup/unified', version: 2 });
    const p = burn(1);
    try {
      await g.addProcess(p.pid!);
      assert.ok((await g.tasks()).includes(p.pid!));
      await sleep(300);
      assert.ok((await g.cpuUsageNs()) > 0n);
      await assert.rejects(g.setCpuWeight(100), /cgroup v2 cpu\.weight is not available for .*v2 \(controller not enabled\?\)/);
    } finally {
      await killAll();
      await g.remove();
    }
  });
});
