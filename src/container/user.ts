/**
 * Resolving `--user` (`uid`, `uid:gid`, `name`, `name:group`) against the
 * container's own /etc/passwd and /etc/group, as Docker does at start.
 */
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { resolveGuestPath } from '../vm/guest/root-path.js';
import { InvalidArgumentError } from '../core/errors.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

export function parsePasswd(text: string): PasswdEntry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 7 || line.startsWith('#')) return [];
    return [{ name: f[0] ?? '', uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '/' }];
  });
}

export function parseGroup(text: string): GroupEntry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 4 || line.startsWith('#')) return [];
    return [{ name: f[0] ?? '', gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }];
  });
}

// Two tiny files on every container start: synchronous syscalls cost less
// than a thread-pool round trip for each path component and read.
function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

const syncIo = {
  lstat: async (p: string) => {
    try {
      return lstatSync(p);
    } catch {
      return null;
    }
  },
  readlink: async (p: string) => readlinkSync(p),
};

export function resolveUserFrom(user: string, passwdText: string, groupText: string): ResolvedUser {
  const passwd = parsePasswd(passwdText);
  const groups = parseGroup(groupText);
  const [u = '', g] = (user || '0').split(':');
  const isNum = (s: string) => /^\d+$/.test(s);
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (isNum(u)) {
    uid = Number(u);
    entry = passwd.find((p) => p.uid === uid);
  } else {
    entry = passwd.find((p) => p.name === u);
    if (!entry) throw new InvalidArgumentError(`Unable to find user ${u}: no matching entries in passwd file`);
    uid = entry.uid;
  }
  let gid = entry?.gid ?? 0;
  if (g !== undefined && g !== '') {
    if (isNum(g)) gid = Number(g);
    else {
      const ge = groups.find((x) => x.name === g);
      if (!ge) throw new InvalidArgumentError(`Unable to find group ${g}: no matching entries in group file`);
      gid = ge.gid;
    }
  }
  if (uid > 0xfffffffe || gid > 0xfffffffe) throw new InvalidArgumentError(`Invalid user: ${user}`);
  const additionalGids = entry
    ? groups.filter((x) => x.members.includes(entry!.name) && x.gid !== gid).map((x) => x.gid)
    : [];
  return { uid, gid, additionalGids, home: entry?.home ?? '/' };
}

export async function resolveUser(rootfs: string, user: string): Promise<ResolvedUser> {
  // Symlinks in the image resolve inside the rootfs (an /etc/passwd linking to /etc/shadow must not reach the host's).
  const inRoot = async (p: string) => path.join(rootfs, await resolveGuestPath(rootfs, p, syncIo));
  const passwd = readOrEmpty(await inRoot('/etc/passwd'));
  const group = readOrEmpty(await inRoot('/etc/group'));
  return resolveUserFrom(user, passwd, group);
}
