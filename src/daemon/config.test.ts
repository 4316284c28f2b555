import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDaemonArgs, type DaemonConfig } from './config.js';

test('--insecure-registry is repeatable and validated', () => {
  const cfg = parseDaemonArgs(['--insecure-registry', 'reg.lan:5000', '--insecure-registry=10.0.0.0/8']) as DaemonConfig;
  assert.deepEqual(cfg.insecureRegistries, ['reg.lan:5000', '10.0.0.0/8']);
  assert.deepEqual((parseDaemonArgs([]) as DaemonConfig).insecureRegistries, []);
  assert.throws(() => parseDaemonArgs(['--insecure-registry', 'not a host']), /Invalid insecure registry/);
});
