/**
 * The embedded DNS server over real sockets, on loopback only: the server
 * listens on 127.0.0.53/54/55, a fake upstream answers on 127.0.0.60 and a
 * silent one swallows queries on 127.0.0.61. Nothing here talks to the host's
 * resolvers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { AlreadyExistsError, UnavailableError } from '../../core/errors.js';
import {
  RCode,
  RRType,
  addressRecord,
  buildQuery,
  buildResponse,
  parseMessage,
  reverseName,
  type DnsMessage,
} from './message.js';
import { DnsServer, upstreamsFromResolvConf } from './server.js';

const PORT = 15353;
const A_IP = '127.0.0.53';
const B_IP = '127.0.0.54';
const FAIL_IP = '127.0.0.55';
const UP = { host: '127.0.0.60', port: 15354 };
const SILENT = { host: '127.0.0.61', port: 15354 };
const UPSTREAM_ADDRESS = '203.0.113.7';

// ---------------------------------------------------------------------------
// Clients

function udpExchange(ip: string, port: number, query: Buffer, timeoutMs = 3000): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      sock.close();
      resolve(null);
    }, timeoutMs);
    sock.on('error', (e) => {
      clearTimeout(timer);
      sock.close();
      reject(e);
    });
    sock.on('message', (msg) => {
      clearTimeout(timer);
      sock.close();
      resolve(msg);
    });
    sock.send(query, port, ip);
  });
}

async function udpQuery(ip: string, query: Buffer, port = PORT): Promise<DnsMessage> {
  const resp = await udpExchange(ip, port, query);
  assert.ok(resp, `no UDP response from ${ip}:${port}`);
  return parseMessage(resp);
}

function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

/** Writes `chunks` to a TCP connection and collects `expect` framed responses. */
function tcpExchange(ip: string, chunks: Buffer[], expect: number, port = PORT): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: ip, port });
    const out: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`TCP: got ${out.length} of ${expect} responses`));
    }, 3000);
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('connect', async () => {
      for (const c of chunks) {
        sock.write(c);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length >= expect) {
        clearTimeout(timer);
        sock.destroy();
        resolve(out);
      }
    });
  });
}

function addresses(m: DnsMessage): string[] {
  return m.answers.map((a) => (a.data.kind === 'address' ? a.data.address : `?${a.data.kind}`));
}

let nextId = 100;
const newId = () => nextId++ & 0xffff;

// ---------------------------------------------------------------------------
// Fake upstreams

const upstreamSeen: Buffer[] = [];
const upstreamSent: Buffer[] = [];
let upUdp: dgram.Socket;
let upTcp: net.Server;
let silentUdp: dgram.Socket;
let silentTcp: net.Server;
const silentConns = new Set<net.Socket>();

function upstreamAnswer(raw: Buffer): Buffer {
  upstreamSeen.push(Buffer.from(raw));
  const q = parseMessage(raw);
  const resp = buildResponse(q, [addressRecord(q.questions[0]!.name, UPSTREAM_ADDRESS, 42)], RCode.NOERROR, {
    authoritative: false,
  });
  upstreamSent.push(resp);
  return resp;
}

function bindUdp(ip: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
    s.once('error', reject);
    s.bind(port, ip, () => resolve(s));
  });
}

function listenTcp(server: net.Server, ip: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => resolve());
  });
}

let server: DnsServer;

before(async () => {
  upUdp = await bindUdp(UP.host, UP.port);
  upUdp.on('message', (msg, rinfo) => upUdp.send(upstreamAnswer(msg), rinfo.port, rinfo.address));
  upTcp = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('error', () => {});
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const q = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + q.length);
        sock.write(frame(upstreamAnswer(Buffer.from(q))));
      }
    });
  });
  await listenTcp(upTcp, UP.host, UP.port);
  silentUdp = await bindUdp(SILENT.host, SILENT.port);
  silentTcp = net.createServer((sock) => {
    silentConns.add(sock);
    sock.on('error', () => {});
  });
  await listenTcp(silentTcp, SILENT.host, SILENT.port);

  server = new DnsServer({ upstreams: [UP], forwardTimeoutMs: 500 });
  await server.listen({ ip: A_IP, port: PORT, scope: 'netA' });
  await server.listen({ ip: B_IP, port: PORT, scope: 'netB' });
  server.setRecords(
    'netA',
    new Map([
      ['web', ['10.89.0.2']],
      ['db', ['10.89.0.3']],
      ['Api-Alias', ['10.89.0.2', '10.89.0.4']],
      ['0123456789ab', ['10.89.0.2']],
      ['v6host', ['10.89.0.5', 'fd00::5']],
    ]),
  );
  server.setRecords('netB', new Map([['secret', ['10.90.0.2']]]));
});

