import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../core/errors.js';
import {
  ALL_CAPABILITIES,
  CAPABILITY_BITS,
  DEFAULT_CAPABILITIES,
  capMask,
  capsFromMask,
  formatCapMask,
  normalizeCapability,
  resolveCapabilities,
} from './capabilities.js';

test('the capability table covers bits 0..40 without gaps', () => {
  assert.equal(ALL_CAPABILITIES.length, 41);
  ALL_CAPABILITIES.forEach((name, i) => assert.equal(CAPABILITY_BITS[name], i));
  assert.equal(CAPABILITY_BITS.CAP_SYS_ADMIN, 21);
  assert.equal(CAPABILITY_BITS.CAP_NET_BIND_SERVICE, 10);
  assert.equal(CAPABILITY_BITS.CAP_CHECKPOINT_RESTORE, 40);
});

test('the default set has Docker mask 0xa80425fb', () => {
  assert.equal(DEFAULT_CAPABILITIES.length, 14);
  assert.equal(capMask(DEFAULT_CAPABILITIES), 0xa80425fbn);
  assert.equal(formatCapMask(capMask(DEFAULT_CAPABILITIES)), '00000000a80425fb');
});

test('names are accepted with or without CAP_ and in any case', () => {
  assert.equal(normalizeCapability('net_admin'), 'CAP_NET_ADMIN');
  assert.equal(normalizeCapability('Cap_Sys_Admin'), 'CAP_SYS_ADMIN');
  assert.equal(normalizeCapability(' CAP_KILL '), 'CAP_KILL');
  assert.equal(normalizeCapability('all'), 'ALL');
});

test('no add or drop gives the default set, ordered by bit', () => {
  const caps = resolveCapabilities([], []);
  assert.deepEqual(caps, [...DEFAULT_CAPABILITIES]);
  assert.equal(caps[0], 'CAP_CHOWN');
  assert.equal(caps.at(-1), 'CAP_SETFCAP');
});

test('add and drop modify the default set', () => {
  const caps = resolveCapabilities(['net_admin', 'SYS_PTRACE'], ['cap_mknod', 'NET_RAW']);
  assert.ok(caps.includes('CAP_NET_ADMIN'));
  assert.ok(caps.includes('CAP_SYS_PTRACE'));
  assert.ok(!caps.includes('CAP_MKNOD'));
  assert.ok(!caps.includes('CAP_NET_RAW'));
  assert.equal(caps.length, 14);
});

test('adding a default capability twice does not duplicate it', () => {
  assert.deepEqual(resolveCapabilities(['CHOWN', 'chown'], []), [...DEFAULT_CAPABILITIES]);
});

test('an add beats a drop of the same capability', () => {
  assert.ok(resolveCapabilities(['KILL'], ['KILL']).includes('CAP_KILL'));
});

test('drop ALL then add X gives only X', () => {
  assert.deepEqual(resolveCapabilities(['NET_BIND_SERVICE'], ['ALL']), ['CAP_NET_BIND_SERVICE']);
  assert.equal(capMask(resolveCapabilities(['NET_BIND_SERVICE'], ['ALL'])), 0x400n);
  assert.deepEqual(resolveCapabilities([], ['all']), []);
});

test('add ALL gives everything except the named drops', () => {
  assert.deepEqual(resolveCapabilities(['ALL'], []), [...ALL_CAPABILITIES]);
  const caps = resolveCapabilities(['ALL'], ['SYS_ADMIN', 'cap_net_admin']);
  assert.equal(caps.length, 39);
  assert.ok(!caps.includes('CAP_SYS_ADMIN'));
  assert.ok(!caps.includes('CAP_NET_ADMIN'));
  // Add ALL wins over drop ALL, as in Docker.
  assert.deepEqual(resolveCapabilities(['ALL'], ['ALL']), [...ALL_CAPABILITIES]);
});

test('ALL can be restricted to the capabilities the daemon holds', () => {
  const available = capsFromMask(0x1fffeffffffn); // everything but CAP_SYS_RESOURCE
  const caps = resolveCapabilities(['ALL'], [], { all: available });
  assert.equal(caps.length, 40);
  assert.ok(!caps.includes('CAP_SYS_RESOURCE'));
});

test('unknown names are rejected', () => {
  assert.throws(() => resolveCapabilities(['FOO'], []), (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError);
    assert.equal(e.message, 'Unknown capability: FOO');
    return true;
  });
  assert.throws(() => resolveCapabilities([], ['CAP_BAR']), /^InvalidArgumentError: Unknown capability: CAP_BAR$/);
  assert.throws(() => capMask(['nope']), InvalidArgumentError);
});

test('capMask and capsFromMask are inverses', () => {
  assert.equal(capMask([]), 0n);
  assert.equal(capMask(['ALL']), (1n << 41n) - 1n);
  assert.deepEqual(capsFromMask(0xa80425fbn), [...DEFAULT_CAPABILITIES]);
  assert.deepEqual(capsFromMask(capMask(['SYS_ADMIN', 'BPF'])), ['CAP_SYS_ADMIN', 'CAP_BPF']);
  assert.deepEqual(capsFromMask(1n << 60n), []);
});
