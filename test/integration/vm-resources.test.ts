/**
 * VM resources for real (issue 5, acceptance 4): CPU weights and caps on the
 * QEMU threads through cgroups, and the memory balloon.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { TestDaemon } from '../framework/daemon.js';
import { sleep, waitFor } from '../framework/helpers.js';

async function vmInspect(d: TestDaemon, name: string): Promise<any> {
  return JSON.parse(await d.ok(['vm', 'inspect', name]))[0];
}

async function cpuNs(d: TestDaemon, name: string): Promise<number> {
  return Number((await vmInspect(d, name)).Resources.CpuUsageNs);
}

async function agentUp(d: TestDaemon, name: string): Promise<void> {
  await waitFor(`the guest agent of ${name}`, async () => (await d.cli(['vm', 'exec', name, '--', 'true'], { timeoutMs: 200_000 })).code === 0, 400_000, 1000);
}

const BUSY = ['/bin/sh', '-c', 'setsid sh -c "while :; do :; done" >/dev/null 2>&1 < /dev/null &'];

describe('VM resources', { timeout: 1_800_000 }, () => {
  const d = new TestDaemon();

  before(async () => {
    await d.start();
    if ((await d.cli(['image', 'inspect', 'debian:bookworm'])).code !== 0) {
      await d.ok(['image', 'bootstrap', 'debian:bookworm', '--quiet'], { timeoutMs: 900_000 });
    }
  });

  after(() => d.destroy());

  it('CPU weights 1:2 on one core split CPU within 10% of 1:2; a 50% cap holds', async () => {
    await d.ok(['vm', 'create', 'w1', '--image', 'debian:bookworm', '--memory', '256m', '--cpu-weight', '100', '--start'], { timeoutMs: 900_000 });
    await d.ok(['vm', 'create', 'w2', '--image', 'debian:bookworm', '--memory', '256m', '--cpu-weight', '200', '--start'], { timeoutMs: 900_000 });
    await agentUp(d, 'w1');
    await agentUp(d, 'w2');
    // One core for both: every thread of both QEMU processes on CPU 0.
    for (const vm of ['w1', 'w2']) {
      const pid = (await vmInspect(d, vm)).State.pid;
      const r = spawnSync('taskset', ['-a', '-p', '-c', '0', String(pid)], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      await d.ok(['vm', 'exec', vm, '--', ...BUSY]);
    }
    await sleep(2000);
    const a0 = await cpuNs(d, 'w1');
    const b0 = await cpuNs(d, 'w2');
    await sleep(10_000);
    const a = (await cpuNs(d, 'w1')) - a0;
    const b = (await cpuNs(d, 'w2')) - b0;
    const ratio = a / b;
    process.stdout.write(`# cpu weight 100:200 → usage ${(a / 1e9).toFixed(2)} s : ${(b / 1e9).toFixed(2)} s, ratio ${ratio.toFixed(3)}\n`);
    assert.ok(Math.abs(ratio - 0.5) <= 0.05, `usage ratio ${ratio.toFixed(3)} should be within 10% of 0.5`);
    await d.ok(['vm', 'rm', '-f', 'w1', 'w2'], { timeoutMs: 120_000 });

    await d.ok(['vm', 'create', 'cap', '--image', 'debian:bookworm', '--memory', '256m', '--cpu-cap', '50', '--start'], { timeoutMs: 900_000 });
    await agentUp(d, 'cap');
    await d.ok(['vm', 'exec', 'cap', '--', ...BUSY]);
    await sleep(2000);
    const c0 = await cpuNs(d, 'cap');
    const t0 = Date.now();
    await sleep(8000);
    const share = ((await cpuNs(d, 'cap')) - c0) / ((Date.now() - t0) * 1e6);
    process.stdout.write(`# cpu cap 50% → ${(share * 100).toFixed(1)}% of one CPU\n`);
    assert.ok(share <= 0.55 && share >= 0.35, `a 50% cap gave ${(share * 100).toFixed(1)}%`);
    await d.ok(['vm', 'rm', '-f', 'cap'], { timeoutMs: 120_000 });
  });

  it('ballooning 1 GiB → 512 MiB shows in the balloon statistics and in QEMU RSS', async () => {
    await d.ok(['vm', 'create', 'b1', '--image', 'debian:bookworm', '--memory', '1g', '--start'], { timeoutMs: 900_000 });
    await agentUp(d, 'b1');
    // Make the guest touch ~600 MiB so QEMU's RSS holds it, then free it inside the guest.
    await d.ok(['vm', 'exec', 'b1', '--', '/bin/sh', '-c', 'mkdir -p /mnt/fill && mount -t tmpfs -o size=700m tmpfs /mnt/fill && head -c 600M /dev/zero > /mnt/fill/x && rm /mnt/fill/x && umount /mnt/fill'], );
    const rssFull = (await vmInspect(d, 'b1')).State.rss;
    await d.ok(['vm', 'memory', 'set', 'b1', '512m']);
    const mem = await waitFor('the balloon to reach 512 MiB', async () => {
      const m = (await vmInspect(d, 'b1')).Memory;
      return m?.actual === 512 * 1024 ** 2 ? m : null;
    }, 120_000, 1000);
    assert.equal(mem.target, 512 * 1024 ** 2);
    const reachedAt = Date.now();
    const rssAfter = await waitFor('QEMU RSS to drop', async () => {
      const rss = (await vmInspect(d, 'b1')).State.rss;
      return rss < rssFull - 200 * 1024 ** 2 ? rss : null;
    }, 120_000, 1000);
    // The driver reports every 2 s of guest time and a loaded TCG guest can lag:
    // only a report made after the balloon reached its target says anything about it
    // (QEMU's last-update is whole seconds of host time).
    const stats = await waitFor('guest memory statistics from after the balloon moved', async () => {
      const g = (await vmInspect(d, 'b1')).Memory?.guest;
      return g && typeof g.totalMemory === 'number' && g.lastUpdate > Math.ceil(reachedAt / 1000) ? g : null;
    }, 120_000, 1000);
    process.stdout.write(`# balloon: RSS ${Math.round(rssFull / 2 ** 20)} → ${Math.round(rssAfter / 2 ** 20)} MiB; guest total ${Math.round(stats.totalMemory / 2 ** 20)} MiB, free ${Math.round(stats.freeMemory / 2 ** 20)} MiB, available ${Math.round((stats.availableMemory ?? 0) / 2 ** 20)} MiB\n`);
    assert.ok(stats.totalMemory <= 1024 * 1024 ** 2);
    assert.ok(stats.freeMemory < 512 * 1024 ** 2, 'with 512 MiB ballooned away the guest sees less than 512 MiB free');
    await d.ok(['vm', 'rm', '-f', 'b1'], { timeoutMs: 120_000 });
  });
});
