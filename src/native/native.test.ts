import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  MNT_DETACH, MS, S_IFCHR, SeqpacketSocket, findAddonPath, getxattr, mknod, mount, removeTree, rmdirAll, setxattr, umount, umountAsync,
} from './native.js';

const moduleUrl = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'native.js')).href;

function tmpdir(t: { after(fn: () => void): void }, base = os.tmpdir()): string {
  const dir = fs.mkdtempSync(path.join(base, 'vessel-native-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function isMounted(target: string): boolean {
  const real = fs.realpathSync(target);
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === real);
}

/** Unmounts anything a failed test left behind, so the temp dir can be removed. */
function unmountAll(t: { after(fn: () => void): void }, target: string): void {
  t.after(() => {
    while (fs.existsSync(target) && isMounted(target)) umount(target, MNT_DETACH);
  });
}

function expectErrno(fn: () => unknown, code: string, syscall: string, p: string): void {
  assert.throws(fn, (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, code);
    assert.equal(err.syscall, syscall);
    assert.equal(err.path, p);
    assert.equal(typeof err.errno, 'number');
    assert.ok(err.message.startsWith(`${syscall} ${p}: `), err.message);
    return true;
  });
}

// Node cannot listen on SOCK_SEQPACKET, so the peer is a small python3 server.
// It binds by relative name after chdir because the full path may exceed sun_path,
// and exits when its stdin closes so it never outlives a killed test run.
const SERVER = `
import os, socket, sys, threading
mode, path = sys.argv[1], sys.argv[2]
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
d, base = os.path.split(path)
os.chdir(d)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
srv.bind(base)
if mode == 'stale':
    srv.close()
    print('ready', flush=True)
    sys.exit(0)
srv.listen(64)
print('ready', flush=True)

def serve(conn):
    try:
        if mode == 'echo':
            while True:
                m = conn.recv(70000)
                if not m:
                    break
                conn.send(b'>' + m)
            conn.send(b'BYE')
        elif mode == 'hello-close':
            for m in (b'hello', b'', b'world'):
                conn.send(m)
        elif mode == 'oversize':
            conn.send(b'x' * 70000)
        elif mode == 'flood':
            i = 0
            while True:
                conn.send(b'%d' % i)
                i += 1
    except OSError:
        pass
    finally:
        conn.close()

while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

async function startServer(
  t: { after(fn: () => unknown): void },
  mode: 'echo' | 'hello-close' | 'oversize' | 'flood' | 'stale',
  sockPath: string,
): Promise<ChildProcess> {
  const child = spawn('python3', ['-c', SERVER, mode, sockPath], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });
  // Keep draining stdout afterwards: closing the pipe would kill the server with EPIPE.
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += String(d);
      if (out.includes('ready\n')) resolve();
    });
    child.on('exit', () => reject(new Error('python3 SEQPACKET server did not start')));
  });
  return child;
}

function track(sock: SeqpacketSocket) {
  const messages: Buffer[] = [];
  let closeCalls = 0;
  const closed = new Promise<Error | null>((resolve) => {
    sock.onClose = (err) => {
      closeCalls++;
      resolve(err);
    };
  });
  sock.onMessage = (m) => void messages.push(m);
  return { messages, closed, closeCalls: () => closeCalls };
}

async function runNode(code: string, args: string[] = [], timeoutMs = 10_000) {
  const child = spawn(process.execPath, [...args, '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code_, signal] = (await once(child, 'exit')) as [number | null, string | null];
  clearTimeout(timer);
  return { code: code_, signal, stdout, stderr };
}

test('constants match the C headers the addon was built against', () => {
  const addonPath = findAddonPath();
  assert.ok(addonPath && addonPath.endsWith(path.join('build', 'Release', 'vessel_native.node')));
  const native = createRequire(import.meta.url)(addonPath) as { MS: Record<string, number>; MNT_DETACH: number; S_IFCHR: number };
  assert.deepEqual({ ...MS }, native.MS);
  assert.equal(MNT_DETACH, native.MNT_DETACH);
  assert.equal(S_IFCHR, native.S_IFCHR);
  assert.equal(S_IFCHR, fs.constants.S_IFCHR);
  assert.equal(findAddonPath('/'), null);
});

test('mount tmpfs, write, umount', (t) => {
  const dir = tmpdir(t);
  unmountAll(t, dir);
  mount('tmpfs', dir, 'tmpfs', MS.NOSUID | MS.NODEV, 'size=1m,mode=0700');
  assert.ok(isMounted(dir));
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  fs.writeFileSync(path.join(dir, 'f'), 'hello');
  assert.equal(fs.readFileSync(path.join(dir, 'f'), 'utf8'), 'hello');
  umount(dir);
  assert.ok(!isMounted(dir));
  assert.ok(!fs.existsSync(path.join(dir, 'f')));
});

test('bind mount, read-only remount, propagation, lazy umount', (t) => {
  const src = tmpdir(t);
  const dst = tmpdir(t);
  unmountAll(t, dst);
  fs.writeFileSync(path.join(src, 'f'), 'bound');
  mount(src, dst, null, MS.BIND, null);
  assert.equal(fs.readFileSync(path.join(dst, 'f'), 'utf8'), 'bound');
  mount(null, dst, null, MS.PRIVATE, null);
  mount(null, dst, null, MS.REMOUNT | MS.BIND | MS.RDONLY, null);
  assert.throws(() => fs.writeFileSync(path.join(dst, 'g'), 'x'), { code: 'EROFS' });
  fs.writeFileSync(path.join(src, 'g'), 'still writable');
  const fd = fs.openSync(path.join(dst, 'f'), 'r'); // keeps the mount busy
  try {
    expectErrno(() => umount(dst), 'EBUSY', 'umount', dst);
    umount(dst, MNT_DETACH);
  } finally {
    fs.closeSync(fd);
  }
  assert.ok(!isMounted(dst));
  assert.ok(!fs.existsSync(path.join(dst, 'f')));
});

test('mount and umount errors carry errno codes', (t) => {
  const dir = tmpdir(t);
  const missing = path.join(dir, 'missing');
  expectErrno(() => mount('tmpfs', missing, 'tmpfs', 0, null), 'ENOENT', 'mount', missing);
  expectErrno(() => mount('none', dir, 'no-such-fs', 0, null), 'ENODEV', 'mount', dir);
  expectErrno(() => umount(dir), 'EINVAL', 'umount', dir);
  expectErrno(() => umount(missing), 'ENOENT', 'umount', missing);
  assert.throws(() => mount('tmpfs', 42 as unknown as string, 'tmpfs', 0, null), { name: 'TypeError' });
  assert.throws(() => mount('tmpfs', dir, 'tmpfs', -1, null), { name: 'TypeError' });
  assert.throws(() => mount('tmpfs', `${dir}\0x`, 'tmpfs', 0, null), { code: 'ERR_INVALID_ARG_VALUE' });
});

test('mknod creates an overlayfs whiteout (char device 0:0)', (t) => {
  const dir = tmpdir(t);
  const p = path.join(dir, 'wh');
  mknod(p, S_IFCHR | 0o000, 0, 0);
  const st = fs.lstatSync(p);
  assert.ok(st.isCharacterDevice());
  assert.equal(st.rdev, 0);
  assert.equal(st.mode & 0o7777, 0);
  expectErrno(() => mknod(p, S_IFCHR, 0, 0), 'EEXIST', 'mknod', p);
  const q = path.join(dir, 'c');
  mknod(q, S_IFCHR | 0o600, 1, 3); // /dev/null's numbers
  assert.equal(fs.lstatSync(q).rdev, (1 << 8) | 3);
});

function checkXattrs(dir: string): void {
  setxattr(dir, 'trusted.overlay.opaque', 'y');
  assert.deepEqual(getxattr(dir, 'trusted.overlay.opaque'), Buffer.from('y'));
  const bin = Buffer.from([0, 1, 2, 255]);
  setxattr(dir, 'user.test', bin);
  assert.deepEqual(getxattr(dir, 'user.test'), bin);
  setxattr(dir, 'user.test', 'replaced');
  assert.equal(getxattr(dir, 'user.test')?.toString(), 'replaced');
  setxattr(dir, 'user.empty', Buffer.alloc(0));
  assert.deepEqual(getxattr(dir, 'user.empty'), Buffer.alloc(0));
  const big = Buffer.alloc(3000, 7);
  setxattr(dir, 'user.big', big);
  assert.deepEqual(getxattr(dir, 'user.big'), big);
  assert.equal(getxattr(dir, 'user.absent'), null);
  const missing = path.join(dir, 'missing');
  expectErrno(() => getxattr(missing, 'user.test'), 'ENOENT', 'getxattr', missing);
  expectErrno(() => setxattr(missing, 'user.test', 'x'), 'ENOENT', 'setxattr', missing);
  // l*xattr must act on a symlink itself, never its target.
  const link = path.join(dir, 'link');
  fs.symlinkSync(dir, link);
  setxattr(link, 'trusted.overlay.redirect', '/x');
  assert.equal(getxattr(link, 'trusted.overlay.redirect')?.toString(), '/x');
  assert.equal(getxattr(dir, 'trusted.overlay.redirect'), null);
  assert.equal(getxattr(link, 'trusted.overlay.opaque'), null);
}

test('xattrs (trusted.overlay.*, user.*) on the temp dir filesystem', (t) => {
  const dir = tmpdir(t);
  try {
    setxattr(dir, 'trusted.probe', '1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EOPNOTSUPP') assert.fail(`${os.tmpdir()} lacks trusted xattrs, which overlay whiteouts need`);
    throw err;
  }
  checkXattrs(dir);
});

test('xattrs on a private tmpfs', (t) => {
  const dir = tmpdir(t);
  unmountAll(t, dir);
  mount('tmpfs', dir, 'tmpfs', 0, 'size=1m');
  checkXattrs(dir);
  umount(dir);
});

test('seqpacket: message boundaries, shutdownWrite gives the peer EOF, onClose once', async (t) => {
  const sockPath = path.join(tmpdir(t), 's');
  await startServer(t, 'echo', sockPath);
  const sock = SeqpacketSocket.connect(sockPath);
  const { messages, closed, closeCalls } = track(sock);
  assert.equal(sock.write(Buffer.from('a')), true);
  sock.write(Buffer.from('bb'));
  sock.write(Buffer.from('ccc'));
  sock.write(Buffer.alloc(65535, 0x61)); // echo adds one byte: exactly 64 KiB back
  sock.shutdownWrite();
  sock.shutdownWrite(); // idempotent
  assert.throws(() => sock.write(Buffer.from('late')), { code: 'EPIPE' });
  assert.equal(await closed, null);
  assert.deepEqual(messages.map((m) => m.length), [2, 3, 4, 65536, 3]);
  assert.deepEqual(messages.slice(0, 3).map(String), ['>a', '>bb', '>ccc']);
  assert.equal(messages[4]!.toString(), 'BYE');
  await sleep(50);
  assert.equal(closeCalls(), 1);
  assert.throws(() => sock.write(Buffer.from('x')), { code: 'EBADF', syscall: 'send' });
  sock.close();
  sock.close();
  sock.shutdownWrite(); // no-op once closed
});

test('seqpacket: 1000 writes keep their order through the EAGAIN queue', async (t) => {
  const sockPath = path.join(tmpdir(t), 's');
  await startServer(t, 'echo', sockPath);
  const sock = SeqpacketSocket.connect(sockPath);
  const { messages, closed } = track(sock);
  const results: boolean[] = [];
  for (let i = 0; i < 1000; i++) {
    const msg = Buffer.alloc(4096, i & 0xff);
    msg.writeUInt32BE(i, 0);
    results.push(sock.write(msg));
  }
  assert.ok(results.includes(false), 'the socket buffer never filled; queueing was not exercised');
  sock.shutdownWrite(); // must wait for the queue to drain
  assert.equal(await closed, null);
  assert.equal(messages.length, 1001);
  for (let i = 0; i < 1000; i++) {
    assert.equal(messages[i]!.length, 4097);
    assert.equal(messages[i]!.readUInt32BE(1), i);
  }
  assert.equal(messages[1000]!.toString(), 'BYE');
});

test('seqpacket: peer close fires onClose after pending messages, empty messages kept', async (t) => {
  const sockPath = path.join(tmpdir(t), 's');
  await startServer(t, 'hello-close', sockPath);
  const sock = SeqpacketSocket.connect(sockPath);
  const { messages, closed } = track(sock);
  assert.equal(await closed, null);
  assert.deepEqual(messages.map(String), ['hello', '', 'world']);
  assert.throws(() => sock.write(Buffer.from('x')), { code: 'EBADF' });
});

test('seqpacket: a datagram over 64 KiB closes with EMSGSIZE', async (t) => {
  const sockPath = path.join(tmpdir(t), 's');
  await startServer(t, 'oversize', sockPath);
  const sock = SeqpacketSocket.connect(sockPath);
  const { messages, closed } = track(sock);
  const err = (await closed) as NodeJS.ErrnoException;
  assert.equal(err.code, 'EMSGSIZE');
  assert.equal(err.syscall, 'recv');
  assert.equal(messages.length, 0);
});

test('seqpacket: paths longer than sun_path connect via /proc/self/fd', async (t) => {
  const dir = path.join(tmpdir(t), 'd'.repeat(60), 'e'.repeat(60));
  fs.mkdirSync(dir, { recursive: true });
  const sockPath = path.join(dir, 'sock');
  assert.ok(Buffer.byteLength(sockPath) > 108);
  await startServer(t, 'echo', sockPath);
  const sock = SeqpacketSocket.connect(sockPath);
  const { messages, closed } = track(sock);
  sock.write(Buffer.from('long'));
  sock.shutdownWrite();
  assert.equal(await closed, null);
  assert.deepEqual(messages.map(String), ['>long', 'BYE']);
  const missing = path.join(dir, 'nope');
  expectErrno(() => SeqpacketSocket.connect(missing), 'ENOENT', 'connect', missing);
  const noDir = path.join(dir, 'x', 'sock');
  expectErrno(() => SeqpacketSocket.connect(noDir), 'ENOENT', 'connect', noDir);
});

test('seqpacket: connect errors', async (t) => {
  const dir = tmpdir(t);
  const missing = path.join(dir, 'missing');
  expectErrno(() => SeqpacketSocket.connect(missing), 'ENOENT', 'connect', missing);
  const stale = path.join(dir, 'stale');
  const server = await startServer(t, 'stale', stale);
  await once(server, 'exit');
  expectErrno(() => SeqpacketSocket.connect(stale), 'ECONNREFUSED', 'connect', stale);
  const file = path.join(dir, 'file');
  fs.writeFileSync(file, '');
  expectErrno(() => SeqpacketSocket.connect(file), 'ECONNREFUSED', 'connect', file);
  const tooLong = 'x'.repeat(200);
  expectErrno(() => SeqpacketSocket.connect(tooLong), 'ENAMETOOLONG', 'connect', tooLong);
});

test('seqpacket: no callbacks after close(), also when closed inside onMessage', async (t) => {
  const sockPath = path.join(tmpdir(t), 's');
  await startServer(t, 'flood', sockPath);

  const a = SeqpacketSocket.connect(sockPath);
  let aMessages = 0;
  let aClosed = 0;
  a.onMessage = () => {
    aMessages++;
    a.close();
  };
  a.onClose = () => aClosed++;

  const b = SeqpacketSocket.connect(sockPath);
  let bMessages = 0;
  let bClosed = 0;
  b.onMessage = () => void bMessages++;
  b.onClose = () => bClosed++;
  while (bMessages < 2000) await sleep(5);
  b.close();
  const seen = bMessages;

  await sleep(200);
  assert.equal(aMessages, 1);
  assert.equal(aClosed, 0);
  assert.equal(bMessages, seen);
  assert.equal(bClosed, 0);
});

test('seqpacket: event loop liveness, unref, errors thrown from callbacks', async (t) => {
  const sockPath = path.join(tmpdir(t), 's');
  await startServer(t, 'echo', sockPath);
  const prelude = `import { SeqpacketSocket } from ${JSON.stringify(moduleUrl)};
    const s = SeqpacketSocket.connect(${JSON.stringify(sockPath)});`;

  const closed = await runNode(`${prelude} s.close(); console.log('done');`);
  assert.equal(closed.code, 0, closed.stderr);
  assert.equal(closed.stdout, 'done\n');

  const unrefd = await runNode(`${prelude} s.unref(); console.log('done');`);
  assert.equal(unrefd.code, 0, unrefd.stderr);

  const idle = await runNode(prelude, [], 1000); // an open socket keeps the process alive
  assert.equal(idle.signal, 'SIGKILL');

  const thrown = await runNode(`${prelude}
    process.on('uncaughtException', (err) => { console.log('caught', err.message); process.exit(0); });
    s.onMessage = () => { throw new Error('boom'); };
    s.write(Buffer.from('x'));`);
  assert.equal(thrown.code, 0, thrown.stderr);
  assert.equal(thrown.stdout, 'caught boom\n');

  const microtasks = await runNode(`${prelude}
    s.onMessage = (m) => { Promise.resolve().then(() => { console.log('tick', String(m)); s.close(); }); };
    s.write(Buffer.from('p'));`);
  assert.equal(microtasks.code, 0, microtasks.stderr);
  assert.equal(microtasks.stdout, 'tick >p\n');
});

test('seqpacket: open sockets survive GC, closed ones are collected', async (t) => {
  const sockPath = path.join(tmpdir(t), 's');
  await startServer(t, 'echo', sockPath);
  const r = await runNode(`import { SeqpacketSocket } from ${JSON.stringify(moduleUrl)};
    import { setImmediate as tick } from 'node:timers/promises';
    const connect = () => SeqpacketSocket.connect(${JSON.stringify(sockPath)});
    let collected = 0;
    const registry = new FinalizationRegistry(() => collected++);
    const collect = async () => { for (let i = 0; i < 5; i++) { globalThis.gc(); await tick(); } };
    for (let round = 0; round < 5; round++) {
      const replies = [];
      for (let i = 0; i < 50; i++) {
        const s = connect();
        registry.register(s, i);
        if (i % 3 === 0) { s.close(); continue; }
        replies.push(new Promise((resolve) => {
          s.onMessage = () => { if (i % 3 === 1) s.close(); else s.shutdownWrite(); };
          s.onClose = resolve; // reached only by the shutdownWrite path: the peer says BYE and closes
          if (i % 3 === 1) s.onMessage = () => { s.close(); resolve(); };
        }));
        s.write(Buffer.alloc(1000));
      }
      await Promise.all(replies);
      await collect();
    }
    // An unreferenced but open socket must stay alive and keep delivering.
    const alive = new Promise((resolve) => {
      const s = connect();
      s.onMessage = (m) => { s.close(); resolve(String(m)); };
      setTimeout(() => s.write(Buffer.from('still here')), 50);
    });
    await collect();
    console.log(await alive);
    for (let i = 0; i < 50 && collected < 250; i++) await collect();
    console.log(collected);`, ['--expose-gc'], 30_000);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '>still here\n250\n');
});

test('seqpacket: worker teardown with an open socket closes it cleanly', async (t) => {
  const sockPath = path.join(tmpdir(t), 's');
  await startServer(t, 'echo', sockPath);
  for (const how of ['terminate', 'exit'] as const) {
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(moduleUrl)}).then(({ SeqpacketSocket }) => {
        const s = SeqpacketSocket.connect(${JSON.stringify(sockPath)});
        s.onMessage = (m) => {
          parentPort.postMessage(String(m));
          if (${JSON.stringify(how)} === 'exit') process.exit(7);
        };
        s.write(Buffer.from('w'));
      });`,
      { eval: true },
    );
    const exited = once(worker, 'exit'); // may be emitted right after the message
    const [msg] = (await once(worker, 'message')) as [string];
    assert.equal(msg, '>w');
    if (how === 'terminate') await worker.terminate();
    const [code] = (await exited) as [number];
    assert.equal(code, how === 'terminate' ? 1 : 7);
  }
});

