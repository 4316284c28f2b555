/**
 * ARG scoping as Docker does it (pure, no I/O).
 *
 * - ARGs before the first FROM are global: only FROM lines can use them. A
 *   stage sees one only after re-declaring it (`ARG NAME`, no default needed:
 *   it then takes the global value).
 * - An ARG's value is the `--build-arg` value if one was given, else its
 *   default (expanded with what is in scope before that ARG line), else —
 *   for an in-stage ARG without default — the global ARG's value; otherwise
 *   the ARG is declared but has no value (not set for RUN, empty in `$X`).
 * - An ARG is visible from its declaration to the end of its stage.
 * - ENV always wins over an ARG of the same name.
 * - The predefined proxy args (HTTP_PROXY, https_proxy, NO_PROXY, ...) need
 *   no declaration: a `--build-arg` for them reaches RUN and substitution
 *   directly, and stays out of cache keys and history unless declared.
 * - A `--build-arg` is consumed when an ARG of a built stage declares it, or
 *   when a global ARG of that name is used by a FROM line; the rest are
 *   reported (`[Warning] One or more build-args [x] were not consumed`).
 */
import type { ArgInstruction, FromInstruction, Instruction, Stage } from './parser.js';
import { expandInstruction } from './resolve.js';

/** Build args Docker accepts without an ARG instruction. */
export const PROXY_ARGS: readonly string[] = [
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy',
  'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
];
const PROXY = new Set(PROXY_ARGS);

export function isProxyArg(name: string): boolean {
  return PROXY.has(name);
}

export interface BuildArgsOptions {
  /** `Dockerfile.globalArgs`. */
  globalArgs: readonly ArgInstruction[];
  /** The `--build-arg` values. */
  buildArgs: ReadonlyMap<string, string>;
  /**
   * Values the builder defines itself (e.g. TARGETPLATFORM, BUILDARCH):
   * visible to FROM, usable in a stage after `ARG NAME`, never reported as
   * unused. A `--build-arg` or a default overrides them.
   */
  builtinArgs?: ReadonlyMap<string, string>;
  /** `Dockerfile.escapeChar`. */
  escapeChar?: string;
}

/** The ARG state of one build: global scope, consumption of `--build-arg`s. */
export class BuildArgs {
  readonly buildArgs: ReadonlyMap<string, string>;
  readonly builtinArgs: ReadonlyMap<string, string>;
  readonly escapeChar: string;
  /** Global ARGs by name; undefined = declared without a value. */
  readonly #global = new Map<string, string | undefined>();
  readonly #consumed = new Set<string>();

  constructor(o: BuildArgsOptions) {
    this.buildArgs = o.buildArgs;
    this.builtinArgs = o.builtinArgs ?? new Map();
    this.escapeChar = o.escapeChar ?? '\\';
    for (const instr of o.globalArgs) {
      // Every default on one line sees the scope from before that line.
      const expanded = expandInstruction(instr, this.fromVars(), { escapeChar: this.escapeChar });
      for (const a of expanded.args) {
        this.#global.set(a.name, this.buildArgs.get(a.name) ?? a.default ?? this.builtinArgs.get(a.name));
      }
    }
  }

