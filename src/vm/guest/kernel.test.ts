import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compareKernelVersions, parseKernelDepends, readModule } from './kernel.js';

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

test('readModule decompresses .ko.xz, .ko.zst and .ko.gz with the host tools', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vessel-ko-'));
  try {
    const ko = Buffer.from('\x7fELF\0depends=virtio,virtio_ring\0name=virtio_blk\0');
    writeFileSync(path.join(dir, 'm.ko'), ko);
    assert.deepEqual(await readModule(path.join(dir, 'm.ko')), ko);
    for (const [tool, ext] of [['xz', 'xz'], ['zstd', 'zst'], ['gzip', 'gz']] as const) {
      const r = spawnSync(tool, ['-c', path.join(dir, 'm.ko')]);
      assert.equal(r.status, 0, `${tool} is needed: ${r.stderr}`);
      writeFileSync(path.join(dir, `m.ko.${ext}`), r.stdout);
      assert.deepEqual(await readModule(path.join(dir, `m.ko.${ext}`)), ko, ext);
    }
    writeFileSync(path.join(dir, 'bad.ko.xz'), 'not xz');
    await assert.rejects(readModule(path.join(dir, 'bad.ko.xz')), /^UnavailableError: Cannot decompress .*bad\.ko\.xz: xz exit code 1/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
