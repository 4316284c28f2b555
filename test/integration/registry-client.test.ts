/**
 * `vessel push / pull / login / logout` against Debian's real
 * docker-registry 2.8 (plain HTTP on 127.0.0.1, one open and one behind
 * htpasswd), with a real daemon; skopeo reads what we pushed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO, TestDaemon } from '../framework/daemon.js';
import { assertOneLineError, countDir, makeTar, waitFor } from '../framework/helpers.js';
import { BodyLimitProxy, CuttingProxy, TestRegistry } from '../framework/registry.js';
import { MONOLITHIC_MAX } from '../../src/registry/client/registry-client.js';
import { TOKEN_ISSUER, TOKEN_SERVICE, TokenServer } from '../framework/token-server.js';

let d: TestDaemon;
let reg: TestRegistry;
let secure: TestRegistry;
let configDir: string;
let busyboxId: string;
let pushedDigest: string;

const VESSEL = path.join(REPO, 'bin', 'vessel');
const tmpDirs: string[] = [];

/** A temporary directory removed after the tests. */
function tmpDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(dir);
  return dir;
}

const OCI_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

before(async () => {
  // Credentials of this test's CLI invocations live in a private config dir.
  configDir = tmpDir('vcfg-');
  process.env.VESSEL_CONFIG = configDir;
  reg = await new TestRegistry().start();
  secure = await new TestRegistry({ username: 'user', password: 'pass' }).start();
  d = new TestDaemon();
  await d.start();
  await d.ensureBusybox();
  busyboxId = (await d.ok(['image', 'inspect', '-f', '{{.Id}}', 'busybox'])).trim();
});

after(async () => {
  await d?.destroy();
  await reg?.stop();
  await secure?.stop();
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});

async function inspect(ref: string): Promise<any> {
  return JSON.parse(await d.ok(['image', 'inspect', ref]))[0];
}

/** The registry's own digest for a tag (HEAD with Docker-Content-Digest). */
async function registryDigest(r: TestRegistry, repo: string, ref: string): Promise<string> {
  const a = await r.request('HEAD', `/v2/${repo}/manifests/${ref}`, { Accept: OCI_ACCEPT });
  assert.equal(a.status, 200, `HEAD manifest ${repo}:${ref} on the registry`);
  return String(a.headers['docker-content-digest']);
}

function storeCounts(): { blobs: string[]; snapshots: string[] } {
  const blobs = readdirSync(path.join(d.stateRoot, 'content', 'blobs', 'sha256')).sort();
  const snapshots = readdirSync(path.join(d.stateRoot, 'l')).sort();
  return { blobs, snapshots };
}

async function imageIds(): Promise<string[]> {
  return (await d.ok(['images', '-q', '--no-trunc'])).split('\n').filter(Boolean).sort();
}

test('push to a loopback registry over plain HTTP keeps the manifest digest', async () => {
  const ref = `${reg.host}/test/busybox:1`;
  await d.ok(['tag', 'busybox', ref]);
  const outText = await d.ok(['push', ref]);
  assert.match(outText, new RegExp(`The push refers to repository \\[${reg.host}/test/busybox\\]`));
  assert.match(outText, /: Pushed/);
  const m = /^1: digest: (sha256:[a-f0-9]{64}) size: (\d+)$/m.exec(outText);
  assert.ok(m, `digest line in:\n${outText}`);
  pushedDigest = m[1]!;
  const img = await inspect(ref);
  assert.equal(img.Descriptor.digest, pushedDigest, 'our manifest digest is what push reported');
  assert.equal(await registryDigest(reg, 'test/busybox', '1'), pushedDigest, 'the registry stored our exact manifest');
  assert.ok(img.RepoDigests.includes(`${reg.host}/test/busybox@${pushedDigest}`), `RepoDigests: ${img.RepoDigests}`);
  // The registry has the config under the image ID.
  const cfg = await reg.request('HEAD', `/v2/test/busybox/blobs/${busyboxId}`);
  assert.equal(cfg.status, 200);
});

