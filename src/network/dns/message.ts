/**
 * The DNS wire format (RFC 1035 §4, AAAA from RFC 3596, SRV from RFC 2782,
 * OPT from RFC 6891): a pure codec with no I/O.
 *
 * Names are in presentation form without the trailing dot ("web.example",
 * the root is ""); label bytes that are not printable ASCII, and "." or "\"
 * inside a label, are written as `\DDD` / `\.` / `\\` escapes, both when
 * parsing and when encoding. Name comparison in DNS is ASCII case-insensitive;
 * the codec preserves case.
 *
 * `parseMessage` throws `DnsFormatError` (an InvalidArgumentError) for any
 * malformed input and nothing else; callers answering queries turn that into
 * FORMERR with `buildErrorResponse`.
 */
import { InvalidArgumentError } from '../../core/errors.js';

export const RRType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  ANY: 255,
} as const;

export const RRClass = { IN: 1, ANY: 255 } as const;

export const Opcode = { QUERY: 0 } as const;

export const RCode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

/** The largest UDP response to a client that did not advertise EDNS (RFC 1035 §4.2.1). */
export const CLASSIC_UDP_SIZE = 512;
/** The UDP payload size this codec advertises in the OPT records it writes (DNS flag day 2020). */
export const EDNS_UDP_SIZE = 1232;
/** The largest message that fits a TCP frame. */
export const MAX_MESSAGE_SIZE = 65535;

/** A DNS message could not be parsed. */
export class DnsFormatError extends InvalidArgumentError {
  override name = 'DnsFormatError';
}

export interface DnsHeader {
  id: number;
  /** true in responses */
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  ad: boolean;
  cd: boolean;
  /** the low 4 bits of the response code (the OPT record holds the high bits) */
  rcode: number;
}

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

export type RecordData =
  /** A (dotted quad) and AAAA (RFC 5952 text) */
  | { kind: 'address'; address: string }
  /** NS, CNAME, PTR */
  | { kind: 'name'; name: string }
  | { kind: 'mx'; preference: number; exchange: string }
  | { kind: 'srv'; priority: number; weight: number; port: number; target: string }
  | {
      kind: 'soa';
      mname: string;
      rname: string;
      serial: number;
      refresh: number;
      retry: number;
      expire: number;
      minimum: number;
    }
  /** every other type (TXT, OPT, ...): the RDATA bytes as they were */
  | { kind: 'raw'; bytes: Uint8Array };

export interface DnsRecord {
  name: string;
  type: number;
  /** for OPT: the sender's UDP payload size */
  class: number;
  /** for OPT: extended rcode, version and flags */
  ttl: number;
  data: RecordData;
}

export interface DnsMessage {
  header: DnsHeader;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

export { parseIPv4, formatIPv4, parseIPv6, formatIPv6, canonicalIP, reverseName, ipFromReverseName } from './address.js';
import { parseIPv4, formatIPv4, parseIPv6, formatIPv6, canonicalIP, reverseName, ipFromReverseName } from './address.js';

// ---------------------------------------------------------------------------
// Names

const MAX_NAME_WIRE = 255;
const MAX_LABEL = 63;
const MAX_POINTER_JUMPS = 128;

function labelToText(buf: Uint8Array, start: number, len: number): string {
  let s = '';
  for (let i = start; i < start + len; i++) {
    const b = buf[i]!;
    if (b === 0x2e || b === 0x5c) s += '\\' + String.fromCharCode(b);
    else if (b > 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += '\\' + b.toString().padStart(3, '0');
  }
  return s;
}

/** Splits a presentation-form name into label bytes; throws InvalidArgumentError for an invalid name. */
export function nameToLabels(name: string): Uint8Array[] {
  if (name === '' || name === '.') return [];
  const labels: Uint8Array[] = [];
  let cur: number[] = [];
  let wire = 1;
  const bad = (why: string) => new InvalidArgumentError(`Invalid DNS name: ${JSON.stringify(name)}: ${why}`);
  const push = () => {
    if (cur.length === 0) throw bad('empty label');
    if (cur.length > MAX_LABEL) throw bad('label longer than 63 bytes');
    wire += cur.length + 1;
    if (wire > MAX_NAME_WIRE) throw bad('longer than 255 bytes');
    labels.push(Uint8Array.from(cur));
    cur = [];
  };
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2e) {
      push();
      continue;
    }
    if (c === 0x5c) {
      const digits = name.slice(i + 1, i + 4);
      if (/^[0-9]{3}$/.test(digits)) {
        const v = Number(digits);
        if (v > 255) throw bad('escape out of range');
        cur.push(v);
        i += 3;
      } else if (i + 1 < name.length && name.charCodeAt(i + 1) < 0x80) {
        cur.push(name.charCodeAt(i + 1));
        i += 1;
      } else {
        throw bad('dangling escape');
      }
      continue;
    }
    if (c < 0x80) {
      cur.push(c);
      continue;
    }
    const cp = name.codePointAt(i)!;
    const bytes = Buffer.from(String.fromCodePoint(cp), 'utf8');
    for (const b of bytes) cur.push(b);
    if (cp > 0xffff) i += 1;
  }
  if (cur.length > 0) push();
  return labels;
}

