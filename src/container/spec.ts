/**
 * Builds the OCI runtime spec (config.json) of a container.
 *
 * `buildSpec` is pure: everything it depends on, including facts about the
 * host such as the daemon's rlimits and the cgroup version, comes in through
 * `SpecInput`. The defaults reproduce what a Docker container gets: the same
 * capabilities, seccomp policy, mounts, masked paths, device rules and
 * namespaces.
 */
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../core/errors.js';
import { normalizeCapability, resolveCapabilities } from './capabilities.js';
import { defaultSeccompProfile, type OciSeccomp, type SeccompArch } from './seccomp.js';
import { parseBytes } from '../core/units.js';

export type { OciSeccomp, OciSyscall, OciSeccompArg } from './seccomp.js';

export type * from './oci-spec.js';
import type {
  OciUser,
  OciCapabilities,
  OciRlimit,
  OciProcess,
  OciRoot,
  OciMount,
  OciNamespaceType,
  OciNamespace,
  OciIdMapping,
  OciLinuxDevice,
  OciDeviceCgroupRule,
  OciLinuxMemory,
  OciLinuxCpu,
  OciLinuxPids,
  OciLinuxResources,
  OciLinux,
  OciHook,
  OciHooks,
  OciSpec,
} from './oci-spec.js';

// ---------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------

export interface RlimitPair {
  soft: number;
  hard: number;
}

export interface BindMount {
  /** Absolute host path. */
  source: string;
  /** Absolute path inside the container. */
  destination: string;
  readonly: boolean;
  /** Mount propagation; `rprivate` (Docker's default) when absent. */
  propagation?: 'private' | 'rprivate' | 'shared' | 'rshared' | 'slave' | 'rslave';
}

/** An rlimit the user asked for (`--ulimit nofile=1024:2048` is `{ name: 'nofile', soft: 1024, hard: 2048 }`). */
export interface Ulimit {
  name: string;
  soft: number;
  hard: number;
}

/**
 * How a namespace is obtained: absent means a new private one, `'host'`
 * means share the daemon's (no namespace entry), an absolute path means join
 * the namespace bound there (e.g. `/run/netns/x` or `/proc/<pid>/ns/net`).
 */
export type NamespaceChoice = 'host' | string;

export interface SpecInput {
  /** Absolute path of the prepared root filesystem. */
  rootfsPath: string;
  readonlyRootfs: boolean;
  /** The command and its arguments (entrypoint + cmd already merged). */
  args: string[];
  /**
   * `KEY=value` entries (image env merged with user env). Missing PATH,
   * HOSTNAME and (with a terminal) TERM get Docker's defaults.
   */
  env: string[];
  /** Absolute working directory. */
  cwd: string;
  user: { uid: number; gid: number; additionalGids: number[] };
  /** Empty for none (ignored when the UTS namespace is shared with the host). */
  hostname: string;
  terminal: boolean;
  consoleSize?: { height: number; width: number };
  capAdd: string[];
  capDrop: string[];
  /**
   * The capabilities the daemon holds (its CapBnd): `ALL` expands to these,
   * default capabilities outside them are left out, and an explicit capAdd
   * outside them is a FailedPreconditionError. Absent: all 41 are assumed.
   */
  availableCapabilities?: string[];
  noNewPrivileges: boolean;
  /** Seccomp policy: absent for the default profile, `'unconfined'` for none. */
  seccomp?: OciSeccomp | 'unconfined';
  /** Architecture for the default seccomp profile; defaults to the host's. */
  arch?: SeccompArch;
  oomScoreAdj?: number;
  cgroupsPath: string;
  /** The host's cgroup version: v2 hosts get a private cgroup namespace, as with Docker. */
  cgroupVersion: 1 | 2;
  /** Memory limit in bytes (at least 6 MiB). */
  memory?: number;
  /** Soft memory limit in bytes. */
  memoryReservation?: number;
  /**
   * Memory plus swap in bytes, or -1 for unlimited swap. Left unset unless
   * given: a v1 host without swap accounting rejects any value.
   */
  memorySwap?: number;
  /** CPU quota in billionths of a CPU (`--cpus 0.5` is 5e8). */
  nanoCpus?: number;
  /** Relative CPU weight (2..262144); 0 or absent for the default. */
  cpuShares?: number;
  /** Maximum number of tasks; 0 or -1 for unlimited. */
  pidsLimit?: number;
  /** Size of /dev/shm in bytes; 64 MiB when absent. */
  shmSize?: number;
  /** tmpfs mounts: destination → options such as `rw,size=64m,mode=1777`. */
  tmpfs: Record<string, string>;
  binds: BindMount[];
  /** Further mounts (e.g. /etc/hosts, /etc/resolv.conf, volumes), used as given. */
  extraMounts?: OciMount[];
  /** Device nodes to create; each also gets an `rwm` device cgroup rule. */
  devices?: OciLinuxDevice[];
  /** The daemon's own limits: a container cannot be given more than these hard limits. */
  hostRlimits: { nofile: RlimitPair; nproc: RlimitPair };
  ulimits?: Ulimit[];
  namespaces?: { network?: NamespaceChoice; pid?: NamespaceChoice; ipc?: NamespaceChoice; uts?: NamespaceChoice };
  annotations?: Record<string, string>;
}

