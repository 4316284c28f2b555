import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { archiveRootName, ContainerFs, endsWithSeparator, splitPath } from './container-fs.js';

let tmp: string;
let root: string;
let vol: string;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cfs-'));
  root = path.join(tmp, 'root');
  vol = path.join(tmp, 'vol');
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'container\n');
  fs.mkdirSync(path.join(root, 'usr', 'lib'), { recursive: true });
  fs.symlinkSync('usr/lib', path.join(root, 'lib'));
  fs.symlinkSync('/etc', path.join(root, 'abs'));
  fs.symlinkSync('../../../../../../../../etc', path.join(root, 'up'));
  fs.symlinkSync(path.join(tmp, 'outside'), path.join(root, 'hostpath'));
  fs.symlinkSync('loop2', path.join(root, 'loop1'));
  fs.symlinkSync('loop1', path.join(root, 'loop2'));
  fs.writeFileSync(path.join(root, 'file'), 'f');
  fs.mkdirSync(path.join(root, 'data'));
  fs.writeFileSync(path.join(root, 'data', 'hidden'), 'under the volume');
  fs.mkdirSync(vol);
  fs.writeFileSync(path.join(vol, 'v'), 'volume');
  fs.symlinkSync('/etc/passwd', path.join(vol, 'pw'));
  fs.mkdirSync(path.join(tmp, 'outside'));
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('splitPath / endsWithSeparator / archiveRootName', () => {
  assert.deepEqual(splitPath('/a/./b//c/'), ['a', 'b', 'c']);
  assert.deepEqual(splitPath('a/../b'), ['a', '..', 'b']);
  assert.throws(() => splitPath('a\0b'), /NUL/);
  assert.equal(endsWithSeparator('/a/'), true);
  assert.equal(endsWithSeparator('/a/.'), true);
  assert.equal(endsWithSeparator('/a'), false);
  assert.equal(archiveRootName('/etc/passwd'), 'passwd');
  assert.equal(archiveRootName('/etc/'), 'etc');
  assert.equal(archiveRootName('/etc/.'), '.');
  assert.equal(archiveRootName('/'), '.');
});

test('absolute and climbing symlinks stay inside the root', () => {
  const cfs = new ContainerFs(root);
  for (const p of ['/abs/passwd', '/up/passwd', 'abs/passwd', '/abs/../../../etc/passwd', '/../../etc/passwd']) {
    const r = cfs.resolve(p, false);
    assert.equal(r.host, path.join(root, 'etc', 'passwd'), p);
    assert.deepEqual(r.parts, ['etc', 'passwd'], p);
  }
  // A link to a host path is read as a container path: it does not exist in the container.
  assert.throws(() => cfs.resolve('/hostpath', true), /No such file or directory/);
  assert.throws(() => cfs.resolve('/hostpath/x', false), /No such file or directory/);
  assert.ok(cfs.resolve('/hostpath', false).stat?.isSymbolicLink());
});

test('the last component is followed only when asked', () => {
  const cfs = new ContainerFs(root);
  const link = cfs.resolve('/abs', false);
  assert.ok(link.stat?.isSymbolicLink());
  assert.deepEqual(link.parts, ['abs']);
  const dir = cfs.resolve('/abs/', true);
  assert.ok(dir.stat?.isDirectory());
  assert.deepEqual(dir.parts, ['etc']);
  assert.deepEqual(cfs.resolve('/lib/x', false).parts, ['usr', 'lib', 'x']);
  assert.equal(cfs.resolve('/lib/x', false).stat, undefined);
});

test('errors: loops, non-directories, missing parents', () => {
  const cfs = new ContainerFs(root);
  assert.throws(() => cfs.resolve('/loop1/x', false), /Too many levels of symbolic links/);
  assert.throws(() => cfs.resolve('/file/x', false), /Not a directory/);
  assert.throws(() => cfs.resolve('/nope/x', false), /No such file or directory/);
});

test('mounts overlay the root; symlinks inside a mount are resolved in the container', () => {
  const cfs = new ContainerFs(root, [{ destination: '/data', source: vol }]);
  assert.equal(cfs.resolve('/data/v', false).host, path.join(vol, 'v'));
  assert.equal(cfs.resolve('/data', false).host, vol);
  assert.equal(cfs.resolve('/data/hidden', false).stat, undefined);
  assert.equal(cfs.resolve('/data/pw', true).host, path.join(root, 'etc', 'passwd'));
  assert.equal(cfs.resolve('/data/../etc/passwd', false).host, path.join(root, 'etc', 'passwd'));
});

test('mkdirAll creates missing directories inside the root only', () => {
  const cfs = new ContainerFs(root);
  const r = cfs.mkdirAll('/abs/new/deeper');
  assert.equal(r.host, path.join(root, 'etc', 'new', 'deeper'));
  assert.ok(fs.statSync(r.host).isDirectory());
  const h = cfs.mkdirAll('/hostpath/made');
  assert.ok(h.host.startsWith(root + path.sep), h.host);
  assert.equal(fs.readdirSync(path.join(tmp, 'outside')).length, 0);
  assert.throws(() => cfs.mkdirAll('/file/x'), /Not a directory/);
});
