import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { InvalidArgumentError } from '../core/errors.js';
import { getxattr } from '../native/native.js';
import { LayerSecurityError } from './layer-unpack.js';
import { startUnpack, unpackFileInWorker, unpackStreamInWorker } from './unpack-in-worker.js';

type Entry = { name: string; type?: 'file' | 'symlink' | 'directory' | 'link'; data?: string; linkname?: string; mode?: number };

async function makeTar(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of p) chunks.push(c as Buffer);
  })();
  for (const { data, ...header } of entries) {
    await new Promise<void>((resolve, reject) => p.entry(header, data ?? '', (err) => (err ? reject(err) : resolve())));
  }
  p.finalize();
  await collected;
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const exists = (p: string): Promise<boolean> => fsp.lstat(p).then(() => true, () => false);

async function withTmp(fn: (base: string) => Promise<void>): Promise<void> {
  const base = await fsp.mkdtemp(path.join(os.tmpdir(), 'vessel-wunpack-'));
  try {
    await fn(base);
  } finally {
    await fsp.rm(base, { recursive: true, force: true });
  }
}

/** Feeds `data` in small chunks, as a download would. */
async function feed(data: Buffer, dest: string, expect: { expectedDiffId?: string } = {}) {
  const u = startUnpack(dest, expect);
  for (let off = 0; off < data.length; off += 1000) await u.write(data.subarray(off, off + 1000));
  u.end();
  return u.result;
}

const LAYER: Entry[] = [
  { name: 'etc/', type: 'directory', mode: 0o755 },
  { name: 'etc/hostname', data: 'box\n', mode: 0o644 },
  { name: 'bin/', type: 'directory', mode: 0o755 },
  { name: 'bin/sh', data: 'x'.repeat(70_000), mode: 0o4755 },
  { name: 'bin/ash', type: 'link', linkname: 'bin/sh' },
  { name: 'bin/link', type: 'symlink', linkname: '/etc/hostname' },
  { name: 'usr/.wh..wh..opq' },
  { name: 'var/.wh.cache' },
];

test('a layer fed in chunks unpacks in the worker with its diff ID, metadata and whiteouts', async () => {
  await withTmp(async (base) => {
    const tar = await makeTar(LAYER);
    const dest = path.join(base, 'l1');
    const r = await feed(tar, dest, { expectedDiffId: sha256(tar) });
    assert.deepEqual(r, { diffId: sha256(tar), digest: sha256(tar), size: tar.length, unpackedBytes: tar.length });
    assert.equal(await fsp.readFile(path.join(dest, 'etc/hostname'), 'utf8'), 'box\n');
    assert.equal((await fsp.stat(path.join(dest, 'bin/sh'))).mode & 0o7777, 0o4755);
    assert.equal((await fsp.stat(path.join(dest, 'bin/ash'))).ino, (await fsp.stat(path.join(dest, 'bin/sh'))).ino);
    assert.equal(await fsp.readlink(path.join(dest, 'bin/link')), '/etc/hostname');
    assert.equal(String(getxattr(path.join(dest, 'usr'), 'trusted.overlay.opaque')), 'y');
    assert.ok((await fsp.lstat(path.join(dest, 'var/cache'))).isCharacterDevice());
  });
});

test('a gzip layer from a file and from a stream gives digest and diff ID', async () => {
  await withTmp(async (base) => {
    const tar = await makeTar(LAYER);
    const gz = gzipSync(tar);
    const file = path.join(base, 'blob');
    await fsp.writeFile(file, gz);
    const a = await unpackFileInWorker(file, path.join(base, 'a'), { expectedDigest: sha256(gz), expectedDiffId: sha256(tar) });
    assert.equal(a.digest, sha256(gz));
    assert.equal(a.diffId, sha256(tar));
    const b = await unpackStreamInWorker(Readable.from([gz.subarray(0, 10), gz.subarray(10)]), path.join(base, 'b'));
    assert.equal(b.diffId, sha256(tar));
    assert.equal(await fsp.readFile(path.join(base, 'b', 'etc/hostname'), 'utf8'), 'box\n');
  });
});

test('a hostile layer fails with LayerSecurityError and leaves no directory', async () => {
  await withTmp(async (base) => {
    const tar = await makeTar([{ name: 'a', type: 'symlink', linkname: '/etc' }, { name: 'a/passwd', data: 'x' }]);
    const dest = path.join(base, 'evil');
    await assert.rejects(feed(tar, dest), (e: unknown) => e instanceof LayerSecurityError && /traverses symlink/.test(e.message));
    assert.equal(await exists(dest), false);
    const escape = await makeTar([{ name: '../../x', data: 'x' }]);
    await assert.rejects(feed(escape, dest), (e: unknown) => e instanceof LayerSecurityError && /escapes the layer root/.test(e.message));
    assert.equal(await exists(dest), false);
  });
});

test('a diff ID mismatch fails with InvalidArgumentError and leaves no directory', async () => {
  await withTmp(async (base) => {
    const tar = await makeTar(LAYER);
    const dest = path.join(base, 'l');
    const wrong = `sha256:${'0'.repeat(64)}`;
    await assert.rejects(feed(tar, dest, { expectedDiffId: wrong }), (e: unknown) => e instanceof InvalidArgumentError && /diff ID mismatch/.test(e.message));
    assert.equal(await exists(dest), false);
  });
});

test('abort() stops the unpack and removes its directory before result settles', async () => {
  await withTmp(async (base) => {
    const tar = await makeTar(LAYER);
    const dest = path.join(base, 'l');
    const u = startUnpack(dest);
    await u.write(tar.subarray(0, 3000));
    u.abort();
    await assert.rejects(u.result);
    assert.equal(await exists(dest), false);
    await assert.rejects(u.write(tar.subarray(3000)), 'no input after a failure');
  });
});
