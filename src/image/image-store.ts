/**
 * Images: the records that tie tags to configs, manifests and unpacked layers.
 *
 * Vocabulary:
 * - a *layer blob* is a tar (maybe gzipped) in the content store;
 * - a *snapshot* is that layer unpacked once into `<root>/l/<n>`, keyed by
 *   its chain ID (the identity of the layer together with all layers below);
 *   snapshots are shared read-only by every container through overlayfs;
 * - an *image* is an OCI config plus manifest; its ID is the config digest.
 *
 * Invariants: a snapshot directory exists only after its unpack completed
 * and was renamed into place; an image row exists only when all its layer
 * blobs are verified in the content store; layers no image refers to are
 * removed by `gcLayers`. A pulled layer's snapshot may still be missing
 * (unpacking, or interrupted by a restart): `ensureUnpacked` creates it
 * (layer-unpacker.ts), and must be awaited before `lowerDirs`.
 *
 * Pulled images keep the registry's exact config and manifest bytes
 * (`commitPulled`): the image ID is the config digest and the manifest
 * digest is the registry's, so a push of it reproduces both.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import type { Db } from '../store/db.js';
import { ContentStore } from './content-store.js';
import { ConflictError, InternalError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { normalizeTag, parseReference } from './reference.js';
import { unpackLayer } from './layer-unpack.js';
import { LayerUnpacker, type RunningUnpack } from './layer-unpacker.js';
import { MEDIA_TYPE, type ImageConfig, type Manifest } from './oci.js';

export interface ImageRecord {
  id: string;
  manifestDigest: string;
  created: string;
  size: number;
  config: ImageConfig;
  layers: string[];
  tags: string[];
  /** `repo@sha256:...` names this image was pulled as or pushed to. */
  repoDigests: string[];
}

/** What `commitPulled` records: exact bytes from a registry and the layers, bottom first. */
export interface PulledImage {
  configBytes: Buffer;
  manifestBytes: Buffer;
  /** Per manifest layer: a chain that already exists, or a blob just fetched. */
  layers: Array<{ existing: LayerRecord } | { fetched: FetchedLayer }>;
  tags: string[];
  repoDigests: string[];
}

/**
 * A layer blob verified in the content store, not recorded yet. `unpack` is
 * the unpack that followed its download, when there was one: `commitPulled`
 * hands it to the LayerUnpacker, and the pull's caller aborts it on failure.
 */
export interface FetchedLayer {
  diffId: string;
  digest: string;
  blobSize: number;
  mediaType: string;
  unpack: RunningUnpack | null;
}

export interface LayerRecord {
  chainId: string;
  diffId: string;
  parent: string | null;
  dir: number;
  size: number;
  digest: string;
  blobSize: number;
  mediaType: string;
}

export type ProgressFn = (msg: { status: string; id?: string; progressDetail?: { current?: number; total?: number } }) => void;

interface ImageRow {
  id: string;
  manifest_digest: string;
  created: string;
  size: number;
  config: string;
  layers: string;
}

export function chainIdOf(parent: string | null, diffId: string): string {
  if (!parent) return diffId;
  return `sha256:${createHash('sha256').update(`${parent} ${diffId}`).digest('hex')}`;
}

export class ImageStore {
  readonly content: ContentStore;
  readonly layerRoot: string;
  /** Creates missing snapshots (the only writer of pulled layers' directories). */
  readonly unpacker: LayerUnpacker;
  /** Snapshot numbers handed out but not yet in the layers table. */
  readonly #reservedDirs = new Set<number>();

  constructor(readonly root: string, private readonly db: Db) {
    this.content = new ContentStore(path.join(root, 'content'));
    this.layerRoot = path.join(root, 'l');
    this.unpacker = new LayerUnpacker(this);
  }

  /** Daemon shutdown: unpacks in flight are cancelled and their staging directories removed. */
  close(): Promise<void> {
    return this.unpacker.close();
  }

  async init(): Promise<void> {
    await this.content.init();
    await fs.mkdir(this.layerRoot, { recursive: true });
    // Unpacks interrupted by a crash, and snapshot dirs no record points to.
    const known = new Set(this.allLayers().map((l) => String(l.dir)));
    for (const name of await fs.readdir(this.layerRoot)) {
      if (!known.has(name)) await fs.rm(path.join(this.layerRoot, name), { recursive: true, force: true });
    }
  }

