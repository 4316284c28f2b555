/**
 * IPv4 address management: CIDR parsing, subnet arithmetic and address
 * allocation. Pure functions, no I/O; the network manager keeps the state
 * (which addresses are in use) and passes it in.
 *
 * Addresses are handled as unsigned 32-bit integers (`>>> 0` everywhere keeps
 * them out of the signed range that JavaScript's bit operators produce).
 */
import { ConflictError, FailedPreconditionError, InvalidArgumentError } from '../core/errors.js';

export interface Subnet {
  /** Normalised CIDR notation, host bits cleared, e.g. `10.88.0.0/16`. */
  cidr: string;
  /** Network address as an unsigned 32-bit integer. */
  network: number;
  /** Prefix length, 0..32. */
  prefix: number;
}

const QUAD = /^(0|[1-9][0-9]{0,2})$/;

function tryIpToInt(ip: string): number | null {
  if (typeof ip !== 'string') return null;
  const parts = ip.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!QUAD.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n >>> 0;
}

/** Dotted quad → unsigned 32-bit integer. Throws InvalidArgumentError for anything else. */
export function ipToInt(ip: string): number {
  const n = tryIpToInt(ip);
  if (n === null) throw new InvalidArgumentError(`Invalid IPv4 address: ${ip}`);
  return n;
}