test('skopeo reads the pushed image out of docker-registry', () => {
  const out = tmpDir('vsk-');
  const r = spawnSync('skopeo', ['copy', '--preserve-digests', '--src-tls-verify=false', `docker://${reg.host}/test/busybox:1`, `oci:${out}:x`], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `skopeo copy: ${r.stderr}${r.error ?? ''}`);
  const index = JSON.parse(readFileSync(path.join(out, 'index.json'), 'utf8'));
  assert.equal(index.manifests[0].digest, pushedDigest, 'skopeo keeps the manifest as we pushed it');
  const raw = spawnSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/test/busybox:1`]);
  assert.equal(raw.status, 0, String(raw.stderr));
  assert.equal(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`, pushedDigest);
  const r2 = spawnSync('skopeo', ['inspect', '--tls-verify=false', '--config', `docker://${reg.host}/test/busybox:1`], { encoding: 'utf8' });
  assert.equal(r2.status, 0, r2.stderr);
  assert.equal(JSON.parse(r2.stdout).rootfs.type, 'layers');
});

test('rmi then pull gives back the same image ID and manifest digest, and it runs', async () => {
  const ref = `${reg.host}/test/busybox:1`;
  await d.ok(['rmi', '-f', busyboxId]);
  assert.equal((await d.cli(['image', 'inspect', ref])).code, 1);
  const text = await d.ok(['pull', ref]);
  for (const s of ['Pulling fs layer', 'Download complete', 'Pull complete', `Digest: ${pushedDigest}`, `Status: Downloaded newer image for ${ref}`]) {
    assert.ok(text.includes(s), `pull output lacks ${JSON.stringify(s)}:\n${text}`);
  }
  const img = await inspect(ref);
  assert.equal(img.Id, busyboxId);
  assert.equal(img.Descriptor.digest, pushedDigest);
  assert.deepEqual(img.RepoDigests, [`${reg.host}/test/busybox@${pushedDigest}`]);
  assert.equal((await d.ok(['run', '--rm', ref, 'echo', 'pulled-ok'])).trim(), 'pulled-ok');
  // Again: nothing to do.
  const again = await d.ok(['pull', ref]);
  assert.match(again, new RegExp(`Status: Image is up to date for ${ref.replace(/\./g, '\\.')}`));
  // Quiet prints only the reference; by digest works too.
  assert.equal((await d.ok(['pull', '-q', `${reg.host}/test/busybox@${pushedDigest}`])).trim(), `${reg.host}/test/busybox@${pushedDigest}`);
  const digests = await d.ok(['images', '--format', '{{.Repository}} {{.Digest}}']);
  assert.ok(digests.includes(`${reg.host}/test/busybox ${pushedDigest}`), digests);
});

test('a second tag finds its layers already in the registry', async () => {
  await d.ok(['tag', `${reg.host}/test/busybox:1`, `${reg.host}/test/busybox:2`]);
  const text = await d.ok(['push', `${reg.host}/test/busybox:2`]);
  assert.match(text, /Layer already exists/);
  assert.doesNotMatch(text, /Pushed/);
  assert.match(text, new RegExp(`^2: digest: ${pushedDigest} size:`, 'm'));
});

test('a push into another repository of the same registry mounts the blobs', async () => {
  await d.ok(['tag', `${reg.host}/test/busybox:1`, `${reg.host}/other/app:v1`]);
  const text = await d.ok(['push', `${reg.host}/other/app:v1`]);
  assert.match(text, /Mounted from test\/busybox/);
  assert.doesNotMatch(text, /Pushed/);
  assert.equal(await registryDigest(reg, 'other/app', 'v1'), pushedDigest);
  // -q prints repo@digest only.
  assert.equal((await d.ok(['push', '-q', `${reg.host}/other/app:v1`])).trim(), `${reg.host}/other/app@${pushedDigest}`);
});

test('login with a wrong password fails in one line; the right one lets push and pull through', async () => {
  const ref = `${secure.host}/team/busybox:1`;
  await d.ok(['tag', `${reg.host}/test/busybox:1`, ref]);
  const anon = await d.cli(['push', ref]);
  assertOneLineError(anon, 'push without login', /^vessel: .*(unauthorized|authentication required|login)/i);

  const bad = await d.cli(['login', '-u', 'user', '-p', 'wrong', secure.host]);
  assertOneLineError(bad, 'login with a wrong password', /^vessel: Login to 127\.0\.0\.1:\d+ failed/);
  assert.equal(existsSync(path.join(configDir, 'config.json')), false, 'nothing stored after a failed login');

  const good = await d.cli(['login', '-u', 'user', '--password-stdin', secure.host], { input: 'pass\n' });
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /Login Succeeded/);
  const file = path.join(configDir, 'config.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const cfg = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(Buffer.from(cfg.auths[secure.host].auth, 'base64').toString(), 'user:pass');

  const pushed = await d.ok(['push', ref]);
  assert.match(pushed, new RegExp(`1: digest: ${pushedDigest}`));
  await d.ok(['rmi', ref]);
  await d.ok(['pull', ref]);

  const lo = await d.ok(['logout', secure.host]);
  assert.match(lo, /Removing login credentials/);
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).auths[secure.host], undefined);
  const denied = await d.cli(['pull', `${secure.host}/team/busybox:1`]);
  assertOneLineError(denied, 'pull after logout', /^vessel: Pull access denied/);
});

