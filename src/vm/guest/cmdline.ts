/**
 * The kernel command line of a Vessel guest (pure).
 *
 * The guest's identity travels as `vessel.*` parameters, read from
 * /proc/cmdline by the initramfs and by the kit's init:
 *
 * | parameter                 | meaning                                               |
 * |---------------------------|-------------------------------------------------------|
 * | `vessel.hostname=NAME`    | hostname, also written to /etc/hostname and /etc/hosts |
 * | `vessel.machine_id=HEX32` | written to /etc/machine-id                            |
 * | `vessel.netN=MAC[,ADDR/PREFIX[,GATEWAY]]` | NIC N (0-based), matched by MAC     |
 * | `vessel.dns=IP[,IP...]`   | nameservers for /etc/resolv.conf                      |
 * | `vessel.root=/dev/vda`    | root block device (default /dev/vda)                  |
 * | `vessel.grow=0`           | do not grow the root ext4 to the disk size            |
 * | `vessel.console=shell`    | `shell` (default), `login` (getty) or `none` on ttyS0 |
 *
 * Dotted parameters are never passed to init as arguments or environment, so
 * they cannot collide with the image's own init conventions.
 */
import { closeSync, constants, openSync, readFileSync, readSync } from 'node:fs';
import { InvalidArgumentError } from '../../core/errors.js';

export interface GuestNic {
  /** Colon-separated lowercase or uppercase hex, e.g. `52:54:00:12:34:56`. */
  mac: string;
  /** IPv4 address with prefix, e.g. `10.89.0.5/24`. */
  address?: string;
  /** IPv4 default gateway. Only the first NIC with one gets the default route. */
  gateway?: string;
}

export interface GuestIdentity {
  hostname: string;
  /** 32 lowercase hex digits (systemd machine-id format). */
  machineId: string;
  nics: GuestNic[];
  dns?: string[];
}

export interface CmdlineOptions {
  /** Kernel console device; default `ttyS0`. */
  console?: string;
  /**
   * Host TSC frequency in kHz, passed as `tsc_early_khz=`. Needed on
   * microvm under TCG, where calibration otherwise hangs (see hostTscKhz).
   */
  tscKhz?: number;
  /** Further parameters appended verbatim (each must be one token). */
  extra?: string[];
}

