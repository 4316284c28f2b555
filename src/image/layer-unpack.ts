/**
 * Unpacks one OCI image layer (a tar, plain or gzip) into a fresh snapshot
 * directory that overlayfs later stacks as a lowerdir.
 *
 * Every entry is hostile until proven otherwise. Node has no openat(), so
 * confinement is: names are normalised lexically (`..` never reaches the
 * kernel); every parent component is lstat-checked and a symlink there is a
 * rejection, never followed (verified directories are cached; the cache is
 * invalidated whenever this code removes something); the final component is
 * only touched by calls that do not follow it (O_NOFOLLOW open, mkdir, symlink,
 * link, mknod, unlink, lchown, lutimes, lsetxattr). So symlinks may point
 * anywhere: nothing is ever written through them.
 *
 * Whiteouts become overlayfs's own format, as each layer is a separate
 * lowerdir: `.wh.NAME` a 0:0 character device, `.wh..wh..opq` the xattr
 * `trusted.overlay.opaque=y`. Device nodes are rejected (the runtime provides
 * /dev); fifos are allowed (harmless; some distro images ship one); aufs
 * metadata (`.wh..wh.plnk`...) is skipped, as Docker's overlay driver does.
 * Ownership is applied only as root, where chown is possible.
 *
 * Per-entry syscalls are synchronous on purpose: a rootfs is tens of thousands
 * of tiny lstat/open/chown/utimes calls, and a thread-pool round trip for each
 * made unpacking /usr/share ~7x slower. The event loop still gets control
 * whenever the parser needs more input, i.e. every input chunk (<= 128 KiB).
 * Pulls run it in a worker thread (unpack-in-worker.ts), off the daemon's event loop.
 */
import fs, { constants as fsc, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Readable, addAbortSignal } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract, type Extract, type Header } from 'tar-stream';
import { InternalError, InvalidArgumentError, VesselError } from '../core/errors.js';
import { mknod, setxattr } from '../native/native.js';
import { DigestCounter, checkDigest } from './digest.js';

export interface UnpackResult {
  diffId: string; // sha256 of the uncompressed tar
  digest: string; // sha256 of the bytes as given (compressed or not)
  size: number; // length of the bytes as given
  unpackedBytes: number; // length of the uncompressed tar, i.e. what diffId covers
}

export interface UnpackOptions {
  expectedDigest?: string; // of the bytes as given
  expectedDiffId?: string;
  signal?: AbortSignal;
}

/** A layer that tried to leave its root or carries forbidden content. */
export class LayerSecurityError extends InvalidArgumentError {
  override name = 'LayerSecurityError';
}

const WHITEOUT = '.wh.';
const WHITEOUT_META = '.wh..wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
const OPAQUE_XATTR = 'trusted.overlay.opaque';
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/**
 * Unpacks `input` into `destDir`, which must not exist or be empty. On any
 * failure (including a digest mismatch) `destDir` is removed and the error rethrown.
 */
