/**
 * The client side of `vessel build` (Docker's classic builder): find the
 * context directory and the Dockerfile, read `.dockerignore`, and stream a tar
 * of every file the patterns do not exclude.
 *
 * The walk never follows symlinks (they are archived as links), keeps modes
 * and mtimes, records owners as 0:0 and hard links as links, and reads files
 * as the tar is consumed, so a large context is never held in memory. The
 * Dockerfile and `.dockerignore` are always sent, even when the patterns
 * exclude them (the daemon leaves them out of COPY/ADD sources itself).
 *
 * A Dockerfile outside the context (or read from stdin with `-f -`) is added
 * under a generated name, which is also appended to the archived
 * `.dockerignore` so the daemon keeps it out of the image, as Docker does.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc, promises as fsp, type Stats } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pack as tarPack, type Header as Headers, type Pack } from 'tar-stream';
import { parseDockerignore, type Matcher } from '../build/dockerignore.js';
import { InvalidArgumentError } from '../core/errors.js';

export const DOCKERIGNORE = '.dockerignore';

export interface BuildContext {
  /** Absolute path of the context directory, symlinks resolved. */
  dir: string;
  /** The Dockerfile's name inside the tar: the `dockerfile` query parameter. */
  dockerfile: string;
  /** The text of `.dockerignore`, or null when the context has none. */
  ignoreText: string | null;
  /**
   * Entries made by the client rather than read from `dir`: the Dockerfile
   * from outside the context and the amended `.dockerignore`. Emitted in
   * place of a file of the same name, or after the walk.
   */
  generated: Map<string, Buffer>;
}

export interface ResolveOptions {
  /** `-f`: absolute, or relative to `cwd` (as in Docker); default DIR/Dockerfile (else DIR/dockerfile). */
  file?: string;
  /** The Dockerfile's text when it came from stdin (`-f -`). */
  fileContent?: Buffer;
  cwd?: string;
  /** The generated Dockerfile name (tests); default `.vessel-dockerfile-<20 hex>`. */
  generatedName?: string;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

/** Validates the context and locates the Dockerfile; reads only the Dockerfile (when outside) and `.dockerignore`. */
export async function resolveContext(contextArg: string, opts: ResolveOptions = {}): Promise<BuildContext> {
  const cwd = opts.cwd ?? process.cwd();
  let dir: string;
  try {
    dir = await fsp.realpath(path.resolve(cwd, contextArg));
  } catch (e) {
    if (errno(e) === 'ENOENT') throw new InvalidArgumentError(`unable to prepare context: path "${contextArg}" not found`);
    throw new InvalidArgumentError(`unable to prepare context: ${contextArg}: ${(e as Error).message}`);
  }
  if (!(await fsp.stat(dir)).isDirectory()) {
    throw new InvalidArgumentError(`unable to prepare context: context must be a directory: ${contextArg}`);
  }

  let ignoreText: string | null = null;
  try {
    ignoreText = await fsp.readFile(path.join(dir, DOCKERIGNORE), 'utf8');
  } catch (e) {
    const code = errno(e);
    if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ELOOP') {
      throw new InvalidArgumentError(`unable to prepare context: cannot read ${DOCKERIGNORE}: ${(e as Error).message}`);
    }
  }

  const generatedName = opts.generatedName ?? `.vessel-dockerfile-${randomBytes(10).toString('hex')}`;
  const generated = new Map<string, Buffer>();
  const addGenerated = (content: Buffer): BuildContext => {
    generated.set(generatedName, content);
    // Tell the daemon to keep the generated file out of the image.
    const base = ignoreText ?? DOCKERIGNORE;
    generated.set(DOCKERIGNORE, Buffer.from(`${base}${base.endsWith('\n') ? '' : '\n'}${generatedName}\n`));
    return { dir, dockerfile: generatedName, ignoreText, generated };
  };

  if (opts.fileContent !== undefined) {
    if (opts.fileContent.length === 0) throw new InvalidArgumentError('the Dockerfile (-) cannot be empty');
    return addGenerated(opts.fileContent);
  }

