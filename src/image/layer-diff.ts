/**
 * The reverse of layer-unpack: turns a directory tree into an OCI layer tar.
 *
 * - `writeLayerFromUpper`: a container's overlayfs upper directory (what
 *   `docker commit` and every Dockerfile RUN step produce). overlayfs's own
 *   markers become OCI's: a 0:0 character device NAME (or, on kernels >= 6.7,
 *   an empty file with `trusted.overlay.whiteout`) → an empty `.wh.NAME`
 *   file; a directory with `trusted.overlay.opaque=y` → the directory entry
 *   followed by `DIR/.wh..wh..opq`. Upper dirs whose meaning depends on a
 *   lower layer (`trusted.overlay.redirect` from redirect_dir, or
 *   `trusted.overlay.metacopy` from metacopy) are refused: Vessel mounts
 *   without those features, so their presence means the tree cannot be
 *   diffed on its own.
 * - `writeLayerFromDir`: a plain tree (COPY/ADD), optionally below a path
 *   prefix and with ownership/mode overridden.
 *
 * Nothing is ever followed: every path is lstat'ed, file data is read through
 * O_NOFOLLOW descriptors. The tree should be quiescent (a stopped or paused
 * container); a file that shrinks while it is read is an error.
 *
 * Output is deterministic for the same tree: entries are emitted depth first
 * with the names of each directory sorted bytewise, so parents come before
 * children; names are relative without a `./` prefix, directories end in `/`.
 * Modes keep setuid/setgid/sticky; mtimes are kept (whole seconds, as Docker);
 * uid/gid above the ustar limit go into pax headers. A regular file seen again
 * through another name (same inode) becomes a hard-link entry to the first
 * name. Extended attributes are not carried (unpackLayer would not apply them).
 * Device nodes and sockets are skipped and counted (the runtime provides /dev).
 *
 * `out` is ended when the tar is complete, and destroyed on failure.
 */
import fs, { constants as fsc, type Stats } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { Header, Pack } from 'tar-stream';
import { drained, packInto, type EntrySink } from './tar-pack.js';
import { InternalError, InvalidArgumentError, VesselError } from '../core/errors.js';
import { getxattr } from '../native/native.js';

export interface DiffOptions {
  /**
   * Files to leave out, by path relative to the root (`etc/hosts`, no leading
   * `./`), e.g. the empty mount points the runtime created for /etc/hosts and
   * friends. Excluding a directory excludes everything below it. Whiteouts are
   * offered under the name they hide, with the whiteout's own stat.
   */
  exclude?: (relPath: string, stat: Stats) => boolean;
}

export interface DirLayerOptions {
  /** Path inside the layer the tree's root becomes, e.g. `app` or `usr/local/app`; default the layer root. */
  prefix?: string;
  /** Owner for every entry of the tree (COPY --chown); default: as on disk. */
  uid?: number;
  gid?: number;
  /** Permission bits (incl. setuid/setgid/sticky) for every file and directory of the tree (COPY --chmod); symlinks keep theirs. */
  mode?: number;
  /**
   * Metadata of the parent directories of `prefix` (`usr`, `usr/local` for
   * `usr/local/app`), which this tree does not contain. Return null to emit no
   * entry for one (then unpacking keeps whatever lower layers have there, or
   * creates it 0755). Default: 0755 root:root with the tree root's mtime.
   * Pass the lower layers' real metadata where it matters (e.g. /tmp is 1777).
   */
  parentMeta?: (relPath: string) => { mode: number; uid: number; gid: number; mtime: Date } | null;
}

export interface LayerWriteResult {
  /** Tar entries written (whiteout and opaque markers included). */
  entries: number;
  /** Device nodes and sockets left out. */
  skipped: number;
}

