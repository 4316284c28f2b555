/**
 * Thin wrappers over iproute2 (`ip`) for bridges, veth pairs and network
 * namespaces. No state logic: the network manager decides, this module does.
 *
 * Everything acts on the network namespace the daemon runs in (the host's),
 * except where a netns name is given. Several steps are sent to one
 * `ip -batch -` process to keep container network setup fast (one process per
 * namespace touched).
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { CommandError, run, type CommandResult } from '../core/exec.js';
import { AlreadyExistsError, InternalError, InvalidArgumentError } from '../core/errors.js';
import { ipToInt, isIpv4, parseCidr } from './ipam.js';

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const NETNS = /^[A-Za-z0-9_.-]{1,64}$/;
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const TIMEOUT = 30_000;

function checkIfName(name: string): void {
  if (typeof name !== 'string' || !IFNAME.test(name) || name === '.' || name === '..') {
    throw new InvalidArgumentError(`Invalid interface name: ${name}`);
  }
}

function checkNetns(name: string): void {
  if (typeof name !== 'string' || !NETNS.test(name) || name === '.' || name === '..') {
    throw new InvalidArgumentError(`Invalid network namespace name: ${name}`);
  }
}

/** Validates `a.b.c.d/p` keeping the host part (an interface address, not a subnet). */
function checkAddressCidr(cidr: string): string {
  const slash = typeof cidr === 'string' ? cidr.indexOf('/') : -1;
  if (slash === -1 || !isIpv4(cidr.slice(0, slash))) throw new InvalidArgumentError(`Invalid interface address: ${cidr}`);
  const prefix = parseCidr(cidr).prefix;
  return `${cidr.slice(0, slash)}/${prefix}`;
}

function wrap(what: string, e: unknown): InternalError {
  const msg = e instanceof Error ? e.message : String(e);
  return new InternalError(`${what}: ${msg}`, { cause: e });
}

async function ip(args: string[], what: string): Promise<CommandResult> {
  try {
    return await run('ip', args, { timeoutMs: TIMEOUT });
  } catch (e) {
    throw wrap(what, e);
  }
}

/** An error for a failed `ip -batch`: its stderr names the failing command and line. */
function batchError(what: string, r: CommandResult): InternalError {
  const detail = r.timedOut ? 'timed out' : r.stderr.trim().split('\n').map((l) => l.trim()).filter(Boolean).join('; ');
  return new InternalError(`${what}: ${detail || `exit code ${r.exitCode}`}`, { cause: new CommandError(r) });
}

async function runBatch(netns: string | null, commands: string[]): Promise<CommandResult> {
  const args = netns ? ['-n', netns, '-batch', '-'] : ['-batch', '-'];
  try {
    return await run('ip', args, { input: commands.join('\n') + '\n', reject: false, timeoutMs: TIMEOUT });
  } catch (e) {
    throw wrap('Failed to run ip', e); // ip itself missing
  }
}

async function ipBatch(netns: string | null, commands: string[], what: string): Promise<void> {
  const r = await runBatch(netns, commands);
  if (r.exitCode !== 0 || r.timedOut) throw batchError(what, r);
}

const NO_DEVICE = /Cannot find device|does not exist|No such device/i;

