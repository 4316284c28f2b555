/**
 * Tar streams for `cp` (Docker's /containers/{id}/archive): packing a file
 * tree, stat headers, and extracting an archive into a directory.
 *
 * Extraction never follows a symlink with the final component of an entry
 * (O_NOFOLLOW/O_EXCL opens, symlink/link/mkdir/unlink, lchown/lutimes,
 * directory metadata through O_NOFOLLOW descriptors). Where an entry's parent
 * directories are is decided by an `ExtractTarget`: inside a container that
 * resolves them with `ContainerFs.mkdirAll` (symlinks followed, but only
 * inside the container's root); on the client's host `LocalTarget` refuses to
 * pass through any symlink below the destination.
 */
import fs, { constants as fsc } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract, pack as tarPack, type Header, type Pack } from 'tar-stream';
import { InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { mknod } from '../native/native.js';

// ---------------------------------------------------------------------------
// stat (the X-Docker-Container-Path-Stat header)
// ---------------------------------------------------------------------------

export interface PathStat {
  name: string;
  size: number;
  /** Go's os.FileMode bits, as Docker clients expect. */
  mode: number;
  mtime: string;
  linkTarget: string;
}

const GO_DIR = 2 ** 31;
const GO_SYMLINK = 2 ** 27;
const GO_DEVICE = 2 ** 26;
const GO_PIPE = 2 ** 25;
const GO_SOCKET = 2 ** 24;
const GO_SETUID = 2 ** 23;
const GO_SETGID = 2 ** 22;
const GO_CHARDEV = 2 ** 21;
const GO_STICKY = 2 ** 20;

/** A Unix st_mode as Go's os.FileMode. */
export function goFileMode(mode: number): number {
  let m = mode & 0o777;
  switch (mode & fsc.S_IFMT) {
    case fsc.S_IFDIR:
      m += GO_DIR;
      break;
    case fsc.S_IFLNK:
      m += GO_SYMLINK;
      break;
    case fsc.S_IFIFO:
      m += GO_PIPE;
      break;
    case fsc.S_IFSOCK:
      m += GO_SOCKET;
      break;
    case fsc.S_IFCHR:
      m += GO_DEVICE + GO_CHARDEV;
      break;
    case fsc.S_IFBLK:
      m += GO_DEVICE;
      break;
  }
  if (mode & 0o4000) m += GO_SETUID;
  if (mode & 0o2000) m += GO_SETGID;
  if (mode & 0o1000) m += GO_STICKY;
  return m;
}

export function isGoDir(mode: number): boolean {
  return mode >= GO_DIR;
}

export function isGoSymlink(mode: number): boolean {
  return Math.floor(mode / GO_SYMLINK) % 2 === 1;
}

export function encodeStat(s: PathStat): string {
  return Buffer.from(JSON.stringify(s)).toString('base64');
}

export function decodeStat(header: string | string[] | undefined): PathStat | null {
  const v = Array.isArray(header) ? header[0] : header;
  if (!v) return null;
  try {
    return JSON.parse(Buffer.from(v, 'base64').toString('utf8')) as PathStat;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------
// packing
// ---------------------------------------------------------------------------

export interface PackOptions {
  /** Owners as on disk ('keep', the default) or 0:0 ('root'). */
  owners?: 'keep' | 'root';
  /** Do not descend into proc, sysfs and cgroup file systems (a running container's view). */
  skipPseudoFs?: boolean;
}

const PSEUDO_FS = new Set([0x9fa0 /* proc */, 0x62656572 /* sysfs */, 0x27e0eb /* cgroup */, 0x63677270 /* cgroup2 */]);

function devMajor(rdev: number): number {
  return ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
}
function devMinor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >> 12) & ~0xff & 0xfffff);
}

/**
 * A tar stream of `hostPath` (not followed if it is a symlink), whose top
 * entry is named `rootName` (`.` for "the contents"). Symlinks below are
 * archived as links, never followed; hard links are kept.
 */