const WHITEOUT = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
const OVL_OPAQUE = 'trusted.overlay.opaque';
const OVL_REDIRECT = 'trusted.overlay.redirect';
const OVL_METACOPY = 'trusted.overlay.metacopy';
const OVL_WHITEOUT = 'trusted.overlay.whiteout';
const USTAR_ID_MAX = 0o777777; // what tar-stream writes into the ustar uid/gid fields (6 octal digits)
const CHUNK = 128 * 1024;
const SMALL_FILE = 256 * 1024;

export async function writeLayerFromUpper(upperDir: string, out: Writable, options: DiffOptions = {}): Promise<LayerWriteResult> {
  const root = path.resolve(upperDir);
  return produce(root, out, async (w) => {
    checkRoot(root);
    await w.walk(root, '', { upper: true, exclude: options.exclude });
  });
}

export async function writeLayerFromDir(dir: string, out: Writable, options: DirLayerOptions = {}): Promise<LayerWriteResult> {
  const root = path.resolve(dir);
  const { uid, gid, mode } = options;
  const override: Override = { uid, gid, mode };
  return produce(root, out, async (w) => {
    // Checked in here, so a bad argument also destroys `out` like any other failure.
    for (const [name, v] of [['uid', uid], ['gid', gid]] as const) {
      if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0 && v <= 0xffffffff)) {
        throw new InvalidArgumentError(`Invalid ${name} for layer: ${v}`);
      }
    }
    if (mode !== undefined && !(Number.isInteger(mode) && mode >= 0 && mode <= 0o7777)) {
      throw new InvalidArgumentError(`Invalid mode for layer: ${mode.toString(8)}`);
    }
    const prefix = normalisePrefix(options.prefix ?? '');
    const st = checkRoot(root);
    if (prefix === '') {
      await w.walk(root, '', { upper: false, override });
      return;
    }
    const parts = prefix.split('/');
    for (let i = 1; i < parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      const meta = options.parentMeta ? options.parentMeta(rel) : { mode: 0o755, uid: 0, gid: 0, mtime: st.mtime };
      if (meta) await w.add({ name: `${rel}/`, type: 'directory', mode: meta.mode & 0o7777, uid: meta.uid, gid: meta.gid, mtime: meta.mtime });
    }
    await w.add(w.header(prefix, st, 'directory', override));
    await w.walk(root, prefix, { upper: false, override });
  });
}

/** A tar header as given to tar-stream's pack (defaults fill the rest). */
type Headers = Partial<Header> & { name: string; pax?: Record<string, string> };

interface Override { uid?: number | undefined; gid?: number | undefined; mode?: number | undefined }

interface WalkOptions {
  upper: boolean;
  exclude?: ((relPath: string, stat: Stats) => boolean) | undefined;
  override?: Override;
}

/** Runs `fill` against a tar pack piped into `out`; the first failure wins and both sides are settled. */
async function produce(root: string, out: Writable, fill: (w: TarWriter) => Promise<void>): Promise<LayerWriteResult> {
  let w!: TarWriter;
  const failure = await packInto(out, async (pk) => {
    w = new TarWriter(pk, root);
    await fill(w);
  });
  if (failure) {
    const e = failure.error;
    if (e instanceof VesselError || (e instanceof Error && e.name === 'AbortError')) throw e;
    throw new InternalError(`Cannot write layer from ${root}: ${msg(e)}`, { cause: e });
  }
  return { entries: w.entries, skipped: w.skipped };
}

class TarWriter {
  entries = 0;
  skipped = 0;
  /** dev:ino → first name of regular files with more than one link. */
  private readonly links = new Map<string, string>();

  constructor(private readonly pk: Pack, private readonly root: string) {}

