/**
 * A container's root filesystem: an overlayfs mount with the image's layer
 * snapshots as read-only lower directories and the container's own upper and
 * work directories. Only the upper directory is the container's; a new
 * container costs two empty directories until it writes.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { InternalError } from '../core/errors.js';
import { MNT_DETACH, mount, umount } from '../native/native.js';

export interface RootfsPaths {
  upper: string;
  work: string;
  merged: string;
}

export async function mountRootfs(lowerDirs: string[], paths: RootfsPaths): Promise<void> {
  // The daemon's own directories: synchronous, cheaper than three thread-pool round trips.
  mkdirSync(paths.upper, { recursive: true, mode: 0o755 });
  mkdirSync(paths.work, { recursive: true, mode: 0o700 });
  mkdirSync(paths.merged, { recursive: true, mode: 0o755 });
  if (isMountPoint(paths.merged)) return;
  const data = `lowerdir=${lowerDirs.join(':')},upperdir=${paths.upper},workdir=${paths.work}`;
  if (data.length >= 4000) throw new InternalError('Too many image layers for one overlay mount');
  try {
    mount('overlay', paths.merged, 'overlay', 0, data);
  } catch (e) {
    throw new InternalError(`Cannot mount container root filesystem: ${(e as Error).message}`, { cause: e });
  }
}

export async function unmountRootfs(merged: string): Promise<void> {
  for (let i = 0; i < 50 && isMountPoint(merged); i++) {
    try {
      umount(merged, i < 40 ? 0 : MNT_DETACH);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EINVAL' || code === 'ENOENT') return;
      if (code !== 'EBUSY') throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Every mount point at or below `prefix` in this mount namespace. */
export function mountsUnder(prefix: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const decoded = mp.replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (decoded === prefix || decoded.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`)) out.push(decoded);
  }
  return out;
}

export function isMountPoint(p: string): boolean {
  return mountsUnder(p).includes(p);
}
