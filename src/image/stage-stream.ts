/**
 * Staging a layer while it downloads: the registry's byte stream goes both
 * into the content store (digest and size checked, renamed into place only
 * when they match) and straight into the unpacker (diff ID checked), so the
 * blob is not read back from disk after the download, and unpacking overlaps
 * the network transfer.
 *
 * Failures, in the order they are reported:
 *   - the download or the blob check failed (digest or size mismatch, cut
 *     connection, cancel): that error, and the half-unpacked directory is
 *     removed; a bad digest therefore reads as a verification failure even
 *     when the corrupted bytes also broke the tar;
 *   - else the unpack failed (malformed tar, diff ID mismatch): that error;
 *     the blob stays in the content store for the caller to discard.
 *
 * zstd layers are not handled here (they are decompressed by the `zstd`
 * binary from the stored blob, see stage-layer.ts).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { ContentStore } from './content-store.js';
import { unpackLayer } from './layer-unpack.js';
import { MEDIA_TYPE } from './oci.js';
import type { StagedLayer } from './stage-layer.js';

/** Per-branch buffer: enough to keep the disk writer and the unpacker busy without stalling the socket. */
const BRANCH_BUFFER = 4 * 1024 * 1024;

export async function stageLayerFromStream(
  content: ContentStore,
  layerRoot: string,
  input: Readable,
  blob: { digest: string; size: number },
  expectedDiffId: string,
): Promise<StagedLayer> {
  const tmp = path.join(layerRoot, `tmp-${randomBytes(6).toString('hex')}`);
  const toStore = new PassThrough({ highWaterMark: BRANCH_BUFFER });
  const toUnpack = new PassThrough({ highWaterMark: BRANCH_BUFFER });
  // pipe() rethrows a destination's error when nobody else listens: the two promises below report them.
  toStore.on('error', () => {});
  toUnpack.on('error', () => {});
  input.on('error', (e) => {
    toStore.destroy(e);
    toUnpack.destroy(e);
  });
  // pipe() to two destinations: the slower one sets the pace; a destination
  // that fails is unpiped and the other keeps receiving.
  input.pipe(toStore);
  input.pipe(toUnpack);
  const writing = content.write(toStore, { digest: blob.digest, size: blob.size });
  // A failed download or blob check stops the unpacker at once.
  writing.catch((e: unknown) => input.destroy(e instanceof Error ? e : new Error(String(e))));
  const unpacking = unpackLayer(toUnpack, tmp, { expectedDiffId });
  const [w, u] = await Promise.allSettled([writing, unpacking]);
  if (w.status === 'rejected') {
    await fs.rm(tmp, { recursive: true, force: true });
    throw w.reason;
  }
  if (u.status === 'rejected') throw u.reason;
  const result = u.value;
  return {
    tmpDir: tmp,
    diffId: result.diffId,
    unpackedBytes: result.unpackedBytes,
    digest: blob.digest,
    blobSize: blob.size,
    mediaType: result.digest === result.diffId ? MEDIA_TYPE.layer : MEDIA_TYPE.layerGzip,
  };
}
