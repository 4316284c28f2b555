/**
 * Turning a container record into an OCI bundle on disk: the mounted root
 * filesystem, the per-container /etc files, and `config.json`.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import type { ImageRecord } from '../image/image-store.js';
import type { ContainerRecord } from './model.js';
import type { ContainerPaths } from './paths.js';
import { mountRootfs, unmountRootfs } from './rootfs.js';
import { effectiveProcess } from './run-config.js';
import { containerMounts } from '../volume/bundle-mounts.js';
import { buildSpec, type OciMount, type OciSpec } from './spec.js';
import { capsFromMask } from './capabilities.js';
import { resolveUser } from './user.js';

export interface BundleInput {
  container: ContainerRecord;
  image: ImageRecord;
  lowerDirs: string[];
  paths: ContainerPaths;
  cgroupsPath: string;
  hostRlimits: { nofile: { soft: number; hard: number }; nproc: { soft: number; hard: number } };
  cgroupVersion: 1 | 2;
  /** The network namespace to join ('host', a path, or null for a private loopback-only one). */
  network: { netns: string | null; nameservers: string[] | null; ip: string | null };
}

let daemonCaps: string[] | null = null;
/** The daemon's own bounding set: a container can never be given more. */
function daemonCapabilities(): string[] {
  if (!daemonCaps) {
    const m = /CapBnd:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'));
    daemonCaps = capsFromMask(BigInt(`0x${m?.[1] ?? '0'}`));
  }
  return daemonCaps;
}

function consoleSize(v: unknown): { consoleSize?: { height: number; width: number } } {
  if (!Array.isArray(v) || v.length !== 2) return {};
  const [height, width] = v.map(Number) as [number, number];
  return height > 0 && width > 0 ? { consoleSize: { height, width } } : {};
}

export function containerHostname(c: ContainerRecord): string {
  return c.spec.Config.Hostname || c.id.slice(0, 12);
}

/** The host's /etc/resolv.conf, or '' when there is none. */
function hostResolvConf(): string {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return '';
  }
}

/** The host's resolvers, minus loopback ones that mean nothing inside the container's own network. */
function resolvConf(nameservers: string[] | null): string {
  const text = hostResolvConf();
  let lines = text.split('\n').filter((l) => !/^\s*nameserver\s+(127\.|::1)/.test(l));
  if (nameservers) {
    // The embedded resolver answers container names and forwards the rest to the host's resolvers.
    lines = [...nameservers.map((n) => `nameserver ${n}`), ...lines.filter((l) => !/^\s*nameserver\s/.test(l))];
  }
  return lines.join('\n').trim() + '\n';
}

export async function prepareBundle(input: BundleInput): Promise<{ spec: OciSpec; terminal: boolean }> {
  const { container: c, paths: p } = input;
  const proc = effectiveProcess(input.image.config, c.spec);
  await mountRootfs(input.lowerDirs, { upper: p.upper, work: p.work, merged: p.rootfs }, { volatile: !!c.spec.HostConfig.AutoRemove });
  try {
    const user = await resolveUser(p.rootfs, proc.user);
    const hostname = containerHostname(c);
    // The daemon's own small files in the container directory are written
    // synchronously: a few syscalls cost less than thread-pool round trips.
    writeFileSync(p.hostname, `${hostname}\n`);
    writeFileSync(
      p.hosts,
      `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n${input.network.ip ?? '127.0.1.1'}\t${hostname}\n`,
    );
    const dns = Array.isArray(c.spec.HostConfig.Dns) ? (c.spec.HostConfig.Dns as string[]) : [];
    writeFileSync(p.resolvConf, resolvConf(dns.length ? dns : input.network.nameservers));
    const extraHosts = Array.isArray(c.spec.HostConfig.ExtraHosts) ? (c.spec.HostConfig.ExtraHosts as string[]) : [];
    if (extraHosts.length) {
      const lines = extraHosts.map((h) => {
        const i = h.lastIndexOf(':');
        return `${h.slice(i + 1)}\t${h.slice(0, i)}`;
      });
      appendFileSync(p.hosts, `${lines.join('\n')}\n`);
    }
    const hc = c.spec.HostConfig;
    // Host binds, --mount tmpfs, and volumes (pre-populated from the rootfs mounted above).
    const userMounts = await containerMounts(c, p);
    const binds = userMounts.binds;
    const etcMounts: OciMount[] = [
      { destination: '/etc/hostname', type: 'bind', source: p.hostname, options: ['rbind', 'rprivate'] },
      { destination: '/etc/hosts', type: 'bind', source: p.hosts, options: ['rbind', 'rprivate'] },
      { destination: '/etc/resolv.conf', type: 'bind', source: p.resolvConf, options: ['rbind', 'rprivate'] },
    ].filter((m) => !binds.some((b) => b.destination === m.destination));
    const secOpts = hc.SecurityOpt ?? [];
    const spec = buildSpec({
      rootfsPath: p.rootfs,
      readonlyRootfs: !!hc.ReadonlyRootfs,
      args: proc.args,
      env: proc.env,
      cwd: proc.cwd,
      user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
      hostname,
      terminal: proc.tty,
      ...consoleSize(hc.ConsoleSize),
      ...(typeof hc.ShmSize === 'number' && hc.ShmSize > 0 ? { shmSize: hc.ShmSize } : {}),
      capAdd: hc.CapAdd ?? [],
      capDrop: hc.CapDrop ?? [],
      availableCapabilities: daemonCapabilities(),
      noNewPrivileges: secOpts.some((o) => o === 'no-new-privileges' || o === 'no-new-privileges:true' || o === 'no-new-privileges=true'),
      ...(secOpts.includes('seccomp=unconfined') || secOpts.includes('seccomp:unconfined') ? { seccomp: 'unconfined' as const } : {}),
      cgroupsPath: input.cgroupsPath,
      cgroupVersion: input.cgroupVersion,
      ...(hc.Memory ? { memory: hc.Memory } : {}),
      ...(hc.MemoryReservation ? { memoryReservation: hc.MemoryReservation } : {}),
      ...(hc.MemorySwap ? { memorySwap: hc.MemorySwap } : {}),
      ...(hc.NanoCpus ? { nanoCpus: hc.NanoCpus } : {}),
      ...(hc.CpuShares ? { cpuShares: hc.CpuShares } : {}),
      ...(hc.PidsLimit ? { pidsLimit: hc.PidsLimit } : {}),
      tmpfs: { ...(hc.Tmpfs ?? {}), ...userMounts.tmpfs },
      binds,
      extraMounts: etcMounts,
      hostRlimits: input.hostRlimits,
      ...(input.network.netns ? { namespaces: { network: input.network.netns } } : {}),
      annotations: { 'io.vessel.container.name': c.name },
    });
    writeFileSync(p.specFile, JSON.stringify(spec));
    return { spec, terminal: proc.tty };
  } catch (e) {
    await unmountRootfs(p.rootfs).catch(() => {});
    throw e;
  }
}

export async function releaseBundle(p: ContainerPaths): Promise<void> {
  await unmountRootfs(p.rootfs);
}

export function hostCpuCount(): number {
  return os.availableParallelism?.() ?? os.cpus().length;
}
