import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs, { constants as fsc, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { extract, type Header } from 'tar-stream';
import { InternalError, InvalidArgumentError } from '../core/errors.js';
import { mknod, mount, setxattr, umount } from '../native/native.js';
import { openDb } from '../store/db.js';
import { ImageStore, chainIdOf } from './image-store.js';
import { writeLayerFromDir, writeLayerFromUpper, type DiffOptions, type DirLayerOptions } from './layer-diff.js';
import { unpackLayer } from './layer-unpack.js';
import { MEDIA_TYPE } from './oci.js';

if (process.geteuid?.() !== 0) throw new Error('layer-diff tests must run as root (overlayfs mounts, chown, xattrs)');

async function withTmp(fn: (base: string) => Promise<void>): Promise<void> {
  const base = await fsp.mkdtemp(path.join(os.tmpdir(), 'vessel-diff-'));
  const mounted: string[] = [];
  try {
    await fn(base);
  } finally {
    // Any mount a test left behind (it failed half way) goes before the directory.
    for (const line of (await fsp.readFile('/proc/self/mounts', 'utf8')).split('\n')) {
      const target = line.split(' ')[1];
      if (target?.startsWith(`${base}/`)) mounted.push(target);
    }
    for (const m of mounted.reverse()) umount(m, 2 /* MNT_DETACH */);
    await fsp.rm(base, { recursive: true, force: true });
  }
}

function mountOverlay(target: string, lower: string[], upper?: { upper: string; work: string }): void {
  fs.mkdirSync(target, { recursive: true });
  const data = upper ? `lowerdir=${lower.join(':')},upperdir=${upper.upper},workdir=${upper.work}` : `lowerdir=${lower.join(':')}`;
  mount('overlay', target, 'overlay', 0, data);
}

async function collect(write: (out: Writable) => Promise<unknown>): Promise<{ tar: Buffer; result: unknown }> {
  const pass = new PassThrough();
  const chunks: Buffer[] = [];
  pass.on('data', (c: Buffer) => chunks.push(c));
  const result = await write(pass);
  return { tar: Buffer.concat(chunks), result };
}

interface Entry { header: Header; data: Buffer }

async function readTar(tar: Buffer): Promise<Entry[]> {
  const ex = extract();
  const out: Entry[] = [];
  const reading = (async () => {
    for await (const e of ex) {
      const chunks: Buffer[] = [];
      for await (const c of e) chunks.push(c as Buffer);
      out.push({ header: e.header, data: Buffer.concat(chunks) });
    }
  })();
  ex.end(tar);
  await reading;
  return out;
}

/** A recursive listing with everything a layer round trip must preserve; the root itself is left out. */
function listing(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (abs: string, rel: string): void => {
    for (const name of fs.readdirSync(abs).sort()) {
      const a = path.join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(a);
      const common = `mode=${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} mtime=${Math.floor(st.mtimeMs / 1000)}`;
      if (st.isDirectory()) {
        out[r] = `dir ${common}`;
        walk(a, r);
      } else if (st.isFile()) {
        const sum = createHash('sha256').update(fs.readFileSync(a)).digest('hex').slice(0, 16);
        out[r] = `file ${common} nlink=${st.nlink} size=${st.size} sha=${sum}`;
      } else if (st.isSymbolicLink()) {
        out[r] = `symlink ${st.uid}:${st.gid} -> ${fs.readlinkSync(a)}`;
      } else if (st.isFIFO()) {
        out[r] = `fifo ${common}`;
      } else {
        out[r] = `other ${st.mode.toString(8)} rdev=${st.rdev}`;
      }
    }
  };
  walk(root, '');
  return out;
}

const T = new Date('2020-01-02T03:04:05Z');

function write(p: string, data: string, mode = 0o644): void {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
  fs.chmodSync(p, mode);
  fs.utimesSync(p, T, T);
}

/** The image's layer: a few directories and files. */
function makeLower(L: string): void {
  write(path.join(L, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  write(path.join(L, 'etc/keep'), 'keep\n', 0o600);
  write(path.join(L, 'bin/tool'), '#!/bin/sh\necho tool\n', 0o755);
  write(path.join(L, 'data/a'), 'a');
  write(path.join(L, 'data/sub/b'), 'b');
  write(path.join(L, 'old/x'), 'x');
  write(path.join(L, 'old2/deep/z'), 'z');
  write(path.join(L, 'gone'), 'gone');
  for (const d of ['etc', 'bin', 'data/sub', 'data', 'old', 'old2/deep', 'old2']) fs.utimesSync(path.join(L, d), T, T);
  fs.chmodSync(L, 0o755);
}

const LONG = `new/${'long-directory-name-'.repeat(6)}/${'f'.repeat(90)}`;

/** What a container does through the merged mount. */
function makeChanges(M: string): void {
  const j = (p: string): string => path.join(M, p);
  fs.mkdirSync(j('new/empty'), { recursive: true });
  fs.writeFileSync(j('new/file.txt'), 'hello\n');
  fs.chmodSync(j('new/file.txt'), 0o640);
  fs.linkSync(j('new/file.txt'), j('new/hard'));
  fs.appendFileSync(j('etc/passwd'), 'app:x:1000:1000::/home/app:/bin/sh\n');
  fs.linkSync(j('etc/keep'), j('etc/keep2')); // a lower file, copied up, then linked
  fs.unlinkSync(j('gone'));
  fs.renameSync(j('old/x'), j('old/y'));
  fs.rmSync(j('old2'), { recursive: true });
  fs.rmSync(j('data'), { recursive: true });
  fs.mkdirSync(j('data'));
  fs.writeFileSync(j('data/c'), 'c');
  fs.chmodSync(j('bin/tool'), 0o700);
  fs.symlinkSync('../etc/passwd', j('new/link'));
  fs.symlinkSync('/nonexistent/target', j('new/dangle'));
  fs.lchownSync(j('new/dangle'), 33, 34);
  fs.writeFileSync(j('new/suid'), 'ELF');
  fs.chownSync(j('new/suid'), 1000, 1000);
  fs.chmodSync(j('new/suid'), 0o4755);
  fs.mkdirSync(j('new/tmp'));
  fs.chmodSync(j('new/tmp'), 0o1777);
  fs.writeFileSync(j('new/zero'), 'no permissions');
  fs.chmodSync(j('new/zero'), 0);
  fs.writeFileSync(j('new/bigid'), 'userns');
  fs.chownSync(j('new/bigid'), 300000, 300001);
  fs.writeFileSync(j('new/ünïcödé'), 'utf8 name');
  fs.mkdirSync(path.dirname(j(LONG)), { recursive: true });
  fs.writeFileSync(j(LONG), 'long');
  mknod(j('new/fifo'), fsc.S_IFIFO | 0o640, 0, 0);
  fs.writeFileSync(j('etc/hostname'), ''); // a runtime mount point, to be excluded
  fs.writeFileSync(j('new/big.bin'), Buffer.alloc(3 * 1024 * 1024 + 17, 7)); // several chunks
}

const exclude: DiffOptions['exclude'] = (rel, st) => rel === 'etc/hostname' && st.isFile() && st.size === 0;

test('writeLayerFromUpper turns an overlayfs upper dir into an OCI layer that recreates the merged view', async () => {
  await withTmp(async (base) => {
    const [L, U, W, M] = ['lower', 'upper', 'work', 'merged'].map((d) => path.join(base, d)) as [string, string, string, string];
    for (const d of [L, U, W]) fs.mkdirSync(d);
    makeLower(L);
    mountOverlay(M, [L], { upper: U, work: W });
    let merged: Record<string, string>;
    try {
      makeChanges(M);
      merged = listing(M);
    } finally {
      umount(M);
    }
    delete merged['etc/hostname']; // excluded below
    // A real device (skipped by the diff); keep new/'s mtime, which the merged listing already holds.
    const newDir = fs.statSync(path.join(U, 'new'));
    mknod(path.join(U, 'new/devnull'), fsc.S_IFCHR | 0o666, 1, 3);
    fs.utimesSync(path.join(U, 'new'), newDir.atime, newDir.mtime);

    const { tar, result } = await collect((out) => writeLayerFromUpper(U, out, { exclude }));
    const entries = await readTar(tar);
    assert.deepEqual(result, { entries: entries.length, skipped: 1 });

    // Deterministic: the same tree gives the same bytes.
    const again = await collect((out) => writeLayerFromUpper(U, out, { exclude }));
    assert.ok(again.tar.equals(tar), 'second run differs');

    const names = entries.map((e) => e.header.name);
    const byName = new Map(entries.map((e) => [e.header.name, e]));
    const get = (n: string): Entry => {
      const e = byName.get(n);
      assert.ok(e, `no entry ${n} in ${names.join(', ')}`);
      return e;
    };
    assert.equal(new Set(names).size, names.length, 'duplicate entries');
    // Parents before children, no root entry, no ./ prefix.
    names.forEach((n, i) => {
      assert.ok(!n.startsWith('./') && !n.startsWith('/') && n !== '', n);
      const parent = path.posix.dirname(n.replace(/\/$/, ''));
      if (parent !== '.') assert.ok(names.indexOf(`${parent}/`) >= 0 && names.indexOf(`${parent}/`) < i, `${n} before its parent`);
    });

    // Whiteouts and the opaque directory.
    for (const wh of ['.wh.gone', 'old/.wh.x', '.wh.old2']) {
      const e = get(wh);
      assert.equal(e.header.type, 'file');
      assert.equal(e.header.size, 0);
    }
    assert.equal(names[names.indexOf('data/') + 1], 'data/.wh..wh..opq');
    assert.equal(get('data/.wh..wh..opq').header.size, 0);
    assert.ok(byName.has('data/c'));
    assert.ok(!names.some((n) => n.startsWith('data/sub') || n === 'data/a'));
    assert.ok(!names.some((n) => n.startsWith('old2/')));
    assert.ok(!byName.has('etc/hostname'), 'excluded file written');
    assert.ok(!byName.has('new/devnull'), 'device node written');
    assert.ok(!names.some((n) => n.includes('.wh..wh..opq') && n !== 'data/.wh..wh..opq'), 'only data/ is opaque');

    // Untouched lower files are not in the diff; copied-up ones are, with their metadata.
    assert.ok(byName.has('etc/keep'), 'a copied-up lower file is in the diff');
    assert.ok(byName.has('bin/'), 'the parent of a copied-up file is in the diff');
    assert.equal(get('etc/').header.type, 'directory');
    assert.equal(get('etc/passwd').data.toString(), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
    assert.equal(get('bin/tool').header.mode, 0o700);
    assert.equal(get('bin/tool').header.mtime.getTime(), T.getTime());
    assert.equal(get('old/y').data.toString(), 'x');

    // Types, modes, owners, links.
    assert.equal(get('new/file.txt').header.mode, 0o640);
    assert.equal(get('new/file.txt').data.toString(), 'hello\n');
    assert.deepEqual([get('new/hard').header.type, get('new/hard').header.linkname], ['link', 'new/file.txt']);
    assert.deepEqual([get('etc/keep2').header.type, get('etc/keep2').header.linkname], ['link', 'etc/keep']);
    assert.equal(get('etc/keep').header.type, 'file');
    assert.deepEqual([get('new/link').header.type, get('new/link').header.linkname], ['symlink', '../etc/passwd']);
    assert.deepEqual([get('new/dangle').header.linkname, get('new/dangle').header.uid, get('new/dangle').header.gid], ['/nonexistent/target', 33, 34]);
    const suid = get('new/suid').header;
    assert.deepEqual([suid.mode, suid.uid, suid.gid], [0o4755, 1000, 1000]);
    assert.deepEqual([get('new/tmp/').header.type, get('new/tmp/').header.mode], ['directory', 0o1777]);
    assert.equal(get('new/zero').header.mode, 0);
    assert.equal(get('new/fifo').header.type, 'fifo');
    assert.equal(get('new/fifo').header.mode, 0o640);
    assert.deepEqual(get('new/bigid').header.pax, { path: 'new/bigid', uid: '300000', gid: '300001' });
    assert.equal(get('new/ünïcödé').data.toString(), 'utf8 name');
    assert.equal(get(LONG).data.toString(), 'long');
    assert.equal(get('new/big.bin').header.size, 3 * 1024 * 1024 + 17);
    assert.ok(get('new/empty/').header.type === 'directory');

    // Round trip: the layer on top of the lower recreates the merged view.
    const snap = path.join(base, 'snap');
    await unpackLayer(Readable.from([tar]), snap);
    const M2 = path.join(base, 'merged2');
    mountOverlay(M2, [snap, L]);
    try {
      assert.deepEqual(listing(M2), merged);
    } finally {
      umount(M2);
    }
  });
});

test('writeLayerFromUpper refuses overlayfs states it cannot express, and names reserved for whiteouts', async () => {
  await withTmp(async (base) => {
    const run = (U: string): Promise<unknown> => collect((out) => writeLayerFromUpper(U, out));

    const redirect = path.join(base, 'redirect');
    fs.mkdirSync(path.join(redirect, 'renamed'), { recursive: true });
    setxattr(path.join(redirect, 'renamed'), 'trusted.overlay.redirect', '/original');
    await assert.rejects(run(redirect), (e: unknown) => e instanceof InvalidArgumentError && /"renamed".*redirect_dir/.test(e.message));

    const metacopy = path.join(base, 'metacopy');
    write(path.join(metacopy, 'f'), '');
    setxattr(path.join(metacopy, 'f'), 'trusted.overlay.metacopy', '');
    await assert.rejects(run(metacopy), (e: unknown) => e instanceof InvalidArgumentError && /metacopy/.test(e.message));

    const reserved = path.join(base, 'reserved');
    write(path.join(reserved, 'd/.wh.sneaky'), '');
    await assert.rejects(run(reserved), (e: unknown) => e instanceof InvalidArgumentError && /"d\/\.wh\.sneaky".*reserved/.test(e.message));

    await assert.rejects(run(path.join(base, 'missing')), InvalidArgumentError);

    // Whiteouts as overlayfs >= 6.7 writes them for nested overlays: an empty file with an xattr.
    const xwh = path.join(base, 'xwhiteout');
    write(path.join(xwh, 'd/hidden'), '');
    setxattr(path.join(xwh, 'd/hidden'), 'trusted.overlay.whiteout', '');
    const { tar } = await collect((out) => writeLayerFromUpper(xwh, out));
    assert.deepEqual((await readTar(tar)).map((e) => e.header.name), ['d/', 'd/.wh.hidden']);
  });
});

test('a failing output fails the writer with the output error', async () => {
  await withTmp(async (base) => {
    write(path.join(base, 'src/f'), 'x'.repeat(1024 * 1024));
    const out = new Writable({
      write(_chunk, _enc, cb) {
        cb(new Error('disk on fire'));
      },
    });
    await assert.rejects(writeLayerFromDir(path.join(base, 'src'), out), (e: unknown) => e instanceof InternalError && /disk on fire/.test(e.message));
  });
});

function makeSource(src: string): void {
  write(path.join(src, 'a.txt'), 'alpha\n');
  write(path.join(src, 'bin/run'), '#!/bin/sh\n', 0o4755);
  fs.mkdirSync(path.join(src, 'sub/empty'), { recursive: true });
  fs.symlinkSync('a.txt', path.join(src, 'link'));
  fs.linkSync(path.join(src, 'a.txt'), path.join(src, 'hard'));
  for (const d of ['sub/empty', 'sub', 'bin', '']) {
    fs.chmodSync(path.join(src, d), 0o755);
    fs.utimesSync(path.join(src, d), T, T);
  }
}

test('writeLayerFromDir puts a plain tree below a prefix, keeping its metadata', async () => {
  await withTmp(async (base) => {
    const src = path.join(base, 'src');
    makeSource(src);
    const { tar, result } = await collect((out) => writeLayerFromDir(src, out, { prefix: '/srv/app/' }));
    const entries = await readTar(tar);
    assert.deepEqual(result, { entries: entries.length, skipped: 0 });
    assert.deepEqual(
      entries.map((e) => `${e.header.name} ${e.header.type} ${e.header.mode.toString(8)} ${e.header.uid}:${e.header.gid}${e.header.linkname ? ` -> ${e.header.linkname}` : ''}`),
      [
        'srv/ directory 755 0:0',
        'srv/app/ directory 755 0:0',
        'srv/app/a.txt file 644 0:0',
        'srv/app/bin/ directory 755 0:0',
        'srv/app/bin/run file 4755 0:0',
        'srv/app/hard link 644 0:0 -> srv/app/a.txt',
        'srv/app/link symlink 777 0:0 -> a.txt',
        'srv/app/sub/ directory 755 0:0',
        'srv/app/sub/empty/ directory 755 0:0',
      ],
    );
    const snap = path.join(base, 'snap');
    await unpackLayer(Readable.from([tar]), snap);
    assert.deepEqual(listing(path.join(snap, 'srv/app')), listing(src));

    // No prefix: the tree is the layer root, which gets no entry of its own.
    const plain = await collect((out) => writeLayerFromDir(src, out));
    assert.deepEqual((await readTar(plain.tar)).map((e) => e.header.name), ['a.txt', 'bin/', 'bin/run', 'hard', 'link', 'sub/', 'sub/empty/']);
  });
});

test('writeLayerFromDir applies --chown/--chmod overrides and parent metadata', async () => {
  await withTmp(async (base) => {
    const src = path.join(base, 'src');
    makeSource(src);
    const options: DirLayerOptions = {
      prefix: 'tmp/app',
      uid: 1234,
      gid: 5678,
      mode: 0o750,
      parentMeta: (rel) => (rel === 'tmp' ? { mode: 0o1777, uid: 0, gid: 0, mtime: T } : null),
    };
    const { tar } = await collect((out) => writeLayerFromDir(src, out, options));
    const entries = await readTar(tar);
    assert.deepEqual(
      entries.map((e) => `${e.header.name} ${e.header.mode.toString(8)} ${e.header.uid}:${e.header.gid}`),
      [
        'tmp/ 1777 0:0',
        'tmp/app/ 750 1234:5678',
        'tmp/app/a.txt 750 1234:5678',
        'tmp/app/bin/ 750 1234:5678',
        'tmp/app/bin/run 750 1234:5678',
        'tmp/app/hard 750 1234:5678',
        'tmp/app/link 777 1234:5678',
        'tmp/app/sub/ 750 1234:5678',
        'tmp/app/sub/empty/ 750 1234:5678',
      ],
    );
    const snap = path.join(base, 'snap');
    await unpackLayer(Readable.from([tar]), snap);
    const run = fs.lstatSync(path.join(snap, 'tmp/app/bin/run'));
    assert.deepEqual([run.mode & 0o7777, run.uid, run.gid], [0o750, 1234, 5678]);
    const link = fs.lstatSync(path.join(snap, 'tmp/app/link'));
    assert.deepEqual([link.uid, link.gid], [1234, 5678]);
    assert.equal(fs.lstatSync(path.join(snap, 'tmp')).mode & 0o7777, 0o1777);
    assert.equal(fs.lstatSync(path.join(snap, 'tmp/app/hard')).ino, fs.lstatSync(path.join(snap, 'tmp/app/a.txt')).ino);

    const noParents = await collect((out) => writeLayerFromDir(src, out, { prefix: 'a/b/c', parentMeta: () => null }));
    assert.equal((await readTar(noParents.tar))[0]?.header.name, 'a/b/c/');

    const sink = (): Writable => new PassThrough().resume();
    await assert.rejects(writeLayerFromDir(src, sink(), { prefix: '../escape' }), InvalidArgumentError);
    await assert.rejects(writeLayerFromDir(src, sink(), { prefix: 'x/.wh.y' }), InvalidArgumentError);
    await assert.rejects(writeLayerFromDir(src, sink(), { mode: 0o10000 }), InvalidArgumentError);
    await assert.rejects(writeLayerFromDir(src, sink(), { uid: -1 }), InvalidArgumentError);
    write(path.join(src, '.wh.oops'), '');
    await assert.rejects(writeLayerFromDir(src, sink()), (e: unknown) => e instanceof InvalidArgumentError && /reserved for whiteouts/.test(e.message));
  });
});

test('ImageStore.addLayerFromWriter stores, unpacks and records a produced layer', async () => {
  await withTmp(async (base) => {
    const db = openDb(path.join(base, 'vessel.db'));
    try {
      const store = new ImageStore(path.join(base, 'images'), db);
      await store.init();
      const src = path.join(base, 'src');
      makeSource(src);

      const statuses: string[] = [];
      const l1 = await store.addLayerFromWriter((out) => writeLayerFromDir(src, out, { prefix: 'app' }), null, (m) => statuses.push(m.status));
      assert.equal(l1.chainId, l1.diffId);
      assert.equal(l1.digest, l1.diffId);
      assert.equal(l1.parent, null);
      assert.equal(l1.mediaType, MEDIA_TYPE.layer);
      assert.ok(await store.content.has(l1.digest));
      assert.equal(l1.blobSize, (await store.content.readBytes(l1.digest)).length);
      assert.deepEqual(store.getLayer(l1.chainId), l1);
      assert.deepEqual(listing(path.join(store.snapshotDir(l1), 'app')), listing(src));
      assert.deepEqual(statuses, ['Unpacking', 'Layer ready']);

      // The same tree again is the same layer.
      const again = await store.addLayerFromWriter((out) => writeLayerFromDir(src, out, { prefix: 'app' }), null);
      assert.deepEqual(again, l1);

      // A commit-style layer on top: an upper dir with a whiteout.
      const upper = path.join(base, 'upper');
      write(path.join(upper, 'app/new.txt'), 'new');
      mknod(path.join(upper, 'app/a.txt'), fsc.S_IFCHR, 0, 0);
      const l2 = await store.addLayerFromWriter((out) => writeLayerFromUpper(upper, out), l1.chainId);
      assert.equal(l2.chainId, chainIdOf(l1.chainId, l2.diffId));
      assert.equal(l2.parent, l1.chainId);
      const wh = fs.lstatSync(path.join(store.snapshotDir(l2), 'app/a.txt'));
      assert.ok(wh.isCharacterDevice() && wh.rdev === 0);
      const image = await store.commitImage(
        { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [l1.diffId, l2.diffId] } },
        [l1, l2],
        ['diff-test:latest'],
      );
      assert.deepEqual(store.lowerDirs(image), [store.snapshotDir(l2), store.snapshotDir(l1)]);

      // Failures leave nothing behind: a writer that throws, and one that writes garbage.
      const before = { layers: store.allLayers().length, blobs: (await store.content.list()).length };
      const clean = async (): Promise<void> => {
        assert.equal(store.allLayers().length, before.layers);
        assert.equal((await store.content.list()).length, before.blobs);
        assert.deepEqual(await fsp.readdir(path.join(store.content.root, 'ingest')), []);
        assert.deepEqual((await fsp.readdir(store.layerRoot)).filter((n) => n.startsWith('tmp-')), []);
      };
      await assert.rejects(
        store.addLayerFromWriter(async (out) => {
          out.write(Buffer.alloc(4096));
          await new Promise((r) => setTimeout(r, 10));
          throw new Error('writer broke');
        }, l1.chainId),
        /writer broke/,
      );
      await clean();
      await assert.rejects(
        store.addLayerFromWriter(async (out) => writeLayerFromUpper(path.join(base, 'no-such-upper'), out), null),
        InvalidArgumentError,
      );
      await clean();
      await assert.rejects(
        store.addLayerFromWriter(async (out) => {
          out.end(Buffer.alloc(2048, 'garbage'));
        }, null),
        (e: unknown) => e instanceof InvalidArgumentError && /Malformed layer/.test(e.message),
      );
      await clean();
    } finally {
      db.close();
    }
  });
});

test('addLayerFromWriter reports the writer error when the walk fails half way', async () => {
  await withTmp(async (base) => {
    const db = openDb(path.join(base, 'vessel.db'));
    try {
      const store = new ImageStore(path.join(base, 'images'), db);
      await store.init();
      const upper = path.join(base, 'upper');
      write(path.join(upper, 'a/big'), 'x'.repeat(2 * 1024 * 1024));
      fs.mkdirSync(path.join(upper, 'b/renamed'), { recursive: true });
      setxattr(path.join(upper, 'b/renamed'), 'trusted.overlay.redirect', '/elsewhere');
      await assert.rejects(
        store.addLayerFromWriter((out) => writeLayerFromUpper(upper, out), null),
        (e: unknown) => e instanceof InvalidArgumentError && /"b\/renamed".*redirect_dir/.test(e.message),
      );
      assert.deepEqual(store.allLayers(), []);
      assert.deepEqual(await store.content.list(), []);
      assert.deepEqual(await fsp.readdir(path.join(store.content.root, 'ingest')), []);
      assert.deepEqual(await fsp.readdir(store.layerRoot), []);
    } finally {
      db.close();
    }
  });
});