after(async () => {
  await server?.close();
  for (const c of silentConns) c.destroy();
  await Promise.all([
    new Promise<void>((r) => upUdp?.close(() => r())),
    new Promise<void>((r) => silentUdp?.close(() => r())),
    new Promise<void>((r) => (upTcp ? upTcp.close(() => r()) : r())),
    new Promise<void>((r) => (silentTcp ? silentTcp.close(() => r()) : r())),
  ]);
});

// ---------------------------------------------------------------------------

test('A queries answer container names, aliases and short ids, case-insensitively', async () => {
  const before = server.stats().local;
  for (const name of ['web', 'WEB', 'web.', 'Web.', '0123456789AB']) {
    const id = newId();
    const r = await udpQuery(A_IP, buildQuery(id, name, RRType.A));
    assert.equal(r.header.id, id);
    assert.equal(r.header.qr, true);
    assert.equal(r.header.aa, true);
    assert.equal(r.header.rcode, RCode.NOERROR);
    assert.equal(r.questions[0]!.name, name.replace(/\.$/, ''));
    assert.deepEqual(addresses(r), ['10.89.0.2'], name);
    assert.equal(r.answers[0]!.ttl, 600);
    assert.equal(r.answers[0]!.name, name.replace(/\.$/, ''), 'the answer echoes the question spelling');
  }
  const alias = await udpQuery(A_IP, buildQuery(newId(), 'api-alias', RRType.A));
  assert.deepEqual([...addresses(alias)].sort(), ['10.89.0.2', '10.89.0.4']);
  const again = await udpQuery(A_IP, buildQuery(newId(), 'API-ALIAS', RRType.A));
  assert.notEqual(addresses(again)[0], addresses(alias)[0], 'round-robin rotates the order');
  assert.equal(server.stats().local, before + 7);
});

test('AAAA for a known name is NOERROR with no answers (or its IPv6 addresses); PTR names the container', async () => {
  const aaaa = await udpQuery(A_IP, buildQuery(newId(), 'web', RRType.AAAA));
  assert.equal(aaaa.header.rcode, RCode.NOERROR);
  assert.equal(aaaa.answers.length, 0);
  const v6 = await udpQuery(A_IP, buildQuery(newId(), 'v6host', RRType.AAAA));
  assert.deepEqual(addresses(v6), ['fd00::5']);
  const v4 = await udpQuery(A_IP, buildQuery(newId(), 'v6host', RRType.A));
  assert.deepEqual(addresses(v4), ['10.89.0.5']);

  const ptr = await udpQuery(A_IP, buildQuery(newId(), reverseName('10.89.0.2'), RRType.PTR));
  assert.equal(ptr.header.rcode, RCode.NOERROR);
  assert.equal(ptr.answers.length, 1);
  assert.equal(ptr.answers[0]!.type, RRType.PTR);
  assert.deepEqual(ptr.answers[0]!.data, { kind: 'name', name: 'web' });
  const ptr4 = await udpQuery(A_IP, buildQuery(newId(), '4.0.89.10.IN-ADDR.ARPA.', RRType.PTR));
  assert.deepEqual(ptr4.answers[0]!.data, { kind: 'name', name: 'Api-Alias' });
  const ptr6 = await udpQuery(A_IP, buildQuery(newId(), reverseName('fd00::5'), RRType.PTR));
  assert.deepEqual(ptr6.answers[0]!.data, { kind: 'name', name: 'v6host' });
  // MX of a local name: NODATA, not forwarded
  const fwd = server.stats().forwarded;
  const mx = await udpQuery(A_IP, buildQuery(newId(), 'db', RRType.MX));
  assert.equal(mx.header.rcode, RCode.NOERROR);
  assert.equal(mx.answers.length, 0);
  assert.equal(server.stats().forwarded, fwd);
});

test('unknown names are forwarded verbatim with the ID preserved', async () => {
  const before = server.stats();
  const id = 0xbeef;
  const query = buildQuery(id, 'example.org', RRType.A, { edns: 1232 });
  const seen = upstreamSeen.length;
  const raw = await udpExchange(A_IP, PORT, query);
  assert.ok(raw, 'no response to a forwarded query');
  assert.deepEqual(upstreamSeen[seen], query, 'the upstream got the query bytes unchanged');
  assert.deepEqual(raw, upstreamSent[upstreamSent.length - 1], 'the client got the upstream response bytes unchanged');
  const r = parseMessage(raw);
  assert.equal(r.header.id, id);
  assert.deepEqual(addresses(r), [UPSTREAM_ADDRESS]);
  assert.equal(r.answers[0]!.ttl, 42);
  // An unknown PTR is forwarded too.
  const ptr = await udpQuery(A_IP, buildQuery(newId(), reverseName('10.89.0.99'), RRType.PTR));
  assert.equal(ptr.answers[0]!.ttl, 42);
  const after = server.stats();
  assert.equal(after.forwarded, before.forwarded + 2);
  assert.equal(after.local, before.local);
});