export async function unpackLayer(
  input: NodeJS.ReadableStream | Readable,
  destDir: string,
  options: UnpackOptions = {},
): Promise<UnpackResult> {
  if (options.expectedDigest !== undefined) checkDigest(options.expectedDigest);
  if (options.expectedDiffId !== undefined) checkDigest(options.expectedDiffId);
  options.signal?.throwIfAborted();
  const root = path.resolve(destDir);
  await createRoot(root);

  // One internal signal stops the reading side, whether the caller aborted or an entry failed.
  const ac = new AbortController();
  const onAbort = (): void => ac.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort(); // aborted while the root was being created
  try {
    const result = await unpackInto(input, new Unpacker(root), ac);
    const { expectedDigest: digest, expectedDiffId: diffId } = options;
    if (digest !== undefined && digest !== result.digest) {
      throw new InvalidArgumentError(`Layer digest mismatch: expected ${digest}, got ${result.digest}`);
    }
    if (diffId !== undefined && diffId !== result.diffId) {
      throw new InvalidArgumentError(`Layer diff ID mismatch: expected ${diffId}, got ${result.diffId}`);
    }
    return result;
  } catch (e) {
    await fsp.rm(root, { recursive: true, force: true });
    throw e;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

async function createRoot(root: string): Promise<void> {
  await fsp.mkdir(path.dirname(root), { recursive: true });
  try {
    await fsp.mkdir(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // Someone else's non-empty directory must never be adopted, nor removed on failure.
    const st = await fsp.lstat(root);
    if (!st.isDirectory() || (await fsp.readdir(root)).length > 0) {
      throw new InvalidArgumentError(`Layer destination is not an empty directory: ${root}`);
    }
  }
  await fsp.chmod(root, 0o755); // a lowerdir root's mode shows in containers; don't inherit the umask
}

/**
 * Runs the reading side (hash, gunzip, hash, tar parser) and the writing side
 * together. Whichever fails first owns the error; the other is stopped and
 * awaited, so nothing is still writing when the caller removes the directory.
 */
async function unpackInto(input: NodeJS.ReadableStream | Readable, unpacker: Unpacker, ac: AbortController): Promise<UnpackResult> {
  const given = new DigestCounter();
  const tarBytes = new DigestCounter();
  const extract = tarExtract();
  let failure: { error: unknown } | undefined;
  const fail = (error: unknown): void => {
    failure ??= { error };
    ac.abort(error);
    extract.destroy(error instanceof Error ? error : new Error(String(error)));
  };
  const feeding = feed(input, given, tarBytes, extract, ac.signal).catch((e: unknown) => {
    fail(classifyReadError(e));
    return false;
  });
  try {
    for await (const entry of extract) {
      try {
        await unpacker.apply(entry.header, entry as AsyncIterable<Buffer>);
      } catch (e) {
        throw withContext(e, `Cannot unpack layer entry ${q(entry.header.name)}`);
      }
    }
  } catch (e) {
    // Errors not classified by now came from the tar parser itself.
    fail(e instanceof VesselError || isAbort(e) ? e : new InvalidArgumentError(`Malformed layer: ${msg(e)}`, { cause: e }));
  }
  const gzipped = await feeding;
  if (failure) throw failure.error;
  try {
    unpacker.finish();
  } catch (e) {
    throw withContext(e, 'Cannot unpack layer');
  }
  // A plain tar is hashed once: its digest is its diff ID.
  const digest = given.digest();
  const tar = gzipped ? { diffId: tarBytes.digest(), unpackedBytes: tarBytes.bytes } : { diffId: digest, unpackedBytes: given.bytes };
  return { ...tar, digest, size: given.bytes };
}

/** Hashes and decompresses `input` into the tar parser; resolves to whether it was gzip. */
async function feed(
  input: NodeJS.ReadableStream | Readable,
  given: DigestCounter,
  tarBytes: DigestCounter,
  extract: Extract,
  signal: AbortSignal,
): Promise<boolean> {
  const src = addAbortSignal(signal, input instanceof Readable ? input : new Readable().wrap(input));
  const it: AsyncIterator<Buffer> = src[Symbol.asyncIterator]();
  // Sniff the magic bytes before choosing the decompressor; the sniffed chunks are replayed.
  const head: Buffer[] = [];
  for (let length = 0; length < 4; ) {
    const r = await it.next();
    if (r.done) break;
    head.push(r.value);
    length += r.value.length;
  }
  const magic = Buffer.concat(head).subarray(0, 4);
  if (magic.equals(ZSTD_MAGIC)) {
    await it.return?.();
    throw new InvalidArgumentError('Unsupported layer compression: zstd');
  }
  const gzipped = magic[0] === 0x1f && magic[1] === 0x8b;
  async function* replay(): AsyncGenerator<Buffer> {
    try {
      for (const chunk of head) {
        given.update(chunk);
        yield chunk;
      }
      for (let r = await it.next(); !r.done; r = await it.next()) {
        given.update(r.value);
        yield r.value;
      }
    } finally {
      await it.return?.();
    }
  }
  async function sink(source: AsyncIterable<Buffer>): Promise<void> {
    for await (const chunk of source) {
      if (extract.destroyed) return; // the writing side failed and holds the error
      if (gzipped) tarBytes.update(chunk);
      if (!extract.write(chunk)) await drained(extract);
    }
    extract.end(null);
  }
  if (gzipped) await pipeline(replay(), createGunzip({ chunkSize: 128 * 1024 }), sink, { signal });
  else await pipeline(replay(), sink, { signal });
  return gzipped;
}

/** Waits for room in the parser, or for its end when the writing side destroyed it. */
function drained(extract: Extract): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      extract.off('drain', done).off('close', done);
      resolve();
    };
    extract.on('drain', done).on('close', done);
  });
}