interface IpLink {
  ifname?: string;
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

function parseJsonArray<T>(text: string): T[] {
  const t = text.trim();
  if (t === '') return [];
  const v = JSON.parse(t) as unknown;
  return Array.isArray(v) ? (v as T[]) : [];
}

/** True when a link of that name exists in the daemon's namespace. */
export async function linkExists(name: string): Promise<boolean> {
  checkIfName(name);
  const r = await run('ip', ['-j', 'link', 'show', 'dev', name], { reject: false, timeoutMs: TIMEOUT });
  if (r.exitCode === 0) return true;
  if (NO_DEVICE.test(r.stderr)) return false;
  throw wrap(`Failed to look up link ${name}`, new Error(r.stderr.trim() || `exit code ${r.exitCode}`));
}

/** Names of the links starting with `prefix`, sorted. */
export async function listLinks(prefix: string): Promise<string[]> {
  const r = await ip(['-j', 'link', 'show'], 'Failed to list links');
  return parseJsonArray<IpLink>(r.stdout)
    .map((l) => l.ifname)
    .filter((n): n is string => typeof n === 'string' && n.startsWith(prefix))
    .sort();
}

/** Deletes a link (a veth deletes its peer too); nothing happens when it does not exist. */
export async function deleteLink(name: string): Promise<void> {
  checkIfName(name);
  const r = await run('ip', ['link', 'del', 'dev', name], { reject: false, timeoutMs: TIMEOUT });
  if (r.exitCode === 0 || NO_DEVICE.test(r.stderr)) return;
  throw wrap(`Failed to delete link ${name}`, new Error(r.stderr.trim() || `exit code ${r.exitCode}`));
}

async function writeSysctl(path: string, value: string): Promise<void> {
  try {
    const current = (await readFile(path, 'utf8')).trim();
    if (current === value) return;
    await writeFile(path, value);
  } catch (e) {
    throw wrap(`Failed to set ${path.replace('/proc/sys/', '').replaceAll('/', '.')}=${value}`, e);
  }
}

/**
 * Creates bridge `name` when missing, gives it exactly the IPv4 address
 * `gatewayCidr` (other IPv4 addresses are removed), brings it up and sets
 * route_localnet=1 on it so DNAT of 127.0.0.1 traffic to containers works.
 * Idempotent.
 */
export async function ensureBridge(name: string, gatewayCidr: string): Promise<void> {
  checkIfName(name);
  const address = checkAddressCidr(gatewayCidr);
  let r = await run('ip', ['-j', 'addr', 'show', 'dev', name], { reject: false, timeoutMs: TIMEOUT });
  if (r.exitCode !== 0) {
    if (!NO_DEVICE.test(r.stderr)) throw wrap(`Failed to look up bridge ${name}`, new Error(r.stderr.trim()));
    const add = await run('ip', ['link', 'add', 'name', name, 'type', 'bridge'], { reject: false, timeoutMs: TIMEOUT });
    if (add.exitCode !== 0 && !/File exists/.test(add.stderr)) {
      throw wrap(`Failed to create bridge ${name}`, new Error(add.stderr.trim() || `exit code ${add.exitCode}`));
    }
    r = await ip(['-j', 'addr', 'show', 'dev', name], `Failed to look up bridge ${name}`);
  }
  const info = parseJsonArray<IpLink>(r.stdout)[0];
  const v4 = (info?.addr_info ?? []).filter((a) => a.family === 'inet');
  const commands: string[] = [];
  let present = false;
  for (const a of v4) {
    if (`${a.local}/${a.prefixlen}` === address) present = true;
    else commands.push(`addr del ${a.local}/${a.prefixlen} dev ${name}`);
  }
  if (!present) commands.push(`addr add ${address} dev ${name}`);
  commands.push(`link set dev ${name} up`);
  await ipBatch(null, commands, `Failed to configure bridge ${name}`);
  await writeSysctl(`/proc/sys/net/ipv4/conf/${name}/route_localnet`, '1');
}

/** `ip netns add name` and brings `lo` up inside; returns `/run/netns/<name>`. AlreadyExistsError if present. */
export async function createNetns(name: string): Promise<string> {
  checkNetns(name);
  const r = await run('ip', ['netns', 'add', name], { reject: false, timeoutMs: TIMEOUT });
  if (r.exitCode !== 0) {
    if (/File exists/.test(r.stderr)) throw new AlreadyExistsError(`Network namespace already exists: ${name}`);
    throw wrap(`Failed to create network namespace ${name}`, new Error(r.stderr.trim() || `exit code ${r.exitCode}`));
  }
  try {
    await ip(['-n', name, 'link', 'set', 'dev', 'lo', 'up'], `Failed to bring up lo in network namespace ${name}`);
  } catch (e) {
    await deleteNetns(name).catch(() => undefined);
    throw e;
  }
  return `/run/netns/${name}`;
}

/** `ip netns del name`; nothing happens when it does not exist. Links inside are destroyed with it. */
export async function deleteNetns(name: string): Promise<void> {
  checkNetns(name);
  const r = await run('ip', ['netns', 'del', name], { reject: false, timeoutMs: TIMEOUT });
  if (r.exitCode === 0 || /No such file or directory/.test(r.stderr)) return;
  throw wrap(`Failed to delete network namespace ${name}`, new Error(r.stderr.trim() || `exit code ${r.exitCode}`));
}

/** Names of the named network namespaces (`/run/netns`) starting with `prefix`, sorted. */
export async function listNetns(prefix: string): Promise<string[]> {
  const r = await ip(['-j', 'netns', 'list'], 'Failed to list network namespaces');
  return parseJsonArray<{ name?: string }>(r.stdout)
    .map((n) => n.name)
    .filter((n): n is string => typeof n === 'string' && n.startsWith(prefix))
    .sort();
}

export interface VethOptions {
  /** Host-side interface name (see `vethName`). */
  hostIf: string;
  /**
   * Temporary peer name. Unused: the peer is created directly inside the
   * namespace under `ifName` (the kernel resolves the name there), so no
   * rename is needed. Accepted for callers that pass it.
   */
  peerIf?: string;
  /** Named network namespace (`ip netns`) the peer goes into. */
  netns: string;
  /** Bridge the host side is attached to. */
  bridge: string;
  /** Interface name inside the namespace, e.g. `eth0`. */
  ifName: string;
  /** Address with prefix, e.g. `10.88.0.5/16`. */
  address: string;
  /** Default route via this address, or none. */
  gateway: string | null;
  mac?: string;
  mtu?: number;
  /**
   * Hairpin mode on the bridge port (default true): lets a frame leave through
   * the port it came in on. Needed when br_netfilter is loaded, where a
   * container reaching its own published port through a host address is
   * DNATed at the bridge layer and sent back out of its own port.
   */
  hairpin?: boolean;
}

/**
 * Creates a veth pair with one end (`hostIf`) attached to `bridge` in the
 * host namespace and the other inside `netns` as `ifName`, with its address,
 * up, and a default route via `gateway`. Two processes: one `ip -batch` in the
 * host namespace and one in the container's. On failure the host side (and so
 * the pair) is removed.
 */
export async function addVethToNetns(o: VethOptions): Promise<void> {
  checkIfName(o.hostIf);
  checkIfName(o.ifName);
  checkIfName(o.bridge);
  checkNetns(o.netns);
  if (o.peerIf !== undefined) checkIfName(o.peerIf);
  const address = checkAddressCidr(o.address);
  if (o.gateway !== null) ipToInt(o.gateway);
  if (o.mac !== undefined && !MAC.test(o.mac)) throw new InvalidArgumentError(`Invalid MAC address: ${o.mac}`);
  if (o.mtu !== undefined && (!Number.isInteger(o.mtu) || o.mtu < 68 || o.mtu > 65535)) {
    throw new InvalidArgumentError(`Invalid MTU: ${o.mtu}`);
  }
  const mtu = o.mtu !== undefined ? ` mtu ${o.mtu}` : '';
  const mac = o.mac !== undefined ? ` address ${o.mac.toLowerCase()}` : '';
  const host = [
    `link add ${o.hostIf}${mtu} type veth peer name ${o.ifName} netns ${o.netns}${mtu}${mac}`,
    `link set dev ${o.hostIf} master ${o.bridge} up`,
  ];
  if (o.hairpin !== false) host.push(`link set dev ${o.hostIf} type bridge_slave hairpin on`);
  const inside = [`addr add ${address} dev ${o.ifName}`, `link set dev ${o.ifName} up`];
  if (o.gateway !== null) inside.push(`route add default via ${o.gateway} dev ${o.ifName}`);
  const r = await runBatch(null, host);
  if (r.exitCode !== 0 || r.timedOut) {
    // When the first line (`link add`) failed nothing was created, and hostIf may
    // belong to someone else (`File exists`): only clean up after a later line.
    if (!/Command failed -:1\s*$/.test(r.stderr)) await deleteLink(o.hostIf).catch(() => undefined);
    throw batchError(`Failed to create veth ${o.hostIf} for network namespace ${o.netns}`, r);
  }
  try {
    await ipBatch(o.netns, inside, `Failed to configure ${o.ifName} in network namespace ${o.netns}`);
  } catch (e) {
    await deleteLink(o.hostIf).catch(() => undefined);
    throw e;
  }
}

/** Removes a veth pair by its host side; nothing happens when it does not exist. */
export async function removeVeth(hostIf: string): Promise<void> {
  await deleteLink(hostIf);
}

/** net.ipv4.ip_forward=1 (written only when not already 1). */
export async function enableForwarding(): Promise<void> {
  await writeSysctl('/proc/sys/net/ipv4/ip_forward', '1');
}

/**
 * A deterministic interface name of at most 15 characters: `prefix` followed
 * by hex digits of sha256(containerId[/key]) filling the rest (at least 6).
 * Use `key` (e.g. the network id) when a container has several interfaces.
 */
export function vethName(prefix: string, containerId: string, key?: string): string {
  if (typeof prefix !== 'string' || !/^[a-z][a-z0-9_-]{0,8}$/.test(prefix)) {
    throw new InvalidArgumentError(`Invalid veth name prefix: ${prefix}`);
  }
  if (typeof containerId !== 'string' || containerId === '') throw new InvalidArgumentError('Invalid container ID: empty');
  const hash = createHash('sha256').update(key === undefined ? containerId : `${containerId}/${key}`).digest('hex');
  return prefix + hash.slice(0, 15 - prefix.length);
}

/**
 * Creates a persistent tap device for a VM NIC, owned by `user` when given
 * (so an unprivileged QEMU can open it), enslaved to `bridge` and up. A tap
 * left by an earlier run of the same VM is replaced.
 */
export async function createTap(o: { name: string; bridge: string; mtu: number; user?: string }): Promise<void> {
  checkIfName(o.name);
  checkIfName(o.bridge);
  await deleteLink(o.name);
  const add = ['tuntap', 'add', 'dev', o.name, 'mode', 'tap', 'vnet_hdr', ...(o.user ? ['user', o.user] : [])];
  await ipBatch(null, [add.join(' '), `link set dev ${o.name} mtu ${o.mtu} master ${o.bridge} up`], `Failed to create tap ${o.name}`).catch(
    async (e: unknown) => {
      await deleteLink(o.name).catch(() => {});
      throw e;
    },
  );
}
