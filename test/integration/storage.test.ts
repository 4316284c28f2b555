/**
 * Storage: overlay copy-on-write between containers of one image, the cost
 * of a new container, and the image commands (import, ls, tag, history,
 * inspect, rm, prune).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestDaemon } from '../framework/daemon.js';
import { assertId, assertOneLineError, countDir, inspectJson, status, waitFor } from '../framework/helpers.js';

let d: TestDaemon;
let fixtures: string;

before(async () => {
  d = new TestDaemon();
  await d.start();
  await d.ensureBusybox();
  fixtures = path.join(d.root, 'fixtures');
  mkdirSync(fixtures);
});

after(async () => {
  await d?.destroy();
});

/** Size in KiB of a directory, staying on its file system (a running rootfs mount is not counted). */
function duK(dir: string): number {
  const r = spawnSync('du', ['-skx', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, `du ${dir}: ${r.stderr}`);
  return Number(r.stdout.split(/\s/)[0]);
}

async function imageLowerDirs(ref: string): Promise<string[]> {
  const j = JSON.parse(await d.ok(['image', 'inspect', ref]))[0];
  const lower = j.GraphDriver?.Data?.LowerDir as string | undefined;
  assert.ok(lower, `image inspect ${ref} has no GraphDriver.Data.LowerDir`);
  return lower.split(':');
}

/** The path of `rel` in the image's layers (top-most first), or null. */
function findInLayers(lowers: string[], rel: string): string | null {
  for (const l of lowers) {
    const p = path.join(l, rel);
    try {
      lstatSync(p);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

/** A small rootfs: busybox from the busybox image, with `sh`, `echo`, `cat` links. */
async function miniRootfsTar(name: string): Promise<string> {
  const lowers = await imageLowerDirs('busybox');
  const bb = findInLayers(lowers, 'bin/busybox');
  assert.ok(bb, 'busybox image has no bin/busybox');
  const root = path.join(fixtures, `${name}-root`);
  mkdirSync(path.join(root, 'bin'), { recursive: true });
  mkdirSync(path.join(root, 'etc'));
  copyFileSync(bb, path.join(root, 'bin', 'busybox'));
  for (const a of ['sh', 'echo', 'cat', 'ls']) symlinkSync('busybox', path.join(root, 'bin', a));
  writeFileSync(path.join(root, 'etc', 'release'), `${name}\n`);
  const tarPath = path.join(fixtures, `${name}.tar`);
  const r = spawnSync('tar', ['--numeric-owner', '-C', root, '-cf', tarPath, '.']);
  assert.equal(r.status, 0, String(r.stderr));
  return tarPath;
}

async function imageIds(): Promise<string[]> {
  return (await d.ok(['image', 'ls', '-q', '--no-trunc'])).split('\n').filter(Boolean);
}

test('copy-on-write: changes in one container are seen neither by another container nor by the image', async () => {
  const script = 'if [ -e /etc/motd ]; then echo persisted; else echo x > /etc/motd && rm /bin/ls && cat /etc/motd && [ ! -e /bin/ls ] && echo gone; fi';
  const a = assertId(await d.ok(['create', 'busybox', 'sh', '-c', script]));
  await d.ok(['start', a]);
  assert.equal(await d.ok(['wait', a], { timeoutMs: 60_000 }), '0\n');
  assert.equal(await d.ok(['logs', a]), 'x\ngone\n');
  // A second container of the same image sees the image as it was.
  const b = await d.ok(['run', '--rm', 'busybox', 'sh', '-c', '[ -e /etc/motd ] && echo motd || echo no-motd; [ -e /bin/ls ] && echo ls || echo no-ls']);
  assert.equal(b, 'no-motd\nls\n');
  // The image's layers are untouched.
  const lowers = await imageLowerDirs('busybox');
  assert.ok(findInLayers(lowers, 'bin/ls'), 'bin/ls vanished from the image layers');
  assert.equal(findInLayers(lowers, 'etc/motd'), null, 'etc/motd appeared in the image layers');
  // The change lives in the container's upper dir: the file, and a whiteout for /bin/ls.
  const ja = await inspectJson(d, a);
  const upper = ja.GraphDriver?.Data?.UpperDir as string;
  assert.ok(upper && existsSync(upper), `UpperDir ${upper} missing`);
  assert.ok(existsSync(path.join(upper, 'etc', 'motd')));
  const wh = lstatSync(path.join(upper, 'bin', 'ls'));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0, '/bin/ls removal should be an overlay whiteout (0/0 char device)');
  // Started again, container A keeps its own changes.
  await d.ok(['start', a]);
  assert.equal(await d.ok(['wait', a], { timeoutMs: 60_000 }), '0\n');
  assert.equal(await d.ok(['logs', a]), 'x\ngone\npersisted\n');
  await d.ok(['rm', a]);
});

test('a new container costs well under 1 MiB (created, and started before it writes)', async () => {
  const created = assertId(await d.ok(['create', 'busybox', 'sleep', '1000']));
  const jc = await inspectJson(d, created);
  const upperC = jc.GraphDriver.Data.UpperDir as string;
  const dirC = path.dirname(upperC);
  assert.ok(existsSync(dirC), `container dir ${dirC} missing`);
  if (existsSync(upperC)) assert.ok(duK(upperC) < 1024, `created container upper dir is ${duK(upperC)} KiB`);
  assert.ok(duK(dirC) < 1024, `created container dir is ${duK(dirC)} KiB`);

  const running = assertId(await d.ok(['run', '-d', 'busybox', 'sleep', '1000']));
  const jr = await inspectJson(d, running);
  const upperR = jr.GraphDriver.Data.UpperDir as string;
  const dirR = path.dirname(upperR);
  assert.equal(await status(d, running), 'running');
  assert.ok(existsSync(upperR), `running container upper dir ${upperR} missing`);
  assert.ok(duK(upperR) < 1024, `running container upper dir is ${duK(upperR)} KiB`);
  assert.ok(duK(dirR) < 1024, `running container dir is ${duK(dirR)} KiB`);
  // The image itself is ~2 MiB: the container does not hold a copy of it.
  await d.ok(['rm', '-f', created, running]);
});

test('image import of a rootfs tar, then run from it', async () => {
  const tarPath = await miniRootfsTar('mini');
  const out = await d.ok(['image', 'import', tarPath, 'mini:1']);
  assert.match(out, /sha256:[0-9a-f]{64}/);
  assert.equal(await d.ok(['run', '--rm', 'mini:1', '/bin/sh', '-c', 'cat /etc/release; echo imported']), 'mini\nimported\n');
  // Import from stdin too.
  const viaStdin = await d.ok(['image', 'import', '-', 'mini:stdin'], { input: readFileSync(tarPath) });
  assert.match(viaStdin, /sha256:/);
});

test('image ls, tag, history and inspect', async () => {
  const ls = await d.ok(['image', 'ls']);
  assert.match(ls, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE/);
  assert.match(ls, /\nbusybox\s+latest\s+[0-9a-f]{12}\s/);
  assert.match(ls, /\nmini\s+1\s+[0-9a-f]{12}\s/);

  await d.ok(['image', 'tag', 'mini:1', 'mini:alias']);
  const j1 = JSON.parse(await d.ok(['image', 'inspect', 'mini:1']))[0];
  const j2 = JSON.parse(await d.ok(['image', 'inspect', 'mini:alias']))[0];
  assert.equal(j1.Id, j2.Id);
  assert.match(j1.Id, /^sha256:[0-9a-f]{64}$/);
  assert.ok(j1.RepoTags.includes('mini:1') && j1.RepoTags.includes('mini:alias'), `RepoTags ${j1.RepoTags}`);
  assert.equal(j1.RootFS.Type, 'layers');
  assert.equal(j1.RootFS.Layers.length, 1);
  assert.equal(j1.Os, 'linux');
  assert.ok(j1.Size > 0);
  // Tag without a tag part means :latest.
  await d.ok(['image', 'tag', 'mini:1', 'mini']);
  assert.ok((await d.ok(['image', 'ls', 'mini'])).includes('latest'));

  const history = await d.ok(['image', 'history', 'mini:1']);
  const rows = history.split('\n').filter(Boolean);
  assert.match(rows[0]!, /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT/);
  assert.ok(rows.length >= 2, history);
  assert.ok(rows[1]!.startsWith(j1.Id.slice(7, 19)), `history's top row should be the image: ${rows[1]}`);
  const bh = await d.ok(['image', 'history', '--no-trunc', 'busybox']);
  assert.match(bh, /busybox/);
});

test('image rm: untags an extra tag; refuses an image a container uses unless -f', async () => {
  const id = JSON.parse(await d.ok(['image', 'inspect', 'mini:1']))[0].Id as string;
  assert.match(await d.ok(['image', 'rm', 'mini:alias']), /Untagged: mini:alias/);
  assert.match(await d.ok(['image', 'rm', 'mini:latest']), /Untagged: mini:latest/);
  const user = assertId(await d.ok(['create', 'mini:1', '/bin/sh', '-c', 'true']));
  const r = await d.cli(['image', 'rm', 'mini:1']);
  assertOneLineError(r, 'image rm of an image in use', /container/);
  assert.ok((await imageIds()).includes(id), 'the refused image must still be there');
  assert.equal((await d.cli(['image', 'inspect', 'mini:1'])).code, 0);
  // Forced: the tag goes; the container still works.
  const f = await d.ok(['image', 'rm', '-f', 'mini:1']);
  assert.match(f, /Untagged: mini:1/);
  assert.notEqual((await d.cli(['image', 'inspect', 'mini:1'])).code, 0);
  await d.ok(['start', user]);
  assert.equal(await d.ok(['wait', user], { timeoutMs: 60_000 }), '0\n');
  await d.ok(['rm', user]);
  // An unused image goes entirely.
  const stdinImage = JSON.parse(await d.ok(['image', 'inspect', 'mini:stdin']))[0].Id as string;
  const del = await d.ok(['image', 'rm', 'mini:stdin']);
  assert.match(del, /Untagged: mini:stdin/);
  // mini:stdin has the same content as mini:1, so it may be the same image (already untagged above).
  if (stdinImage !== id) assert.match(del, new RegExp(`Deleted: ${stdinImage}`));
});

test('image rm of an unknown image fails with one line', async () => {
  const r = await d.cli(['image', 'rm', 'nosuch:image']);
  assertOneLineError(r, 'image rm nosuch:image', /No such image|not found/i);
});

test('image prune removes dangling images and their blobs, and keeps tagged ones', async () => {
  const blobs = path.join(d.stateRoot, 'content', 'blobs', 'sha256');
  const tarPath = await miniRootfsTar('dangling');
  const out = await d.ok(['image', 'import', tarPath]);
  const danglingId = /sha256:[0-9a-f]{64}/.exec(out)?.[0];
  assert.ok(danglingId, out);
  const dangling = (await d.ok(['image', 'ls', '-q', '--no-trunc', '--filter', 'dangling=true'])).split('\n').filter(Boolean);
  assert.ok(dangling.includes(danglingId), `dangling list ${dangling}`);
  const blobsBefore = countDir(blobs);
  const pruned = await d.ok(['image', 'prune', '-f']);
  assert.match(pruned, new RegExp(`Deleted: ${danglingId}`));
  assert.match(pruned, /Total reclaimed space: /);
  const ids = await imageIds();
  assert.ok(!ids.includes(danglingId));
  assert.equal((await d.cli(['image', 'inspect', 'busybox'])).code, 0, 'tagged busybox must survive prune');
  await waitFor('blobs of the pruned image to be removed', () => countDir(blobs) < blobsBefore, 10_000);
  assert.ok(!readdirSync(blobs).includes(danglingId.slice(7)), 'the config blob of the pruned image is still there');
  // Nothing left to prune.
  assert.doesNotMatch(await d.ok(['image', 'prune', '-f']), /Deleted/);
});