// ---------------------------------------------------------------------------
// Docker's defaults
// ---------------------------------------------------------------------------

export const OCI_VERSION = '1.0.2';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** RLIMIT_NOFILE of a Docker container (the daemon runs with LimitNOFILE=infinity, i.e. 1048576). */
export const DEFAULT_NOFILE = 1048576;

export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/** Minimum memory limit Docker accepts. */
export const MIN_MEMORY = 6 * 1024 * 1024;

export const CPU_PERIOD_US = 100_000;

export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

export const DEFAULT_READONLY_PATHS: readonly string[] = [
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
];

/**
 * Device cgroup rules: deny everything, allow creating any node (opening it
 * is what matters), and allow the standard pseudo-devices. /dev/net/tun is
 * not in the list; pass it in `devices` when a container needs it.
 */
export const DEFAULT_DEVICE_RULES: readonly OciDeviceCgroupRule[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', access: 'm' },
  { allow: true, type: 'b', access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // /dev/null
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' }, // /dev/random
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' }, // /dev/full
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' }, // /dev/tty
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }, // /dev/zero
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' }, // /dev/urandom
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' }, // /dev/console
  { allow: true, type: 'c', major: 136, access: 'rwm' }, // /dev/pts/*
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // /dev/ptmx
];

/** The filesystems every container gets, in mount order. */
export function defaultMounts(shmSize: number = DEFAULT_SHM_SIZE): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['ro', 'nosuid', 'noexec', 'nodev'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shmSize}`],
    },
  ];
}

/**
 * The environment of the container process: Docker's PATH, HOSTNAME and
 * (with a terminal) TERM, each replaced by an entry of `env` with the same
 * name; later entries of `env` replace earlier ones.
 */
export function containerEnv(env: readonly string[], hostname: string, terminal: boolean): string[] {
  const merged = new Map<string, string>();
  merged.set('PATH', `PATH=${DEFAULT_PATH}`);
  if (hostname !== '') merged.set('HOSTNAME', `HOSTNAME=${hostname}`);
  if (terminal) merged.set('TERM', 'TERM=xterm');
  for (const entry of env) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`Invalid environment variable: ${entry}`);
    merged.set(entry.slice(0, eq), entry);
  }
  return [...merged.values()];
}

// ---------------------------------------------------------------------------
// tmpfs options
// ---------------------------------------------------------------------------

/** Flag options, grouped so that a later member of a group replaces an earlier one. */
const FLAG_GROUPS: ReadonlyArray<readonly string[]> = [
  ['ro', 'rw'],
  ['exec', 'noexec'],
  ['suid', 'nosuid'],
  ['dev', 'nodev'],
  ['sync', 'async'],
  ['atime', 'noatime'],
  ['diratime', 'nodiratime'],
  ['relatime', 'norelatime'],
  ['strictatime', 'nostrictatime'],
  ['mand', 'nomand'],
  ['dirsync'],
  ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'],
  ['tmpcopyup'],
  ['inode32', 'inode64'],
];

const FLAG_GROUP: ReadonlyMap<string, number> = new Map(
  FLAG_GROUPS.flatMap((group, index) => group.map((flag) => [flag, index] as const)),
);

const TMPFS_DATA_OPTIONS: Readonly<Record<string, (value: string) => string | undefined>> = {
  size: (v) => (/^\d+(?:\.\d+)?%$/.test(v) ? v : tryBytes(v)),
  mode: (v) => (/^[0-7]{1,4}$/.test(v) ? v : undefined),
  uid: (v) => (/^\d+$/.test(v) ? v : undefined),
  gid: (v) => (/^\d+$/.test(v) ? v : undefined),
  nr_inodes: (v) => (/^\d+[kmg]?%?$/i.test(v) ? v : undefined),
  nr_blocks: (v) => (/^\d+[kmg]?%?$/i.test(v) ? v : undefined),
  huge: (v) => (/^(never|always|within_size|advise)$/.test(v) ? v : undefined),
};

function tryBytes(value: string): string | undefined {
  try {
    return String(parseBytes(value));
  } catch {
    return undefined;
  }
}

/**
 * The mount options of a user tmpfs: Docker's `noexec,nosuid,nodev,rprivate`
 * overridden by the user's comma-separated options, with sizes converted to
 * bytes (`size=64m` becomes `size=67108864`).
 */
export function parseTmpfsOptions(options: string): string[] {
  const byKey = new Map<string, string>();
  const put = (option: string): void => {
    const eq = option.indexOf('=');
    if (eq >= 0) {
      const key = option.slice(0, eq);
      const check = TMPFS_DATA_OPTIONS[key];
      const value = check ? check(option.slice(eq + 1)) : undefined;
      if (value === undefined) throw new InvalidArgumentError(`Invalid tmpfs option: ${option}`);
      byKey.set(`=${key}`, `${key}=${value}`);
      return;
    }
    const group = FLAG_GROUP.get(option);
    if (group === undefined) throw new InvalidArgumentError(`Invalid tmpfs option: ${option}`);
    byKey.set(`#${group}`, option);
  };
  for (const option of ['noexec', 'nosuid', 'nodev', 'rprivate']) put(option);
  for (const raw of options.split(',')) {
    const option = raw.trim();
    if (option !== '') put(option);
  }
  return [...byKey.values()];
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

