/**
 * `vessel registry serve` / `vessel registry gc` against real registry
 * clients: an image built offline with umoci from busybox-static is pushed
 * and pulled with skopeo (OCI and Docker schema2), with and without
 * htpasswd auth, deleted, and garbage-collected.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { assertOneLineError } from '../framework/helpers.js';
import { TestDaemon } from '../framework/daemon.js';
import { RegistryProcess, vessel } from '../framework/registry-server.js';
import { must, run, sha256 } from '../framework/tools.js';

let dir: string;
let layout: string;
let reg: RegistryProcess;


function blobs(root: string): string[] {
  return readdirSync(path.join(root, 'blobs', 'sha256')).map((h) => `sha256:${h}`).sort();
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'vessel-regsrv-'));
  // An OCI layout with a busybox image, built offline.
  layout = path.join(dir, 'oci');
  const bundle = path.join(dir, 'bundle');
  must('umoci', ['init', '--layout', layout]);
  must('umoci', ['new', '--image', `${layout}:busybox`]);
  must('umoci', ['unpack', '--image', `${layout}:busybox`, bundle]);
  mkdirSync(path.join(bundle, 'rootfs', 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', path.join(bundle, 'rootfs', 'bin', 'busybox'));
  for (const l of ['sh', 'ls', 'cat', 'echo']) symlinkSync('busybox', path.join(bundle, 'rootfs', 'bin', l));
  must('umoci', ['repack', '--image', `${layout}:busybox`, bundle]);
  must('umoci', ['config', '--image', `${layout}:busybox`, '--config.cmd', '/bin/sh']);
  reg = new RegistryProcess(path.join(dir, 'root'));
  await reg.start();
});

after(async () => {
  await reg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('skopeo pushes an OCI image; the raw manifest bytes hash to Docker-Content-Digest', async () => {
  must('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:busybox`, `docker://${reg.host}/test/busybox:1`]);
  const raw = must('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/test/busybox:1`]);
  const head = await fetch(`${reg.url}/v2/test/busybox/manifests/1`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(sha256(raw), head.headers.get('docker-content-digest'));
  assert.equal(head.headers.get('content-type'), 'application/vnd.oci.image.manifest.v1+json');
  // The pushed manifest is byte-identical to the one in the layout.
  const index = JSON.parse(must('cat', [path.join(layout, 'index.json')]).toString()) as { manifests: Array<{ digest: string }> };
  assert.equal(sha256(raw), index.manifests[0]?.digest);
  assert.deepEqual(readdirSync(path.join(reg.root, 'uploads')), [], 'no upload sessions left');
  assert.deepEqual(readdirSync(path.join(reg.root, 'tmp')), [], 'no temp files left');
  assert.match(reg.stderr, /PUT \/v2\/test\/busybox\/manifests\/1 201/, 'one log line per request');
});

test('skopeo pulls it back into an OCI layout that umoci unpacks', () => {
  const out = path.join(dir, 'pulled');
  must('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/test/busybox:1`, `oci:${out}:x`]);
  const b2 = path.join(dir, 'b2');
  must('umoci', ['unpack', '--image', `${out}:x`, b2]);
  assert.ok(existsSync(path.join(b2, 'rootfs', 'bin', 'busybox')));
});

test('skopeo pushes Docker schema2 (--format v2s2)', () => {
  must('skopeo', ['copy', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${layout}:busybox`, `docker://${reg.host}/test/busybox:v2s2`]);
  const raw = must('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/test/busybox:v2s2`]);
  assert.equal(JSON.parse(raw.toString()).mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  const tags = JSON.parse(must('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/test/busybox`]).toString());
  assert.deepEqual(tags.Tags, ['1', 'v2s2']);
});

test('skopeo delete, then vessel registry gc removes the unreferenced blobs', async () => {
  const ociRaw = must('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/test/busybox:1`]);
  const oci = JSON.parse(ociRaw.toString());
  const v2 = must('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/test/busybox:v2s2`]);
  const shared = [oci.config.digest as string, ...oci.layers.map((l: { digest: string }) => l.digest)];
  must('skopeo', ['delete', '--tls-verify=false', `docker://${reg.host}/test/busybox:v2s2`]);
  assert.equal((await fetch(`${reg.url}/v2/test/busybox/manifests/v2s2`)).status, 404);

  // Only the v2s2 manifest itself is garbage: config and layer are shared with tag 1.
  const dry = vessel(['registry', 'gc', '--root', reg.root, '--dry-run', '--format', 'json']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.deepEqual(JSON.parse(dry.stdout).blobsRemoved.map((b: { digest: string }) => b.digest), [sha256(v2)]);
  assert.ok(blobs(reg.root).includes(sha256(v2)), 'dry run removes nothing');
  const first = vessel(['registry', 'gc', '--root', reg.root]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, new RegExp(`^Removed blob ${sha256(v2)} \\(\\d+B\\)$`, 'm'));
  for (const d of shared) assert.ok(blobs(reg.root).includes(d), `${d} is still referenced`);

  must('skopeo', ['delete', '--tls-verify=false', `docker://${reg.host}/test/busybox:1`]);
  const second = vessel(['registry', 'gc', '--root', reg.root, '--format', 'json']);
  assert.equal(second.code, 0, second.stderr);
  const report = JSON.parse(second.stdout) as { blobsRemoved: Array<{ digest: string }>; bytesReclaimed: number };
  assert.deepEqual(report.blobsRemoved.map((b) => b.digest).sort(), [sha256(ociRaw), ...shared].sort(), 'config, layer and the OCI manifest');
  assert.ok(report.bytesReclaimed > 500_000, `the busybox layer is reclaimed (got ${report.bytesReclaimed})`);
  assert.deepEqual(blobs(reg.root), []);
  const pull = run('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/test/busybox:1`]);
  assert.notEqual(pull.status, 0);
});

test('with --htpasswd, skopeo needs the right credentials', async () => {
  const htpasswd = path.join(dir, 'htpasswd');
  writeFileSync(htpasswd, must('htpasswd', ['-Bbn', 'user', 'pass']));
  const secure = new RegistryProcess(path.join(dir, 'secure'), ['--htpasswd', htpasswd, '--quiet']);
  await secure.start();
  try {
    const anon = await fetch(`${secure.url}/v2/`);
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic realm="/);
    const src = `oci:${layout}:busybox`;
    const dest = `docker://${secure.host}/private/busybox:1`;
    const wrong = run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', 'user:wrong', src, dest]);
    assert.notEqual(wrong.status, 0, 'a wrong password must fail');
    assert.match(wrong.stderr, /unauthorized|401/i);
    must('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', 'user:pass', src, dest]);
    const raw = must('skopeo', ['inspect', '--tls-verify=false', '--creds', 'user:pass', '--raw', dest]);
    assert.equal(JSON.parse(raw.toString()).schemaVersion, 2);
    assert.equal(secure.stderr, '', '--quiet logs nothing');
  } finally {
    assert.equal(await secure.stop('SIGINT'), 0, 'exits cleanly on SIGINT');
  }
});

test('CLI failures are one clear line', () => {
  assertOneLineError(vessel(['registry', 'serve']), 'serve without --root', /^vessel: the --root flag is required$/);
  const md5 = path.join(dir, 'md5.htpasswd');
  writeFileSync(md5, must('htpasswd', ['-mbn', 'user', 'pass']));
  assertOneLineError(
    vessel(['registry', 'serve', '--root', path.join(dir, 'x'), '--htpasswd', md5]),
    'non-bcrypt htpasswd',
    /^vessel: Unsupported htpasswd entry for user user in .*: only bcrypt hashes are supported/,
  );
  assertOneLineError(vessel(['registry', 'serve', '--root', path.join(dir, 'x'), '--addr', 'nonsense']), 'bad address', /Invalid listen address: nonsense/);
  assertOneLineError(vessel(['registry', 'serve', '--root', path.join(dir, 'x'), '--addr', reg.host]), 'port in use', /address already in use/);
  assertOneLineError(vessel(['registry', 'gc', '--root', path.join(dir, 'nothing-here')]), 'gc on a non-registry', /^vessel: Not a registry root: /);
});

test('the server exits with status 0 on SIGTERM', async () => {
  assert.equal(await reg.stop('SIGTERM'), 0);
});

test('vesseld --registry-addr serves a registry on <root>/registry and stops it on shutdown', async () => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const d = new TestDaemon({ extraArgs: ['--registry-addr', `127.0.0.1:${port}`] });
  try {
    await d.start();
    const res = await fetch(`http://127.0.0.1:${port}/v2/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
    must('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:busybox`, `docker://127.0.0.1:${port}/embedded/busybox:1`]);
    assert.ok(existsSync(path.join(d.stateRoot, 'registry', 'repositories', 'embedded', 'busybox', '_manifests', 'tags', '1')));
  } finally {
    await d.destroy();
  }
  await assert.rejects(fetch(`http://127.0.0.1:${port}/v2/`), 'the registry stops with the daemon');
});
