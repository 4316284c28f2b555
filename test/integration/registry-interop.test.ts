/**
 * Interoperability of Vessel's registry client and server with real peer
 * tools, all on 127.0.0.1:
 *
 * - skopeo pushes an umoci-built image INTO `vessel registry serve`; vessel
 *   pulls it from there and runs it;
 * - vessel pushes to `vessel registry serve`; skopeo copies it to an `oci:`
 *   layout that umoci unpacks, with the manifest digest unchanged;
 * - skopeo writes `docker-archive:` and `oci-archive:` files that
 *   `vessel image load` accepts and runs;
 * - the daemon-embedded registry (`vesseld --registry-addr`) takes a push
 *   from, and serves a pull to, vessel itself;
 * - errors against our server (corrupted blob, manifest bytes that do not
 *   match their digest, wrong password): one line, non-zero exit, nothing
 *   half-written in the daemon's store or the registry's root.
 *
 * vessel push → Debian's docker-registry → pull back with identical digests
 * is covered by registry-client.test.ts and not repeated here.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestDaemon } from '../framework/daemon.js';
import { assertOneLineError, countDir, makeTar } from '../framework/helpers.js';
import { freePort } from '../framework/registry.js';
import { RegistryProcess } from '../framework/registry-server.js';
import { must, run, sha256 } from '../framework/tools.js';

let dir: string;
let layout: string;
let reg: RegistryProcess;
let d: TestDaemon;
/** `127.0.0.1:PORT` of the registry embedded in `d`. */
let embedded: string;
let busyboxId: string;
/** The umoci image's manifest and config digests (from its OCI layout). */
let umociManifest: string;
let umociConfig: string;


function layoutIndex(dirPath: string): { manifests: Array<{ digest: string; annotations?: Record<string, string> }> } {
  return JSON.parse(readFileSync(path.join(dirPath, 'index.json'), 'utf8'));
}

function storeCounts(): { blobs: string[]; snapshots: string[] } {
  return {
    blobs: readdirSync(path.join(d.stateRoot, 'content', 'blobs', 'sha256')).sort(),
    snapshots: readdirSync(path.join(d.stateRoot, 'l')).sort(),
  };
}

async function imageIds(): Promise<string[]> {
  return (await d.ok(['images', '-q', '--no-trunc'])).split('\n').filter(Boolean).sort();
}

async function inspect(ref: string): Promise<any> {
  return JSON.parse(await d.ok(['image', 'inspect', ref]))[0];
}

/** `N: digest: sha256:… size:` of a push. */
function pushedDigest(out: string): string {
  const m = /: digest: (sha256:[a-f0-9]{64}) size: \d+$/m.exec(out);
  assert.ok(m, `digest line in:\n${out}`);
  return m[1]!;
}

/** A one-layer image of random bytes: its layer is not in the store under any other image. */
async function uniqueImage(ref: string): Promise<string> {
  const tar = path.join(dir, `${randomBytes(4).toString('hex')}.tar`);
  writeFileSync(tar, await makeTar([{ name: 'noise.bin', content: randomBytes(300_000) }]));
  await d.ok(['image', 'import', tar, ref]);
  return (await inspect(ref)).Id as string;
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'vessel-interop-'));
  process.env.VESSEL_CONFIG = path.join(dir, 'cli-config');
  // An OCI layout with a busybox image, built offline with umoci.
  layout = path.join(dir, 'oci');
  const bundle = path.join(dir, 'bundle');
  must('umoci', ['init', '--layout', layout]);
  must('umoci', ['new', '--image', `${layout}:busybox`]);
  must('umoci', ['unpack', '--image', `${layout}:busybox`, bundle]);
  mkdirSync(path.join(bundle, 'rootfs', 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', path.join(bundle, 'rootfs', 'bin', 'busybox'));
  for (const l of ['sh', 'echo', 'cat']) symlinkSync('busybox', path.join(bundle, 'rootfs', 'bin', l));
  must('umoci', ['repack', '--image', `${layout}:busybox`, bundle]);
  must('umoci', ['config', '--image', `${layout}:busybox`, '--config.cmd', '/bin/sh']);
  umociManifest = layoutIndex(layout).manifests[0]!.digest;
  const m = JSON.parse(readFileSync(path.join(layout, 'blobs', 'sha256', umociManifest.slice(7)), 'utf8'));
  umociConfig = m.config.digest;

  reg = new RegistryProcess(path.join(dir, 'registry'), ['--quiet']);
  await reg.start();
  embedded = `127.0.0.1:${await freePort()}`;
  d = new TestDaemon({ extraArgs: ['--registry-addr', embedded] });
  await d.start();
  await d.ensureBusybox();
  busyboxId = (await d.ok(['image', 'inspect', '-f', '{{.Id}}', 'busybox'])).trim();
});