  snapshotDir(layer: LayerRecord | number): string {
    return path.join(this.layerRoot, String(typeof layer === 'number' ? layer : layer.dir));
  }

  /** The layer records of an image, bottom first. */
  layersOf(image: ImageRecord): LayerRecord[] {
    return image.layers.map((c) => {
      const l = this.getLayer(c);
      if (!l) throw new NotFoundError(`Image ${image.id} is missing a layer`);
      return l;
    });
  }

  /** Waits until every layer of the image has its snapshot, unpacking missing ones from their blobs. */
  ensureUnpacked(image: ImageRecord): Promise<void> {
    return this.unpacker.ensureUnpacked(this.layersOf(image));
  }

  /**
   * Layer directories of an image, top layer first (overlayfs lowerdir
   * order). Every layer must be unpacked (`ensureUnpacked` first): a missing
   * snapshot is a bug in the caller, reported loudly rather than mounted empty.
   */
  lowerDirs(image: ImageRecord): string[] {
    const layers = this.layersOf(image);
    const missing = layers.find((l) => !this.unpacker.isUnpacked(l));
    if (missing) {
      throw new InternalError(`Layer ${missing.digest} of image ${image.id.slice(7, 19)} is not unpacked: ensureUnpacked was not awaited`);
    }
    return layers.map((l) => this.snapshotDir(l)).reverse();
  }

  /** Where the image's layer directories are (or will be), top first; for display only. */
  layerPaths(image: ImageRecord): string[] {
    return this.layersOf(image)
      .map((l) => this.snapshotDir(l))
      .reverse();
  }

  /** Records a layer's uncompressed size once it is unpacked, and the sizes of the images that use it. */
  recordUnpackedSize(chainId: string, bytes: number): void {
    this.db.transaction(() => {
      this.db.prepare('UPDATE layers SET size = ? WHERE chain_id = ?').run(bytes, chainId);
      const rows = this.db.prepare('SELECT id, layers FROM images WHERE layers LIKE ?').all(`%${chainId}%`) as Array<{ id: string; layers: string }>;
      for (const r of rows) {
        const chain = JSON.parse(r.layers) as string[];
        const size = chain.reduce((a, c) => a + (this.getLayer(c)?.size ?? 0), 0);
        this.db.prepare('UPDATE images SET size = ? WHERE id = ?').run(size, r.id);
      }
    })();
  }

  getLayer(chainId: string): LayerRecord | null {
    const r = this.db.prepare('SELECT * FROM layers WHERE chain_id = ?').get(chainId) as
      | Record<string, unknown>
      | undefined;
    return r ? toLayer(r) : null;
  }

  allLayers(): LayerRecord[] {
    return (this.db.prepare('SELECT * FROM layers').all() as Record<string, unknown>[]).map(toLayer);
  }

