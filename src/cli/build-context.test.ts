/** The build context walker: what goes into the tar, read back with tar-stream. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { extract, type Header as Headers } from 'tar-stream';
import { packContext, resolveContext } from './build-context.js';
import { tempDir } from '../core/test-temp-dirs.js';


interface Item {
  header: Headers;
  content: Buffer;
}

async function readTar(stream: Readable): Promise<Map<string, Item>> {
  const ex = extract();
  stream.pipe(ex);
  const items = new Map<string, Item>();
  for await (const entry of ex) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    items.set(entry.header.name.replace(/\/$/, ''), { header: entry.header, content: Buffer.concat(chunks) });
  }
  return items;
}

function tree(files: Record<string, string>): string {
  const dir = tempDir('vessel-ctx-');
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

test('walker: ignored files absent, re-included present, Dockerfile and .dockerignore always sent', async () => {
  const dir = tree({
    Dockerfile: 'FROM busybox\n',
    '.dockerignore': ['*.log', '!keep.log', 'node_modules', 'build', '!build/keep.txt', 'Dockerfile', '.dockerignore', ''].join('\n'),
    'a.txt': 'a',
    'b.log': 'b',
    'keep.log': 'kept',
    'node_modules/x/y.js': 'y',
    'build/out.bin': 'out',
    'build/keep.txt': 'keep',
    'src/main.ts': 'main',
    'src/sub/deep.ts': 'deep',
  });
  const ctx = await resolveContext(dir);
  assert.equal(ctx.dockerfile, 'Dockerfile');
  const items = await readTar(packContext(ctx));
  assert.deepEqual(
    [...items.keys()].sort(),
    ['.dockerignore', 'Dockerfile', 'a.txt', 'build/keep.txt', 'keep.log', 'src', 'src/main.ts', 'src/sub', 'src/sub/deep.ts'],
  );
  assert.equal(items.get('Dockerfile')!.content.toString(), 'FROM busybox\n');
  assert.equal(items.get('build/keep.txt')!.content.toString(), 'keep');
  assert.equal(items.get('src')!.header.type, 'directory');
  for (const { header } of items.values()) assert.deepEqual([header.uid, header.gid], [0, 0]);
});

test('walker: symlinks stay links, modes and mtimes kept, hard links kept, large files streamed intact', async () => {
  const dir = tree({ Dockerfile: 'FROM busybox\n', 'a.txt': 'a', 'bin/run.sh': '#!/bin/sh\n' });
  symlinkSync('a.txt', join(dir, 'link'));
  symlinkSync('/nonexistent/target', join(dir, 'dangling'));
  symlinkSync('bin', join(dir, 'bindir'));
  chmodSync(join(dir, 'bin/run.sh'), 0o755);
  chmodSync(join(dir, 'a.txt'), 0o600);
  chmodSync(join(dir, 'bin'), 0o750);
  utimesSync(join(dir, 'a.txt'), 1_600_000_000, 1_600_000_000);
  linkSync(join(dir, 'a.txt'), join(dir, 'z-hard'));
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  writeFileSync(join(dir, 'big.bin'), big);

  const items = await readTar(packContext(await resolveContext(dir)));
  assert.deepEqual([items.get('link')!.header.type, items.get('link')!.header.linkname], ['symlink', 'a.txt']);
  assert.deepEqual([items.get('dangling')!.header.type, items.get('dangling')!.header.linkname], ['symlink', '/nonexistent/target']);
  assert.equal(items.get('bindir')!.header.type, 'symlink');
  assert.ok(!items.has('bindir/run.sh'), 'symlinked directories are not followed');
  assert.equal(items.get('bin/run.sh')!.header.mode, 0o755);
  assert.equal(items.get('a.txt')!.header.mode, 0o600);
  assert.equal(items.get('bin')!.header.mode, 0o750);
  assert.equal(items.get('a.txt')!.header.mtime!.getTime(), 1_600_000_000_000);
  assert.deepEqual([items.get('z-hard')!.header.type, items.get('z-hard')!.header.linkname], ['link', 'a.txt']);
  assert.ok(items.get('big.bin')!.content.equals(big));
});

test('walker: a Dockerfile inside an excluded directory is sent alone, with -f relative to the cwd', async () => {
  const dir = tree({
    'docker/Dockerfile.dev': 'FROM busybox\n',
    'docker/other': 'x',
    '.dockerignore': 'docker\n',
    'app.js': 'app',
  });
  const ctx = await resolveContext('.', { file: 'docker/Dockerfile.dev', cwd: dir });
  assert.equal(ctx.dockerfile, 'docker/Dockerfile.dev');
  const items = await readTar(packContext(ctx));
  assert.deepEqual([...items.keys()].sort(), ['.dockerignore', 'app.js', 'docker/Dockerfile.dev']);
});

test('walker: a Dockerfile outside the context is added under a generated name, also ignored', async () => {
  const outside = tree({ 'Dockerfile.ext': 'FROM busybox\nRUN true\n' });
  const dir = tree({ 'a.txt': 'a', '.dockerignore': '*.log' });
  const ctx = await resolveContext(dir, { file: join(outside, 'Dockerfile.ext') });
  assert.match(ctx.dockerfile, /^\.vessel-dockerfile-[0-9a-f]{20}$/);
  const items = await readTar(packContext(ctx));
  assert.deepEqual([...items.keys()].sort(), ['.dockerignore', ctx.dockerfile, 'a.txt'].sort());
  assert.equal(items.get(ctx.dockerfile)!.content.toString(), 'FROM busybox\nRUN true\n');
  assert.equal(items.get('.dockerignore')!.content.toString(), `*.log\n${ctx.dockerfile}\n`);

  // Without a .dockerignore one is made, listing itself and the Dockerfile.
  const bare = tree({ 'a.txt': 'a' });
  const ctx2 = await resolveContext(bare, { fileContent: Buffer.from('FROM scratch\n'), generatedName: '.vessel-dockerfile-x' });
  const items2 = await readTar(packContext(ctx2));
  assert.equal(ctx2.dockerfile, '.vessel-dockerfile-x');
  assert.deepEqual([...items2.keys()].sort(), ['.dockerignore', '.vessel-dockerfile-x', 'a.txt']);
  assert.equal(items2.get('.dockerignore')!.content.toString(), '.dockerignore\n.vessel-dockerfile-x\n');
});

test('resolveContext: missing context, missing or empty Dockerfile are one-line errors', async () => {
  const dir = tree({ 'a.txt': 'a', 'empty/Dockerfile': '' });
  await assert.rejects(resolveContext(join(dir, 'nope')), /unable to prepare context: path ".*nope" not found/);
  await assert.rejects(resolveContext(join(dir, 'a.txt')), /context must be a directory/);
  await assert.rejects(resolveContext(dir), /cannot locate specified Dockerfile: Dockerfile/);
  await assert.rejects(resolveContext(join(dir, 'empty')), /the Dockerfile \(Dockerfile\) cannot be empty/);
  // The lower-case spelling is found too, as in Docker.
  writeFileSync(join(dir, 'dockerfile'), 'FROM busybox\n');
  assert.equal((await resolveContext(dir)).dockerfile, 'dockerfile');
});

test('walker: a bad .dockerignore pattern is an error before anything is read; ** patterns apply', async () => {
  const bad = tree({ Dockerfile: 'FROM busybox\n', '.dockerignore': 'ok\n[unterminated\n' });
  const badCtx = await resolveContext(bad);
  assert.throws(() => packContext(badCtx), /\.dockerignore:2/);
  const dir = tree({ Dockerfile: 'FROM busybox\n', '.dockerignore': '**/*.pyc\n', 'a/b/c.pyc': 'x', 'a/b/c.py': 'y', 'd.pyc': 'z' });
  const items = await readTar(packContext(await resolveContext(dir)));
  assert.deepEqual([...items.keys()].sort(), ['.dockerignore', 'Dockerfile', 'a', 'a/b', 'a/b/c.py']);
});
