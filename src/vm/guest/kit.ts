/**
 * The guest kit: everything Vessel adds to an image to make it a VM, kept
 * under `/.vessel` in the guest (see kit-scripts.ts for the scripts):
 *
 * ```
 * /.vessel/init                 PID 1 (busybox sh)
 * /.vessel/bin/busybox          static busybox + applet links
 * /.vessel/bin/{shutdown,poweroff,halt,reboot,reidentify}
 * /.vessel/lib/identity.sh
 * /.vessel/acpi/PWRF/00000080   power-button handler for acpid
 * /.vessel/ga/qemu-ga           the guest agent, run through
 * /.vessel/ga/ld-linux.so       its own loader with
 * /.vessel/ga/lib/*.so*         its own libraries (works in any image)
 * ```
 *
 * Cached as `<cacheDir>/vm/kit/<hash>/`, the hash covering the scripts and
 * binaries; the returned directory is overlaid on the image's root.
 */
import { constants as fsc, promises as fs } from 'node:fs';
import path from 'node:path';
import { run } from '../../core/exec.js';
import { UnavailableError } from '../../core/errors.js';
import { busyboxApplets, cacheTemp, copyExecutable, exists, findStaticBusybox, publish, sha256, sha256File, sharedLibraries } from './host-files.js';
import { ACPI_POWER_SH, GA_LOADER, GUEST_INIT_SH, IDENTITY_SH, KIT, KIT_COMMANDS, REIDENTIFY_SH, SHUTDOWN_SH, powerScript } from './kit-scripts.js';

/** Files of the kit that are scripts, by path relative to the kit root. */
export function kitScripts(): Record<string, string> {
  const files: Record<string, string> = {
    [`${KIT.root}/init`]: GUEST_INIT_SH,
    [`${KIT.lib}/identity.sh`]: IDENTITY_SH,
    [`${KIT.bin}/reidentify`]: REIDENTIFY_SH,
    [`${KIT.bin}/shutdown`]: SHUTDOWN_SH,
    [`${KIT.acpi}/PWRF/00000080`]: ACPI_POWER_SH,
  };
  for (const a of ['poweroff', 'halt', 'reboot'] as const) files[`${KIT.bin}/${a}`] = powerScript(a);
  return files;
}

const HOST_QEMU_GA = '/usr/sbin/qemu-ga';

/**
 * The qemu-ga binary: the host's (Debian qemu-guest-agent, same release as
 * the guest libraries we copy), else one unpacked from the package into the
 * cache.
 */
async function findQemuGa(cacheDir: string): Promise<string> {
  if (await fs.access(HOST_QEMU_GA, fsc.X_OK).then(() => true, () => false)) return HOST_QEMU_GA;
  const unpacked = path.join(cacheDir, 'vm', 'qemu-guest-agent', 'usr', 'sbin', 'qemu-ga');
  if (await exists(unpacked)) return unpacked;
  const tmp = await cacheTemp(cacheDir, 'qemu-ga');
  try {
    await run('apt-get', ['download', '-q', 'qemu-guest-agent'], { cwd: tmp, timeoutMs: 300_000 });
    const deb = (await fs.readdir(tmp)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error('apt-get download produced no package');
    const root = path.join(tmp, 'root');
    await run('dpkg-deb', ['-x', path.join(tmp, deb), root]);
    await publish(root, path.join(cacheDir, 'vm', 'qemu-guest-agent'));
    return unpacked;
  } catch (e) {
    throw new UnavailableError(`Cannot get qemu-guest-agent: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** Returns the cached kit directory, building it first when needed. */
export async function ensureGuestKit(cacheDir: string): Promise<string> {
  const busybox = await findStaticBusybox();
  const qemuGa = await findQemuGa(cacheDir);
  const { loader, libs } = await sharedLibraries(qemuGa);
  const scripts = kitScripts();
  const key = sha256(
    JSON.stringify({
      scripts,
      busybox: await sha256File(busybox),
      qemuGa: await sha256File(qemuGa),
      libs: await Promise.all(libs.map(async (l) => [l.name, await sha256File(l.path!)])),
      loader: await sha256File(loader),
    }),
  ).slice(0, 16);
  const dest = path.join(cacheDir, 'vm', 'kit', key);
  if (await exists(path.join(dest, KIT.root, 'init'))) return dest;

  const tmp = await cacheTemp(cacheDir, 'kit');
  try {
    const root = path.join(tmp, 'kit');
    const bin = path.join(root, KIT.bin);
    await fs.mkdir(bin, { recursive: true });
    // The kit is the top layer: its root directory's mode becomes the guest's `/`.
    await fs.chmod(root, 0o755);
    await fs.chmod(path.join(root, KIT.root), 0o755);
    await copyExecutable(busybox, path.join(bin, 'busybox'));
    const own = new Set<string>(KIT_COMMANDS);
    for (const applet of await busyboxApplets(busybox)) {
      if (!own.has(applet)) await fs.symlink('busybox', path.join(bin, applet));
    }
    for (const [rel, text] of Object.entries(scripts)) {
      const file = path.join(root, rel);
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, text, { mode: rel.endsWith('.sh') ? 0o644 : 0o755 });
    }
    // acpid's action table: event key → handler path under /.vessel/acpi
    // (an empty file would mean no actions at all).
    await fs.writeFile(path.join(root, KIT.acpi, 'acpid.conf'), 'PWRF PWRF/00000080\n');
    const ga = path.join(root, KIT.ga);
    await copyExecutable(qemuGa, path.join(ga, 'qemu-ga'));
    await copyExecutable(await fs.realpath(loader), path.join(ga, GA_LOADER));
    for (const l of libs) await copyExecutable(await fs.realpath(l.path!), path.join(ga, 'lib', l.name));
    await fs.mkdir(path.dirname(dest), { recursive: true });
    return await publish(root, dest);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
