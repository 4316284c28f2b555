import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from './errors.js';
import { parseBytes, parseCpus, parseDurationNs } from './units.js';

test('parseBytes reads plain numbers and binary suffixes', () => {
  assert.equal(parseBytes('100'), 100);
  assert.equal(parseBytes('0'), 0);
  assert.equal(parseBytes('512k'), 512 * 1024);
  assert.equal(parseBytes('64m'), 64 * 1024 * 1024);
  assert.equal(parseBytes('1g'), 1024 ** 3);
  assert.equal(parseBytes('2t'), 2 * 1024 ** 4);
  assert.equal(parseBytes('1p'), 1024 ** 5);
});

test('parseBytes is case-insensitive and accepts b, ib and a space', () => {
  assert.equal(parseBytes('64M'), 64 * 1024 * 1024);
  assert.equal(parseBytes('64mb'), 64 * 1024 * 1024);
  assert.equal(parseBytes('64MB'), 64 * 1024 * 1024);
  assert.equal(parseBytes('64MiB'), 64 * 1024 * 1024);
  assert.equal(parseBytes('64 m'), 64 * 1024 * 1024);
  assert.equal(parseBytes('10b'), 10);
  assert.equal(parseBytes('10B'), 10);
});

test('parseBytes accepts fractions and truncates to whole bytes', () => {
  assert.equal(parseBytes('1.5g'), 1.5 * 1024 ** 3);
  assert.equal(parseBytes('0.5k'), 512);
  assert.equal(parseBytes('1.1k'), 1126);
});

test('parseBytes rejects anything else', () => {
  for (const bad of ['abc', '', '-1', '1x', '1kk', 'k', '1.', '.5m', '1.2.3m', '100i', '1e3', '99999999999p']) {
    assert.throws(() => parseBytes(bad), InvalidArgumentError, bad);
  }
  assert.throws(() => parseBytes('abc'), { message: 'Invalid size: abc' });
});

test('parseCpus converts to nano-CPUs exactly', () => {
  assert.equal(parseCpus('0.5'), 500_000_000);
  assert.equal(parseCpus('1'), 1_000_000_000);
  assert.equal(parseCpus('2.25'), 2_250_000_000);
  assert.equal(parseCpus('.1'), 100_000_000);
  assert.equal(parseCpus('0.000000001'), 1);
  assert.equal(parseCpus('0.0000000010'), 1);
  assert.equal(parseCpus('0'), 0);
  assert.equal(parseCpus('1.'), 1_000_000_000);
});

test('parseCpus rejects negative, malformed and over-precise values', () => {
  for (const bad of ['-1', '-0.5', 'abc', '', '.', '1,5', '1e3', '0.0000000001', '1/2', '100000000']) {
    assert.throws(() => parseCpus(bad), InvalidArgumentError, bad);
  }
  assert.throws(() => parseCpus('abc'), { message: 'Invalid CPUs value: abc' });
});

test('parseDurationNs follows Go duration syntax', () => {
  assert.equal(parseDurationNs('30s'), 30e9);
  assert.equal(parseDurationNs('1m30s'), 90e9);
  assert.equal(parseDurationNs('500ms'), 500e6);
  assert.equal(parseDurationNs('1h'), 3600e9);
  assert.equal(parseDurationNs('2h45m'), (2 * 3600 + 45 * 60) * 1e9);
  assert.equal(parseDurationNs('1.5h'), 5400e9);
  assert.equal(parseDurationNs('.5s'), 500e6);
  assert.equal(parseDurationNs('1.s'), 1e9);
  assert.equal(parseDurationNs('10us'), 10_000);
  assert.equal(parseDurationNs('10µs'), 10_000);
  assert.equal(parseDurationNs('10μs'), 10_000);
  assert.equal(parseDurationNs('7ns'), 7);
  assert.equal(parseDurationNs('0'), 0);
  assert.equal(parseDurationNs('0s'), 0);
  assert.equal(parseDurationNs('+5s'), 5e9);
  assert.equal(parseDurationNs('-1.5s'), -1.5e9);
  assert.equal(parseDurationNs('1.0000000001s'), 1e9);
});

test('parseDurationNs rejects missing units, unknown units and junk', () => {
  for (const bad of ['', '1', '-', 's', '.s', '1x', '1 s', '1s ', 'abc', '1d', '1..5s', '3000000h']) {
    assert.throws(() => parseDurationNs(bad), InvalidArgumentError, bad);
  }
  assert.throws(() => parseDurationNs('1'), { message: 'Invalid duration: 1' });
});
