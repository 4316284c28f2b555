import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { U64_MAX } from '../json.js';
import { QmpClient, QmpError } from './client.js';

const dir = mkdtempSync(join(tmpdir(), 'vessel-qmp-'));
const procs: ChildProcess[] = [];

function startQemu(name: string, extra: string[] = []): { proc: ChildProcess; sock: string; exited: Promise<number | null> } {
  const sock = join(dir, `${name}.qmp`);
  const proc = spawn(
    'qemu-system-x86_64',
    ['-accel', 'tcg', '-M', 'q35', '-nodefaults', '-display', 'none', '-no-user-config', '-m', '64',
      '-device', 'virtio-balloon-pci,id=balloon0', '-qmp', `unix:${sock},server=on,wait=off`, ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  procs.push(proc);
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, sock, exited };
}

after(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('QmpClient against a real QEMU', () => {
  let q: ReturnType<typeof startQemu>;
  let qmp: QmpClient;

  before(async () => {
    q = startQemu('src', ['-S']);
    qmp = await QmpClient.connect(q.sock, { connectTimeoutMs: 10_000 });
  });
  after(async () => {
    if (!qmp.isClosed) await qmp.close();
  });

  it('handshakes and reports prelaunch', async () => {
    assert.equal(qmp.greeting?.version.major, 7);
    assert.deepEqual(await qmp.queryStatus(), { status: 'prelaunch', running: false });
  });

  it('cont and stop emit RESUME and STOP', async () => {
    const resumed = qmp.waitForEvent('RESUME', undefined, 5000);
    await qmp.cont();
    await resumed;
    assert.equal((await qmp.queryStatus()).status, 'running');
    const stopped = qmp.waitForEvent('STOP', undefined, 5000);
    await qmp.stop();
    await stopped;
    assert.equal((await qmp.queryStatus()).status, 'paused');
  });

  it('QMP errors carry class and description', async () => {
    await assert.rejects(qmp.execute('no-such-command'), (e: unknown) => {
      assert.ok(e instanceof QmpError);
      assert.equal(e.errorClass, 'CommandNotFound');
      assert.match(e.message, /no-such-command/);
      return true;
    });
    await assert.rejects(qmp.qomGet('/machine/peripheral/nope', 'x'), QmpError);
  });

  it('balloon guest-stats keeps u64 max exact and types it as null', async () => {
    await qmp.setGuestStatsInterval(2);
    const raw = await qmp.qomGet<{ stats: Record<string, unknown> }>('/machine/peripheral/balloon0', 'guest-stats');
    assert.equal(raw.stats['stat-free-memory'], U64_MAX);
    assert.equal(raw.stats['stat-free-memory'], 18446744073709551615n);
    const s = await qmp.guestStats();
    assert.equal(s.freeMemory, null);
    assert.equal(s.lastUpdate, 0);
    assert.equal((await qmp.queryBalloon()).actual, 64 * 1024 * 1024);
    await qmp.balloon(32 * 1024 * 1024); // no guest driver: accepted, nothing moves
  });

  it('HMP error text becomes an error; plain output is returned', async () => {
    assert.match(await qmp.humanMonitorCommand('info status'), /VM status: paused/);
    await assert.rejects(qmp.humanMonitorCommand('savevm s1'), /HMP savevm failed: .+/);
    await assert.rejects(qmp.snapshotSave('s1', 'nonode', ['nonode']), /snapshot-save s1 failed: .*nonode/i);
    assert.deepEqual(await qmp.queryJobs(), []); // the failed job was dismissed
  });

  it('lists vCPU threads', async () => {
    const cpus = await qmp.queryCpusFast();
    assert.equal(cpus.length, 1);
    assert.ok(cpus[0]!.threadId > 0);
    assert.equal(cpus[0]!.cpuIndex, 0);
  });

  it('migrates to a file with exec: and a second QEMU restores it', async () => {
    const file = join(dir, 'state.bin');
    await qmp.migrateSetCapabilities({ events: true });
    await qmp.migrateSetParameters({ maxBandwidth: 1 << 30, downtimeLimitMs: 500 });
    const completed = qmp.waitForEvent('MIGRATION', (e) => e.data['status'] === 'completed', 30_000);
    await qmp.migrate(`exec:cat > ${file}`);
    const info = await qmp.waitMigration(30_000);
    await completed;
    assert.equal(info.status, 'completed');
    assert.ok(statSync(file).size > 0);
    assert.equal((await qmp.queryStatus()).status, 'postmigrate');

    const dst = startQemu('dst', ['-incoming', `exec:cat ${file}`]);
    const qmp2 = await QmpClient.connect(dst.sock, { connectTimeoutMs: 10_000 });
    try {
      const deadline = Date.now() + 20_000;
      let st = await qmp2.queryStatus();
      while (st.status === 'inmigrate' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        st = await qmp2.queryStatus();
      }
      // The source was paused when saved, so the restored VM is paused too.
      assert.ok(['running', 'paused'].includes(st.status), st.status);
      assert.equal((await qmp2.queryMigrate()).status, 'completed');
      await qmp2.quit();
      assert.equal(await dst.exited, 0);
    } finally {
      if (!qmp2.isClosed) await qmp2.close();
    }
  });

  it('quit emits SHUTDOWN, closes the socket, and later calls fail clearly', async () => {
    const shutdown = qmp.waitForEvent('SHUTDOWN', undefined, 5000);
    await qmp.quit();
    const ev = await shutdown;
    assert.equal(ev.data['reason'], 'host-qmp-quit');
    assert.equal(await q.exited, 0);
    assert.ok(qmp.isClosed);
    await assert.rejects(qmp.queryStatus(), /QMP connection .* closed/);
  });
});

describe('QmpClient connection failures', () => {
  it('pending commands reject with one clear message when QEMU dies', async () => {
    const q = startQemu('kill', ['-S']);
    const qmp = await QmpClient.connect(q.sock, { connectTimeoutMs: 10_000 });
    const pending = qmp.waitForEvent('NEVER', undefined, 10_000);
    q.proc.kill('SIGKILL');
    await assert.rejects(pending, /QMP event NEVER: not seen: QMP connection .* closed/);
    await assert.rejects(qmp.queryStatus(), /closed/);
  });

  it('a command times out, and a pending command rejects when QEMU is killed', async () => {
    const q = startQemu('stopped', ['-S']);
    const qmp = await QmpClient.connect(q.sock, { connectTimeoutMs: 10_000 });
    q.proc.kill('SIGSTOP'); // QEMU cannot answer now
    await assert.rejects(qmp.execute('query-status', {}, { timeoutMs: 200 }), /^UnavailableError: QMP query-status: no reply within 200 ms$/);
    const pending = qmp.execute('query-status', {}, { timeoutMs: 10_000 });
    q.proc.kill('SIGKILL');
    await assert.rejects(pending, /^UnavailableError: QMP query-status: no reply, connection .*stopped\.qmp closed(: ECONNRESET)?$/);
    await q.exited;
  });

  it('a missing socket fails after the connect timeout', async () => {
    await assert.rejects(QmpClient.connect(join(dir, 'absent.sock'), { connectTimeoutMs: 200 }), /Cannot connect to QMP socket .*ENOENT/);
  });
});
