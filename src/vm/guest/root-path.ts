/**
 * Path resolution inside an unpacked root file system, following symlinks
 * the way the guest would see them (absolute targets are relative to the
 * root, `..` never leaves it). Used to place files beside an image's own
 * (`/sbin` is a symlink to `usr/sbin` in merged-/usr images).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

const MAX_LINKS = 40;

export type Lstat = (p: string) => Promise<{ isSymbolicLink(): boolean } | null>;
export type Readlink = (p: string) => Promise<string>;

/**
 * Resolves `guestPath` (absolute, as seen in the guest) under `root`;
 * returns the guest path of the result, whether it exists or not (missing
 * trailing components are kept as given).
 */
export async function resolveGuestPath(root: string, guestPath: string, io: { lstat: Lstat; readlink: Readlink } = hostIo): Promise<string> {
  const pending = guestPath.split('/').filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (pending.length) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const guest = '/' + [...done, part].join('/');
    const st = await io.lstat(path.join(root, guest));
    if (st?.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw new Error(`Too many symbolic links resolving ${guestPath}`);
      const target = await io.readlink(path.join(root, guest));
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    done.push(part);
  }
  return '/' + done.join('/');
}

const hostIo = {
  lstat: (p: string) => fs.lstat(p).catch(() => null),
  readlink: (p: string) => fs.readlink(p),
};
