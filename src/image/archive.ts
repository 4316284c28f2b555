/**
 * Image archives: `vessel image save` / `vessel image load` (Docker's
 * GET /images/get and POST /images/load).
 *
 * Save writes one tar that is both an OCI image layout and a docker-archive:
 *
 *   oci-layout                 {"imageLayoutVersion":"1.0.0"}
 *   blobs/sha256/<hex>         layer blobs, configs and manifests, straight from the content store
 *   index.json                 one manifest descriptor per name, annotated with
 *                              org.opencontainers.image.ref.name (the Vessel name, e.g. busybox:latest)
 *                              and io.containerd.image.name (the fully qualified name)
 *   manifest.json              [{"Config":"blobs/sha256/…","RepoTags":[…],"Layers":["blobs/sha256/…"]}]
 *
 * Load accepts OCI layouts (index.json; an image index is followed one level
 * to the host platform) and docker-archives (manifest.json, including the
 * legacy `<id>/layer.tar` layout), optionally gzipped. The tar is spooled
 * entry by entry into a private directory (files are stored under counters,
 * never under their archive names, and links are resolved inside the archive's
 * own namespace), then every image is verified (digests and sizes of all
 * blobs, config JSON) before the store is touched. Layers are added in order
 * and checked against the config's diff IDs; a failure garbage-collects the
 * layers added for that image, so no image row is ever half written.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract, pack as tarPack, type Extract, type Header, type Pack } from 'tar-stream';

type Headers = Partial<Header> & { name: string };
/** An entry being read: its header plus its data. */
type Entry = AsyncIterable<Buffer> & { header: Header };
import { InternalError, InvalidArgumentError, NotFoundError, UnavailableError, VesselError, errorMessage } from '../core/errors.js';
import type { ImageRecord, ImageStore, LayerRecord, ProgressFn } from './image-store.js';
import { MEDIA_TYPE, type Descriptor, type ImageConfig } from './oci.js';
import { normalizeTag, parseReference } from './reference.js';

export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const MANIFEST_TYPES = new Set<string>([MEDIA_TYPE.manifest, DOCKER_MANIFEST]);
const INDEX_TYPES = new Set<string>([MEDIA_TYPE.index, DOCKER_MANIFEST_LIST]);
const CONFIG_TYPES = new Set<string>([MEDIA_TYPE.config, DOCKER_CONFIG]);
/** JSON documents (index, manifests, configs) are read into memory; layers never are. */
const MAX_JSON_BYTES = 32 * 1024 * 1024;
const SHA256 = /^sha256:[a-f0-9]{64}$/;

function invalid(detail: string): InvalidArgumentError {
  return new InvalidArgumentError(`Invalid image archive: ${detail}`);
}

// ---------------------------------------------------------------------------
// Names

/** `busybox:latest` → `docker.io/library/busybox:latest`, as containerd names images. */
export function qualifiedName(name: string): string {
  const { repo } = parseReference(name);
  const first = repo.split('/')[0] ?? '';
  const hasHost = repo.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasHost) return name;
  return repo.includes('/') ? `docker.io/${name}` : `docker.io/library/${name}`;
}

/** The Vessel (familiar) form of a name found in an archive: `docker.io/library/x:t` → `x:t`. */
export function familiarName(name: string): string {
  let n = name;
  if (n.startsWith('docker.io/library/')) n = n.slice('docker.io/library/'.length);
  else if (n.startsWith('docker.io/')) n = n.slice('docker.io/'.length);
  else if (n.startsWith('index.docker.io/library/')) n = n.slice('index.docker.io/library/'.length);
  try {
    return normalizeTag(n);
  } catch {
    throw invalid(`bad image name ${JSON.stringify(name)}`);
  }
}

/** The platform Vessel runs images for (OCI architecture names). */
export function hostPlatform(): { os: string; architecture: string } {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch };
}

// ---------------------------------------------------------------------------
// Save

export interface SaveItem {
  image: ImageRecord;
  /** Names (normalized tags) this image is saved under; empty when named by ID. */
  names: string[];
}

interface BlobRef {
  digest: string;
  size: number;
}

interface SaveImagePlan extends SaveItem {
  manifest: BlobRef;
  config: BlobRef;
  layers: BlobRef[];
}

