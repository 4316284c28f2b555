import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DnsFormatError,
  RCode,
  RRClass,
  RRType,
  addressRecord,
  buildErrorResponse,
  buildQuery,
  buildResponse,
  canonicalIP,
  encodeMessage,
  findOpt,
  formatIPv6,
  ipFromReverseName,
  nameToLabels,
  normalizeName,
  parseIPv6,
  parseMessage,
  ptrRecord,
  reverseName,
  type DnsMessage,
} from './message.js';

/** A hand-written query for web.example A, ID 0x1234, RD set (RFC 1035 layout). */
function handQuery(): Buffer {
  return Buffer.from([
    0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
    3, 0x77, 0x65, 0x62, 7, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0,
    0, 1, 0, 1,
  ]);
}

test('parseMessage reads a hand-written query', () => {
  const m = parseMessage(handQuery());
  assert.equal(m.header.id, 0x1234);
  assert.equal(m.header.qr, false);
  assert.equal(m.header.rd, true);
  assert.equal(m.header.opcode, 0);
  assert.deepEqual(m.questions, [{ name: 'web.example', type: RRType.A, class: RRClass.IN }]);
  assert.equal(m.answers.length, 0);
});

test('buildQuery encodes exactly the RFC 1035 bytes', () => {
  assert.deepEqual(buildQuery(0x1234, 'web.example', RRType.A), handQuery());
  assert.deepEqual(buildQuery(0x1234, 'web.example.', RRType.A), handQuery());
});

test('responses compress names and round-trip every supported type', () => {
  const query = parseMessage(buildQuery(7, 'web.example', RRType.A));
  const msg: DnsMessage = {
    header: { ...query.header, qr: true, ra: true, aa: true },
    questions: query.questions,
    answers: [
      addressRecord('web.example', '10.89.0.2', 600),
      addressRecord('web.example', '10.89.0.3', 600),
      addressRecord('web.example', 'fd00::1:2', 60),
      { name: 'alias.example', type: RRType.CNAME, class: 1, ttl: 5, data: { kind: 'name', name: 'web.example' } },
      ptrRecord('2.0.89.10.in-addr.arpa', 'web.example', 600),
      { name: 'example', type: RRType.MX, class: 1, ttl: 5, data: { kind: 'mx', preference: 10, exchange: 'mail.example' } },
      {
        name: '_http._tcp.example',
        type: RRType.SRV,
        class: 1,
        ttl: 5,
        data: { kind: 'srv', priority: 1, weight: 2, port: 8080, target: 'web.example' },
      },
      { name: 'example', type: RRType.TXT, class: 1, ttl: 5, data: { kind: 'raw', bytes: Uint8Array.from([3, 0x61, 0x62, 0x63]) } },
    ],
    authorities: [
      {
        name: 'example',
        type: RRType.SOA,
        class: 1,
        ttl: 5,
        data: { kind: 'soa', mname: 'ns.example', rname: 'hostmaster.example', serial: 4000000000, refresh: 1, retry: 2, expire: 3, minimum: 4 },
      },
    ],
    additionals: [],
  };
  const wire = encodeMessage(msg);
  const back = parseMessage(wire);
  assert.deepEqual(back, msg);
  // Compression: "web.example" appears in full only once (in the question).
  assert.equal(wire.indexOf(Buffer.from('\x03web\x07example', 'latin1')), 12);
  // ... and once more as the SRV target, which must not be compressed (RFC 2782).
  const second = wire.indexOf(Buffer.from('\x03web\x07example\x00', 'latin1'), 13);
  assert.ok(second > 0);
  assert.equal(wire.readUInt16BE(second - 2), 8080, 'the spelled-out copy is the SRV target');
  assert.equal(wire.indexOf(Buffer.from('\x03web\x07example', 'latin1'), second + 1), -1, 'other names are pointers');
  // Answers after the question start with a pointer to offset 12.
  assert.deepEqual([...wire.subarray(12 + 17, 12 + 19)], [0xc0, 12]);
  // Compression is case-insensitive: a differently cased name points at the first spelling.
  const folded = encodeMessage({ ...msg, answers: [addressRecord('WEB.Example', '10.89.0.9', 1)], authorities: [] });
  assert.equal(folded.length, wire.indexOf(0, 12) + 1 + 4 + 2 + 10 + 4);
  assert.equal(parseMessage(folded).answers[0]!.name, 'web.example');
});