  const given = opts.file;
  let candidate: string;
  if (given === undefined || given === '') {
    candidate = path.join(dir, 'Dockerfile');
    if (!(await exists(candidate)) && (await exists(path.join(dir, 'dockerfile')))) candidate = path.join(dir, 'dockerfile');
  } else {
    candidate = path.resolve(cwd, given);
  }
  const shown = given || 'Dockerfile';
  let real: string;
  try {
    real = await fsp.realpath(candidate);
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') {
      throw new InvalidArgumentError(`unable to prepare context: cannot locate specified Dockerfile: ${shown}`);
    }
    throw new InvalidArgumentError(`unable to prepare context: ${shown}: ${(e as Error).message}`);
  }
  const st = await fsp.stat(real);
  if (!st.isFile()) throw new InvalidArgumentError(`unable to prepare context: the Dockerfile (${shown}) is not a regular file`);
  if (st.size === 0) throw new InvalidArgumentError(`the Dockerfile (${shown}) cannot be empty`);

  const rel = path.relative(dir, real);
  if (rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    let content: Buffer;
    try {
      content = await fsp.readFile(real);
    } catch (e) {
      throw new InvalidArgumentError(`unable to prepare context: cannot read the Dockerfile (${shown}): ${(e as Error).message}`);
    }
    return addGenerated(content);
  }
  return { dir, dockerfile: rel.split(path.sep).join('/'), ignoreText, generated };
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * The context as a tar stream (a Node Readable). A bad `.dockerignore`
 * pattern throws here, before anything is read; a walk failure (a file that
 * cannot be read) destroys the stream with an error saying so.
 */
export function packContext(ctx: BuildContext): Readable {
  const pack = tarPack();
  const walker = new ContextWalker(ctx, pack);
  walker.run().then(
    () => pack.finalize(),
    (e: unknown) => pack.destroy(contextError(e)),
  );
  // tar-stream's streams are streamx ones: hand out a Node stream.
  return Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
}

function contextError(e: unknown): Error {
  if (e instanceof InvalidArgumentError) return e;
  const err = e as NodeJS.ErrnoException;
  return new InvalidArgumentError(`error checking context: ${err?.message ?? String(e)}`, { cause: e });
}

class ContextWalker {
  readonly #ctx: BuildContext;
  readonly #pack: Pack;
  readonly #matcher: Matcher;
  /** Paths sent whatever the patterns say, and the directories leading to them. */
  readonly #forced = new Set<string>();
  readonly #forcedDirs = new Set<string>();
  /** Hard links: dev:ino → name of the first archived copy. */
  readonly #seen = new Map<string, string>();
  readonly #emittedGenerated = new Set<string>();

  constructor(ctx: BuildContext, pack: Pack) {
    this.#ctx = ctx;
    this.#pack = pack;
    this.#matcher = parseDockerignore(ctx.ignoreText ?? '', { dockerfilePath: ctx.dockerfile });
    for (const p of [ctx.dockerfile, DOCKERIGNORE]) {
      this.#forced.add(p);
      const parts = p.split('/');
      for (let i = 1; i < parts.length; i++) this.#forcedDirs.add(parts.slice(0, i).join('/'));
    }
  }

