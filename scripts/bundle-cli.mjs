#!/usr/bin/env node
/**
 * Second step of `npm run build`, after tsc: the CLI as one CommonJS file,
 * dist/cli/vessel.cjs, plus V8's code cache for it (dist/cli/vessel.cjs.cache).
 *
 * Why: every `vessel` command is a new Node process. Loading the CLI as ~25
 * ES modules costs Node's ESM loader and a compile of each module on every
 * start; one script with a code cache skips both, which takes about a
 * quarter off the start of a short command (see docs/benchmarks.md).
 * bin/vessel loads the bundle with the cache, and falls back to the ES
 * modules in dist/src/cli when the bundle is missing.
 *
 * The cache is recorded here by running the CLI once along the path of
 * `vessel run` (against a socket that does not exist, so it stops at the
 * connect); bin/vessel records it again whenever V8 rejects it (a new Node).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(repo, 'dist', 'cli');
const outfile = path.join(outDir, 'vessel.cjs');

mkdirSync(outDir, { recursive: true });
rmSync(`${outfile}.cache`, { force: true });
await build({
  entryPoints: [path.join(repo, 'dist', 'src', 'cli', 'main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // Native and database modules stay where npm put them.
  external: ['better-sqlite3'],
  // import.meta.url in a CommonJS bundle: the bundle's own URL (the addon is
  // found by walking up to the package root from there).
  define: { 'import.meta.url': '__vessel_bundle_url' },
  banner: { js: "const __vessel_bundle_url = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
  // Smaller and pure ASCII: bin/vessel reads it as latin1, which V8 takes as a one-byte string
  // without decoding (utf-8 decoding and a two-byte source cost a few ms per command).
  // Identifiers stay as they are.
  minifyWhitespace: true,
  legalComments: 'none',
  charset: 'ascii',
});
const nonAscii = readFileSync(outfile).findIndex((b) => b > 0x7f);
if (nonAscii >= 0) {
  rmSync(outfile, { force: true });
  throw new Error(`${outfile}: a non-ASCII byte at offset ${nonAscii} (write it as an escape, e.g. \\u00b5, in the source)`);
}

const warm = spawnSync(process.execPath, [path.join(repo, 'bin', 'vessel'), 'run', '--rm', 'busybox', 'true'], {
  env: { ...process.env, VESSEL_HOST: `unix://${path.join(outDir, 'no-daemon.sock')}` },
  stdio: 'ignore',
});
if (warm.error) throw warm.error;