  /** Emits the children of `abs` (tar path `rel`, '' for the root), depth first, sorted bytewise. */
  async walk(abs: string, rel: string, o: WalkOptions): Promise<void> {
    const names = sortedNames(abs, rel);
    for (const name of names) {
      const childAbs = path.join(abs, name);
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const st = fs.lstatSync(childAbs);
      if (o.exclude?.(childRel, st)) continue;

      if (o.upper && isWhiteout(childAbs, st)) {
        await this.add({ name: rel === '' ? WHITEOUT + name : `${rel}/${WHITEOUT}${name}`, type: 'file', mode: 0o644, mtime: st.mtime, size: 0 });
        continue;
      }
      if (name.startsWith(WHITEOUT)) {
        throw new InvalidArgumentError(`Cannot write layer: ${q(childRel)} has a name reserved for whiteouts`);
      }

      if (st.isDirectory()) {
        let opaque = false;
        if (o.upper) {
          if (getxattr(childAbs, OVL_REDIRECT) !== null) {
            throw new InvalidArgumentError(
              `Cannot write layer: ${q(childRel)} is a renamed directory (overlayfs redirect_dir); its contents live in a lower layer`,
            );
          }
          opaque = getxattr(childAbs, OVL_OPAQUE)?.toString() === 'y';
        }
        await this.add(this.header(childRel, st, 'directory', o.override));
        if (opaque) await this.add({ name: `${childRel}/${OPAQUE_MARKER}`, type: 'file', mode: 0o644, mtime: st.mtime, size: 0 });
        await this.walk(childAbs, childRel, o);
      } else if (st.isFile()) {
        if (o.upper && getxattr(childAbs, OVL_METACOPY) !== null) {
          throw new InvalidArgumentError(
            `Cannot write layer: ${q(childRel)} is an overlayfs metacopy file; its data lives in a lower layer`,
          );
        }
        if (st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          const first = this.links.get(key);
          if (first !== undefined) {
            await this.add({ ...this.header(childRel, st, 'link', o.override), linkname: first });
            continue;
          }
          this.links.set(key, childRel);
        }
        await this.addFile(childAbs, this.header(childRel, st, 'file', o.override));
      } else if (st.isSymbolicLink()) {
        const target = decodeName(fs.readlinkSync(childAbs, { encoding: 'buffer' }), `symlink target of ${childRel}`);
        const h = this.header(childRel, st, 'symlink', { uid: o.override?.uid, gid: o.override?.gid });
        await this.add({ ...h, linkname: target });
      } else if (st.isFIFO()) {
        await this.add(this.header(childRel, st, 'fifo', o.override));
      } else {
        this.skipped++; // device nodes, sockets
      }
    }
  }

  header(rel: string, st: Stats, type: 'file' | 'directory' | 'symlink' | 'link' | 'fifo', o?: Override): Headers {
    const uid = o?.uid ?? st.uid;
    const gid = o?.gid ?? st.gid;
    const h: Headers = {
      name: type === 'directory' ? `${rel}/` : rel,
      type,
      mode: type === 'symlink' ? 0o777 : (o?.mode ?? st.mode) & 0o7777,
      uid,
      gid,
      mtime: new Date(Math.max(0, Math.floor(st.mtimeMs / 1000)) * 1000),
      size: 0,
    };
    if (uid > USTAR_ID_MAX || gid > USTAR_ID_MAX) h.pax = { uid: String(uid), gid: String(gid) };
    return h;
  }

