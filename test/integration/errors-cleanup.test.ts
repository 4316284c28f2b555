/**
 * Acceptance 7: every bad input is refused with exactly one line on stderr
 * (no stack trace) and a non-zero exit, and leaves nothing behind: no
 * container, mount, cgroup, runtime state, conmon, image, blob or temp dir.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO, TestDaemon, type CliResult } from '../framework/daemon.js';
import {
  allIds,
  assertId,
  assertOneLineError,
  busyboxRootfsTar,
  leftoverSummary,
  leftoversFor,
  makeTar,
  status,
  waitFor,
} from '../framework/helpers.js';

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

interface Snapshot {
  leftovers: Record<string, string[]>;
  containers: string[];
  images: string[];
  blobs: string[];
  layerDirs: string[];
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

async function snapshot(daemon: TestDaemon = d): Promise<Snapshot> {
  return {
    leftovers: leftoverSummary(daemon),
    containers: (await allIds(daemon)).sort(),
    images: (await daemon.ok(['image', 'ls', '-a', '-q', '--no-trunc'])).split('\n').filter(Boolean).sort(),
    blobs: listDir(path.join(daemon.stateRoot, 'content', 'blobs', 'sha256')),
    layerDirs: listDir(path.join(daemon.stateRoot, 'l')),
  };
}

/** Runs the CLI, expects one clean error line, and that nothing changed. */
async function refused(args: string[], pattern?: RegExp, opts: { input?: string | Buffer } = {}): Promise<CliResult> {
  const before = await snapshot();
  const r = await d.cli(args, { timeoutMs: 60_000, ...opts });
  assertOneLineError(r, `vessel ${args.join(' ')}`, pattern);
  // Give an asynchronous cleanup a moment, then compare.
  await waitFor(
    `nothing left behind by vessel ${args.join(' ')}`,
    async () => JSON.stringify(await snapshot()) === JSON.stringify(before),
    10_000,
  ).catch(async () => assert.deepEqual(await snapshot(), before, `vessel ${args.join(' ')} left something behind`));
  return r;
}

test('run of an unknown image: one line, non-zero, nothing left', async () => {
  await refused(['run', 'nosuch:tag'], /nosuch/);
  await refused(['run', '--rm', '-d', 'nosuch:tag', 'true'], /nosuch/);
});

test('run of a malformed reference: one line, non-zero, nothing left', async () => {
  await refused(['run', 'UPPER::bad'], /invalid reference format|UPPER/i);
});

test('create with a name already taken: one line, the first container untouched', async () => {
  const first = assertId(await d.ok(['create', '--name', 'taken', 'busybox', 'true']));
  await refused(['create', '--name', 'taken', 'busybox', 'true'], /already in use/);
  await refused(['run', '--name', 'taken', 'busybox', 'true'], /already in use/);
  assert.equal(await status(d, 'taken'), 'created');
  await d.ok(['rm', first]);
});

test('--memory abc: one line, nothing left', async () => {
  await refused(['run', '--memory', 'abc', 'busybox', 'true'], /abc/);
});

test('an image without Cmd run without a command: "No command specified", nothing left', async () => {
  const tarPath = await busyboxRootfsTar(d, fixtures, 'nocmd');
  await d.ok(['image', 'import', tarPath, 'nocmd:1']);
  await refused(['run', 'nocmd:1'], /no command specified/i);
  await refused(['create', 'nocmd:1'], /no command specified/i);
  // With a command it runs.
  assert.equal(await d.ok(['run', '--rm', 'nocmd:1', '/bin/echo', 'fine']), 'fine\n');
});

test('rm of a running container without -f: one line, and it keeps running', async () => {
  const id = assertId(await d.ok(['run', '-d', 'busybox', 'sleep', '1000']));
  await refused(['rm', id], /running|stop|force/i);
  assert.equal(await status(d, id), 'running');
  assert.equal(await d.ok(['exec', id, 'echo', 'still']), 'still\n');
  await d.ok(['rm', '-f', id]);
});

