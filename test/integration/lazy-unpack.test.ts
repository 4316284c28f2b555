/**
 * A pull ends when its blobs are verified and stored; the layer unpack goes
 * on in the daemon and is awaited by whatever needs the files (the image
 * store's LayerUnpacker). Images come from the daemon's embedded registry:
 * each test pushes a fresh one-layer image there and removes it locally, so
 * its pull really downloads and unpacks.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestDaemon } from '../framework/daemon.js';
import { assertOneLineError, makeTar, type TarEntry } from '../framework/helpers.js';
import { freePort } from '../framework/registry.js';

let dir: string;
let d: TestDaemon;
let registry: string;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'vessel-lazy-'));
  registry = `127.0.0.1:${await freePort()}`;
  d = new TestDaemon({ extraArgs: ['--registry-addr', registry] });
  await d.start();
});

after(async () => {
  await d?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const layerRoot = (): string => path.join(d.stateRoot, 'l');
const snapshots = (): string[] => readdirSync(layerRoot()).sort();
const staging = (): string[] => snapshots().filter((n) => n.startsWith('tmp-'));

/**
 * Pushes a fresh one-layer image (static busybox, a few thousand small files
 * so the unpack takes a moment, random noise so the layer is new) and
 * removes it locally. Returns its reference in the embedded registry.
 */
async function remoteImage(name: string): Promise<string> {
  const entries: TarEntry[] = [
    { name: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
    ...['sh', 'true', 'cat', 'ls'].map((l): TarEntry => ({ name: `bin/${l}`, type: 'symlink', linkname: 'busybox' })),
    { name: 'noise.bin', content: randomBytes(64 * 1024) },
  ];
  for (let i = 0; i < 3000; i++) entries.push({ name: `files/${i % 30}/f${i}`, content: `file ${i}\n` });
  const tar = path.join(dir, `${name}.tar`);
  writeFileSync(tar, await makeTar(entries));
  const ref = `${registry}/lazy/${name}:1`;
  await d.ok(['image', 'import', tar, ref]);
  await d.ok(['push', ref]);
  await d.ok(['rmi', ref]);
  return ref;
}

/** The image's one layer: its snapshot directory name and its blob file. */
async function layerOf(ref: string): Promise<{ snapshot: string; blob: string; chainId: string }> {
  const img = JSON.parse(await d.ok(['image', 'inspect', ref]))[0];
  const manifest = JSON.parse(readFileSync(path.join(d.stateRoot, 'content', 'blobs', 'sha256', img.Descriptor.digest.slice(7)), 'utf8'));
  return {
    snapshot: path.basename(img.GraphDriver.Data.LowerDir),
    blob: path.join(d.stateRoot, 'content', 'blobs', 'sha256', manifest.layers[0].digest.slice(7)),
    chainId: img.RootFS.Layers[0],
  };
}

/** Stops the daemon and removes the layer's snapshot, as if it had been killed before the unpack ended. */
async function dropSnapshot(ref: string): Promise<{ snapshot: string; blob: string; chainId: string }> {
  const l = await layerOf(ref);
  await d.stop();
  rmSync(path.join(layerRoot(), l.snapshot), { recursive: true, force: true });
  return l;
}

test('(a) pull then run at once: the run waits for the unpack', async () => {
  const ref = await remoteImage('a');
  const out = await d.ok(['pull', ref]);
  assert.match(out, /Download complete/);
  assert.doesNotMatch(out, /Extracting/);
  // Before the unpack has recorded the real size, the image shows its blobs' size, never 0.
  assert.ok(Number((await d.ok(['image', 'inspect', '-f', '{{.Size}}', ref])).trim()) > 0);
  assert.equal((await d.ok(['run', '--rm', ref, 'cat', '/files/7/f2977'])).trim(), 'file 2977');
  const { snapshot } = await layerOf(ref);
  assert.ok(existsSync(path.join(layerRoot(), snapshot, 'files', '0', 'f0')));
  // The size is the unpacked size once the unpack is done.
  const size = Number((await d.ok(['image', 'inspect', '-f', '{{.Size}}', ref])).trim());
  assert.ok(size > 1_000_000, `image size ${size}`);
  await d.ok(['rmi', ref]);
  assert.deepEqual(staging(), []);
});

test('(b) pull then rmi at once leaves no snapshot or staging directory', async () => {
  const ref = await remoteImage('b');
  const before = snapshots();
  await d.ok(['pull', '-q', ref]);
  await d.ok(['rmi', ref]);
  assert.deepEqual(snapshots(), before);
  assert.deepEqual(readdirSync(path.join(d.stateRoot, 'content', 'ingest')), []);
});

test('(c) kill -9 right after the pull; after the restart the layer is unpacked at first use', async () => {
  const ref = await remoteImage('c');
  await d.ok(['pull', '-q', ref]);
  await d.kill9();
  await d.restart();
  assert.deepEqual(staging(), [], 'the restart removed any staging directory');
  assert.equal((await d.ok(['run', '--rm', ref, 'cat', '/files/3/f33'])).trim(), 'file 33');
  assert.deepEqual(staging(), []);
  await d.ok(['rmi', ref]);
});

test('(d) two concurrent runs of an image whose layer is not unpacked share one unpack', async () => {
  const ref = await remoteImage('d');
  await d.ok(['pull', '-q', ref]);
  const { snapshot, chainId } = await dropSnapshot(ref);
  await d.restart();
  const logFrom = d.log.length;
  const [r1, r2] = await Promise.all([
    d.ok(['run', '--rm', ref, 'cat', '/files/1/f1']),
    d.ok(['run', '--rm', ref, 'cat', '/files/2/f2']),
  ]);
  assert.equal(r1.trim(), 'file 1');
  assert.equal(r2.trim(), 'file 2');
  const started = d.log
    .slice(logFrom)
    .split('\n')
    .filter((l) => l.includes('layer unpack: job started') && l.includes(chainId));
  assert.equal(started.length, 1, `one unpack job:\n${started.join('\n')}`);
  assert.ok(existsSync(path.join(layerRoot(), snapshot)));
  assert.deepEqual(staging(), []);
  await d.ok(['rmi', ref]);
});

test('(e) a blob corrupted on disk fails the run in one line at unpack time; no directory is left', async () => {
  const ref = await remoteImage('e');
  await d.ok(['pull', '-q', ref]);
  const { snapshot, blob } = await dropSnapshot(ref);
  const bytes = readFileSync(blob);
  bytes[bytes.length - 100] = (bytes[bytes.length - 100] ?? 0) ^ 0xff;
  writeFileSync(blob, bytes);
  await d.restart();
  const r = await d.cli(['run', '--rm', ref, 'true']);
  assertOneLineError(r, 'run of a corrupted layer', /Cannot unpack layer sha256:[a-f0-9]{64}: .*(digest mismatch|invalid|unexpected end|incorrect)/i);
  assert.ok(!existsSync(path.join(layerRoot(), snapshot)));
  assert.deepEqual(staging(), []);
  await d.ok(['rmi', ref]);
  assert.ok(!existsSync(blob));
});
