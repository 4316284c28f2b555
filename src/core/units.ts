/**
 * Parsers for the human-friendly quantities users type: memory sizes
 * (`64m`), CPU counts (`0.5`) and Go-style durations (`1m30s`).
 */
import { InvalidArgumentError } from './errors.js';

const SIZE_MULTIPLIERS: Readonly<Record<string, number>> = {
  '': 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

/**
 * Bytes in a size such as `100`, `512k`, `64m`, `64mb`, `1.5g` or `2GiB`.
 * Suffixes are binary multiples and case-insensitive (Docker's RAMInBytes);
 * a fractional result is truncated to whole bytes.
 */
export function parseBytes(value: string): number {
  const match = /^(\d+(?:\.\d+)?) ?(?:([kmgtp])i?)?b?$/i.exec(value.trim());
  if (!match) throw new InvalidArgumentError(`Invalid size: ${value}`);
  const amount = Number(match[1]);
  const bytes = Math.trunc(amount * (SIZE_MULTIPLIERS[(match[2] ?? '').toLowerCase()] ?? 1));
  if (!Number.isSafeInteger(bytes)) throw new InvalidArgumentError(`Invalid size: ${value}`);
  return bytes;
}

/**
 * Nano-CPUs in a decimal CPU count: `1` → 1e9, `0.5` → 5e8, `.25` → 2.5e8.
 * Docker's rule: at most nine decimals of precision, never negative.
 */
export function parseCpus(value: string): number {
  const text = value.trim();
  const match = /^(\d*)(?:\.(\d*))?$/.exec(text);
  if (!match || text === '' || text === '.') throw new InvalidArgumentError(`Invalid CPUs value: ${value}`);
  const whole = match[1] ?? '';
  const fraction = (match[2] ?? '').replace(/0+$/, '');
  if (fraction.length > 9) throw new InvalidArgumentError(`Invalid CPUs value: ${value}: too precise`);
  const nano = BigInt(whole || '0') * 1_000_000_000n + BigInt(fraction.padEnd(9, '0') || '0');
  if (nano > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidArgumentError(`Invalid CPUs value: ${value}`);
  return Number(nano);
}

/** Nanoseconds per unit of a Go duration. */
const DURATION_UNITS: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  'µs': 1_000n, // U+00B5 micro sign
  'μs': 1_000n, // U+03BC Greek small letter mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

/**
 * Nanoseconds in a Go duration string: a signed sequence of decimal numbers,
 * each with an optional fraction and a unit, e.g. `300ms`, `-1.5h`, `2h45m`.
 * A bare `0` is allowed; any other number needs a unit.
 */
export function parseDurationNs(value: string): number {
  const invalid = (): InvalidArgumentError => new InvalidArgumentError(`Invalid duration: ${value}`);
  let rest = value;
  let negative = false;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    negative = rest.startsWith('-');
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw invalid();

  // Work in units of 1e-9 ns so fractions of a nanosecond add up exactly.
  const SCALE = 1_000_000_000n;
  let total = 0n;
  const term = /^(\d*)(?:\.(\d*))?([^\d.]+)/;
  while (rest !== '') {
    const match = term.exec(rest);
    if (!match) throw invalid();
    const whole = match[1] ?? '';
    const fraction = match[2];
    if (whole === '' && (fraction === undefined || fraction === '')) throw invalid();
    const unit = DURATION_UNITS[match[3] ?? ''];
    if (unit === undefined) throw invalid();
    const fractionDigits = (fraction ?? '').slice(0, 18);
    const scaledFraction = fractionDigits === '' ? 0n : (BigInt(fractionDigits) * SCALE) / 10n ** BigInt(fractionDigits.length);
    total += BigInt(whole || '0') * unit * SCALE + scaledFraction * unit;
    rest = rest.slice(match[0].length);
  }
  const ns = total / SCALE;
  if (ns > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid();
  return Number(negative ? -ns : ns);
}

/** A coarse human duration ("5 seconds", "About an hour", "3 weeks"). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}
