/**
 * Acceptance 6: containers survive a daemon crash. Running containers keep
 * running and logging while vesseld is down; a new vesseld on the same root
 * adopts them, handles exits that happened meanwhile (restart policies), and
 * keeps health status. Also: the restart policies and health checks alone.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { TestDaemon } from '../framework/daemon.js';
import { assertId, inspectF, sleep, status, waitFor } from '../framework/helpers.js';

let d: TestDaemon;

before(async () => {
  d = new TestDaemon();
  await d.start();
  await d.ensureBusybox();
});

after(async () => {
  await d?.destroy();
});

const COUNTER = 'i=0; while true; do echo $i; i=$((i+1)); sleep 0.5; done';

async function logLines(ref: string): Promise<string[]> {
  return (await d.ok(['logs', ref])).split('\n').filter(Boolean);
}

async function restartCount(ref: string): Promise<number> {
  return Number(await inspectF(d, ref, '{{.RestartCount}}'));
}

test('after kill -9 of the daemon, a new daemon on the same root adopts the running containers and their logs', async () => {
  const counters: string[] = [];
  for (let i = 0; i < 3; i++) counters.push(assertId(await d.ok(['run', '-d', '--name', `counter${i}`, 'busybox', 'sh', '-c', COUNTER])));
  for (const c of counters) await waitFor(`${c} to log`, async () => (await logLines(c)).length >= 2, 30_000);
  const always = assertId(await d.ok(['run', '-d', '--name', 'always', '--restart', 'always', 'busybox', 'sh', '-c', 'sleep 2; exit 1']));
  const before = new Map<string, number>();
  for (const c of counters) before.set(c, (await logLines(c)).length);
  const alwaysCountBefore = await restartCount(always);

  await d.kill9();
  assert.equal(d.running, false);
  await sleep(4000);
  await d.restart();

  const running = (await d.ok(['ps', '-q', '--no-trunc'])).split('\n').filter(Boolean);
  for (const c of counters) assert.ok(running.includes(c), `${c} is not listed as running after the restart: ${running}`);
  for (const c of counters) {
    assert.equal(await status(d, c), 'running');
    const lines = await logLines(c);
    const n0 = before.get(c)!;
    assert.ok(lines.length >= n0 + 6, `${c}: ${lines.length} lines after, ${n0} before the crash: the lines printed while the daemon was down are missing`);
    // No line lost or duplicated: the counter is 0, 1, 2, ... without gaps.
    assert.deepEqual(lines, lines.map((_, i) => String(i)), `${c}: log is not a gapless counter`);
  }
  // The always-restart container exited while the daemon was down and is started again.
  await waitFor(
    'the --restart always container to be restarted',
    async () => (await restartCount(always)) > alwaysCountBefore && ['running', 'restarting'].includes(await status(d, always)),
    30_000,
  );
  assert.ok((await restartCount(always)) >= 1);

  // The adopted containers are fully controllable.
  for (const c of counters) {
    const r = await d.cli(['stop', '-t', '1', c], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await status(d, c), 'exited');
  }
  await d.ok(['rm', '-f', always, ...counters], { timeoutMs: 60_000 });
  for (const c of [always, ...counters]) {
    const left = d.leftovers();
    assert.ok(!left.runtimeState.some((r) => r.includes(c)), `runtime state left for ${c}`);
    assert.ok(!left.mounts.some((m) => m.includes(c)), `mount left for ${c}`);
  }
});

test('--restart on-failure:2 restarts a failing container exactly twice, then it stays exited', async () => {
  const id = assertId(await d.ok(['run', '-d', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'sleep 0.3; exit 1']));
  await waitFor(
    'two restarts and a final exit',
    async () => (await status(d, id)) === 'exited' && (await restartCount(id)) === 2,
    60_000,
  );
  await sleep(3000);
  assert.equal(await status(d, id), 'exited');
  assert.equal(await restartCount(id), 2);
  assert.equal(await inspectF(d, id, '{{.State.ExitCode}}'), '1');
  await d.ok(['rm', id]);
});

test('--restart on-failure does not restart a container that exits 0', async () => {
  const id = assertId(await d.ok(['run', '-d', '--restart', 'on-failure', 'busybox', 'true']));
  await waitFor('the container to exit', async () => (await status(d, id)) === 'exited', 30_000);
  await sleep(2000);
  assert.equal(await status(d, id), 'exited');
  assert.equal(await restartCount(id), 0);
  await d.ok(['rm', id]);
});

test('--restart no: a failing container is not restarted', async () => {
  const id = assertId(await d.ok(['run', '-d', '--restart', 'no', 'busybox', 'sh', '-c', 'exit 1']));
  await waitFor('the container to exit', async () => (await status(d, id)) === 'exited', 30_000);
  await sleep(3000);
  assert.equal(await status(d, id), 'exited');
  assert.equal(await restartCount(id), 0);
  assert.equal(await inspectF(d, id, '{{.State.ExitCode}}'), '1');
  await d.ok(['rm', id]);
});

test('--restart always: docker stop keeps it stopped', async () => {
  const id = assertId(await d.ok(['run', '-d', '--restart', 'always', 'busybox', 'sleep', '1000']));
  await d.ok(['stop', '-t', '1', id], { timeoutMs: 60_000 });
  await sleep(2000);
  assert.equal(await status(d, id), 'exited');
  await d.ok(['rm', id]);
});

test('health check: unhealthy after failing probes, healthy once the probe passes; status survives a daemon restart', async () => {
  const flags = ['--health-cmd', 'test -f /tmp/ok', '--health-interval', '1s', '--health-retries', '2'];
  const id = assertId(await d.ok(['run', '-d', '--name', 'health1', ...flags, 'busybox', 'sleep', '1000']));
  const sick = assertId(await d.ok(['run', '-d', '--name', 'health2', ...flags, 'busybox', 'sleep', '1000']));
  const health = (ref: string) => inspectF(d, ref, '{{.State.Health.Status}}');
  await waitFor('unhealthy', async () => (await health(id)) === 'unhealthy', 30_000);
  assert.ok(Number(await inspectF(d, id, '{{.State.Health.FailingStreak}}')) >= 2);
  assert.match(await d.ok(['ps', '--filter', `id=${id}`]), /\(unhealthy\)/);
  await d.ok(['exec', id, 'touch', '/tmp/ok']);
  await waitFor('healthy', async () => (await health(id)) === 'healthy', 30_000);
  assert.equal(await inspectF(d, id, '{{.State.Health.FailingStreak}}'), '0');
  const log = JSON.parse(await inspectF(d, id, '{{json .State.Health.Log}}')) as Array<{ ExitCode: number }>;
  assert.ok(log.length >= 1 && log.at(-1)!.ExitCode === 0);
  const filtered = (await d.ok(['ps', '-q', '--no-trunc', '--filter', 'health=healthy'])).split('\n').filter(Boolean);
  assert.deepEqual(filtered, [id]);
  await waitFor('the second container to be unhealthy', async () => (await health(sick)) === 'unhealthy', 30_000);

  // Crash and restart the daemon: the statuses are what they were, not "starting".
  await d.kill9();
  await d.restart();
  assert.equal(await health(id), 'healthy');
  assert.equal(await health(sick), 'unhealthy');
  // Checks resume after the restart.
  await d.ok(['exec', sick, 'touch', '/tmp/ok']);
  await waitFor('the second container to become healthy after the restart', async () => (await health(sick)) === 'healthy', 30_000);
  await d.ok(['rm', '-f', id, sick]);
});

test('graceful daemon stop and restart keeps containers running', async () => {
  const id = assertId(await d.ok(['run', '-d', 'busybox', 'sh', '-c', COUNTER]));
  await waitFor('the counter to log', async () => (await logLines(id)).length >= 1);
  await d.stop();
  await sleep(1500);
  await d.restart();
  assert.equal(await status(d, id), 'running');
  const n = (await logLines(id)).length;
  await waitFor('logging to continue after the restart', async () => (await logLines(id)).length > n + 1, 30_000);
  await d.ok(['rm', '-f', id]);
});

/** conmon processes monitoring (or about to monitor) container `id`. */
function conmonsFor(id: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv[0] === '/usr/bin/conmon' && argv[argv.indexOf('-c') + 1] === id) pids.push(Number(pid));
    } catch {
      /* gone */
    }
  }
  return pids;
}

