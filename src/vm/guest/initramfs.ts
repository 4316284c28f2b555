/**
 * The guest initramfs: busybox, the kernel modules needed to reach the root
 * disk and the virtio devices, resize2fs with its libraries, and /init
 * (initramfs-script.ts). A gzip'd newc cpio archive cached as
 * `<cacheDir>/vm/initramfs/<kernel version>-<hash>.img`, where the hash
 * covers the init script, the module list and the binaries inside.
 */
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { ensureGuestKit } from './kit.js';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { run } from '../../core/exec.js';
import { UnavailableError } from '../../core/errors.js';
import { cacheTemp, copyExecutable, findStaticBusybox, publish, sha256, sha256File, sharedLibraries } from './host-files.js';
import { INITRAMFS_INIT } from './initramfs-script.js';
import { readModule, resolveKernelModules, type GuestKernel } from './kernel.js';

/**
 * Drivers loaded at boot when the kernel has them as modules: both virtio
 * transports (PCI for q35/pc, MMIO for microvm, whose devices the kernel
 * finds through ACPI), disk, network, balloon, console/agent ports,
 * entropy, and the ACPI power button with the event interface acpid reads.
 */
export const GUEST_MODULES = [
  'virtio_pci',
  'virtio_mmio',
  'virtio_blk',
  'virtio_net',
  'virtio_balloon',
  'virtio_console',
  'virtio_rng',
  'ext4',
  'button',
  'evdev',
  'qemu_fw_cfg',
] as const;

/** Host program that grows the root file system; optional (see docs/vm-guest.md). */
const RESIZE2FS = '/sbin/resize2fs';

async function resize2fsPresent(): Promise<boolean> {
  return fs.access(RESIZE2FS).then(() => true, () => false);
}

/** Returns the path of the cached initramfs for `kernel`, building it first when needed. */
export async function ensureInitramfs(kernel: GuestKernel, cacheDir: string): Promise<string> {
  const busybox = await findStaticBusybox();
  const modules = await resolveKernelModules(kernel, GUEST_MODULES);
  const withResize = await resize2fsPresent();
  // The guest kit rides along, for root disks Vessel did not build (init installs it there).
  const kitDir = await ensureGuestKit(cacheDir);
  const key = sha256(
    JSON.stringify({
      kit: path.basename(kitDir),
      init: INITRAMFS_INIT,
      modules: modules.map((m) => m.path),
      busybox: await sha256File(busybox),
      resize2fs: withResize ? await sha256File(RESIZE2FS) : null,
    }),
  ).slice(0, 16);
  const dest = path.join(cacheDir, 'vm', 'initramfs', `${kernel.version}-${key}.img`);
  if (await fs.access(dest).then(() => true, () => false)) return dest;

  const tmp = await cacheTemp(cacheDir, 'initramfs');
  try {
    const root = path.join(tmp, 'root');
    for (const d of ['bin', 'sbin', 'etc', 'proc', 'sys', 'dev', 'newroot', 'tmp', 'lib/modules']) {
      await fs.mkdir(path.join(root, d), { recursive: true });
    }
    await copyExecutable(busybox, path.join(root, 'bin', 'busybox'));
    await fs.writeFile(path.join(root, 'init'), INITRAMFS_INIT, { mode: 0o755 });
    for (const m of modules) {
      await fs.writeFile(path.join(root, 'lib', 'modules', `${m.name}.ko`), await readModule(path.join(kernel.modulesDir, m.path)));
    }
    await fs.writeFile(path.join(root, 'etc', 'modules.load'), modules.map((m) => `${m.name}\n`).join(''));
    if (withResize) await copyWithLibraries(RESIZE2FS, root);
    await fs.mkdir(path.join(root, 'kit'));
    await run('cp', ['-a', path.join(kitDir, '.vessel'), path.join(root, 'kit', '.vessel')]);
    const cpio = path.join(tmp, 'initrd.cpio');
    await writeNewcCpio(root, cpio);
    const gz = path.join(tmp, 'initrd.img');
    await pipeline(createReadStream(cpio), createGzip({ level: 6 }), createWriteStream(gz));
    await fs.mkdir(path.dirname(dest), { recursive: true });
    return await publish(gz, dest);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** Copies a host program and its shared libraries (and loader) to the same paths under `root`. */
export async function copyWithLibraries(program: string, root: string): Promise<void> {
  const { loader, libs } = await sharedLibraries(program);
  await copyExecutable(program, path.join(root, program));
  for (const file of [loader, ...libs.map((l) => l.path!)]) {
    // Copy the real file under the name the loader looks for.
    await copyExecutable(await fs.realpath(file), path.join(root, file));
  }
}

/** A newc cpio of everything under `dir` (owned by root), via the host's cpio. */
export async function writeNewcCpio(dir: string, out: string): Promise<void> {
  const names: string[] = ['.'];
  for (const rel of (await fs.readdir(dir, { recursive: true })).sort()) names.push(`./${rel}`);
  try {
    await run('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0', '--reproducible', '-O', out], { cwd: dir, input: names.join('\n') + '\n' });
  } catch (e) {
    throw new UnavailableError(`Cannot write the initramfs: ${e instanceof Error ? e.message : String(e)} (apt-get install cpio)`, { cause: e });
  }
}
