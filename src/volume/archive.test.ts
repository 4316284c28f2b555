import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pack as tarPack } from 'tar-stream';
import { archiveParts, decodeStat, encodeStat, extractTar, goFileMode, isGoDir, isGoSymlink, LocalTarget, packPath } from './archive.js';
import { ContainerFs } from './container-fs.js';

let tmp: string;
before(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'arc-'))));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function tarOf(entries: Array<{ name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; content?: string; linkname?: string; mode?: number }>): Promise<Buffer> {
  const p = tarPack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of p as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    await new Promise<void>((resolve, reject) => {
      const h = { name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), mtime: new Date(0), ...(e.linkname ? { linkname: e.linkname } : {}) };
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (type === 'file') p.entry(h, e.content ?? '', cb);
      else p.entry(h, cb);
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

test('Go file modes', () => {
  assert.equal(goFileMode(0o40755), 2 ** 31 + 0o755);
  assert.equal(goFileMode(0o120777), 2 ** 27 + 0o777);
  assert.equal(goFileMode(0o104755), 2 ** 23 + 0o755);
  assert.ok(isGoDir(goFileMode(0o41777)));
  assert.ok(isGoSymlink(goFileMode(0o120777)));
  assert.ok(!isGoSymlink(goFileMode(0o40755)));
  const s = { name: 'x', size: 1, mode: 2 ** 31 + 0o755, mtime: '2020-01-01T00:00:00.000Z', linkTarget: '' };
  assert.deepEqual(decodeStat(encodeStat(s)), s);
  assert.equal(decodeStat('!!'), null);
});

test('archiveParts refuses to climb out', () => {
  assert.deepEqual(archiveParts('./a/b/../c'), ['a', 'c']);
  assert.deepEqual(archiveParts('/abs/x'), ['abs', 'x']);
  assert.throws(() => archiveParts('../x'), /leaves the destination/);
  assert.throws(() => archiveParts('a/../../x'), /leaves the destination/);
});

test('pack then extract keeps modes, symlinks, hard links and renames the root', async () => {
  const src = path.join(tmp, 'src');
  fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(src, 'sub', 'f'), 'data');
  fs.chmodSync(path.join(src, 'sub', 'f'), 0o751);
  fs.chmodSync(path.join(src, 'sub'), 0o710);
  fs.symlinkSync('f', path.join(src, 'sub', 'l'));
  fs.linkSync(path.join(src, 'sub', 'f'), path.join(src, 'hard'));
  const dest = path.join(tmp, 'dest');
  fs.mkdirSync(dest);
  await extractTar(packPath(src, 'src'), new LocalTarget(dest), {
    chown: false,
    noOverwriteDirNonDir: true,
    mapName: (parts) => (parts[0] === 'src' ? ['renamed', ...parts.slice(1)] : null),
  });
  const out = path.join(dest, 'renamed');
  assert.equal(fs.readFileSync(path.join(out, 'sub', 'f'), 'utf8'), 'data');
  assert.equal(fs.statSync(path.join(out, 'sub', 'f')).mode & 0o7777, 0o751);
  assert.equal(fs.statSync(path.join(out, 'sub')).mode & 0o7777, 0o710);
  assert.equal(fs.readlinkSync(path.join(out, 'sub', 'l')), 'f');
  assert.equal(fs.statSync(path.join(out, 'hard')).ino, fs.statSync(path.join(out, 'sub', 'f')).ino);
});

test('extracting into a container root: entries follow container symlinks, never host ones', async () => {
  const root = path.join(tmp, 'croot');
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.symlinkSync('/etc', path.join(root, 'x'));
  const cfs = new ContainerFs(root);
  const dest = cfs.resolve('/x/', true);
  const tar = await tarOf([
    { name: 'evil', type: 'symlink', linkname: '/etc' },
    { name: 'evil/passwd-from-tar', content: 'inside' },
    { name: 'plain', content: 'p', mode: 0o640 },
  ]);
  await extractTar(Readable.from([tar]), { dir: (parts) => cfs.mkdirAll(ContainerFs.display([...dest.parts, ...parts])).host }, { chown: false, noOverwriteDirNonDir: false });
  assert.equal(fs.readFileSync(path.join(root, 'etc', 'passwd-from-tar'), 'utf8'), 'inside');
  assert.equal(fs.statSync(path.join(root, 'etc', 'plain')).mode & 0o777, 0o640);
  assert.ok(!fs.existsSync('/etc/passwd-from-tar'));
});

test('LocalTarget never writes through a symlink, and dir/non-dir replacement is refused', async () => {
  const dest = path.join(tmp, 'local');
  fs.mkdirSync(dest);
  const outside = path.join(tmp, 'outside');
  fs.mkdirSync(outside);
  const evil = await tarOf([
    { name: 'l', type: 'symlink', linkname: outside },
    { name: 'l/x', content: 'no' },
  ]);
  await assert.rejects(extractTar(Readable.from([evil]), new LocalTarget(dest), { chown: false, noOverwriteDirNonDir: true }), /Refusing to extract through symlink/);
  assert.deepEqual(fs.readdirSync(outside), []);
  const climb = await tarOf([{ name: '../escape', content: 'no' }]);
  await assert.rejects(extractTar(Readable.from([climb]), new LocalTarget(dest), { chown: false, noOverwriteDirNonDir: true }), /leaves the destination/);
  fs.mkdirSync(path.join(dest, 'd'));
  const replace = await tarOf([{ name: 'd', content: 'file' }]);
  await assert.rejects(extractTar(Readable.from([replace]), new LocalTarget(dest), { chown: false, noOverwriteDirNonDir: true }), /Cannot overwrite directory/);
});

test('gzip-compressed archives are accepted', async () => {
  const { gzipSync } = await import('node:zlib');
  const dest = path.join(tmp, 'gz');
  fs.mkdirSync(dest);
  const tar = await tarOf([{ name: 'a.txt', content: 'zipped' }]);
  await extractTar(Readable.from([gzipSync(tar)]), new LocalTarget(dest), { chown: false, noOverwriteDirNonDir: true });
  assert.equal(fs.readFileSync(path.join(dest, 'a.txt'), 'utf8'), 'zipped');
});
