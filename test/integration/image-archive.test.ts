/**
 * `vessel image save` / `vessel image load` against a real daemon, and
 * interoperability with skopeo (a real peer that reads and writes OCI
 * archives and docker-archives).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO, TestDaemon } from '../framework/daemon.js';
import { assertOneLineError, busyboxRootfsTar } from '../framework/helpers.js';

let d: TestDaemon;
let dir: string;
let busyboxId: string;
let saved: string;

const VESSEL = path.join(REPO, 'bin', 'vessel');

before(async () => {
  d = new TestDaemon();
  await d.start();
  await d.ensureBusybox();
  dir = path.join(d.root, 'archives');
  mkdirSync(dir);
  busyboxId = (await d.ok(['image', 'inspect', '-f', '{{.Id}}', 'busybox'])).trim();
  assert.match(busyboxId, /^sha256:[a-f0-9]{64}$/);
  await d.ok(['tag', 'busybox', 'busybox:second']);
  saved = path.join(dir, 'saved.tar');
  await d.ok(['image', 'save', '-o', saved, 'busybox:latest', 'busybox:second']);
});

after(async () => {
  await d?.destroy();
});

function run(cmd: string, args: string[], input?: Buffer): { status: number; stdout: Buffer; stderr: string } {
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 30, timeout: 300_000 });
  if (r.error) throw r.error;
  return { status: r.status ?? 255, stdout: r.stdout, stderr: r.stderr.toString() };
}

function must(cmd: string, args: string[], input?: Buffer): Buffer {
  const r = run(cmd, args, input);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

async function imageId(ref: string): Promise<string> {
  return (await d.ok(['image', 'inspect', '-f', '{{.Id}}', ref])).trim();
}

async function imageCount(): Promise<number> {
  return (await d.ok(['image', 'ls', '-q', '--no-trunc'])).split('\n').filter(Boolean).length;
}

/** Entries of a tar file: name, data offset and size (ustar headers; the archives here use no pax names). */
function tarEntries(buf: Buffer): Array<{ name: string; offset: number; size: number }> {
  const out: Array<{ name: string; offset: number; size: number }> = [];
  for (let off = 0; off + 512 <= buf.length; ) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const field = (a: number, n: number) => h.subarray(a, a + n).toString('latin1').replace(/\0.*$/s, '');
    const prefix = field(345, 155);
    const name = (prefix ? `${prefix}/` : '') + field(0, 100);
    const size = parseInt(field(124, 12).trim() || '0', 8);
    out.push({ name, offset: off + 512, size });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

test('save writes an OCI layout with a docker-archive manifest.json', () => {
  const names = must('tar', ['-tf', saved]).toString().split('\n').filter(Boolean);
  for (const n of ['oci-layout', 'index.json', 'manifest.json']) assert.ok(names.includes(n), `${n} in ${names.join(' ')}`);
  const index = JSON.parse(must('tar', ['-xOf', saved, 'index.json']).toString());
  const refs = index.manifests.map((m: any) => m.annotations['org.opencontainers.image.ref.name']).sort();
  assert.deepEqual(refs, ['busybox:latest', 'busybox:second']);
  const manifest = JSON.parse(must('tar', ['-xOf', saved, 'manifest.json']).toString());
  assert.equal(manifest.length, 1);
  assert.equal(manifest[0].Config, `blobs/sha256/${busyboxId.slice(7)}`);
  assert.deepEqual([...manifest[0].RepoTags].sort(), ['busybox:latest', 'busybox:second']);
});

test('save → image rm → load gives the same image ID, and it runs', async () => {
  await d.ok(['image', 'rm', 'busybox:latest', 'busybox:second']);
  assert.notEqual((await d.cli(['image', 'inspect', 'busybox'])).code, 0, 'busybox should be gone');
  const out = await d.ok(['image', 'load', '-i', saved]);
  assert.deepEqual(out.split('\n').filter((l) => l.startsWith('Loaded')).sort(), ['Loaded image: busybox:latest', 'Loaded image: busybox:second']);
  assert.equal(await imageId('busybox'), busyboxId);
  assert.equal(await imageId('busybox:second'), busyboxId);
  assert.equal(await d.ok(['run', '--rm', 'busybox', 'echo', 'ok']), 'ok\n');
  // -q prints only the result lines.
  assert.deepEqual((await d.ok(['load', '-q', '-i', saved])).split('\n').filter(Boolean).sort(), ['Loaded image: busybox:latest', 'Loaded image: busybox:second']);
});

test('save to stdout and load from stdin (aliases save/load)', async () => {
  const tar = must(VESSEL, ['--host', d.host, 'save', 'busybox:second']);
  assert.ok(tar.length > 100_000, `archive of ${tar.length} bytes`);
  assert.deepEqual(tar, must(VESSEL, ['--host', d.host, 'save', 'busybox:second']), 'save is deterministic');
  await d.ok(['image', 'rm', 'busybox:second']);
  const out = must(VESSEL, ['--host', d.host, 'load'], tar).toString();
  assert.match(out, /^Loaded image: busybox:second$/m);
  assert.equal(await imageId('busybox:second'), busyboxId);
  // By ID: no names in the archive.
  const byId = path.join(dir, 'by-id.tar');
  await d.ok(['save', '-o', byId, busyboxId.slice(7, 19)]);
  assert.match(await d.ok(['load', '-i', byId]), new RegExp(`^Loaded image ID: ${busyboxId}$`, 'm'));
});

test('skopeo reads the saved OCI archive: to a docker-archive that vessel loads and runs', async () => {
  must('skopeo', ['--version']);
  const out = path.join(dir, 'skopeo-docker.tar');
  must('skopeo', ['copy', '--quiet', `oci-archive:${saved}:busybox:latest`, `docker-archive:${out}:busybox:skopeo`]);
  const loaded = await d.ok(['image', 'load', '-i', out]);
  assert.match(loaded, /^Loaded image: busybox:skopeo$/m);
  assert.equal(await imageId('busybox:skopeo'), busyboxId, 'skopeo keeps the config bytes, so the ID is the same');
  assert.equal(await d.ok(['run', '--rm', 'busybox:skopeo', 'echo', 'ok']), 'ok\n');
});

test('skopeo round trip: oci-archive → oci layout directory → tar → vessel load', async () => {
  const layout = path.join(dir, 'layout');
  must('skopeo', ['copy', '--quiet', `oci-archive:${saved}:busybox:second`, `oci:${layout}:roundtrip:v1`]);
  assert.ok(existsSync(path.join(layout, 'index.json')));
  // skopeo can read its own copy back (the layout it wrote from our archive is valid).
  must('skopeo', ['inspect', '--raw', `oci:${layout}:roundtrip:v1`]);
  const tar = path.join(dir, 'layout.tar');
  must('tar', ['-C', layout, '-cf', tar, '.']);
  const loaded = await d.ok(['load', '-i', tar]);
  assert.match(loaded, /^Loaded image: roundtrip:v1$/m);
  assert.equal(await imageId('roundtrip:v1'), busyboxId);
  assert.equal(await d.ok(['run', '--rm', 'roundtrip:v1', 'echo', 'ok']), 'ok\n');
});

test('a corrupted archive (one flipped byte in a layer blob) is refused with one line; nothing changes', async () => {
  const buf = Buffer.from(readFileSync(saved));
  const manifest = JSON.parse(must('tar', ['-xOf', saved, 'manifest.json']).toString());
  const layerName = manifest[0].Layers[0] as string;
  const entry = tarEntries(buf).find((e) => e.name === layerName || e.name === `./${layerName}`);
  assert.ok(entry, `layer ${layerName} in the saved tar`);
  buf[entry.offset + Math.floor(entry.size / 2)]! ^= 0x01;
  const bad = path.join(dir, 'corrupt.tar');
  writeFileSync(bad, buf);
  assert.notEqual(createHash('sha256').update(buf).digest('hex'), createHash('sha256').update(readFileSync(saved)).digest('hex'));

  await d.ok(['image', 'rm', 'busybox:second']);
  const count = await imageCount();
  const listing = async () => (await d.ok(['image', 'ls', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).trim();
  const before = await listing();
  const r = await d.cli(['image', 'load', '-i', bad]);
  assertOneLineError(r, 'load of a corrupt archive', new RegExp(`^vessel: Digest mismatch for layer ${layerName}: expected sha256:${layerName.slice(13)}, got sha256:[a-f0-9]{64}$`));
  assert.equal(await imageCount(), count);
  assert.equal(await listing(), before);
  assert.notEqual((await d.cli(['image', 'inspect', 'busybox:second'])).code, 0, 'the corrupt archive tagged nothing');

  const garbage = path.join(dir, 'garbage.tar');
  writeFileSync(garbage, 'not a tar archive\n'.repeat(100));
  assertOneLineError(await d.cli(['load', '-i', garbage]), 'load of garbage', /^vessel: Invalid image archive: /);
  assert.equal(await imageCount(), count);
});

test('save errors: unknown image (nothing written), missing -i file', async () => {
  const target = path.join(dir, 'never.tar');
  assertOneLineError(await d.cli(['save', '-o', target, 'busybox', 'no-such-image:1']), 'save of an unknown image', /^vessel: No such image: no-such-image:1$/);
  assert.ok(!existsSync(target), 'no archive file for a failed save');
  assertOneLineError(await d.cli(['load', '-i', path.join(dir, 'missing.tar')]), 'load of a missing file', /no such file/);
});

test('a failure while the archive streams is an error, never a short archive (corrupt blob in the store)', async () => {
  const rootfs = await busyboxRootfsTar(d, dir, 'victim');
  await d.ok(['import', rootfs, 'victim:1']);
  const manifestDigest = JSON.parse(await d.ok(['image', 'inspect', 'victim:1']))[0].Descriptor.digest as string;
  const blobs = path.join(d.stateRoot, 'content', 'blobs', 'sha256');
  const manifest = JSON.parse(readFileSync(path.join(blobs, manifestDigest.slice(7)), 'utf8'));
  const layerBlob = path.join(blobs, (manifest.layers[0].digest as string).slice(7));
  const data = readFileSync(layerBlob);
  data[data.length - 100]! ^= 0x01; // same size, different bytes: only noticed while streaming
  writeFileSync(layerBlob, data);

  const target = path.join(dir, 'victim-saved.tar');
  assertOneLineError(await d.cli(['save', '-o', target, 'victim:1']), 'save with a corrupt blob', /^vessel: The daemon ended the image archive early/);
  assert.ok(!existsSync(target), 'no archive file for a failed save');
  const r = run('bash', ['-c', `${VESSEL} --host ${d.host} save victim:1 > ${dir}/victim-stdout.tar`]);
  assert.notEqual(r.status, 0, 'save to stdout fails too');
  assert.match(r.stderr, /^vessel: The daemon ended the image archive early/);
  assert.ok(d.running, 'the daemon survives');
  assert.match(d.log, /Blob sha256:[a-f0-9]{64} in the content store is corrupt/);
  await d.ok(['image', 'rm', 'victim:1']);
});
