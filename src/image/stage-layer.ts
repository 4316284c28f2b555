/**
 * Staging a pulled layer: the blob (already verified in the content store)
 * is unpacked into `<layerRoot>/tmp-<random>` and its diff ID checked
 * against the image config. The directory is not a snapshot yet: the image
 * store renames it into place when the whole image is committed, and a
 * crash before that leaves only a `tmp-` directory that `init` removes.
 *
 * gzip and plain tar are handled by unpackLayer; zstd is decompressed by
 * the `zstd` binary and unpacked as a plain tar. Both unpack in a worker
 * thread, off the daemon's event loop (unpack-in-worker.ts).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from '../core/errors.js';
import type { ContentStore } from './content-store.js';
import type { UnpackResult } from './layer-unpack.js';
import { unpackFileInWorker, unpackStreamInWorker } from './unpack-in-worker.js';
import { MEDIA_TYPE } from './oci.js';

/** A layer unpacked into a temporary directory, not yet recorded. */
export interface StagedLayer {
  tmpDir: string;
  diffId: string;
  unpackedBytes: number;
  digest: string;
  blobSize: number;
  mediaType: string;
}

const ZSTD_LAYER = 'application/vnd.oci.image.layer.v1.tar+zstd';

export async function stageLayer(
  content: ContentStore,
  layerRoot: string,
  blob: { digest: string; size: number; mediaType: string },
  expectedDiffId: string,
): Promise<StagedLayer> {
  const tmp = path.join(layerRoot, `tmp-${randomBytes(6).toString('hex')}`);
  const zstd = blob.mediaType.endsWith('+zstd');
  const result = zstd
    ? await unpackZstd(content.blobPath(blob.digest), blob.digest, tmp, expectedDiffId)
    : await unpackFileInWorker(content.blobPath(blob.digest), tmp, { expectedDigest: blob.digest, expectedDiffId });
  return {
    tmpDir: tmp,
    diffId: result.diffId,
    unpackedBytes: result.unpackedBytes,
    digest: blob.digest,
    blobSize: blob.size,
    mediaType: zstd ? ZSTD_LAYER : result.digest === result.diffId ? MEDIA_TYPE.layer : MEDIA_TYPE.layerGzip,
  };
}

async function unpackZstd(file: string, digest: string, dest: string, expectedDiffId: string): Promise<UnpackResult> {
  const child = spawn('zstd', ['-dcq', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (e) => reject(new InvalidArgumentError(`Cannot run zstd for layer ${digest}: ${e.message}`, { cause: e })));
    child.on('close', (code) => resolve(code ?? 255));
  });
  exited.catch(() => child.stdout.destroy());
  let result: UnpackResult;
  try {
    result = await unpackStreamInWorker(child.stdout, dest, { expectedDiffId });
  } catch (e) {
    // When zstd failed (a truncated or corrupt blob), its own message explains the broken tar: give it a moment to exit.
    await Promise.race([exited.catch(() => 255), new Promise((r) => setTimeout(r, 2000))]);
    const failedFirst = child.exitCode !== null && child.exitCode !== 0;
    child.kill();
    const spawnError = await exited.then(() => null, (err: unknown) => err);
    if (spawnError) throw spawnError;
    if (failedFirst && stderr.trim()) {
      throw new InvalidArgumentError(`Cannot decompress zstd layer ${digest}: ${stderr.trim().split('\n')[0]}`);
    }
    throw e;
  }
  const code = await exited;
  if (code !== 0) {
    await fs.rm(dest, { recursive: true, force: true });
    throw new InvalidArgumentError(`Cannot decompress zstd layer ${digest}: ${stderr.trim().split('\n')[0] || `exit status ${code}`}`);
  }
  return result;
}
