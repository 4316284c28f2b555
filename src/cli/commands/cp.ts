/**
 * `vessel cp`: copies between a container and the local file system through
 * the archive API, with Docker's rules for where things land:
 *
 * - SRC a file: DEST an existing directory receives it under its own name;
 *   otherwise DEST is the file to (over)write (its directory must exist, and a
 *   DEST ending in `/` must be an existing directory).
 * - SRC a directory: an existing DEST directory receives a copy named after
 *   SRC, or only SRC's contents when SRC ends in `/.`; a missing DEST is
 *   created as the copy; a DEST file is an error.
 * - `-` as SRC reads a tar from stdin (DEST must be a directory); as DEST
 *   writes the tar to stdout.
 *
 * Modes are kept. Owners: files copied into a container belong to root
 * unless `-a`; files copied out belong to the user running `vessel` unless
 * `-a` (and that user is root).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { VesselClient } from '../../client/client.js';
import { InvalidArgumentError, NotFoundError } from '../../core/errors.js';
import { decodeStat, extractTar, isGoDir, isGoSymlink, LocalTarget, packPath, type PathStat } from '../../volume/archive.js';
import { archiveRootName } from '../../volume/container-fs.js';
import { connect, type Command, type CommandTable } from '../command.js';
import { UsageError } from '../errors.js';
import { pathName } from '../format.js';
import { humanSize } from '../units.js';

export type CpArg = { container: string; path: string } | { container: null; path: string };

/** Docker's split: an absolute (or `./`-style) path is local, else `NAME:PATH` names a container. */
export function splitCpArg(arg: string): CpArg {
  if (arg.startsWith('/') || arg.startsWith('.')) return { container: null, path: arg };
  const i = arg.indexOf(':');
  if (i < 0) return { container: null, path: arg };
  const container = arg.slice(0, i);
  if (container === '' || container.includes('/')) return { container: null, path: arg };
  return { container, path: arg.slice(i + 1) };
}

const sepEnd = (p: string): boolean => p.endsWith('/') || p.endsWith('/.');
/** Whether a path names a directory's contents (`dir/.`). */
const contentsOf = (p: string): boolean => p === '.' || p.endsWith('/.');

async function statInContainer(client: VesselClient, container: string, p: string): Promise<PathStat | null> {
  const r = await client.request('HEAD', `/containers/${pathName(container)}/archive`, { query: { path: p } });
  if (r.status === 404) {
    // 404 is both "no such container" and "no such path": tell them apart.
    await client.json('GET', `/containers/${pathName(container)}/json`);
    return null;
  }
  if (r.status < 200 || r.status >= 300) {
    const { errorFromResponse } = await import('../../client/client.js');
    throw errorFromResponse(r.status, r.body, `Cannot stat ${p} in container ${container}: status ${r.status}`);
  }
  const st = decodeStat(r.headers['x-docker-container-path-stat']);
  if (!st) throw new InvalidArgumentError(`The daemon sent no stat for ${p}`);
  return st;
}

async function fromContainer(client: VesselClient, container: string, srcPath: string, dest: string, archive: boolean, follow: boolean): Promise<number> {
  let src = srcPath;
  if (follow) {
    const st = await statInContainer(client, container, src);
    if (st && isGoSymlink(st.mode) && st.linkTarget) src = st.linkTarget;
  }
  const res = await client.stream('GET', `/containers/${pathName(container)}/archive`, { query: { path: src } });
  if (dest === '-') {
    await pipeline(res, process.stdout);
    return 0;
  }
  const st = decodeStat(res.headers['x-docker-container-path-stat']);
  if (!st) throw new InvalidArgumentError(`The daemon sent no stat for ${src}`);
  const srcIsDir = isGoDir(st.mode);
  const rootName = archiveRootName(src);
  const dst = fs.statSync(dest, { throwIfNoEntry: false });
  let extractDir: string;
  let base: string[]; // where the archive's root lands, below extractDir
  if (dst?.isDirectory()) {
    extractDir = dest;
    base = (srcIsDir && contentsOf(src)) || rootName === '.' ? [] : [rootName];
  } else if (dst) {
    if (srcIsDir) throw new InvalidArgumentError(`Cannot copy a directory to a file: ${dest}`);
    extractDir = path.dirname(dest);
    base = [path.basename(dest)];
  } else {
    if (sepEnd(dest) && !srcIsDir) throw new NotFoundError(`Destination directory does not exist: ${dest}`);
    extractDir = path.dirname(path.resolve(dest));
    if (!fs.statSync(extractDir, { throwIfNoEntry: false })?.isDirectory()) throw new NotFoundError(`Destination directory does not exist: ${extractDir}`);
    base = [path.basename(path.resolve(dest))];
  }
  const counted = { bytes: 0 };
  res.on('data', (c: Buffer) => (counted.bytes += c.length));
  await extractTar(res, new LocalTarget(extractDir), {
    chown: archive && process.geteuid?.() === 0,
    noOverwriteDirNonDir: true,
    mapName: (parts) => {
      if (rootName === '.') return [...base, ...parts];
      if (parts[0] !== rootName) return null;
      return [...base, ...parts.slice(1)];
    },
  });
  report(counted.bytes, dest);
  return 0;
}

