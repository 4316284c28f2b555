/**
 * The daemon's own nftables table.
 *
 * A daemon owns exactly one `table ip <name>` and never touches anything else.
 * The whole table is a pure function of the desired state (`renderRuleset`)
 * and is replaced in one `nft -f` transaction (`applyRuleset`): the script
 * first declares the table (so the delete cannot fail), deletes it and
 * declares it again with its full contents. nft applies a file atomically,
 * so packets see either the old or the new ruleset, never a half-built one.
 *
 * Chains (all in the one table):
 *   ports        DNAT rules, one per port mapping (a regular chain)
 *   prerouting   nat, dstnat (-100): `fib daddr type local jump ports`
 *   output       nat, -100:         `fib daddr type local jump ports` (host-originated, incl. 127.0.0.1)
 *   postrouting  nat, srcnat (100): egress masquerade, 127/8 → bridge masquerade, hairpin masquerade
 *   forward      filter, 0:         isolation between bridges; internal networks
 *
 * Base chain policies are `accept`: this table only adds drops/NAT, it never
 * changes how the rest of the host's firewall decides.
 */
import { run } from '../core/exec.js';
import { ConflictError, InternalError, InvalidArgumentError } from '../core/errors.js';
import { ipToInt, isIpv4, parseCidr } from './ipam.js';

export interface NftNetwork {
  /** Bridge interface of the network (host side). */
  bridge: string;
  /** CIDR of the network, e.g. `10.88.0.0/16`. */
  subnet: string;
  /** No traffic in or out of the bridge except to/from the host itself. */
  internal: boolean;
}

export interface NftPortMapping {
  proto: 'tcp' | 'udp';
  /** Host address the port is published on; null (or `0.0.0.0`) = every local address. */
  hostIp: string | null;
  hostPort: number;
  containerIp: string;
  containerPort: number;
  /** Bridge of the network the container address belongs to. */
  bridge: string;
}

export interface NftState {
  table: string;
  networks: NftNetwork[];
  ports: NftPortMapping[];
}

const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

function checkTable(table: string): void {
  if (typeof table !== 'string' || !TABLE_NAME.test(table)) throw new InvalidArgumentError(`Invalid nftables table name: ${table}`);
}

function checkIfName(name: string): void {
  if (typeof name !== 'string' || !IFNAME.test(name) || name === '.' || name === '..') {
    throw new InvalidArgumentError(`Invalid interface name: ${name}`);
  }
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError(`Invalid ${what}: ${port}`);
}

function q(name: string): string {
  return `"${name}"`;
}

function normaliseHostIp(hostIp: string | null): string | null {
  if (hostIp === null || hostIp === '' || hostIp === '0.0.0.0') return null;
  if (!isIpv4(hostIp)) throw new InvalidArgumentError(`Invalid host IP for port mapping: ${hostIp}`);
  return hostIp;
}

/** Validated, normalised copy of the state (throws InvalidArgument/Conflict). */
function validate(state: NftState): { networks: (NftNetwork & { cidr: string })[]; ports: (NftPortMapping & { host: string | null })[] } {
  checkTable(state.table);
  const bridges = new Set<string>();
  const networks = state.networks.map((n) => {
    checkIfName(n.bridge);
    if (bridges.has(n.bridge)) throw new InvalidArgumentError(`Duplicate network bridge: ${n.bridge}`);
    bridges.add(n.bridge);
    return { ...n, cidr: parseCidr(n.subnet).cidr };
  });
  const seen = new Map<string, (string | null)[]>();
  const ports = state.ports.map((p) => {
    if (p.proto !== 'tcp' && p.proto !== 'udp') throw new InvalidArgumentError(`Invalid protocol: ${String(p.proto)}`);
    checkPort(p.hostPort, 'host port');
    checkPort(p.containerPort, 'container port');
    ipToInt(p.containerIp);
    checkIfName(p.bridge);
    if (!bridges.has(p.bridge)) throw new InvalidArgumentError(`Port mapping ${p.proto}/${p.hostPort} refers to unknown bridge: ${p.bridge}`);
    const host = normaliseHostIp(p.hostIp);
    const key = `${p.proto}/${p.hostPort}`;
    const hosts = seen.get(key) ?? [];
    if (hosts.some((h) => h === null || host === null || h === host)) {
      throw new ConflictError(`Port already allocated: ${host ?? '0.0.0.0'}:${p.hostPort}/${p.proto}`);
    }
    hosts.push(host);
    seen.set(key, hosts);
    return { ...p, host };
  });
  return { networks, ports };
}

/**
 * The full `nft -f` script for a state. Deterministic: the same state gives
 * the same text. Applying it replaces the table atomically and idempotently.
 */
