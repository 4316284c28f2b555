/**
 * zstd layers: decompressed by the `zstd` binary and unpacked as a plain
 * tar in a worker thread (unpack-in-worker.ts), off the daemon's event loop.
 * gzip and plain tar are handled by unpackLayer itself.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { InvalidArgumentError } from '../core/errors.js';
import type { UnpackResult } from './layer-unpack.js';
import { unpackStreamInWorker } from './unpack-in-worker.js';

/** Unpacks a zstd layer file through the `zstd` binary; on failure `dest` is removed. */
export async function unpackZstd(file: string, digest: string, dest: string, expectedDiffId: string): Promise<UnpackResult> {
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
