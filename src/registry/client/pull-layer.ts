/**
 * One layer of a pull: download and unpack at the same time.
 *
 * The response is read once. Each chunk goes through a size guard, then to
 * the content store (hashed and written to `ingest/`, renamed into `blobs/`
 * only once digest and size match) and to an unpacker in a worker thread
 * (`startUnpack`), which checks the diff ID. The two run in parallel, so a
 * pull costs about max(download, unpack) instead of their sum, and the
 * unpacker's synchronous file-system calls never stall the daemon's event
 * loop (nor the socket feeding it).
 *
 * Verification order is kept: if the unpacker fails first (a hostile or
 * malformed tar), the download still runs to the end into the content store
 * so that a blob that does not match its digest is reported as such; only a
 * blob with the right digest reports the unpacker's error. On any failure
 * the staged directory and the partial blob are removed; a blob that was
 * verified and renamed is listed in `newBlobs`, for the caller to remove.
 *
 * zstd layers (unpacked through the `zstd` binary) and blobs already in the
 * content store take the download-then-stage path.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { InvalidArgumentError, UnavailableError, VesselError } from '../../core/errors.js';
import { log } from '../../core/log.js';
import type { ImageStore, StagedLayer } from '../../image/image-store.js';
import { startUnpack, type WorkerUnpack } from '../../image/unpack-in-worker.js';
import { MEDIA_TYPE } from '../../image/oci.js';
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
): Promise<StagedLayer> {
  const id = shortDigest(desc.digest);
  const blob = { digest: desc.digest, size: desc.size, mediaType: localLayerType(desc.mediaType) };
  const t0 = performance.now();
  if (await store.content.has(desc.digest)) {
    o.progress({ status: 'Download complete', id, progressDetail: {} });
    o.progress({ status: 'Extracting', id, progressDetail: {} });
    const s = await store.stageLayer(blob, diffId);
    log.debug('pull: layer staged from the content store', { digest: desc.digest, unpackMs: ms(t0) });
    return s;
  }
  if (blob.mediaType.endsWith('+zstd')) {
    await download(store, client, repo, desc, null, o);
    const t1 = performance.now();
    o.progress({ status: 'Extracting', id, progressDetail: {} });
    const s = await store.stageLayer(blob, diffId);
    log.debug('pull: zstd layer downloaded, then staged', { digest: desc.digest, downloadMs: ms(t0, t1), unpackMs: ms(t1) });
    return s;
  }

  const tmpDir = path.join(store.layerRoot, `tmp-${randomBytes(6).toString('hex')}`);
  const unpack = startUnpack(tmpDir, { expectedDiffId: diffId });
  let downloaded: number;
  try {
    await download(store, client, repo, desc, unpack, o);
    downloaded = performance.now();
  } catch (e) {
    unpack.abort();
    await unpack.result.catch(() => {});
    await fsp.rm(tmpDir, { recursive: true, force: true });
    throw e;
  }
  o.progress({ status: 'Extracting', id, progressDetail: {} });
  const result = await unpack.result; // on failure unpackLayer has removed tmpDir
  log.debug('pull: layer downloaded and unpacked together', {
    digest: desc.digest,
    bytes: desc.size,
    downloadMs: ms(t0, downloaded),
    unpackTailMs: ms(downloaded),
    totalMs: ms(t0),
  });
  return {
    tmpDir,
    diffId: result.diffId,
    unpackedBytes: result.unpackedBytes,
    digest: desc.digest,
    blobSize: desc.size,
    mediaType: result.digest === result.diffId ? MEDIA_TYPE.layer : MEDIA_TYPE.layerGzip,
  };
}

/**
 * Streams the blob into the content store (verified), feeding `unpack` on the way
 * when given. Resolves once the blob is in `blobs/`; the unpack may still be running.
 */
async function download(
  store: ImageStore,
  client: RegistryClient,
  repo: string,
  desc: RemoteDescriptor,
  unpack: WorkerUnpack | null,
  o: PullLayerOptions,
): Promise<void> {
  const id = shortDigest(desc.digest);
  const res = await client.getBlob(repo, desc.digest);
  const total = desc.size;
  const report = throttled(total, (current) => o.progress({ status: 'Downloading', id, progressDetail: { current, total } }));
  o.newBlobs.push(desc.digest);
  const onAbort = () => res.destroy(new UnavailableError('Pull cancelled'));
  o.signal?.addEventListener('abort', onAbort, { once: true });
  // The unpacker's failure is held back until the digest is known (see the file comment).
  let unpackFailure: { error: unknown } | undefined;
  try {
    const guard = sizeGuard(total, desc.digest, report);
    // pipe() does not forward errors: a reset connection or a cancel must fail the write, not stall it.
    res.on('error', (err) => guard.destroy(err));
    let input: NodeJS.ReadableStream = res.pipe(guard);
    if (unpack) {
      const tee = teeTo(unpack, (error) => (unpackFailure ??= { error }));
      guard.on('error', (err) => tee.destroy(err));
      input = guard.pipe(tee);
    }
    await store.content.write(input as Transform, { digest: desc.digest, size: total });
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
  if (unpackFailure) throw unpackFailure.error;
}

/** Passes chunks through, handing each to `unpack` first (its backpressure holds the download). */
function teeTo(unpack: WorkerUnpack, onFailure: (error: unknown) => void): Transform {
  let failed = false;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (failed) return cb(null, chunk);
      unpack.write(chunk).then(
        () => cb(null, chunk),
        (error: unknown) => {
          failed = true;
          onFailure(error);
          cb(null, chunk);
        },
      );
    },
    flush(cb: TransformCallback) {
      if (!failed) unpack.end();
      cb();
    },
  });
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