test('scopes are isolated: a name of network B is forwarded when asked on network A', async () => {
  const onA = await udpQuery(A_IP, buildQuery(newId(), 'secret', RRType.A));
  assert.deepEqual(addresses(onA), [UPSTREAM_ADDRESS]);
  const onB = await udpQuery(B_IP, buildQuery(newId(), 'secret', RRType.A));
  assert.deepEqual(addresses(onB), ['10.90.0.2']);
  const webOnB = await udpQuery(B_IP, buildQuery(newId(), 'web', RRType.A));
  assert.deepEqual(addresses(webOnB), [UPSTREAM_ADDRESS]);
  const ptrOnB = await udpQuery(B_IP, buildQuery(newId(), reverseName('10.89.0.2'), RRType.PTR));
  assert.equal(ptrOnB.answers[0]!.ttl, 42, 'PTR of network A is not answered on B');
});

test('setRecords replaces a scope and deleteScope removes it', async () => {
  server.setRecords('netB', new Map([['secret', ['10.90.0.3']], ['new', ['10.90.0.4']]]));
  assert.deepEqual(addresses(await udpQuery(B_IP, buildQuery(newId(), 'secret', RRType.A))), ['10.90.0.3']);
  assert.deepEqual(addresses(await udpQuery(B_IP, buildQuery(newId(), 'new', RRType.A))), ['10.90.0.4']);
  server.deleteScope('netB');
  assert.deepEqual(addresses(await udpQuery(B_IP, buildQuery(newId(), 'new', RRType.A))), [UPSTREAM_ADDRESS]);
  assert.throws(() => server.setRecords('netB', new Map([['x', ['not-an-ip']]])), /Invalid address/);
  server.setRecords('netB', new Map([['secret', ['10.90.0.2']]]));
  assert.deepEqual(addresses(await udpQuery(B_IP, buildQuery(newId(), 'secret', RRType.A))), ['10.90.0.2']);
});

test('SERVFAIL when no upstream answers; a silent upstream is skipped for the next', async () => {
  const failing = new DnsServer({ upstreams: [SILENT], forwardTimeoutMs: 200 });
  const failover = new DnsServer({ upstreams: [SILENT, UP], forwardTimeoutMs: 200 });
  const none = new DnsServer({ upstreams: [] });
  try {
    await failing.listen({ ip: FAIL_IP, port: PORT, scope: 'x' });
    await failover.listen({ ip: FAIL_IP, port: PORT + 1, scope: 'x' });
    await none.listen({ ip: FAIL_IP, port: PORT + 2, scope: 'x' });

    const id = newId();
    const t0 = Date.now();
    const r = await udpQuery(FAIL_IP, buildQuery(id, 'example.org', RRType.A));
    assert.ok(Date.now() - t0 >= 180, 'waited for the upstream timeout');
    assert.equal(r.header.id, id);
    assert.equal(r.header.rcode, RCode.SERVFAIL);
    assert.equal(r.answers.length, 0);
    const tcp = parseMessage((await tcpExchange(FAIL_IP, [frame(buildQuery(id, 'example.org', RRType.A))], 1))[0]!);
    assert.equal(tcp.header.rcode, RCode.SERVFAIL);
    assert.deepEqual(failing.stats(), { local: 0, forwarded: 0, failed: 2 });

    const ok = await udpQuery(FAIL_IP, buildQuery(newId(), 'example.org', RRType.A), PORT + 1);
    assert.deepEqual(addresses(ok), [UPSTREAM_ADDRESS]);
    const okTcp = parseMessage(
      (await tcpExchange(FAIL_IP, [frame(buildQuery(newId(), 'example.org', RRType.A))], 1, PORT + 1))[0]!,
    );
    assert.deepEqual(addresses(okTcp), [UPSTREAM_ADDRESS]);
    assert.equal(failover.stats().forwarded, 2);

    const nothing = await udpQuery(FAIL_IP, buildQuery(newId(), 'example.org', RRType.A), PORT + 2);
    assert.equal(nothing.header.rcode, RCode.SERVFAIL);
  } finally {
    await Promise.all([failing.close(), failover.close(), none.close()]);
  }
});

