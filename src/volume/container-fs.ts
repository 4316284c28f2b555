/**
 * A container's file tree seen from the host, for `cp` and volume
 * pre-population: container paths are resolved one component at a time
 * against a root directory (and the host sources of the container's mounts),
 * with every symlink met on the way re-interpreted inside that root: an
 * absolute target restarts at the container's `/`, `..` never climbs above it.
 * The kernel is therefore only ever handed paths whose directory components
 * have been lstat-checked to be real directories, so nothing resolved here
 * can name a host file outside the container's view.
 *
 * Node has no openat2(RESOLVE_IN_ROOT); what remains is the classic race of a
 * process inside a running container swapping a checked directory for a
 * symlink between the check and the use (see docs/storage.md).
 */
import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, NotFoundError } from '../core/errors.js';

/** A mount inside the container: container path → host path (a directory or a file). */
export interface PathMount {
  destination: string;
  source: string;
}

export interface Resolved {
  /** Components of the resolved container path ([] is `/`). */
  parts: string[];
  /** The host path to operate on. */
  host: string;
  /** lstat of `host`, undefined when it does not exist. */
  stat: fs.Stats | undefined;
}

/** Linux's limit on symlinks followed in one lookup. */
const MAX_LINKS = 40;

/** Lexical components of a path; `.`/empty dropped, `..` kept for the resolver. */
export function splitPath(p: string): string[] {
  if (p.includes('\0')) throw new InvalidArgumentError('Invalid path: contains NUL');
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/** Whether a path asks for its last component to be followed: a trailing `/` or `/.`. */
export function endsWithSeparator(p: string): boolean {
  return p.endsWith('/') || p.endsWith('/.') || p === '.';
}

/**
 * The name of the top entry of a container path's archive: its last
 * component, or `.` (meaning "the contents") for `dir/.`, `/` and `..` endings.
 */
export function archiveRootName(p: string): string {
  const parts = splitPath(p);
  const last = parts[parts.length - 1];
  return p.endsWith('/.') || p === '.' || last === undefined || last === '..' ? '.' : last;
}

export interface FsOps {
  lstat(p: string): fs.Stats | undefined;
  readlink(p: string): string;
}

const realOps: FsOps = {
  lstat: (p) => fs.lstatSync(p, { throwIfNoEntry: false }),
  readlink: (p) => fs.readlinkSync(p),
};

export class ContainerFs {
  readonly #mounts: Array<{ parts: string[]; source: string }>;

  /**
   * @param root host directory that is the container's `/` (a mounted rootfs,
   *   or `/proc/<pid>/root` of a running container, which already shows its mounts)
   * @param mounts mounts to overlay on `root` (for a stopped container)
   */
  constructor(
    readonly root: string,
    mounts: PathMount[] = [],
    private readonly ops: FsOps = realOps,
  ) {
    // Deepest first, so the longest matching destination wins.
    this.#mounts = mounts
      .map((m) => ({ parts: splitPath(m.destination).filter((c) => c !== '..'), source: m.source }))
      .sort((a, b) => b.parts.length - a.parts.length);
  }

  /** The host path of container path components that contain no symlink. */
  hostPath(parts: string[]): string {
    for (const m of this.#mounts) {
      if (m.parts.length <= parts.length && m.parts.every((c, i) => parts[i] === c)) {
        const rest = parts.slice(m.parts.length);
        return rest.length ? path.join(m.source, ...rest) : m.source;
      }
    }
    return parts.length ? path.join(this.root, ...parts) : this.root;
  }

  /**
   * Resolves a container path. Intermediate components must exist and be
   * directories (after following symlinks, inside the root); the last one is
   * followed only when `followLast` (callers pass `endsWithSeparator(p)` for
   * Docker's semantics) and may be missing.
   */
  resolve(p: string, followLast: boolean): Resolved {
    return this.#walk(p, followLast, false);
  }

  /**
   * Like `resolve` with every component followed, creating missing
   * directories (0755) on the way: the directory `p` names, made if needed.
   */
  mkdirAll(p: string): Resolved {
    return this.#walk(p, true, true);
  }

  #walk(p: string, followLast: boolean, create: boolean): Resolved {
    let resolved: string[] = [];
    let pending = splitPath(p);
    let links = 0;
    let stat: fs.Stats | undefined = this.ops.lstat(this.hostPath([]));
    while (pending.length > 0) {
      const c = pending.shift() as string;
      if (c === '..') {
        resolved.pop();
        stat = this.ops.lstat(this.hostPath(resolved));
        continue;
      }
      const isLast = pending.length === 0;
      const candidate = [...resolved, c];
      const host = this.hostPath(candidate);
      let st = this.ops.lstat(host);
      if (st?.isSymbolicLink() && (!isLast || followLast)) {
        if (++links > MAX_LINKS) throw new InvalidArgumentError(`Too many levels of symbolic links: ${p}`);
        const target = this.ops.readlink(host);
        if (target.startsWith('/')) resolved = [];
        pending = [...splitPath(target), ...pending];
        stat = this.ops.lstat(this.hostPath(resolved));
        continue;
      }
      if (!st && create) {
        // The parent is a checked directory and `c` a plain name: mkdir does not follow.
        fs.mkdirSync(host, { mode: 0o755 });
        st = this.ops.lstat(host);
      }
      if (!st && !isLast) throw new NotFoundError(`No such file or directory: ${p}`);
      if (st && (!isLast || create) && !st.isDirectory()) throw new InvalidArgumentError(`Not a directory: ${p}`);
      resolved = candidate;
      stat = st;
    }
    if (create && stat && !stat.isDirectory()) throw new InvalidArgumentError(`Not a directory: ${p}`);
    return { parts: resolved, host: this.hostPath(resolved), stat };
  }

  /** The container path of resolved components. */
  static display(parts: string[]): string {
    return `/${parts.join('/')}`;
  }
}