  /** One entry without data: anything but a non-empty regular file. */
  async add(h: Headers): Promise<void> {
    // tar-stream substitutes defaults for falsy modes (0 is a legal mode); a pax-free 0 needs this.
    if (h.mode === 0) h.mode = h.type === 'directory' ? fsc.S_IFDIR : fsc.S_IFREG;
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      // Empty regular files (markers) still need their body ended; other types have none.
      const sink = h.type === 'file' ? this.pk.entry(h, Buffer.alloc(0), cb) : this.pk.entry(h, cb);
      sink.on('error', ignore); // reported through cb; unhandled, it would crash the process
    });
    this.entries++;
  }

  /** A regular file's header and data, read through an O_NOFOLLOW descriptor. */
  async addFile(abs: string, h: Headers): Promise<void> {
    const fd = fs.openSync(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new InternalError(`Cannot write layer: ${q(h.name)} changed while being read`);
      const size = st.size;
      if (h.mode === 0) h.mode = fsc.S_IFREG;
      const done = new Promise<void>((resolve, reject) => {
        const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
        if (size <= SMALL_FILE) {
          // Most files of a rootfs are small: one synchronous read instead of a thread-pool round trip per chunk.
          const buf = Buffer.allocUnsafe(size);
          for (let pos = 0; pos < size; ) {
            const n = fs.readSync(fd, buf, pos, size - pos, pos);
            if (n === 0) throw new InternalError(`Cannot write layer: ${q(h.name)} shrank while being read`);
            pos += n;
          }
          this.pk.entry({ ...h, size }, buf, cb).on('error', ignore);
          return;
        }
        const sink = this.pk.entry({ ...h, size }, cb) as unknown as EntrySink;
        sink.on('error', ignore); // reported through the callback
        void pump(fd, size, sink, h.name).catch((e: unknown) => {
          sink.destroy(e instanceof Error ? e : new Error(String(e)));
          reject(e);
        });
      });
      await done;
    } finally {
      fs.closeSync(fd);
    }
    this.entries++;
  }
}

/** Writes exactly `size` bytes of `fd` into the entry, honouring back-pressure. */
async function pump(fd: number, size: number, sink: EntrySink, name: string): Promise<void> {
  let pos = 0;
  while (pos < size) {
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - pos));
    const n = await new Promise<number>((resolve, reject) => {
      fs.read(fd, buf, 0, buf.length, pos, (err, bytes) => (err ? reject(err) : resolve(bytes)));
    });
    if (n === 0) throw new InternalError(`Cannot write layer: ${q(name)} shrank while being read`);
    pos += n;
    if (!sink.write(n === buf.length ? buf : buf.subarray(0, n))) await drained(sink);
    if (sink.destroyed) throw new InternalError('Cannot write layer: output closed');
  }
  sink.end();
}

function checkRoot(root: string): Stats {
  let st: Stats;
  try {
    st = fs.lstatSync(root);
  } catch (e) {
    throw new InvalidArgumentError(`Cannot write layer: ${msg(e)}`, { cause: e });
  }
  if (!st.isDirectory()) throw new InvalidArgumentError(`Cannot write layer: not a directory: ${root}`);
  return st;
}

/** 0:0 character devices, and (overlayfs >= 6.7 nested setups) empty files marked with the whiteout xattr. */
function isWhiteout(abs: string, st: Stats): boolean {
  if (st.isCharacterDevice()) return st.rdev === 0;
  return st.isFile() && st.size === 0 && getxattr(abs, OVL_WHITEOUT) !== null;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeName(raw: Buffer, what: string): string {
  try {
    return utf8.decode(raw);
  } catch {
    throw new InvalidArgumentError(`Cannot write layer: ${what} is not valid UTF-8: ${JSON.stringify(raw.toString('latin1'))}`);
  }
}

function sortedNames(abs: string, rel: string): string[] {
  const raw = fs.readdirSync(abs, { encoding: 'buffer' });
  raw.sort(Buffer.compare);
  return raw.map((n) => decodeName(n, `a name in ${q(rel === '' ? '/' : rel)}`));
}

function normalisePrefix(prefix: string): string {
  if (prefix.includes('\0')) throw new InvalidArgumentError('Invalid layer path prefix: contains NUL');
  const parts = prefix.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new InvalidArgumentError(`Invalid layer path prefix: ${q(prefix)}`);
  if (parts.some((p) => p.startsWith(WHITEOUT))) throw new InvalidArgumentError(`Invalid layer path prefix: ${q(prefix)} names a whiteout`);
  return parts.join('/');
}

const q = (s: string): string => JSON.stringify(s);
const ignore = (): void => {};
const msg = (e: unknown): string => (e instanceof Error ? e.message : String(e));