export interface SavePlan {
  images: SaveImagePlan[];
  /** Every blob once, in write order. */
  blobs: BlobRef[];
}

/**
 * What `save` writes for the given references, Docker's rules: a tag saves
 * that tag; a repository without a tag saves all of its tags; an ID saves the
 * image without names. The same image named twice is written once.
 */
export function selectImages(store: ImageStore, refs: string[]): SaveItem[] {
  if (refs.length === 0) throw new InvalidArgumentError('No images to save');
  const byId = new Map<string, SaveItem>();
  const add = (image: ImageRecord, name: string | null) => {
    let item = byId.get(image.id);
    if (!item) byId.set(image.id, (item = { image, names: [] }));
    if (name && !item.names.includes(name)) item.names.push(name);
  };
  const all = store.list();
  for (const ref of refs) {
    const looksLikeId = /^(?:sha256:)?[a-f0-9]{4,64}$/.test(ref);
    let parsed: ReturnType<typeof parseReference> | null = null;
    try {
      parsed = parseReference(ref);
    } catch (e) {
      if (!looksLikeId) throw e;
    }
    if (parsed && !parsed.tag && !parsed.digest && !looksLikeId) {
      const repoTags = all.flatMap((i) => i.tags.filter((t) => t.slice(0, t.lastIndexOf(':')) === parsed.repo).map((t) => ({ i, t })));
      if (repoTags.length) {
        for (const { i, t } of repoTags) add(i, t);
        continue;
      }
    }
    const image = store.resolve(ref);
    let tag: string | null = null;
    try {
      tag = normalizeTag(ref);
    } catch {
      tag = null;
    }
    add(image, tag && image.tags.includes(tag) ? tag : null);
  }
  return [...byId.values()];
}

/** Checks that every blob of the images is in the content store and records sizes (before any byte is sent). */
export async function planSave(store: ImageStore, items: SaveItem[]): Promise<SavePlan> {
  const seen = new Map<string, BlobRef>();
  const blob = async (digest: string, owner: string): Promise<BlobRef> => {
    const known = seen.get(digest);
    if (known) return known;
    let size: number;
    try {
      size = (await fs.stat(store.content.blobPath(digest))).size;
    } catch (e) {
      throw new NotFoundError(`Cannot save ${owner}: blob ${digest} is missing from the content store`, { cause: e });
    }
    const ref = { digest, size };
    seen.set(digest, ref);
    return ref;
  };
  const images: SaveImagePlan[] = [];
  for (const item of items) {
    const owner = item.names[0] ?? item.image.id;
    const layers: BlobRef[] = [];
    for (const chainId of item.image.layers) {
      const layer = store.getLayer(chainId);
      if (!layer) throw new NotFoundError(`Cannot save ${owner}: layer ${chainId} is missing`);
      layers.push(await blob(layer.digest, owner));
    }
    const config = await blob(item.image.id, owner);
    const manifest = await blob(item.image.manifestDigest, owner);
    images.push({ ...item, manifest, config, layers });
  }
  return { images, blobs: [...seen.values()] };
}

const FILE_HEADER = { mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: new Date(0) } as const;

function blobName(digest: string): string {
  return `blobs/sha256/${digest.slice('sha256:'.length)}`;
}

/** The OCI `index.json` of a save. */
export function indexJson(plan: SavePlan): object {
  const manifests: Descriptor[] = [];
  for (const img of plan.images) {
    const base = {
      mediaType: MEDIA_TYPE.manifest,
      digest: img.manifest.digest,
      size: img.manifest.size,
    };
    const platform = { architecture: img.image.config.architecture, os: img.image.config.os };
    if (img.names.length === 0) manifests.push({ ...base, platform } as Descriptor);
    for (const name of img.names) {
      manifests.push({
        ...base,
        annotations: { [ANNOTATION_IMAGE_NAME]: qualifiedName(name), [ANNOTATION_REF_NAME]: name },
        platform,
      } as Descriptor);
    }
  }
  return { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests };
}

/** The docker-archive `manifest.json` of a save. */
export function dockerManifestJson(plan: SavePlan): object {
  return plan.images.map((img) => ({
    Config: blobName(img.config.digest),
    RepoTags: img.names.length ? img.names : null,
    Layers: img.layers.map((l) => blobName(l.digest)),
  }));
}

