import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../core/errors.js';
import { baseDiskInodes, baseDiskSize, imageIdHex, overlayLowerdir } from './base-disk.js';

const MiB = 1024 * 1024;

test('imageIdHex accepts digests with or without the algorithm', () => {
  const hex = 'ab'.repeat(32);
  assert.equal(imageIdHex(`sha256:${hex}`), hex);
  assert.equal(imageIdHex(hex), hex);
  for (const bad of ['', 'sha256:', '../../etc', 'ABCDEF012345', 'sha512:' + hex]) {
    assert.throws(() => imageIdHex(bad), (e: unknown) => e instanceof InvalidArgumentError && /^Invalid image id/.test(e.message), bad);
  }
});

test('baseDiskSize leaves headroom and rounds to MiB', () => {
  assert.equal(baseDiskSize(0, 0), 128 * MiB);
  const s = baseDiskSize(200 * MiB, 10000);
  assert.equal(s % MiB, 0);
  assert.ok(s >= 200 * MiB * 1.25 + 64 * MiB);
  assert.equal(baseDiskInodes(100), 16384);
  assert.equal(baseDiskInodes(20000), 40000);
});

test('overlayLowerdir joins layers and refuses what overlayfs cannot parse', () => {
  assert.equal(overlayLowerdir(['/k', '/l/1', '/l/2']), 'lowerdir=/k:/l/1:/l/2');
  assert.throws(() => overlayLowerdir(['/a:b']), /Unusable layer directory/);
  assert.throws(() => overlayLowerdir(['relative']), /Unusable layer directory/);
  assert.throws(() => overlayLowerdir(Array.from({ length: 200 }, (_, i) => `/var/lib/vessel/images/l/${i}`)), /too many layers/);
});