const ULIMIT_NAMES: ReadonlySet<string> = new Set([
  'as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice',
  'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack',
]);

const MAX_ID = 0xfffffffe;

function isAbsolute(p: string): boolean {
  return p.startsWith('/') && !p.includes('\0');
}

/** `/a//b/` → `/a/b`. */
function cleanPath(p: string): string {
  const normal = path.posix.normalize(p);
  return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
}

function checkInteger(value: number | undefined, what: string, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (value === undefined) return;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`Invalid ${what}: ${value}`);
  }
}

function checkDestination(destination: string, kind: string): string {
  if (!isAbsolute(destination)) {
    throw new InvalidArgumentError(`Invalid ${kind} destination: ${destination}: path must be absolute`);
  }
  const clean = cleanPath(destination);
  if (clean === '/') throw new InvalidArgumentError(`Invalid ${kind} destination: ${destination}: cannot mount over /`);
  return clean;
}

function checkNamespaceChoice(choice: NamespaceChoice | undefined, kind: string): void {
  if (choice === undefined || choice === 'host') return;
  if (!isAbsolute(choice)) {
    throw new InvalidArgumentError(`Invalid ${kind} namespace: ${choice}: expected 'host' or an absolute path`);
  }
}

/** Throws InvalidArgumentError for the first problem in `input`. */
export function validateSpecInput(input: SpecInput): void {
  if (!isAbsolute(input.rootfsPath)) throw new InvalidArgumentError(`Invalid rootfs path: ${input.rootfsPath}: path must be absolute`);
  if (input.args.length === 0 || input.args[0] === '') throw new InvalidArgumentError('No command specified');
  if (!isAbsolute(input.cwd)) throw new InvalidArgumentError(`Invalid working directory: ${input.cwd}: path must be absolute`);
  for (const entry of input.env) {
    if (entry.indexOf('=') <= 0 || entry.includes('\0')) throw new InvalidArgumentError(`Invalid environment variable: ${entry}`);
  }
  checkInteger(input.user.uid, 'user id', 0, MAX_ID);
  checkInteger(input.user.gid, 'group id', 0, MAX_ID);
  for (const gid of input.user.additionalGids) checkInteger(gid, 'group id', 0, MAX_ID);
  if (input.hostname.length > 64 || /[\s/\0]/.test(input.hostname)) {
    throw new InvalidArgumentError(`Invalid hostname: ${input.hostname}`);
  }
  if (input.consoleSize) {
    checkInteger(input.consoleSize.height, 'console height', 0, 0xffff);
    checkInteger(input.consoleSize.width, 'console width', 0, 0xffff);
  }
  checkInteger(input.oomScoreAdj, 'OOM score adjustment', -1000, 1000);

  if (input.cgroupsPath === '' || input.cgroupsPath.split('/').includes('..') || input.cgroupsPath.includes('\0')) {
    throw new InvalidArgumentError(`Invalid cgroups path: ${input.cgroupsPath}`);
  }
  if (input.cgroupVersion !== 1 && input.cgroupVersion !== 2) {
    throw new InvalidArgumentError(`Invalid cgroup version: ${String(input.cgroupVersion)}`);
  }

  // Resources, with Docker's rules.
  checkInteger(input.memory, 'memory limit', 0);
  if (input.memory !== undefined && input.memory < MIN_MEMORY) {
    throw new InvalidArgumentError(`Invalid memory limit: ${input.memory}: minimum is 6MB`);
  }
  checkInteger(input.memoryReservation, 'memory reservation', 0);
  if (input.memory !== undefined && input.memoryReservation !== undefined && input.memoryReservation > input.memory) {
    throw new InvalidArgumentError(
      `Invalid memory reservation: ${input.memoryReservation}: must not exceed the memory limit ${input.memory}`,
    );
  }
  if (input.memorySwap !== undefined) {
    checkInteger(input.memorySwap, 'memory+swap limit', -1);
    if (input.memory === undefined) throw new InvalidArgumentError('A memory+swap limit requires a memory limit');
    if (input.memorySwap !== -1 && input.memorySwap < input.memory) {
      throw new InvalidArgumentError(
        `Invalid memory+swap limit: ${input.memorySwap}: must be at least the memory limit ${input.memory}`,
      );
    }
  }
  checkInteger(input.nanoCpus, 'CPU count', 0);
  if (input.nanoCpus !== undefined && input.nanoCpus > 0 && input.nanoCpus < 10_000_000) {
    throw new InvalidArgumentError(`Invalid CPU count: ${input.nanoCpus / 1e9}: minimum is 0.01`);
  }
  checkInteger(input.cpuShares, 'CPU shares', 0, 262144);
  if (input.cpuShares === 1) throw new InvalidArgumentError('Invalid CPU shares: 1: minimum is 2');
  checkInteger(input.pidsLimit, 'pids limit', -1);
  checkInteger(input.shmSize, 'shm size', 1);

  // rlimits.
  for (const [name, pair] of Object.entries(input.hostRlimits)) {
    checkInteger(pair.soft, `host ${name} soft limit`, 0);
    checkInteger(pair.hard, `host ${name} hard limit`, 0);
  }
  for (const u of input.ulimits ?? []) {
    if (!ULIMIT_NAMES.has(u.name)) throw new InvalidArgumentError(`Invalid ulimit: ${u.name}: unknown resource`);
    checkInteger(u.soft, `ulimit ${u.name} soft limit`, 0);
    checkInteger(u.hard, `ulimit ${u.name} hard limit`, 0);
    if (u.soft > u.hard) {
      throw new InvalidArgumentError(`Invalid ulimit: ${u.name}: soft limit ${u.soft} exceeds hard limit ${u.hard}`);
    }
    const host = u.name === 'nofile' || u.name === 'nproc' ? input.hostRlimits[u.name] : undefined;
    if (host && u.hard > host.hard) {
      throw new InvalidArgumentError(
        `Invalid ulimit: ${u.name}: hard limit ${u.hard} exceeds the daemon's hard limit ${host.hard}`,
      );
    }
  }

  // Namespaces.
  checkNamespaceChoice(input.namespaces?.network, 'network');
  checkNamespaceChoice(input.namespaces?.pid, 'pid');
  checkNamespaceChoice(input.namespaces?.ipc, 'ipc');
  checkNamespaceChoice(input.namespaces?.uts, 'uts');

  // Mounts.
  const seen = new Set<string>();
  const claim = (destination: string): void => {
    if (seen.has(destination)) throw new InvalidArgumentError(`Duplicate mount point: ${destination}`);
    seen.add(destination);
  };
  for (const [destination, options] of Object.entries(input.tmpfs)) {
    claim(checkDestination(destination, 'tmpfs'));
    parseTmpfsOptions(options);
  }
  for (const bind of input.binds) {
    if (!isAbsolute(bind.source)) throw new InvalidArgumentError(`Invalid bind source: ${bind.source}: path must be absolute`);
    claim(checkDestination(bind.destination, 'bind'));
  }
  for (const mount of input.extraMounts ?? []) claim(checkDestination(mount.destination, 'mount'));
  for (const device of input.devices ?? []) {
    if (!isAbsolute(device.path) || !cleanPath(device.path).startsWith('/dev/')) {
      throw new InvalidArgumentError(`Invalid device path: ${device.path}: must be under /dev`);
    }
    checkInteger(device.major, 'device major number', 0);
    checkInteger(device.minor, 'device minor number', 0);
  }
}

