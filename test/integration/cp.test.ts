/**
 * `vessel cp` both ways: files and directories with modes, Docker's
 * destination rules, stopped containers, volume mounts, tar streams, and
 * container symlinks that point at host paths (which must stay inside the
 * container).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tar from 'tar-stream';
import { spawnSync } from 'node:child_process';
import { REPO, TestDaemon } from '../framework/daemon.js';
import { assertId, assertOneLineError, makeTar } from '../framework/helpers.js';

let d: TestDaemon;
let work: string;
let n = 0;

before(async () => {
  d = new TestDaemon();
  await d.start();
  await d.ensureBusybox();
  work = path.join(d.root, 'cp');
  mkdirSync(work);
});

after(async () => {
  await d?.destroy();
});

/** A fresh local directory for one test. */
function scratch(): string {
  const dir = path.join(work, `t${++n}`);
  mkdirSync(dir);
  return dir;
}

async function sleeper(...flags: string[]): Promise<string> {
  return assertId(await d.ok(['run', '-d', ...flags, 'busybox', 'sleep', '1000']));
}

/** `stat -c '%a %u %g %F'` inside a container. */
async function cstat(c: string, p: string): Promise<string> {
  return (await d.ok(['exec', c, 'stat', '-c', '%a %u %g %F', p])).trim();
}

const mode = (p: string): string => (lstatSync(p).mode & 0o7777).toString(8);

/** Names in a tar buffer. */
async function tarNames(buf: Buffer): Promise<string[]> {
  const ex = tar.extract();
  const names: string[] = [];
  const done = (async () => {
    for await (const e of ex) {
      names.push(e.header.name);
      e.resume();
    }
  })();
  ex.end(buf);
  await done;
  return names;
}

function fixtureTree(dir: string): string {
  const src = path.join(dir, 'tree');
  mkdirSync(path.join(src, 'sub'), { recursive: true });
  writeFileSync(path.join(src, 'top.txt'), 'top\n');
  writeFileSync(path.join(src, 'sub', 'secret'), 'secret\n');
  chmodSync(path.join(src, 'sub', 'secret'), 0o600);
  chmodSync(path.join(src, 'sub'), 0o710);
  chmodSync(path.join(src, 'top.txt'), 0o754);
  symlinkSync('top.txt', path.join(src, 'link'));
  return src;
}

test('files and directories both ways, modes kept, Docker destination rules', async () => {
  const dir = scratch();
  const c = await sleeper();
  const file = path.join(dir, 'script.sh');
  writeFileSync(file, '#!/bin/sh\necho hi\n');
  chmodSync(file, 0o754);
  chownSync(file, 1234, 5678);

  // A file into an existing directory keeps its name; owners become root unless -a.
  await d.ok(['cp', file, `${c}:/tmp`]);
  assert.equal(await cstat(c, '/tmp/script.sh'), '754 0 0 regular file');
  assert.equal(await d.ok(['exec', c, '/tmp/script.sh']), 'hi\n');
  await d.ok(['cp', '-a', file, `${c}:/tmp/renamed.sh`]);
  assert.equal(await cstat(c, '/tmp/renamed.sh'), '754 1234 5678 regular file');
  // A file onto an existing file replaces it.
  writeFileSync(path.join(dir, 'v2'), 'second\n');
  await d.ok(['cp', path.join(dir, 'v2'), `${c}:/tmp/renamed.sh`]);
  assert.equal(await d.ok(['exec', c, 'cat', '/tmp/renamed.sh']), 'second\n');

  // A directory: copied under its name into an existing dir, created when missing, contents only with /.
  const src = fixtureTree(dir);
  await d.ok(['cp', src, `${c}:/tmp`]);
  assert.equal(await cstat(c, '/tmp/tree/sub'), '710 0 0 directory');
  assert.equal(await cstat(c, '/tmp/tree/sub/secret'), '600 0 0 regular file');
  assert.equal(await cstat(c, '/tmp/tree/top.txt'), '754 0 0 regular file');
  assert.equal((await d.ok(['exec', c, 'readlink', '/tmp/tree/link'])).trim(), 'top.txt');
  await d.ok(['cp', src, `${c}:/tmp/newname`]);
  assert.equal(await d.ok(['exec', c, 'cat', '/tmp/newname/top.txt']), 'top\n');
  await d.ok(['exec', c, 'mkdir', '/tmp/existing']);
  await d.ok(['cp', `${src}/.`, `${c}:/tmp/existing`]);
  assert.equal(await d.ok(['exec', c, 'cat', '/tmp/existing/sub/secret']), 'secret\n');

  // And back out.
  const out = path.join(dir, 'out');
  mkdirSync(out);
  await d.ok(['cp', `${c}:/tmp/tree`, out]);
  assert.equal(readFileSync(path.join(out, 'tree', 'sub', 'secret'), 'utf8'), 'secret\n');
  assert.equal(mode(path.join(out, 'tree', 'sub', 'secret')), '600');
  assert.equal(mode(path.join(out, 'tree', 'sub')), '710');
  assert.equal(mode(path.join(out, 'tree', 'top.txt')), '754');
  assert.equal(readlinkSync(path.join(out, 'tree', 'link')), 'top.txt');
  await d.ok(['cp', `${c}:/tmp/tree`, path.join(out, 'fresh')]);
  assert.ok(statSync(path.join(out, 'fresh', 'sub')).isDirectory(), 'a missing destination becomes the copy');
  await d.ok(['cp', `${c}:/tmp/tree/.`, out]);
  assert.ok(existsSync(path.join(out, 'top.txt')), 'SRC/. copies the contents');
  await d.ok(['cp', `${c}:/tmp/script.sh`, path.join(out, 'single')]);
  assert.equal(mode(path.join(out, 'single')), '754');
  assert.equal(statSync(path.join(out, 'single')).uid, 0);

  // Errors: one line each.
  assertOneLineError(await d.cli(['cp', `${c}:/nonexistent`, out]), 'missing source', /Could not find the file \/nonexistent/);
  assertOneLineError(await d.cli(['cp', file, `${c}:/no/such/dir/`]), 'missing destination directory');
  assertOneLineError(await d.cli(['cp', `${c}:/tmp/tree`, path.join(out, 'single')]), 'directory onto a file', /directory to a file/i);
  assertOneLineError(await d.cli(['cp', file, path.join(dir, 'x')]), 'no container', /must specify at least one container/);
  assertOneLineError(await d.cli(['cp', 'nosuchctr:/etc/passwd', out]), 'missing container', /No such container/);
  await d.ok(['rm', '-f', c]);
});

