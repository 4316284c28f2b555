/**
 * Base images made on this machine from Debian packages, since no outside
 * registry is reachable:
 * - `busybox`: the static busybox from Debian's busybox-static package, with
 *   an applet symlink farm and a minimal /etc;
 * - `debian:<suite>`: an mmdebstrap minbase root filesystem from the host's
 *   own apt sources.
 *
 * Downloads are cached under `<root>/cache/` (the .deb files), so a second
 * bootstrap does not fetch anything again.
 */
import { createReadStream, existsSync, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { run } from '../core/exec.js';
import { InvalidArgumentError, UnavailableError } from '../core/errors.js';
import type { ImageRecord, ImageStore, ProgressFn } from './image-store.js';
import { importRootfs } from './import.js';
import { DEFAULT_PATH } from './oci.js';

export const BOOTSTRAP_IMAGES = ['busybox', 'debian:bookworm'] as const;

export interface BootstrapOptions {
  cacheDir: string;
  progress?: ProgressFn;
  /** Re-download packages even when cached. */
  refresh?: boolean;
}

export async function bootstrapImage(store: ImageStore, name: string, options: BootstrapOptions): Promise<ImageRecord> {
  const [repo, tag = 'latest'] = name.split(':');
  if (repo === 'busybox') return bootstrapBusybox(store, `busybox:${tag}`, options);
  if (repo === 'debian') return bootstrapDebian(store, tag === 'latest' ? 'bookworm' : tag, options);
  throw new InvalidArgumentError(`Cannot bootstrap ${name}: supported images are ${BOOTSTRAP_IMAGES.join(', ')}`);
}

async function need(tool: string, pkg: string): Promise<void> {
  const r = await run('sh', ['-c', `command -v ${tool}`], { reject: false });
  if (r.exitCode !== 0) throw new UnavailableError(`${tool} is not installed: run npm run setup (Debian package ${pkg})`);
}

async function bootstrapBusybox(store: ImageStore, tag: string, options: BootstrapOptions): Promise<ImageRecord> {
  const { progress } = options;
  const debDir = path.join(options.cacheDir, 'debs');
  await fs.mkdir(debDir, { recursive: true });
  let deb = (await fs.readdir(debDir)).find((f) => f.startsWith('busybox-static_') && f.endsWith('.deb'));
  if (!deb || options.refresh) {
    progress?.({ status: 'Downloading busybox-static from the Debian mirror' });
    // Download beside the cache and rename in, so concurrent bootstraps never see a partial file.
    const dl = await fs.mkdtemp(path.join(options.cacheDir, 'dl-'));
    try {
      await run('apt-get', ['download', '-q', 'busybox-static'], { cwd: dl, timeoutMs: 300_000 });
      for (const f of await fs.readdir(dl)) await fs.rename(path.join(dl, f), path.join(debDir, f));
    } finally {
      await fs.rm(dl, { recursive: true, force: true });
    }
    deb = (await fs.readdir(debDir)).find((f) => f.startsWith('busybox-static_') && f.endsWith('.deb'));
  } else {
    progress?.({ status: `Using cached ${deb}` });
  }
  if (!deb) throw new UnavailableError('apt-get download busybox-static produced no package');
  const work = await fs.mkdtemp(path.join(options.cacheDir, 'busybox-'));
  try {
    const pkgRoot = path.join(work, 'pkg');
    await run('dpkg-deb', ['-x', path.join(debDir, deb), pkgRoot]);
    const rootfs = path.join(work, 'rootfs');
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'root', 'home', 'tmp', 'var/tmp', 'var/log', 'var/www', 'proc', 'sys', 'dev', 'run']) {
      await fs.mkdir(path.join(rootfs, d), { recursive: true });
    }
    await fs.chmod(path.join(rootfs, 'tmp'), 0o1777);
    await fs.chmod(path.join(rootfs, 'var/tmp'), 0o1777);
    await fs.chmod(path.join(rootfs, 'root'), 0o700);
    await fs.copyFile(path.join(pkgRoot, 'bin', 'busybox'), path.join(rootfs, 'bin', 'busybox'));
    await fs.chmod(path.join(rootfs, 'bin', 'busybox'), 0o755);
    progress?.({ status: 'Creating applet links' });
    const list = await run(path.join(rootfs, 'bin', 'busybox'), ['--list-full']);
    for (const applet of list.stdout.split('\n').map((s) => s.trim()).filter(Boolean)) {
      if (applet === 'bin/busybox') continue;
      const link = path.join(rootfs, applet);
      await fs.mkdir(path.dirname(link), { recursive: true });
      const rel = path.relative(path.dirname(link), path.join(rootfs, 'bin', 'busybox'));
      await fs.symlink(rel, link).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
    }
    await fs.writeFile(
      path.join(rootfs, 'etc', 'passwd'),
      'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    );
    await fs.writeFile(
      path.join(rootfs, 'etc', 'group'),
      'root:x:0:\ndaemon:x:1:\ntty:x:5:\nwww-data:x:33:\nnogroup:x:65534:\n',
    );
    await fs.writeFile(path.join(rootfs, 'etc', 'hosts'), '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n');
    await fs.writeFile(path.join(rootfs, 'etc', 'hostname'), 'busybox\n');
    // Bind-mount targets for the container's own file (as hosts and hostname): present in the
    // image, a container start need not copy /etc up into its writable layer to make one.
    await fs.writeFile(path.join(rootfs, 'etc', 'resolv.conf'), '');
    const tar = path.join(work, 'rootfs.tar');
    await run('tar', ['--numeric-owner', '--sort=name', '--mtime=@0', '-C', rootfs, '-cf', tar, '.']);
    return await importRootfs(store, createReadStream(tar), {
      tag,
      config: { Env: [`PATH=${DEFAULT_PATH}`], Cmd: ['sh'] },
      createdBy: `vessel image bootstrap busybox (Debian ${deb.replace(/\.deb$/, '')})`,
      comment: 'Bootstrapped from Debian busybox-static',
      ...(progress ? { progress } : {}),
    });
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

async function bootstrapDebian(store: ImageStore, suite: string, options: BootstrapOptions): Promise<ImageRecord> {
  if (!/^[a-z]+$/.test(suite)) throw new InvalidArgumentError(`Invalid Debian suite: ${suite}`);
  await need('mmdebstrap', 'mmdebstrap');
  const { progress } = options;
  const archives = path.join(options.cacheDir, 'apt-archives');
  await fs.mkdir(archives, { recursive: true });
  const cached = path.join(options.cacheDir, 'rootfs', `debian-${suite}.tar`);
  const config = { Env: [`PATH=${DEFAULT_PATH}`], Cmd: ['bash'] };
  const meta = {
    tag: `debian:${suite}`,
    config,
    createdBy: `vessel image bootstrap debian:${suite} (mmdebstrap --variant=minbase)`,
    comment: 'Bootstrapped with mmdebstrap from the host apt sources',
    ...(progress ? { progress } : {}),
  };
  if (!options.refresh && existsSync(cached)) {
    const built = (await fs.stat(cached)).mtime.toISOString().slice(0, 10);
    progress?.({ status: `Using the cached ${suite} root filesystem built ${built} (--refresh rebuilds it)` });
    return importRootfs(store, createReadStream(cached), meta);
  }
  const work = await fs.mkdtemp(path.join(options.cacheDir, 'debian-'));
  try {
    const tar = path.join(work, 'rootfs.tar');
    const args = ['--variant=minbase', '--mode=root', '--format=tar', '--quiet'];
    // Reuse and refill the package cache around the download (mmdebstrap's
    // documented hook pattern), so a rebuild fetches only what changed.
    args.push(`--setup-hook=mkdir -p "$1"/var/cache/apt/archives && cp -a ${archives}/. "$1"/var/cache/apt/archives/ 2>/dev/null || true`);
    args.push(`--customize-hook=cp -a "$1"/var/cache/apt/archives/*.deb ${archives}/ 2>/dev/null || true`);
    args.push('--customize-hook=rm -f "$1"/var/cache/apt/archives/*.deb');
    // Device nodes are created by the runtime at start; a layer must not carry them.
    args.push('--skip=cleanup/apt/cache', '--skip=output/dev');
    args.push(suite, tar);
    const sources = '/etc/apt/sources.list.d/debian.sources';
    if (suite === hostSuite() && existsSync(sources)) args.push(sources);
    progress?.({ status: `Running mmdebstrap ${suite} (minbase)` });
    const ticker = setInterval(() => progress?.({ status: `Running mmdebstrap ${suite} (minbase)…` }), 5000);
    try {
      await run('mmdebstrap', args, { timeoutMs: 1_200_000 });
    } finally {
      clearInterval(ticker);
    }
    const image = await importRootfs(store, createReadStream(tar), meta);
    await fs.mkdir(path.dirname(cached), { recursive: true });
    await fs.rename(tar, cached);
    return image;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

function hostSuite(): string {
  try {
    return /VERSION_CODENAME=(\w+)/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'bookworm';
  } catch {
    return 'bookworm';
  }
}