// ---------------------------------------------------------------------------
// The spec
// ---------------------------------------------------------------------------

function depth(destination: string): number {
  return destination.split('/').filter((part) => part !== '').length;
}

function rlimits(input: SpecInput): OciRlimit[] {
  const nofile = Math.min(DEFAULT_NOFILE, input.hostRlimits.nofile.hard);
  const nproc = input.hostRlimits.nproc.hard;
  const byType = new Map<string, OciRlimit>([
    ['RLIMIT_NOFILE', { type: 'RLIMIT_NOFILE', soft: nofile, hard: nofile }],
    ['RLIMIT_NPROC', { type: 'RLIMIT_NPROC', soft: nproc, hard: nproc }],
  ]);
  for (const u of input.ulimits ?? []) {
    const type = `RLIMIT_${u.name.toUpperCase()}`;
    byType.set(type, { type, soft: u.soft, hard: u.hard });
  }
  return [...byType.values()];
}

function userMounts(input: SpecInput): OciMount[] {
  const mounts: OciMount[] = [];
  for (const [destination, options] of Object.entries(input.tmpfs)) {
    mounts.push({ destination: cleanPath(destination), type: 'tmpfs', source: 'tmpfs', options: parseTmpfsOptions(options) });
  }
  for (const bind of input.binds) {
    mounts.push({
      destination: cleanPath(bind.destination),
      type: 'bind',
      source: bind.source,
      options: ['rbind', ...(bind.readonly ? ['ro'] : []), bind.propagation ?? 'rprivate'],
    });
  }
  for (const mount of input.extraMounts ?? []) {
    mounts.push({ ...mount, destination: cleanPath(mount.destination) });
  }
  // Parents before children (stable, so equal depths keep their order).
  return mounts.sort((a, b) => depth(a.destination) - depth(b.destination));
}

