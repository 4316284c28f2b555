import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../core/errors.js';
import { cleanPath, parseDockerignore } from './dockerignore.js';

function check(text: string, expected: Record<string, boolean>): void {
  const m = parseDockerignore(text);
  for (const [p, ignored] of Object.entries(expected)) {
    assert.equal(m.ignores(p), ignored, `${p} should ${ignored ? '' : 'not '}be ignored by ${JSON.stringify(text)}`);
  }
}

test('cleanPath works like Go filepath.Clean', () => {
  assert.equal(cleanPath(''), '.');
  assert.equal(cleanPath('./a//b/'), 'a/b');
  assert.equal(cleanPath('a/./b/../c'), 'a/c');
  assert.equal(cleanPath('../a'), '../a');
  assert.equal(cleanPath('a/../..'), '..');
  assert.equal(cleanPath('/../a'), '/a');
  assert.equal(cleanPath('/'), '/');
  assert.equal(cleanPath('.'), '.');
});

test('comments, blank lines and surrounding whitespace', () => {
  const m = parseDockerignore('# comment\n\n   *.log   \n\t\n # indented comment is a comment too\n');
  assert.deepEqual(m.patterns.map((p) => [p.pattern, p.exclusion, p.line]), [['*.log', false, 3]]);
  check('# *.log\n', { 'a.log': false });
});

test('* and ? do not cross directories', () => {
  check('*.log', { 'a.log': true, 'dir/a.log': false, 'log': false });
  check('*/*.log', { 'a.log': false, 'dir/a.log': true, 'a/b/c.log': false });
  check('file?.txt', { 'file1.txt': true, 'file12.txt': false, 'file/.txt': false });
});

test('** matches any number of directories, zero included', () => {
  check('**/*.go', { 'main.go': true, 'a/main.go': true, 'a/b/c/main.go': true, 'main.gox': false });
  check('a/**/z', { 'a/z': true, 'a/b/z': true, 'a/b/c/z': true, 'b/z': false });
  check('a/**', { 'a/x': true, 'a/x/y': true, a: false });
  check('**', { x: true, 'x/y': true });
  check('**.bak', { 'x.bak': true, 'd/x.bak': true });
});

test('a pattern matching a directory excludes everything under it', () => {
  check('node_modules', { node_modules: true, 'node_modules/x/y.js': true, 'src/node_modules': false, node_modules2: false });
  check('build/', { build: true, 'build/out.o': true });
  check('*/temp*', { 'somedir/temporary.txt': true, 'somedir/temp': true, 'somedir/temp/x': true, temp: false });
});

test('leading / and ./ are stripped, ../ never matches inside the context', () => {
  check('/secret', { secret: true, 'a/secret': false, 'secret/key': true });
  check('./dist', { dist: true, 'dist/x': true });
  check('a/../b', { b: true, a: false });
  check('../outside', { outside: false });
});

test('character classes and escapes', () => {
  check('file[0-9].txt', { 'file1.txt': true, 'filea.txt': false });
  check('file[^0-9].txt', { 'file1.txt': false, 'filea.txt': true });
  check('[ab]c', { ac: true, bc: true, cc: false });
  check('\\*star', { '*star': true, xstar: false });
  check('weird.(x)+', { 'weird.(x)+': true, 'weirdX(x)': false });
});

test('bad patterns are errors naming the line', () => {
  assert.throws(() => parseDockerignore('ok\n[abc'), (e: unknown) => e instanceof InvalidArgumentError && e.message === '.dockerignore:2: syntax error in pattern: [abc');
  assert.throws(() => parseDockerignore('a\n!\n'), { message: '.dockerignore:2: illegal exclusion pattern: "!"' });
});

test('! exceptions re-include; the last matching line wins', () => {
  check('*.md\n!README.md', { 'a.md': true, 'README.md': false });
  check('!README.md\n*.md', { 'README.md': true });
  check('*.md\n!README*.md\nREADME-secret.md', { 'README.md': false, 'README-secret.md': true, 'x.md': true });
  check('docs\n! docs/keep.txt', { 'docs/a': true, 'docs/keep.txt': false, docs: true });
});

