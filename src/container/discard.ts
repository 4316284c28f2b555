/**
 * Removing a directory tree off the caller's critical path: the tree is first
 * renamed into the daemon's scratch directory (one syscall, so it is gone from
 * its old place at once), then deleted in the background by the native addon
 * on a thread-pool thread. The scratch
 * directory is emptied at daemon start-up, which also takes anything a crash
 * interrupted. Falls back to a plain recursive removal when the rename is not
 * possible (another filesystem, no scratch directory).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { removeTree } from '../native/native.js';

/** Background removals still running (tests and shutdown may wait for them). */
const pending = new Set<Promise<void>>();

export async function discardDir(dir: string, scratch: string): Promise<void> {
  const target = path.join(scratch, `discard-${path.basename(dir)}-${randomBytes(4).toString('hex')}`);
  try {
    await fs.rename(dir, target);
  } catch {
    // Already gone, no scratch directory, or another filesystem: remove in place.
    await fs.rm(dir, { recursive: true, force: true });
    return;
  }
  // On a thread-pool thread in one call (fs.rm costs the main thread a callback per entry).
  const p = removeTree(target)
    .catch(() => fs.rm(target, { recursive: true, force: true }))
    .catch(() => undefined)
    .finally(() => pending.delete(p));
  pending.add(p);
}

/** Resolves once every background removal started so far has finished. */
export async function discardsSettled(): Promise<void> {
  await Promise.all([...pending]);
}
