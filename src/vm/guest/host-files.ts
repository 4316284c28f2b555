/**
 * Host files the guest pieces are made of: the static busybox, dynamically
 * linked programs with the shared libraries `ldd` resolves for them, and the
 * cache conventions (content hashes, publish-by-rename).
 */
import { createHash } from 'node:crypto';
import { constants as fsc, promises as fs } from 'node:fs';
import path from 'node:path';
import { CommandError, run } from '../../core/exec.js';
import { FailedPreconditionError, UnavailableError } from '../../core/errors.js';

export interface LddEntry {
  /** The soname as the program asks for it, e.g. `libc.so.6`. */
  name: string;
  /** Absolute host path, or null when `ldd` says "not found". */
  path: string | null;
}

/**
 * Parses `ldd` output (pure). The vDSO has no file and is dropped; the
 * loader line (`/lib64/ld-linux-x86-64.so.2 (0x…)`) is returned with its
 * path as name. Throws FailedPreconditionError for a static program.
 */
export function parseLdd(text: string): LddEntry[] {
  if (/not a dynamic executable|statically linked/.test(text)) throw new FailedPreconditionError('Not a dynamically linked program');
  const out: LddEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('linux-vdso') || line.startsWith('linux-gate')) continue;
    const arrow = /^(\S+)\s+=>\s+(?:(\/\S+)\s+\(0x[0-9a-f]+\)|not found)/.exec(line);
    if (arrow?.[1]) {
      out.push({ name: arrow[1], path: arrow[2] ?? null });
      continue;
    }
    const direct = /^(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (direct?.[1]) out.push({ name: direct[1], path: direct[1] });
  }
  return out;
}

/** The dynamic loader among parsed ldd entries (an absolute name containing `ld-linux`). */
export function loaderOf(entries: LddEntry[]): string | null {
  return entries.find((e) => e.name.startsWith('/') && /\/ld-linux[^/]*\.so/.test(e.name))?.path ?? null;
}

/** Shared libraries of a host program; throws when one is missing. */
export async function sharedLibraries(program: string): Promise<{ loader: string; libs: LddEntry[] }> {
  let text: string;
  try {
    text = (await run('ldd', [program])).stdout;
  } catch (e) {
    const r = e instanceof CommandError ? e.result : null;
    if (r && /not a dynamic executable/.test(r.stdout + r.stderr)) throw new FailedPreconditionError(`${program} is not dynamically linked`);
    throw new UnavailableError(`Cannot list the libraries of ${program}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const entries = parseLdd(text);
  const missing = entries.filter((e) => e.path === null).map((e) => e.name);
  if (missing.length) throw new UnavailableError(`${program} needs libraries this host lacks: ${missing.join(', ')}`);
  const loader = loaderOf(entries);
  if (!loader) throw new UnavailableError(`Cannot find the dynamic loader of ${program}`);
  return { loader, libs: entries.filter((e) => !e.name.startsWith('/')) };
}

/** True when the ELF file at `file` has no PT_INTERP program header (a static program). */
export async function isStaticElf(file: string): Promise<boolean> {
  const fh = await fs.open(file, 'r');
  try {
    const head = Buffer.alloc(64);
    await fh.read(head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2) return false; // ELF64 only
    const phoff = Number(head.readBigUInt64LE(32));
    const phentsize = head.readUInt16LE(54);
    const phnum = head.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    await fh.read(ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3) return false; // PT_INTERP
    return true;
  } finally {
    await fh.close();
  }
}

/** The host's static busybox (Debian busybox-static); throws a one-line hint when absent. */
export async function findStaticBusybox(): Promise<string> {
  for (const p of ['/bin/busybox', '/usr/bin/busybox', '/sbin/busybox']) {
    try {
      await fs.access(p, fsc.X_OK);
      if (await isStaticElf(p)) return p;
    } catch {
      // try the next
    }
  }
  throw new UnavailableError('A static busybox is needed for guests: apt-get install busybox-static');
}

/** Applet names of a busybox binary. */
export async function busyboxApplets(busybox: string): Promise<string[]> {
  const r = await run(busybox, ['--list']);
  return r.stdout.split('\n').map((s) => s.trim()).filter((s) => /^[A-Za-z0-9_.[-]+$/.test(s) && s !== 'busybox');
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256File(file: string): Promise<string> {
  return sha256(await fs.readFile(file));
}

/** Copies a file keeping its mode bits (not its owner or times). */
export async function copyExecutable(from: string, to: string): Promise<void> {
  await fs.mkdir(path.dirname(to), { recursive: true });
  await fs.copyFile(from, to);
  const st = await fs.stat(from);
  await fs.chmod(to, st.mode & 0o7777);
}

/**
 * Moves a finished temp file or directory to `dest` unless another builder
 * got there first (then ours is removed). Returns `dest` either way.
 */
export async function publish(tmp: string, dest: string): Promise<string> {
  try {
    await fs.rename(tmp, dest);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    await fs.rm(tmp, { recursive: true, force: true });
  }
  return dest;
}

/**
 * A fresh temp directory under `<cacheDir>/vm/tmp` (same file system as the
 * cache, for rename). Its name carries our pid, so leftovers of a crashed
 * process are swept by the next caller.
 */
export async function cacheTemp(cacheDir: string, prefix: string): Promise<string> {
  const dir = path.join(cacheDir, 'vm', 'tmp');
  await fs.mkdir(dir, { recursive: true });
  await sweepStaleTemps(dir);
  return fs.mkdtemp(path.join(dir, `${prefix}-${process.pid}-`));
}

/** The pid in a temp name made by cacheTemp or the base-disk builder (`<prefix>-<pid>-XXXXXX`), or null (pure). */
export function tempOwnerPid(name: string): number | null {
  const m = /-([1-9][0-9]{0,9})-[A-Za-z0-9]{6}$/.exec(name);
  return m?.[1] ? Number(m[1]) : null;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Mount points at or below `p` (from /proc/mounts). */
export async function mountsUnder(p: string): Promise<string[]> {
  const mounts = await fs.readFile('/proc/mounts', 'utf8').catch(() => '');
  // /proc/mounts escapes spaces and the like as octal; our temp paths have none
  return mounts
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m === p || m.startsWith(`${p}/`));
}

/** True when `p` is a mount point. */
export async function isMounted(p: string): Promise<boolean> {
  return (await mountsUnder(p)).includes(p);
}

/**
 * Removes temp entries of `dir` whose owning process is gone. `beforeRemove`
 * may release what they hold (a mount); an entry still mounted afterwards
 * is left alone rather than recursed into.
 */
export async function sweepStaleTemps(dir: string, beforeRemove?: (p: string) => Promise<void>): Promise<void> {
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    const pid = tempOwnerPid(name);
    if (pid === null || pid === process.pid || pidAlive(pid)) continue;
    const p = path.join(dir, name);
    await beforeRemove?.(p);
    if ((await mountsUnder(p)).length > 0) continue;
    await fs.rm(p, { recursive: true, force: true }).catch(() => undefined);
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}
