/**
 * What a container asks to have mounted, as pure functions: `HostConfig.Binds`
 * (`-v`), `HostConfig.Mounts` (`--mount`, Docker's API objects), anonymous
 * volumes from `Config.Volumes` and the image's `VOLUME`s. `HostConfig.Tmpfs`
 * stays with spec.ts; it only takes part in the duplicate check here.
 *
 * Precedence is Docker's: an explicit mount (Binds, Mounts, Tmpfs) at a
 * destination replaces an anonymous volume there; two explicit mounts at one
 * destination are an error.
 */
import path from 'node:path';
import { InvalidArgumentError } from '../core/errors.js';
import type { ContainerSpec } from '../container/model.js';
import { parseBind, VOLUME_NAME } from '../container/run-config.js';
import { parseTmpfsOptions, type BindMount } from '../container/spec.js';

/** Docker Engine API `mount.Mount`. */
export interface ApiMount {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean } | null;
  VolumeOptions?: {
    NoCopy?: boolean;
    Labels?: Record<string, string> | null;
    DriverConfig?: { Name?: string; Options?: Record<string, string> | null } | null;
  } | null;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number } | null;
}

export interface PlannedBind {
  type: 'bind';
  source: string;
  destination: string;
  readonly: boolean;
  propagation: Propagation;
  mode: string;
  /** `-v` creates a missing host directory; `--mount type=bind` requires it to exist. */
  createSource: boolean;
}

export interface PlannedVolume {
  type: 'volume';
  /** '' for an anonymous volume (named when the container is created). */
  name: string;
  destination: string;
  readonly: boolean;
  nocopy: boolean;
  mode: string;
  /** Labels for a volume that `--mount` auto-creates. */
  labels: Record<string, string>;
}

export interface PlannedTmpfs {
  type: 'tmpfs';
  destination: string;
  readonly: boolean;
  /** Option string in `--tmpfs` form (`size=65536,mode=1777`). */
  options: string;
}

export type PlannedMount = PlannedBind | PlannedVolume | PlannedTmpfs;

type Propagation = NonNullable<BindMount['propagation']>;
const PROPAGATIONS: readonly string[] = ['rprivate', 'private', 'rslave', 'slave', 'rshared', 'shared'];

/** An absolute, normalised container path other than `/` (no trailing slash). */
export function cleanDestination(dest: string, what = 'mount'): string {
  if (typeof dest !== 'string' || !dest.startsWith('/')) {
    throw new InvalidArgumentError(`Invalid ${what} destination: ${String(dest)}: must be an absolute path`);
  }
  if (dest.includes('\0')) throw new InvalidArgumentError(`Invalid ${what} destination: contains NUL`);
  const clean = path.posix.normalize(dest).replace(/\/+$/, '');
  if (clean === '') throw new InvalidArgumentError(`Invalid ${what} destination: ${dest}: cannot be '/'`);
  return clean;
}

export function checkVolumeName(name: string): string {
  if (!VOLUME_NAME.test(name)) {
    throw new InvalidArgumentError(
      `Invalid volume name "${name}": only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed, at least 2 characters`,
    );
  }
  return name;
}

/** One `-v` entry. */
export function planBind(bind: string): PlannedBind | PlannedVolume {
  const b = parseBind(bind);
  const destination = cleanDestination(b.destination, 'volume');
  if (b.type === 'volume') {
    return { type: 'volume', name: b.source, destination, readonly: b.readonly, nocopy: b.nocopy, mode: b.mode, labels: {} };
  }
  const opts = b.mode ? b.mode.split(',') : [];
  const propagation = (opts.find((o) => PROPAGATIONS.includes(o)) ?? 'rprivate') as Propagation;
  return { type: 'bind', source: path.posix.normalize(b.source), destination, readonly: b.readonly, propagation, mode: b.mode, createSource: true };
}

