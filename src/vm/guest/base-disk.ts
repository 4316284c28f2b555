/**
 * VM disks made from images.
 *
 * The base disk of an image is an ext4 file system holding the image's
 * merged layers plus the guest kit (and, when the image has none, links
 * `/sbin/{shutdown,poweroff,halt,reboot}` → `/.vessel/bin/*`). It is built
 * once, from a read-only overlayfs mount of `kit:layers…`, with
 * `mke2fs -d`, converted to qcow2 and cached read-only as
 * `<outDir>/<image id hex>.qcow2`. It never changes afterwards: every VM disk
 * is a qcow2 overlay backed by it (createOverlayDisk).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { CommandError, run } from '../../core/exec.js';
import { AlreadyExistsError, InternalError, InvalidArgumentError, UnavailableError } from '../../core/errors.js';
import { MNT_DETACH, MS, mount, umount } from '../../native/native.js';
import { exists, isMounted, mountsUnder, sweepStaleTemps } from './host-files.js';
import { resolveGuestPath } from './root-path.js';

export interface BaseDiskOptions {
  /** The image's layer directories, top first (ImageStore.lowerDirs). */
  lowerDirs: string[];
  /** Image id, `sha256:<hex>` or `<hex>`. */
  imageId: string;
  /** Where base disks are kept. */
  outDir: string;
  /** ensureGuestKit's directory. */
  kitDir: string;
  cacheDir: string;
}

export interface BaseDisk {
  /** The qcow2 file (read-only, shared by all VMs of the image). */
  path: string;
  /** Its virtual size in bytes. */
  virtualSize: number;
}

const MiB = 1024 * 1024;
/** Commands the guest must find in /sbin (qemu-ga runs /sbin/shutdown by absolute path). */
const POWER_COMMANDS = ['shutdown', 'poweroff', 'halt', 'reboot'];

/** `sha256:abc…` → `abc…`; throws for anything but 12..64 lowercase hex digits. */
export function imageIdHex(imageId: string): string {
  const hex = imageId.replace(/^sha256:/, '');
  if (!/^[0-9a-f]{12,64}$/.test(hex)) throw new InvalidArgumentError(`Invalid image id: ${JSON.stringify(imageId)}`);
  return hex;
}

/**
 * File system size for `contentBytes` of data in `inodes` files (pure):
 * content plus a quarter, plus 64 MiB for ext4 metadata, the journal and
 * first-boot writes, rounded up to a MiB; at least 128 MiB.
 */
export function baseDiskSize(contentBytes: number, inodes: number): number {
  const want = contentBytes * 1.25 + inodes * 256 + 64 * MiB;
  return Math.max(128 * MiB, Math.ceil(want / MiB) * MiB);
}

/** Inode count for mke2fs -N (pure): twice the files present, at least 16384. */
export function baseDiskInodes(inodes: number): number {
  return Math.max(16384, inodes * 2);
}

/** overlayfs lowerdir option (pure); throws for paths overlayfs cannot take. */
export function overlayLowerdir(dirs: string[]): string {
  for (const d of dirs) {
    if (!path.isAbsolute(d) || /[:,\\\n]/.test(d)) throw new InvalidArgumentError(`Unusable layer directory for an overlay mount: ${d}`);
  }
  const data = `lowerdir=${dirs.join(':')}`;
  // mount(2) data is one page.
  if (data.length > 4000) throw new InvalidArgumentError(`Image has too many layers for one overlay mount (${dirs.length})`);
  return data;
}

/** Apparent size (4 KiB blocks) and number of inodes of a tree, not crossing mounts. */
async function measure(dir: string): Promise<{ bytes: number; inodes: number }> {
  let bytes = 0;
  let inodes = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = await fs.lstat(p);
      inodes++;
      bytes += Math.ceil(st.size / 4096) * 4096;
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return { bytes, inodes };
}

async function qemuImg(args: string[], what: string): Promise<string> {
  try {
    return (await run('qemu-img', args, { timeoutMs: 600_000 })).stdout;
  } catch (e) {
    const why = e instanceof CommandError ? e.message.replace(/^Command failed: /, '') : String(e);
    throw new UnavailableError(`Cannot ${what}: ${why}`, { cause: e });
  }
}

/** Virtual size of a disk image in bytes (`qemu-img info`). */
export async function diskVirtualSize(file: string): Promise<number> {
  const info = JSON.parse(await qemuImg(['info', '--output=json', file], `inspect ${file}`)) as { 'virtual-size'?: number };
  if (typeof info['virtual-size'] !== 'number') throw new InternalError(`qemu-img info ${file} reports no virtual size`);
  return info['virtual-size'];
}

/** Links for the power commands the merged image lacks, as guest path → link target. */
async function missingPowerCommands(merged: string): Promise<Map<string, string>> {
  const links = new Map<string, string>();
  const sbin = await resolveGuestPath(merged, '/sbin');
  for (const c of POWER_COMMANDS) {
    const at = await resolveGuestPath(merged, `/sbin/${c}`);
    if (!(await exists(path.join(merged, at)))) links.set(`${sbin}/${c}`, `/.vessel/bin/${c}`);
  }
  return links;
}

/** A crashed builder's overlay mount: detach it so its temp dir can go. */
async function releaseStaleMount(tmp: string): Promise<void> {
  const merged = path.join(tmp, 'merged');
  if (!(await isMounted(merged))) return;
  try {
    umount(merged, MNT_DETACH);
  } catch {
    // still mounted: the sweep leaves this temp dir alone
  }
}

