import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { EarlyReleases } from './early-release.js';

function sleeper(seconds: string) {
  const child = spawn('sleep', [seconds], { stdio: 'ignore' });
  return { child, exited: once(child, 'exit') };
}

test('a release begins when the process exits, once, with the OOM state read before it', async (t) => {
  const keepAlive = setInterval(() => {}, 1000); // the pidfd does not hold the loop open
  t.after(() => clearInterval(keepAlive));
  const early = new EarlyReleases();
  const { child, exited } = sleeper('0.2');
  const order: string[] = [];
  let resolveRelease!: () => void;
  const released = new Promise<void>((r) => (resolveRelease = r));
  early.watch('c1', child.pid!, {
    stillRunning: () => true,
    oomKilled: () => (order.push('oom'), true),
    release: async () => {
      order.push('release');
      resolveRelease();
    },
  });
  assert.equal(early.take('c1'), null, 'nothing before the exit');
  await exited;
  await released;
  const r = early.take('c1');
  assert.ok(r);
  assert.equal(r.oomKilled, true);
  assert.equal(await r.done, true);
  assert.deepEqual(order, ['oom', 'release']);
  assert.equal(early.take('c1'), null, 'consumed');
});

test('no release when the exit was handled already, and a failed release reports false', async (t) => {
  const keepAlive = setInterval(() => {}, 1000);
  t.after(() => clearInterval(keepAlive));
  const early = new EarlyReleases();
  const a = sleeper('0.1');
  let called = false;
  early.watch('a', a.child.pid!, { stillRunning: () => false, oomKilled: () => false, release: async () => void (called = true) });
  const b = sleeper('0.1');
  early.watch('b', b.child.pid!, { stillRunning: () => true, oomKilled: () => false, release: () => Promise.reject(new Error('busy')) });
  await Promise.all([a.exited, b.exited]);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(called, false);
  assert.equal(early.take('a'), null);
  assert.equal(await early.take('b')?.done, false);
  // A process already gone: nothing is watched and nothing happens.
  early.watch('gone', a.child.pid!, { stillRunning: () => true, oomKilled: () => false, release: async () => void (called = true) });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(called, false);
});