/** ASCII-lowercased, without a trailing dot: the form names are compared in. */
export function normalizeName(name: string): string {
  let n = name;
  if (n.endsWith('.') && !n.endsWith('\\.')) n = n.slice(0, -1);
  return n.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

// ---------------------------------------------------------------------------
// Parsing

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) throw new DnsFormatError(`Malformed DNS message: truncated ${what}`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }
  u16(what: string): number {
    this.need(2, what);
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const b = this.buf;
    const v = ((b[this.pos]! << 24) | (b[this.pos + 1]! << 16) | (b[this.pos + 2]! << 8) | b[this.pos + 3]!) >>> 0;
    this.pos += 4;
    return v;
  }
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = new Uint8Array(this.buf.subarray(this.pos, this.pos + n)); // a plain copy, not a Buffer view
    this.pos += n;
    return out;
  }

  /**
   * Reads a possibly compressed name at the cursor. Every pointer must point
   * strictly before everything read so far for this name, so pointer chains
   * always terminate.
   */
  name(what: string): string {
    const buf = this.buf;
    let pos = this.pos;
    let lowest = pos;
    let resume = -1;
    let jumps = 0;
    let wire = 1;
    const labels: string[] = [];
    const fail = (why: string) => new DnsFormatError(`Malformed DNS message: ${what} name: ${why}`);
    for (;;) {
      if (pos >= buf.length) throw fail('truncated');
      const len = buf[pos]!;
      if (len === 0) {
        pos += 1;
        break;
      }
      const tag = len & 0xc0;
      if (tag === 0xc0) {
        if (pos + 1 >= buf.length) throw fail('truncated pointer');
        const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
        if (resume < 0) resume = pos + 2;
        if (target >= lowest) throw fail('forward or looping compression pointer');
        if (++jumps > MAX_POINTER_JUMPS) throw fail('too many compression pointers');
        lowest = target;
        pos = target;
        continue;
      }
      if (tag !== 0) throw fail('unsupported label type');
      if (pos + 1 + len > buf.length) throw fail('truncated label');
      wire += len + 1;
      if (wire > MAX_NAME_WIRE) throw fail('longer than 255 bytes');
      labels.push(labelToText(buf, pos + 1, len));
      pos += 1 + len;
    }
    this.pos = resume >= 0 ? resume : pos;
    return labels.join('.');
  }
}

function parseHeaderFlags(id: number, flags: number): DnsHeader {
  return {
    id,
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    ad: (flags & 0x0020) !== 0,
    cd: (flags & 0x0010) !== 0,
    rcode: flags & 0xf,
  };
}