/** Unsigned 32-bit integer → dotted quad. */
export function intToIp(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new InvalidArgumentError(`Invalid IPv4 address value: ${n}`);
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** True for a syntactically valid dotted-quad IPv4 address. */
export function isIpv4(ip: string): boolean {
  return tryIpToInt(ip) !== null;
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Number of addresses in a subnet (2^(32-prefix)). */
export function subnetSize(subnet: Subnet): number {
  return 2 ** (32 - subnet.prefix);
}

/** Last address (broadcast for prefixes < 31) as an integer. */
export function lastAddress(subnet: Subnet): number {
  return (subnet.network + subnetSize(subnet) - 1) >>> 0;
}

/**
 * Parses `a.b.c.d/p` (a bare address counts as /32). Host bits are cleared:
 * `10.88.1.5/16` → `10.88.0.0/16`.
 */
export function parseCidr(cidr: string): Subnet {
  if (typeof cidr !== 'string') throw new InvalidArgumentError(`Invalid subnet: ${String(cidr)}`);
  const text = cidr.trim();
  const slash = text.indexOf('/');
  const ipPart = slash === -1 ? text : text.slice(0, slash);
  const prefixPart = slash === -1 ? '32' : text.slice(slash + 1);
  const ip = tryIpToInt(ipPart);
  if (ip === null || !/^(0|[1-9][0-9]?)$/.test(prefixPart)) throw new InvalidArgumentError(`Invalid subnet: ${cidr}`);
  const prefix = Number(prefixPart);
  if (prefix > 32) throw new InvalidArgumentError(`Invalid subnet: ${cidr}`);
  const network = (ip & maskOf(prefix)) >>> 0;
  return { cidr: `${intToIp(network)}/${prefix}`, network, prefix };
}

/** Builds a Subnet from integer parts (network is masked). */
export function subnetOf(network: number, prefix: number): Subnet {
  return parseCidr(`${intToIp(network >>> 0)}/${prefix}`);
}

function containsInt(subnet: Subnet, n: number): boolean {
  return ((n & maskOf(subnet.prefix)) >>> 0) === subnet.network;
}

/** True when `ip` (a dotted quad) lies inside `subnet` (network and broadcast included). */
export function contains(subnet: Subnet, ip: string): boolean {
  return containsInt(subnet, ipToInt(ip));
}

/** True when the two subnets share at least one address. */
export function overlaps(a: Subnet, b: Subnet): boolean {
  const p = Math.min(a.prefix, b.prefix);
  const m = maskOf(p);
  return ((a.network & m) >>> 0) === ((b.network & m) >>> 0);
}

/** Range of assignable host addresses [first, last] as integers, or null when there is none. */
function hostRange(subnet: Subnet): [number, number] {
  if (subnet.prefix >= 31) return [subnet.network, lastAddress(subnet)]; // RFC 3021 point-to-point; /32 single host
  return [subnet.network + 1, lastAddress(subnet) - 1];
}

/** First usable host address (`.1` in a /24; the lower address of a /31; the address of a /32). */
export function defaultGateway(subnet: Subnet): string {
  return intToIp(hostRange(subnet)[0]);
}

/**
 * True when `ip` is an assignable host address of `subnet` (inside it, and
 * not its network or broadcast address for prefixes < 31). Use it to validate
 * a user-given gateway; `allocate` would reject the default gateway itself.
 */
export function isUsableHost(subnet: Subnet, ip: string): boolean {
  const n = tryIpToInt(ip);
  if (n === null || !containsInt(subnet, n)) return false;
  const [first, last] = hostRange(subnet);
  return n >= first && n <= last;
}

/** `10.88.0.5` and `10.88.0.5/16` both → `10.88.0.5`. */
function stripPrefix(ip: string): string {
  const slash = ip.indexOf('/');
  return slash === -1 ? ip : ip.slice(0, slash);
}

/**
 * Allocates an address in `subnet`: the requested one, or the lowest free host
 * address. Never hands out the network or broadcast address (prefix < 31) or
 * the gateway (`options.gateway`, default `defaultGateway(subnet)`; pass `''`
 * for a network without a gateway). `used` may contain addresses with or
 * without a `/prefix` suffix; addresses outside the subnet are ignored.
 */
export function allocate(
  subnet: Subnet,
  used: Iterable<string>,
  options: { requested?: string; gateway?: string } = {},
): string {
  const [first, last] = hostRange(subnet);
  const taken = new Set<number>();
  for (const u of used) {
    const n = tryIpToInt(stripPrefix(u));
    if (n !== null && containsInt(subnet, n)) taken.add(n);
  }
  const gatewayText = options.gateway === undefined ? defaultGateway(subnet) : options.gateway;
  if (gatewayText !== '') {
    const gw = ipToInt(stripPrefix(gatewayText));
    if (containsInt(subnet, gw)) taken.add(gw);
  }

  if (options.requested !== undefined) {
    const want = ipToInt(stripPrefix(options.requested));
    const wantText = intToIp(want);
    if (!containsInt(subnet, want)) throw new InvalidArgumentError(`Address ${wantText} is not in subnet ${subnet.cidr}`);
    if (want < first || want > last) {
      throw new InvalidArgumentError(`Address ${wantText} is not a usable host address in subnet ${subnet.cidr}`);
    }
    if (taken.has(want)) throw new ConflictError(`Address already in use: ${wantText}`);
    return wantText;
  }

  // Lowest free: walk the sorted used addresses looking for the first gap.
  const sorted = [...taken].filter((n) => n >= first && n <= last).sort((a, b) => a - b);
  let candidate = first;
  for (const n of sorted) {
    if (n > candidate) break;
    if (n === candidate) candidate++;
  }
  if (candidate > last) throw new FailedPreconditionError(`No free addresses in ${subnet.cidr}`);
  return intToIp(candidate);
}

/**
 * The first `/size` block of `pool` that overlaps none of `taken`.
 * FailedPreconditionError when the pool is exhausted.
 */
export function pickFreeSubnet(pool: string, size: number, taken: Subnet[]): Subnet {
  const p = parseCidr(pool);
  if (!Number.isInteger(size) || size < p.prefix || size > 32) {
    throw new InvalidArgumentError(`Invalid subnet size /${size} for pool ${p.cidr}`);
  }
  const block = 2 ** (32 - size);
  const end = p.network + subnetSize(p); // exclusive
  let candidate = p.network;
  while (candidate < end) {
    const s = subnetOf(candidate, size);
    const clash = taken.find((t) => overlaps(s, t));
    if (!clash) return s;
    // Skip past the clashing subnet (or this block, whichever ends later), block-aligned.
    const clashEnd = clash.network + subnetSize(clash);
    const next = Math.max(candidate + block, Math.ceil(clashEnd / block) * block);
    candidate = next;
  }
  throw new FailedPreconditionError(`No free /${size} subnet in pool ${p.cidr}`);
}

interface IpRouteEntry {
  dst?: unknown;
  type?: unknown;
}

/**
 * Parses the JSON of `ip -j route show table all` (or any `ip -j route`) into
 * the IPv4 subnets the host already uses: every route destination except
 * default routes, broadcast/multicast entries and IPv6 routes. Duplicates are
 * removed; order follows the input.
 */
export function hostRoutesFromIpRoute(jsonText: string): Subnet[] {
  const text = jsonText.trim();
  if (text === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(`Invalid ip route JSON: ${(e as Error).message}`, { cause: e });
  }
  if (!Array.isArray(parsed)) throw new InvalidArgumentError('Invalid ip route JSON: expected an array');
  const out: Subnet[] = [];
  const seen = new Set<string>();
  for (const entry of parsed as IpRouteEntry[]) {
    if (!entry || typeof entry !== 'object') continue;
    const dst = entry.dst;
    if (typeof dst !== 'string' || dst === 'default' || dst.includes(':')) continue;
    const type = typeof entry.type === 'string' ? entry.type : 'unicast';
    if (type === 'broadcast' || type === 'multicast') continue;
    let s: Subnet;
    try {
      s = parseCidr(dst);
    } catch {
      continue;
    }
    if (s.prefix === 0) continue; // 0.0.0.0/0 written out is a default route too
    if (seen.has(s.cidr)) continue;
    seen.add(s.cidr);
    out.push(s);
  }
  return out;
}
