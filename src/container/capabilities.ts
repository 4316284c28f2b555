/**
 * Linux capability names and Docker's rules for `--cap-add` / `--cap-drop`.
 *
 * Names are always returned in their canonical `CAP_`-prefixed upper-case form
 * and ordered by capability number, so generated specs are deterministic.
 */
import { InvalidArgumentError } from '../core/errors.js';

/** Every capability the kernel defines up to CAP_CHECKPOINT_RESTORE (40), by bit number. */
export const CAPABILITY_BITS: Readonly<Record<string, number>> = Object.freeze({
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
});

/** All capability names ordered by bit number. */
export const ALL_CAPABILITIES: readonly string[] = Object.freeze(
  Object.entries(CAPABILITY_BITS)
    .sort((a, b) => a[1] - b[1])
    .map(([name]) => name),
);

/** The set a Docker container gets when neither --cap-add nor --cap-drop is used (mask 0xa80425fb). */
export const DEFAULT_CAPABILITIES: readonly string[] = Object.freeze(
  sortByBit([
    'CAP_CHOWN',
    'CAP_DAC_OVERRIDE',
    'CAP_FSETID',
    'CAP_FOWNER',
    'CAP_MKNOD',
    'CAP_NET_RAW',
    'CAP_SETGID',
    'CAP_SETUID',
    'CAP_SETFCAP',
    'CAP_SETPCAP',
    'CAP_NET_BIND_SERVICE',
    'CAP_SYS_CHROOT',
    'CAP_KILL',
    'CAP_AUDIT_WRITE',
  ]),
);

function sortByBit(names: Iterable<string>): string[] {
  return [...new Set(names)].sort((a, b) => (CAPABILITY_BITS[a] ?? 0) - (CAPABILITY_BITS[b] ?? 0));
}

/**
 * The canonical form of a capability name: `net_admin`, `CAP_NET_ADMIN` and
 * `Cap_Net_Admin` all give `CAP_NET_ADMIN`; `all` gives `ALL`.
 */
export function normalizeCapability(name: string): string {
  const upper = name.trim().toUpperCase();
  if (upper === 'ALL') return 'ALL';
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!Object.hasOwn(CAPABILITY_BITS, full)) throw new InvalidArgumentError(`Unknown capability: ${name}`);
  return full;
}

export interface ResolveCapabilitiesOptions {
  /**
   * What `ALL` expands to. Defaults to every capability in CAPABILITY_BITS; a
   * caller may pass the daemon's own bounding set so that `--cap-add ALL`
   * never asks the runtime for a capability it cannot grant.
   */
  all?: readonly string[];
}

/**
 * The capability set of a container after `--cap-add` and `--cap-drop`, with
 * Docker's precedence: `ALL` in `add` grants everything except the named
 * drops; otherwise `ALL` in `drop` leaves only the named adds; otherwise the
 * default set minus the drops plus the adds (an add beats a drop of the same
 * name).
 */
export function resolveCapabilities(
  add: readonly string[],
  drop: readonly string[],
  options: ResolveCapabilitiesOptions = {},
): string[] {
  const adds = add.map(normalizeCapability);
  const drops = drop.map(normalizeCapability);
  const all = options.all ? options.all.map(normalizeCapability).filter((c) => c !== 'ALL') : ALL_CAPABILITIES;
  const dropSet = new Set(drops);

  if (adds.includes('ALL')) return sortByBit(all.filter((c) => !dropSet.has(c)));
  const specificAdds = adds.filter((c) => c !== 'ALL');
  if (dropSet.has('ALL')) return sortByBit(specificAdds);
  return sortByBit([...DEFAULT_CAPABILITIES.filter((c) => !dropSet.has(c)), ...specificAdds]);
}

/** The bit mask of a set of capabilities, as shown by CapEff in /proc/<pid>/status. */
export function capMask(names: Iterable<string>): bigint {
  let mask = 0n;
  for (const name of names) {
    const canonical = normalizeCapability(name);
    if (canonical === 'ALL') {
      for (const bit of Object.values(CAPABILITY_BITS)) mask |= 1n << BigInt(bit);
    } else {
      mask |= 1n << BigInt(CAPABILITY_BITS[canonical] as number);
    }
  }
  return mask;
}

/** The known capability names whose bits are set in `mask`; unknown bits are ignored. */
export function capsFromMask(mask: bigint): string[] {
  return ALL_CAPABILITIES.filter((name) => (mask >> BigInt(CAPABILITY_BITS[name] as number)) & 1n);
}

/** A mask in the 16-hex-digit form used by /proc/<pid>/status (`00000000a80425fb`). */
export function formatCapMask(mask: bigint): string {
  return mask.toString(16).padStart(16, '0');
}
