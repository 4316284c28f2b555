import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRestartPolicy, restartDelayMs, shouldRestart } from './restart-policy.js';

const exit = (exitCode: number, extra: Partial<{ manuallyStopped: boolean; restartCount: number; daemonStartup: boolean }> = {}) => ({
  exitCode,
  manuallyStopped: false,
  restartCount: 0,
  daemonStartup: false,
  ...extra,
});

test('no policy never restarts', () => {
  assert.equal(shouldRestart(undefined, exit(1)), false);
  assert.equal(shouldRestart({ Name: 'no' }, exit(1)), false);
});

test('always restarts unless stopped by the user, but comes back at daemon start', () => {
  assert.equal(shouldRestart({ Name: 'always' }, exit(0)), true);
  assert.equal(shouldRestart({ Name: 'always' }, exit(0, { manuallyStopped: true })), false);
  assert.equal(shouldRestart({ Name: 'always' }, exit(0, { manuallyStopped: true, daemonStartup: true })), true);
});

test('unless-stopped stays stopped across daemon restarts', () => {
  assert.equal(shouldRestart({ Name: 'unless-stopped' }, exit(0)), true);
  assert.equal(shouldRestart({ Name: 'unless-stopped' }, exit(0, { manuallyStopped: true, daemonStartup: true })), false);
});

test('on-failure counts retries and ignores success', () => {
  const p = { Name: 'on-failure' as const, MaximumRetryCount: 2 };
  assert.equal(shouldRestart(p, exit(0)), false);
  assert.equal(shouldRestart(p, exit(1, { restartCount: 1 })), true);
  assert.equal(shouldRestart(p, exit(1, { restartCount: 2 })), false);
  assert.equal(shouldRestart({ Name: 'on-failure', MaximumRetryCount: 0 }, exit(1, { restartCount: 99 })), true);
});

test('back-off doubles and resets after a long run', () => {
  assert.equal(restartDelayMs(0, 0), 100);
  assert.equal(restartDelayMs(3, 0), 800);
  assert.equal(restartDelayMs(30, 0), 60_000);
  assert.equal(restartDelayMs(5, 20_000), 100);
});

test('parses the CLI forms', () => {
  assert.deepEqual(parseRestartPolicy('on-failure:3'), { Name: 'on-failure', MaximumRetryCount: 3 });
  assert.deepEqual(parseRestartPolicy('always'), { Name: 'always' });
  assert.throws(() => parseRestartPolicy('sometimes'), /Invalid restart policy/);
  assert.throws(() => parseRestartPolicy('always:3'), /Invalid restart policy/);
});
