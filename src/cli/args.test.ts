import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, type FlagSpec } from './args.js';
import { UsageError } from './errors.js';

const specs: FlagSpec[] = [
  { long: 'detach', short: 'd', type: 'bool', help: '' },
  { long: 'interactive', short: 'i', type: 'bool', help: '' },
  { long: 'tty', short: 't', type: 'bool', help: '' },
  { long: 'env', short: 'e', type: 'list', help: '' },
  { long: 'name', type: 'string', help: '' },
  { long: 'hostname', short: 'h', type: 'string', help: '' },
  { long: 'network', type: 'string', help: '', aliases: ['net'] },
];

test('combined short flags set every bool', () => {
  const a = parseArgs(specs, ['-dit', 'busybox']);
  assert.equal(a.bool('detach'), true);
  assert.equal(a.bool('interactive'), true);
  assert.equal(a.bool('tty'), true);
  assert.deepEqual(a.positionals, ['busybox']);
});

test('a value flag at the end of a group takes the rest or the next argument', () => {
  assert.deepEqual(parseArgs(specs, ['-ieFOO=1', 'img']).list('env'), ['FOO=1']);
  assert.deepEqual(parseArgs(specs, ['-ie', 'FOO=1', 'img']).list('env'), ['FOO=1']);
  assert.deepEqual(parseArgs(specs, ['-e=A=B', 'img']).list('env'), ['A=B']);
});

test('--flag=value and --flag value are equivalent; aliases map to the flag', () => {
  assert.equal(parseArgs(specs, ['--name=web']).str('name'), 'web');
  assert.equal(parseArgs(specs, ['--name', 'web']).str('name'), 'web');
  assert.equal(parseArgs(specs, ['--net', 'host']).str('network'), 'host');
  assert.equal(parseArgs(specs, ['--name=']).str('name'), '');
});

test('bool flags accept explicit values', () => {
  assert.equal(parseArgs(specs, ['--detach=false']).bool('detach'), false);
  assert.equal(parseArgs(specs, ['--detach=true']).has('detach'), true);
  assert.throws(() => parseArgs(specs, ['--detach=maybe']), UsageError);
});

test('repeatable flags accumulate in order', () => {
  const a = parseArgs(specs, ['-e', 'A=1', '--env=B=2', '-eC=3', 'img']);
  assert.deepEqual(a.list('env'), ['A=1', 'B=2', 'C=3']);
});

test('parsing stops at the first positional when not interspersed', () => {
  const a = parseArgs(specs, ['-d', 'busybox', 'sh', '-c', 'echo -e hi', '--name', 'x'], { interspersed: false });
  assert.deepEqual(a.positionals, ['busybox', 'sh', '-c', 'echo -e hi', '--name', 'x']);
  assert.equal(a.has('name'), false);
});

test('interspersed parsing collects flags after positionals; -- ends flags', () => {
  const a = parseArgs(specs, ['c1', '-d', 'c2', '--', '-e', 'x']);
  assert.deepEqual(a.positionals, ['c1', 'c2', '-e', 'x']);
  assert.equal(a.bool('detach'), true);
});

test('a lone dash is a positional (stdin)', () => {
  assert.deepEqual(parseArgs(specs, ['-', 'name']).positionals, ['-', 'name']);
});

test('unknown flags and missing values are usage errors', () => {
  assert.throws(() => parseArgs(specs, ['--bogus']), { name: 'UsageError', message: 'unknown flag: --bogus' });
  assert.throws(() => parseArgs(specs, ['-dx']), { message: "unknown shorthand flag: 'x' in -dx" });
  assert.throws(() => parseArgs(specs, ['--name']), { message: 'flag needs an argument: --name' });
  assert.throws(() => parseArgs(specs, ['-e']), { message: "flag needs an argument: 'e' in -e" });
});

test('-h is help unless the command defines it; --help always is', () => {
  assert.equal(parseArgs(specs, ['-h', 'box']).str('hostname'), 'box');
  assert.equal(parseArgs(specs, ['--help']).help, true);
  assert.equal(parseArgs(specs.filter((s) => s.short !== 'h'), ['-h']).help, true);
});

test('int() validates integers', () => {
  const s: FlagSpec[] = [{ long: 'time', short: 't', type: 'string', help: '' }];
  assert.equal(parseArgs(s, ['-t', '5']).int('time'), 5);
  assert.equal(parseArgs(s, []).int('time'), undefined);
  assert.throws(() => parseArgs(s, ['-t', 'soon']).int('time'), UsageError);
});
