import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesSize, humanDuration, humanSize, parseCpus, parseGoDuration, parseSize, parseTimestamp, timeAgo } from './units.js';

test('parseSize: binary suffixes, optional b/ib, bare bytes', () => {
  assert.equal(parseSize('64m'), 64 * 1024 * 1024);
  assert.equal(parseSize('64M'), 64 * 1024 * 1024);
  assert.equal(parseSize('1g'), 1024 ** 3);
  assert.equal(parseSize('1.5g'), 1.5 * 1024 ** 3);
  assert.equal(parseSize('512k'), 512 * 1024);
  assert.equal(parseSize('512kb'), 512 * 1024);
  assert.equal(parseSize('2MiB'), 2 * 1024 * 1024);
  assert.equal(parseSize('100'), 100);
  assert.equal(parseSize('100b'), 100);
});

test('parseSize rejects junk with the Docker-style message', () => {
  for (const bad of ['abc', '', '12x', '-1', '1.2.3m', 'm']) {
    assert.throws(() => parseSize(bad), { message: `Invalid size: ${bad}` });
  }
});

test('parseGoDuration', () => {
  assert.equal(parseGoDuration('30s'), 30e9);
  assert.equal(parseGoDuration('1m30s'), 90e9);
  assert.equal(parseGoDuration('1h'), 3600e9);
  assert.equal(parseGoDuration('500ms'), 500e6);
  assert.equal(parseGoDuration('1.5s'), 1.5e9);
  assert.equal(parseGoDuration('10us'), 10e3);
  assert.equal(parseGoDuration('7ns'), 7);
  assert.equal(parseGoDuration('0'), 0);
  assert.equal(parseGoDuration('-2s'), -2e9);
  assert.throws(() => parseGoDuration('30'), /Invalid duration/);
  assert.throws(() => parseGoDuration('soon'), /Invalid duration/);
});

test('parseCpus gives NanoCpus', () => {
  assert.equal(parseCpus('0.5'), 500_000_000);
  assert.equal(parseCpus('2'), 2_000_000_000);
  assert.equal(parseCpus('1.25'), 1_250_000_000);
  assert.throws(() => parseCpus('two'));
});

test('humanSize: decimal, 3 significant digits', () => {
  assert.equal(humanSize(0), '0B');
  assert.equal(humanSize(999), '999B');
  assert.equal(humanSize(1000), '1kB');
  assert.equal(humanSize(4_261_000), '4.26MB');
  assert.equal(humanSize(77_900_000), '77.9MB');
  assert.equal(humanSize(1_200_000_000), '1.2GB');
});

test('bytesSize: binary, 4 significant digits', () => {
  assert.equal(bytesSize(0), '0B');
  assert.equal(bytesSize(2048), '2KiB');
  assert.equal(bytesSize(2_048_000), '1.953MiB');
  assert.equal(bytesSize(8 * 1024 ** 3), '8GiB');
});

test('humanDuration thresholds', () => {
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(1000), '1 second');
  assert.equal(humanDuration(5000), '5 seconds');
  assert.equal(humanDuration(60_000), 'About a minute');
  assert.equal(humanDuration(5 * 60_000), '5 minutes');
  assert.equal(humanDuration(3600_000), 'About an hour');
  assert.equal(humanDuration(5 * 3600_000), '5 hours');
  assert.equal(humanDuration(3 * 86400_000), '3 days');
  assert.equal(humanDuration(21 * 86400_000), '3 weeks');
  assert.equal(humanDuration(90 * 86400_000), '3 months');
  assert.equal(humanDuration(3 * 365 * 86400_000), '3 years');
});

test('timeAgo on unix seconds', () => {
  const now = 1_700_000_000_000;
  assert.equal(timeAgo(1_700_000_000 - 5, now), '5 seconds ago');
  assert.equal(timeAgo(0, now), 'N/A');
});

test('parseTimestamp: numbers pass through, durations count back, dates convert', () => {
  const now = 1_700_000_000_000;
  assert.equal(parseTimestamp('1699999999', now), '1699999999');
  assert.equal(parseTimestamp('10m', now), '1699999400.000000000');
  assert.equal(parseTimestamp('2023-11-14T22:13:20Z', now), '1700000000.000000000');
  assert.throws(() => parseTimestamp('yesterday', now));
});
