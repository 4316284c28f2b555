/**
 * Removing a directory tree off the caller's critical path: the tree is first
 * renamed into the daemon's scratch directory (one syscall, so it is gone from
 * its old place at once), then deleted in the background by the native addon
 * on a thread-pool thread. The scratch
 * directory is emptied at daemon start-up, which also takes anything a crash
 * interrupted. When the rename is not possible (another filesystem, no
 * scratch directory) the tree is removed where it is, in the background too.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs, renameSync } from 'node:fs';
import path from 'node:path';
import { removeTree } from '../native/native.js';

/** Background removals still running (tests and shutdown may wait for them). */
const pending = new Set<Promise<void>>();

export function discardDir(dir: string, scratch: string): void {
  const target = path.join(scratch, `discard-${path.basename(dir)}-${randomBytes(4).toString('hex')}`);
  let doomed = target;
  try {
    // One syscall on the caller's thread: cheaper than a thread-pool round trip.
    renameSync(dir, target);
  } catch {
    // Already gone, no scratch directory, or another filesystem: remove it in place, in the background too.
    doomed = dir;
  }
  // On a thread-pool thread in one call (fs.rm costs the main thread a callback per entry).
  const p = removeTree(doomed)
    .catch(() => fs.rm(doomed, { recursive: true, force: true }))
    .catch(() => undefined)
    .finally(() => pending.delete(p));
  pending.add(p);
}

/** Resolves once every background removal started so far has finished. */
export async function discardsSettled(): Promise<void> {
  await Promise.all([...pending]);
}
