/**
 * Applies variable substitution to a parsed instruction, word by word, in
 * exactly the places Docker does (pure, no I/O).
 *
 * Expanded: FROM (image, --platform; pass the global ARGs only), ENV and
 * LABEL (keys and values), ARG (defaults), WORKDIR, USER, STOPSIGNAL, EXPOSE
 * (may split into several ports), VOLUME, COPY/ADD (sources, destination,
 * --from, --chown, --chmod). Left alone: RUN, CMD, ENTRYPOINT, SHELL,
 * HEALTHCHECK, MAINTAINER and ONBUILD (the trigger is expanded only when it
 * runs, which Vessel does not do).
 *
 * In the result every expanded field holds its final value: quotes and
 * escapes are gone, EXPOSE ports are normalised (`80` → `80/tcp`).
 */
import { InvalidArgumentError, errorMessage } from '../../core/errors.js';
import { expand, expandWords, type ExpandOptions } from './expand.js';
import { normalizePortSpec, type Instruction } from './parser.js';

export interface ResolveOptions {
  /** The Dockerfile's escape character (`Dockerfile.escapeChar`). */
  escapeChar?: string;
  /** Collects the names of the variables referred to (see `ExpandOptions.used`). */
  used?: Set<string>;
}

/**
 * Returns a copy of `instr` with its variables substituted from `vars` (for
 * a stage: the ARG values in scope overlaid by ENV, as `StageArgs.vars()`
 * gives). Throws InvalidArgumentError prefixed with `Dockerfile:N:`.
 */
export function expandInstruction<T extends Instruction>(instr: T, vars: ReadonlyMap<string, string>, options: ResolveOptions = {}): T {
  try {
    return expandUnchecked(instr, vars, options) as T;
  } catch (e) {
    if (e instanceof InvalidArgumentError && e.message.startsWith('Dockerfile:')) throw e;
    throw new InvalidArgumentError(`Dockerfile:${instr.line}: ${errorMessage(e)}`, { cause: e });
  }
}

function expandUnchecked(instr: Instruction, vars: ReadonlyMap<string, string>, options: ResolveOptions): Instruction {
  const o: ExpandOptions = { escapeChar: options.escapeChar, used: options.used };
  const x = (s: string): string => expand(s, vars, o);
  const xn = (s: string | null): string | null => (s === null ? null : x(s));
  switch (instr.kind) {
    case 'FROM': {
      const image = x(instr.image);
      if (image === '') throw new InvalidArgumentError(`base name (${instr.image}) should not be blank`);
      return { ...instr, image, platform: xn(instr.platform) };
    }
    case 'ENV':
    case 'LABEL':
      return {
        ...instr,
        pairs: instr.pairs.map((p) => {
          const key = x(p.key);
          if (key === '') throw new InvalidArgumentError(`${instr.kind} names can not be blank`);
          return { key, value: x(p.value) };
        }),
      };
    case 'ARG':
      return { ...instr, args: instr.args.map((a) => ({ name: a.name, default: xn(a.default) })) };
    case 'WORKDIR':
      return { ...instr, path: x(instr.path) };
    case 'USER':
      return { ...instr, user: x(instr.user) };
    case 'STOPSIGNAL':
      return { ...instr, signal: x(instr.signal) };
    case 'EXPOSE':
      return { ...instr, ports: instr.ports.flatMap((p) => expandWords(p, vars, o)).map(normalizePortSpec) };
    case 'VOLUME': {
      const paths = instr.paths.map((p) => expand(p, vars, { ...o, quotes: !instr.json }));
      if (paths.some((p) => p === '')) throw new InvalidArgumentError('VOLUME specified can not be an empty string');
      return { ...instr, paths };
    }
    case 'COPY':
    case 'ADD': {
      const w = (s: string): string => expand(s, vars, { ...o, quotes: !instr.json });
      const common = {
        sources: instr.sources.map(w),
        dest: w(instr.dest),
        chown: xn(instr.chown),
        chmod: xn(instr.chmod),
      };
      if (instr.kind === 'ADD') return { ...instr, ...common };
      return { ...instr, ...common, from: xn(instr.from) };
    }
    case 'RUN':
    case 'CMD':
    case 'ENTRYPOINT':
    case 'SHELL':
    case 'HEALTHCHECK':
    case 'MAINTAINER':
    case 'ONBUILD':
      return instr;
  }
}