export function renderRuleset(state: NftState): string {
  const { networks, ports } = validate(state);
  const T = state.table;
  const lines: string[] = [];
  const chain = (name: string, header: string | null, rules: string[]): void => {
    lines.push(`  chain ${name} {`);
    if (header) lines.push(`    ${header}`);
    for (const r of rules) lines.push(`    ${r}`);
    lines.push('  }');
  };

  // DNAT for published ports.
  const portRules = ports.map((p) => {
    const match = `${p.host ? `ip daddr ${p.host} ` : ''}${p.proto} dport ${p.hostPort}`;
    return `${match} dnat to ${p.containerIp}:${p.containerPort}`;
  });

  const post: string[] = [];
  for (const n of networks) {
    if (!n.internal) post.push(`ip saddr ${n.cidr} oifname != ${q(n.bridge)} masquerade`);
  }
  for (const n of networks) {
    // Published ports reached via 127.0.0.1: the source must not stay a loopback address on the wire.
    post.push(`oifname ${q(n.bridge)} ip saddr 127.0.0.0/8 masquerade`);
    // Hairpin: a container reaching a published port (its own or a neighbour's) through a host address.
    post.push(`oifname ${q(n.bridge)} ip saddr ${n.cidr} ct status dnat masquerade`);
  }

  const fwd: string[] = [];
  if (networks.length > 1) {
    for (const n of networks) {
      const others = networks.filter((o) => o.bridge !== n.bridge).map((o) => q(o.bridge));
      fwd.push(`iifname ${q(n.bridge)} oifname { ${others.join(', ')} } drop`);
    }
  }
  for (const n of networks) {
    if (!n.internal) continue;
    const b = q(n.bridge);
    fwd.push(`iifname ${b} oifname != ${b} drop`);
    fwd.push(`oifname ${b} iifname != ${b} ct state established,related accept`);
    fwd.push(`oifname ${b} iifname != ${b} drop`);
  }

  lines.push(`table ip ${T} {}`);
  lines.push(`delete table ip ${T}`);
  lines.push(`table ip ${T} {`);
  lines.push('  comment "managed by vessel; rewritten as a whole on every change"');
  chain('ports', null, portRules);
  chain('prerouting', 'type nat hook prerouting priority dstnat; policy accept;', ['fib daddr type local jump ports']);
  // `dstnat` is not accepted as a name in the output hook by nft 1.0.x; -100 is its value.
  chain('output', 'type nat hook output priority -100; policy accept;', ['fib daddr type local jump ports']);
  chain('postrouting', 'type nat hook postrouting priority srcnat; policy accept;', post);
  chain('forward', 'type filter hook forward priority filter; policy accept;', fwd);
  lines.push('}');
  return lines.join('\n') + '\n';
}

function wrap(what: string, e: unknown): InternalError {
  const msg = e instanceof Error ? e.message : String(e);
  return new InternalError(`${what}: ${msg}`, { cause: e });
}

/** Replaces the state's table with the rendered ruleset (`nft -f -`), atomically. */
export async function applyRuleset(state: NftState): Promise<void> {
  const script = renderRuleset(state);
  try {
    await run('nft', ['-f', '-'], { input: script, timeoutMs: 30_000 });
  } catch (e) {
    throw wrap(`Failed to apply nftables table ${state.table}`, e);
  }
}

/** Deletes `table ip <table>`; nothing happens when it does not exist. */
export async function deleteTable(table: string): Promise<void> {
  checkTable(table);
  try {
    await run('nft', ['-f', '-'], { input: `table ip ${table} {}\ndelete table ip ${table}\n`, timeoutMs: 30_000 });
  } catch (e) {
    throw wrap(`Failed to delete nftables table ${table}`, e);
  }
}

/** Names of the `ip` family tables starting with `prefix` (to find tables left by dead daemons). */
export async function listTables(prefix: string): Promise<string[]> {
  let out: string;
  try {
    out = (await run('nft', ['-j', 'list', 'tables', 'ip'], { timeoutMs: 30_000 })).stdout;
  } catch (e) {
    throw wrap('Failed to list nftables tables', e);
  }
  const parsed = JSON.parse(out || '{"nftables":[]}') as { nftables?: { table?: { family?: string; name?: string } }[] };
  const names: string[] = [];
  for (const item of parsed.nftables ?? []) {
    const t = item.table;
    if (t && t.family === 'ip' && typeof t.name === 'string' && t.name.startsWith(prefix)) names.push(t.name);
  }
  return names.sort();
}

/** True when `table ip <table>` exists. */
export async function tableExists(table: string): Promise<boolean> {
  checkTable(table);
  const r = await run('nft', ['list', 'table', 'ip', table], { reject: false, timeoutMs: 30_000 });
  return r.exitCode === 0;
}
