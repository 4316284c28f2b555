/**
 * The single owner of layer unpack state: a snapshot is created here, once,
 * from its layer blob, and every path that needs a layer's files first calls
 * `ensureUnpacked`.
 *
 * Vocabulary and lifecycle (one job per layer chain ID):
 * - a layer *record* exists as soon as its blob is verified in the content
 *   store (a pull commits the image then, see registry/client/pull.ts);
 * - its *snapshot* `<layerRoot>/<dir>` exists only once the unpack finished
 *   and the staging directory `<layerRoot>/tmp-<random>` was renamed into
 *   place, so "the directory exists" is the whole completeness check;
 * - a *job* is an unpack in flight: either handed over by a pull (`adopt`,
 *   the unpack that followed the download) or started from the stored blob
 *   (`ensureLayer`). Concurrent callers await the same job; a failed job
 *   leaves no directory and is forgotten, so the next caller starts afresh.
 *
 * `cancel` (rmi) and `close` (daemon shutdown) stop jobs and wait until
 * their staging directories are gone. A daemon killed mid-unpack leaves a
 * `tmp-` directory that ImageStore.init removes; the blob is still in the
 * content store, so the snapshot is unpacked at first use after the restart.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { InternalError, UnavailableError, VesselError } from '../core/errors.js';
import { log } from '../core/log.js';
import type { LayerRecord } from './image-store.js';
import type { UnpackResult } from './layer-unpack.js';
import { unpackZstd } from './unpack-zstd.js';
import type { ContentStore } from './content-store.js';
import { startFileUnpack } from './unpack-in-worker.js';

/** An unpack in progress into `tmpDir`; on failure or abort `result` rejects once `tmpDir` is gone. */
export interface RunningUnpack {
  readonly tmpDir: string;
  readonly result: Promise<UnpackResult>;
  abort(): void;
}

/** What the unpacker needs from the image store. */
export interface SnapshotHost {
  readonly layerRoot: string;
  readonly content: ContentStore;
  getLayer(chainId: string): LayerRecord | null;
  snapshotDir(layer: LayerRecord): string;
  /** Records the uncompressed size, known only once a layer is unpacked. */
  recordUnpackedSize(chainId: string, bytes: number): void;
}

interface Job {
  readonly run: RunningUnpack;
  done: Promise<void>;
  cancelled: boolean;
}

const ZSTD_SUFFIX = '+zstd';

export class LayerUnpacker {
  readonly #jobs = new Map<string, Job>();
  #closed = false;

  constructor(private readonly host: SnapshotHost) {}

  /** Whether the layer's snapshot directory is complete. */
  isUnpacked(layer: LayerRecord): boolean {
    return existsSync(this.host.snapshotDir(layer));
  }

  /** Whether an unpack of this layer is in flight. */
  isUnpacking(chainId: string): boolean {
    return this.#jobs.has(chainId);
  }

  /** Makes sure every given layer has its snapshot, unpacking the missing ones (one job per layer, shared). */
  async ensureUnpacked(layers: LayerRecord[]): Promise<void> {
    await Promise.all(layers.map((l) => this.ensureLayer(l)));
  }

  async ensureLayer(layer: LayerRecord): Promise<void> {
    if (this.isUnpacked(layer)) return;
    const job = this.#jobs.get(layer.chainId) ?? this.#start(layer, this.#fromBlob(layer));
    await job.done;
  }

  /** Takes over an unpack that a pull started while downloading; it finishes in the background. */
  adopt(layer: LayerRecord, run: RunningUnpack): void {
    if (this.#closed || this.#jobs.has(layer.chainId) || this.isUnpacked(layer)) {
      run.abort();
      void run.result.catch(() => {});
      return;
    }
    this.#start(layer, run).done.catch(() => {}); // reported to whoever needs the layer next
  }

  /** Stops the layer's unpack, if any, and waits until its staging directory is removed. */
  async cancel(chainId: string): Promise<void> {
    const job = this.#jobs.get(chainId);
    if (!job) return;
    job.cancelled = true;
    job.run.abort();
    await job.done.catch(() => {});
  }

  /** Daemon shutdown: no new jobs; running ones are cancelled and cleaned up. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#jobs.keys()].map((c) => this.cancel(c)));
  }

  #fromBlob(layer: LayerRecord): RunningUnpack {
    if (this.#closed) throw new UnavailableError('Cannot unpack layers: the daemon is shutting down');
    const tmpDir = path.join(this.host.layerRoot, `tmp-${randomBytes(6).toString('hex')}`);
    const blob = { digest: layer.digest, size: layer.blobSize, mediaType: layer.mediaType };
    if (layer.mediaType.endsWith(ZSTD_SUFFIX)) {
      // zstd goes through the `zstd` binary (unpack-zstd.ts): not abortable, a cancel waits for it.
      const result = unpackZstd(this.host.content.blobPath(blob.digest), blob.digest, tmpDir, layer.diffId);
      return { tmpDir, result, abort: () => {} };
    }
    const u = startFileUnpack(this.host.content.blobPath(layer.digest), tmpDir, {
      expectedDigest: layer.digest,
      expectedDiffId: layer.diffId,
    });
    return { tmpDir, result: u.result, abort: () => u.abort() };
  }

  #start(layer: LayerRecord, run: RunningUnpack): Job {
    const t0 = performance.now();
    log.debug('layer unpack: job started', { chainId: layer.chainId, digest: layer.digest });
    const job: Job = { run, cancelled: false, done: Promise.resolve() };
    const finish = async (): Promise<void> => {
      let result: UnpackResult;
      try {
        result = await run.result; // on failure the staging directory is already gone
      } catch (e) {
        if (job.cancelled) throw new UnavailableError(`Unpack of layer ${layer.digest} was cancelled`);
        throw unpackError(layer, e);
      }
      const current = this.host.getLayer(layer.chainId);
      if (job.cancelled || current?.dir !== layer.dir) {
        await fs.rm(run.tmpDir, { recursive: true, force: true });
        throw new UnavailableError(`Unpack of layer ${layer.digest} was cancelled`);
      }
      try {
        await fs.rename(run.tmpDir, this.host.snapshotDir(layer));
      } catch (e) {
        await fs.rm(run.tmpDir, { recursive: true, force: true });
        throw unpackError(layer, e);
      }
      this.host.recordUnpackedSize(layer.chainId, result.unpackedBytes);
      log.debug('layer unpack: job done', { chainId: layer.chainId, ms: Math.round(performance.now() - t0) });
    };
    job.done = finish().finally(() => {
      if (this.#jobs.get(layer.chainId) === job) this.#jobs.delete(layer.chainId);
    });
    this.#jobs.set(layer.chainId, job);
    return job;
  }
}

/** One line naming the layer, with the cause's first line; the class of a Vessel error is kept. */
function unpackError(layer: LayerRecord, e: unknown): VesselError {
  const why = (e instanceof Error ? e.message : String(e)).split('\n')[0];
  const message = `Cannot unpack layer ${layer.digest}: ${why}`;
  if (e instanceof VesselError) {
    const Kind = e.constructor as new (m: string, o?: ErrorOptions) => VesselError;
    return new Kind(message, { cause: e });
  }
  return new InternalError(message, { cause: e });
}