const HOSTNAME = /^(?=.{1,63}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const MACHINE_ID = /^[0-9a-f]{32}$/;
const MAC = /^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$/;
const CONSOLE = /^[A-Za-z0-9_,.]+$/;

/** True for a dotted-quad IPv4 address with every octet 0..255. */
export function isIPv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/** True for `A.B.C.D/N` with N in 0..32. */
export function isIPv4Cidr(s: string): boolean {
  const [ip, prefix, more] = s.split('/');
  return more === undefined && ip !== undefined && isIPv4(ip) && prefix !== undefined && /^(0|[1-9][0-9]?)$/.test(prefix) && Number(prefix) <= 32;
}

/** Throws InvalidArgumentError unless every field is well formed. */
export function validateIdentity(id: GuestIdentity): void {
  if (!HOSTNAME.test(id.hostname)) throw new InvalidArgumentError(`Invalid guest hostname: ${JSON.stringify(id.hostname)}`);
  if (!MACHINE_ID.test(id.machineId)) throw new InvalidArgumentError(`Invalid machine id: ${JSON.stringify(id.machineId)} (want 32 lowercase hex digits)`);
  const macs = new Set<string>();
  id.nics.forEach((n, i) => {
    if (!MAC.test(n.mac)) throw new InvalidArgumentError(`Invalid MAC address of NIC ${i}: ${JSON.stringify(n.mac)}`);
    const mac = n.mac.toLowerCase();
    if (macs.has(mac)) throw new InvalidArgumentError(`Duplicate MAC address: ${mac}`);
    macs.add(mac);
    if (n.address !== undefined && !isIPv4Cidr(n.address)) {
      throw new InvalidArgumentError(`Invalid address of NIC ${i}: ${JSON.stringify(n.address)} (want A.B.C.D/PREFIX)`);
    }
    if (n.gateway !== undefined) {
      if (!isIPv4(n.gateway)) throw new InvalidArgumentError(`Invalid gateway of NIC ${i}: ${JSON.stringify(n.gateway)}`);
      if (n.address === undefined) throw new InvalidArgumentError(`NIC ${i} has a gateway but no address`);
    }
  });
  for (const d of id.dns ?? []) if (!isIPv4(d)) throw new InvalidArgumentError(`Invalid DNS server: ${JSON.stringify(d)}`);
}

/** `vessel.netN=` value: `mac[,addr[,gw]]`. */
export function nicParam(n: GuestNic): string {
  const parts = [n.mac.toLowerCase()];
  if (n.address !== undefined) parts.push(n.address);
  if (n.gateway !== undefined) parts.push(n.gateway);
  return parts.join(',');
}

/**
 * The kernel command line for a guest booted with the Vessel initramfs and
 * kit. Throws InvalidArgumentError for a malformed identity or option.
 */
export function guestKernelCmdline(id: GuestIdentity, o: CmdlineOptions = {}): string {
  validateIdentity(id);
  const console = o.console ?? 'ttyS0';
  if (!CONSOLE.test(console)) throw new InvalidArgumentError(`Invalid console: ${JSON.stringify(console)}`);
  // panic=-1: a guest that panics reboots at once (QEMU exits with -no-reboot)
  // instead of hanging forever. The rest keeps a TCG boot quiet and short.
  const args = [`console=${console}`, 'panic=-1', 'quiet', 'loglevel=4', 'rw', 'i8042.noaux', 'i8042.nokbd'];
  if (o.tscKhz !== undefined) {
    if (!Number.isInteger(o.tscKhz) || o.tscKhz <= 0) throw new InvalidArgumentError(`Invalid TSC frequency: ${o.tscKhz} kHz`);
    args.push(`tsc_early_khz=${o.tscKhz}`);
  }
  args.push(`vessel.hostname=${id.hostname}`, `vessel.machine_id=${id.machineId}`);
  id.nics.forEach((n, i) => args.push(`vessel.net${i}=${nicParam(n)}`));
  if (id.dns && id.dns.length > 0) args.push(`vessel.dns=${id.dns.join(',')}`);
  for (const e of o.extra ?? []) {
    if (e === '' || /[\s"]/.test(e)) throw new InvalidArgumentError(`Invalid kernel parameter: ${JSON.stringify(e)}`);
    args.push(e);
  }
  return args.join(' ');
}

/** TSC kHz from /proc/cpuinfo text: the `tsc` flag plus the "@ X.YZGHz" model name, or `cpu MHz`. */
export function parseCpuinfoTscKhz(cpuinfo: string): number | null {
  const first = cpuinfo.split(/\n\s*\n/)[0] ?? '';
  if (!/^flags\s*:.*\btsc\b/m.test(first)) return null;
  const model = /^model name\s*:.*@\s*([0-9.]+)\s*GHz/m.exec(first);
  if (model?.[1]) return Math.round(Number(model[1]) * 1_000_000);
  const mhz = /^cpu MHz\s*:\s*([0-9.]+)/m.exec(first);
  if (mhz?.[1]) return Math.round(Number(mhz[1]) * 1000);
  return null;
}

/** TSC kHz from kernel log text: "tsc: Detected 2000.000 MHz processor" (or "Refined TSC clocksource calibration"). */
export function parseDmesgTscKhz(dmesg: string): number | null {
  let khz: number | null = null;
  for (const m of dmesg.matchAll(/tsc: (?:Detected|Refined TSC clocksource calibration:) ([0-9.]+) MHz/g)) {
    if (m[1]) khz = Math.round(Number(m[1]) * 1000);
  }
  return khz;
}

/** The kernel log records still in the ring buffer (/dev/kmsg, non-blocking), or '' when unreadable. */
function readKmsg(): string {
  let fd: number | undefined;
  const out: string[] = [];
  try {
    fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
    const buf = Buffer.alloc(8192);
    // One record per read; EAGAIN ends the buffer. Bounded in case of a log storm.
    for (let i = 0; i < 100_000; i++) out.push(buf.subarray(0, readSync(fd, buf)).toString());
  } catch {
    // EAGAIN (end), EPERM or ENOENT
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return out.join('\n');
}

/**
 * The host's TSC frequency in kHz, or null when unknown. The kernel's own
 * measurement is preferred: the boot log saved in /var/log/dmesg, else the
 * ring buffer (only while it still holds the boot messages); otherwise
 * /proc/cpuinfo.
 */
export function hostTscKhz(): number | null {
  try {
    const khz = parseDmesgTscKhz(readFileSync('/var/log/dmesg', 'utf8'));
    if (khz) return khz;
  } catch {
    // no saved boot log: fall through
  }
  const fromKmsg = parseDmesgTscKhz(readKmsg());
  if (fromKmsg) return fromKmsg;
  try {
    return parseCpuinfoTscKhz(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return null;
  }
}
