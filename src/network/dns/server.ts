/**
 * The daemon's embedded DNS resolver (Docker's 127.0.0.11 equivalent).
 *
 * One DnsServer serves every user-defined network: it listens on each
 * network's gateway address (UDP and TCP) and answers from the records of the
 * network ("scope") bound to the address the query arrived on. Names it does
 * not know are forwarded, as the raw query, to the host's resolvers, and the
 * first usable response is relayed verbatim.
 *
 * Local answers:
 *   A     -> the name's IPv4 addresses (order rotated per query)
 *   AAAA  -> the name's IPv6 addresses; none is NOERROR with no answers, so
 *            clients fall back to A at once
 *   ANY   -> both
 *   other types of a known name -> NOERROR, no answers
 *   PTR   -> for an address of the scope, the first name (in setRecords
 *            order) that maps to it
 */
import dgram from 'node:dgram';
import net from 'node:net';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  UnavailableError,
  errorMessage,
} from '../../core/errors.js';
import { log } from '../../core/log.js';
import {
  MAX_MESSAGE_SIZE,
  Opcode,
  RCode,
  RRClass,
  RRType,
  addressRecord,
  buildErrorResponse,
  buildResponse,
  canonicalIP,
  ipFromReverseName,
  normalizeName,
  parseIPv4,
  parseMessage,
  ptrRecord,
  type DnsMessage,
  type DnsQuestion,
  type DnsRecord,
} from './message.js';

export interface Upstream {
  host: string;
  port: number;
}

export interface DnsServerOptions {
  /** Forward targets (IP literals), tried in order. */
  upstreams: Upstream[];
  /** TTL of local answers in seconds; default 600 like Docker. */
  ttl?: number;
  /** How long to wait for each upstream; default 2000 ms. */
  forwardTimeoutMs?: number;
  /**
   * Domains clients may append to bare names (the search list of the
   * containers' resolv.conf): "web.<domain>" also matches a local "web".
   * Default none.
   */
  searchDomains?: string[];
}

export interface DnsStats {
  /** queries answered from local records */
  local: number;
  /** queries relayed from an upstream */
  forwarded: number;
  /** queries answered with SERVFAIL, FORMERR or NOTIMP */
  failed: number;
}

export type Transport = 'udp' | 'tcp';

interface NameEntry {
  v4: string[];
  v6: string[];
  next: number;
}

interface ScopeRecords {
  names: Map<string, NameEntry>;
  /** canonical address -> name to answer PTR queries with */
  reverse: Map<string, string>;
}

interface Listener {
  ip: string;
  port: number;
  scope: string;
  udp: dgram.Socket;
  tcp: net.Server;
  conns: Set<net.Socket>;
  closed: boolean;
}

const DEFAULT_TTL = 600;
const DEFAULT_FORWARD_TIMEOUT_MS = 2000;
/** Forwarded queries in flight at once; beyond this, SERVFAIL at once. */
const MAX_INFLIGHT_FORWARDS = 4096;
/** Queries of one TCP connection being answered at once before reading pauses. */
const MAX_PIPELINED_PER_CONNECTION = 64;
/** Idle TCP client connections are closed after this long (RFC 7766 suggests seconds). */
const TCP_IDLE_MS = 10_000;
/** SO_RCVBUF asked for on listening UDP sockets. */
const UDP_RECV_BUFFER = 4 * 1024 * 1024;

function listenerKey(ip: string, port: number): string {
  return `${canonicalIP(ip) ?? ip}|${port}`;
}

function rotate<T>(items: T[], by: number): T[] {
  if (items.length < 2) return items.slice();
  const k = by % items.length;
  return items.slice(k).concat(items.slice(0, k));
}

export class DnsServer {
  private readonly upstreams: Upstream[];
  private readonly ttl: number;
  private readonly forwardTimeoutMs: number;
  private readonly searchDomains: string[];
  private readonly scopes = new Map<string, ScopeRecords>();
  private readonly listeners = new Map<string, Listener>();
  /** keys of listen() calls still binding */
  private readonly binding = new Set<string>();
  /** cancels of forwards in flight */
  private readonly inflight = new Set<() => void>();
  private readonly counters: DnsStats = { local: 0, forwarded: 0, failed: 0 };
  private closed = false;

