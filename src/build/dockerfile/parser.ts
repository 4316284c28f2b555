/**
 * The Dockerfile front end: text in, typed stages and instructions out
 * (pure, no I/O). Variable substitution is not done here — values keep their
 * quotes and `$VAR`s, and `expand.ts` resolves them at build time, when the
 * variables in scope are known.
 *
 * Supported as Docker documents them: parser directives (`# syntax=` and
 * `# check=` accepted and ignored, `# escape=\` or `` # escape=` ``; an
 * unknown directive is a comment and ends the directives), comments, blank
 * lines, line continuations with the escape character (trailing whitespace
 * after it allowed; comment lines and blank lines inside a continuation are
 * skipped), case-insensitive keywords, exec (JSON) and shell forms.
 *
 * Deliberately refused, with a message naming the line: heredocs (`<<EOF`),
 * `RUN --mount/--network/--security`, `COPY --parents/--exclude`,
 * `ADD --checksum/--keep-git-dir/--exclude/--unpack`. `COPY/ADD --link` is
 * accepted and recorded in `link`; the executor may ignore it, since it only
 * changes how the layer is cached, not the files the image ends up with.
 * ONBUILD is parsed (its trigger too) and marked `unsupported: true`: the
 * executor refuses it.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { parseDurationNs } from '../../core/units.js';
import { splitWords } from './expand.js';

interface Base {
  /** 1-based line where the instruction starts. */
  line: number;
  /**
   * The instruction as written, continuations joined into one line and
   * trimmed (for build history `created_by` and cache keys).
   */
  original: string;
}

/** A command in exec form (JSON array) or shell form (one string). */
export type Command = string[] | string;