test('names with odd bytes are escaped and round-trip', () => {
  const name = 'a\\.b.c\\\\d.sp\\032ce';
  assert.deepEqual(
    nameToLabels(name).map((l) => Buffer.from(l).toString('latin1')),
    ['a.b', 'c\\d', 'sp ce'],
  );
  const q = parseMessage(buildQuery(1, name, RRType.A));
  assert.equal(q.questions[0]!.name, name);
  assert.throws(() => nameToLabels('a..b'), /empty label/);
  assert.throws(() => nameToLabels('x'.repeat(64)), /63/);
  assert.throws(() => nameToLabels(Array(130).fill('ab').join('.')), /255/);
  assert.equal(normalizeName('WeB.Example.'), 'web.example');
});

test('pointer-following works and loops, forward pointers and bad labels are FORMERR', () => {
  // Question name is a pointer back into... nothing earlier: forward pointer.
  const header = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
  const forward = Buffer.from([...header, 0xc0, 14, 3, 0x61, 0x62, 0x63, 0, 0, 1, 0, 1]);
  assert.throws(() => parseMessage(forward), DnsFormatError);
  const self = Buffer.from([...header, 0xc0, 12, 0, 1, 0, 1]);
  assert.throws(() => parseMessage(self), /looping|forward/);
  const extLabel = Buffer.from([...header, 0x41, 0, 0, 1, 0, 1]);
  assert.throws(() => parseMessage(extLabel), /label type/);
  const truncated = Buffer.from([...header, 5, 0x61, 0x62]);
  assert.throws(() => parseMessage(truncated), DnsFormatError);
  assert.throws(() => parseMessage(Buffer.alloc(5)), /shorter than a header/);
  // An A record whose RDATA is 5 bytes long.
  const r = encodeMessage({
    header: parseMessage(handQuery()).header,
    questions: [],
    answers: [addressRecord('a', '1.2.3.4', 1)],
    authorities: [],
    additionals: [],
  });
  const bad = Buffer.concat([r, Buffer.from([9])]);
  bad.writeUInt16BE(5, bad.length - 7); // rdlength
  assert.throws(() => parseMessage(bad), /A record of 5 bytes/);
  // A chain of backward pointers is followed.
  const chain = Buffer.from([
    0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0,
    3, 0x63, 0x6f, 0x6d, 0, 0, 1, 0, 1, // q1: com (offset 12)
    1, 0x78, 0xc0, 12, 0, 1, 0, 1, // q2: x.com (offset 21)
  ]);
  const chainWithThird = Buffer.concat([chain, Buffer.from([1, 0x79, 0xc0, 21, 0, 1, 0, 1])]);
  chainWithThird[5] = 3;
  assert.deepEqual(
    parseMessage(chainWithThird).questions.map((q) => q.name),
    ['com', 'x.com', 'y.x.com'],
  );
});

test('parseMessage throws only DnsFormatError on random and mutated input', () => {
  let seed = 42;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  const valid = buildResponse(
    parseMessage(buildQuery(9, 'a.b.example', RRType.A, { edns: 4096 })),
    [addressRecord('a.b.example', '10.0.0.1', 5), ptrRecord('a.b.example', 'c.b.example', 5)],
    0,
  );
  let parsed = 0;
  for (let i = 0; i < 20000; i++) {
    let buf: Buffer;
    if (i % 2 === 0) {
      buf = Buffer.alloc(rand() % 64);
      for (let j = 0; j < buf.length; j++) buf[j] = rand() & 0xff;
    } else {
      buf = Buffer.from(valid.subarray(0, rand() % (valid.length + 1)));
      for (let k = rand() % 4; k >= 0; k--) if (buf.length) buf[rand() % buf.length] = rand() & 0xff;
    }
    try {
      parseMessage(buf);
      parsed++;
    } catch (e) {
      assert.ok(e instanceof DnsFormatError, `unexpected ${String(e)}`);
    }
  }
  assert.ok(parsed > 0);
});