/** Streams the archive for `plan` into `out`; blobs are copied from the content store, never buffered. */
export async function writeImageArchive(store: ImageStore, plan: SavePlan, out: Writable): Promise<void> {
  const pk = tarPack();
  const piping = pipeline(pk, out);
  let failure: { error: unknown } | undefined;
  try {
    await addBytes(pk, 'oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await addDir(pk, 'blobs/');
    await addDir(pk, 'blobs/sha256/');
    for (const b of plan.blobs) await addBlob(pk, store, b);
    await addBytes(pk, 'index.json', JSON.stringify(indexJson(plan)));
    await addBytes(pk, 'manifest.json', JSON.stringify(dockerManifestJson(plan)));
    pk.finalize();
  } catch (e) {
    failure = { error: e };
    pk.destroy(e instanceof Error ? e : new Error(String(e)));
  }
  let pipeError: { error: unknown } | undefined;
  try {
    await piping;
  } catch (e) {
    pipeError = { error: e };
  }
  const chosen = failure && !(pipeError && isTeardown(failure.error)) ? failure : pipeError;
  if (chosen) {
    const e = chosen.error;
    if (e instanceof VesselError) throw e;
    if (chosen === pipeError) throw new OutputClosedError(`Image archive output closed: ${errorMessage(e)}`, { cause: e });
    throw new InternalError(`Cannot write image archive: ${errorMessage(e)}`, { cause: e });
  }
}

/** The reader of a save went away (client disconnected, pipe closed): not the archive's fault. */
export class OutputClosedError extends UnavailableError {
  override name = 'OutputClosedError';
}

function isTeardown(e: unknown): boolean {
  const code = String((e as NodeJS.ErrnoException)?.code);
  return ['ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED'].includes(code) || /premature|destroyed/i.test(errorMessage(e));
}

function entryDone(pk: Pack, header: Headers, data?: Buffer): { sink: EntrySink; done: Promise<void> } {
  let sink!: EntrySink;
  const done = new Promise<void>((resolve, reject) => {
    const cb = (err?: Error | null) => (err ? reject(err) : resolve());
    sink = (data !== undefined ? pk.entry(header, data, cb) : pk.entry(header, cb)) as unknown as EntrySink;
  });
  // The failure also reaches `cb`; without a listener a torn-down sink's 'error' would be uncaught.
  sink.on('error', () => undefined);
  return { sink, done };
}

async function addDir(pk: Pack, name: string): Promise<void> {
  await entryDone(pk, { ...FILE_HEADER, name, type: 'directory', mode: 0o755 }).done;
}

async function addBytes(pk: Pack, name: string, text: string): Promise<void> {
  const data = Buffer.from(text);
  await entryDone(pk, { ...FILE_HEADER, name, type: 'file', size: data.length }, data).done;
}

/** The part of tar-stream's entry sink (a streamx Writable) used here. */
interface EntrySink {
  write(chunk: Buffer): boolean;
  end(): void;
  destroy(err?: Error): void;
  readonly destroyed: boolean;
  on(event: 'drain' | 'close' | 'error', fn: () => void): unknown;
  off(event: 'drain' | 'close' | 'error', fn: () => void): unknown;
}

async function addBlob(pk: Pack, store: ImageStore, blob: BlobRef): Promise<void> {
  const { sink, done } = entryDone(pk, { ...FILE_HEADER, name: blobName(blob.digest), type: 'file', size: blob.size });
  done.catch(() => undefined); // awaited below; a write failure must not become unhandled meanwhile
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of store.content.openRead(blob.digest) as AsyncIterable<Buffer>) {
      if (pk.destroyed || sink.destroyed) throw Object.assign(new Error('archive output closed'), { code: 'ERR_STREAM_DESTROYED' });
      hash.update(chunk);
      bytes += chunk.length;
      if (bytes > blob.size) break;
      if (!sink.write(chunk)) await drained(sink);
    }
  } catch (e) {
    sink.destroy(e instanceof Error ? e : new Error(String(e)));
    throw e;
  }
  const digest = `sha256:${hash.digest('hex')}`;
  if (bytes !== blob.size || digest !== blob.digest) {
    const e = new InternalError(`Blob ${blob.digest} in the content store is corrupt (read ${bytes} bytes, digest ${digest})`);
    sink.destroy(e);
    throw e;
  }
  sink.end();
  await done;
}