test('an exception matching a directory re-includes everything under it', () => {
  check('vendor\n!vendor/keep', { 'vendor/drop/x': true, 'vendor/keep': false, 'vendor/keep/a/b': false });
});

test('everything excluded but a few files', () => {
  check('*\n!src\n!package.json\nsrc/**/*.test.ts', {
    'package.json': false,
    'README.md': true,
    'src/a.ts': false,
    'src/lib/a.test.ts': true,
    'src/a.test.ts': true,
    'dist/x': true,
  });
});

test('the Dockerfile and .dockerignore are always sent', () => {
  const m = parseDockerignore('*\n');
  assert.equal(m.ignores('Dockerfile'), false);
  assert.equal(m.ignores('.dockerignore'), false);
  assert.equal(m.ignores('other'), true);
  const custom = parseDockerignore('docker\n', { dockerfilePath: './docker/Dockerfile.dev' });
  assert.equal(custom.ignores('docker/Dockerfile.dev'), false);
  assert.equal(custom.ignores('docker/other'), true);
  assert.equal(custom.mayContainIncluded('docker'), true);
});

test('paths are cleaned before matching; the root is never ignored', () => {
  const m = parseDockerignore('a/b\n**');
  assert.equal(m.ignores('./a//b/'), true);
  assert.equal(m.ignores('/a/b'), true);
  assert.equal(m.ignores('.'), false);
  assert.equal(m.ignores(''), false);
  assert.equal(m.ignores('x', true), true);
});

test('mayContainIncluded: only when an exception could reach below the directory', () => {
  const m = parseDockerignore('build\nnode_modules\n!build/keep.txt\n!**/*.keep\ncache\n!cache/*/important\n');
  assert.equal(m.mayContainIncluded('build'), true);
  assert.equal(m.mayContainIncluded('cache'), true);
  assert.equal(m.mayContainIncluded('cache/x'), true);
  const plain = parseDockerignore('build\nnode_modules\n!src/keep\n');
  assert.equal(plain.mayContainIncluded('build'), false);
  assert.equal(plain.mayContainIncluded('node_modules'), false);
  assert.equal(plain.mayContainIncluded('src'), true);
  assert.equal(plain.mayContainIncluded('src/deeper'), false);
  const none = parseDockerignore('tmp');
  assert.equal(none.mayContainIncluded('tmp'), false);
  const wild = parseDockerignore('*\n!s*/keep');
  assert.equal(wild.mayContainIncluded('src'), true);
  assert.equal(wild.mayContainIncluded('lib'), false);
});

test('walker contract: descend into an ignored directory only when needed', () => {
  // A tiny walk over a fake tree, the way a context walker would use the matcher.
  const tree = ['a.txt', 'build/out.o', 'build/keep.txt', 'build/sub/deep.keep', 'node_modules/x/index.js', 'src/main.ts', 'src/main.keep'];
  const m = parseDockerignore('build\nnode_modules\n**/*.keep\n!build/keep.txt\n!build/**/*.keep\n');
  const sent: string[] = [];
  const visited = new Set<string>();
  for (const file of tree) {
    const parts = file.split('/');
    let skip = false;
    for (let k = 1; k < parts.length; k++) {
      const dir = parts.slice(0, k).join('/');
      if (m.ignores(dir, true) && !m.mayContainIncluded(dir)) {
        skip = true;
        break;
      }
      visited.add(dir);
    }
    if (!skip && !m.ignores(file)) sent.push(file);
  }
  assert.deepEqual(sent, ['a.txt', 'build/keep.txt', 'build/sub/deep.keep', 'src/main.ts']);
  assert.equal(visited.has('node_modules'), false);
  assert.equal(visited.has('build/sub'), true);
});