test('cp into and out of a stopped container', async () => {
  const dir = scratch();
  const c = assertId(await d.ok(['create', 'busybox', 'cat', '/etc/from-host']));
  writeFileSync(path.join(dir, 'from-host'), 'copied while created\n');
  chmodSync(path.join(dir, 'from-host'), 0o640);
  await d.ok(['cp', path.join(dir, 'from-host'), `${c}:/etc/`]);
  assert.equal(await d.ok(['start', '-a', c]), 'copied while created\n');
  // Exited now: copy out of it and into it again.
  await d.ok(['cp', `${c}:/etc/from-host`, path.join(dir, 'back')]);
  assert.equal(readFileSync(path.join(dir, 'back'), 'utf8'), 'copied while created\n');
  assert.equal(mode(path.join(dir, 'back')), '640');
  await d.ok(['cp', `${c}:/etc/passwd`, path.join(dir, 'passwd')]);
  assert.match(readFileSync(path.join(dir, 'passwd'), 'utf8'), /^root:/);
  // Nothing of the container stays mounted after a cp of a stopped container.
  assert.deepEqual(d.leftovers().mounts.filter((m) => m.includes(c)), []);
  await d.ok(['rm', c]);
});

test('cp lands in a volume mounted at the path, for running and stopped containers', async () => {
  const dir = scratch();
  writeFileSync(path.join(dir, 'a'), 'A\n');
  writeFileSync(path.join(dir, 'b'), 'B\n');
  const c = await sleeper('-v', 'cpvol:/data');
  const data = path.join(d.stateRoot, 'volumes', 'cpvol', '_data');
  await d.ok(['cp', path.join(dir, 'a'), `${c}:/data/`]);
  assert.equal(readFileSync(path.join(data, 'a'), 'utf8'), 'A\n');
  await d.ok(['stop', '-t', '0', c]);
  await d.ok(['cp', path.join(dir, 'b'), `${c}:/data`]);
  assert.equal(readFileSync(path.join(data, 'b'), 'utf8'), 'B\n');
  const upper = path.join(d.stateRoot, 'containers', c, 'upper');
  assert.ok(!existsSync(path.join(upper, 'data', 'b')), 'cp into a stopped container wrote under the volume, into the rootfs');
  await d.ok(['cp', `${c}:/data/a`, path.join(dir, 'a-back')]);
  assert.equal(readFileSync(path.join(dir, 'a-back'), 'utf8'), 'A\n');
  // A read-only volume refuses writes through cp too.
  const ro = assertId(await d.ok(['create', '-v', 'cpvol:/ro:ro', 'busybox']));
  assertOneLineError(await d.cli(['cp', path.join(dir, 'a'), `${ro}:/ro/`]), 'cp into a read-only volume', /read-only/);
  await d.ok(['rm', '-f', c, ro]);
});

