/**
 * The guest kernel: Debian's cloud kernel (linux-image-cloud-amd64) from the
 * host's apt mirror, unpacked under `<cacheDir>/vm/kernel/<version>/`.
 * Once one is cached no network is used again; remove the directory to
 * pick up a newer kernel.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { CommandError, run } from '../../core/exec.js';
import { InternalError, NotFoundError, UnavailableError } from '../../core/errors.js';
import { cacheTemp, exists, publish } from './host-files.js';
import { moduleNameFromPath, parseModinfoDepends, parseModulesBuiltin, resolveModuleOrder, type ModuleInfo } from './modules.js';

export interface GuestKernel {
  /** `uname -r` of the guest, e.g. `6.1.0-56-cloud-amd64`. */
  version: string;
  /** The bzImage. */
  vmlinuz: string;
  /** `.../lib/modules/<version>`. */
  modulesDir: string;
}

export const KERNEL_METAPACKAGE = 'linux-image-cloud-amd64';

/** The real package a metapackage depends on, from `apt-cache depends` output (pure). */
export function parseKernelDepends(text: string): string | null {
  for (const m of text.matchAll(/^\s*\|?Depends:\s*(linux-image-(\S+))\s*$/gm)) {
    if (m[1] && !m[1].endsWith('-unsigned') && /^\d/.test(m[2] ?? '')) return m[1];
  }
  return null;
}

/** Orders kernel versions like `6.1.0-9` < `6.1.0-56` (numeric runs compared as numbers). */
export function compareKernelVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

function kernelAt(dir: string, version: string): GuestKernel {
  return { version, vmlinuz: path.join(dir, 'boot', `vmlinuz-${version}`), modulesDir: path.join(dir, 'lib', 'modules', version) };
}

async function complete(k: GuestKernel): Promise<boolean> {
  return (await exists(k.vmlinuz)) && (await exists(k.modulesDir));
}

/** The newest kernel already unpacked in the cache, or null. */
export async function cachedGuestKernel(cacheDir: string): Promise<GuestKernel | null> {
  const root = path.join(cacheDir, 'vm', 'kernel');
  const names = (await fs.readdir(root).catch(() => [] as string[])).sort(compareKernelVersions).reverse();
  for (const v of names) {
    const k = kernelAt(path.join(root, v), v);
    if (await complete(k)) return k;
  }
  return null;
}

async function apt(args: string[], what: string, cwd?: string): Promise<string> {
  try {
    return (await run(args[0]!, args.slice(1), { timeoutMs: 600_000, ...(cwd ? { cwd } : {}) })).stdout;
  } catch (e) {
    const why = e instanceof CommandError ? e.message.replace(/^Command failed: /, '') : String(e);
    throw new UnavailableError(`Cannot ${what}: ${why}`, { cause: e });
  }
}

/**
 * Returns the cached guest kernel, downloading and unpacking it first when
 * the cache has none. Errors are one line (UnavailableError for apt).
 */
export async function ensureGuestKernel(cacheDir: string, progress?: (line: string) => void): Promise<GuestKernel> {
  const cached = await cachedGuestKernel(cacheDir);
  if (cached) return cached;
  // VESSEL_GUEST_KERNEL_PACKAGE picks another Debian kernel metapackage (e.g. linux-image-amd64).
  const meta = process.env.VESSEL_GUEST_KERNEL_PACKAGE || KERNEL_METAPACKAGE;
  const deps = await apt(['apt-cache', 'depends', meta], `find the guest kernel package ${meta} (is the apt index up to date?)`);
  const pkg = parseKernelDepends(deps);
  if (!pkg) throw new UnavailableError(`Cannot resolve ${meta}: apt-cache depends names no kernel image`);
  const version = pkg.slice('linux-image-'.length);
  const tmp = await cacheTemp(cacheDir, 'kernel');
  try {
    progress?.(`Downloading ${pkg} from the Debian mirror`);
    const dl = path.join(tmp, 'dl');
    await fs.mkdir(dl);
    await apt(['apt-get', 'download', '-q', pkg], `download ${pkg}`, dl);
    const deb = (await fs.readdir(dl)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new UnavailableError(`Cannot download ${pkg}: apt-get download produced no package`);
    progress?.(`Unpacking ${deb}`);
    const root = path.join(tmp, 'root');
    await run('dpkg-deb', ['-x', path.join(dl, deb), root]);
    const k = kernelAt(root, version);
    if (!(await complete(k))) throw new InternalError(`Package ${deb} has no boot/vmlinuz-${version} or lib/modules/${version}`);
    const dest = path.join(cacheDir, 'vm', 'kernel', version);
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await publish(root, dest);
    progress?.(`Guest kernel ${version} ready`);
    return kernelAt(dest, version);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** Reads a module file, decompressing `.ko.xz` / `.ko.zst` / `.ko.gz` with the host tools. */
export async function readModule(file: string): Promise<Buffer> {
  const tool = file.endsWith('.xz') ? 'xz' : file.endsWith('.zst') ? 'zstd' : file.endsWith('.gz') ? 'gzip' : null;
  if (!tool) return fs.readFile(file);
  return new Promise((resolve, reject) => {
    const child = spawn(tool, ['-dc', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new UnavailableError(`Cannot decompress ${file}: ${tool}: ${e.message}`, { cause: e })));
    child.on('close', (code) =>
      code === 0 ? resolve(Buffer.concat(out)) : reject(new UnavailableError(`Cannot decompress ${file}: ${tool} exit code ${code}: ${err.trim()}`)),
    );
  });
}

/**
 * The modules to load for `wanted`, dependencies first, with built-ins
 * (from the kernel's modules.builtin) left out. Module files are only read
 * for the modules on the dependency paths.
 */
export async function resolveKernelModules(kernel: GuestKernel, wanted: readonly string[]): Promise<ModuleInfo[]> {
  const builtin = parseModulesBuiltin(await fs.readFile(path.join(kernel.modulesDir, 'modules.builtin'), 'utf8').catch(() => ''));
  const paths = new Map<string, string>();
  for (const rel of await fs.readdir(path.join(kernel.modulesDir, 'kernel'), { recursive: true })) {
    const name = moduleNameFromPath(rel);
    if (name) paths.set(name, path.join('kernel', rel));
  }
  // resolveModuleOrder is synchronous; read the candidates' dependencies first,
  // breadth-first from the wanted names.
  const infos = new Map<string, ModuleInfo>();
  let frontier = wanted.map((w) => w.replace(/-/g, '_')).filter((w) => !builtin.has(w));
  while (frontier.length) {
    const next: string[] = [];
    for (const name of frontier) {
      if (infos.has(name) || builtin.has(name)) continue;
      const rel = paths.get(name);
      if (!rel) continue; // resolveModuleOrder reports it
      const depends = parseModinfoDepends(await readModule(path.join(kernel.modulesDir, rel)));
      infos.set(name, { name, path: rel, depends });
      next.push(...depends);
    }
    frontier = next;
  }
  try {
    return resolveModuleOrder(wanted, infos, builtin);
  } catch (e) {
    if (e instanceof NotFoundError) throw new NotFoundError(`${e.message} in kernel ${kernel.version}`, { cause: e });
    throw e;
  }
}
