import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareKernelVersions, parseKernelDepends } from './kernel.js';

test('parseKernelDepends finds the versioned kernel package behind the metapackage', () => {
  const out = 'linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n';
  assert.equal(parseKernelDepends(out), 'linux-image-6.1.0-56-cloud-amd64');
  assert.equal(parseKernelDepends('linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64-unsigned\n'), null);
  assert.equal(parseKernelDepends('linux-image-cloud-amd64\n'), null);
});

test('compareKernelVersions orders ABI numbers numerically', () => {
  const v = ['6.1.0-56-cloud-amd64', '6.1.0-9-cloud-amd64', '6.10.0-1-cloud-amd64'].sort(compareKernelVersions);
  assert.deepEqual(v, ['6.1.0-9-cloud-amd64', '6.1.0-56-cloud-amd64', '6.10.0-1-cloud-amd64']);
});