export interface FromInstruction extends Base {
  kind: 'FROM';
  /** Raw image reference (may contain `$ARG`s; `scratch` = empty image). */
  image: string;
  /** Stage name from `AS name`, lower-cased; null without one. */
  alias: string | null;
  /** Raw `--platform` value, or null. */
  platform: string | null;
}
export interface RunInstruction extends Base {
  kind: 'RUN';
  command: Command;
}
export interface CmdInstruction extends Base {
  kind: 'CMD';
  command: Command;
}
export interface EntrypointInstruction extends Base {
  kind: 'ENTRYPOINT';
  command: Command;
}
export interface ShellInstruction extends Base {
  kind: 'SHELL';
  shell: string[];
}
/** A key and value as written: quotes, escapes and `$VAR`s still in place. */
export interface KeyValue {
  key: string;
  value: string;
}
export interface EnvInstruction extends Base {
  kind: 'ENV';
  pairs: KeyValue[];
}
export interface ArgDeclaration {
  name: string;
  /** Raw default (quotes and `$VAR`s in place), or null for `ARG name`. */
  default: string | null;
}
export interface ArgInstruction extends Base {
  kind: 'ARG';
  args: ArgDeclaration[];
}
export interface LabelInstruction extends Base {
  kind: 'LABEL';
  pairs: KeyValue[];
}
export interface WorkdirInstruction extends Base {
  kind: 'WORKDIR';
  path: string;
}
export interface UserInstruction extends Base {
  kind: 'USER';
  user: string;
}
export interface ExposeInstruction extends Base {
  kind: 'EXPOSE';
  /** Raw words: `80`, `80/tcp`, `8000-8010/udp`, `$PORT`. */
  ports: string[];
}
export interface VolumeInstruction extends Base {
  kind: 'VOLUME';
  paths: string[];
  /** True when written as a JSON array (quotes in the paths are literal). */
  json: boolean;
}
interface CopyFields {
  /** Raw sources (at least one) and destination. */
  sources: string[];
  dest: string;
  /** Raw `--chown` / `--chmod` values, or null. */
  chown: string | null;
  chmod: string | null;
  /** `--link` was given (accepted; does not change the result). */
  link: boolean;
  /** True when written as a JSON array (quotes in the words are literal). */
  json: boolean;
}
export interface CopyInstruction extends Base, CopyFields {
  kind: 'COPY';
  /** Raw `--from` (stage name, stage index or image), or null. */
  from: string | null;
}
export interface AddInstruction extends Base, CopyFields {
  kind: 'ADD';
}
export interface HealthcheckInstruction extends Base {
  kind: 'HEALTHCHECK';
  /**
   * The image-config form: `['NONE']`, `['CMD', ...args]` (exec form) or
   * `['CMD-SHELL', command]` (shell form).
   */
  test: string[];
  /** The command after `CMD`; null for `HEALTHCHECK NONE`. */
  command: Command | null;
  /** Durations in nanoseconds; null when not given (0 means the default too). */
  interval: number | null;
  timeout: number | null;
  startPeriod: number | null;
  startInterval: number | null;
  retries: number | null;
}
export interface StopsignalInstruction extends Base {
  kind: 'STOPSIGNAL';
  signal: string;
}
export interface OnbuildInstruction extends Base {
  kind: 'ONBUILD';
  /** The trigger instruction, parsed (never ONBUILD, FROM or MAINTAINER). */
  trigger: Instruction;
  /** The trigger as written, e.g. `RUN make` (what Docker stores in OnBuild). */
  expression: string;
  /** Vessel does not run ONBUILD: the executor refuses it. */
  unsupported: true;
}
/** Deprecated: the executor sets the image's `author` from it. */
export interface MaintainerInstruction extends Base {
  kind: 'MAINTAINER';
  maintainer: string;
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | ShellInstruction
  | EnvInstruction
  | ArgInstruction
  | LabelInstruction
  | WorkdirInstruction
  | UserInstruction
  | ExposeInstruction
  | VolumeInstruction
  | CopyInstruction
  | AddInstruction
  | HealthcheckInstruction
  | StopsignalInstruction
  | OnbuildInstruction
  | MaintainerInstruction;

export type InstructionKind = Instruction['kind'];

export interface Stage {
  /** 0-based position among the stages (usable as `COPY --from=0`). */
  index: number;
  /** The `AS` name, lower-cased, or null. */
  name: string | null;
  from: FromInstruction;
  /** The stage's instructions after its FROM. */
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM: usable in FROM lines only, unless re-declared. */
  globalArgs: ArgInstruction[];
  stages: Stage[];
  /** From the `# escape=` directive; pass it on to `expand`. */
  escapeChar: '\\' | '`';
}

const KINDS: ReadonlySet<string> = new Set<InstructionKind>([
  'FROM', 'RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'ENV', 'ARG', 'LABEL', 'WORKDIR', 'USER', 'EXPOSE', 'VOLUME',
  'COPY', 'ADD', 'HEALTHCHECK', 'STOPSIGNAL', 'ONBUILD', 'MAINTAINER',
]);

const DIRECTIVES = new Set(['syntax', 'escape', 'check']);

function fail(line: number, detail: string): never {
  throw new InvalidArgumentError(`Dockerfile:${line}: ${detail}`);
}

/** One instruction with its continuation lines joined. */
interface LogicalLine {
  line: number;
  text: string;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Reads the parser directives; returns the escape character and the first line after them. */
function readDirectives(lines: string[]): { escapeChar: '\\' | '`'; next: number } {
  let escapeChar: '\\' | '`' = '\\';
  const seen = new Set<string>();
  let i = 0;
  for (; i < lines.length; i++) {
    const m = /^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.+?)\s*$/.exec(lines[i]!);
    if (!m) break;
    const name = m[1]!.toLowerCase();
    if (!DIRECTIVES.has(name)) break; // an unknown directive is a comment and ends the directives
    if (seen.has(name)) fail(i + 1, `only one use of each parser directive is allowed: ${name}`);
    seen.add(name);
    if (name === 'escape') {
      const v = m[2]!;
      if (v !== '\\' && v !== '`') fail(i + 1, `invalid escape character: ${JSON.stringify(v)} (must be \\ or \`)`);
      escapeChar = v;
    }
  }
  return { escapeChar, next: i };
}

function logicalLines(lines: string[], from: number, escapeChar: string): LogicalLine[] {
  const continuation = new RegExp(`${escapeRegExp(escapeChar)}[ \\t]*$`);
  const out: LogicalLine[] = [];
  let cur: string | null = null;
  let start = 0;
  for (let i = from; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.trimStart();
    if (cur === null) {
      if (trimmed === '' || trimmed.startsWith('#')) continue;
      start = i + 1;
      if (continuation.test(trimmed)) cur = trimmed.replace(continuation, '');
      else out.push({ line: start, text: trimmed.trimEnd() });
      continue;
    }
    // Inside a continuation: comment lines and empty lines are dropped.
    if (trimmed.startsWith('#') || trimmed.trim() === '') continue;
    if (continuation.test(raw)) {
      cur += raw.replace(continuation, '');
      continue;
    }
    out.push({ line: start, text: (cur + raw).trimEnd() });
    cur = null;
  }
  // The file ended inside a continuation: the instruction ends there.
  if (cur !== null && cur.trim() !== '') out.push({ line: start, text: cur.trimEnd() });
  return out;
}

/** Exec form if the text is a JSON array of strings, else null (shell form, as Docker). */
function parseJsonArray(text: string): string[] | null {
  if (!text.startsWith('[')) return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) return null;
  return v as string[];
}

