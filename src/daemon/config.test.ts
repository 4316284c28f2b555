import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDaemonArgs, type DaemonConfig } from './config.js';

test('--insecure-registry is repeatable and validated', () => {
  const cfg = parseDaemonArgs(['--insecure-registry', 'reg.lan:5000', '--insecure-registry=10.0.0.0/8']) as DaemonConfig;
  assert.deepEqual(cfg.insecureRegistries, ['reg.lan:5000', '10.0.0.0/8']);
  assert.deepEqual((parseDaemonArgs([]) as DaemonConfig).insecureRegistries, []);
  assert.throws(() => parseDaemonArgs(['--insecure-registry', 'not a host']), /Invalid insecure registry/);
});

test('--exec-root takes a directory; without it the daemon picks its own', () => {
  assert.equal((parseDaemonArgs(['--exec-root', '/run/vx']) as DaemonConfig).execRoot, '/run/vx');
  assert.equal((parseDaemonArgs(['--exec-root=/dev/shm/vx']) as DaemonConfig).execRoot, '/dev/shm/vx');
  assert.equal((parseDaemonArgs([]) as DaemonConfig).execRoot, null);
  assert.throws(() => parseDaemonArgs(['--exec-root']), /needs an argument/);
});
