/**
 * `vessel build` and registries (Docker's behaviour): a FROM image that is
 * not present locally is pulled, `--pull` pulls even when it is present,
 * stored logins reach the daemon (`X-Registry-Config`), and a base image
 * that cannot be pulled fails the build in one line with nothing made.
 * The registries are Debian's docker-registry on 127.0.0.1.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestDaemon } from '../framework/daemon.js';
import { assertOneLineError } from '../framework/helpers.js';
import { TestRegistry } from '../framework/registry.js';

let d: TestDaemon;
let reg: TestRegistry;
let secure: TestRegistry;
let dir: string;
let base: string;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'vt-build-pull-'));
  process.env.VESSEL_CONFIG = path.join(dir, 'cli-config');
  reg = await new TestRegistry().start();
  secure = await new TestRegistry({ username: 'user', password: 'pass' }).start();
  d = new TestDaemon();
  await d.start();
  await d.ensureBusybox();
  base = `${reg.host}/test/busybox:1`;
  await d.ok(['tag', 'busybox', base]);
  await d.ok(['push', '-q', base]);
  await d.ok(['rmi', base]);
});

after(async () => {
  await d?.destroy();
  await reg?.stop();
  await secure?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Builds a context holding only this Dockerfile. */
function build(name: string, dockerfile: string, extra: string[] = []) {
  const c = path.join(dir, name);
  mkdirSync(c, { recursive: true });
  writeFileSync(path.join(c, 'Dockerfile'), dockerfile);
  return d.cli(['build', ...extra, c], { timeoutMs: 300_000 });
}

async function imageIds(): Promise<string[]> {
  return (await d.ok(['images', '-q', '--no-trunc'])).split('\n').filter(Boolean).sort();
}

test('FROM an image that is not present pulls it, then builds on it', async () => {
  assert.equal((await d.cli(['image', 'inspect', base])).code, 1, 'not present before the build');
  const r = await build('first', `FROM ${base}\nRUN echo built > /built.txt\n`, ['-t', 'pulled-base:1']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /Pulling from test\/busybox/);
  assert.match(r.stdout, new RegExp(`Status: Downloaded newer image for ${base.replace(/\./g, '\\.')}`));
  assert.ok((await d.ok(['image', 'inspect', '-f', '{{json .RepoDigests}}', base])).includes(`${reg.host}/test/busybox@sha256:`), 'the pulled base keeps its repo digest');
  assert.equal((await d.ok(['run', '--rm', 'pulled-base:1', 'cat', '/built.txt'])).trim(), 'built');
  // Present now: a rebuild does not go to the registry.
  const again = await build('first', `FROM ${base}\nRUN echo built > /built.txt\n`, ['-t', 'pulled-base:1']);
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stdout, /Pulling from/);
});

test('--pull fetches the newer base the registry has; without it the local one is used', async () => {
  // The registry's tag moves to a new image; the local tag stays on the old one.
  const v2 = await build('v2', 'FROM busybox\nRUN echo v2 > /marker\n', ['-t', base]);
  assert.equal(v2.code, 0, v2.stderr);
  await d.ok(['push', '-q', base]);
  await d.ok(['tag', 'busybox', base]);
  const df = `FROM ${base}\nRUN cat /marker 2>/dev/null || echo none\n`;
  const local = await build('use-local', df, ['--no-cache', '-t', 'on-local:1']);
  assert.equal(local.code, 0, local.stderr);
  assert.doesNotMatch(local.stdout, /Pulling from/);
  assert.match(local.stdout, /^none$/m);
  const pulled = await build('use-pull', df, ['--pull', '--no-cache', '-t', 'on-pulled:1']);
  assert.equal(pulled.code, 0, `${pulled.stdout}\n${pulled.stderr}`);
  assert.match(pulled.stdout, /Pulling from test\/busybox/);
  assert.match(pulled.stdout, /^v2$/m);
  // --pull again: the registry has nothing newer.
  const same = await build('use-pull', df, ['--pull', '-t', 'on-pulled:1']);
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stdout, /Status: Image is up to date for/);
});

test('a FROM on a registry with auth uses the stored login', async () => {
  const ref = `${secure.host}/team/busybox:1`;
  await d.ok(['login', '-u', 'user', '-p', 'pass', secure.host]);
  await d.ok(['tag', 'busybox', ref]);
  await d.ok(['push', '-q', ref]);
  await d.ok(['rmi', ref]);
  const ok = await build('auth', `FROM ${ref}\nRUN true\n`);
  assert.equal(ok.code, 0, `${ok.stdout}\n${ok.stderr}`);
  assert.match(ok.stdout, /Pulling from team\/busybox/);
  await d.ok(['rmi', ref]);
  await d.ok(['logout', secure.host]);
  const denied = await build('auth', `FROM ${ref}\nRUN true\n`);
  assertOneLineError(denied, 'FROM without a login', /^vessel: Dockerfile:1: FROM failed: .*(denied|unauthorized|authentication required|login)/i);
});

test('a base image that cannot be pulled fails the build in one line; nothing is left', async () => {
  const images = await imageIds();
  const r = await build('missing', `FROM ${reg.host}/test/missing:1\nRUN true\n`, ['-t', 'never:1']);
  assertOneLineError(r, 'FROM a missing image', /^vessel: Dockerfile:1: FROM failed: No such image: 127\.0\.0\.1:\d+\/test\/missing:1 \(pulling it failed: .*(manifest unknown|not found)/i);
  assert.deepEqual(await imageIds(), images, 'no image made');
  assert.equal((await d.cli(['image', 'inspect', 'never:1'])).code, 1);
});