test('Bearer token auth: a token per scope from the realm, fetched with the stored credentials', async () => {
  const tdir = tmpDir('vtok-');
  const ts = await new TokenServer(tdir, { alice: 's3cret' }, 'access_token').start();
  const treg = await new TestRegistry(undefined, { realm: ts.realm, service: TOKEN_SERVICE, issuer: TOKEN_ISSUER, certFile: ts.certFile }).start();
  try {
    const ref = `${treg.host}/team/app:1`;
    await d.ok(['tag', `${reg.host}/test/busybox:1`, ref]);
    const anon = await d.cli(['push', ref]);
    assertOneLineError(anon, 'push with an anonymous token', /^vessel: Authentication required by 127\.0\.0\.1:\d+: run 'vessel login/);
    const bad = await d.cli(['login', '-u', 'alice', '-p', 'wrong', treg.host]);
    assertOneLineError(bad, 'login with a wrong password', /^vessel: Login to 127\.0\.0\.1:\d+ failed: incorrect username or password$/);
    await d.ok(['login', '-u', 'alice', '-p', 's3cret', treg.host]);

    ts.requests.length = 0;
    const pushed = await d.ok(['push', ref]);
    assert.match(pushed, new RegExp(`1: digest: ${pushedDigest}`));
    assert.ok(ts.requests.length >= 1 && ts.requests.every((r) => r.user === 'alice'), JSON.stringify(ts.requests));
    assert.ok(ts.requests.some((r) => r.scopes.includes('repository:team/app:pull,push')), JSON.stringify(ts.requests));
    assert.equal(ts.requests.length, 1, `one token serves the whole push: ${JSON.stringify(ts.requests)}`);

    await d.ok(['rmi', ref]);
    ts.requests.length = 0;
    await d.ok(['pull', ref]);
    assert.deepEqual(ts.requests, [{ scopes: ['repository:team/app:pull'], user: 'alice' }], 'one token for the whole pull');
    await d.ok(['logout', treg.host]);
    assertOneLineError(await d.cli(['pull', ref]), 'pull after logout', /^vessel: Pull access denied for 127\.0\.0\.1:\d+\/team\/app/);
  } finally {
    await treg.stop();
    await ts.stop();
  }
});

test('the real docker CLI logs in, pushes and pulls through vesseld', async () => {
  const dockerConfig = tmpDir('vdock-');
  const docker = (args: string[], input?: string) => {
    const r = spawnSync('docker', args, {
      env: { ...process.env, DOCKER_HOST: d.host, DOCKER_CONFIG: dockerConfig },
      encoding: 'utf8',
      input,
      timeout: 120_000,
    });
    if (r.error) throw r.error;
    return r;
  };
  const ref = `${secure.host}/team/docker:1`;
  const bad = docker(['login', '-u', 'user', '--password-stdin', secure.host], 'nope\n');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /Login to 127\.0\.0\.1:\d+ failed/);
  const good = docker(['login', '-u', 'user', '--password-stdin', secure.host], 'pass\n');
  assert.equal(good.status, 0, good.stderr);
  assert.match(good.stdout, /Login Succeeded/);
  assert.equal(docker(['tag', `${reg.host}/test/busybox:1`, ref]).status, 0);
  const pushed = docker(['push', ref]);
  assert.equal(pushed.status, 0, pushed.stderr);
  assert.match(pushed.stdout, new RegExp(`1: digest: ${pushedDigest} size: \\d+`));
  assert.equal(docker(['rmi', ref]).status, 0);
  const pulled = docker(['pull', ref]);
  assert.equal(pulled.status, 0, pulled.stderr);
  assert.match(pulled.stdout, new RegExp(`Digest: ${pushedDigest}`));
  const digests = docker(['image', 'inspect', '-f', '{{json .RepoDigests}}', ref]);
  assert.ok(JSON.parse(digests.stdout).includes(`${secure.host}/team/docker@${pushedDigest}`), digests.stdout);
  await d.ok(['rmi', ref]);
});

