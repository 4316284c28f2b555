import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { InternalError, InvalidArgumentError } from '../core/errors.js';
import { openDb } from '../store/db.js';
import { ImageStore, type ImageRecord } from './image-store.js';
import { MEDIA_TYPE } from './oci.js';

const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function makeTar(files: Record<string, string>): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of p) chunks.push(c as Buffer);
  })();
  for (const [name, data] of Object.entries(files)) {
    await new Promise<void>((resolve, reject) => p.entry({ name }, data, (err) => (err ? reject(err) : resolve())));
  }
  p.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** A store with one "pulled" image whose layer blob is stored but not unpacked. */
async function withPulled(fn: (store: ImageStore, image: ImageRecord, tar: Buffer) => Promise<void>): Promise<void> {
  const base = await fsp.mkdtemp(path.join(os.tmpdir(), 'vessel-unpacker-'));
  const db = openDb(path.join(base, 'db.sqlite'));
  const store = new ImageStore(path.join(base, 'images'), db);
  try {
    await store.init();
    const tar = await makeTar({ 'hello.txt': 'hello\n', 'etc/os-release': 'ID=test\n' });
    const gz = gzipSync(tar);
    const blob = await store.content.writeBytes(gz);
    const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(tar)] } }));
    const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, layers: [{ digest: blob.digest, size: blob.size }] }));
    const fetched = { diffId: sha256(tar), digest: blob.digest, blobSize: blob.size, mediaType: MEDIA_TYPE.layerGzip, unpack: null };
    const image = await store.commitPulled({ configBytes, manifestBytes, layers: [{ fetched }], tags: ['unpacker-test:1'], repoDigests: [] });
    await fn(store, image, tar);
  } finally {
    await store.close();
    db.close();
    await fsp.rm(base, { recursive: true, force: true });
  }
}

const staging = async (store: ImageStore): Promise<string[]> => (await fsp.readdir(store.layerRoot)).filter((n) => n.startsWith('tmp-'));

test('ensureUnpacked: concurrent callers share one job; the snapshot appears whole and the sizes are recorded', async () => {
  await withPulled(async (store, image, tar) => {
    const layer = store.getLayer(image.layers[0]!)!;
    await Promise.all([store.ensureUnpacked(image), store.ensureUnpacked(image)]);
    assert.equal(store.unpacker.isUnpacking(layer.chainId), false);
    assert.equal(await fsp.readFile(path.join(store.snapshotDir(layer), 'hello.txt'), 'utf8'), 'hello\n');
    assert.deepEqual(store.lowerDirs(image), [store.snapshotDir(layer)]);
    assert.equal(store.getLayer(layer.chainId)!.size, tar.length);
    assert.equal(store.resolve(image.id).size, tar.length);
    assert.deepEqual(await staging(store), []);

    // A snapshot that went missing (a crash before the rename) is unpacked again from the blob;
    // both callers await the same job, and lowerDirs refuses to hand out the missing directory.
    await fsp.rm(store.snapshotDir(layer), { recursive: true });
    assert.throws(() => store.lowerDirs(image), (e: unknown) => e instanceof InternalError && /is not unpacked/.test(e.message));
    const a = store.ensureUnpacked(image);
    assert.equal(store.unpacker.isUnpacking(layer.chainId), true);
    const b = store.ensureUnpacked(image);
    await Promise.all([a, b]);
    assert.equal((await fsp.readdir(store.layerRoot)).length, 1);
  });
});

test('a corrupted blob fails the unpack in one line, leaves no directory, and the next caller retries', async () => {
  await withPulled(async (store, image) => {
    const layer = store.getLayer(image.layers[0]!)!;
    await store.ensureUnpacked(image); // the background unpack commitPulled started is done
    await fsp.rm(store.snapshotDir(layer), { recursive: true });
    const file = store.content.blobPath(layer.digest);
    const good = await fsp.readFile(file);
    const bad = Buffer.from(good);
    bad[bad.length - 12] = (bad[bad.length - 12] ?? 0) ^ 0xff;
    await fsp.writeFile(file, bad);
    await assert.rejects(store.ensureUnpacked(image), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, String(e));
      assert.match(e.message, new RegExp(`^Cannot unpack layer ${layer.digest}: `));
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    assert.deepEqual(await fsp.readdir(store.layerRoot), []);
    await fsp.writeFile(file, good);
    await store.ensureUnpacked(image);
    assert.ok(store.unpacker.isUnpacked(layer));
  });
});

/** Unpacks the image, deletes its first layer's snapshot, and starts the unpack again (its promise, not awaited). */
async function unpackAgain(store: ImageStore, image: ImageRecord): Promise<{ pending: Promise<void> }> {
  const layer = store.getLayer(image.layers[0]!)!;
  await store.ensureUnpacked(image);
  await fsp.rm(store.snapshotDir(layer), { recursive: true });
  const pending = store.ensureUnpacked(image);
  pending.catch(() => {});
  return { pending };
}

test('rmi while a layer unpacks, and close() with one in flight, leave no directories', async () => {
  await withPulled(async (store, image) => {
    const { pending } = await unpackAgain(store, image);
    await store.remove(image.id, { force: false, usedBy: () => [] });
    await pending.catch(() => {});
    assert.deepEqual(await fsp.readdir(store.layerRoot), []);
    assert.equal(store.allLayers().length, 0);
  });
  await withPulled(async (store, image) => {
    const { pending } = await unpackAgain(store, image);
    await store.close();
    await pending.catch(() => {});
    assert.deepEqual(await staging(store), []);
    await assert.rejects(store.ensureUnpacked(image), /shutting down/);
  });
});