function parseRecord(r: Reader, section: string): DnsRecord {
  const name = r.name(section);
  const type = r.u16(section);
  const klass = r.u16(section);
  const ttl = r.u32(section);
  const rdlength = r.u16(section);
  r.need(rdlength, `${section} RDATA`);
  const end = r.pos + rdlength;
  const what = `${section} RDATA`;
  let data: RecordData;
  switch (type) {
    case RRType.A:
      if (rdlength !== 4) throw new DnsFormatError(`Malformed DNS message: A record of ${rdlength} bytes`);
      data = { kind: 'address', address: formatIPv4(r.bytes(4, what)) };
      break;
    case RRType.AAAA:
      if (rdlength !== 16) throw new DnsFormatError(`Malformed DNS message: AAAA record of ${rdlength} bytes`);
      data = { kind: 'address', address: formatIPv6(r.bytes(16, what)) };
      break;
    case RRType.NS:
    case RRType.CNAME:
    case RRType.PTR:
      data = { kind: 'name', name: r.name(what) };
      break;
    case RRType.MX: {
      const preference = r.u16(what);
      data = { kind: 'mx', preference, exchange: r.name(what) };
      break;
    }
    case RRType.SRV: {
      const priority = r.u16(what);
      const weight = r.u16(what);
      const port = r.u16(what);
      data = { kind: 'srv', priority, weight, port, target: r.name(what) };
      break;
    }
    case RRType.SOA: {
      const mname = r.name(what);
      const rname = r.name(what);
      data = {
        kind: 'soa',
        mname,
        rname,
        serial: r.u32(what),
        refresh: r.u32(what),
        retry: r.u32(what),
        expire: r.u32(what),
        minimum: r.u32(what),
      };
      break;
    }
    default:
      data = { kind: 'raw', bytes: r.bytes(rdlength, what) };
  }
  if (r.pos !== end) {
    throw new DnsFormatError(`Malformed DNS message: RDATA of type ${type} does not match its length ${rdlength}`);
  }
  return { name, type, class: klass, ttl, data };
}

/** Parses a whole DNS message; throws DnsFormatError if it is malformed. Trailing bytes are ignored. */
export function parseMessage(buf: Uint8Array): DnsMessage {
  if (buf.length < 12) throw new DnsFormatError(`Malformed DNS message: ${buf.length} bytes is shorter than a header`);
  const r = new Reader(buf);
  const id = r.u16('header');
  const header = parseHeaderFlags(id, r.u16('header'));
  const qd = r.u16('header');
  const an = r.u16('header');
  const ns = r.u16('header');
  const ar = r.u16('header');
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < qd; i++) {
    const name = r.name('question');
    questions.push({ name, type: r.u16('question'), class: r.u16('question') });
  }
  const answers: DnsRecord[] = [];
  for (let i = 0; i < an; i++) answers.push(parseRecord(r, 'answer'));
  const authorities: DnsRecord[] = [];
  for (let i = 0; i < ns; i++) authorities.push(parseRecord(r, 'authority'));
  const additionals: DnsRecord[] = [];
  for (let i = 0; i < ar; i++) additionals.push(parseRecord(r, 'additional'));
  return { header, questions, answers, authorities, additionals };
}

/** The OPT pseudo-record of a message, if it has one. */
export function findOpt(msg: DnsMessage): DnsRecord | undefined {
  return msg.additionals.find((rr) => rr.type === RRType.OPT);
}

// ---------------------------------------------------------------------------
// Building

function asciiLowerKey(labels: Uint8Array[], from: number): string {
  let key = '';
  for (let i = from; i < labels.length; i++) {
    const l = labels[i]!;
    key += String.fromCharCode(l.length);
    for (const b of l) key += String.fromCharCode(b >= 0x41 && b <= 0x5a ? b + 0x20 : b);
  }
  return key;
}

class Writer {
  private buf = Buffer.alloc(512);
  length = 0;
  /** lower-cased name suffix -> offset, for compression */
  private names = new Map<string, number>();

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.length++] = v & 0xff;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v & 0xffff, this.length);
    this.length += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.length);
    this.length += 4;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  patch16(at: number, v: number): void {
    this.buf.writeUInt16BE(v & 0xffff, at);
  }
  name(name: string, compress: boolean): void {
    const labels = nameToLabels(name);
    for (let i = 0; i < labels.length; i++) {
      const key = asciiLowerKey(labels, i);
      const at = this.names.get(key);
      if (compress && at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (at === undefined && this.length <= 0x3fff) this.names.set(key, this.length);
      this.u8(labels[i]!.length);
      this.bytes(labels[i]!);
    }
    this.u8(0);
  }
  /** Drops everything from `len` on (and compression targets there). */
  truncate(len: number): void {
    this.length = len;
    for (const [k, at] of this.names) if (at >= len) this.names.delete(k);
  }
  result(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length));
  }
}