  async run(): Promise<void> {
    await this.#dir(this.#ctx.dir, '');
    // Generated entries with no file of that name in the context come last.
    for (const [name, content] of this.#ctx.generated) {
      if (this.#emittedGenerated.has(name)) continue;
      await this.#entry({ name, type: 'file', mode: 0o644, mtime: new Date(), uid: 0, gid: 0, size: content.length } as Headers, content);
    }
  }

  async #dir(abs: string, rel: string): Promise<void> {
    let names: string[];
    try {
      names = await fsp.readdir(abs);
    } catch (e) {
      // A directory removed meanwhile is simply gone.
      if (errno(e) === 'ENOENT' && rel !== '') return;
      throw e;
    }
    names.sort();
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      const childAbs = path.join(abs, name);
      let st: Stats;
      try {
        st = await fsp.lstat(childAbs);
      } catch (e) {
        if (errno(e) === 'ENOENT') continue;
        throw e;
      }
      const isDir = st.isDirectory();
      const forced = this.#forced.has(childRel) || this.#ctx.generated.has(childRel);
      if (!forced && this.#matcher.ignores(childRel, isDir)) {
        // An excluded directory is still walked when a `!pattern` (or the
        // Dockerfile) may re-include something below it; it gets no entry itself.
        if (isDir && (this.#forcedDirs.has(childRel) || this.#matcher.mayContainIncluded(childRel))) {
          await this.#dir(childAbs, childRel);
        }
        continue;
      }
      await this.#file(childAbs, childRel, st);
    }
  }

  async #file(abs: string, name: string, st: Stats): Promise<void> {
    const base = { name, mode: st.mode & 0o7777, uid: 0, gid: 0, uname: '', gname: '', mtime: st.mtime } as Headers;
    const generated = this.#ctx.generated.get(name);
    if (generated !== undefined && !st.isDirectory()) {
      this.#emittedGenerated.add(name);
      await this.#entry({ ...base, type: 'file', mode: st.isFile() ? base.mode : 0o644, size: generated.length }, generated);
      return;
    }
    if (st.isDirectory()) {
      await this.#entry({ ...base, type: 'directory' });
      await this.#dir(abs, name);
      return;
    }
    if (st.isSymbolicLink()) {
      await this.#entry({ ...base, type: 'symlink', linkname: await fsp.readlink(abs) });
      return;
    }
    if (st.isFIFO()) {
      await this.#entry({ ...base, type: 'fifo' });
      return;
    }
    if (st.isCharacterDevice() || st.isBlockDevice()) {
      await this.#entry({
        ...base,
        type: st.isCharacterDevice() ? 'character-device' : 'block-device',
        devmajor: ((st.rdev >> 8) & 0xfff) | (Math.floor(st.rdev / 2 ** 32) & ~0xfff),
        devminor: (st.rdev & 0xff) | ((st.rdev >> 12) & ~0xff & 0xfffff),
      });
      return;
    }
    if (!st.isFile()) return; // sockets are not archived (as in Docker)
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.#seen.get(key);
      if (first !== undefined) {
        await this.#entry({ ...base, type: 'link', linkname: first });
        return;
      }
      this.#seen.set(key, name);
    }
    await this.#regular(abs, base);
  }

  /** Streams one regular file into the tar, a chunk at a time. */
  async #regular(abs: string, base: Headers): Promise<void> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    } catch (e) {
      const code = errno(e);
      const why = code === 'EACCES' ? 'permission denied' : (e as Error).message;
      throw new InvalidArgumentError(`error checking context: can't open '${base.name}': ${why}`, { cause: e });
    }
    try {
      const size = (await fh.stat()).size;
      const stream = this.#pack.entry({ ...base, type: 'file', size });
      const done = new Promise<void>((resolve, reject) => {
        stream.once('finish', () => resolve());
        stream.once('error', reject);
      });
      const buf = Buffer.allocUnsafe(Math.min(Math.max(size, 1), 256 * 1024));
      let left = size;
      while (left > 0) {
        let { bytesRead: n } = await fh.read(buf, 0, Math.min(buf.length, left), null);
        if (n === 0) {
          // The file shrank while being read: pad, the header already promised `size` bytes.
          buf.fill(0);
          n = Math.min(buf.length, left);
        }
        left -= n;
        if (!stream.write(Buffer.from(buf.subarray(0, n)))) await new Promise<void>((r) => stream.once('drain', () => r()));
      }
      stream.end(null as never);
      await done;
    } finally {
      await fh.close();
    }
  }

  #entry(header: Headers, content?: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (content !== undefined) this.#pack.entry(header, content, cb);
      else this.#pack.entry(header, cb);
    });
  }
}
