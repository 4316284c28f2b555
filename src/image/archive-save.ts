/** `vessel image save`: one tar that is both an OCI image layout and a docker-archive (see archive.ts). */
import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { Header, Pack } from 'tar-stream';
import { promises as fs } from 'node:fs';
import { InternalError, InvalidArgumentError, NotFoundError, UnavailableError, VesselError, errorMessage } from '../core/errors.js';
import { normalizeTag, parseReference } from './reference.js';
import type { ImageRecord, ImageStore } from './image-store.js';
import { MEDIA_TYPE, type Descriptor } from './oci.js';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, qualifiedName } from './archive-names.js';
import { drained, packInto, type EntrySink } from './tar-pack.js';

type Headers = Partial<Header> & { name: string };
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

export function blobName(digest: string): string {
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
  const failure = await packInto(out, async (pk) => {
    await addBytes(pk, 'oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await addDir(pk, 'blobs/');
    await addDir(pk, 'blobs/sha256/');
    for (const b of plan.blobs) await addBlob(pk, store, b);
    await addBytes(pk, 'index.json', JSON.stringify(indexJson(plan)));
    await addBytes(pk, 'manifest.json', JSON.stringify(dockerManifestJson(plan)));
  });
  if (!failure) return;
  const e = failure.error;
  if (e instanceof VesselError) throw e;
  if (failure.side === 'output') throw new OutputClosedError(`Image archive output closed: ${errorMessage(e)}`, { cause: e });
  throw new InternalError(`Cannot write image archive: ${errorMessage(e)}`, { cause: e });
}

/** The reader of a save went away (client disconnected, pipe closed): not the archive's fault. */
export class OutputClosedError extends UnavailableError {
  override name = 'OutputClosedError';
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
