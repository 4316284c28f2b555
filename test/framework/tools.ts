/** Running host tools (skopeo, umoci, ...) from tests: failures are loud, output is kept. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';

export function run(cmd: string, args: string[]): { status: number; stdout: Buffer; stderr: string } {
  const r = spawnSync(cmd, args, { maxBuffer: 1 << 28, timeout: 300_000 });
  if (r.error) throw new Error(`cannot run ${cmd} (is it installed?): ${r.error.message}`);
  return { status: r.status ?? 255, stdout: r.stdout, stderr: r.stderr.toString() };
}

/** `run`, failing the test with the tool's stderr unless it exits 0; returns stdout. */
export function must(cmd: string, args: string[]): Buffer {
  const r = run(cmd, args);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

export const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
