import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RemoteDescriptor } from './manifest.js';
import { formatPlatform, parsePlatform, selectManifest } from './platform.js';

const d = (n: number, os: string, architecture: string, variant?: string): RemoteDescriptor => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
  size: 100 + n,
  platform: variant ? { os, architecture, variant } : { os, architecture },
});

const index = [d(1, 'linux', 'arm', 'v6'), d(2, 'linux', 'arm', 'v7'), d(3, 'linux', 'arm64', 'v8'), d(4, 'linux', 'amd64'), d(5, 'windows', 'amd64')];

test('parsePlatform reads os/arch[/variant] and defaults to linux/amd64', () => {
  assert.deepEqual(parsePlatform(undefined), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatform(''), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.deepEqual(parsePlatform('Linux/x86_64'), { os: 'linux', architecture: 'amd64' });
  assert.throws(() => parsePlatform('linux'), /Invalid platform/);
  assert.throws(() => parsePlatform('a/b/c/d'), /Invalid platform/);
  assert.equal(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }), 'linux/arm/v7');
});

test('selectManifest picks the default platform', () => {
  assert.equal(selectManifest(index, parsePlatform('')).size, 104);
});

test('selectManifest matches variants, and arm64 with or without v8', () => {
  assert.equal(selectManifest(index, parsePlatform('linux/arm/v7')).size, 102);
  assert.equal(selectManifest(index, parsePlatform('linux/arm/v6')).size, 101);
  assert.equal(selectManifest(index, parsePlatform('linux/arm64')).size, 103);
  assert.equal(selectManifest(index, parsePlatform('linux/arm64/v8')).size, 103);
  assert.equal(selectManifest(index, parsePlatform('windows/amd64')).size, 105);
  // An entry without a variant serves a request for any variant of that arch.
  assert.equal(selectManifest([d(7, 'linux', 'arm')], parsePlatform('linux/arm/v7')).size, 107);
});

test('selectManifest fails with the available platforms listed', () => {
  assert.throws(() => selectManifest(index, parsePlatform('linux/s390x')), /No matching manifest for linux\/s390x.*linux\/amd64/);
  assert.throws(() => selectManifest([d(1, 'linux', 'arm', 'v6')], parsePlatform('linux/arm/v7')), /No matching manifest/);
});
