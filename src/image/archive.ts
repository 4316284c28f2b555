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
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { InternalError, InvalidArgumentError, VesselError, errorMessage } from '../core/errors.js';
import type { ImageStore, LayerRecord, ProgressFn } from './image-store.js';
import { MEDIA_TYPE, type ImageConfig, type Manifest } from './oci.js';
import { CONFIG_TYPES, INDEX_TYPES, MANIFEST_TYPES, SHA256, familiarName, hostPlatform, invalid, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME } from './archive-names.js';
import { ArchiveSpool, normalizeEntryName, type SpooledFile } from './archive-spool.js';
import { blobName } from './archive-save.js';

export * from './archive-names.js';
export * from './archive-save.js';
export * from './archive-spool.js';

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
  /** The config file itself: its exact bytes become the image's config, so the ID is kept. */
  configFile: SpooledFile;
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
  return { configDigest: configFile.digest, configFile, config, layers: out, names: [], format: 'oci' };
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
      out.push({ configDigest: configFile.digest, configFile, config: {} as ImageConfig, layers: [], names, format: 'docker' });
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
    out.push({ configDigest: configFile.digest, configFile, config, layers, names, format: 'docker' });
  }
  if (out.length === 0) throw invalid('manifest.json lists no images');
  return out;
}

// ---------------------------------------------------------------------------
// Load

export interface LoadedImage {
  id: string;
  names: string[];
  /** The config digest in the archive; equals `id` (the exact config bytes are kept). */
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
    const image = await commitExact(store, await fs.readFile(img.configFile.path), added, img.names);
    return { id: image.id, names: img.names, originalId: img.configDigest };
  } catch (e) {
    await store.gcLayers().catch(() => undefined);
    if (e instanceof VesselError) throw e;
    throw new InternalError(`Cannot load image ${img.names[0] ?? img.configDigest}: ${errorMessage(e)}`, { cause: e });
  }
}

/**
 * Records an image with the archive's exact config bytes (as `docker load`
 * does: the image ID is the archive's config digest, even when another tool
 * wrote the JSON) and a manifest over the stored layer blobs.
 */
async function commitExact(store: ImageStore, configBytes: Buffer, layers: LayerRecord[], names: string[]) {
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.manifest,
    config: { mediaType: MEDIA_TYPE.config, digest: `sha256:${createHash('sha256').update(configBytes).digest('hex')}`, size: configBytes.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.blobSize })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return store.commitPulled({ configBytes, manifestBytes, layers: layers.map((l) => ({ existing: l })), tags: names, repoDigests: [] });
}