function drained(sink: EntrySink): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      sink.off('drain', done);
      sink.off('close', done);
      resolve();
    };
    sink.on('drain', done);
    sink.on('close', done);
  });
}

// ---------------------------------------------------------------------------
// Spool: the archive read in one pass into a private directory

export interface SpooledFile {
  /** The normalized archive name it was first stored under. */
  name: string;
  /** Where its bytes are (a counter-named file inside the spool directory). */
  path: string;
  digest: string;
  size: number;
}

/** Normalizes an archive entry name (`./a//b/` → `a/b`); '' is the archive root. Rejects escapes. */
export function normalizeEntryName(raw: string): string {
  if (raw.includes('\0')) throw invalid(`entry name with a NUL byte`);
  if (raw.startsWith('/')) throw invalid(`absolute entry name ${JSON.stringify(raw)}`);
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw invalid(`entry name ${JSON.stringify(raw)} leaves the archive`);
  return parts.join('/');
}

const MAX_LINK_HOPS = 16;

export class ArchiveSpool {
  readonly #files = new Map<string, SpooledFile>();
  /** Symbolic links: name → target (already resolved against the link's directory). */
  readonly #symlinks = new Map<string, string>();
  #count = 0;

  private constructor(readonly dir: string) {}

  /**
   * Reads the whole tar (plain or gzip) from `input` into `dir` (which must
   * exist and be private). Every file is hashed while it is written.
   */
  static async read(input: Readable, dir: string): Promise<ArchiveSpool> {
    const spool = new ArchiveSpool(dir);
    const extract = tarExtract();
    const consuming = (async () => {
      for await (const entry of extract as AsyncIterable<Entry>) await spool.#take(entry);
    })();
    const feeding = feed(input, extract);
    feeding.catch((e: unknown) => extract.destroy(e instanceof Error ? e : new Error(String(e))));
    consuming.catch((e: unknown) => extract.destroy(e instanceof Error ? e : new Error(String(e))));
    const [f, c] = await Promise.allSettled([feeding, consuming]);
    if (f.status === 'rejected') throw classifySpoolError(f.reason);
    if (c.status === 'rejected') throw classifySpoolError(c.reason);
    return spool;
  }

  async #take(entry: Entry): Promise<void> {
    const h = entry.header;
    try {
      const name = normalizeEntryName(h.name);
      switch (h.type) {
        case 'file':
        case 'contiguous-file':
        case null:
        case undefined: {
          if (name === '') throw invalid('a file entry without a name');
          const file = await this.#store(name, entry);
          this.#symlinks.delete(name);
          this.#files.set(name, file);
          return;
        }
        case 'directory':
          return;
        case 'symlink': {
          const target = h.linkname ?? '';
          if (target.startsWith('/')) throw invalid(`symbolic link ${JSON.stringify(h.name)} points outside the archive`);
          const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(name), target));
          if (resolved === '..' || resolved.startsWith('../')) {
            throw invalid(`symbolic link ${JSON.stringify(h.name)} points outside the archive`);
          }
          this.#files.delete(name);
          this.#symlinks.set(name, normalizeEntryName(resolved));
          return;
        }
        case 'link': {
          const target = this.get(normalizeEntryName(h.linkname ?? ''));
          if (!target) throw invalid(`hard link ${JSON.stringify(h.name)} to a missing entry ${JSON.stringify(h.linkname)}`);
          this.#symlinks.delete(name);
          this.#files.set(name, target);
          return;
        }
        default:
          throw invalid(`unexpected ${h.type} entry ${JSON.stringify(h.name)}`);
      }
    } finally {
      for await (const _ of entry); // tar-stream stalls until every entry's data is consumed
    }
  }

  async #store(name: string, data: AsyncIterable<Buffer>): Promise<SpooledFile> {
    const file = path.join(this.dir, String(++this.#count));
    const hash = createHash('sha256');
    let size = 0;
    const fh = await fs.open(file, 'wx', 0o600);
    try {
      for await (const chunk of data) {
        hash.update(chunk);
        size += chunk.length;
        await fh.write(chunk);
      }
    } finally {
      await fh.close();
    }
    return { name, path: file, digest: `sha256:${hash.digest('hex')}`, size };
  }

  /** The file stored under `name`, following links inside the archive; undefined when absent. */
  get(name: string): SpooledFile | undefined {
    let n = normalizeEntryName(name);
    for (let hops = 0; hops <= MAX_LINK_HOPS; hops++) {
      const f = this.#files.get(n);
      if (f) return f;
      // A link may also sit on a parent directory (`<id>/` → `../<other>/`).
      const parts = n.split('/');
      let next: string | undefined;
      for (let i = parts.length; i > 0 && next === undefined; i--) {
        const target = this.#symlinks.get(parts.slice(0, i).join('/'));
        if (target !== undefined) next = [target, ...parts.slice(i)].filter(Boolean).join('/');
      }
      if (next === undefined) return undefined;
      n = normalizeEntryName(next);
    }
    throw invalid(`too many levels of links at ${JSON.stringify(name)}`);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** The file at `name`, or a clear error naming `what` it should have been. */
  need(name: string, what: string): SpooledFile {
    const f = this.get(name);
    if (!f) throw invalid(`${what} ${JSON.stringify(name)} is missing`);
    return f;
  }

  async readJson<T>(file: SpooledFile, what: string): Promise<T> {
    if (file.size > MAX_JSON_BYTES) throw invalid(`${what} is too large (${file.size} bytes)`);
    const text = await fs.readFile(file.path, 'utf8');
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw invalid(`${what} is not valid JSON: ${errorMessage(e)}`);
    }
  }

  open(file: SpooledFile): Readable {
    return createReadStream(file.path);
  }
}