function namespaces(input: SpecInput): OciNamespace[] {
  const out: OciNamespace[] = [];
  const add = (type: OciNamespaceType, choice: NamespaceChoice | undefined): void => {
    if (choice === 'host') return;
    out.push(choice === undefined ? { type } : { type, path: choice });
  };
  add('pid', input.namespaces?.pid);
  add('ipc', input.namespaces?.ipc);
  add('uts', input.namespaces?.uts);
  add('mount', undefined);
  add('network', input.namespaces?.network);
  if (input.cgroupVersion === 2) add('cgroup', undefined);
  return out;
}

function resources(input: SpecInput): OciLinuxResources {
  const out: OciLinuxResources = {
    devices: [
      ...DEFAULT_DEVICE_RULES.map((rule) => ({ ...rule })),
      ...(input.devices ?? [])
        .filter((d) => d.type !== 'p')
        .map(
          (d): OciDeviceCgroupRule => ({
            allow: true,
            type: d.type === 'b' ? 'b' : 'c',
            major: d.major,
            minor: d.minor,
            access: 'rwm',
          }),
        ),
    ],
  };
  const memory: OciLinuxMemory = {};
  if (input.memory !== undefined && input.memory > 0) memory.limit = input.memory;
  if (input.memoryReservation !== undefined && input.memoryReservation > 0) memory.reservation = input.memoryReservation;
  if (input.memorySwap !== undefined) memory.swap = input.memorySwap;
  if (Object.keys(memory).length > 0) out.memory = memory;

  const cpu: OciLinuxCpu = {};
  if (input.cpuShares !== undefined && input.cpuShares > 0) cpu.shares = input.cpuShares;
  if (input.nanoCpus !== undefined && input.nanoCpus > 0) {
    cpu.period = CPU_PERIOD_US;
    cpu.quota = Math.round((input.nanoCpus * CPU_PERIOD_US) / 1e9);
  }
  if (Object.keys(cpu).length > 0) out.cpu = cpu;

  if (input.pidsLimit !== undefined && input.pidsLimit > 0) out.pids = { limit: input.pidsLimit };
  return out;
}