async function toContainer(client: VesselClient, srcPath: string, container: string, destPath: string, archive: boolean, follow: boolean): Promise<number> {
  const put = (dir: string, body: NodeJS.ReadableStream) =>
    client.call('PUT', `/containers/${pathName(container)}/archive`, {
      query: { path: dir, noOverwriteDirNonDir: true, copyUIDGID: archive || undefined },
      body,
    });
  let dst = await statInContainer(client, container, destPath);
  let dstPath = destPath;
  if (dst && isGoSymlink(dst.mode) && dst.linkTarget) {
    dstPath = dst.linkTarget;
    dst = await statInContainer(client, container, dstPath);
  }
  if (srcPath === '-') {
    if (!dst) throw new NotFoundError(`Could not find the file ${destPath} in container ${container}`);
    if (!isGoDir(dst.mode)) throw new InvalidArgumentError(`Destination "${destPath}" must be a directory`);
    await put(dstPath, process.stdin);
    return 0;
  }
  const lst = fs.lstatSync(srcPath, { throwIfNoEntry: false });
  if (!lst) throw new NotFoundError(`Could not find the file ${srcPath}: no such file or directory`);
  const src = follow && lst.isSymbolicLink() ? fs.realpathSync(srcPath) : srcPath;
  const srcIsDir = fs.lstatSync(src).isDirectory();
  let putDir: string;
  let rootName: string;
  if (dst && isGoDir(dst.mode)) {
    putDir = dstPath;
    rootName = srcIsDir && contentsOf(srcPath) ? '.' : path.basename(path.resolve(src));
  } else if (dst) {
    if (srcIsDir) throw new InvalidArgumentError(`Cannot copy a directory to a file: ${destPath}`);
    putDir = path.posix.dirname(dstPath);
    rootName = path.posix.basename(dstPath);
  } else {
    if (sepEnd(destPath) && !srcIsDir) throw new NotFoundError(`Destination directory does not exist: ${destPath}`);
    const clean = path.posix.normalize(dstPath.startsWith('/') ? dstPath : `/${dstPath}`).replace(/\/+$/, '') || '/';
    putDir = path.posix.dirname(clean);
    rootName = path.posix.basename(clean);
  }
  const tar = packPath(path.resolve(src), rootName, { owners: archive ? 'keep' : 'root' });
  let bytes = 0;
  tar.on('data', (c: Buffer) => (bytes += c.length));
  await put(putDir, tar);
  report(bytes, `${container}:${destPath}`);
  return 0;
}

let quiet = false;

function report(bytes: number, where: string): void {
  if (!quiet && process.stderr.isTTY) process.stderr.write(`Successfully copied ${humanSize(bytes)} to ${where}\n`);
}

const cp: Command = {
  usage: '[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tvessel cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH',
  summary: 'Copy files/folders between a container and the local filesystem',
  flags: [
    { long: 'archive', short: 'a', type: 'bool', help: 'Archive mode (copy all uid/gid information)' },
    { long: 'follow-link', short: 'L', type: 'bool', help: 'Always follow symbol link in SRC_PATH' },
    { long: 'quiet', short: 'q', type: 'bool', help: 'Suppress progress output during copy' },
  ],
  minArgs: 2,
  maxArgs: 2,
  notes: "Use '-' as the source to read a tar archive from stdin and extract it to a directory\ndestination in a container. Use '-' as the destination to stream a tar archive of a\ncontainer source to stdout.",
  async run(ctx, args) {
    const [a, b] = args.positionals as [string, string];
    quiet = args.bool('quiet');
    const src = a === '-' ? { container: null, path: '-' } : splitCpArg(a);
    const dst = b === '-' ? { container: null, path: '-' } : splitCpArg(b);
    if (src.container !== null && dst.container !== null) throw new UsageError('copying between containers is not supported');
    if (src.container === null && dst.container === null) throw new UsageError('must specify at least one container source');
    if (src.path === '' || dst.path === '') throw new UsageError('filepath cannot be empty');
    const client = connect(ctx);
    try {
      if (src.container !== null) return await fromContainer(client, src.container, src.path, dst.path, args.bool('archive'), args.bool('follow-link'));
      return await toContainer(client, src.path, dst.container as string, dst.path, args.bool('archive'), args.bool('follow-link'));
    } finally {
      client.close();
    }
  },
};

export const commands: CommandTable = { cp };