test('a loopback registry that speaks HTTPS is used over HTTPS (HTTPS first)', async () => {
  const tlsReg = await new TestRegistry(undefined, undefined, true).start();
  try {
    const ref = `${tlsReg.host}/test/tls:1`;
    await d.ok(['tag', `${reg.host}/test/busybox:1`, ref]);
    const text = await d.ok(['push', ref]);
    assert.match(text, new RegExp(`1: digest: ${pushedDigest}`));
    assert.equal(await registryDigest(tlsReg, 'test/tls', '1'), pushedDigest);
    await d.ok(['rmi', ref]);
    assert.match(await d.ok(['pull', ref]), new RegExp(`Digest: ${pushedDigest}`));
    await d.ok(['rmi', ref]);
  } finally {
    await tlsReg.stop();
  }
});

test('a big layer is streamed in one PATCH and comes back identical', async () => {
  const dir = tmpDir('vbig-');
  const tarPath = path.join(dir, 'big.tar');
  mkdirSync(path.join(dir, 'root'));
  // Random data does not compress: the layer blob stays far above the one-PUT size.
  writeFileSync(path.join(dir, 'root', 'random.bin'), randomBytes(64 * MONOLITHIC_MAX + 12345));
  assert.equal(spawnSync('tar', ['-C', path.join(dir, 'root'), '-cf', tarPath, '.']).status, 0);
  const ref = `${reg.host}/test/big:1`;
  await d.ok(['image', 'import', tarPath, ref]);
  const id = (await inspect(ref)).Id;
  const text = await d.ok(['push', ref]);
  assert.match(text, /: Pushed/);
  const digest = /^1: digest: (sha256:[a-f0-9]{64})/m.exec(text)?.[1];
  // The whole blob went up in one streamed PATCH (the registry's access log shows each request).
  const patches = reg.log.split('\n').filter((l) => /"PATCH \/v2\/test\/big\/blobs\/uploads\/\S+ HTTP\/1\.1" 202/.test(l));
  assert.equal(patches.length, 1, `PATCH requests:\n${patches.join('\n')}`);
  assert.equal(await registryDigest(reg, 'test/big', '1'), digest);
  await d.ok(['rmi', ref]);
  await d.ok(['pull', '-q', ref]);
  const back = await inspect(ref);
  assert.equal(back.Id, id);
  assert.equal(back.Descriptor.digest, digest);
  await d.ok(['rmi', ref]);
});

test('a registry that refuses big bodies with 413 gets the blob in smaller chunks', async () => {
  const dir = tmpDir('vlimit-');
  const tarPath = path.join(dir, 'layer.tar');
  mkdirSync(path.join(dir, 'root'));
  writeFileSync(path.join(dir, 'root', 'random.bin'), randomBytes(40 * MONOLITHIC_MAX));
  assert.equal(spawnSync('tar', ['-C', path.join(dir, 'root'), '-cf', tarPath, '.']).status, 0);
  const maxBody = 6 * 1024 * 1024;
  const proxy = await new BodyLimitProxy(reg.port, maxBody).start();
  try {
    const ref = `${proxy.host}/test/limited:1`;
    await d.ok(['image', 'import', tarPath, ref]);
    const id = (await inspect(ref)).Id;
    const text = await d.ok(['push', ref]);
    const digest = /^1: digest: (sha256:[a-f0-9]{64})/m.exec(text)?.[1];
    const patches = proxy.requests.filter((r) => r.startsWith('PATCH '));
    // The whole-blob PATCH was refused, then the chunks that fit went through.
    assert.match(patches[0], / 413$/);
    const accepted = patches.filter((r) => / 202$/.test(r)).map((r) => Number(r.split(' ')[1]));
    assert.ok(accepted.length >= 4, `PATCH requests:\n${patches.join('\n')}`);
    assert.ok(accepted.every((n) => n <= maxBody), `PATCH requests:\n${patches.join('\n')}`);
    assert.equal(await registryDigest(reg, 'test/limited', '1'), digest);
    await d.ok(['rmi', ref]);
    await d.ok(['pull', '-q', ref]);
    assert.equal((await inspect(ref)).Id, id);
    await d.ok(['rmi', ref]);
  } finally {
    await proxy.stop();
  }
});