export function packPath(hostPath: string, rootName: string, options: PackOptions = {}): Readable {
  const pack = tarPack();
  const seen = new Map<string, string>();
  const write = async (): Promise<void> => {
    const st = fs.lstatSync(hostPath);
    await packEntry(pack, hostPath, rootName, st, seen, options, st.dev);
    pack.finalize();
  };
  write().catch((e: unknown) => pack.destroy(e instanceof Error ? e : new Error(String(e))));
  // tar-stream's streams are streamx ones: hand out a Node stream.
  return Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
}

async function packEntry(
  pack: Pack,
  host: string,
  name: string,
  st: fs.Stats,
  seen: Map<string, string>,
  options: PackOptions,
  parentDev: number,
): Promise<void> {
  const root = options.owners === 'root';
  const base = {
    name,
    mode: st.mode & 0o7777,
    uid: root ? 0 : st.uid,
    gid: root ? 0 : st.gid,
    mtime: st.mtime,
  } as Header;
  if (st.isDirectory()) {
    await entry(pack, { ...base, type: 'directory' });
    if (options.skipPseudoFs && st.dev !== parentDev) {
      const type = fs.statfsSync(host).type;
      if (PSEUDO_FS.has(type)) return;
    }
    let names: string[];
    try {
      names = fs.readdirSync(host).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const child of names) {
      const childHost = path.join(host, child);
      const cst = fs.lstatSync(childHost, { throwIfNoEntry: false });
      if (!cst) continue; // removed meanwhile
      await packEntry(pack, childHost, name === '.' ? `./${child}` : `${name}/${child}`, cst, seen, options, st.dev);
    }
    return;
  }
  if (st.isSymbolicLink()) {
    await entry(pack, { ...base, type: 'symlink', linkname: fs.readlinkSync(host) });
    return;
  }
  if (st.isFIFO()) {
    await entry(pack, { ...base, type: 'fifo' });
    return;
  }
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    await entry(pack, {
      ...base,
      type: st.isCharacterDevice() ? 'character-device' : 'block-device',
      devmajor: devMajor(st.rdev),
      devminor: devMinor(st.rdev),
    });
    return;
  }
  if (!st.isFile()) return; // sockets are not archived (as in Docker)
  if (st.nlink > 1) {
    const key = `${st.dev}:${st.ino}`;
    const first = seen.get(key);
    if (first !== undefined) {
      await entry(pack, { ...base, type: 'link', linkname: first });
      return;
    }
    seen.set(key, name);
  }
  const fd = fs.openSync(host, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    const size = fs.fstatSync(fd).size;
    const stream = pack.entry({ ...base, type: 'file', size });
    const done = new Promise<void>((resolve, reject) => {
      stream.once('finish', () => resolve());
      stream.once('error', reject);
    });
    const buf = Buffer.allocUnsafe(Math.min(Math.max(size, 1), 256 * 1024));
    let left = size;
    while (left > 0) {
      let n = fs.readSync(fd, buf, 0, Math.min(buf.length, left), null);
      if (n === 0) {
        // The file shrank while being read: pad, the header already promised `size` bytes.
        buf.fill(0);
        n = Math.min(buf.length, left);
      }
      left -= n;
      if (!stream.write(Buffer.from(buf.subarray(0, n)))) await onceDrained(stream);
    }
    stream.end(null as never);
    await done;
  } finally {
    fs.closeSync(fd);
  }
}

function entry(pack: Pack, header: Header): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(header, (err) => (err ? reject(err) : resolve())));
}

function onceDrained(w: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => w.once('drain', resolve));
}

// ---------------------------------------------------------------------------
// extraction
// ---------------------------------------------------------------------------

/** Where the parent directories of entries are (and are created). */
export interface ExtractTarget {
  /** Host path of the directory at archive-relative components `parts`, made if missing. */
  dir(parts: string[]): string;
}

export interface ExtractOptions {
  /** Apply the archive's uid/gid (root only). */
  chown: boolean;
  /** Refuse to replace a directory with a non-directory and vice versa (Docker's cp). */
  noOverwriteDirNonDir: boolean;
  /** Renames entries (components relative to the archive root); null skips the entry. */
  mapName?: (parts: string[]) => string[] | null;
}