test('container symlinks to host paths never lead cp out of the container', async () => {
  const dir = scratch();
  const hostPasswd = readFileSync('/etc/passwd', 'utf8');
  const marker = `vessel-cp-escape-${process.pid}-${Date.now()}`;
  writeFileSync(path.join(dir, marker), 'must stay in the container\n');
  const c = await sleeper();
  await d.ok(['exec', c, 'sh', '-c', 'ln -s /etc /x && ln -s ../../../../../../etc /y && mkdir /deep && ln -s /etc/passwd /deep/pw']);
  const containerPasswd = await d.ok(['exec', c, 'cat', '/etc/passwd']);
  assert.notEqual(containerPasswd, hostPasswd, 'fixture: host and container passwd should differ');
  try {
    for (const state of ['running', 'stopped']) {
      for (const src of ['/x/passwd', '/y/passwd', '/deep/pw']) {
        const out = path.join(dir, `${state}-${src.replace(/\//g, '_')}`);
        await d.ok(['cp', '-L', `${c}:${src}`, out]);
        assert.equal(readFileSync(out, 'utf8'), containerPasswd, `${state}: cp ${src} read the host's file`);
      }
      const name = `${marker}-${state}`;
      writeFileSync(path.join(dir, name), 'must stay in the container\n');
      await d.ok(['cp', path.join(dir, name), `${c}:/x/`]);
      await d.ok(['cp', path.join(dir, name), `${c}:/y/${name}.2`]);
      assert.ok(!existsSync(`/etc/${name}`) && !existsSync(`/etc/${name}.2`), `${state}: cp wrote into the host's /etc`);
      if (state === 'running') {
        assert.equal(await d.ok(['exec', c, 'cat', `/etc/${name}`, `/etc/${name}.2`]), 'must stay in the container\n'.repeat(2));
        await d.ok(['stop', '-t', '0', c]);
      } else {
        await d.ok(['start', c]);
        assert.equal(await d.ok(['exec', c, 'cat', `/etc/${name}`, `/etc/${name}.2`]), 'must stay in the container\n'.repeat(2));
      }
    }
    // A tar that plants a symlink to the host's /etc and then writes through it stays inside too.
    const evil = await makeTar([
      { name: 'plant', type: 'symlink', linkname: '/etc' },
      { name: `plant/${marker}-tar`, content: 'x' },
    ]);
    await d.ok(['cp', '-', `${c}:/tmp`], { input: evil });
    assert.ok(!existsSync(`/etc/${marker}-tar`), 'a tar wrote through its own symlink into the host /etc');
    assert.equal(await d.ok(['exec', c, 'cat', `/etc/${marker}-tar`]), 'x');
  } finally {
    for (const f of [`${marker}-running`, `${marker}-running.2`, `${marker}-stopped`, `${marker}-stopped.2`, `${marker}-tar`]) {
      rmSync(`/etc/${f}`, { force: true });
    }
  }
  await d.ok(['rm', '-f', c]);
});

test('tar streams on stdin and stdout', async () => {
  const c = await sleeper();
  // d.cli collects text; the tar on stdout is read raw here.
  const r = spawnSync(path.join(REPO, 'bin', 'vessel'), ['--host', d.host, 'cp', `${c}:/etc/hostname`, '-'], { timeout: 60_000 });
  assert.equal(r.status, 0, `cp to stdout: ${String(r.stderr)}`);
  const out = r.stdout;
  assert.deepEqual(await tarNames(out), ['hostname']);
  const input = await makeTar([
    { name: 'dir', type: 'directory', mode: 0o750 },
    { name: 'dir/f', content: 'from stdin\n', mode: 0o604 },
  ]);
  await d.ok(['cp', '-', `${c}:/tmp`], { input });
  assert.equal(await d.ok(['exec', c, 'cat', '/tmp/dir/f']), 'from stdin\n');
  assert.equal(await cstat(c, '/tmp/dir'), '750 0 0 directory');
  assert.equal(await cstat(c, '/tmp/dir/f'), '604 0 0 regular file');
  assertOneLineError(await d.cli(['cp', '-', `${c}:/etc/passwd`], { input }), 'stdin tar onto a file', /must be a directory/);
  await d.ok(['rm', '-f', c]);
});