/** Decompresses gzip (sniffed) and writes `input` into the tar parser; never throws on the parser's own failure. */
async function feed(input: Readable, extract: Extract): Promise<void> {
  const it: AsyncIterator<Buffer> = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  for (let length = 0; length < 2; ) {
    const r = await it.next();
    if (r.done) break;
    const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    head.push(chunk);
    length += chunk.length;
  }
  const magic = Buffer.concat(head);
  const gzipped = magic[0] === 0x1f && magic[1] === 0x8b;
  async function* replay(): AsyncGenerator<Buffer> {
    try {
      yield* head;
      for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
    } finally {
      await it.return?.();
    }
  }
  async function sink(source: AsyncIterable<Buffer>): Promise<void> {
    for await (const chunk of source) {
      if (extract.destroyed) return; // the reading side failed and holds the error
      if (!extract.write(chunk)) await drainedExtract(extract);
    }
    extract.end(null);
  }
  if (gzipped) await pipeline(replay(), createGunzip({ chunkSize: 128 * 1024 }), sink);
  else await pipeline(replay(), sink);
}

function drainedExtract(extract: Extract): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      extract.off('drain', done);
      extract.off('close', done);
      resolve();
    };
    extract.on('drain', done);
    extract.on('close', done);
  });
}

function classifySpoolError(e: unknown): unknown {
  if (e instanceof VesselError) return e;
  const code = String((e as NodeJS.ErrnoException)?.code);
  const text = errorMessage(e);
  if (code.startsWith('Z_')) return invalid(`gzip: ${text}`);
  if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || /aborted/i.test(text)) return invalid('the upload ended early');
  // File system failures while spooling (ENOSPC…) are the daemon's, not the archive's.
  if (/^E[A-Z0-9]+$/.test(code)) return new InternalError(`Cannot spool image archive: ${text}`, { cause: e });
  if (/unexpected end/i.test(text)) return invalid('the tar is truncated');
  return invalid(`not a tar archive: ${text}`);
}

// ---------------------------------------------------------------------------
// Plan: what an archive holds, verified

export interface ArchiveLayer {
  file: SpooledFile;
  /** Where it is in the archive, for messages. */
  label: string;
}

export interface ArchiveImage {
  /** Digest of the config bytes in the archive (the original image ID). */
  configDigest: string;
  config: ImageConfig;
  layers: ArchiveLayer[];
  names: string[];
  format: 'oci' | 'docker';
}

interface RawDescriptor {
  mediaType?: unknown;
  digest?: unknown;
  size?: unknown;
  annotations?: unknown;
  platform?: { os?: unknown; architecture?: unknown; variant?: unknown };
}

interface RawDockerEntry {
  Config?: unknown;
  RepoTags?: unknown;
  Layers?: unknown;
}