/** Archive name → components below the extraction point; `..` may not climb out. */
export function archiveParts(name: string): string[] {
  if (name.includes('\0')) throw new InvalidArgumentError(`Invalid archive entry ${JSON.stringify(name)}: contains NUL`);
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..') out.push(part);
    else if (out.pop() === undefined) throw new InvalidArgumentError(`Invalid archive entry ${JSON.stringify(name)}: leaves the destination`);
  }
  return out;
}

/** Reads a plain or gzip-compressed tar. */
async function* decompressed(input: Readable): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let len = 0;
  while (len < 2) {
    const r = await it.next();
    if (r.done) break;
    const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    head.push(chunk);
    len += chunk.length;
  }
  const first = Buffer.concat(head);
  async function* rest(): AsyncGenerator<Buffer> {
    if (first.length) yield first;
    for (let r = await it.next(); !r.done; r = await it.next()) yield Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
  }
  if (first[0] === 0x1f && first[1] === 0x8b) {
    const gunzip = createGunzip();
    const src = Readable.from(rest());
    src.on('error', (e) => gunzip.destroy(e));
    src.pipe(gunzip);
    for await (const c of gunzip) yield c as Buffer;
  } else {
    yield* rest();
  }
}

interface DirMeta {
  host: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  depth: number;
}