  /** The variables FROM lines may use: builtin args, then global ARGs with a value. */
  fromVars(): Map<string, string> {
    const vars = new Map(this.builtinArgs);
    for (const [k, v] of this.#global) if (v !== undefined) vars.set(k, v);
    return vars;
  }

  /** The global ARGs (undefined = declared without a value). */
  globalValues(): ReadonlyMap<string, string | undefined> {
    return this.#global;
  }

  /** Expands a FROM line with the global scope; the build args it uses count as consumed. */
  expandFrom(from: FromInstruction): FromInstruction {
    const used = new Set<string>();
    const out = expandInstruction(from, this.fromVars(), { escapeChar: this.escapeChar, used });
    for (const name of used) if (this.#global.has(name)) this.#consumed.add(name);
    return out;
  }

  /** A fresh, empty ARG scope for one stage. */
  stage(): StageArgs {
    return new StageArgs(this, this.#global, this.#consumed);
  }

  /** `--build-arg` names nothing consumed (proxy and builtin args excluded), sorted. */
  unconsumed(): string[] {
    return [...this.buildArgs.keys()]
      .filter((k) => !this.#consumed.has(k) && !PROXY.has(k) && !this.builtinArgs.has(k))
      .sort();
  }

  /** Docker's warning for unconsumed build args, or null when all were used. */
  unconsumedWarning(): string | null {
    const names = this.unconsumed();
    return names.length === 0 ? null : `[Warning] One or more build-args [${names.join(' ')}] were not consumed`;
  }
}

/** The ARGs of one stage, declared as its ARG instructions run. */
export class StageArgs {
  /** Declared in this stage; undefined = declared without a value. */
  readonly #declared = new Map<string, string | undefined>();

  constructor(
    private readonly build: BuildArgs,
    private readonly global: ReadonlyMap<string, string | undefined>,
    private readonly consumed: Set<string>,
  ) {}

  /**
   * Runs an ARG instruction. `env` is the stage's environment at that point
   * (image ENV plus ENV instructions), used to expand the defaults.
   */
  declare(instr: ArgInstruction, env: ReadonlyMap<string, string> = new Map()): void {
    const expanded = expandInstruction(instr, this.vars(env), { escapeChar: this.build.escapeChar });
    for (const a of expanded.args) {
      this.consumed.add(a.name);
      const value = this.build.buildArgs.get(a.name) ?? a.default ?? this.global.get(a.name) ?? this.build.builtinArgs.get(a.name);
      this.#declared.set(a.name, value);
    }
  }

  isDeclared(name: string): boolean {
    return this.#declared.has(name);
  }

  /** The stage's declared ARGs with a value (for cache keys and history). */
  values(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [k, v] of this.#declared) if (v !== undefined) out.set(k, v);
    return out;
  }

  /**
   * What RUN sees besides ENV: declared ARGs with a value plus proxy
   * `--build-arg`s. ENV must still override these.
   */
  runArgs(): Map<string, string> {
    const out = new Map<string, string>();
    for (const name of PROXY_ARGS) {
      const v = this.build.buildArgs.get(name);
      if (v !== undefined) out.set(name, v);
    }
    for (const [k, v] of this.values()) out.set(k, v);
    return out;
  }

  /** The variables for substitution in this stage: ARGs (and proxies), overridden by `env`. */
  vars(env: ReadonlyMap<string, string> = new Map()): Map<string, string> {
    const out = this.runArgs();
    for (const [k, v] of env) out.set(k, v);
    return out;
  }
}

/** Parses `KEY=value` environment entries (image config `Env`) into a map. */
export function envMap(entries: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of entries) {
    const i = e.indexOf('=');
    if (i > 0) out.set(e.slice(0, i), e.slice(i + 1));
    else if (i < 0 && e !== '') out.set(e, '');
  }
  return out;
}

export interface ArgsAtInstruction {
  instruction: Instruction;
  /** The ARGs in scope when the instruction runs (declared with a value). */
  args: Map<string, string>;
  /** Everything substitution sees there: ARGs overridden by ENV. */
  vars: Map<string, string>;
}

/**
 * Walks a stage without running it and reports which ARGs are visible at each
 * instruction. `baseEnv` is the base image's environment; ENV instructions are
 * applied as they come.
 */
export function argsByInstruction(build: BuildArgs, stage: Stage, baseEnv: ReadonlyMap<string, string> = new Map()): ArgsAtInstruction[] {
  const scope = build.stage();
  const env = new Map(baseEnv);
  const out: ArgsAtInstruction[] = [];
  for (const instruction of stage.instructions) {
    out.push({ instruction, args: scope.values(), vars: scope.vars(env) });
    if (instruction.kind === 'ARG') scope.declare(instruction, env);
    else if (instruction.kind === 'ENV') {
      const e = expandInstruction(instruction, scope.vars(env), { escapeChar: build.escapeChar });
      for (const p of e.pairs) env.set(p.key, p.value);
    }
  }
  return out;
}
