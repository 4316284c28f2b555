/**
 * One layer of a pull: download, and start unpacking on the way.
 *
 * The response is read once, through a size guard, into the content store
 * (hashed and written to `ingest/`, renamed into `blobs/` only once digest
 * and size match). An unpacker in a worker thread follows the ingest file
 * as it grows (`startFollowUnpack`), so the unpack starts with the first
 * bytes but never holds the download back: the pull's share of the layer
 * ends when the blob is verified and stored. The unpack, still running
 * then, is returned with the layer; `commitPulled` hands it to the image
 * store's LayerUnpacker, which finishes it in the background (its diff ID
 * is checked there) and which every user of the layer's files awaits.
 *
 * On a download failure the unpack is aborted and its staging directory and
 * the partial blob are removed; a blob that was verified and renamed is
 * listed in `newBlobs`, for the caller to remove if the pull fails later.
 *
 * zstd layers and blobs already in the content store are not unpacked here:
 * the LayerUnpacker starts their unpack from the stored blob after the commit.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { InternalError, InvalidArgumentError, UnavailableError, VesselError } from '../../core/errors.js';
import { log } from '../../core/log.js';
import type { FetchedLayer, ImageStore } from '../../image/image-store.js';
import type { IngestWatcher } from '../../image/content-store.js';
import type { RunningUnpack } from '../../image/layer-unpacker.js';
import { startFollowUnpack, type FollowUnpack } from '../../image/unpack-in-worker.js';
import { localLayerType, type RemoteDescriptor } from './manifest.js';
import { shortDigest, throttled, type Progress } from './progress.js';
import type { RegistryClient } from './registry-client.js';

export interface PullLayerOptions {
  progress: Progress;
  signal: AbortSignal | undefined;
  /** Blobs this pull added to the content store; the caller removes them if the pull fails. */
  newBlobs: string[];
}

export async function pullLayer(
  store: ImageStore,
  client: RegistryClient,
  repo: string,
  desc: RemoteDescriptor,
  diffId: string,
  o: PullLayerOptions,
): Promise<FetchedLayer> {
  const id = shortDigest(desc.digest);
  const mediaType = localLayerType(desc.mediaType);
  const fetched = (unpack: RunningUnpack | null): FetchedLayer => ({ diffId, digest: desc.digest, blobSize: desc.size, mediaType, unpack });
  const t0 = performance.now();
  if (await store.content.has(desc.digest)) {
    o.progress({ status: 'Download complete', id, progressDetail: {} });
    return fetched(null);
  }
  if (mediaType.endsWith('+zstd')) {
    await download(store, client, repo, desc, null, o);
    log.debug('pull: zstd layer downloaded', { digest: desc.digest, downloadMs: ms(t0) });
    return fetched(null);
  }
  const follower = new UnpackFollower(path.join(store.layerRoot, `tmp-${randomBytes(6).toString('hex')}`), desc.digest, diffId);
  try {
    await download(store, client, repo, desc, follower, o);
  } catch (e) {
    await follower.discard();
    throw e;
  }
  const running = follower.finish(desc.size);
  log.debug('pull: layer downloaded, its unpack goes on', { digest: desc.digest, bytes: desc.size, downloadMs: ms(t0) });
  return fetched(running);
}

/**
 * An unpack that follows the blob's ingest file (content-store.ts `IngestWatcher`).
 * It owns the read descriptor the worker uses, and closes it once the unpack settled.
 */
class UnpackFollower implements IngestWatcher {
  #unpack: FollowUnpack | null = null;
  #settled: Promise<unknown> = Promise.resolve();

  constructor(
    readonly tmpDir: string,
    private readonly digest: string,
    private readonly diffId: string,
  ) {}

  async opened(file: string): Promise<void> {
    const fh = await fsp.open(file, 'r');
    const u = startFollowUnpack(fh.fd, this.tmpDir, { expectedDigest: this.digest, expectedDiffId: this.diffId });
    this.#unpack = u;
    this.#settled = u.result.catch(() => {}).finally(() => fh.close());
  }

  written(total: number): void {
    this.#unpack?.grow(total);
  }

  /** The blob is complete at `size` bytes: the unpack goes on alone. */
  finish(size: number): RunningUnpack {
    const u = this.#unpack;
    if (!u) throw new InternalError('Layer unpack never started: the blob was not written');
    u.grow(size);
    u.end();
    const settled = this.#settled;
    // Resolves or rejects only once the descriptor is closed and (on failure) the directory gone.
    const result = u.result.then(
      async (r) => {
        await settled;
        return r;
      },
      async (e: unknown) => {
        await settled;
        throw e;
      },
    );
    result.catch(() => {});
    return { tmpDir: this.tmpDir, result, abort: () => u.abort() };
  }

  /** The download failed: stop the unpack and remove whatever it wrote. */
  async discard(): Promise<void> {
    this.#unpack?.abort();
    await this.#settled;
    await fsp.rm(this.tmpDir, { recursive: true, force: true });
  }
}

/**
 * Streams the blob into the content store (verified), letting `watcher` follow
 * the ingest file when given. Resolves once the blob is in `blobs/`.
 */
async function download(
  store: ImageStore,
  client: RegistryClient,
  repo: string,
  desc: RemoteDescriptor,
  watcher: IngestWatcher | null,
  o: PullLayerOptions,
): Promise<void> {
  const id = shortDigest(desc.digest);
  const res = await client.getBlob(repo, desc.digest);
  const total = desc.size;
  const report = throttled(total, (current) => o.progress({ status: 'Downloading', id, progressDetail: { current, total } }));
  o.newBlobs.push(desc.digest);
  const onAbort = () => res.destroy(new UnavailableError('Pull cancelled'));
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const guard = sizeGuard(total, desc.digest, report);
    // pipe() does not forward errors: a reset connection or a cancel must fail the write, not stall it.
    res.on('error', (err) => guard.destroy(err));
    await store.content.write(res.pipe(guard), { digest: desc.digest, size: total }, watcher ?? undefined);
  } catch (e) {
    res.destroy();
    const why = e instanceof Error ? e.message : String(e);
    if (e instanceof VesselError && /mismatch|verification/.test(why)) {
      throw new InvalidArgumentError(`Blob ${desc.digest} from ${client.host}/${repo} failed verification: ${why}`, { cause: e });
    }
    if (!(e instanceof VesselError)) {
      throw new UnavailableError(`Downloading blob ${desc.digest} from ${client.host}/${repo}: ${why}`, { cause: e });
    }
    throw e;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
  o.progress({ status: 'Verifying Checksum', id, progressDetail: {} });
  o.progress({ status: 'Download complete', id, progressDetail: {} });
}

/** Counts bytes, reports progress, and fails as soon as more than `size` bytes arrive. */
function sizeGuard(size: number, digest: string, onBytes: (n: number) => void): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      n += chunk.length;
      if (n > size) {
        cb(new InvalidArgumentError(`Blob ${digest} failed verification: more than the ${size} bytes the manifest declares`));
        return;
      }
      onBytes(n);
      cb(null, chunk);
    },
  });
}

const ms = (from: number, to = performance.now()): number => Math.round(to - from);