  constructor(options: DnsServerOptions) {
    for (const u of options.upstreams) {
      if (!net.isIP(u.host.split('%')[0] ?? '')) {
        throw new InvalidArgumentError(`Invalid DNS upstream: ${u.host}: not an IP address`);
      }
      if (!Number.isInteger(u.port) || u.port < 1 || u.port > 65535) {
        throw new InvalidArgumentError(`Invalid DNS upstream port: ${u.port}`);
      }
    }
    this.upstreams = options.upstreams.map((u) => ({ host: u.host, port: u.port }));
    this.ttl = options.ttl ?? DEFAULT_TTL;
    this.forwardTimeoutMs = options.forwardTimeoutMs ?? DEFAULT_FORWARD_TIMEOUT_MS;
    if (!Number.isInteger(this.ttl) || this.ttl < 0 || this.ttl > 0x7fffffff) {
      throw new InvalidArgumentError(`Invalid DNS TTL: ${this.ttl}`);
    }
    if (!(this.forwardTimeoutMs > 0)) {
      throw new InvalidArgumentError(`Invalid DNS forward timeout: ${this.forwardTimeoutMs}`);
    }
    this.searchDomains = (options.searchDomains ?? []).map(normalizeName).filter((d) => d !== '');
  }

  /** Start serving on ip:port (UDP and TCP). Port 0 picks a free port (the same for both); see addresses(). */
  async listen(address: { ip: string; port: number; scope: string }): Promise<void> {
    const { ip, port, scope } = address;
    if (this.closed) throw new FailedPreconditionError('DNS server is closed');
    if (!net.isIP(ip)) throw new InvalidArgumentError(`Invalid DNS listen address: ${ip}`);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new InvalidArgumentError(`Invalid DNS listen port: ${port}`);
    }
    const requestedKey = listenerKey(ip, port);
    if (port !== 0 && (this.listeners.has(requestedKey) || this.binding.has(requestedKey))) {
      throw new AlreadyExistsError(`DNS server already listening on ${ip}:${port}`);
    }
    if (port !== 0) this.binding.add(requestedKey);
    // A large receive buffer absorbs bursts (many containers starting at once);
    // the kernel caps it at net.core.rmem_max.
    const udp = dgram.createSocket({ type: net.isIPv6(ip) ? 'udp6' : 'udp4', recvBufferSize: UDP_RECV_BUFFER });
    let tcp: net.Server | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address: ip, port, exclusive: true }, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      const boundPort = udp.address().port;
      const listener: Listener = {
        ip,
        port: boundPort,
        scope,
        udp,
        tcp: undefined as unknown as net.Server,
        conns: new Set(),
        closed: false,
      };
      tcp = net.createServer({ allowHalfOpen: true }, (sock) => this.serveTcp(listener, sock));
      listener.tcp = tcp;
      const server = tcp;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: ip, port: boundPort, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      if (this.closed) throw new FailedPreconditionError('DNS server is closed');
      udp.on('error', (e) => log.warn('dns: UDP socket error', { ip, port: boundPort, error: errorMessage(e) }));
      server.on('error', (e) => log.warn('dns: TCP server error', { ip, port: boundPort, error: errorMessage(e) }));
      udp.on('message', (msg, rinfo) => this.serveUdp(listener, msg, rinfo));
      this.listeners.set(listenerKey(ip, boundPort), listener);
      log.debug('dns: listening', { ip, port: boundPort, scope });
    } catch (e) {
      try {
        udp.close();
      } catch {
        // never bound, or already closed
      }
      if (tcp?.listening) tcp.close();
      if (e instanceof FailedPreconditionError) throw e;
      throw new UnavailableError(`Cannot serve DNS on ${ip}:${port}: ${errorMessage(e)}`, { cause: e });
    } finally {
      this.binding.delete(requestedKey);
    }
  }

  /** Stop serving on ip:port, or on every port of ip when port is omitted. Unknown addresses are a no-op. */
  async unlisten(ip: string, port?: number): Promise<void> {
    const canon = canonicalIP(ip) ?? ip;
    const victims: Listener[] = [];
    for (const [key, l] of this.listeners) {
      if ((canonicalIP(l.ip) ?? l.ip) === canon && (port === undefined || l.port === port)) {
        this.listeners.delete(key);
        victims.push(l);
      }
    }
    await Promise.all(victims.map((l) => this.closeListener(l)));
  }

  /** The addresses being served. */
  addresses(): Array<{ ip: string; port: number; scope: string }> {
    return [...this.listeners.values()].map((l) => ({ ip: l.ip, port: l.port, scope: l.scope }));
  }

  /**
   * Replace the records of one network: names (container names, aliases,
   * short ids) -> addresses (IPv4; IPv6 ones answer AAAA). Lookups are
   * case-insensitive and ignore a trailing dot. Throws InvalidArgumentError
   * (changing nothing) for an empty name or an invalid address.
   */
  setRecords(scope: string, records: Map<string, string[]>): void {
    const names = new Map<string, NameEntry>();
    const reverse = new Map<string, string>();
    for (const [rawName, addrs] of records) {
      const name = normalizeName(rawName.trim());
      if (name === '') throw new InvalidArgumentError(`Invalid DNS record name: ${JSON.stringify(rawName)}`);
      const entry = names.get(name) ?? { v4: [], v6: [], next: 0 };
      for (const a of addrs) {
        const ip = canonicalIP(a);
        if (ip === null) throw new InvalidArgumentError(`Invalid address for DNS name ${rawName}: ${a}`);
        const list = parseIPv4(ip) ? entry.v4 : entry.v6;
        if (!list.includes(ip)) list.push(ip);
        if (!reverse.has(ip)) reverse.set(ip, rawName.trim().replace(/\.$/, ''));
      }
      names.set(name, entry);
    }
    this.scopes.set(scope, { names, reverse });
  }

  deleteScope(scope: string): void {
    this.scopes.delete(scope);
  }

  /** Stop serving everywhere and abandon forwards in flight. The server cannot listen again. */
  async close(): Promise<void> {
    this.closed = true;
    for (const cancel of [...this.inflight]) cancel();
    const all = [...this.listeners.values()];
    this.listeners.clear();
    await Promise.all(all.map((l) => this.closeListener(l)));
  }

  stats(): DnsStats {
    return { ...this.counters };
  }

  /**
   * The response to one raw query that arrived over `transport` on an address
   * of `scope`, or null when nothing must be sent (not a query, or too short
   * to answer). Never rejects.
   */
  async answer(raw: Buffer, scope: string, transport: Transport): Promise<Buffer | null> {
    try {
      return await this.answerQuery(raw, scope, transport);
    } catch (e) {
      log.warn('dns: failed to answer query', { error: errorMessage(e) });
      this.counters.failed++;
      return buildErrorResponse(raw, RCode.SERVFAIL);
    }
  }

  // -------------------------------------------------------------------------

  private async answerQuery(raw: Buffer, scope: string, transport: Transport): Promise<Buffer | null> {
    if (raw.length < 12) return null;
    if (raw[2]! & 0x80) return null; // a response: never answer those
    let query: DnsMessage;
    try {
      query = parseMessage(raw);
    } catch {
      this.counters.failed++;
      return buildErrorResponse(raw, RCode.FORMERR);
    }
    const maxSize = transport === 'tcp' ? MAX_MESSAGE_SIZE : undefined;
    if (query.header.opcode !== Opcode.QUERY) {
      this.counters.failed++;
      return buildResponse(query, [], RCode.NOTIMP, { authoritative: false, maxSize });
    }
    if (query.questions.length !== 1) {
      this.counters.failed++;
      return buildResponse(query, [], RCode.FORMERR, { authoritative: false, maxSize });
    }
    const local = this.lookup(scope, query.questions[0]!);
    if (local !== null) {
      this.counters.local++;
      return buildResponse(query, local, RCode.NOERROR, { authoritative: true, maxSize });
    }
    const relayed = await this.forward(raw, transport);
    if (relayed) {
      this.counters.forwarded++;
      return relayed;
    }
    this.counters.failed++;
    return buildResponse(query, [], RCode.SERVFAIL, { authoritative: false, maxSize });
  }

  /** Local answers for a question, or null when the name is not ours. */
  private lookup(scope: string, q: DnsQuestion): DnsRecord[] | null {
    if (q.class !== RRClass.IN && q.class !== RRClass.ANY) return null;
    const records = this.scopes.get(scope);
    if (!records) return null;
    const name = normalizeName(q.name);
    if (q.type === RRType.PTR) {
      const ip = ipFromReverseName(name);
      const target = ip === null ? undefined : records.reverse.get(ip);
      if (target !== undefined) return [ptrRecord(q.name, target, this.ttl)];
    }
    const entry = this.entryFor(records, name);
    if (!entry) return null;
    const turn = entry.next++;
    const v4 = () => rotate(entry.v4, turn).map((a) => addressRecord(q.name, a, this.ttl));
    const v6 = () => rotate(entry.v6, turn).map((a) => addressRecord(q.name, a, this.ttl));
    switch (q.type) {
      case RRType.A:
        return v4();
      case RRType.AAAA:
        return v6();
      case RRType.ANY:
        return [...v4(), ...v6()];
      default:
        return [];
    }
  }

  private entryFor(records: ScopeRecords, name: string): NameEntry | undefined {
    const direct = records.names.get(name);
    if (direct) return direct;
    for (const d of this.searchDomains) {
      if (name.length > d.length + 1 && name.endsWith('.' + d)) {
        const e = records.names.get(name.slice(0, -(d.length + 1)));
        if (e) return e;
      }
    }
    return undefined;
  }

  /**
   * Sends the raw query to each upstream in turn (UDP queries over UDP, TCP
   * ones over TCP). The first response is returned, except that a SERVFAIL,
   * NOTIMP or REFUSED moves on to the next upstream (and is returned only if
   * no later upstream does better). Null if no upstream answered.
   */
  private async forward(raw: Buffer, transport: Transport): Promise<Buffer | null> {
    if (this.upstreams.length === 0 || this.closed) return null;
    if (this.inflight.size >= MAX_INFLIGHT_FORWARDS) {
      log.warn('dns: too many forwarded queries in flight; failing this one');
      return null;
    }
    const id = raw.readUInt16BE(0);
    let fallback: Buffer | null = null;
    for (const up of this.upstreams) {
      if (this.closed) break;
      const resp = transport === 'udp' ? await this.exchangeUdp(up, raw, id) : await this.exchangeTcp(up, raw, id);
      if (!resp) continue;
      const rcode = resp[3]! & 0xf;
      if (rcode === RCode.SERVFAIL || rcode === RCode.NOTIMP || rcode === RCode.REFUSED) {
        fallback ??= resp;
        continue;
      }
      return resp;
    }
    return fallback;
  }

  /**
   * One exchange with an upstream: resolves exactly once, with the answer or
   * null (timeout, socket error, or the server closing), and closes its socket.
   */
  private exchange(
    up: Upstream,
    transport: 'udp' | 'tcp',
    close: () => void,
    start: (finish: (resp: Buffer | null) => void, failed: (e: unknown) => void) => void,
  ): Promise<Buffer | null> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (resp: Buffer | null) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.inflight.delete(cancel);
        try {
          close();
        } catch {
          // already closed
        }
        resolve(resp);
      };
      const cancel = () => finish(null);
      const timer = setTimeout(() => {
        log.debug('dns: upstream timed out', { upstream: `${up.host}:${up.port}`, transport });
        finish(null);
      }, this.forwardTimeoutMs);
      this.inflight.add(cancel);
      const failed = (e: unknown) => {
        log.debug('dns: upstream error', { upstream: `${up.host}:${up.port}`, transport, error: errorMessage(e) });
        finish(null);
      };
      start(finish, failed);
    });
  }

  private exchangeUdp(up: Upstream, query: Buffer, id: number): Promise<Buffer | null> {
    const sock = dgram.createSocket(net.isIPv6(up.host.split('%')[0] ?? '') ? 'udp6' : 'udp4');
    const want = canonicalIP(up.host);
    return this.exchange(up, 'udp', () => sock.close(), (finish, failed) => {
      sock.on('error', failed);
      sock.on('message', (msg, rinfo) => {
        if (rinfo.port !== up.port || canonicalIP(rinfo.address) !== want) return;
        if (msg.length < 12 || msg.readUInt16BE(0) !== id || !(msg[2]! & 0x80)) return;
        finish(msg);
      });
      sock.send(query, up.port, up.host, (err) => {
        if (err) failed(err);
      });
    });
  }

  private exchangeTcp(up: Upstream, query: Buffer, id: number): Promise<Buffer | null> {
    const sock = net.connect({ host: up.host, port: up.port });
    let buf = Buffer.alloc(0);
    return this.exchange(up, 'tcp', () => sock.destroy(), (finish, failed) => {
      sock.on('error', failed);
      sock.on('close', () => finish(null));
      sock.on('connect', () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(query.length);
        sock.write(Buffer.concat([len, query]));
      });
      sock.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 2) {
          const n = buf.readUInt16BE(0);
          if (buf.length < 2 + n) return;
          const msg = Buffer.from(buf.subarray(2, 2 + n));
          buf = buf.subarray(2 + n);
          if (msg.length >= 12 && msg.readUInt16BE(0) === id && msg[2]! & 0x80) {
            finish(msg);
            return;
          }
        }
      });
    });
  }

  private serveUdp(l: Listener, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    void this.answer(msg, l.scope, 'udp').then((resp) => {
      if (!resp || l.closed) return;
      try {
        l.udp.send(resp, rinfo.port, rinfo.address, (err) => {
          if (err) log.debug('dns: cannot send UDP response', { to: rinfo.address, error: errorMessage(err) });
        });
      } catch (e) {
        log.debug('dns: cannot send UDP response', { to: rinfo.address, error: errorMessage(e) });
      }
    });
  }

  private serveTcp(l: Listener, sock: net.Socket): void {
    if (l.closed) {
      sock.destroy();
      return;
    }
    l.conns.add(sock);
    sock.on('close', () => l.conns.delete(sock));
    sock.on('error', () => sock.destroy());
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    let buf = Buffer.alloc(0);
    let pending = 0;
    let ended = false;
    const maybeEnd = () => {
      if (ended && pending === 0 && !sock.destroyed) sock.end();
    };
    const drain = () => {
      while (buf.length >= 2 && pending < MAX_PIPELINED_PER_CONNECTION) {
        const n = buf.readUInt16BE(0);
        if (buf.length < 2 + n) break;
        const query = Buffer.from(buf.subarray(2, 2 + n));
        buf = buf.subarray(2 + n);
        pending++;
        void this.answer(query, l.scope, 'tcp').then((resp) => {
          pending--;
          if (resp && !sock.destroyed && sock.writable) {
            const len = Buffer.alloc(2);
            len.writeUInt16BE(resp.length);
            sock.write(Buffer.concat([len, resp]));
          }
          if (sock.isPaused() && !ended) sock.resume();
          drain();
          maybeEnd();
        });
      }
      if (pending >= MAX_PIPELINED_PER_CONNECTION) sock.pause();
    };
    sock.on('data', (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      drain();
    });
    sock.on('end', () => {
      ended = true;
      maybeEnd();
    });
  }

  private async closeListener(l: Listener): Promise<void> {
    l.closed = true;
    for (const c of l.conns) c.destroy();
    await Promise.all([
      new Promise<void>((resolve) => {
        try {
          l.udp.close(() => resolve());
        } catch {
          resolve();
        }
      }),
      new Promise<void>((resolve) => l.tcp.close(() => resolve())),
    ]);
    log.debug('dns: stopped listening', { ip: l.ip, port: l.port });
  }
}

function isLoopback(ip: string): boolean {
  const v4 = parseIPv4(ip);
  if (v4) return v4[0] === 127 || ip === '0.0.0.0';
  const canon = canonicalIP(ip);
  if (canon === '::1' || canon === '::') return true;
  // IPv4-mapped loopback, ::ffff:127.x.y.z
  return canon !== null && /^::ffff:7f[0-9a-f]{2}:/.test(canon);
}

/**
 * The upstreams of a resolv.conf: its nameserver lines (port 53), in order,
 * skipping loopback addresses (127.0.0.0/8, ::1, and the "any" addresses),
 * which would point back into the container rather than at the host's
 * resolver, and anything that is not an IP address.
 */
export function upstreamsFromResolvConf(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/[#;].*$/, '').trim();
    const fields = line.split(/\s+/);
    if (fields[0] !== 'nameserver' || fields.length < 2) continue;
    const host = fields[1]!;
    const bare = host.split('%')[0] ?? '';
    if (!net.isIP(bare) || isLoopback(bare)) continue;
    if (out.some((u) => u.host === host)) continue;
    out.push({ host, port: 53 });
  }
  return out;
}
