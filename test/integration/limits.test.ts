/**
 * Resource limits, measured on the host's cgroups (v1 hierarchy): memory
 * (OOM kill), pids, CPU quota and shares, memory reservation.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { TestDaemon } from '../framework/daemon.js';
import { assertId, cgroupFile, inspectF, leftoversFor, sleep, status, waitFor } from '../framework/helpers.js';

let d: TestDaemon;

before(async () => {
  if (!existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes')) {
    throw new Error('these tests read cgroup v1 files (/sys/fs/cgroup/memory/...): this host has no cgroup v1 memory controller');
  }
  d = new TestDaemon();
  await d.start();
  await d.ensureBusybox();
});

after(async () => {
  await d?.destroy();
});

test('--memory 64m: writing 128 MiB into a memory-backed tmpfs gets the container OOM-killed (137, OOMKilled true)', async () => {
  const r = await d.cli(
    ['run', '--name', 'oom', '--memory', '64m', '--tmpfs', '/big:size=256m', 'busybox', 'dd', 'if=/dev/zero', 'of=/big/f', 'bs=1M', 'count=128'],
    { timeoutMs: 120_000 },
  );
  assert.equal(r.code, 137, `exit ${r.code}; stderr: ${r.stderr}`);
  assert.equal(await status(d, 'oom'), 'exited');
  assert.equal(await inspectF(d, 'oom', '{{.State.OOMKilled}}'), 'true');
  assert.equal(await inspectF(d, 'oom', '{{.State.ExitCode}}'), '137');
  await d.ok(['rm', 'oom']);
});

test('an OOM kill writes nothing into vesseld’s working directory', async () => {
  // conmon writes an `oom` marker into its cwd as well as into the persist dir.
  assert.deepEqual(readdirSync(d.workDir), [], 'files were written into vesseld’s working directory');
});

test('--memory 64m: the same workload under the limit (32 MiB) is not OOM-killed', async () => {
  const r = await d.cli(
    ['run', '--name', 'no-oom', '--memory', '64m', '--tmpfs', '/big:size=256m', 'busybox', 'dd', 'if=/dev/zero', 'of=/big/f', 'bs=1M', 'count=32'],
    { timeoutMs: 120_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await inspectF(d, 'no-oom', '{{.State.OOMKilled}}'), 'false');
  await d.ok(['rm', 'no-oom']);
});

test('--memory sets memory.limit_in_bytes and --memory-reservation sets memory.soft_limit_in_bytes', async () => {
  const id = assertId(
    await d.ok(['run', '-d', '--memory', '96m', '--memory-reservation', '32m', 'busybox', 'sleep', '1000']),
  );
  assert.equal(cgroupFile(d, 'memory', id, 'memory.limit_in_bytes'), String(96 * 1024 * 1024));
  assert.equal(cgroupFile(d, 'memory', id, 'memory.soft_limit_in_bytes'), String(32 * 1024 * 1024));
  assert.equal(await inspectF(d, id, '{{.HostConfig.MemoryReservation}}'), String(32 * 1024 * 1024));
  await d.ok(['rm', '-f', id]);
});

test('--pids-limit 20: a fork loop never exceeds 20 processes, the host is fine and rm -f cleans up', async () => {
  // The fork loop runs in a subshell (busybox sh exits when a fork fails);
  // PID 1 then execs a sleeper, so the container stays up at its limit.
  const id = assertId(
    await d.ok([
      'run', '-d', '--pids-limit', '20', 'busybox', 'sh', '-c',
      '(i=0; while [ $i -lt 100 ]; do sleep 1000 & i=$((i+1)); done) 2>/dev/null; exec sleep 1000',
    ]),
  );
  assert.equal(cgroupFile(d, 'pids', id, 'pids.max'), '20');
  let max = 0;
  for (let i = 0; i < 15; i++) {
    max = Math.max(max, Number(cgroupFile(d, 'pids', id, 'pids.current')));
    await sleep(200);
  }
  assert.ok(max > 10, `the loop did not start many processes (max pids.current ${max})`);
  assert.ok(max <= 20, `pids.current reached ${max} > 20`);
  const hits = Number(/max (\d+)/.exec(cgroupFile(d, 'pids', id, 'pids.events'))?.[1] ?? '0');
  assert.ok(hits > 0, 'pids.events should count the forks refused at the limit');
  assert.equal(await status(d, id), 'running');
  const top = await d.ok(['top', id]);
  const procs = top.split('\n').filter(Boolean).length - 1;
  assert.ok(procs > 10 && procs <= 20, `top shows ${procs} processes:\n${top}`);
  // The host and the daemon are fine: another container starts and runs.
  assert.equal(await d.ok(['run', '--rm', 'busybox', 'echo', 'fine']), 'fine\n');
  await d.ok(['rm', '-f', id], { timeoutMs: 60_000 });
  assert.deepEqual(leftoversFor(d, id), []);
  assert.notEqual((await d.cli(['inspect', id])).code, 0);
});

test('--cpus 0.5: cfs quota 50000/100000 and a busy loop uses about half a core', async () => {
  const id = assertId(await d.ok(['run', '-d', '--cpus', '0.5', 'busybox', 'sh', '-c', 'while :; do :; done']));
  assert.equal(cgroupFile(d, 'cpu', id, 'cpu.cfs_quota_us'), '50000');
  assert.equal(cgroupFile(d, 'cpu', id, 'cpu.cfs_period_us'), '100000');
  await sleep(3000);
  const u0 = BigInt(cgroupFile(d, 'cpuacct', id, 'cpuacct.usage'));
  const t0 = process.hrtime.bigint();
  await sleep(2000);
  const u1 = BigInt(cgroupFile(d, 'cpuacct', id, 'cpuacct.usage'));
  const t1 = process.hrtime.bigint();
  const cores = Number(u1 - u0) / Number(t1 - t0);
  assert.ok(cores >= 0.3 && cores <= 0.7, `measured ${cores.toFixed(3)} cores, expected 0.3..0.7`);
  await d.ok(['rm', '-f', id]);
});

test('--cpu-shares 512 is written to cpu.shares', async () => {
  const id = assertId(await d.ok(['run', '-d', '--cpu-shares', '512', 'busybox', 'sleep', '1000']));
  assert.equal(cgroupFile(d, 'cpu', id, 'cpu.shares'), '512');
  assert.equal(await inspectF(d, id, '{{.HostConfig.CpuShares}}'), '512');
  await d.ok(['rm', '-f', id]);
});

test('a container without limits gets no memory limit and no cpu quota', async () => {
  const id = assertId(await d.ok(['run', '-d', 'busybox', 'sleep', '1000']));
  assert.equal(cgroupFile(d, 'cpu', id, 'cpu.cfs_quota_us'), '-1');
  assert.ok(BigInt(cgroupFile(d, 'memory', id, 'memory.limit_in_bytes')) > 1n << 40n);
  await d.ok(['rm', '-f', id]);
  await waitFor('the cgroup to be removed', () => !existsSync(path.join('/sys/fs/cgroup/memory', d.cgroupParent, id)), 10_000);
});