  /**
   * Adds one layer blob on top of `parent`: stores the blob, unpacks it into a
   * new snapshot (unless the same chain already exists) and records it.
   */
  async addLayer(input: Readable, parent: string | null, progress?: ProgressFn): Promise<LayerRecord> {
    const blob = await this.content.write(input);
    const short = blob.digest.slice(7, 19);
    progress?.({ status: 'Unpacking', id: short });
    const tmp = path.join(this.layerRoot, `tmp-${randomBytes(6).toString('hex')}`);
    let result;
    try {
      result = await unpackLayer(this.content.openRead(blob.digest), tmp, { expectedDigest: blob.digest });
    } catch (e) {
      await fs.rm(tmp, { recursive: true, force: true });
      await this.removeBlobIfUnused(blob.digest);
      throw e;
    }
    const chainId = chainIdOf(parent, result.diffId);
    const existing = this.getLayer(chainId);
    if (existing) {
      await fs.rm(tmp, { recursive: true, force: true });
      progress?.({ status: 'Already exists', id: short });
      return existing;
    }
    const next = this.#allocDir();
    try {
      await fs.rename(tmp, this.snapshotDir(next));
    } catch (e) {
      this.#reservedDirs.delete(next);
      await fs.rm(tmp, { recursive: true, force: true });
      throw e;
    }
    const layer: LayerRecord = {
      chainId,
      diffId: result.diffId,
      parent,
      dir: next,
      size: result.unpackedBytes,
      digest: blob.digest,
      blobSize: blob.size,
      mediaType: result.digest === result.diffId ? MEDIA_TYPE.layer : MEDIA_TYPE.layerGzip,
    };
    this.db
      .prepare(
        'INSERT INTO layers (chain_id, diff_id, parent, dir, size, digest, blob_size, media_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(layer.chainId, layer.diffId, layer.parent, layer.dir, layer.size, layer.digest, layer.blobSize, layer.mediaType);
    this.#reservedDirs.delete(next);
    progress?.({ status: 'Layer ready', id: short });
    return layer;
  }

  /** A fresh snapshot number: above every recorded and every reserved one. */
  #allocDir(): number {
    const max = (this.db.prepare('SELECT COALESCE(MAX(dir), 0) AS n FROM layers').get() as { n: number }).n;
    const n = Math.max(max, ...this.#reservedDirs) + 1;
    this.#reservedDirs.add(n);
    return n;
  }

  /**
   * Records a pulled image in one step: stores the exact config and
   * manifest bytes, gives fetched layers snapshot numbers, and inserts
   * layers, image, tags and repo digests in one transaction. Then each new
   * layer's unpack goes on in the background (the LayerUnpacker owns it):
   * the one that followed the download, or one started from the blob. On
   * failure everything this call created is removed again (unpacks still
   * running are the caller's to abort). An image with the same ID is kept as it is.
   */
  async commitPulled(p: PulledImage): Promise<ImageRecord> {
    const config = JSON.parse(p.configBytes.toString('utf8')) as ImageConfig;
    const newBlobs: string[] = [];
    const writeExact = async (bytes: Buffer) => {
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      if (!(await this.content.has(digest))) newBlobs.push(digest);
      return this.content.writeBytes(bytes);
    };
    const renamed: Array<{ dir: number; fetched: FetchedLayer; rec: LayerRecord }> = [];
    try {
      // An image with this ID is kept as it is (with its own manifest): only names are added.
      const id = `sha256:${createHash('sha256').update(p.configBytes).digest('hex')}`;
      const known = !!this.db.prepare('SELECT 1 FROM images WHERE id = ?').get(id);
      const configBlob = known ? { digest: id } : await writeExact(p.configBytes);
      const manifestBlob = known ? { digest: '' } : await writeExact(p.manifestBytes);
      const chain: LayerRecord[] = [];
      let parent: string | null = null;
      for (const l of p.layers) {
        if ('existing' in l) {
          chain.push(l.existing);
          parent = l.existing.chainId;
          continue;
        }
        const f = l.fetched;
        const dir = this.#allocDir();
        const rec: LayerRecord = {
          chainId: chainIdOf(parent, f.diffId),
          diffId: f.diffId,
          parent,
          dir,
          size: f.blobSize, // the blob's size until the unpack records the real one (recordUnpackedSize)
          digest: f.digest,
          blobSize: f.blobSize,
          mediaType: f.mediaType,
        };
        renamed.push({ dir, fetched: f, rec });
        chain.push(rec);
        parent = rec.chainId;
      }
      const size = chain.reduce((a, l) => a + l.size, 0);
      const tags = p.tags.map(normalizeTag);
      const unused: number[] = [];
      this.db.transaction(() => {
        for (const r of chain) {
          if (this.getLayer(r.chainId)) {
            if (renamed.some((x) => x.dir === r.dir)) unused.push(r.dir); // someone recorded the same chain meanwhile
            continue;
          }
          this.db
            .prepare(
              'INSERT INTO layers (chain_id, diff_id, parent, dir, size, digest, blob_size, media_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
            )
            .run(r.chainId, r.diffId, r.parent, r.dir, r.size, r.digest, r.blobSize, r.mediaType);
        }
        this.db
          .prepare('INSERT OR IGNORE INTO images (id, manifest_digest, created, size, config, layers) VALUES (?, ?, ?, ?, ?, ?)')
          .run(
            configBlob.digest,
            manifestBlob.digest,
            config.created ?? new Date().toISOString(),
            size,
            p.configBytes.toString('utf8'),
            JSON.stringify(chain.map((l) => l.chainId)),
          );
        for (const t of tags) this.db.prepare('INSERT OR REPLACE INTO tags (name, image_id) VALUES (?, ?)').run(t, configBlob.digest);
        for (const d of p.repoDigests) {
          this.db.prepare('INSERT OR REPLACE INTO repo_digests (name, image_id) VALUES (?, ?)').run(d, configBlob.digest);
        }
      })();
      for (const r of renamed) {
        if (unused.includes(r.dir)) {
          r.fetched.unpack?.abort();
          await r.fetched.unpack?.result.catch(() => {});
        } else if (r.fetched.unpack) {
          this.unpacker.adopt(r.rec, r.fetched.unpack);
        } else {
          this.unpacker.ensureLayer(r.rec).catch(() => {}); // reported to whoever needs the layer
        }
      }
      return this.resolve(configBlob.digest);
    } catch (e) {
      for (const d of newBlobs) if (!this.#blobInUse(d)) await this.content.remove(d);
      throw e;
    } finally {
      for (const r of renamed) this.#reservedDirs.delete(r.dir);
    }
  }

  /** Whether any layer or image refers to a blob (layer blob, config or manifest). */
  #blobInUse(digest: string): boolean {
    return !!(
      this.db.prepare('SELECT 1 FROM layers WHERE digest = ?').get(digest) ??
      this.db.prepare('SELECT 1 FROM images WHERE id = ? OR manifest_digest = ?').get(digest, digest)
    );
  }

  /** Removes a downloaded blob unless something refers to it (cleanup after a failed pull). */
  async removeBlobIfUnreferenced(digest: string): Promise<void> {
    if (!this.#blobInUse(digest)) await this.content.remove(digest);
  }

  /** Records `repo@digest` for an image (after a push). */
  addRepoDigest(imageId: string, name: string): void {
    this.db.prepare('INSERT OR REPLACE INTO repo_digests (name, image_id) VALUES (?, ?)').run(name, imageId);
  }

  /** Remembers that `registry` holds `digest` in `repo` (for cross-repository mounts). */
  recordBlobSource(digest: string, registry: string, repo: string): void {
    this.db.prepare('INSERT OR IGNORE INTO blob_sources (digest, registry, repo) VALUES (?, ?, ?)').run(digest, registry, repo);
  }

  /** Repositories on `registry` known to hold `digest`. */
  blobSources(digest: string, registry: string): string[] {
    return (
      this.db.prepare('SELECT repo FROM blob_sources WHERE digest = ? AND registry = ? ORDER BY repo').all(digest, registry) as Array<{
        repo: string;
      }>
    ).map((r) => r.repo);
  }

  /**
   * `addLayer` for a tar produced on the fly (e.g. `writeLayerFromUpper` for a
   * commit): `write` streams the tar into `out` (and ends it, or it is ended
   * when `write` resolves) while the blob is stored; then it is unpacked and
   * recorded exactly like `addLayer`. If either side fails, the other is
   * stopped and awaited, and the root cause is thrown.
   */
  async addLayerFromWriter(
    write: (out: Writable) => Promise<unknown>,
    parent: string | null,
    progress?: ProgressFn,
  ): Promise<LayerRecord> {
    const pass = new PassThrough({ highWaterMark: 256 * 1024 });
    const writing = (async () => {
      await write(pass);
      if (!pass.writableEnded) pass.end();
    })();
    writing.catch((e: unknown) => pass.destroy(e instanceof Error ? e : new Error(String(e))));
    const adding = this.addLayer(pass, parent, progress);
    adding.catch(() => pass.destroy()); // a writer still writing sees its output close
    const [w, a] = await Promise.allSettled([writing, adding]);
    if (a.status === 'fulfilled') {
      if (w.status === 'rejected') throw w.reason;
      return a.value;
    }
    // The writer's failure destroyed the stream the store was reading (same error), or
    // the store failed on its own and the writer only saw its output close.
    const teardown = (e: unknown): boolean =>
      ['ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED'].includes(String((e as NodeJS.ErrnoException)?.code));
    const causes = (e: unknown): unknown[] => (e instanceof Error && e.cause !== undefined ? [e, ...causes(e.cause)] : [e]);
    if (w.status === 'rejected' && (causes(w.reason).includes(a.reason) || teardown(a.reason))) throw w.reason;
    throw a.reason;
  }

  /** Writes config + manifest for layers that already have snapshots, records the image, applies tags. */
  async commitImage(config: ImageConfig, layers: LayerRecord[], tags: string[]): Promise<ImageRecord> {
    const configJson = JSON.stringify(config);
    const configBlob = await this.content.writeBytes(configJson);
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.manifest,
      config: { mediaType: MEDIA_TYPE.config, digest: configBlob.digest, size: configBlob.size },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.blobSize })),
    };
    const manifestBlob = await this.content.writeBytes(JSON.stringify(manifest));
    const size = layers.reduce((a, l) => a + l.size, 0);
    const normalized = tags.map(normalizeTag);
    this.db.transaction(() => {
      this.db
        .prepare(
          'INSERT OR IGNORE INTO images (id, manifest_digest, created, size, config, layers) VALUES (?, ?, ?, ?, ?, ?)',
        )
        .run(
          configBlob.digest,
          manifestBlob.digest,
          config.created ?? new Date().toISOString(),
          size,
          configJson,
          JSON.stringify(layers.map((l) => l.chainId)),
        );
      for (const t of normalized) {
        this.db.prepare('INSERT OR REPLACE INTO tags (name, image_id) VALUES (?, ?)').run(t, configBlob.digest);
      }
    })();
    return this.resolve(configBlob.digest);
  }

  list(): ImageRecord[] {
    const rows = this.db.prepare('SELECT * FROM images ORDER BY created DESC').all() as ImageRow[];
    return rows.map((r) => this.toImage(r));
  }

  /** Finds an image by tag, full ID, or unique ID prefix. */
  resolve(nameOrId: string): ImageRecord {
    const found = this.tryResolve(nameOrId);
    if (!found) throw new NotFoundError(`No such image: ${nameOrId}`);
    return found;
  }

  tryResolve(nameOrId: string): ImageRecord | null {
    const idMatch = /^(?:sha256:)?([a-f0-9]{4,64})$/.exec(nameOrId);
    if (idMatch?.[1]?.length === 64) {
      // A full ID (what containers refer to their image by): one indexed lookup.
      const row = this.db.prepare('SELECT * FROM images WHERE id = ?').get(`sha256:${idMatch[1]}`) as ImageRow | undefined;
      if (row) return this.toImage(row);
    }
    if (idMatch) {
      const rows = this.db
        .prepare('SELECT * FROM images WHERE id LIKE ?')
        .all(`sha256:${idMatch[1]}%`) as ImageRow[];
      if (rows.length === 1) return this.toImage(rows[0] as ImageRow);
      if (rows.length > 1) throw new InvalidArgumentError(`Ambiguous image ID prefix: ${nameOrId}`);
      if (nameOrId.startsWith('sha256:')) return null;
    }
    if (nameOrId.includes('@')) {
      parseReference(nameOrId);
      const r = this.db
        .prepare('SELECT images.* FROM repo_digests JOIN images ON images.id = repo_digests.image_id WHERE repo_digests.name = ?')
        .get(nameOrId) as ImageRow | undefined;
      return r ? this.toImage(r) : null;
    }
    const tag = normalizeTag(nameOrId);
    const row = this.db
      .prepare('SELECT images.* FROM tags JOIN images ON images.id = tags.image_id WHERE tags.name = ?')
      .get(tag) as ImageRow | undefined;
    return row ? this.toImage(row) : null;
  }

  tag(source: string, target: string): void {
    const image = this.resolve(source);
    this.db.prepare('INSERT OR REPLACE INTO tags (name, image_id) VALUES (?, ?)').run(normalizeTag(target), image.id);
  }

  /**
   * Docker's `rmi`: a tag name untags (and deletes the image when that was
   * its last tag); an ID deletes the image, which needs `force` when it has
   * several tags. Images used by containers are refused unless forced.
   */
  async remove(
    nameOrId: string,
    options: { force: boolean; usedBy: (imageId: string) => string[] },
  ): Promise<Array<{ Untagged?: string; Deleted?: string }>> {
    const image = this.resolve(nameOrId);
    const out: Array<{ Untagged?: string; Deleted?: string }> = [];
    if (nameOrId.includes('@') && (image.tags.length > 0 || image.repoDigests.length > 1)) {
      this.db.prepare('DELETE FROM repo_digests WHERE name = ?').run(nameOrId);
      return [{ Untagged: nameOrId }];
    }
    const byTag =
      !nameOrId.includes('@') && (!/^(?:sha256:)?[a-f0-9]{4,64}$/.test(nameOrId) || image.tags.includes(normalizeTag(nameOrId)));
    if (byTag && image.tags.length > 1) {
      const t = normalizeTag(nameOrId);
      this.db.prepare('DELETE FROM tags WHERE name = ?').run(t);
      return [{ Untagged: t }];
    }
    if (!byTag && image.tags.length > 1 && !options.force) {
      throw new ConflictError(
        `Unable to delete ${image.id.slice(7, 19)} (must be forced): image is referenced in multiple repositories`,
      );
    }
    const users = options.usedBy(image.id);
    if (users.length && !options.force) {
      throw new ConflictError(
        `Unable to remove image ${nameOrId} (must force): image is being used by container ${users[0]?.slice(0, 12)}`,
      );
    }
    for (const t of [...image.tags, ...image.repoDigests]) out.push({ Untagged: t });
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM tags WHERE image_id = ?').run(image.id);
      this.db.prepare('DELETE FROM repo_digests WHERE image_id = ?').run(image.id);
      if (!users.length) this.db.prepare('DELETE FROM images WHERE id = ?').run(image.id);
    })();
    if (!users.length) {
      out.push({ Deleted: image.id });
      await this.content.remove(image.id);
      await this.content.remove(image.manifestDigest);
      await this.gcLayers();
    }
    return out;
  }

  /** Removes dangling images (or all unused ones with `all`) that no container uses. */
  async prune(options: { all: boolean; usedBy: (imageId: string) => string[] }): Promise<{
    deleted: Array<{ Untagged?: string; Deleted?: string }>;
    reclaimed: number;
  }> {
    const deleted: Array<{ Untagged?: string; Deleted?: string }> = [];
    let reclaimed = 0;
    for (const image of this.list()) {
      if (options.usedBy(image.id).length) continue;
      if ((image.tags.length || image.repoDigests.length) && !options.all) continue; // pulled by digest: not dangling
      const before = this.layerBytes();
      deleted.push(...(await this.remove(image.id, { force: true, usedBy: () => [] })));
      reclaimed += before - this.layerBytes();
    }
    return { deleted, reclaimed };
  }

  /** Removes snapshots and blobs of layers no image refers to. */
  async gcLayers(): Promise<void> {
    const used = new Set<string>();
    for (const r of this.db.prepare('SELECT layers FROM images').all() as Array<{ layers: string }>) {
      for (const c of JSON.parse(r.layers) as string[]) used.add(c);
    }
    for (const layer of this.allLayers()) {
      if (used.has(layer.chainId)) continue;
      this.db.prepare('DELETE FROM layers WHERE chain_id = ?').run(layer.chainId);
      await this.unpacker.cancel(layer.chainId); // no job renames into the directory after this
      await fs.rm(this.snapshotDir(layer), { recursive: true, force: true });
      await this.removeBlobIfUnused(layer.digest);
    }
  }

  private async removeBlobIfUnused(digest: string): Promise<void> {
    const r = this.db.prepare('SELECT 1 FROM layers WHERE digest = ?').get(digest);
    if (!r) await this.content.remove(digest);
  }

  private layerBytes(): number {
    return (this.db.prepare('SELECT COALESCE(SUM(size), 0) AS s FROM layers').get() as { s: number }).s;
  }

  private toImage(r: ImageRow): ImageRecord {
    const tags = (this.db.prepare('SELECT name FROM tags WHERE image_id = ? ORDER BY name').all(r.id) as Array<{
      name: string;
    }>).map((t) => t.name);
    const repoDigests = (this.db.prepare('SELECT name FROM repo_digests WHERE image_id = ? ORDER BY name').all(r.id) as Array<{
      name: string;
    }>).map((t) => t.name);
    return {
      id: r.id,
      manifestDigest: r.manifest_digest,
      created: r.created,
      size: r.size,
      config: JSON.parse(r.config) as ImageConfig,
      layers: JSON.parse(r.layers) as string[],
      tags,
      repoDigests,
    };
  }
}

function toLayer(r: Record<string, unknown>): LayerRecord {
  return {
    chainId: r.chain_id as string,
    diffId: r.diff_id as string,
    parent: (r.parent as string | null) ?? null,
    dir: r.dir as number,
    size: r.size as number,
    digest: r.digest as string,
    blobSize: r.blob_size as number,
    mediaType: r.media_type as string,
  };
}

/** Validates a user-supplied name before any work starts. */
export function checkTagName(name: string): string {
  parseReference(name);
  return normalizeTag(name);
}