/** One `HostConfig.Mounts` entry (Docker's validation rules and messages, capitalised). */
export function planApiMount(m: ApiMount): PlannedMount {
  if (!m || typeof m !== 'object') throw new InvalidArgumentError('Invalid mount config: not an object');
  const type = m.Type ?? '';
  const bad = (detail: string) => new InvalidArgumentError(`Invalid mount config for type "${type}": ${detail}`);
  if (!m.Target) throw bad('field Target must not be empty');
  const destination = cleanDestination(m.Target);
  const readonly = !!m.ReadOnly;
  switch (type) {
    case 'bind': {
      if (m.VolumeOptions) throw bad('field VolumeOptions must not be specified');
      if (m.TmpfsOptions) throw bad('field TmpfsOptions must not be specified');
      if (!m.Source) throw bad('field Source must not be empty');
      if (!m.Source.startsWith('/')) throw bad(`invalid mount path: '${m.Source}' mount path must be absolute`);
      const propagation = (m.BindOptions?.Propagation || 'rprivate') as Propagation;
      if (!PROPAGATIONS.includes(propagation)) throw bad(`invalid propagation mode: ${propagation}`);
      return { type: 'bind', source: path.posix.normalize(m.Source), destination, readonly, propagation, mode: '', createSource: false };
    }
    case 'volume': {
      if (m.BindOptions) throw bad('field BindOptions must not be specified');
      if (m.TmpfsOptions) throw bad('field TmpfsOptions must not be specified');
      const name = m.Source ?? '';
      if (name !== '') checkVolumeName(name);
      const driver = m.VolumeOptions?.DriverConfig?.Name ?? '';
      if (driver !== '' && driver !== 'local') throw bad(`volume driver not supported: ${driver}`);
      if (Object.keys(m.VolumeOptions?.DriverConfig?.Options ?? {}).length > 0) throw bad('volume driver options are not supported');
      return {
        type: 'volume',
        name,
        destination,
        readonly,
        nocopy: !!m.VolumeOptions?.NoCopy,
        mode: '',
        labels: { ...(m.VolumeOptions?.Labels ?? {}) },
      };
    }
    case 'tmpfs': {
      if (m.BindOptions) throw bad('field BindOptions must not be specified');
      if (m.VolumeOptions) throw bad('field VolumeOptions must not be specified');
      if (m.Source) throw bad('field Source must not be specified');
      const opts: string[] = [];
      if (readonly) opts.push('ro');
      const size = m.TmpfsOptions?.SizeBytes;
      if (size !== undefined && size !== 0) {
        if (!Number.isInteger(size) || size < 0) throw bad(`invalid size: ${size}`);
        opts.push(`size=${size}`);
      }
      const mode = m.TmpfsOptions?.Mode;
      if (mode !== undefined && mode !== 0) {
        if (!Number.isInteger(mode) || mode < 0) throw bad(`invalid mode: ${mode}`);
        opts.push(`mode=${(mode & 0o7777).toString(8)}`);
      }
      const options = opts.join(',');
      parseTmpfsOptions(options);
      return { type: 'tmpfs', destination, readonly, options };
    }
    case '':
      throw new InvalidArgumentError('Invalid mount config: mount type must be specified');
    default:
      throw new InvalidArgumentError(`Invalid mount config: mount type unknown: "${type}"`);
  }
}

/**
 * Every mount a container asks for, except `HostConfig.Tmpfs`: explicit ones
 * first (Binds, then Mounts), then anonymous volumes for `Config.Volumes` and
 * the image's volumes at destinations nothing else claims.
 */
export function planMounts(spec: ContainerSpec, imageVolumes?: Record<string, object> | null): PlannedMount[] {
  const hc = spec.HostConfig;
  const out: PlannedMount[] = [];
  const claimed = new Set<string>();
  const claim = (dest: string): void => {
    if (claimed.has(dest)) throw new InvalidArgumentError(`Duplicate mount point: ${dest}`);
    claimed.add(dest);
  };
  for (const dest of Object.keys(hc.Tmpfs ?? {})) claim(cleanDestination(dest, 'tmpfs'));
  for (const b of hc.Binds ?? []) {
    const m = planBind(b);
    claim(m.destination);
    out.push(m);
  }
  const mounts = hc.Mounts;
  if (mounts !== undefined && mounts !== null && !Array.isArray(mounts)) throw new InvalidArgumentError('HostConfig.Mounts must be a list');
  for (const raw of (mounts ?? []) as ApiMount[]) {
    const m = planApiMount(raw);
    claim(m.destination);
    out.push(m);
  }
  const anonymous = new Set<string>();
  for (const dest of [...Object.keys(imageVolumes ?? {}), ...Object.keys(spec.Config.Volumes ?? {})]) {
    const d = cleanDestination(dest, 'volume');
    if (claimed.has(d) || anonymous.has(d)) continue;
    anonymous.add(d);
    out.push({ type: 'volume', name: '', destination: d, readonly: false, nocopy: false, mode: '', labels: {} });
  }
  return out;
}