/**
 * The resolved capability set, limited to what the daemon can grant when
 * `availableCapabilities` is known: defaults and `ALL` shrink silently, an
 * explicitly added capability the daemon lacks is an error (runc would
 * otherwise fail with "unable to apply caps").
 */
function containerCapabilities(input: SpecInput): string[] {
  const available = input.availableCapabilities;
  const caps = resolveCapabilities(input.capAdd, input.capDrop, available ? { all: available } : {});
  if (!available) return caps;
  const have = new Set(available.map(normalizeCapability));
  for (const name of input.capAdd) {
    const cap = normalizeCapability(name);
    if (cap !== 'ALL' && !have.has(cap) && caps.includes(cap)) {
      throw new FailedPreconditionError(`Capability not available to the daemon: ${cap}`);
    }
  }
  return caps.filter((cap) => have.has(cap));
}

// The default profile depends only on the capability set and the architecture:
// built once per combination instead of on every container start. Specs are
// serialised, never mutated, so the cached object is shared.
const seccompCache = new Map<string, OciSeccomp>();

function seccompFor(caps: readonly string[], arch: SeccompArch | undefined): OciSeccomp {
  const key = `${arch ?? ''}|${[...caps].sort().join(',')}`;
  let profile = seccompCache.get(key);
  if (!profile) {
    profile = defaultSeccompProfile(caps, arch ? { arch } : {});
    seccompCache.set(key, profile);
  }
  return profile;
}

/** The OCI runtime spec for a container; throws InvalidArgumentError for bad input. */
export function buildSpec(input: SpecInput): OciSpec {
  validateSpecInput(input);

  const caps = containerCapabilities(input);
  const privateUts = input.namespaces?.uts !== 'host';
  const hostname = privateUts ? input.hostname : '';

  const user = userMounts(input);
  const userDestinations = new Set(user.map((m) => m.destination));
  const base = defaultMounts(input.shmSize ?? DEFAULT_SHM_SIZE).filter(
    (m) => !userDestinations.has(m.destination) && !(userDestinations.has('/dev') && m.destination.startsWith('/dev/')),
  );

  const proc: OciProcess = {
    terminal: input.terminal,
    user: { uid: input.user.uid, gid: input.user.gid, additionalGids: [...input.user.additionalGids] },
    args: [...input.args],
    env: containerEnv(input.env, hostname, input.terminal),
    cwd: cleanPath(input.cwd),
    capabilities: {
      bounding: [...caps],
      effective: [...caps],
      permitted: [...caps],
      inheritable: [],
      ambient: [],
    },
    rlimits: rlimits(input),
    noNewPrivileges: input.noNewPrivileges,
    oomScoreAdj: input.oomScoreAdj ?? 0,
  };
  if (input.terminal && input.consoleSize) proc.consoleSize = { ...input.consoleSize };

  const linux: OciLinux = {
    namespaces: namespaces(input),
    cgroupsPath: input.cgroupsPath,
    resources: resources(input),
    maskedPaths: [...DEFAULT_MASKED_PATHS],
    readonlyPaths: [...DEFAULT_READONLY_PATHS],
  };
  if (input.devices && input.devices.length > 0) {
    linux.devices = input.devices.map((d) => ({ ...d, path: cleanPath(d.path) }));
  }
  if (input.seccomp !== 'unconfined') {
    linux.seccomp = input.seccomp
      ? structuredClone(input.seccomp)
      : seccompFor(caps, input.arch);
  }

  const spec: OciSpec = {
    ociVersion: OCI_VERSION,
    process: proc,
    root: { path: input.rootfsPath, readonly: input.readonlyRootfs },
    mounts: [...base, ...user],
    linux,
  };
  if (hostname !== '') spec.hostname = hostname;
  if (input.annotations && Object.keys(input.annotations).length > 0) spec.annotations = { ...input.annotations };
  return spec;
}
