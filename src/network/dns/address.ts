/** IPv4/IPv6 text ↔ bytes and reverse-lookup names (in-addr.arpa / ip6.arpa), for the DNS codec. */
import { InvalidArgumentError } from '../../core/errors.js';

/** Parses a dotted quad into 4 bytes; null if it is not one. */
export function parseIPv4(s: string): Uint8Array | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

export function formatIPv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** Parses IPv6 text (with "::", an embedded dotted quad, or a %zone, which is dropped) into 16 bytes; null if invalid. */
export function parseIPv6(input: string): Uint8Array | null {
  let s = input;
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  if (s.includes('.')) {
    const lastColon = s.lastIndexOf(':');
    if (lastColon < 0) return null;
    const v4 = parseIPv4(s.slice(lastColon + 1));
    if (!v4) return null;
    s = `${s.slice(0, lastColon + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const dbl = s.indexOf('::');
  let groups: string[];
  if (dbl >= 0) {
    if (s.indexOf('::', dbl + 1) >= 0) return null;
    const headText = s.slice(0, dbl);
    const tailText = s.slice(dbl + 2);
    const head = headText ? headText.split(':') : [];
    const tail = tailText ? tailText.split(':') : [];
    if (head.length + tail.length > 7) return null;
    groups = [...head, ...new Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  } else {
    groups = s.split(':');
    if (groups.length !== 8) return null;
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  }
  return out;
}

/** Formats 16 bytes as RFC 5952 text (lower case, longest zero run as "::"). */
export function formatIPv6(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((b[i * 2]! << 8) | b[i * 2 + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** The canonical text of an IPv4 or IPv6 address, or null if it is neither. */
export function canonicalIP(s: string): string | null {
  const v4 = parseIPv4(s);
  if (v4) return formatIPv4(v4);
  const v6 = parseIPv6(s);
  if (v6) return formatIPv6(v6);
  return null;
}

/** The reverse-lookup name of an address: "4.3.2.1.in-addr.arpa" or the 32-nibble ip6.arpa form. */
export function reverseName(ip: string): string {
  const v4 = parseIPv4(ip);
  if (v4) return `${v4[3]}.${v4[2]}.${v4[1]}.${v4[0]}.in-addr.arpa`;
  const v6 = parseIPv6(ip);
  if (!v6) throw new InvalidArgumentError(`Invalid IP address: ${ip}`);
  const nibbles: string[] = [];
  for (let i = 15; i >= 0; i--) {
    nibbles.push((v6[i]! & 0xf).toString(16), (v6[i]! >> 4).toString(16));
  }
  return `${nibbles.join('.')}.ip6.arpa`;
}

/** The canonical address a full reverse-lookup name stands for, or null (case-insensitive, trailing dot allowed). */
export function ipFromReverseName(name: string): string | null {
  const n = name.toLowerCase().replace(/\.$/, '');
  if (n.endsWith('.in-addr.arpa')) {
    const parts = n.slice(0, -'.in-addr.arpa'.length).split('.');
    if (parts.length !== 4) return null;
    const v4 = parseIPv4(parts.reverse().join('.'));
    return v4 ? formatIPv4(v4) : null;
  }
  if (n.endsWith('.ip6.arpa')) {
    const parts = n.slice(0, -'.ip6.arpa'.length).split('.');
    if (parts.length !== 32 || !parts.every((p) => /^[0-9a-f]$/.test(p))) return null;
    const out = new Uint8Array(16);
    for (let i = 0; i < 16; i++) {
      // parts[30 - 2i] is the low nibble of byte i, parts[31 - 2i] the high one
      const high = parseInt(parts[31 - i * 2]!, 16);
      const low = parseInt(parts[30 - i * 2]!, 16);
      out[i] = (high << 4) | low;
    }
    return formatIPv6(out);
  }
  return null;
}