const HEREDOC = /(?:^|[^<])<<-?(["']?)[A-Za-z_][A-Za-z0-9_]*\1/;

function refuseHeredoc(line: number, text: string): void {
  if (HEREDOC.test(text)) fail(line, 'heredocs are not supported');
}

type FlagSpec = Record<string, 'string' | 'bool' | 'refuse'>;

const FLAGS: Partial<Record<InstructionKind, FlagSpec>> = {
  FROM: { platform: 'string' },
  RUN: { mount: 'refuse', network: 'refuse', security: 'refuse' },
  COPY: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'refuse', exclude: 'refuse' },
  ADD: {
    chown: 'string', chmod: 'string', link: 'bool',
    checksum: 'refuse', 'keep-git-dir': 'refuse', exclude: 'refuse', unpack: 'refuse',
  },
  HEALTHCHECK: { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' },
};

/** Takes the leading `--name[=value]` flags off an instruction's arguments. */
function takeFlags(kind: InstructionKind, line: number, args: string): { flags: Map<string, string | boolean>; rest: string } {
  const spec = FLAGS[kind];
  const flags = new Map<string, string | boolean>();
  // Instructions without flags keep a leading `--word` as an argument.
  if (spec === undefined) return { flags, rest: args };
  let rest = args;
  for (;;) {
    if (/^--(\s|$)/.test(rest)) {
      rest = rest.slice(2).trimStart();
      break;
    }
    const m = /^--([^\s=]+)(?:=(\S*))?(?:\s+|$)/.exec(rest);
    if (!m) break;
    const name = m[1]!;
    const type = spec[name];
    if (type === undefined) fail(line, `unknown flag for ${kind}: --${name}`);
    if (type === 'refuse') fail(line, `${kind} --${name} is not supported`);
    if (flags.has(name)) fail(line, `${kind} --${name} given more than once`);
    const value = m[2];
    if (type === 'bool') {
      if (value === undefined || value === 'true') flags.set(name, true);
      else if (value === 'false') flags.set(name, false);
      else fail(line, `${kind} --${name} takes true or false, not ${JSON.stringify(value)}`);
    } else {
      if (value === undefined || value === '') fail(line, `${kind} --${name} requires a value`);
      flags.set(name, value);
    }
    rest = rest.slice(m[0].length);
  }
  return { flags, rest };
}

function stringFlag(flags: Map<string, string | boolean>, name: string): string | null {
  const v = flags.get(name);
  return typeof v === 'string' ? v : null;
}

/** `key=value` pairs (ENV, LABEL), or the legacy `key value` form. */
function parseKeyValues(kind: 'ENV' | 'LABEL', line: number, args: string, escapeChar: string): KeyValue[] {
  const words = splitWords(args, escapeChar);
  if (words.length === 0) fail(line, `${kind} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    const m = /^(\S+)\s+([\s\S]+)$/.exec(args);
    if (!m) fail(line, `${kind} must have two arguments`);
    return [{ key: m[1]!, value: m[2]! }];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) fail(line, `syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`);
    if (eq === 0) fail(line, `${kind} names can not be blank`);
    return { key: w.slice(0, eq), value: w.slice(eq + 1) };
  });
}

const PORT_SPEC = /^(\d+)(?:-(\d+))?(?:\/([A-Za-z]+))?$/;

/**
 * Checks one expanded EXPOSE word and returns it normalised
 * (`80` → `80/tcp`, protocol lower-cased); throws InvalidArgumentError.
 */
export function normalizePortSpec(word: string): string {
  const m = PORT_SPEC.exec(word);
  if (!m) throw new InvalidArgumentError(`Invalid port specification: ${JSON.stringify(word)}`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo < 0 || lo > 65535 || hi < 0 || hi > 65535) throw new InvalidArgumentError(`Invalid port specification: ${JSON.stringify(word)}`);
  if (hi < lo) throw new InvalidArgumentError(`Invalid port range: ${word}`);
  const proto = (m[3] ?? 'tcp').toLowerCase();
  if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') throw new InvalidArgumentError(`Invalid protocol: ${m[3]}`);
  return `${m[2] === undefined ? lo : `${lo}-${hi}`}/${proto}`;
}

/**
 * The image-config `ExposedPorts` keys for expanded EXPOSE words: ranges
 * become one key per port (`8000-8001/udp` → `8000/udp`, `8001/udp`).
 */
export function exposedPortKeys(words: readonly string[]): string[] {
  const keys: string[] = [];
  for (const w of words) {
    const spec = normalizePortSpec(w);
    const [ports, proto] = spec.split('/') as [string, string];
    const [lo, hi] = ports.includes('-') ? ports.split('-').map(Number) as [number, number] : [Number(ports), Number(ports)];
    for (let p = lo; p <= hi; p++) keys.push(`${p}/${proto}`);
  }
  return [...new Set(keys)];
}

function durationFlag(line: number, flags: Map<string, string | boolean>, name: string): number | null {
  const v = stringFlag(flags, name);
  if (v === null) return null;
  let ns: number;
  try {
    ns = parseDurationNs(v);
  } catch {
    fail(line, `HEALTHCHECK --${name}: invalid duration: ${v}`);
  }
  if (ns < 0) fail(line, `HEALTHCHECK --${name} cannot be negative`);
  if (ns !== 0 && ns < 1_000_000) fail(line, `HEALTHCHECK --${name} cannot be less than 1ms`);
  return ns;
}

const STAGE_NAME = /^[a-z][a-z0-9_.-]*$/;

function parseInstruction(logical: LogicalLine, escapeChar: string, inOnbuild = false): Instruction {
  const { line, text } = logical;
  const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(text);
  const keyword = m![1]!.toUpperCase();
  const args = (m![2] ?? '').trim();
  if (!KINDS.has(keyword)) fail(line, `unknown instruction: ${m![1]!}`);
  const kind = keyword as InstructionKind;
  const base = { line, original: text };
  if (args === '') fail(line, `${kind} requires at least one argument`);

  const { flags, rest } = takeFlags(kind, line, args);
  if (rest === '' && flags.size > 0) fail(line, `${kind} requires at least one argument`);

  switch (kind) {
    case 'FROM': {
      const words = rest.split(/\s+/);
      let alias: string | null = null;
      if (words.length === 3 && words[1]!.toUpperCase() === 'AS') {
        alias = words[2]!.toLowerCase();
        if (!STAGE_NAME.test(alias)) {
          fail(line, `invalid name for build stage: ${JSON.stringify(words[2])}, name can't start with a number or contain symbols`);
        }
      } else if (words.length !== 1) {
        fail(line, 'FROM requires either one or three arguments');
      }
      return { kind, ...base, image: words[0]!, alias, platform: stringFlag(flags, 'platform') };
    }
    case 'RUN':
    case 'CMD':
    case 'ENTRYPOINT': {
      const command = parseJsonArray(rest) ?? rest;
      if (kind === 'RUN' && typeof command === 'string') refuseHeredoc(line, command);
      return { kind, ...base, command };
    }
    case 'SHELL': {
      const shell = parseJsonArray(rest);
      if (shell === null) fail(line, 'SHELL requires the arguments to be in JSON form');
      if (shell.length === 0) fail(line, 'SHELL requires at least one argument');
      return { kind, ...base, shell };
    }
    case 'ENV':
    case 'LABEL':
      return { kind, ...base, pairs: parseKeyValues(kind, line, rest, escapeChar) };
    case 'ARG': {
      const decls = splitWords(rest, escapeChar).map((w): ArgDeclaration => {
        const eq = w.indexOf('=');
        if (eq === 0) fail(line, 'ARG names can not be blank');
        return eq < 0 ? { name: w, default: null } : { name: w.slice(0, eq), default: w.slice(eq + 1) };
      });
      return { kind, ...base, args: decls };
    }
    case 'WORKDIR':
      return { kind, ...base, path: rest };
    case 'USER':
      return { kind, ...base, user: rest };
    case 'STOPSIGNAL':
      if (/\s/.test(rest)) fail(line, 'STOPSIGNAL requires exactly one argument');
      return { kind, ...base, signal: rest };
    case 'MAINTAINER':
      return { kind, ...base, maintainer: rest };
    case 'EXPOSE': {
      const ports = splitWords(rest, escapeChar);
      for (const p of ports) {
        if (/[$'"]/.test(p) || p.includes(escapeChar)) continue; // checked after expansion
        try {
          normalizePortSpec(p);
        } catch (e) {
          fail(line, (e as Error).message);
        }
      }
      return { kind, ...base, ports };
    }
    case 'VOLUME': {
      const json = parseJsonArray(rest);
      const paths = json ?? splitWords(rest, escapeChar);
      if (paths.length === 0 || paths.some((p) => p.trim() === '')) fail(line, 'VOLUME specified can not be an empty string');
      return { kind, ...base, paths, json: json !== null };
    }
    case 'COPY':
    case 'ADD': {
      const json = parseJsonArray(rest);
      if (json === null) refuseHeredoc(line, rest);
      const words = json ?? splitWords(rest, escapeChar);
      if (words.length < 2) {
        fail(line, `${kind} requires at least two arguments, but only one was provided. Destination could not be determined`);
      }
      const fields: CopyFields = {
        sources: words.slice(0, -1),
        dest: words[words.length - 1]!,
        chown: stringFlag(flags, 'chown'),
        chmod: stringFlag(flags, 'chmod'),
        link: flags.get('link') === true,
        json: json !== null,
      };
      if (kind === 'ADD') return { kind, ...base, ...fields };
      return { kind, ...base, ...fields, from: stringFlag(flags, 'from') };
    }
    case 'HEALTHCHECK': {
      const hm = /^(\S+)(?:\s+([\s\S]*))?$/.exec(rest)!;
      const type = hm[1]!.toUpperCase();
      const after = (hm[2] ?? '').trim();
      const none = {
        interval: null, timeout: null, startPeriod: null, startInterval: null, retries: null,
      };
      if (type === 'NONE') {
        if (after !== '' || flags.size > 0) fail(line, 'HEALTHCHECK NONE takes no arguments');
        return { kind, ...base, test: ['NONE'], command: null, ...none };
      }
      if (type !== 'CMD') fail(line, `unknown type ${JSON.stringify(hm[1])} in HEALTHCHECK (try CMD)`);
      if (after === '') fail(line, 'missing command after HEALTHCHECK CMD');
      const command = parseJsonArray(after) ?? after;
      if (Array.isArray(command) && command.length === 0) fail(line, 'missing command after HEALTHCHECK CMD');
      let retries: number | null = null;
      const r = stringFlag(flags, 'retries');
      if (r !== null) {
        if (!/^-?\d+$/.test(r)) fail(line, `HEALTHCHECK --retries: invalid number: ${r}`);
        retries = Number(r);
        if (retries < 0) fail(line, 'HEALTHCHECK --retries cannot be negative');
      }
      return {
        kind,
        ...base,
        test: typeof command === 'string' ? ['CMD-SHELL', command] : ['CMD', ...command],
        command,
        interval: durationFlag(line, flags, 'interval'),
        timeout: durationFlag(line, flags, 'timeout'),
        startPeriod: durationFlag(line, flags, 'start-period'),
        startInterval: durationFlag(line, flags, 'start-interval'),
        retries,
      };
    }
    case 'ONBUILD': {
      if (inOnbuild) fail(line, 'chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      const inner = /^(\S+)/.exec(rest)![1]!.toUpperCase();
      if (inner === 'ONBUILD') fail(line, 'chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      if (inner === 'FROM' || inner === 'MAINTAINER') fail(line, `${inner} isn't allowed as an ONBUILD trigger`);
      const trigger = parseInstruction({ line, text: rest }, escapeChar, true);
      return { kind, ...base, trigger, expression: rest, unsupported: true };
    }
  }
}

/**
 * Parses a Dockerfile. Throws InvalidArgumentError with a message such as
 * `Dockerfile:7: unknown instruction: FOO` on any error.
 */
export function parseDockerfile(text: string): Dockerfile {
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/);
  const { escapeChar, next } = readDirectives(lines);
  const logical = logicalLines(lines, next, escapeChar);
  if (logical.length === 0) throw new InvalidArgumentError('Dockerfile has no instructions');

  const globalArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  const names = new Set<string>();
  for (const l of logical) {
    const instr = parseInstruction(l, escapeChar);
    const current = stages[stages.length - 1];
    if (instr.kind === 'FROM') {
      if (instr.alias !== null) {
        if (names.has(instr.alias)) fail(instr.line, `duplicate stage name: ${JSON.stringify(instr.alias)}`);
        names.add(instr.alias);
      }
      stages.push({ index: stages.length, name: instr.alias, from: instr, instructions: [] });
    } else if (current) {
      current.instructions.push(instr);
    } else if (instr.kind === 'ARG') {
      globalArgs.push(instr);
    } else {
      fail(instr.line, `${instr.kind} before the first FROM (only ARG may come before FROM)`);
    }
  }
  if (stages.length === 0) throw new InvalidArgumentError('Dockerfile has no FROM instruction');
  return { globalArgs, stages, escapeChar };
}

/**
 * The stage `--target` or `COPY --from` names: by name (case-insensitive) or
 * by index; null when there is none.
 */
export function findStage(df: Dockerfile, nameOrIndex: string): Stage | null {
  const lower = nameOrIndex.toLowerCase();
  const byName = df.stages.find((s) => s.name === lower);
  if (byName) return byName;
  if (/^\d+$/.test(nameOrIndex)) return df.stages[Number(nameOrIndex)] ?? null;
  return null;
}