export async function extractTar(input: Readable, target: ExtractTarget, options: ExtractOptions): Promise<number> {
  const extract = tarExtract();
  const feeding = (async () => {
    try {
      for await (const chunk of decompressed(input)) {
        if (extract.destroyed) return;
        if (!extract.write(chunk)) await new Promise<void>((r) => (extract.once('drain', () => r()), extract.once('close', () => r())));
      }
      extract.end(null as never);
    } catch (e) {
      extract.destroy(e instanceof Error ? e : new Error(String(e)));
    }
  })();
  const dirs: DirMeta[] = [];
  let count = 0;
  try {
    for await (const e of extract) {
      const data = e as AsyncIterable<Buffer>;
      try {
        await applyEntry(e.header, data, target, options, dirs);
      } finally {
        for await (const _ of data); // the parser stalls until each entry's data is read
      }
      count++;
    }
  } catch (e) {
    extract.destroy();
    input.destroy();
    await feeding;
    throw e;
  }
  await feeding;
  // Directory metadata last (children change a directory's mtime), deepest first.
  for (const d of dirs.sort((a, b) => b.depth - a.depth)) {
    const fd = fs.openSync(d.host, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
    try {
      if (options.chown) fs.fchownSync(fd, d.uid, d.gid);
      fs.fchmodSync(fd, d.mode);
      fs.futimesSync(fd, d.mtime, d.mtime);
    } finally {
      fs.closeSync(fd);
    }
  }
  return count;
}

async function applyEntry(h: Header, data: AsyncIterable<Buffer>, target: ExtractTarget, options: ExtractOptions, dirs: DirMeta[]): Promise<void> {
  let parts = archiveParts(h.name);
  if (options.mapName) {
    const mapped = options.mapName(parts);
    if (mapped === null) return;
    parts = mapped;
  }
  const pax = (h.pax ?? {}) as Record<string, string | undefined>;
  const mode = (h.mode ?? 0o644) & 0o7777;
  const uid = Number(pax['uid'] ?? h.uid ?? 0);
  const gid = Number(pax['gid'] ?? h.gid ?? 0);
  const mtime = pax['mtime'] !== undefined ? Number(pax['mtime']) : (h.mtime?.getTime() ?? Date.now()) / 1000;
  const label = JSON.stringify(h.name);

  if (parts.length === 0) {
    // The extraction point itself: it exists; its metadata is left alone.
    if (h.type !== 'directory') throw new InvalidArgumentError(`Cannot extract ${label}: the destination is a directory`);
    target.dir([]);
    return;
  }
  const last = parts[parts.length - 1] as string;
  const parent = target.dir(parts.slice(0, -1));
  const host = path.join(parent, last);
  const existing = fs.lstatSync(host, { throwIfNoEntry: false });

  const clear = (wantDir: boolean): void => {
    if (!existing) return;
    if (existing.isDirectory()) {
      if (wantDir) return;
      if (options.noOverwriteDirNonDir) throw new InvalidArgumentError(`Cannot overwrite directory ${label} with non-directory`);
      fs.rmSync(host, { recursive: true, force: true }); // rm never follows symlinks
    } else {
      if (wantDir && options.noOverwriteDirNonDir) throw new InvalidArgumentError(`Cannot overwrite non-directory ${label} with directory`);
      fs.unlinkSync(host);
    }
  };

  switch (h.type) {
    case 'directory': {
      clear(true);
      if (!existing?.isDirectory()) fs.mkdirSync(host, { mode: 0o700 });
      dirs.push({ host, mode, uid, gid, mtime, depth: parts.length });
      return;
    }
    case 'file':
    case 'contiguous-file': {
      clear(false);
      const fd = fs.openSync(host, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
      try {
        for await (const chunk of data) {
          for (let off = 0; off < chunk.length; ) off += fs.writeSync(fd, chunk, off, chunk.length - off);
        }
        if (options.chown) fs.fchownSync(fd, uid, gid);
        fs.fchmodSync(fd, mode); // after chown, which clears setuid/setgid
        fs.futimesSync(fd, mtime, mtime);
      } finally {
        fs.closeSync(fd);
      }
      return;
    }
    case 'symlink': {
      const link = h.linkname ?? '';
      if (!link || link.includes('\0')) throw new InvalidArgumentError(`Cannot extract ${label}: invalid symlink target`);
      clear(false);
      fs.symlinkSync(link, host);
      if (options.chown) fs.lchownSync(host, uid, gid);
      fs.lutimesSync(host, mtime, mtime);
      return;
    }
    case 'link': {
      let tparts = archiveParts(h.linkname ?? '');
      if (options.mapName) tparts = options.mapName(tparts) ?? [];
      if (tparts.length === 0) throw new InvalidArgumentError(`Cannot extract ${label}: invalid hard link target`);
      const thost = path.join(target.dir(tparts.slice(0, -1)), tparts[tparts.length - 1] as string);
      if (!fs.lstatSync(thost, { throwIfNoEntry: false })?.isFile()) {
        throw new NotFoundError(`Cannot extract ${label}: hard link target ${JSON.stringify(h.linkname)} is not a file of the archive`);
      }
      if (thost === host) return;
      clear(false);
      fs.linkSync(thost, host); // link(2) does not follow symlinks
      return;
    }
    case 'fifo': {
      clear(false);
      mknod(host, fsc.S_IFIFO | 0o600, 0, 0);
      if (options.chown) fs.lchownSync(host, uid, gid);
      fs.chmodSync(host, mode); // the fifo just made: no symlink to follow
      fs.lutimesSync(host, mtime, mtime);
      return;
    }
    case 'character-device':
    case 'block-device':
      throw new InvalidArgumentError(`Cannot extract ${label}: device nodes are not copied`);
    default:
      throw new InvalidArgumentError(`Cannot extract ${label}: unsupported entry type ${String(h.type)}`);
  }
}

/** Extraction below a host directory, never through a symlink below it. */
export class LocalTarget implements ExtractTarget {
  readonly #known = new Map<string, string>();
  constructor(readonly base: string) {}

  dir(parts: string[]): string {
    let host = this.base;
    let key = '';
    for (const part of parts) {
      key = key ? `${key}/${part}` : part;
      const next = path.join(host, part);
      if (!this.#known.has(key)) {
        const st = fs.lstatSync(next, { throwIfNoEntry: false });
        if (st?.isSymbolicLink()) throw new InvalidArgumentError(`Refusing to extract through symlink ${JSON.stringify(next)}`);
        if (st && !st.isDirectory()) throw new InvalidArgumentError(`Not a directory: ${next}`);
        if (!st) fs.mkdirSync(next, { mode: 0o755 });
        this.#known.set(key, next);
      }
      host = next;
    }
    return host;
  }
}