test('TCP: length-prefixed queries, pipelined and split across writes', async () => {
  const q1 = buildQuery(0x1111, 'web', RRType.A);
  const q2 = buildQuery(0x2222, 'example.net', RRType.A);
  const q3 = buildQuery(0x3333, 'db', RRType.A);
  const both = Buffer.concat([frame(q1), frame(q2)]);
  const f3 = frame(q3);
  const resps = (await tcpExchange(A_IP, [both, f3.subarray(0, 1), f3.subarray(1, 9), f3.subarray(9)], 3)).map((b) =>
    parseMessage(b),
  );
  const byId = new Map(resps.map((r) => [r.header.id, r]));
  assert.deepEqual(addresses(byId.get(0x1111)!), ['10.89.0.2']);
  assert.deepEqual(addresses(byId.get(0x2222)!), [UPSTREAM_ADDRESS]);
  assert.deepEqual(addresses(byId.get(0x3333)!), ['10.89.0.3']);
});

test('large local answers are truncated over UDP and complete over TCP', async () => {
  const many = Array.from({ length: 60 }, (_, i) => `10.91.0.${i + 1}`);
  server.setRecords('netB', new Map([['secret', ['10.90.0.2']], ['many', many]]));
  const udp = await udpQuery(B_IP, buildQuery(newId(), 'many', RRType.A));
  assert.equal(udp.header.tc, true);
  assert.ok(udp.answers.length < 60);
  const tcp = parseMessage((await tcpExchange(B_IP, [frame(buildQuery(newId(), 'many', RRType.A))], 1))[0]!);
  assert.equal(tcp.header.tc, false);
  assert.equal(tcp.answers.length, 60);
  server.setRecords('netB', new Map([['secret', ['10.90.0.2']]]));
});

test('malformed packets get FORMERR or nothing, and the server keeps serving', async () => {
  const failed = server.stats().failed;
  // Valid header, question name is a pointer to itself.
  const loop = Buffer.from([0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
  const r = await udpQuery(A_IP, loop);
  assert.equal(r.header.id, 0xabcd);
  assert.equal(r.header.rcode, RCode.FORMERR);
  // Truncated question.
  const trunc = buildQuery(0xabce, 'web', RRType.A).subarray(0, 15);
  assert.equal((await udpQuery(A_IP, trunc)).header.rcode, RCode.FORMERR);
  // Two questions.
  const two = Buffer.from(buildQuery(0xabcf, 'web', RRType.A));
  two.writeUInt16BE(2, 4);
  const twoQ = Buffer.concat([two, two.subarray(12)]);
  assert.equal((await udpQuery(A_IP, twoQ)).header.rcode, RCode.FORMERR);
  // Not a QUERY opcode (UPDATE = 5).
  const update = Buffer.from(buildQuery(0xabd0, 'web', RRType.A));
  update[2] = (update[2]! & 0x87) | (5 << 3);
  assert.equal((await udpQuery(A_IP, update)).header.rcode, RCode.NOTIMP);
  // Too short, and responses: no answer at all.
  assert.equal(await udpExchange(A_IP, PORT, Buffer.from([1, 2, 3]), 300), null);
  assert.equal(await udpExchange(A_IP, PORT, Buffer.alloc(0), 300), null);
  const resp = buildResponse(parseMessage(buildQuery(1, 'web', RRType.A)), [], 0);
  assert.equal(await udpExchange(A_IP, PORT, resp, 300), null);
  // Random garbage, many packets.
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  await Promise.all(
    Array.from({ length: 200 }, () => {
      const b = Buffer.alloc(rand() % 100);
      for (let i = 0; i < b.length; i++) b[i] = rand() & 0xff;
      return udpExchange(A_IP, PORT, b, 300);
    }),
  );
  // Garbage over TCP, including a zero-length frame.
  const tcpR = await tcpExchange(A_IP, [Buffer.from([0, 0]), frame(loop), frame(buildQuery(0x4444, 'web', RRType.A))], 2);
  assert.equal(parseMessage(tcpR[0]!).header.rcode, RCode.FORMERR);
  assert.deepEqual(addresses(parseMessage(tcpR[1]!)), ['10.89.0.2']);

  assert.ok(server.stats().failed >= failed + 5);
  const still = await udpQuery(A_IP, buildQuery(newId(), 'web', RRType.A));
  assert.deepEqual(addresses(still), ['10.89.0.2']);
});

test('many concurrent queries are all answered with their own IDs', async () => {
  const n = 400;
  const results = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const id = (0x5000 + i) & 0xffff;
      const name = i % 2 === 0 ? 'db' : `host${i}.example.com`;
      const ip = i % 3 === 0 ? B_IP : A_IP;
      const query = buildQuery(id, name, RRType.A);
      // Like a stub resolver, resend once if a datagram was lost to a full socket buffer.
      const raw = (await udpExchange(ip, PORT, query, 1500)) ?? (await udpExchange(ip, PORT, query, 1500));
      assert.ok(raw, `query ${i}: no response after a retry`);
      return { i, id, r: parseMessage(raw) };
    }),
  );
  for (const { i, id, r } of results) {
    assert.equal(r.header.id, id);
    const want = i % 2 === 0 && i % 3 !== 0 ? '10.89.0.3' : UPSTREAM_ADDRESS;
    assert.deepEqual(addresses(r), [want], `query ${i}`);
  }
});