test('zstd layers and a multi-platform index: the platform is chosen, diff IDs verified', async () => {
  // Hand-built fixture in the registry: busybox's layer (gzip) plus a zstd layer, in an index
  // with an amd64 and an arm64 manifest (the arm64 one is only metadata; it is not run).
  const m = JSON.parse((await reg.request('GET', '/v2/test/busybox/manifests/1', { Accept: OCI_ACCEPT })).body.toString());
  const baseCfg = JSON.parse((await reg.request('GET', `/v2/test/busybox/blobs/${m.config.digest}`)).body.toString());
  const baseLayer = (await reg.request('GET', `/v2/test/busybox/blobs/${m.layers[0].digest}`)).body;
  const tarBytes = await makeTar([{ name: 'hello.txt', content: 'hello from zstd\n' }]);
  const z = spawnSync('zstd', ['-q', '-c'], { input: tarBytes });
  assert.equal(z.status, 0, `zstd: ${z.stderr}`);
  const repo = 'test/multi';
  const l1 = await reg.putBlob(repo, baseLayer);
  const l2 = await reg.putBlob(repo, z.stdout);
  const diffIds = [baseCfg.rootfs.diff_ids[0], `sha256:${createHash('sha256').update(tarBytes).digest('hex')}`];
  const layers = [
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l1 },
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', ...l2 },
  ];
  const manifests = [];
  const configs: Record<string, string> = {};
  for (const arch of ['arm64', 'amd64']) {
    const cfg = Buffer.from(JSON.stringify({ ...baseCfg, architecture: arch, rootfs: { type: 'layers', diff_ids: diffIds } }));
    const c = await reg.putBlob(repo, cfg);
    configs[arch] = c.digest;
    const mf = await reg.putManifest(repo, `${arch}-only`, 'application/vnd.oci.image.manifest.v1+json', {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...c },
      layers,
    });
    manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...mf, platform: { os: 'linux', architecture: arch } });
  }
  const index = await reg.putManifest(repo, '1', 'application/vnd.oci.image.index.v1+json', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests,
  });
  const ref = `${reg.host}/${repo}:1`;
  await d.ok(['pull', ref]);
  const img = await inspect(ref);
  assert.equal(img.Id, configs.amd64, 'linux/amd64 by default');
  assert.equal(img.Architecture, 'amd64');
  assert.deepEqual(img.RepoDigests, [`${reg.host}/${repo}@${index.digest}`], 'the repo digest is the index digest');
  assert.equal(img.Descriptor.digest, manifests[1]!.digest, 'the stored manifest is the amd64 one');
  assert.equal((await d.ok(['run', '--rm', ref, 'cat', '/hello.txt'])).trim(), 'hello from zstd');
  await d.ok(['pull', '--platform', 'linux/arm64', ref]);
  assert.equal((await inspect(ref)).Id, configs.arm64);
  const none = await d.cli(['pull', '--platform', 'linux/s390x', ref]);
  assertOneLineError(none, 'pull of a missing platform', /No matching manifest for linux\/s390x/);
  // Diff IDs are checked when a layer is unpacked (at first use; the pull checks blob digests):
  // a config whose diff IDs do not match its layers pulls, then fails to run in one line and
  // leaves no directory; rmi gives back the store as it was.
  const before = storeCounts();
  const badCfg = await reg.putBlob(repo, Buffer.from(JSON.stringify({ ...baseCfg, rootfs: { type: 'layers', diff_ids: [diffIds[0], diffIds[0]] } })));
  await reg.putManifest(repo, 'bad', 'application/vnd.oci.image.manifest.v1+json', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...badCfg },
    layers,
  });
  const badRef = `${reg.host}/${repo}:bad`;
  await d.ok(['pull', badRef]);
  const bad = await d.cli(['run', '--rm', badRef, 'true']);
  assertOneLineError(bad, 'run of an image with wrong diff IDs', /diff ID mismatch/i);
  assert.deepEqual(storeCounts().snapshots, before.snapshots, 'no snapshot or staging directory');
  await d.ok(['rmi', badRef]);
  assert.deepEqual(storeCounts(), before);
  assert.equal((await d.cli(['image', 'inspect', badRef])).code, 1);
});