function headerFlags(h: DnsHeader): number {
  return (
    (h.qr ? 0x8000 : 0) |
    ((h.opcode & 0xf) << 11) |
    (h.aa ? 0x0400 : 0) |
    (h.tc ? 0x0200 : 0) |
    (h.rd ? 0x0100 : 0) |
    (h.ra ? 0x0080 : 0) |
    (h.ad ? 0x0020 : 0) |
    (h.cd ? 0x0010 : 0) |
    (h.rcode & 0xf)
  );
}

function writeRecord(w: Writer, rr: DnsRecord): void {
  w.name(rr.name, true);
  w.u16(rr.type);
  w.u16(rr.class);
  w.u32(rr.ttl);
  const lenAt = w.length;
  w.u16(0);
  const start = w.length;
  const d = rr.data;
  switch (d.kind) {
    case 'address': {
      const bytes = rr.type === RRType.AAAA ? parseIPv6(d.address) : parseIPv4(d.address);
      if (!bytes) throw new InvalidArgumentError(`Invalid address for DNS record type ${rr.type}: ${d.address}`);
      w.bytes(bytes);
      break;
    }
    case 'name':
      w.name(d.name, true);
      break;
    case 'mx':
      w.u16(d.preference);
      w.name(d.exchange, true);
      break;
    case 'srv':
      w.u16(d.priority);
      w.u16(d.weight);
      w.u16(d.port);
      w.name(d.target, false); // RFC 2782: no compression of the target
      break;
    case 'soa':
      w.name(d.mname, true);
      w.name(d.rname, true);
      w.u32(d.serial);
      w.u32(d.refresh);
      w.u32(d.retry);
      w.u32(d.expire);
      w.u32(d.minimum);
      break;
    case 'raw':
      w.bytes(d.bytes);
      break;
  }
  const rdlength = w.length - start;
  if (rdlength > 0xffff) throw new InvalidArgumentError(`DNS record data too long: ${rdlength} bytes`);
  w.patch16(lenAt, rdlength);
}

export interface EncodeOptions {
  /**
   * Largest message to produce. Records that do not fit are dropped from the
   * end (an OPT record is always kept); dropping an answer or authority
   * record sets TC. Default: no limit but the 65535 of a TCP frame.
   */
  maxSize?: number;
}

/** Encodes a message, compressing names. Throws InvalidArgumentError for data that cannot be encoded. */
export function encodeMessage(msg: DnsMessage, options: EncodeOptions = {}): Buffer {
  const maxSize = Math.min(options.maxSize ?? MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE);
  const opt = msg.additionals.filter((rr) => rr.type === RRType.OPT);
  const additionals = msg.additionals.filter((rr) => rr.type !== RRType.OPT);
  const w = new Writer();
  w.u16(msg.header.id);
  w.u16(0); // flags, patched below
  w.u16(msg.questions.length);
  w.u16(0);
  w.u16(0);
  w.u16(0);
  for (const q of msg.questions) {
    w.name(q.name, true);
    w.u16(q.type);
    w.u16(q.class);
  }
  // The OPT record (root name, no compression) is written last; reserve its size.
  const optSize = opt.reduce((n, rr) => n + 11 + (rr.data.kind === 'raw' ? rr.data.bytes.length : 0), 0);
  const sections = [msg.answers, msg.authorities, additionals];
  const counts = [0, 0, 0];
  let truncated = false;
  let full = false;
  for (let s = 0; s < 3 && !full; s++) {
    for (const rr of sections[s]!) {
      const before = w.length;
      writeRecord(w, rr);
      if (w.length + optSize > maxSize) {
        w.truncate(before);
        if (s < 2) truncated = true;
        full = true;
        break;
      }
      counts[s]! += 1;
    }
  }
  for (const rr of opt) writeRecord(w, rr);
  const header = { ...msg.header, tc: msg.header.tc || truncated };
  w.patch16(2, headerFlags(header));
  w.patch16(6, counts[0]!);
  w.patch16(8, counts[1]!);
  w.patch16(10, counts[2]! + opt.length);
  if (w.length > maxSize) {
    // Even the header and question do not fit; the caller asked for the impossible.
    throw new InvalidArgumentError(`DNS message does not fit in ${maxSize} bytes`);
  }
  return w.result();
}

