/**
 * Unit conversions shared by the CLI, following the behaviour users know
 * from Docker: `-m 512m` is binary (MiB), `images` sizes are decimal with
 * three significant digits, `stats` memory is binary with four, and relative
 * times read "5 seconds ago".
 */
import { UsageError } from './errors.js';
import { humanDuration, parseBytes, parseCpus as parseNanoCpus, parseDurationNs } from '../core/units.js';

export { humanDuration };

/** Parses a memory size such as `64m`, `1.5g`, `512k`, `100` (bytes) into bytes. */
export function parseSize(text: string): number {
  return asUsage(() => parseBytes(text));
}

/** Parses a Go duration (`1m30s`, `500ms`, `-2h`, `0`) into nanoseconds. */
export function parseGoDuration(text: string): number {
  return asUsage(() => parseDurationNs(text));
}

/** `--cpus 1.5` → NanoCpus 1500000000. */
export function parseCpus(text: string): number {
  return asUsage(() => parseNanoCpus(text));
}

/** The daemon shares these parsers; on the command line a bad value is a usage error. */
function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Go's `%.Ng`: N significant digits, trailing zeros dropped. */
function formatG(value: number, digits: number): string {
  if (value === 0) return '0';
  const s = value.toPrecision(digits);
  if (s.includes('e')) {
    const [mant, exp] = s.split('e') as [string, string];
    const m = mant.includes('.') ? mant.replace(/\.?0+$/, '') : mant;
    const e = Number(exp);
    return `${m}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

function scaled(size: number, base: number, units: readonly string[], digits: number): string {
  let i = 0;
  let v = size;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  return `${formatG(v, digits)}${units[i]}`;
}

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

/** Decimal, 3 significant digits: `4.26MB` (docker images, history, net/block I/O). */
export function humanSize(bytes: number): string {
  return scaled(bytes, 1000, DECIMAL_UNITS, 3);
}

/** Binary, 4 significant digits: `1.953MiB` (docker stats memory). */
export function bytesSize(bytes: number): string {
  return scaled(bytes, 1024, BINARY_UNITS, 4);
}

/** "5 seconds ago" for a unix-seconds timestamp (or ISO string). */
export function timeAgo(created: number | string, now = Date.now()): string {
  const t = typeof created === 'number' ? created * 1000 : Date.parse(created);
  if (!Number.isFinite(t) || t <= 0) return 'N/A';
  return `${humanDuration(Math.max(0, now - t))} ago`;
}

/**
 * `--since`/`--until` values as the daemon expects them (unix seconds, with
 * an optional fraction): relative Go durations count back from now, RFC 3339
 * dates are converted, plain numbers pass through.
 */
export function parseTimestamp(text: string, now = Date.now()): string {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return s;
  if (/^[+-]?(\d*\.?\d+(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+$/.test(s)) {
    const ns = BigInt(now) * 1_000_000n - BigInt(parseGoDuration(s));
    const secs = ns / 1_000_000_000n;
    const frac = (ns % 1_000_000_000n).toString().padStart(9, '0');
    return `${secs}.${frac}`;
  }
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new UsageError(`invalid timestamp: '${text}'`);
  return `${Math.floor(t / 1000)}.${String((t % 1000) * 1_000_000).padStart(9, '0')}`;
}