test('rm -f of a running container leaves no mount, cgroup, runtime state, conmon or directory', async () => {
  const before = leftoverSummary(d);
  const id = assertId(await d.ok(['run', '-d', 'busybox', 'sleep', '1000']));
  assert.ok(leftoversFor(d, id).length > 0, 'a running container should hold a mount, cgroups, runtime state and a conmon');
  assert.ok(leftoversFor(d, id).some((x) => x.startsWith('conmon pid')), 'no conmon found for the running container');
  await d.ok(['rm', '-f', id], { timeoutMs: 60_000 });
  assert.deepEqual(leftoversFor(d, id), []);
  assert.deepEqual(leftoverSummary(d), before);
  assert.ok(!(await allIds(d)).includes(id));
});

test('a command not found in the image: exit 127, one line, no runtime resources held', async () => {
  const before = leftoverSummary(d);
  const r = await d.cli(['run', '--name', 'nocmd-found', 'busybox', 'nosuchcmd'], { timeoutMs: 60_000 });
  assertOneLineError(r, 'run busybox nosuchcmd', /nosuchcmd/);
  assert.equal(r.code, 127);
  // As in Docker the container record stays (status created/exited), but it holds nothing on the host.
  const id = (await d.ok(['inspect', '-f', '{{.Id}}', 'nocmd-found'])).trim();
  const held = () => leftoversFor(d, id).filter((x) => x !== id);
  await waitFor('no runtime resources for the failed container', () => held().length === 0, 10_000).catch(() =>
    assert.deepEqual(held(), [], 'the failed container still holds host resources'),
  );
  assert.notEqual(await status(d, id), 'running');
  await d.ok(['rm', 'nocmd-found']);
  assert.deepEqual(leftoverSummary(d), before);
});

test('run --rm of a command not found: exit 127, one line, and the container is removed', async () => {
  const snap = await snapshot();
  const r2 = await d.cli(['run', '--rm', 'busybox', 'nosuchcmd'], { timeoutMs: 60_000 });
  assertOneLineError(r2, 'run --rm busybox nosuchcmd', /nosuchcmd/);
  assert.equal(r2.code, 127);
  await waitFor('the --rm container to be gone', async () => JSON.stringify(await snapshot()) === JSON.stringify(snap), 10_000).catch(
    async () => assert.deepEqual(await snapshot(), snap),
  );
});

test('a missing runtime binary: one line, non-zero, nothing left', async () => {
  const d2 = new TestDaemon({ runtime: '/nonexistent/runc' });
  try {
    await d2.start();
    await d2.ensureBusybox();
    const before = await snapshot(d2);
    const r = await d2.cli(['run', '--rm', 'busybox', 'true'], { timeoutMs: 60_000 });
    assertOneLineError(r, 'run with a missing runtime', /nonexistent|runtime|runc/i);
    const r2 = await d2.cli(['run', '-d', 'busybox', 'true'], { timeoutMs: 60_000 });
    assertOneLineError(r2, 'run -d with a missing runtime', /nonexistent|runtime|runc/i);
    await waitFor('nothing left', async () => JSON.stringify(await snapshot(d2)) === JSON.stringify(before), 10_000).catch(async () =>
      assert.deepEqual(await snapshot(d2), before),
    );
  } finally {
    await d2.destroy();
  }
});

test('layer import rejects a "../evil" entry: one line, nothing written, no image, blob or temp dir', async () => {
  const tarball = await makeTar([
    { name: 'bin/', type: 'directory' },
    { name: 'ok.txt', content: 'fine\n' },
    { name: '../evil', content: 'escaped\n' },
  ]);
  await refused(['image', 'import', '-', 'evil:dotdot'], undefined, { input: tarball });
  const found = spawnSync('find', [d.root, '-name', 'evil'], { encoding: 'utf8' }).stdout.trim();
  assert.equal(found, '', `"../evil" was written: ${found}`);
  assert.notEqual((await d.cli(['image', 'inspect', 'evil:dotdot'])).code, 0);
});