export interface ResponseOptions {
  /** AA flag; default true (the answers are ours) */
  authoritative?: boolean;
  /** largest response; default the query's EDNS UDP size, or 512 without EDNS. Use MAX_MESSAGE_SIZE for TCP. */
  maxSize?: number;
}

/**
 * A response to a parsed query: same ID, opcode, RD and CD, and question;
 * RA set; the given answers and rcode. When the query carried an OPT record
 * the response carries one too (advertising EDNS_UDP_SIZE). Answers that do
 * not fit the size limit are dropped and TC is set.
 */
export function buildResponse(
  query: DnsMessage,
  answers: DnsRecord[],
  rcode: number,
  options: ResponseOptions = {},
): Buffer {
  const qopt = findOpt(query);
  const limit =
    options.maxSize ?? (qopt ? Math.max(CLASSIC_UDP_SIZE, Math.min(qopt.class, MAX_MESSAGE_SIZE)) : CLASSIC_UDP_SIZE);
  const additionals: DnsRecord[] = qopt
    ? [{ name: '', type: RRType.OPT, class: EDNS_UDP_SIZE, ttl: 0, data: { kind: 'raw', bytes: new Uint8Array(0) } }]
    : [];
  return encodeMessage(
    {
      header: {
        id: query.header.id,
        qr: true,
        opcode: query.header.opcode,
        aa: options.authoritative ?? true,
        tc: false,
        rd: query.header.rd,
        ra: true,
        ad: false,
        cd: query.header.cd,
        rcode,
      },
      questions: query.questions,
      answers,
      authorities: [],
      additionals,
    },
    { maxSize: limit },
  );
}

/**
 * A bare error response (header only) to a query that could not be parsed,
 * keeping its ID, opcode and RD. Null when there is nothing to answer: fewer
 * than 12 bytes, or the packet is itself a response.
 */
export function buildErrorResponse(raw: Uint8Array, rcode: number): Buffer | null {
  if (raw.length < 12) return null;
  const flags = (raw[2]! << 8) | raw[3]!;
  if (flags & 0x8000) return null;
  const out = Buffer.alloc(12);
  out[0] = raw[0]!;
  out[1] = raw[1]!;
  out.writeUInt16BE(0x8000 | (flags & 0x7800) | (flags & 0x0100) | 0x0080 | (rcode & 0xf), 2);
  return out;
}

/** A query message for `name`, with RD set. */
export function buildQuery(
  id: number,
  name: string,
  type: number,
  options: { edns?: number; klass?: number } = {},
): Buffer {
  return encodeMessage({
    header: { id, qr: false, opcode: Opcode.QUERY, aa: false, tc: false, rd: true, ra: false, ad: false, cd: false, rcode: 0 },
    questions: [{ name, type, class: options.klass ?? RRClass.IN }],
    answers: [],
    authorities: [],
    additionals:
      options.edns !== undefined
        ? [{ name: '', type: RRType.OPT, class: options.edns, ttl: 0, data: { kind: 'raw', bytes: new Uint8Array(0) } }]
        : [],
  });
}

export function addressRecord(name: string, address: string, ttl: number): DnsRecord {
  const type = parseIPv4(address) ? RRType.A : RRType.AAAA;
  return { name, type, class: RRClass.IN, ttl, data: { kind: 'address', address } };
}

export function ptrRecord(name: string, target: string, ttl: number): DnsRecord {
  return { name, type: RRType.PTR, class: RRClass.IN, ttl, data: { kind: 'name', name: target } };
}