/** Reads the descriptor's blob (`blobs/<alg>/<hex>`) and verifies its digest and size. */
function blobFile(spool: ArchiveSpool, d: RawDescriptor, what: string): SpooledFile {
  if (typeof d.digest !== 'string' || !SHA256.test(d.digest)) {
    if (typeof d.digest === 'string' && /^[a-z0-9+._-]+:/.test(d.digest) && !d.digest.startsWith('sha256:')) {
      throw invalid(`${what} uses an unsupported digest algorithm: ${d.digest}`);
    }
    throw invalid(`${what} has a malformed digest ${JSON.stringify(d.digest)}`);
  }
  const name = blobName(d.digest);
  const file = spool.get(name);
  if (!file) throw invalid(`${what} ${d.digest} is missing from the archive`);
  if (file.digest !== d.digest) throw new InvalidArgumentError(`Digest mismatch for ${what} ${name}: expected ${d.digest}, got ${file.digest}`);
  if (typeof d.size === 'number' && d.size !== file.size) {
    throw new InvalidArgumentError(`Size mismatch for ${what} ${name}: expected ${d.size} bytes, got ${file.size}`);
  }
  return file;
}

/** When an archive path names its own digest (`blobs/sha256/<hex>`, legacy `<hex>.json`), it must match. */
function checkNamedDigest(file: SpooledFile, archivePath: string, what: string): void {
  const norm = normalizeEntryName(archivePath);
  const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(norm) ?? /^([a-f0-9]{64})\.json$/.exec(norm);
  if (m && file.digest !== `sha256:${m[1]}`) {
    throw new InvalidArgumentError(`Digest mismatch for ${what} ${norm}: expected sha256:${m[1]}, got ${file.digest}`);
  }
}

function checkConfig(raw: unknown, what: string): ImageConfig {
  const c = raw as Partial<ImageConfig> | null;
  if (!c || typeof c !== 'object' || Array.isArray(c)) throw invalid(`${what} is not an image config`);
  const diffIds = c.rootfs?.diff_ids;
  if (c.rootfs?.type !== 'layers' || !Array.isArray(diffIds) || !diffIds.every((d) => typeof d === 'string' && SHA256.test(d))) {
    throw invalid(`${what} has no valid rootfs.diff_ids`);
  }
  if (typeof c.os !== 'string' || typeof c.architecture !== 'string') throw invalid(`${what} has no os/architecture`);
  return c as ImageConfig;
}

function namesOf(annotations: unknown): string[] {
  if (!annotations || typeof annotations !== 'object') return [];
  const a = annotations as Record<string, unknown>;
  const full = a[ANNOTATION_IMAGE_NAME];
  if (typeof full === 'string' && full) return [familiarName(full)];
  const ref = a[ANNOTATION_REF_NAME];
  if (typeof ref === 'string' && ref) return [familiarName(ref)];
  return [];
}

/** Finds and verifies every image in the spooled archive. Touches nothing outside the spool. */
export async function planLoad(spool: ArchiveSpool): Promise<ArchiveImage[]> {
  const index = spool.get('index.json');
  const dockerManifest = spool.get('manifest.json');
  if (index) {
    const images = await planOci(spool, index);
    if (dockerManifest) {
      // Names a docker-archive manifest gives images the OCI index left unnamed.
      const docker = await planDocker(spool, dockerManifest, false);
      for (const img of images) {
        if (img.names.length) continue;
        const same = docker.find((d) => d.configDigest === img.configDigest);
        if (same) img.names.push(...same.names);
      }
    }
    return images;
  }
  if (dockerManifest) return planDocker(spool, dockerManifest, true);
  throw invalid('neither index.json (OCI layout) nor manifest.json (docker-archive) found');
}

