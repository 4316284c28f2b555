/**
 * COPY and ADD sources: resolving them inside the build context (or another
 * stage's root filesystem), never outside it, and staging them in a directory
 * laid out as they will appear in the image, from which the layer is written.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { run } from '../core/exec.js';
import { InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { unpackLayer } from '../image/layer-unpack.js';

const GLOB = /[*?[]/;

function segmentRegex(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = seg.indexOf(']', i);
      if (end < 0) throw new InvalidArgumentError(`Invalid pattern: ${seg}`);
      re += `[${seg.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Cleans a source path and refuses anything that leaves the root. */
export function cleanSource(src: string): string {
  const clean = path.posix.normalize(`/${src}`).slice(1);
  if (clean.startsWith('..')) throw new InvalidArgumentError(`Forbidden path outside the build context: ${src}`);
  return clean;
}

/** Matches one COPY source (maybe a glob) against a root; returns relative paths ('' = the root itself). */
export async function resolveSources(root: string, src: string): Promise<string[]> {
  const clean = cleanSource(src);
  if (!GLOB.test(clean)) {
    const abs = path.join(root, clean);
    await fs.lstat(abs).catch(() => {
      throw new NotFoundError(`COPY failed: file not found in build context: ${src}`);
    });
    await assertInside(root, abs, src);
    return [clean];
  }
  const segs = clean.split('/');
  let matches = [''];
  for (const seg of segs) {
    const next: string[] = [];
    for (const base of matches) {
      if (!GLOB.test(seg)) {
        const p = base ? `${base}/${seg}` : seg;
        if (await fs.lstat(path.join(root, p)).then(() => true, () => false)) next.push(p);
        continue;
      }
      const re = segmentRegex(seg);
      const entries = await fs.readdir(path.join(root, base)).catch(() => [] as string[]);
      for (const e of entries.sort()) if (re.test(e)) next.push(base ? `${base}/${e}` : e);
    }
    matches = next;
  }
  if (!matches.length) throw new NotFoundError(`COPY failed: no source files were specified by ${src}`);
  for (const m of matches) await assertInside(root, path.join(root, m), src);
  return matches;
}

/** A path inside the root must not reach outside through a symlinked parent. */
async function assertInside(root: string, abs: string, what: string): Promise<void> {
  const parent = await fs.realpath(path.dirname(abs)).catch(() => path.dirname(abs));
  const realRoot = await fs.realpath(root);
  if (parent !== realRoot && !parent.startsWith(`${realRoot}/`)) {
    throw new InvalidArgumentError(`Forbidden path outside the build context: ${what}`);
  }
}

/** Content hash of the sources (paths, modes, link targets, bytes) for the cache key. */
export async function hashSources(root: string, rels: string[]): Promise<string> {
  const h = createHash('sha256');
  const visit = async (rel: string): Promise<void> => {
    const abs = path.join(root, rel);
    const st: Stats = await fs.lstat(abs);
    h.update(`${rel}\0${st.mode}\0${st.uid}\0${st.gid}\0`);
    if (st.isSymbolicLink()) h.update(await fs.readlink(abs));
    else if (st.isFile()) {
      await new Promise<void>((resolve, reject) => {
        createReadStream(abs).on('data', (d) => h.update(d)).on('end', () => resolve()).on('error', reject);
      });
    } else if (st.isDirectory()) {
      for (const e of (await fs.readdir(abs)).sort()) await visit(rel ? `${rel}/${e}` : e);
    }
  };
  for (const r of rels) await visit(r);
  return h.digest('hex');
}

function isArchive(head: Buffer): boolean {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return true;
  return head.length >= 262 && head.subarray(257, 262).toString() === 'ustar';
}

/**
 * Lays the sources out under `stage` as they must appear at `dest` in the
 * image (Docker's rules: a directory source copies its contents; several
 * sources or a dest ending in `/` need a directory; ADD unpacks local tars).
 */
export async function stageSources(o: {
  root: string;
  rels: string[];
  dest: string;
  stage: string;
  add: boolean;
}): Promise<string[]> {
  const destIsDir = o.dest.endsWith('/') || o.rels.length > 1;
  const target = path.join(o.stage, o.dest);
  const copied: string[] = [];
  const entriesOf = async (dir: string) => (await fs.readdir(dir)).map((e) => path.join(dir, e));
  for (const rel of o.rels) {
    const abs = path.join(o.root, rel);
    const st = await fs.lstat(abs);
    if (st.isDirectory()) {
      await fs.mkdir(target, { recursive: true });
      const before = new Set(await entriesOf(target));
      await run('cp', ['-a', '--no-dereference', `${abs}/.`, target]);
      copied.push(...(await entriesOf(target)).filter((e) => !before.has(e)));
      continue;
    }
    if (o.add && st.isFile()) {
      const fh = await fs.open(abs, 'r');
      const head = Buffer.alloc(512);
      await fh.read(head, 0, 512, 0);
      await fh.close();
      if (isArchive(head)) {
        // Unpacked with the same checks as image layers: nothing lands outside the destination.
        const tmp = `${o.stage}.add-${Math.random().toString(36).slice(2)}`;
        await unpackLayer(createReadStream(abs), tmp);
        await fs.mkdir(target, { recursive: true });
        const before = new Set(await entriesOf(target));
        await run('cp', ['-a', '--no-dereference', `${tmp}/.`, target]);
        copied.push(...(await entriesOf(target)).filter((e) => !before.has(e)));
        await fs.rm(tmp, { recursive: true, force: true });
        continue;
      }
    }
    const file = destIsDir ? path.join(target, path.basename(rel)) : target;
    await fs.mkdir(path.dirname(file), { recursive: true });
    await run('cp', ['-a', '--no-dereference', abs, file]);
    copied.push(file);
  }
  return copied;
}