after(async () => {
  await d?.destroy();
  await reg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('(a) skopeo pushes an umoci image into vessel registry serve; vessel pulls and runs it', async () => {
  must('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:busybox`, `docker://${reg.host}/interop/umoci:1`]);
  const ref = `${reg.host}/interop/umoci:1`;
  const out = await d.ok(['pull', ref]);
  assert.match(out, new RegExp(`Digest: ${umociManifest}`));
  const img = await inspect(ref);
  assert.equal(img.Id, umociConfig, 'the image ID is the config digest umoci wrote');
  assert.equal(img.Descriptor.digest, umociManifest, 'the manifest digest survives skopeo → our server → vessel');
  assert.deepEqual(img.RepoDigests, [`${reg.host}/interop/umoci@${umociManifest}`]);
  assert.equal((await d.ok(['run', '--rm', ref, '/bin/echo', 'umoci-ok'])).trim(), 'umoci-ok');
});

test('(b) vessel pushes to vessel registry serve; skopeo copies it to an oci: layout that umoci unpacks', async () => {
  const ref = `${reg.host}/interop/vessel:1`;
  await d.ok(['tag', 'busybox', ref]);
  const digest = pushedDigest(await d.ok(['push', ref]));
  assert.equal((await inspect(ref)).Descriptor.digest, digest);
  const head = await fetch(`${reg.url}/v2/interop/vessel/manifests/1`, { method: 'HEAD', headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(head.headers.get('docker-content-digest'), digest, 'the server stored our exact manifest');
  const out = path.join(dir, 'from-vessel');
  must('skopeo', ['copy', '--preserve-digests', '--src-tls-verify=false', `docker://${ref}`, `oci:${out}:x`]);
  assert.equal(layoutIndex(out).manifests[0]!.digest, digest, 'identical manifest digest in the layout');
  const raw = must('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${ref}`]);
  assert.equal(sha256(raw), digest);
  const bundle = path.join(dir, 'from-vessel-bundle');
  must('umoci', ['unpack', '--image', `${out}:x`, bundle]);
  assert.ok(statSync(path.join(bundle, 'rootfs', 'bin', 'busybox')).isFile(), 'umoci unpacked the rootfs');
  assert.ok(existsSync(path.join(bundle, 'config.json')));
  await d.ok(['rmi', ref]);
});

test('(d) vessel image load accepts what skopeo writes: docker-archive and oci-archive', async () => {
  const cases = [
    { transport: 'docker-archive', file: path.join(dir, 'skopeo-docker.tar'), name: 'interop/archive:docker' },
    { transport: 'oci-archive', file: path.join(dir, 'skopeo-oci.tar'), name: 'interop/archive:oci' },
  ];
  for (const c of cases) {
    must('skopeo', ['copy', '--quiet', `oci:${layout}:busybox`, `${c.transport}:${c.file}:${c.name}`]);
    const loaded = await d.ok(['image', 'load', '-i', c.file]);
    assert.match(loaded, new RegExp(`^Loaded image: ${c.name}$`, 'm'), `${c.transport}: ${loaded}`);
    // skopeo rewrites an OCI config as a Docker one for docker-archive: the ID is that config's digest.
    const config =
      c.transport === 'docker-archive'
        ? `sha256:${(JSON.parse(must('tar', ['-xOf', c.file, 'manifest.json']).toString())[0].Config as string).replace(/\.json$/, '').replace(/^.*\//, '')}`
        : umociConfig;
    assert.equal((await inspect(c.name)).Id, config, `${c.transport}: vessel keeps the archive's config bytes`);
    assert.equal((await d.ok(['run', '--rm', c.name, '/bin/echo', c.transport])).trim(), c.transport);
    await d.ok(['rmi', c.name]);
  }
});

test('(e) the embedded registry (vesseld --registry-addr): push to it and pull from it with vessel', async () => {
  const ref = `${embedded}/embedded/busybox:1`;
  await d.ok(['tag', 'busybox', ref]);
  const digest = pushedDigest(await d.ok(['push', ref]));
  assert.ok(existsSync(path.join(d.stateRoot, 'registry', 'repositories', 'embedded', 'busybox', '_manifests', 'tags', '1')));
  // A fresh image has to come over the wire (busybox's layer is already local).
  const uref = `${embedded}/embedded/noise:1`;
  const id = await uniqueImage(uref);
  const udigest = pushedDigest(await d.ok(['push', uref]));
  await d.ok(['rmi', uref]);
  const text = await d.ok(['pull', uref]);
  assert.match(text, /Pull complete/);
  const img = await inspect(uref);
  assert.equal(img.Id, id);
  assert.equal(img.Descriptor.digest, udigest);
  await d.ok(['rmi', ref]);
  await d.ok(['pull', ref]);
  assert.equal((await inspect(ref)).Descriptor.digest, digest);
  assert.equal((await inspect(ref)).Id, busyboxId);
  assert.equal((await d.ok(['run', '--rm', ref, 'echo', 'embedded-ok'])).trim(), 'embedded-ok');
  await d.ok(['rmi', ref, uref]);
});

test('our server: a corrupted layer blob fails the pull in one line naming the digest; the store is unchanged', async () => {
  const ref = `${reg.host}/errors/corrupt:1`;
  await uniqueImage(ref);
  const digest = pushedDigest(await d.ok(['push', ref]));
  await d.ok(['rmi', ref]);
  const manifest = JSON.parse(readFileSync(path.join(reg.root, 'blobs', 'sha256', digest.slice(7)), 'utf8'));
  const layer = manifest.layers[0].digest as string;
  const file = path.join(reg.root, 'blobs', 'sha256', layer.slice(7));
  writeFileSync(file, randomBytes(statSync(file).size));
  const before = storeCounts();
  const images = await imageIds();
  const r = await d.cli(['pull', ref]);
  assertOneLineError(r, 'pull of a corrupted blob', new RegExp(`^vessel: .*${layer}.*`));
  assert.deepEqual(storeCounts(), before, 'no new blobs or snapshots');
  assert.deepEqual(await imageIds(), images, 'no image recorded');
  assert.equal(countDir(path.join(d.stateRoot, 'content', 'ingest')), 0, 'no partial download');
  assert.deepEqual(readdirSync(path.join(d.stateRoot, 'l')).filter((n) => n.startsWith('tmp-')), [], 'no staged layer');
});

test('our server: a manifest whose bytes do not match its digest is refused, by digest and by tag', async () => {
  const ref = `${reg.host}/errors/tampered:1`;
  await uniqueImage(ref);
  const digest = pushedDigest(await d.ok(['push', ref]));
  await d.ok(['rmi', ref]);
  const file = path.join(reg.root, 'blobs', 'sha256', digest.slice(7));
  writeFileSync(file, Buffer.concat([readFileSync(file), Buffer.from('\n')]));
  const before = storeCounts();
  const images = await imageIds();
  const byDigest = await d.cli(['pull', `${reg.host}/errors/tampered@${digest}`]);
  assertOneLineError(byDigest, 'pull by digest of a tampered manifest', new RegExp(`digest mismatch.*${digest}`, 'i'));
  const byTag = await d.cli(['pull', ref]);
  assertOneLineError(byTag, 'pull by tag of a tampered manifest', /digest mismatch/i);
  assert.deepEqual(storeCounts(), before);
  assert.deepEqual(await imageIds(), images);
});

test('our server with --htpasswd: a wrong password fails in one line and writes nothing anywhere', async () => {
  const htpasswd = path.join(dir, 'htpasswd');
  writeFileSync(htpasswd, must('htpasswd', ['-Bbn', 'user', 'pass']));
  const secure = new RegistryProcess(path.join(dir, 'secure'), ['--htpasswd', htpasswd, '--quiet']);
  await secure.start();
  try {
    const ref = `${secure.host}/team/busybox:1`;
    await d.ok(['tag', 'busybox', ref]);
    const bad = await d.cli(['login', '-u', 'user', '-p', 'wrong', secure.host]);
    assertOneLineError(bad, 'login with a wrong password', /^vessel: Login to 127\.0\.0\.1:\d+ failed/);
    assert.equal(existsSync(path.join(process.env.VESSEL_CONFIG!, 'config.json')), false, 'no credentials stored');
    const push = await d.cli(['push', ref]);
    assertOneLineError(push, 'push without credentials', /^vessel: .*(unauthorized|authentication required|login)/i);
    assert.equal(existsSync(path.join(secure.root, 'repositories', 'team')), false, 'no repository created');
    assert.equal(countDir(path.join(secure.root, 'uploads')), 0, 'no upload session left');
    const before = storeCounts();
    const pull = await d.cli(['pull', ref]);
    assertOneLineError(pull, 'pull without credentials', /^vessel: .*(denied|unauthorized|authentication required|login)/i);
    assert.deepEqual(storeCounts(), before);
    await d.ok(['login', '-u', 'user', '--password-stdin', secure.host], { input: 'pass\n' });
    assert.match(await d.ok(['push', ref]), /: digest: sha256:/);
    await d.ok(['logout', secure.host]);
    await d.ok(['rmi', ref]);
  } finally {
    await secure.stop();
  }
});