function classifyReadError(e: unknown): unknown {
  if (e instanceof VesselError || isAbort(e)) return e;
  if (String((e as NodeJS.ErrnoException).code).startsWith('Z_')) {
    return new InvalidArgumentError(`Malformed layer: gzip: ${msg(e)}`, { cause: e });
  }
  return new InternalError(`Cannot read layer: ${msg(e)}`, { cause: e });
}

/** System-call failures (errno codes) get context; other errors pass through for classification. */
function withContext(e: unknown, context: string): unknown {
  const code = String((e as NodeJS.ErrnoException).code);
  return /^E[A-Z0-9]+$/.test(code) ? new InternalError(`${context}: ${msg(e)}`, { cause: e }) : e;
}

interface Meta { mode: number; uid: number; gid: number; mtime: number }

/** Applies entries one at a time; owns the verified-directory cache of one destination. */
class Unpacker {
  /** Relative paths ('' is the root) known to be real directories that this code created or checked. */
  private readonly dirs = new Set<string>(['']);
  /** Applied at the end, because writing children changes a directory's mtime. */
  private readonly dirMeta = new Map<string, Meta>();
  private readonly chown = process.geteuid?.() === 0;

  constructor(private readonly root: string) {}

  async apply(h: Header, data: AsyncIterable<Buffer>): Promise<void> {
    await this.applyEntry(h, data);
    for await (const _ of data); // tar-stream stalls until every entry's data is consumed
  }