test('buildResponse echoes ID, RD, question and EDNS; buildErrorResponse keeps the ID', () => {
  const q = parseMessage(buildQuery(0xbeef, 'Web', RRType.A, { edns: 4096 }));
  assert.equal(findOpt(q)?.class, 4096);
  const r = parseMessage(buildResponse(q, [addressRecord('Web', '10.89.0.2', 600)], RCode.NOERROR));
  assert.equal(r.header.id, 0xbeef);
  assert.equal(r.header.qr, true);
  assert.equal(r.header.rd, true);
  assert.equal(r.header.ra, true);
  assert.equal(r.header.aa, true);
  assert.equal(r.header.rcode, 0);
  assert.deepEqual(r.questions, q.questions);
  assert.deepEqual(r.answers.map((a) => a.data), [{ kind: 'address', address: '10.89.0.2' }]);
  assert.equal(r.additionals.length, 1);
  assert.equal(r.additionals[0]!.type, RRType.OPT);

  const e = buildErrorResponse(Buffer.from([0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0]), RCode.FORMERR)!;
  const h = parseMessage(e).header;
  assert.equal(h.id, 0xabcd);
  assert.equal(h.qr, true);
  assert.equal(h.rd, true);
  assert.equal(h.rcode, RCode.FORMERR);
  assert.equal(buildErrorResponse(Buffer.alloc(11), RCode.FORMERR), null);
  assert.equal(buildErrorResponse(Buffer.from([0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0]), RCode.FORMERR), null);
});

test('oversized UDP answers are cut to 512 bytes (or the EDNS size) with TC set', () => {
  const answers = Array.from({ length: 100 }, (_, i) => addressRecord('many', `10.0.${i >> 8}.${i & 0xff}`, 5));
  const plain = buildResponse(parseMessage(buildQuery(1, 'many', RRType.A)), answers, 0);
  assert.ok(plain.length <= 512);
  const p = parseMessage(plain);
  assert.equal(p.header.tc, true);
  assert.ok(p.answers.length > 20 && p.answers.length < 100);
  const edns = buildResponse(parseMessage(buildQuery(1, 'many', RRType.A, { edns: 4096 })), answers, 0);
  const pe = parseMessage(edns);
  assert.equal(pe.header.tc, false);
  assert.equal(pe.answers.length, 100);
  assert.equal(findOpt(pe)?.type, RRType.OPT);
  const tcp = parseMessage(buildResponse(parseMessage(buildQuery(1, 'many', RRType.A)), answers, 0, { maxSize: 65535 }));
  assert.equal(tcp.answers.length, 100);
});

test('IPv6 text and reverse names', () => {
  assert.equal(formatIPv6(parseIPv6('2001:db8:0:0:1:0:0:1')!), '2001:db8::1:0:0:1');
  assert.equal(formatIPv6(parseIPv6('::')!), '::');
  assert.equal(formatIPv6(parseIPv6('::ffff:10.0.0.1')!), '::ffff:a00:1');
  assert.equal(formatIPv6(parseIPv6('fe80::1%eth0')!), 'fe80::1');
  assert.equal(parseIPv6('1:::2'), null);
  assert.equal(parseIPv6('1:2:3:4:5:6:7:8:9'), null);
  assert.equal(canonicalIP('010.0.0.1'), null);
  assert.equal(reverseName('10.89.0.2'), '2.0.89.10.in-addr.arpa');
  assert.equal(ipFromReverseName('2.0.89.10.IN-ADDR.ARPA.'), '10.89.0.2');
  assert.equal(ipFromReverseName('0.89.10.in-addr.arpa'), null);
  const r6 = reverseName('fd00::ab:1');
  assert.ok(r6.startsWith('1.0.0.0.b.a.0.0.'));
  assert.ok(r6.endsWith('.0.0.d.f.ip6.arpa'));
  assert.equal(ipFromReverseName(r6), 'fd00::ab:1');
});
