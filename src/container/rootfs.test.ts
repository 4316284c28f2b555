import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMountedOver, mountRootfs, unmountRootfs } from './rootfs.js';

function mountOptions(target: string): string {
  const real = fs.realpathSync(target);
  const line = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === real);
  return line ?? '';
}

function layout(t: { after(fn: () => Promise<void> | void): void }): { lower: string; paths: { upper: string; work: string; merged: string } } {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-rootfs-'));
  const lower = path.join(base, 'lower');
  fs.mkdirSync(path.join(lower, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(lower, 'etc', 'hostname'), 'image\n');
  const paths = { upper: path.join(base, 'upper'), work: path.join(base, 'work'), merged: path.join(base, 'merged') };
  t.after(async () => {
    await unmountRootfs(paths.merged).catch(() => {});
    fs.rmSync(base, { recursive: true, force: true });
  });
  return { lower, paths };
}

test('a volatile root filesystem skips syncs, and its upper can be mounted again after a clean unmount', async (t) => {
  const { lower, paths } = layout(t);
  await mountRootfs([lower], paths, { volatile: true });
  assert.ok(isMountedOver(paths.merged));
  assert.match(mountOptions(paths.merged), /volatile/, 'mounted with the volatile option');
  fs.writeFileSync(path.join(paths.merged, 'written'), 'data');
  await unmountRootfs(paths.merged);
  assert.equal(isMountedOver(paths.merged), false);
  assert.ok(fs.existsSync(path.join(paths.work, 'work', 'incompat', 'volatile')), 'the kernel leaves its marker behind');

  // A restart of the same container: the marker would make the kernel refuse the mount.
  await mountRootfs([lower], paths, { volatile: true });
  assert.equal(fs.readFileSync(path.join(paths.merged, 'written'), 'utf8'), 'data', 'the writable layer is kept');
  assert.equal(fs.readFileSync(path.join(paths.merged, 'etc', 'hostname'), 'utf8'), 'image\n');
  await unmountRootfs(paths.merged);
});

test('a root filesystem is not volatile unless asked', async (t) => {
  const { lower, paths } = layout(t);
  await mountRootfs([lower], paths);
  assert.doesNotMatch(mountOptions(paths.merged), /volatile/);
  await unmountRootfs(paths.merged);
  assert.equal(fs.existsSync(path.join(paths.work, 'work', 'incompat')), false);
});