test('umountAsync unmounts on the thread pool and rejects like umount', async (t) => {
  const dir = tmpdir(t);
  unmountAll(t, dir);
  mount('tmpfs', dir, 'tmpfs', 0, 'size=1m');
  assert.ok(isMounted(dir));
  await umountAsync(dir);
  assert.equal(isMounted(dir), false);
  await assert.rejects(umountAsync(dir), (err: NodeJS.ErrnoException) => err.code === 'EINVAL' && err.syscall === 'umount');
});

test('removeTree deletes a tree without following links or entering a mount below it', async (t) => {
  const base = tmpdir(t);
  const outside = path.join(base, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'keep'), 'x');
  const tree = path.join(base, 'tree');
  fs.mkdirSync(path.join(tree, 'a', 'b'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'a', 'b', 'f'), 'data');
  fs.symlinkSync(outside, path.join(tree, 'a', 'link'));
  await removeTree(tree);
  assert.equal(fs.existsSync(tree), false);
  assert.equal(fs.readFileSync(path.join(outside, 'keep'), 'utf8'), 'x', 'a symlinked directory is not followed');
  await removeTree(tree); // already gone: nothing to do

  const withMount = path.join(base, 'with-mount');
  const mnt = path.join(withMount, 'mnt');
  fs.mkdirSync(mnt, { recursive: true });
  unmountAll(t, mnt);
  mount('tmpfs', mnt, 'tmpfs', 0, 'size=1m');
  fs.writeFileSync(path.join(mnt, 'on-tmpfs'), 'y');
  await assert.rejects(removeTree(withMount), /remove .*with-mount/);
  assert.equal(fs.readFileSync(path.join(mnt, 'on-tmpfs'), 'utf8'), 'y', 'nothing is deleted inside the mount');
  umount(mnt);
});

test('rmdirAll removes empty directories in one job, counts missing ones as removed, and reports the first failure', async (t) => {
  const base = tmpdir(t);
  const [a, b, full] = ['a', 'b', 'full'].map((n) => path.join(base, n)) as [string, string, string];
  for (const d of [a, b, full]) fs.mkdirSync(d);
  fs.writeFileSync(path.join(full, 'f'), 'x');
  await rmdirAll([a, path.join(base, 'never-was'), b]);
  assert.equal(fs.existsSync(a) || fs.existsSync(b), false);

  fs.mkdirSync(a);
  await assert.rejects(rmdirAll([full, a]), (err: NodeJS.ErrnoException) => err.code === 'ENOTEMPTY' && err.syscall === 'rmdir');
  assert.equal(fs.existsSync(a), false, 'the paths after a failing one are still removed');
  assert.ok(fs.existsSync(path.join(full, 'f')), 'a non-empty directory is left alone');
  await rmdirAll([]);
  await assert.rejects(rmdirAll([`${base}/x\ny`]), /newline/);
});