test('a created container gets its conmon ahead of the start; it goes with rm, and with a killed daemon without creating anything', async () => {
  const first = assertId(await d.ok(['create', 'busybox', 'echo', 'warm']));
  await waitFor('the conmon started ahead', () => (conmonsFor(first).length === 1 ? true : null), 10_000, 50);
  assert.equal((await d.ok(['start', '-a', first])).trim(), 'warm');
  await d.ok(['rm', first]);

  const removed = assertId(await d.ok(['create', 'busybox', 'true']));
  await waitFor('the conmon started ahead', () => (conmonsFor(removed).length === 1 ? true : null), 10_000, 50);
  await d.ok(['rm', removed]);
  await waitFor('the unused conmon to be killed', () => (conmonsFor(removed).length === 0 ? true : null), 5_000, 50);

  // A daemon killed while a conmon waits on its start pipe takes that conmon along (its
  // parent-death signal): the pipe's end of file would otherwise read as a go-ahead.
  const orphan = assertId(await d.ok(['create', '--name', 'warm-orphan', 'busybox', 'echo', 'later']));
  await waitFor('the conmon started ahead', () => (conmonsFor(orphan).length === 1 ? true : null), 10_000, 50);
  await d.kill9();
  await waitFor('the waiting conmon to die with the daemon', () => (conmonsFor(orphan).length === 0 ? true : null), 5_000, 50);
  await sleep(300);
  assert.deepEqual(
    d.leftovers().runtimeState.filter((s) => s.endsWith(orphan)),
    [],
    'the runtime never created the container',
  );
  await d.restart();
  assert.equal(await status(d, 'warm-orphan'), 'created');
  assert.equal((await d.ok(['start', '-a', 'warm-orphan'])).trim(), 'later');
  await d.ok(['rm', 'warm-orphan']);
});
