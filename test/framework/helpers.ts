/**
 * Small helpers shared by the integration tests: polling, inspect shortcuts,
 * tar fixtures and the "one clean error line" check.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tar from 'tar-stream';
import type { CliResult, TestDaemon } from './daemon.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` until it returns a truthy value; fails with `what` (and the last
 * value seen) after `timeoutMs`. Only a generous ceiling, never a pass/fail
 * criterion by itself.
 */
export async function waitFor<T>(what: string, fn: () => Promise<T> | T, timeoutMs = 30_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    }
    await sleep(everyMs);
  }
}

/** `vessel inspect -f FORMAT ref`, trimmed. */
export async function inspectF(d: TestDaemon, ref: string, format: string): Promise<string> {
  return (await d.ok(['inspect', '-f', format, ref])).trim();
}

/** `vessel inspect ref` parsed (the first element). */
export async function inspectJson(d: TestDaemon, ref: string): Promise<any> {
  const arr = JSON.parse(await d.ok(['inspect', ref]));
  assert.ok(Array.isArray(arr) && arr.length === 1, `inspect ${ref} should print a JSON array of one`);
  return arr[0];
}

export async function status(d: TestDaemon, ref: string): Promise<string> {
  return inspectF(d, ref, '{{.State.Status}}');
}

/** A 64-hex container id on its own line. */
export function assertId(stdout: string): string {
  const id = stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/, `expected a 64-hex id, got ${JSON.stringify(stdout)}`);
  return id;
}

/** Lines of stderr, ignoring a trailing newline. */
export function stderrLines(r: CliResult): string[] {
  return r.stderr.split('\n').filter((l) => l.length > 0);
}

/** A failure reported Docker-style: non-zero exit, exactly one stderr line, no stack trace. */
export function assertOneLineError(r: CliResult, what: string, pattern?: RegExp): void {
  const lines = stderrLines(r);
  assert.notEqual(r.code, 0, `${what}: expected a non-zero exit; stdout=${JSON.stringify(r.stdout)} stderr=${JSON.stringify(r.stderr)}`);
  assert.ok(!lines.some((l) => l.startsWith('    at ')), `${what}: stack trace on stderr:\n${r.stderr}`);
  assert.equal(lines.length, 1, `${what}: expected exactly one line on stderr, got ${lines.length}:\n${r.stderr}`);
  if (pattern) assert.match(lines[0]!, pattern, `${what}: unexpected message`);
}

export interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink';
  content?: string | Buffer;
  mode?: number;
  linkname?: string;
}

/** Builds a tar archive in memory with tar-stream (names are written verbatim, `../` included). */
export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header: Parameters<typeof pack.entry>[0] = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
      uid: 0,
      gid: 0,
      mtime: new Date(0),
    };
    if (type === 'symlink') header.linkname = e.linkname ?? '';
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (type === 'file') pack.entry(header, e.content ?? '', cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Reads a cgroup v1 control file of a container of `d` (e.g. `cpu`, `cpu.shares`). */
export function cgroupFile(d: TestDaemon, controller: string, id: string, file: string): string {
  return readFileSync(path.join('/sys/fs/cgroup', controller, d.cgroupParent, id, file), 'utf8').trim();
}

export function countDir(dir: string): number {
  return existsSync(dir) ? readdirSync(dir).length : 0;
}

/** IDs of all containers (`ps -aq --no-trunc`). */
export async function allIds(d: TestDaemon): Promise<string[]> {
  return (await d.ok(['ps', '-aq', '--no-trunc'])).split('\n').filter(Boolean);
}

/** A shallow, comparable summary of `leftovers()`. */
export function leftoverSummary(d: TestDaemon): Record<string, string[]> {
  const l = d.leftovers();
  return {
    mounts: [...l.mounts].sort(),
    cgroups: [...l.cgroups].sort(),
    runtimeState: [...l.runtimeState].sort(),
    conmons: l.conmons.map(String).sort(),
    containerDirs: [...l.containerDirs].sort(),
    bundles: [...l.bundles].sort(),
  };
}

/** What `leftovers()` holds that mentions a container id. */
export function leftoversFor(d: TestDaemon, id: string): string[] {
  const l = d.leftovers();
  const out = [
    ...l.mounts.filter((m) => m.includes(id)),
    ...l.cgroups.filter((c) => c.includes(id)),
    ...l.runtimeState.filter((r) => r.includes(id)),
    ...l.containerDirs.filter((c) => c.includes(id)),
    // A container that exists keeps its directory and its bundle (both named by its id), as in Docker.
    ...l.bundles.filter((b) => b.includes(id)),
  ];
  for (const pid of l.conmons) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(id)) out.push(`conmon pid ${pid}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The image's layer directories (top-most first), from `image inspect` GraphDriver.Data.LowerDir. */
export async function imageLowerDirs(d: TestDaemon, ref: string): Promise<string[]> {
  const j = JSON.parse(await d.ok(['image', 'inspect', ref]))[0];
  const lower = j.GraphDriver?.Data?.LowerDir as string | undefined;
  assert.ok(lower, `image inspect ${ref} has no GraphDriver.Data.LowerDir`);
  return lower.split(':');
}

/**
 * Writes `<dir>/<name>.tar`: a minimal root filesystem (busybox copied from
 * the daemon's busybox image, with sh/echo/cat/ls links and /etc/release),
 * made with the `tar` command. Returns the tar's path.
 */
export async function busyboxRootfsTar(d: TestDaemon, dir: string, name: string): Promise<string> {
  let bb: string | null = null;
  for (const l of await imageLowerDirs(d, 'busybox')) {
    if (existsSync(path.join(l, 'bin', 'busybox'))) {
      bb = path.join(l, 'bin', 'busybox');
      break;
    }
  }
  assert.ok(bb, 'the busybox image has no bin/busybox');
  const root = path.join(dir, `${name}-root`);
  mkdirSync(path.join(root, 'bin'), { recursive: true });
  mkdirSync(path.join(root, 'etc'), { recursive: true });
  copyFileSync(bb, path.join(root, 'bin', 'busybox'));
  for (const a of ['sh', 'echo', 'cat', 'ls']) symlinkSync('busybox', path.join(root, 'bin', a));
  writeFileSync(path.join(root, 'etc', 'release'), `${name}\n`);
  const tarPath = path.join(dir, `${name}.tar`);
  const r = spawnSync('tar', ['--numeric-owner', '-C', root, '-cf', tarPath, '.']);
  assert.equal(r.status, 0, `tar: ${String(r.stderr)}`);
  return tarPath;
}
