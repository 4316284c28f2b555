/**
 * What a container actually runs: the image's defaults merged with the
 * user's create request (Docker's rules), as pure functions.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { ImageConfig } from '../image/oci.js';
import { DEFAULT_PATH } from '../image/oci.js';
import type { ContainerSpec } from './model.js';

export interface EffectiveProcess {
  path: string;
  args: string[];
  env: string[];
  cwd: string;
  user: string;
  tty: boolean;
}

/** Env lists where later entries override earlier ones by key. */
export function mergeEnv(...lists: Array<string[] | undefined | null>): string[] {
  const map = new Map<string, string>();
  for (const list of lists) {
    for (const e of list ?? []) {
      const i = e.indexOf('=');
      const key = i < 0 ? e : e.slice(0, i);
      if (!key) throw new InvalidArgumentError(`Invalid environment variable: ${e}`);
      if (i < 0) continue; // `KEY` without a value: nothing to set (the CLI resolves it)
      map.set(key, e);
    }
  }
  if (!map.has('PATH')) map.set('PATH', `PATH=${DEFAULT_PATH}`);
  return [...map.values()];
}

export function effectiveProcess(image: ImageConfig, spec: ContainerSpec): EffectiveProcess {
  const ic = image.config ?? {};
  const c = spec.Config;
  // A user-given entrypoint drops the image's Cmd, as in Docker.
  const entrypointGiven = c.Entrypoint !== undefined && c.Entrypoint !== null;
  let entrypoint = entrypointGiven ? (c.Entrypoint as string[]) : (ic.Entrypoint ?? []);
  if (entrypoint.length === 1 && entrypoint[0] === '') entrypoint = [];
  const cmd = c.Cmd && c.Cmd.length ? c.Cmd : entrypointGiven ? [] : (ic.Cmd ?? []);
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new InvalidArgumentError('No command specified');
  const cwd = c.WorkingDir || ic.WorkingDir || '/';
  if (!cwd.startsWith('/')) throw new InvalidArgumentError(`The working directory '${cwd}' is invalid: it needs to be an absolute path`);
  return {
    path: args[0] as string,
    args,
    env: mergeEnv(ic.Env, c.Env),
    cwd,
    user: c.User || ic.User || '',
    tty: !!c.Tty,
  };
}

/** Docker's rule for local volume names (at least two characters). */
export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export interface ParsedBind {
  /** `bind` for an absolute host path, `volume` for a named volume. */
  type: 'bind' | 'volume';
  /** The host path, or the volume name. */
  source: string;
  destination: string;
  readonly: boolean;
  /** The mode field as given (`ro`, `rw,z`...), '' when absent. */
  mode: string;
  /** `nocopy`: never pre-populate the volume from the image (volumes only). */
  nocopy: boolean;
}

/**
 * Parses `-v SRC:DST[:MODE]`: an absolute SRC is a host bind mount, any other
 * SRC a named volume (relative host paths are refused; the CLI makes them absolute).
 */
export function parseBind(bind: string): ParsedBind {
  const parts = bind.split(':');
  if (parts.length < 2 || parts.length > 3) throw new InvalidArgumentError(`Invalid volume specification: '${bind}'`);
  const [source = '', destination = '', mode = ''] = parts;
  if (!destination.startsWith('/')) {
    throw new InvalidArgumentError(`Invalid volume specification: '${bind}': destination must be an absolute path`);
  }
  const type = source.startsWith('/') ? 'bind' : 'volume';
  if (type === 'volume' && (source === '' || source.startsWith('.'))) {
    throw new InvalidArgumentError(`Invalid volume specification: '${bind}': relative host paths are not supported, use an absolute path`);
  }
  if (type === 'volume' && !VOLUME_NAME.test(source)) {
    throw new InvalidArgumentError(
      `Invalid volume specification: '${bind}': "${source}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed; use an absolute path for a host directory`,
    );
  }
  const opts = mode === '' ? [] : mode.split(',');
  const allowed = ['ro', 'rw', 'z', 'Z', 'rprivate', 'private', 'rslave', 'slave', 'rshared', 'shared', ...(type === 'volume' ? ['nocopy'] : [])];
  for (const o of opts) {
    if (!allowed.includes(o)) throw new InvalidArgumentError(`Invalid volume specification: '${bind}': invalid mode: ${o}`);
  }
  if (opts.includes('ro') && opts.includes('rw')) throw new InvalidArgumentError(`Invalid volume specification: '${bind}': invalid mode: ${mode}`);
  return { type, source, destination, readonly: opts.includes('ro'), mode, nocopy: opts.includes('nocopy') };
}