const building = new Map<string, Promise<BaseDisk>>();

/** Returns the image's base disk, building it first when it is not cached. */
export async function ensureBaseDisk(o: BaseDiskOptions): Promise<BaseDisk> {
  const hex = imageIdHex(o.imageId);
  if (o.lowerDirs.length === 0) throw new InvalidArgumentError(`Image ${hex.slice(0, 12)} has no layers`);
  // Keyed by the kit too: a new guest kit (init, agent) gives new base disks; VMs on an older one keep it as their backing file.
  const dest = path.join(o.outDir, `${hex}-${path.basename(o.kitDir).slice(0, 16)}.qcow2`);
  if (await exists(dest)) return { path: dest, virtualSize: await diskVirtualSize(dest) };
  let p = building.get(dest);
  if (!p) {
    p = buildBaseDisk(o, dest).finally(() => building.delete(dest));
    building.set(dest, p);
  }
  return p;
}

async function buildBaseDisk(o: BaseDiskOptions, dest: string): Promise<BaseDisk> {
  for (const d of [o.kitDir, ...o.lowerDirs]) {
    if (!(await exists(d))) throw new InvalidArgumentError(`Layer directory does not exist: ${d}`);
  }
  await fs.mkdir(o.outDir, { recursive: true });
  await sweepStaleTemps(o.outDir, releaseStaleMount);
  const tmp = await fs.mkdtemp(path.join(o.outDir, `.build-${path.basename(dest, '.qcow2').slice(0, 12)}-${process.pid}-`));
  const merged = path.join(tmp, 'merged');
  let mounted = false;
  const unmount = (): void => {
    if (!mounted) return;
    try {
      umount(merged);
    } catch {
      umount(merged, MNT_DETACH);
    }
    mounted = false;
  };
  try {
    await fs.mkdir(merged);
    let lower = [o.kitDir, ...o.lowerDirs];
    const mountMerged = (): void => {
      try {
        mount('overlay', merged, 'overlay', MS.RDONLY, overlayLowerdir(lower));
      } catch (e) {
        if (e instanceof InvalidArgumentError) throw e;
        throw new UnavailableError(`Cannot mount the image layers: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
      mounted = true;
    };
    mountMerged();
    const links = await missingPowerCommands(merged);
    if (links.size > 0) {
      // One more layer on top with the links, placed where the image's own
      // /sbin really is (usr/sbin in merged-/usr images).
      const shim = path.join(tmp, 'shim');
      await fs.mkdir(shim, { mode: 0o755 });
      await fs.chmod(shim, 0o755);
      for (const [guest, target] of links) {
        await fs.mkdir(path.join(shim, path.dirname(guest)), { recursive: true, mode: 0o755 });
        await fs.symlink(target, path.join(shim, guest));
      }
      unmount();
      lower = [shim, ...lower];
      mountMerged();
    }
    const { bytes, inodes } = await measure(merged);
    const size = baseDiskSize(bytes, inodes);
    const raw = path.join(tmp, 'disk.raw');
    await fs.writeFile(raw, '');
    await fs.truncate(raw, size);
    try {
      await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-m', '0', '-L', 'vessel-root', '-N', String(baseDiskInodes(inodes)), '-d', merged, raw], {
        timeoutMs: 600_000,
      });
    } catch (e) {
      const why = e instanceof CommandError ? e.message.replace(/^Command failed: /, '') : String(e);
      throw new UnavailableError(`Cannot make the base disk file system: ${why}`, { cause: e });
    }
    unmount();
    const qcow = path.join(tmp, 'disk.qcow2');
    await qemuImg(['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, qcow], 'convert the base disk to qcow2');
    await fs.chmod(qcow, 0o444);
    // link, not rename: a disk published by a concurrent builder must never be
    // replaced, overlays may already point at it.
    await fs.link(qcow, dest).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
    return { path: dest, virtualSize: await diskVirtualSize(dest) };
  } finally {
    try {
      unmount();
    } catch {
      // left mounted (busy even for a lazy unmount): keep the temp dir below
    }
    // Never recurse into a mount; and a cleanup failure must not replace the
    // error that brought us here.
    if ((await mountsUnder(tmp)).length === 0) await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * A VM's own disk: a qcow2 overlay of `base` (referenced by absolute path,
 * format pinned). `sizeBytes` (at least the base's size) makes the guest's
 * disk larger; the initramfs grows the file system at boot.
 */
export async function createOverlayDisk(base: string, dest: string, sizeBytes?: number): Promise<void> {
  const abs = path.resolve(base);
  if (await exists(dest)) throw new AlreadyExistsError(`Disk already exists: ${dest}`);
  const args = ['create', '-q', '-f', 'qcow2', '-b', abs, '-F', 'qcow2'];
  if (sizeBytes !== undefined) {
    const baseSize = await diskVirtualSize(abs);
    if (!Number.isInteger(sizeBytes) || sizeBytes < baseSize) {
      throw new InvalidArgumentError(`Disk size ${sizeBytes} is smaller than the image's base disk (${baseSize} bytes)`);
    }
  }
  args.push(dest);
  if (sizeBytes !== undefined) args.push(String(sizeBytes));
  try {
    await qemuImg(args, `create the disk ${dest}`);
  } catch (e) {
    await fs.rm(dest, { force: true });
    throw e;
  }
}