  private async applyEntry(h: Header, data: AsyncIterable<Buffer>): Promise<void> {
    const { name, linkname } = h;
    const label = `entry ${q(name)}`;
    const parts = normalise(name, label);
    const last = parts[parts.length - 1] ?? '';
    const pax = (h.pax ?? {}) as Record<string, string | undefined>;
    const meta: Meta = {
      mode: h.mode & 0o7777,
      uid: Number(pax['uid'] ?? h.uid),
      gid: Number(pax['gid'] ?? h.gid),
      mtime: pax['mtime'] !== undefined ? Number(pax['mtime']) : h.mtime.getTime() / 1000,
    };

    if (parts.some((p) => p.startsWith(WHITEOUT_META) && p !== OPAQUE_MARKER)) return;
    if (parts.slice(0, -1).some((p) => p.startsWith(WHITEOUT))) throw reject(`${label} lies inside a whiteout`);
    if (last === OPAQUE_MARKER) {
      setxattr(this.abs(this.dir(parts.slice(0, -1), label, true)), OPAQUE_XATTR, 'y');
      return;
    }
    if (last.startsWith(WHITEOUT)) {
      const hidden = last.slice(WHITEOUT.length);
      if (hidden === '' || hidden === '.' || hidden === '..') throw reject(`whiteout ${q(name)} names no file`);
      mknod(await this.prepare([...parts.slice(0, -1), hidden], label), fsc.S_IFCHR, 0, 0);
      return;
    }
    if (parts.length === 0 && h.type !== 'directory') throw reject(`${label} has an empty name`);

    switch (h.type) {
      case 'file':
      case 'contiguous-file': {
        const fd = fs.openSync(await this.prepare(parts, label), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
        try {
          for await (const chunk of data) {
            for (let off = 0; off < chunk.length; ) off += fs.writeSync(fd, chunk, off, chunk.length - off);
          }
          if (this.chown) fs.fchownSync(fd, meta.uid, meta.gid);
          fs.fchmodSync(fd, meta.mode); // after chown, which clears setuid/setgid
          fs.futimesSync(fd, meta.mtime, meta.mtime);
        } finally {
          fs.closeSync(fd);
        }
        return;
      }
      case 'directory':
        this.dirMeta.set(this.dir(parts, label, true, true), meta);
        return;
      case 'symlink': {
        if (!linkname || linkname.includes('\0')) throw reject(`symlink ${q(name)} has an invalid target`);
        const abs = await this.prepare(parts, label);
        fs.symlinkSync(linkname, abs);
        if (this.chown) fs.lchownSync(abs, meta.uid, meta.gid);
        fs.lutimesSync(abs, meta.mtime, meta.mtime);
        return;
      }
      case 'link': {
        const linkLabel = `hard link ${q(name)} target ${q(linkname ?? '')}`;
        const target = normalise(linkname ?? '', linkLabel);
        if (target.length === 0) throw reject(`${linkLabel} is empty`);
        const targetRel = join(this.dir(target.slice(0, -1), linkLabel, false), target[target.length - 1] as string);
        if (!lstat(this.abs(targetRel))?.isFile()) throw reject(`${linkLabel} is not a regular file of this layer`);
        if (targetRel === parts.join('/')) return; // a link to itself is already satisfied
        fs.linkSync(this.abs(targetRel), await this.prepare(parts, label)); // link(2) does not follow
        return;
      }
      case 'fifo': {
        const abs = await this.prepare(parts, label);
        mknod(abs, fsc.S_IFIFO | 0o600, 0, 0);
        if (this.chown) fs.lchownSync(abs, meta.uid, meta.gid);
        fs.chmodSync(abs, meta.mode); // the fifo just made, so there is no symlink to follow
        fs.lutimesSync(abs, meta.mtime, meta.mtime);
        return;
      }
      case 'character-device':
      case 'block-device':
        throw reject(`${label} is a ${h.type.replace('-', ' ')}`);
      default:
        throw new InvalidArgumentError(`Malformed layer: unsupported tar entry type: ${String(h.type)}`);
    }
  }

  /** Applies deferred directory metadata through O_NOFOLLOW descriptors. */
  finish(): void {
    for (const [rel, m] of this.dirMeta) {
      const fd = fs.openSync(this.abs(rel), fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
      try {
        if (this.chown) fs.fchownSync(fd, m.uid, m.gid);
        fs.fchmodSync(fd, m.mode);
        fs.futimesSync(fd, m.mtime, m.mtime);
      } finally {
        fs.closeSync(fd);
      }
    }
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : path.join(this.root, rel);
  }

  /**
   * Makes sure each component of `parts` is a real directory, creating missing
   * ones (0755) when `create`, and returns the relative path. Only a directory
   * entry itself (`replaceLast`) may replace a file or symlink. A whiteout in
   * the way becomes an opaque directory: deleted, then recreated in this layer.
   */
  private dir(parts: string[], label: string, create: boolean, replaceLast = false): string {
    let rel = '';
    for (const [i, part] of parts.entries()) {
      rel = join(rel, part);
      if (this.dirs.has(rel)) continue;
      const abs = this.abs(rel);
      const st = lstat(abs);
      if (st && !st.isDirectory()) {
        if (!create || !((replaceLast && i === parts.length - 1) || st.isCharacterDevice())) {
          throw reject(st.isSymbolicLink() ? `${label} traverses symlink ${q(rel)}` : `${label} needs ${q(rel)} to be a directory`);
        }
        fs.unlinkSync(abs);
      }
      if (!st?.isDirectory()) {
        if (!create) throw reject(`${label} refers to missing ${q(rel)}`);
        fs.mkdirSync(abs);
        fs.chmodSync(abs, 0o755); // not the umask; abs is the directory mkdir just made
        if (st?.isCharacterDevice()) setxattr(abs, OPAQUE_XATTR, 'y');
      }
      this.dirs.add(rel);
    }
    return rel;
  }

  /** Creates the parents of a non-directory entry, clears its final path and returns that path. */
  private async prepare(parts: string[], label: string): Promise<string> {
    const rel = join(this.dir(parts.slice(0, -1), label, true), parts[parts.length - 1] as string);
    const st = lstat(this.abs(rel));
    if (st?.isDirectory()) {
      await fsp.rm(this.abs(rel), { recursive: true, force: true }); // rm never follows symlinks
      for (const known of [this.dirs, this.dirMeta]) {
        for (const key of known.keys()) if (key === rel || key.startsWith(`${rel}/`)) known.delete(key);
      }
    } else if (st) {
      fs.unlinkSync(this.abs(rel));
    }
    return this.abs(rel);
  }
}

/** Resolves a tar name lexically to components below the root; `/` and `./` prefixes are legal. */
function normalise(name: string, label: string): string[] {
  if (name.includes('\0')) throw reject(`${label} contains NUL`);
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..') out.push(part);
    else if (out.pop() === undefined) throw reject(`${label} escapes the layer root`);
  }
  return out;
}

const lstat = (p: string): fs.Stats | undefined => fs.lstatSync(p, { throwIfNoEntry: false });
const join = (a: string, b: string): string => (a === '' ? b : `${a}/${b}`);
const q = (s: string): string => JSON.stringify(s);
const msg = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const reject = (detail: string): LayerSecurityError => new LayerSecurityError(`Layer rejected: ${detail}`);
const isAbort = (e: unknown): boolean => e instanceof Error && e.name === 'AbortError';
