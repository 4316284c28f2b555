import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, readdirSync, readSync, writeSync } from 'node:fs';
import { spawnDetached, spawnDetachedInBackground } from './detached-spawn.js';

/** `exited` polls on unref'd timers (the daemon's server keeps its loop alive): keep the test's loop alive. */
function keepLoopAlive(t: { after(fn: () => void): void }): void {
  const timer = setInterval(() => {}, 1000);
  t.after(() => clearInterval(timer));
}

function readAll(s: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('end', () => resolve(out));
    s.on('close', () => resolve(out));
  });
}

test('a detached child gets its pipes on the asked descriptors and leads its own session', async (t) => {
  const script = 'echo "sid=$(ps -o sid= -p $$ | tr -d \' \') pid=$$" >&3; read line <&4; echo "got $line" >&3; echo oops >&2; exit 7';
  keepLoopAlive(t);
  const child = spawnDetached('/bin/sh', ['-c', script], { env: { PATH: process.env.PATH }, cwd: '/', stdio: ['ignore', 'ignore', 'fromChild', 'fromChild', 'toChild'] });
  const [, , err, out, input] = child.pipes;
  assert.equal(child.pipes[0], null);
  const text = readAll(out!);
  const errText = readAll(err!);
  input!.end('hello\n');
  assert.equal(await child.exited, 7);
  const lines = (await text).trim().split('\n');
  const m = /^sid=(\d+) pid=(\d+)$/.exec(lines[0] ?? '');
  assert.ok(m, lines[0]);
  assert.equal(m[1], m[2], 'the child leads its own session');
  assert.equal(lines[1], 'got hello');
  assert.equal((await errText).trim(), 'oops');
  assert.equal(child.running(), false);
});

test('a detached child starts with every signal at its default and none blocked', async (t) => {
  // Node ignores SIGPIPE; neither that nor glibc's internal signals may reach the child ignored.
  // grep reads its own status (a shell would block signals around its own waits).
  keepLoopAlive(t);
  const child = spawnDetached('/bin/grep', ['-E', '^Sig(Ign|Blk):', '/proc/self/status'], { env: {}, cwd: '/', stdio: ['ignore', 'fromChild', 'ignore'] });
  const text = await readAll(child.pipes[1]!);
  assert.equal(await child.exited, 0);
  assert.deepEqual(text.trim().split('\n').sort(), ['SigBlk:\t0000000000000000', 'SigIgn:\t0000000000000000']);
});

test('descriptor pipes: the parent gets plain descriptors, the reading one non-blocking', async (t) => {
  keepLoopAlive(t);
  const child = spawnDetached('/bin/sh', ['-c', 'read line <&3; echo "got $line" >&2'], {
    env: { PATH: process.env.PATH },
    cwd: '/',
    stdio: ['ignore', 'ignore', 'fromChildFd', 'toChildFd'],
  });
  const [errFd, inFd] = [child.fds[2]!, child.fds[3]!];
  assert.deepEqual(child.pipes, [null, null, null, null]);
  assert.ok(errFd > 2 && inFd > 2);
  const buf = Buffer.alloc(64);
  assert.throws(() => readSync(errFd, buf), (e: NodeJS.ErrnoException) => e.code === 'EAGAIN', 'nothing written yet: no blocking');
  writeSync(inFd, 'hi\n');
  closeSync(inFd);
  assert.equal(await child.exited, 0);
  assert.equal(buf.subarray(0, readSync(errFd, buf)).toString(), 'got hi\n');
  closeSync(errFd);
});

test('a missing program is one error and leaves no descriptor behind', () => {
  const before = readFdCount();
  assert.throws(
    () => spawnDetached('/nonexistent/program', [], { env: {}, cwd: '/', stdio: ['ignore', 'ignore', 'fromChild', 'toChild'] }),
    (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.syscall === 'spawn',
  );
  assert.equal(readFdCount(), before);
});

function readFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

test('in the background: the pipes work at once, the pid and the exit code follow', async (t) => {
  keepLoopAlive(t);
  const child = spawnDetachedInBackground('/bin/sh', ['-c', 'read line <&3; echo "got $line pid=$$" >&2; exit 4'], {
    env: { PATH: process.env.PATH },
    cwd: '/',
    stdio: ['ignore', 'ignore', 'fromChild', 'toChildFd'],
  });
  // Written before the child may even exist: it waits in the pipe.
  writeSync(child.fds[3]!, 'early\n');
  closeSync(child.fds[3]!);
  assert.equal(child.running(), true);
  const out = readAll(child.pipes[2]!);
  const pid = await child.pid;
  assert.ok(pid > 0);
  assert.equal(await child.exited, 4);
  assert.equal((await out).trim(), `got early pid=${pid}`);
  assert.equal(child.running(), false);
});

test('in the background: a missing program rejects the pid, exits 127 and leaves no descriptor behind', async () => {
  const before = readFdCount();
  const child = spawnDetachedInBackground('/nonexistent/program', [], { env: {}, cwd: '/', stdio: ['ignore', 'ignore', 'fromChildFd', 'toChildFd'] });
  await assert.rejects(child.pid, (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.syscall === 'spawn');
  assert.equal(await child.exited, 127);
  assert.equal(child.running(), false);
  for (const fd of child.fds) if (fd !== null) closeSync(fd);
  assert.equal(readFdCount(), before);
});