test('layer import rejects writing through a symlink that points outside: target stays empty', async () => {
  const target = mkdtempSync(path.join(os.tmpdir(), 'vt-target-'));
  try {
    const tarball = await makeTar([
      { name: 'lnk', type: 'symlink', linkname: target },
      { name: 'lnk/pwned', content: 'pwned\n' },
    ]);
    await refused(['image', 'import', '-', 'evil:symlink'], undefined, { input: tarball });
    assert.deepEqual(readdirSync(target), [], `something was written outside the layer: ${readdirSync(target)}`);
    // A relative symlink climbing out of the root is no better.
    const rel = path.relative('/', target);
    const tarball2 = await makeTar([
      { name: 'a/', type: 'directory' },
      { name: 'a/up', type: 'symlink', linkname: `../../../../../../../../${rel}` },
      { name: 'a/up/pwned2', content: 'pwned\n' },
    ]);
    await refused(['image', 'import', '-', 'evil:relsymlink'], undefined, { input: tarball2 });
    assert.deepEqual(readdirSync(target), [], `something was written outside the layer: ${readdirSync(target)}`);
  } finally {
    rmSync(target, { recursive: true, force: true });
  }
});

test('invalid flag values and unknown flags: one line each, nothing left', async () => {
  await refused(['run', '--restart', 'sometimes', 'busybox', 'true'], /restart/);
  await refused(['run', '--cpus', '99', 'busybox', 'true'], /cpu/i);
  await refused(['run', '--tmpfs', 'relative', 'busybox', 'true'], /tmpfs|absolute/i);
  // (`-v name:/x` is a named volume, as in Docker; relative paths are refused.)
  await refused(['run', '-v', './relative:/x', 'busybox', 'true'], /relative|volume|absolute|invalid/i);
  await refused(['run', '-v', 'relative/dir:/x', 'busybox', 'true'], /relative|volume|absolute|invalid/i);
  await refused(['run', '-v', '/tmp:relative', 'busybox', 'true'], /volume|absolute|invalid/i);
  await refused(['run', '--bogus', 'busybox', 'true'], /bogus/);
  await refused(['ps', '--bogus'], /bogus/);
  await refused(['run', '--memory', '-5m', 'busybox', 'true']);
  await refused(['run', '--pids-limit', 'many', 'busybox', 'true'], /many/);
  await refused(['run', '-p', '99999:80', 'busybox', 'true'], /port/i);
  await refused(['nosuchcommand'], /unknown command|nosuchcommand/);
});

test('operations on a missing container: one line each', async () => {
  for (const args of [['start', 'ghost'], ['stop', 'ghost'], ['rm', 'ghost'], ['logs', 'ghost'], ['inspect', 'ghost'], ['exec', 'ghost', 'true'], ['kill', 'ghost'], ['wait', 'ghost']]) {
    await refused(args, /ghost/);
  }
});

test('no stray container directories, mounts or conmons remain after the error cases', async () => {
  const ids = await allIds(d);
  const l = d.leftovers();
  assert.deepEqual(l.mounts, []);
  assert.deepEqual(l.conmons, []);
  assert.deepEqual(l.runtimeState, []);
  assert.deepEqual([...l.containerDirs].sort(), [...ids].sort());
  assert.deepEqual([...l.bundles].sort(), [...ids].sort());
  // The env-file error path is handled on the CLI side too.
  const missing = path.join(fixtures, 'missing.env');
  await refused(['run', '--env-file', missing, 'busybox', 'true'], /missing\.env/);
});

test('vesseld refuses an exec root that others may write to: one line, exit 1, nothing made', () => {
  const t = mkdtempSync(path.join(os.tmpdir(), 'vt-exec-'));
  try {
    const exec = path.join(t, 'exec');
    mkdirSync(exec);
    chmodSync(exec, 0o777); // as someone else's directory in /dev/shm could be
    const root = path.join(t, 'root');
    const r = spawnSync(path.join(REPO, 'bin', 'vesseld'), ['--root', root, '--host', `unix://${t}/api.sock`, '--exec-root', exec], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    assertOneLineError({ code: r.status ?? 255, stdout: r.stdout, stderr: r.stderr }, 'vesseld --exec-root');
    assert.match(r.stderr, /not a private directory/);
    assert.equal(existsSync(root), false, 'the root was made anyway');
    assert.deepEqual(readdirSync(exec), []);
  } finally {
    rmSync(t, { recursive: true, force: true });
  }
});