async function planOci(spool: ArchiveSpool, indexFile: SpooledFile): Promise<ArchiveImage[]> {
  const index = await spool.readJson<{ manifests?: unknown }>(indexFile, 'index.json');
  if (!index || !Array.isArray(index.manifests)) throw invalid('index.json has no manifests list');
  const byManifest = new Map<string, ArchiveImage>();
  const out: ArchiveImage[] = [];
  for (const [i, d] of (index.manifests as RawDescriptor[]).entries()) {
    if (!d || typeof d !== 'object') throw invalid(`index.json manifest ${i + 1} is not a descriptor`);
    const names = namesOf(d.annotations);
    let desc = d;
    let file = blobFile(spool, desc, 'manifest');
    let doc = await spool.readJson<Record<string, unknown>>(file, `manifest ${desc.digest as string}`);
    if (isIndex(desc, doc)) {
      desc = pickPlatform(spool, doc, desc.digest as string);
      file = blobFile(spool, desc, 'manifest');
      doc = await spool.readJson<Record<string, unknown>>(file, `manifest ${desc.digest as string}`);
      if (isIndex(desc, doc)) throw invalid(`index ${d.digest as string} nests more than one level of image indexes`);
    }
    const key = desc.digest as string;
    const known = byManifest.get(key);
    if (known) {
      for (const n of names) if (!known.names.includes(n)) known.names.push(n);
      continue;
    }
    const img = await planOciManifest(spool, doc, key);
    img.names.push(...names.filter((n, j) => names.indexOf(n) === j));
    byManifest.set(key, img);
    out.push(img);
  }
  if (out.length === 0) throw invalid('index.json lists no images');
  return out;
}

function isIndex(d: RawDescriptor, doc: Record<string, unknown>): boolean {
  const mt = typeof d.mediaType === 'string' ? d.mediaType : typeof doc.mediaType === 'string' ? doc.mediaType : '';
  if (INDEX_TYPES.has(mt)) return true;
  if (MANIFEST_TYPES.has(mt)) return false;
  return Array.isArray(doc.manifests) && !('layers' in doc);
}

function pickPlatform(spool: ArchiveSpool, index: Record<string, unknown>, digest: string): RawDescriptor {
  const want = hostPlatform();
  const list = Array.isArray(index.manifests) ? (index.manifests as RawDescriptor[]) : [];
  const matches = list.filter((m) => m?.platform?.os === want.os && m.platform.architecture === want.architecture);
  // Several variants (arm v6/v7) or a multi-platform index saved with one platform's content: prefer what is present.
  const present = matches.find((m) => typeof m.digest === 'string' && SHA256.test(m.digest) && spool.has(blobName(m.digest)));
  const chosen = present ?? matches[0];
  if (!chosen) throw invalid(`image index ${digest} has no ${want.os}/${want.architecture} manifest`);
  return chosen;
}

async function planOciManifest(spool: ArchiveSpool, doc: Record<string, unknown>, digest: string): Promise<ArchiveImage> {
  const what = `manifest ${digest}`;
  const cfg = doc.config as RawDescriptor | undefined;
  const layers = doc.layers as RawDescriptor[] | undefined;
  if (!cfg || typeof cfg !== 'object' || !Array.isArray(layers)) throw invalid(`${what} is not an image manifest`);
  if (typeof cfg.mediaType === 'string' && !CONFIG_TYPES.has(cfg.mediaType)) {
    throw invalid(`${what} is not a container image (config media type ${cfg.mediaType})`);
  }
  const configFile = blobFile(spool, cfg, 'config');
  const config = checkConfig(await spool.readJson(configFile, `config ${configFile.digest}`), `config ${configFile.digest}`);
  const out: ArchiveLayer[] = [];
  for (const [i, l] of layers.entries()) {
    if (!l || typeof l !== 'object') throw invalid(`${what} layer ${i + 1} is not a descriptor`);
    const mt = typeof l.mediaType === 'string' ? l.mediaType : '';
    if (/zstd/.test(mt)) throw new InvalidArgumentError(`Unsupported layer compression: zstd (${l.digest as string})`);
    if (/encrypted/.test(mt)) throw new InvalidArgumentError(`Unsupported encrypted layer ${l.digest as string}`);
    const file = blobFile(spool, l, 'layer');
    out.push({ file, label: blobName(file.digest) });
  }
  if (out.length !== config.rootfs.diff_ids.length) {
    throw invalid(`${what} has ${out.length} layers but its config lists ${config.rootfs.diff_ids.length}`);
  }
  return { configDigest: configFile.digest, config, layers: out, names: [], format: 'oci' };
}

