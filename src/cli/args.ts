/**
 * A small POSIX/pflag-style argument parser, written for the Docker CLI's
 * conventions: `-dit` (combined short flags), `-eK=V` / `-e K=V`,
 * `--flag=value` / `--flag value`, repeatable list flags, `--` to end flags,
 * and (for run/create/exec/top) stopping at the first positional so that the
 * container's own command line is passed through untouched.
 */
import { UsageError } from './errors.js';

export type FlagType = 'bool' | 'string' | 'list';

export interface FlagSpec {
  /** Long name without dashes; also the key results are stored under. */
  long: string;
  short?: string;
  type: FlagType;
  help: string;
  /** Placeholder shown in help, e.g. `bytes`, `int`; defaults by type. */
  value?: string;
  /** Default shown in help only; absent flags are simply not set. */
  defaultText?: string;
  /** Other long names accepted for the same flag (Docker's `--net`). */
  aliases?: string[];
}

export interface ParseOptions {
  /** false: the first positional ends flag parsing (Docker's SetInterspersed(false)). */
  interspersed?: boolean;
}

export class ParsedArgs {
  readonly positionals: string[] = [];
  help = false;
  readonly #values = new Map<string, string | boolean | string[]>();

  set(spec: FlagSpec, raw: string | true): void {
    if (spec.type === 'bool') {
      this.#values.set(spec.long, raw === true ? true : parseBool(spec, raw));
    } else if (spec.type === 'list') {
      const prev = this.#values.get(spec.long);
      const list = Array.isArray(prev) ? prev : [];
      list.push(String(raw));
      this.#values.set(spec.long, list);
    } else {
      this.#values.set(spec.long, String(raw));
    }
  }

  /** Whether the flag appeared at all (pflag's Changed). */
  has(name: string): boolean {
    return this.#values.has(name);
  }

  bool(name: string): boolean {
    return this.#values.get(name) === true;
  }

  str(name: string): string | undefined {
    const v = this.#values.get(name);
    return typeof v === 'string' ? v : undefined;
  }

  list(name: string): string[] {
    const v = this.#values.get(name);
    return Array.isArray(v) ? [...v] : [];
  }

  /** An integer flag value, validated; undefined when the flag is absent. */
  int(name: string): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (!/^[+-]?\d+$/.test(v.trim())) {
      throw new UsageError(`invalid argument "${v}" for "--${name}" flag: not an integer`);
    }
    return Number.parseInt(v, 10);
  }
}

function parseBool(spec: FlagSpec, raw: string): boolean {
  const v = raw.toLowerCase();
  if (['1', 't', 'true'].includes(v)) return true;
  if (['0', 'f', 'false'].includes(v)) return false;
  throw new UsageError(`invalid argument "${raw}" for "--${spec.long}" flag: expected true or false`);
}

export function parseArgs(specs: readonly FlagSpec[], argv: readonly string[], opts: ParseOptions = {}): ParsedArgs {
  const interspersed = opts.interspersed ?? true;
  const byLong = new Map<string, FlagSpec>();
  const byShort = new Map<string, FlagSpec>();
  for (const s of specs) {
    byLong.set(s.long, s);
    for (const a of s.aliases ?? []) byLong.set(a, s);
    if (s.short) byShort.set(s.short, s);
  }
  const out = new ParsedArgs();

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      out.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      const inline = eq === -1 ? undefined : arg.slice(eq + 1);
      const spec = byLong.get(name);
      if (!spec) {
        if (name === 'help') {
          out.help = true;
          continue;
        }
        throw new UsageError(`unknown flag: --${name}`);
      }
      if (spec.type === 'bool') {
        out.set(spec, inline ?? true);
      } else if (inline !== undefined) {
        out.set(spec, inline);
      } else {
        if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: --${name}`);
        out.set(spec, argv[++i] as string);
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      i = parseShortGroup(arg, argv, i, byShort, out);
      continue;
    }
    // A positional argument (including a lone `-`, meaning stdin).
    if (!interspersed) {
      out.positionals.push(...argv.slice(i));
      break;
    }
    out.positionals.push(arg);
  }
  return out;
}

/** Parses `-abc`, `-eK=V`, `-e=K=V`; returns the index of the last argv element consumed. */
function parseShortGroup(
  arg: string,
  argv: readonly string[],
  i: number,
  byShort: Map<string, FlagSpec>,
  out: ParsedArgs,
): number {
  for (let j = 1; j < arg.length; j++) {
    const c = arg[j] as string;
    const spec = byShort.get(c);
    if (!spec) {
      // -h means help unless the command defines its own -h (run's --hostname).
      if (c === 'h') {
        out.help = true;
        continue;
      }
      throw new UsageError(`unknown shorthand flag: '${c}' in ${arg}`);
    }
    let rest = arg.slice(j + 1);
    if (spec.type === 'bool') {
      if (rest.startsWith('=')) {
        out.set(spec, rest.slice(1));
        return i;
      }
      out.set(spec, true);
      continue;
    }
    // A value-taking flag consumes the rest of the group, or the next argument.
    if (rest.startsWith('=')) rest = rest.slice(1);
    if (rest !== '') {
      out.set(spec, rest);
      return i;
    }
    if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: '${c}' in -${c}`);
    out.set(spec, argv[i + 1] as string);
    return i + 1;
  }
  return i;
}

/** Renders the Options section of a command's help text. */
export function formatFlags(specs: readonly FlagSpec[]): string {
  const rows = specs.map((s) => {
    const names = `${s.short ? `-${s.short}, ` : '    '}--${s.long}`;
    const value = s.type === 'bool' ? '' : ` ${s.value ?? (s.type === 'list' ? 'list' : 'string')}`;
    const def = s.defaultText ? ` (default ${s.defaultText})` : '';
    return [`  ${names}${value}`, `${s.help}${def}`] as const;
  });
  const width = Math.max(0, ...rows.map(([l]) => l.length)) + 3;
  return rows.map(([l, r]) => l.padEnd(width) + r).join('\n');
}
