import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { InvalidArgumentError } from '../core/errors.js';
import { getxattr } from '../native/native.js';
import { LayerSecurityError, unpackLayer } from './layer-unpack.js';

interface TarEntry {
  name: string;
  type?: 'file' | 'link' | 'symlink' | 'directory' | 'block-device' | 'character-device' | 'fifo';
  data?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of p) chunks.push(c as Buffer);
  })();
  for (const { data, ...header } of entries) {
    await new Promise<void>((resolve, reject) => {
      p.entry(header, data ?? '', (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  await collected;
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function withTmp(fn: (base: string) => Promise<void>): Promise<void> {
  const base = await fsp.mkdtemp(path.join(os.tmpdir(), 'vessel-unpack-'));
  try {
    await fn(base);
  } finally {
    await fsp.rm(base, { recursive: true, force: true });
  }
}

async function exists(p: string): Promise<boolean> {
  return fsp.lstat(p).then(() => true, () => false);
}

const T = new Date('2021-03-04T05:06:07Z');

test('unpacks files, directories, symlinks and hard links with their metadata', async () => {
  await withTmp(async (base) => {
    const longName = `deep/${'n'.repeat(150)}/file.txt`; // needs a pax header
    const tarBuf = await makeTar([
      { name: './', type: 'directory', mode: 0o755, mtime: T },
      { name: 'etc/', type: 'directory', mode: 0o750, uid: 1000, gid: 1001, mtime: T },
      { name: 'etc/hosts', data: '127.0.0.1 localhost\n', mode: 0o640, uid: 1000, gid: 1001, mtime: T },
      { name: '/usr/bin/su', data: 'ELF', mode: 0o4755, mtime: T },
      { name: 'usr/bin/wall', data: 'ELF', mode: 0o2755, gid: 5, mtime: T },
      { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox', uid: 1000, mtime: T },
      { name: 'bin/hosts-link', type: 'link', linkname: './etc/hosts' },
      { name: 'a/../b/inside', data: 'x' },
      { name: longName, data: 'long' },
      { name: 'run/initctl', type: 'fifo', mode: 0o600, mtime: T },
    ]);
    const dest = path.join(base, 'snap', 'layer');
    const r = await unpackLayer(Readable.from([tarBuf]), dest);

    assert.deepEqual(r, { digest: sha256(tarBuf), diffId: sha256(tarBuf), size: tarBuf.length, unpackedBytes: tarBuf.length });
    assert.equal(await fsp.readFile(path.join(dest, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n');
    const hosts = await fsp.lstat(path.join(dest, 'etc/hosts'));
    assert.equal(hosts.mode & 0o7777, 0o640);
    assert.equal(hosts.uid, 1000);
    assert.equal(hosts.gid, 1001);
    assert.equal(hosts.mtimeMs, T.getTime());
    assert.equal(hosts.nlink, 2);
    assert.equal((await fsp.lstat(path.join(dest, 'bin/hosts-link'))).ino, hosts.ino);

    const etc = await fsp.lstat(path.join(dest, 'etc'));
    assert.equal(etc.mode & 0o7777, 0o750);
    assert.equal(etc.uid, 1000);
    assert.equal(etc.mtimeMs, T.getTime(), 'directory mtime survives writing its children');
    assert.equal((await fsp.lstat(dest)).mtimeMs, T.getTime());

    assert.equal((await fsp.lstat(path.join(dest, 'usr/bin/su'))).mode & 0o7777, 0o4755);
    const wall = await fsp.lstat(path.join(dest, 'usr/bin/wall'));
    assert.equal(wall.mode & 0o7777, 0o2755);
    assert.equal(wall.gid, 5);
    assert.equal((await fsp.lstat(path.join(dest, 'usr'))).mode & 0o7777, 0o755, 'implicit parents are 0755');

    const sh = await fsp.lstat(path.join(dest, 'bin/sh'));
    assert.ok(sh.isSymbolicLink());
    assert.equal(await fsp.readlink(path.join(dest, 'bin/sh')), '/bin/busybox');
    assert.equal(sh.uid, 1000);
    assert.equal(sh.mtimeMs, T.getTime());

    assert.equal(await fsp.readFile(path.join(dest, 'b/inside'), 'utf8'), 'x');
    assert.equal(await exists(path.join(dest, 'a')), false, 'a/../b is resolved lexically');
    assert.equal(await fsp.readFile(path.join(dest, longName), 'utf8'), 'long');
    const fifo = await fsp.lstat(path.join(dest, 'run/initctl'));
    assert.ok(fifo.isFIFO());
    assert.equal(fifo.mode & 0o7777, 0o600);
  });
});

test('gzip layers: digest covers the compressed bytes, diffId the tar', async () => {
  await withTmp(async (base) => {
    const tarBuf = await makeTar([{ name: 'hello', data: 'world'.repeat(10000) }]);
    const gz = gzipSync(tarBuf);
    const dest = path.join(base, 'layer');
    // Many tiny chunks make sure the magic-byte sniffing reassembles its head.
    const chunks = Array.from({ length: Math.ceil(gz.length / 3) }, (_, i) => gz.subarray(i * 3, i * 3 + 3));
    const r = await unpackLayer(Readable.from(chunks), dest, { expectedDigest: sha256(gz), expectedDiffId: sha256(tarBuf) });
    assert.deepEqual(r, { digest: sha256(gz), diffId: sha256(tarBuf), size: gz.length, unpackedBytes: tarBuf.length });
    assert.equal(await fsp.readFile(path.join(dest, 'hello'), 'utf8'), 'world'.repeat(10000));
  });
});

test('digest and diffId mismatches are rejected and the directory removed', async () => {
  await withTmp(async (base) => {
    const tarBuf = await makeTar([{ name: 'f', data: 'data' }]);
    const gz = gzipSync(tarBuf);
    const wrong = `sha256:${'0'.repeat(64)}`;
    const dest = path.join(base, 'layer');
    await assert.rejects(unpackLayer(Readable.from([gz]), dest, { expectedDigest: wrong }), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError);
      assert.equal(e.message, `Layer digest mismatch: expected ${wrong}, got ${sha256(gz)}`);
      return true;
    });
    assert.equal(await exists(dest), false);
    await assert.rejects(unpackLayer(Readable.from([gz]), dest, { expectedDiffId: wrong }), /Layer diff ID mismatch/);
    assert.equal(await exists(dest), false);
    await assert.rejects(unpackLayer(Readable.from([gz]), dest, { expectedDigest: 'md5:abc' }), /Invalid digest/);
    assert.equal(await exists(dest), false);
  });
});

test('malicious entries are rejected without writing outside the layer', async () => {
  const cases: Array<{ what: string; entries: (outside: string) => TarEntry[] }> = [
    { what: '../evil', entries: () => [{ name: '../evil', data: 'x' }] },
    { what: '/../../evil', entries: () => [{ name: '/../../evil', data: 'x' }] },
    { what: 'a/../../evil', entries: () => [{ name: 'a/', type: 'directory' }, { name: 'a/../../evil', data: 'x' }] },
    { what: 'directory escaping', entries: () => [{ name: '../../evil/', type: 'directory' }] },
    {
      what: 'file through a symlinked parent',
      entries: (o) => [{ name: 'lnk', type: 'symlink', linkname: o }, { name: 'lnk/pwned', data: 'x' }],
    },
    {
      what: 'directory through a symlinked parent',
      entries: (o) => [{ name: 'lnk', type: 'symlink', linkname: o }, { name: 'lnk/sub/', type: 'directory' }],
    },
    {
      what: 'symlink through a symlinked parent',
      entries: (o) => [{ name: 'lnk', type: 'symlink', linkname: o }, { name: 'lnk/l', type: 'symlink', linkname: '/' }],
    },
    {
      what: 'whiteout through a symlinked parent',
      entries: (o) => [{ name: 'lnk', type: 'symlink', linkname: o }, { name: 'lnk/.wh.secret', data: '' }],
    },
    {
      what: 'opaque marker through a symlinked parent',
      entries: (o) => [{ name: 'lnk', type: 'symlink', linkname: o }, { name: 'lnk/.wh..wh..opq', data: '' }],
    },
    { what: 'hard link escaping', entries: () => [{ name: 'pw', type: 'link', linkname: '../../etc/passwd' }] },
    {
      what: 'hard link through a symlink',
      entries: (o) => [{ name: 'lnk', type: 'symlink', linkname: o }, { name: 'h', type: 'link', linkname: 'lnk/secret' }],
    },
    {
      what: 'hard link to a symlink',
      entries: (o) => [
        { name: 's', type: 'symlink', linkname: path.join(o, 'secret') },
        { name: 'h', type: 'link', linkname: 's' },
      ],
    },
    { what: 'hard link to a directory', entries: () => [{ name: 'd/', type: 'directory' }, { name: 'h', type: 'link', linkname: 'd' }] },
    { what: 'hard link to a missing file', entries: () => [{ name: 'h', type: 'link', linkname: 'nope' }] },
    { what: 'character device', entries: () => [{ name: 'dev/mem', type: 'character-device', devmajor: 1, devminor: 1 }] },
    { what: 'block device', entries: () => [{ name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 }] },
    { what: 'whiteout of ..', entries: () => [{ name: 'a/.wh...', data: '' }] },
    { what: 'whiteout of nothing', entries: () => [{ name: '.wh.', data: '' }] },
    { what: 'name with NUL', entries: () => [{ name: `${'a'.repeat(300)}\0evil` /* pax carries the NUL */, data: 'x' }] },
  ];
  for (const c of cases) {
    await withTmp(async (base) => {
      const outside = path.join(base, 'outside');
      await fsp.mkdir(outside);
      await fsp.writeFile(path.join(outside, 'secret'), 'keep');
      const dest = path.join(base, 'a', 'b', 'layer');
      const tarBuf = await makeTar(c.entries(outside));
      await assert.rejects(unpackLayer(Readable.from([tarBuf]), dest), (e: unknown) => {
        assert.ok(e instanceof LayerSecurityError, `${c.what}: ${String(e)}`);
        assert.match(e.message, /^Layer rejected: [^\n]*[^.]$/);
        return true;
      }, c.what);
      assert.equal(await exists(dest), false, `${c.what}: destination removed`);
      const left = (await fsp.readdir(base, { recursive: true })).sort();
      assert.deepEqual(left, ['a', path.join('a', 'b'), 'outside', path.join('outside', 'secret')], c.what);
      const secret = await fsp.stat(path.join(outside, 'secret'));
      assert.equal(secret.nlink, 1, `${c.what}: no hard link to the outside file`);
      assert.equal(await fsp.readFile(path.join(outside, 'secret'), 'utf8'), 'keep');
    });
  }
});

test('the escape message names the entry', async () => {
  await withTmp(async (base) => {
    const tarBuf = await makeTar([{ name: '../etc/passwd', data: 'x' }]);
    await assert.rejects(unpackLayer(Readable.from([tarBuf]), path.join(base, 'l')), {
      message: 'Layer rejected: entry "../etc/passwd" escapes the layer root',
    });
  });
});

test('later entries replace symlinks instead of writing through them', async () => {
  await withTmp(async (base) => {
    const victim = path.join(base, 'victim');
    await fsp.writeFile(victim, 'original');
    const tarBuf = await makeTar([
      { name: 'x', type: 'symlink', linkname: victim },
      { name: 'x', data: 'replaced' },
      { name: 'd', type: 'symlink', linkname: base },
      { name: 'd/', type: 'directory', mode: 0o700 },
      { name: 'd/f', data: 'in d' },
      { name: 'gone/', type: 'directory' },
      { name: 'gone/child', data: 'c' },
      { name: 'gone', type: 'symlink', linkname: '/etc' },
    ]);
    const dest = path.join(base, 'layer');
    await unpackLayer(Readable.from([tarBuf]), dest);
    assert.equal(await fsp.readFile(victim, 'utf8'), 'original');
    assert.ok((await fsp.lstat(path.join(dest, 'x'))).isFile());
    assert.equal(await fsp.readFile(path.join(dest, 'x'), 'utf8'), 'replaced');
    const d = await fsp.lstat(path.join(dest, 'd'));
    assert.ok(d.isDirectory());
    assert.equal(d.mode & 0o7777, 0o700);
    assert.equal(await fsp.readFile(path.join(dest, 'd/f'), 'utf8'), 'in d');
    assert.equal(await fsp.readlink(path.join(dest, 'gone')), '/etc');
    assert.deepEqual((await fsp.readdir(base)).sort(), ['layer', 'victim']);
  });
});

test('whiteouts become 0:0 character devices and opaque markers an xattr', async () => {
  await withTmp(async (base) => {
    const tarBuf = await makeTar([
      { name: '.wh.removed', data: '' },
      { name: 'etc/', type: 'directory' },
      { name: 'etc/.wh.old.conf', data: '' },
      { name: 'var/lib/', type: 'directory' },
      { name: 'var/lib/.wh..wh..opq', data: '' },
      { name: 'var/lib/kept', data: 'k' },
      { name: 'fresh/.wh..wh..opq', data: '' },
      { name: '.wh.redo', data: '' },
      { name: 'redo/file', data: 'new' },
      { name: '.wh..wh.plnk/123', data: 'aufs metadata' },
    ]);
    const dest = path.join(base, 'layer');
    await unpackLayer(Readable.from([tarBuf]), dest);
    for (const p of ['removed', 'etc/old.conf']) {
      const st = await fsp.lstat(path.join(dest, p));
      assert.ok(st.isCharacterDevice(), p);
      assert.equal(st.rdev, 0, p);
    }
    assert.equal(getxattr(path.join(dest, 'var/lib'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.equal(await fsp.readFile(path.join(dest, 'var/lib/kept'), 'utf8'), 'k');
    assert.equal(getxattr(path.join(dest, 'fresh'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.equal(getxattr(path.join(dest, 'etc'), 'trusted.overlay.opaque'), null);
    // Deleted and recreated in one layer: the lower `redo` must stay hidden.
    assert.equal(getxattr(path.join(dest, 'redo'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.equal(await fsp.readFile(path.join(dest, 'redo/file'), 'utf8'), 'new');
    const all = await fsp.readdir(dest, { recursive: true });
    assert.deepEqual(all.filter((n) => n.includes('.wh.')), [], 'no .wh. files are written');
  });
});

test('unsupported, malformed and truncated input is rejected and cleaned up', async () => {
  await withTmp(async (base) => {
    const dest = path.join(base, 'layer');
    const zstd = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
    await assert.rejects(unpackLayer(Readable.from([zstd]), dest), { message: 'Unsupported layer compression: zstd' });
    assert.equal(await exists(dest), false);

    await assert.rejects(unpackLayer(Readable.from([Buffer.alloc(512, 7)]), dest), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError);
      assert.match(e.message, /^Malformed layer: /);
      return true;
    });
    assert.equal(await exists(dest), false);

    const tarBuf = await makeTar([{ name: 'big', data: 'z'.repeat(100_000) }]);
    await assert.rejects(unpackLayer(Readable.from([tarBuf.subarray(0, 50_000)]), dest), /^InvalidArgumentError: Malformed layer: /);
    assert.equal(await exists(dest), false);
    const gz = gzipSync(tarBuf);
    await assert.rejects(unpackLayer(Readable.from([gz.subarray(0, gz.length - 20)]), dest), /Malformed layer/);
    assert.equal(await exists(dest), false);
  });
});

test('a non-empty destination is refused and left alone', async () => {
  await withTmp(async (base) => {
    await fsp.writeFile(path.join(base, 'mine'), 'x');
    const tarBuf = await makeTar([{ name: 'f', data: 'x' }]);
    await assert.rejects(unpackLayer(Readable.from([tarBuf]), base), /Layer destination is not an empty directory/);
    assert.deepEqual(await fsp.readdir(base), ['mine']);
    // An existing empty directory is fine.
    const empty = path.join(base, 'empty');
    await fsp.mkdir(empty);
    await unpackLayer(Readable.from([tarBuf]), empty);
    assert.equal(await fsp.readFile(path.join(empty, 'f'), 'utf8'), 'x');
  });
});

test('aborting stops the unpack and removes the directory', async () => {
  await withTmp(async (base) => {
    const tarBuf = await makeTar([{ name: 'one', data: '1' }, { name: 'two', data: 'x'.repeat(100_000) }]);
    const input = new PassThrough();
    input.write(tarBuf.subarray(0, 2048)); // the stream then stalls mid-entry
    const ac = new AbortController();
    const dest = path.join(base, 'layer');
    const unpacking = unpackLayer(input, dest, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(unpacking, { name: 'AbortError' });
    assert.equal(await exists(dest), false);
    await assert.rejects(unpackLayer(Readable.from([tarBuf]), dest, { signal: ac.signal }), { name: 'AbortError' });
    assert.equal(await exists(dest), false);
  });
});