test('listen rejects duplicates and busy ports; unlisten and close release the ports', async () => {
  await assert.rejects(server.listen({ ip: A_IP, port: PORT, scope: 'other' }), AlreadyExistsError);
  const blocker = await bindUdp('127.0.0.56', PORT);
  const s2 = new DnsServer({ upstreams: [UP] });
  try {
    await assert.rejects(s2.listen({ ip: '127.0.0.56', port: PORT, scope: 'x' }), UnavailableError);
  } finally {
    await new Promise<void>((r) => blocker.close(() => r()));
  }
  await s2.listen({ ip: '127.0.0.56', port: PORT, scope: 'x' });
  assert.deepEqual(s2.addresses(), [{ ip: '127.0.0.56', port: PORT, scope: 'x' }]);

  // unlisten one address: its ports are free again, the other address still serves
  await server.unlisten(B_IP);
  assert.equal(await udpExchange(B_IP, PORT, buildQuery(newId(), 'web', RRType.A), 300), null);
  const u = await bindUdp(B_IP, PORT);
  const t = net.createServer();
  await listenTcp(t, B_IP, PORT);
  await new Promise<void>((r) => u.close(() => r()));
  await new Promise<void>((r) => t.close(() => r()));
  assert.deepEqual(addresses(await udpQuery(A_IP, buildQuery(newId(), 'web', RRType.A))), ['10.89.0.2']);
  await server.unlisten('127.0.0.99'); // unknown: no-op

  // close with an open idle TCP connection still resolves and frees both ports
  const idle = net.connect({ host: '127.0.0.56', port: PORT });
  idle.on('error', () => {});
  await new Promise<void>((r) => idle.once('connect', () => r()));
  await s2.close();
  const u2 = await bindUdp('127.0.0.56', PORT);
  const t2 = net.createServer();
  await listenTcp(t2, '127.0.0.56', PORT);
  await new Promise<void>((r) => u2.close(() => r()));
  await new Promise<void>((r) => t2.close(() => r()));
  idle.destroy();
  await assert.rejects(s2.listen({ ip: '127.0.0.56', port: PORT, scope: 'x' }), /closed/);
});

test('upstreamsFromResolvConf keeps nameserver lines and skips loopback', () => {
  const text = [
    '# generated',
    'search corp.example',
    'nameserver 127.0.0.53',
    'nameserver 10.255.255.53 # host resolver',
    'nameserver ::1',
    'nameserver 2001:db8::53',
    'nameserver fe80::1%eth0',
    '  nameserver   192.0.2.1  ',
    'nameserver 127.1.2.3',
    'nameserver not-an-ip',
    'nameserver 10.255.255.53',
    ';nameserver 198.51.100.1',
    'options ndots:0',
  ].join('\n');
  assert.deepEqual(upstreamsFromResolvConf(text), [
    { host: '10.255.255.53', port: 53 },
    { host: '2001:db8::53', port: 53 },
    { host: 'fe80::1%eth0', port: 53 },
    { host: '192.0.2.1', port: 53 },
  ]);
  assert.deepEqual(upstreamsFromResolvConf(''), []);
});

test('search domains: "web.<domain>" matches a local "web" when configured', async () => {
  const s = new DnsServer({ upstreams: [], searchDomains: ['corp.example'] });
  s.setRecords('n', new Map([['web', ['10.1.0.2']]]));
  const r = parseMessage((await s.answer(buildQuery(1, 'WEB.corp.example.', RRType.A), 'n', 'udp'))!);
  assert.deepEqual(addresses(r), ['10.1.0.2']);
  const miss = parseMessage((await s.answer(buildQuery(2, 'web.other.example', RRType.A), 'n', 'udp'))!);
  assert.equal(miss.header.rcode, RCode.SERVFAIL);
  await s.close();
});
