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

/** Parses `-v SRC:DST[:ro|rw]` for host bind mounts. */
export function parseBind(bind: string): { source: string; destination: string; readonly: boolean } {
  const parts = bind.split(':');
  if (parts.length < 2 || parts.length > 3) throw new InvalidArgumentError(`Invalid volume specification: '${bind}'`);
  const [source = '', destination = '', mode = 'rw'] = parts;
  if (!destination.startsWith('/')) {
    throw new InvalidArgumentError(`Invalid volume specification: '${bind}': destination must be an absolute path`);
  }
  if (!source.startsWith('/')) {
    throw new InvalidArgumentError(`Invalid volume specification: '${bind}': named volumes are not supported yet, use an absolute host path`);
  }
  const opts = mode.split(',');
  for (const o of opts) {
    if (!['ro', 'rw', 'z', 'Z', 'rprivate', 'private', 'rslave', 'slave', 'rshared', 'shared'].includes(o)) {
      throw new InvalidArgumentError(`Invalid volume specification: '${bind}': invalid mode: ${o}`);
    }
  }
  return { source, destination, readonly: opts.includes('ro') };
}
