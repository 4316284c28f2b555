/**
 * A container's root filesystem: an overlayfs mount with the image's layer
 * snapshots as read-only lower directories and the container's own upper and
 * work directories. Only the upper directory is the container's; a new
 * container costs two empty directories until it writes.
 */
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { InternalError } from '../core/errors.js';
import { MNT_DETACH, mount, umountAsync } from '../native/native.js';

export interface RootfsPaths {
  upper: string;
  work: string;
  merged: string;
}

export interface RootfsOptions {
  /**
   * Mount with overlayfs' `volatile` option: no sync of the upper file system,
   * neither on fsync inside the container nor when the overlay is unmounted
   * (which otherwise syncs the whole file system under the daemon root, and
   * waits for everything else written there). For containers whose writable
   * layer is thrown away when they exit (`--rm`), as Podman does for them and
   * CRI-O for all containers.
   */
  volatile?: boolean;
}

/** Whether the kernel knows `volatile` (Linux 5.10+); learnt from the first mount that asks for it. */
let volatileSupported: boolean | null = null;

export async function mountRootfs(lowerDirs: string[], paths: RootfsPaths, options: RootfsOptions = {}): Promise<void> {
  // The daemon's own directories: synchronous, cheaper than three thread-pool round trips.
  mkdirSync(paths.upper, { recursive: true, mode: 0o755 });
  mkdirSync(paths.work, { recursive: true, mode: 0o700 });
  mkdirSync(paths.merged, { recursive: true, mode: 0o755 });
  if (isMountedOver(paths.merged)) return;
  const data = `lowerdir=${lowerDirs.join(':')},upperdir=${paths.upper},workdir=${paths.work}`;
  if (data.length >= 4000) throw new InternalError('Too many image layers for one overlay mount');
  const volatile = !!options.volatile && volatileSupported !== false;
  if (volatile) {
    // A volatile mount leaves this marker behind and the kernel refuses the
    // next mount of the same upper while it is there (the upper may have
    // missed writes in a crash). The writable layer of a `--rm` container is
    // thrown away after a crash anyway, so a restart may reuse it.
    const marker = `${paths.work}/work/incompat/volatile`;
    if (existsSync(marker)) rmSync(marker, { recursive: true, force: true });
  }
  try {
    try {
      mount('overlay', paths.merged, 'overlay', 0, volatile ? `${data},volatile` : data);
      if (volatile) volatileSupported = true;
    } catch (e) {
      if (!volatile || volatileSupported || (e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
      // An older kernel: the option is unknown. Mount as before, and never ask again.
      mount('overlay', paths.merged, 'overlay', 0, data);
      volatileSupported = false;
    }
  } catch (e) {
    throw new InternalError(`Cannot mount container root filesystem: ${(e as Error).message}`, { cause: e });
  }
}

export async function unmountRootfs(merged: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    try {
      await umountAsync(merged, i < 40 ? 0 : MNT_DETACH);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EINVAL' || code === 'ENOENT') return; // not (or no longer) a mount point
      if (code !== 'EBUSY') throw e;
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    if (!isMountedOver(merged)) return; // another mount could have been stacked on the same point
  }
}

/**
 * Whether a file system is mounted on `dir`: its device differs from its
 * parent's. Two stat calls instead of reading /proc/self/mountinfo, on every
 * container start and exit. (A bind mount from the same file system is not
 * seen; rootfs mounts are overlays, which always have their own device.)
 */
export function isMountedOver(dir: string): boolean {
  try {
    return statSync(dir).dev !== statSync(dirname(dir)).dev;
  } catch {
    return false;
  }
}