async function planDocker(spool: ArchiveSpool, file: SpooledFile, strict: boolean): Promise<ArchiveImage[]> {
  const entries = await spool.readJson<unknown>(file, 'manifest.json');
  if (!Array.isArray(entries)) throw invalid('manifest.json is not a list of images');
  const out: ArchiveImage[] = [];
  for (const [i, e] of (entries as RawDockerEntry[]).entries()) {
    const what = `manifest.json entry ${i + 1}`;
    if (!e || typeof e !== 'object' || typeof e.Config !== 'string') throw invalid(`${what} has no Config`);
    if (e.Layers !== undefined && e.Layers !== null && (!Array.isArray(e.Layers) || !e.Layers.every((l) => typeof l === 'string'))) {
      throw invalid(`${what} has malformed Layers`);
    }
    if (e.RepoTags !== undefined && e.RepoTags !== null && (!Array.isArray(e.RepoTags) || !e.RepoTags.every((t) => typeof t === 'string'))) {
      throw invalid(`${what} has malformed RepoTags`);
    }
    const names = ((e.RepoTags as string[] | null | undefined) ?? []).map(familiarName);
    const configFile = spool.need(e.Config, 'config');
    checkNamedDigest(configFile, e.Config, 'config');
    if (!strict) {
      out.push({ configDigest: configFile.digest, config: {} as ImageConfig, layers: [], names, format: 'docker' });
      continue;
    }
    const config = checkConfig(await spool.readJson(configFile, `config ${e.Config}`), `config ${e.Config}`);
    const layers: ArchiveLayer[] = [];
    for (const p of (e.Layers as string[] | null | undefined) ?? []) {
      const lf = spool.need(p, 'layer');
      checkNamedDigest(lf, p, 'layer');
      layers.push({ file: lf, label: normalizeEntryName(p) });
    }
    if (layers.length !== config.rootfs.diff_ids.length) {
      throw invalid(`${what} has ${layers.length} layers but its config lists ${config.rootfs.diff_ids.length}`);
    }
    out.push({ configDigest: configFile.digest, config, layers, names, format: 'docker' });
  }
  if (out.length === 0) throw invalid('manifest.json lists no images');
  return out;
}

// ---------------------------------------------------------------------------
// Load

export interface LoadedImage {
  id: string;
  names: string[];
  /** The config digest in the archive; equals `id` unless the config was not in canonical JSON form. */
  originalId: string;
}

export interface LoadOptions {
  progress?: ProgressFn;
  /** Called after each image is committed (the route prints "Loaded image: …"). */
  onLoaded?: (image: LoadedImage) => void;
}

/**
 * Loads every image of an archive. Each image is atomic: a failure removes the
 * layers added for it (gcLayers) and no image row is written; images loaded
 * before it stay (as with Docker).
 */
export async function loadImageArchive(store: ImageStore, input: Readable, options: LoadOptions = {}): Promise<LoadedImage[]> {
  const dir = await fs.mkdtemp(path.join(store.content.root, 'ingest', 'load-'));
  try {
    const spool = await ArchiveSpool.read(input, dir);
    const images = await planLoad(spool);
    const loaded: LoadedImage[] = [];
    for (const img of images) {
      const result = await loadOne(store, spool, img, options.progress);
      loaded.push(result);
      options.onLoaded?.(result);
    }
    return loaded;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function loadOne(store: ImageStore, spool: ArchiveSpool, img: ArchiveImage, progress?: ProgressFn): Promise<LoadedImage> {
  const added: LayerRecord[] = [];
  let parent: string | null = null;
  try {
    for (const [i, l] of img.layers.entries()) {
      progress?.({ status: 'Loading layer', id: l.file.digest.slice(7, 19), progressDetail: { current: 0, total: l.file.size } });
      const layer: LayerRecord = await store.addLayer(spool.open(l.file), parent, progress);
      const expected = img.config.rootfs.diff_ids[i];
      if (layer.diffId !== expected) {
        throw new InvalidArgumentError(`Layer ${l.label} does not match the image config: diff ID ${layer.diffId}, expected ${expected}`);
      }
      added.push(layer);
      parent = layer.chainId;
    }
    const image = await store.commitImage(img.config, added, img.names);
    return { id: image.id, names: img.names, originalId: img.configDigest };
  } catch (e) {
    await store.gcLayers().catch(() => undefined);
    if (e instanceof VesselError) throw e;
    throw new InternalError(`Cannot load image ${img.names[0] ?? img.configDigest}: ${errorMessage(e)}`, { cause: e });
  }
}