test('a connection cut in the middle of a blob fails the pull and leaves the store unchanged', async () => {
  const proxy = await new CuttingProxy(reg.port).start();
  try {
    const dir = tmpDir('vcut-');
    mkdirSync(path.join(dir, 'root'));
    writeFileSync(path.join(dir, 'root', 'random.bin'), randomBytes(6 * 1024 * 1024));
    const tarPath = path.join(dir, 'cut.tar');
    assert.equal(spawnSync('tar', ['-C', path.join(dir, 'root'), '-cf', tarPath, '.']).status, 0);
    const ref = `${proxy.host}/test/cut:1`;
    await d.ok(['image', 'import', tarPath, ref]);
    await d.ok(['push', '-q', ref]);
    await d.ok(['rmi', ref]);
    const before = storeCounts();
    const images = await imageIds();
    proxy.armed = true;
    const r = await d.cli(['pull', ref]);
    assertOneLineError(r, 'pull over a dropped connection', /^vessel: Downloading blob sha256:[a-f0-9]{64} from 127\.0\.0\.1:\d+\/test\/cut: /);
    assert.deepEqual(storeCounts(), before, 'no new blobs or snapshots');
    assert.deepEqual(await imageIds(), images, 'no image recorded');
    assert.equal(countDir(path.join(d.stateRoot, 'content', 'ingest')), 0, 'no partial download left');
    assert.deepEqual(readdirSync(path.join(d.stateRoot, 'l')).filter((n) => n.startsWith('tmp-')), []);

    // A client that goes away while the download hangs cancels the pull; it is undone the same way.
    proxy.mode = 'stall';
    const cli = spawn(VESSEL, ['--host', d.host, 'pull', ref], { stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    cli.stdout.on('data', (c: Buffer) => (seen += c.toString()));
    const exited = new Promise((resolve) => cli.on('close', resolve));
    await waitFor('the pull to start downloading', () => seen.includes('Downloading') && countDir(path.join(d.stateRoot, 'content', 'ingest')) > 0);
    cli.kill('SIGKILL');
    await exited;
    // Clean-up ends with the staging directory of the half-unpacked layer (after the ingest file).
    const staging = () => readdirSync(path.join(d.stateRoot, 'l')).filter((n) => n.startsWith('tmp-')).length;
    await waitFor('the cancelled pull to clean up', () => countDir(path.join(d.stateRoot, 'content', 'ingest')) === 0 && staging() === 0, 20_000);
    assert.deepEqual(storeCounts(), before, 'no new blobs or snapshots after a cancel');
    assert.deepEqual(await imageIds(), images);
    assert.match(d.log, /Pull cancelled|client went away/i, 'the daemon saw the cancel');

    proxy.armed = false;
    await d.ok(['pull', '-q', ref]);
    await d.ok(['rmi', ref]);
  } finally {
    await proxy.stop();
  }
});

test('pulling a digest the registry does not have fails in one line', async () => {
  const wrong = `sha256:${randomBytes(32).toString('hex')}`;
  const r = await d.cli(['pull', `${reg.host}/test/busybox@${wrong}`]);
  assertOneLineError(r, 'pull unknown digest', /manifest unknown|not found/i);
});

test('a corrupted layer blob fails the pull with the digest and leaves the store unchanged', async () => {
  const ref = `${reg.host}/test/busybox:1`;
  const manifest = JSON.parse((await reg.request('GET', `/v2/test/busybox/manifests/1`, { Accept: OCI_ACCEPT })).body.toString());
  const layer = manifest.layers[0].digest as string;
  // Remove every local image, so the layer has to come from the registry.
  for (const id of await imageIds()) await d.ok(['rmi', '-f', id]);
  const before = storeCounts();
  const data = reg.blobDataPath(layer);
  const size = statSync(data).size;
  writeFileSync(data, randomBytes(size));
  const r = await d.cli(['pull', ref]);
  assertOneLineError(r, 'pull of a corrupted blob', new RegExp(`^vessel: .*${layer}.*`));
  assert.deepEqual(storeCounts(), before, 'no new blobs or snapshots');
  assert.deepEqual(await imageIds(), [], 'no image recorded');
  assert.equal(countDir(path.join(d.stateRoot, 'content', 'ingest')), 0, 'no partial downloads');
});

test('a manifest whose bytes do not match its digest is refused', async () => {
  const data = reg.blobDataPath(pushedDigest);
  const original = readFileSync(data);
  writeFileSync(data, Buffer.concat([original, Buffer.from('\n')]));
  const byDigest = await d.cli(['pull', `${reg.host}/test/busybox@${pushedDigest}`]);
  assertOneLineError(byDigest, 'pull by digest with tampered content', new RegExp(`digest mismatch.*${pushedDigest}`, 'i'));
  const byTag = await d.cli(['pull', `${reg.host}/test/busybox:1`]);
  assertOneLineError(byTag, 'pull by tag with tampered content', /digest mismatch/i);
  assert.deepEqual(await imageIds(), []);
});
