import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectEnv, encodeFilters, parseEnvFile, parseLabelFile, resolveEnvFlag, toMap } from './envfile.js';
import { tempDir } from '../core/test-temp-dirs.js';


const env = (vars: Record<string, string>) => (k: string) => vars[k];

test('env file: K=V literal, comments and blanks skipped, bare K from env', () => {
  const text = '\uFEFF# a comment\nA=1\n\n  B=spaced \nC="quoted"\nHOME\nMISSING\nEMPTY=\n';
  assert.deepEqual(parseEnvFile(text, 'f', env({ HOME: '/root' })), ['A=1', 'B=spaced ', 'C="quoted"', 'HOME=/root', 'EMPTY=']);
});

test('env file: variable names with whitespace or no name are rejected', () => {
  assert.throws(() => parseEnvFile('MY VAR=1\n', 'f'), /contains whitespaces/);
  assert.throws(() => parseEnvFile('B = 1\n', 'f'), /contains whitespaces/);
  assert.throws(() => parseEnvFile('=1\n', 'f'), /no variable name/);
});

test('-e K copies from the environment only when set', () => {
  assert.equal(resolveEnvFlag('A=b', env({})), 'A=b');
  assert.equal(resolveEnvFlag('HOME', env({ HOME: '/h' })), 'HOME=/h');
  assert.equal(resolveEnvFlag('NOPE', env({})), 'NOPE');
});

test('collectEnv: file entries first, then -e flags', () => {
  const dir = tempDir('vessel-env-');
  const f = join(dir, 'env');
  writeFileSync(f, 'A=1\nB=2\n');
  assert.deepEqual(collectEnv([f], ['B=3', 'X'], env({ X: 'x' })), ['A=1', 'B=2', 'B=3', 'X=x']);
  assert.throws(() => collectEnv([join(dir, 'missing')], []), /no such file/);
});

test('labels: file lines and K=V to a map', () => {
  assert.deepEqual(parseLabelFile('# c\na=b\nflag\n', 'f'), ['a=b', 'flag']);
  assert.deepEqual(toMap(['a=b', 'flag', 'c=d=e']), { a: 'b', flag: '', c: 'd=e' });
});

test('filters are encoded in the map form', () => {
  assert.equal(encodeFilters([]), undefined);
  assert.equal(
    encodeFilters(['status=exited', 'label=a=b', 'label=c', 'status=created']),
    '{"status":{"exited":true,"created":true},"label":{"a=b":true,"c":true}}',
  );
  assert.throws(() => encodeFilters(['nonsense']), /bad format of filter/);
});
