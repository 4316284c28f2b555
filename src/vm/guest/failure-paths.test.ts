/**
 * Failure paths of the guest builders: one clear error line of the right
 * class, and nothing left behind (mounts, temp files). Needs root (overlay
 * mounts) and qemu-img, like the rest of the VM code.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AlreadyExistsError, InvalidArgumentError, UnavailableError, type VesselError } from '../../core/errors.js';
import { spawnSync } from 'node:child_process';
import { MS, mount } from '../../native/native.js';
import { createOverlayDisk, ensureBaseDisk } from './base-disk.js';
import { ensureGuestKernel } from './kernel.js';

let dir: string;
let layer: string;
let kit: string;

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'vessel-guest-fail-'));
  layer = path.join(dir, 'layer');
  kit = path.join(dir, 'kit');
  mkdirSync(path.join(layer, 'etc'), { recursive: true });
  writeFileSync(path.join(layer, 'etc', 'hostname'), 'x\n');
  mkdirSync(path.join(kit, '.vessel'), { recursive: true });
});

after(() => rmSync(dir, { recursive: true, force: true }));

function oneLine(cls: new (...a: never[]) => VesselError, re: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    assert.match(e.message, re);
    return true;
  };
}

function assertClean(outDir: string): void {
  assert.deepEqual(readdirSync(outDir).filter((f) => f.startsWith('.build-')), [], 'temp build dirs left');
  assert.ok(!readFileSync('/proc/mounts', 'utf8').includes(outDir), 'mount left');
}

/** Runs `fn` with PATH pointing at an empty directory (no helper programs). */
async function withoutTools<T>(fn: () => Promise<T>): Promise<T> {
  const saved = process.env.PATH;
  const empty = path.join(dir, 'empty-bin');
  mkdirSync(empty, { recursive: true });
  process.env.PATH = empty;
  try {
    return await fn();
  } finally {
    process.env.PATH = saved;
  }
}

test('ensureBaseDisk rejects a bad image id and a missing layer without leaving anything', async () => {
  const out = path.join(dir, 'out1');
  mkdirSync(out);
  await assert.rejects(ensureBaseDisk({ lowerDirs: [layer], imageId: 'nope', outDir: out, kitDir: kit, cacheDir: dir }), oneLine(InvalidArgumentError, /^Invalid image id/));
  await assert.rejects(
    ensureBaseDisk({ lowerDirs: [path.join(dir, 'absent')], imageId: 'a'.repeat(64), outDir: out, kitDir: kit, cacheDir: dir }),
    oneLine(InvalidArgumentError, /^Layer directory does not exist/),
  );
  assertClean(out);
});

test('ensureBaseDisk unmounts and cleans up when the overlay mount fails', async () => {
  const out = path.join(dir, 'out2');
  mkdirSync(out);
  const notDir = path.join(dir, 'file-layer');
  writeFileSync(notDir, 'x');
  await assert.rejects(
    ensureBaseDisk({ lowerDirs: [notDir], imageId: 'b'.repeat(64), outDir: out, kitDir: kit, cacheDir: dir }),
    oneLine(UnavailableError, /^Cannot mount the image layers/),
  );
  assertClean(out);
});

test('ensureBaseDisk unmounts and cleans up when mke2fs fails after the mount', async () => {
  const out = path.join(dir, 'out3');
  mkdirSync(out);
  await withoutTools(() =>
    assert.rejects(
      ensureBaseDisk({ lowerDirs: [layer], imageId: 'c'.repeat(64), outDir: out, kitDir: kit, cacheDir: dir }),
      oneLine(UnavailableError, /^Cannot make the base disk file system: mke2fs .*executable not found/),
    ),
  );
  assertClean(out);
  assert.deepEqual(readdirSync(out), []);
});

test('ensureBaseDisk sweeps the mount and temp dir a crashed builder left', async () => {
  const out = path.join(dir, 'out5');
  const dead = spawnSync('true').pid;
  assert.ok(dead);
  const stale = path.join(out, `.build-eeeeeeeeeeee-${dead}-AbC123`);
  const merged = path.join(stale, 'merged');
  mkdirSync(merged, { recursive: true });
  const second = path.join(dir, 'layer2');
  mkdirSync(second, { recursive: true });
  mount('overlay', merged, 'overlay', MS.RDONLY, `lowerdir=${layer}:${second}`);
  assert.ok(readFileSync('/proc/mounts', 'utf8').includes(merged));
  // any later build (here one that fails early, after the sweep) cleans up
  await withoutTools(() =>
    assert.rejects(ensureBaseDisk({ lowerDirs: [layer], imageId: 'e'.repeat(64), outDir: out, kitDir: kit, cacheDir: dir }), UnavailableError),
  );
  assertClean(out);
  assert.ok(!existsSync(stale));
  assert.ok(existsSync(path.join(layer, 'etc', 'hostname')), 'the layer itself is untouched');
});

test('ensureGuestKernel reports apt failures in one line and leaves no temp files', async () => {
  const cache = path.join(dir, 'cache');
  await withoutTools(() => assert.rejects(ensureGuestKernel(cache), oneLine(UnavailableError, /^Cannot find the guest kernel package linux-image-cloud-amd64/)));
  // apt-cache answers, the download fails (no apt-get): after the temp dir exists
  const fake = path.join(dir, 'empty-bin', 'apt-cache');
  writeFileSync(fake, '#!/bin/sh\necho linux-image-cloud-amd64\necho "  Depends: linux-image-6.1.0-99-cloud-amd64"\n', { mode: 0o755 });
  try {
    await withoutTools(() =>
      assert.rejects(ensureGuestKernel(cache), oneLine(UnavailableError, /^Cannot download linux-image-6\.1\.0-99-cloud-amd64: apt-get download/)),
    );
  } finally {
    rmSync(fake);
  }
  assert.deepEqual(readdirSync(path.join(cache, 'vm', 'tmp')), []);
  assert.ok(!existsSync(path.join(cache, 'vm', 'kernel')), 'no partial kernel published');
});

test('createOverlayDisk refuses an existing file and a size below the base', async () => {
  const out = path.join(dir, 'out4');
  mkdirSync(out);
  const base = path.join(out, 'base.qcow2');
  assert.equal(spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']).status, 0);
  await assert.rejects(createOverlayDisk(base, path.join(out, 'small.qcow2'), 1024 * 1024), oneLine(InvalidArgumentError, /smaller than the image's base disk/));
  await assert.rejects(createOverlayDisk(base, base), oneLine(AlreadyExistsError, /^Disk already exists/));
  await assert.rejects(createOverlayDisk(path.join(out, 'absent.qcow2'), path.join(out, 'o.qcow2')), oneLine(UnavailableError, /^Cannot create the disk/));
  assert.deepEqual(readdirSync(out).sort(), ['base.qcow2']);
});
