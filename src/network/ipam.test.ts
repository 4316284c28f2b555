import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConflictError, FailedPreconditionError, InvalidArgumentError } from '../core/errors.js';
import {
  allocate,
  contains,
  defaultGateway,
  hostRoutesFromIpRoute,
  intToIp,
  ipToInt,
  isIpv4,
  isUsableHost,
  overlaps,
  parseCidr,
  pickFreeSubnet,
} from './ipam.js';

test('ipToInt / intToIp round-trip and validation', () => {
  assert.equal(ipToInt('0.0.0.0'), 0);
  assert.equal(ipToInt('255.255.255.255'), 0xffffffff);
  assert.equal(ipToInt('10.88.0.1'), (10 << 24) + (88 << 16) + 1);
  assert.equal(ipToInt('192.168.1.200'), 0xc0a801c8);
  for (const ip of ['1.2.3.4', '10.0.0.0', '172.16.254.1', '255.0.255.0']) assert.equal(intToIp(ipToInt(ip)), ip);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.-1', '01.2.3.4', 'a.b.c.d', '1.2.3.4/24', ' 1.2.3.4', '1..2.3']) {
    assert.throws(() => ipToInt(bad), InvalidArgumentError, bad);
    assert.equal(isIpv4(bad), false);
  }
  assert.throws(() => intToIp(-1), InvalidArgumentError);
  assert.throws(() => intToIp(2 ** 32), InvalidArgumentError);
  assert.throws(() => intToIp(1.5), InvalidArgumentError);
});

test('parseCidr normalises host bits and rejects bad input', () => {
  assert.deepEqual(parseCidr('10.88.0.0/16'), { cidr: '10.88.0.0/16', network: ipToInt('10.88.0.0'), prefix: 16 });
  assert.equal(parseCidr('10.88.1.5/16').cidr, '10.88.0.0/16');
  assert.equal(parseCidr('10.88.1.5/24').cidr, '10.88.1.0/24');
  assert.equal(parseCidr('10.88.1.5/32').cidr, '10.88.1.5/32');
  assert.equal(parseCidr('10.88.1.5').cidr, '10.88.1.5/32');
  assert.equal(parseCidr('10.88.1.7/30').cidr, '10.88.1.4/30');
  assert.equal(parseCidr('255.255.255.255/1').cidr, '128.0.0.0/1');
  assert.equal(parseCidr('1.2.3.4/0').cidr, '0.0.0.0/0');
  for (const bad of ['', '10.88.0.0/', '10.88.0.0/33', '10.88.0.0/-1', '10.88.0.0/08', '10.88.0/16', 'x/16', '10.88.0.0/16/1', '10.88.0.0/1.5']) {
    assert.throws(() => parseCidr(bad), (e: unknown) => e instanceof InvalidArgumentError && e.message === `Invalid subnet: ${bad}`, bad);
  }
});

test('contains and overlaps', () => {
  const s = parseCidr('10.88.0.0/16');
  assert.ok(contains(s, '10.88.0.0'));
  assert.ok(contains(s, '10.88.255.255'));
  assert.ok(contains(s, '10.88.3.4'));
  assert.ok(!contains(s, '10.89.0.0'));
  assert.ok(!contains(s, '10.87.255.255'));
  assert.ok(contains(parseCidr('0.0.0.0/0'), '203.0.113.9'));
  assert.ok(contains(parseCidr('10.1.1.1/32'), '10.1.1.1'));
  assert.ok(!contains(parseCidr('10.1.1.1/32'), '10.1.1.2'));
  assert.throws(() => contains(s, 'nope'), InvalidArgumentError);

  assert.ok(overlaps(parseCidr('10.88.0.0/16'), parseCidr('10.88.5.0/24')));
  assert.ok(overlaps(parseCidr('10.88.5.0/24'), parseCidr('10.88.0.0/16')));
  assert.ok(overlaps(parseCidr('10.0.0.0/8'), parseCidr('10.255.255.53/32')));
  assert.ok(overlaps(parseCidr('0.0.0.0/0'), parseCidr('192.0.2.0/24')));
  assert.ok(overlaps(parseCidr('10.1.0.0/24'), parseCidr('10.1.0.0/24')));
  assert.ok(!overlaps(parseCidr('10.88.0.0/16'), parseCidr('10.89.0.0/16')));
  assert.ok(!overlaps(parseCidr('10.1.0.0/25'), parseCidr('10.1.0.128/25')));
  assert.ok(!overlaps(parseCidr('10.1.0.0/31'), parseCidr('10.1.0.2/31')));
});

test('defaultGateway is the first usable host', () => {
  assert.equal(defaultGateway(parseCidr('10.88.0.0/16')), '10.88.0.1');
  assert.equal(defaultGateway(parseCidr('10.88.7.0/24')), '10.88.7.1');
  assert.equal(defaultGateway(parseCidr('10.88.7.8/30')), '10.88.7.9');
  assert.equal(defaultGateway(parseCidr('10.88.7.8/31')), '10.88.7.8');
  assert.equal(defaultGateway(parseCidr('10.88.7.8/32')), '10.88.7.8');
});

test('isUsableHost', () => {
  const s = parseCidr('10.213.0.0/24');
  assert.ok(isUsableHost(s, '10.213.0.1'));
  assert.ok(isUsableHost(s, '10.213.0.254'));
  assert.ok(!isUsableHost(s, '10.213.0.0'));
  assert.ok(!isUsableHost(s, '10.213.0.255'));
  assert.ok(!isUsableHost(s, '10.213.1.1'));
  assert.ok(!isUsableHost(s, 'x'));
  assert.ok(isUsableHost(parseCidr('10.213.0.8/31'), '10.213.0.8'));
  assert.ok(isUsableHost(parseCidr('10.213.0.8/31'), '10.213.0.9'));
  assert.ok(isUsableHost(parseCidr('10.213.0.8/32'), '10.213.0.8'));
});

test('allocate hands out the lowest free host address in order', () => {
  const s = parseCidr('10.213.0.0/24');
  const used: string[] = [];
  for (let i = 2; i <= 10; i++) {
    const ip = allocate(s, used);
    assert.equal(ip, `10.213.0.${i}`);
    used.push(ip);
  }
  // A freed address in the middle is reused first.
  used.splice(used.indexOf('10.213.0.5'), 1);
  assert.equal(allocate(s, used), '10.213.0.5');
  // Addresses with a prefix suffix and outside the subnet are accepted/ignored.
  assert.equal(allocate(s, ['10.213.0.2/24', '10.213.0.3', '10.99.0.4', 'garbage']), '10.213.0.4');
  // Unsorted input.
  assert.equal(allocate(s, ['10.213.0.4', '10.213.0.2', '10.213.0.3', '10.213.0.6']), '10.213.0.5');
});

test('allocate never returns network, broadcast or gateway; exhaustion', () => {
  const s = parseCidr('10.213.0.0/29'); // .0 network, .1 gw, .2-.6 hosts, .7 broadcast
  const used: string[] = [];
  for (let i = 0; i < 5; i++) used.push(allocate(s, used));
  assert.deepEqual(used, ['10.213.0.2', '10.213.0.3', '10.213.0.4', '10.213.0.5', '10.213.0.6']);
  assert.throws(
    () => allocate(s, used),
    (e: unknown) => e instanceof FailedPreconditionError && e.message === 'No free addresses in 10.213.0.0/29',
  );
});

test('allocate with a custom gateway or none', () => {
  const s = parseCidr('10.213.0.0/29');
  assert.equal(allocate(s, [], { gateway: '10.213.0.6' }), '10.213.0.1');
  assert.equal(allocate(s, ['10.213.0.1'], { gateway: '10.213.0.2' }), '10.213.0.3');
  assert.equal(allocate(s, [], { gateway: '' }), '10.213.0.1');
  // A gateway outside the subnet does not block anything.
  assert.equal(allocate(s, [], { gateway: '10.99.0.1' }), '10.213.0.1');
  assert.throws(() => allocate(s, [], { gateway: 'bad' }), InvalidArgumentError);
});

test('allocate /30 and /31 and /32 edge cases', () => {
  const s30 = parseCidr('10.213.0.4/30'); // .4 net, .5 gw, .6 host, .7 bcast
  assert.equal(allocate(s30, []), '10.213.0.6');
  assert.throws(() => allocate(s30, ['10.213.0.6']), FailedPreconditionError);
  assert.throws(() => allocate(s30, [], { requested: '10.213.0.7' }), InvalidArgumentError);
  assert.throws(() => allocate(s30, [], { requested: '10.213.0.4' }), InvalidArgumentError);

  const s31 = parseCidr('10.213.0.8/31'); // point-to-point: both usable, gw is .8
  assert.equal(allocate(s31, []), '10.213.0.9');
  assert.throws(() => allocate(s31, ['10.213.0.9']), (e: unknown) => e instanceof FailedPreconditionError && e.message === 'No free addresses in 10.213.0.8/31');
  assert.equal(allocate(s31, [], { gateway: '' }), '10.213.0.8');

  const s32 = parseCidr('10.213.0.10/32');
  assert.throws(() => allocate(s32, []), FailedPreconditionError); // the only address is the gateway
  assert.equal(allocate(s32, [], { gateway: '' }), '10.213.0.10');
});

test('allocate honours requested addresses', () => {
  const s = parseCidr('10.213.0.0/24');
  assert.equal(allocate(s, ['10.213.0.2'], { requested: '10.213.0.77' }), '10.213.0.77');
  assert.equal(allocate(s, [], { requested: '10.213.0.254' }), '10.213.0.254');
  assert.throws(
    () => allocate(s, ['10.213.0.77'], { requested: '10.213.0.77' }),
    (e: unknown) => e instanceof ConflictError && e.message === 'Address already in use: 10.213.0.77',
  );
  assert.throws(
    () => allocate(s, [], { requested: '10.213.0.1' }),
    (e: unknown) => e instanceof ConflictError && e.message === 'Address already in use: 10.213.0.1',
  );
  assert.throws(
    () => allocate(s, [], { requested: '10.214.0.5' }),
    (e: unknown) => e instanceof InvalidArgumentError && e.message === 'Address 10.214.0.5 is not in subnet 10.213.0.0/24',
  );
  assert.throws(() => allocate(s, [], { requested: '10.213.0.0' }), InvalidArgumentError);
  assert.throws(() => allocate(s, [], { requested: '10.213.0.255' }), InvalidArgumentError);
  assert.throws(() => allocate(s, [], { requested: '10.213.0.300' }), InvalidArgumentError);
});

test('allocate is fast on a large, nearly full subnet', () => {
  const s = parseCidr('10.213.0.0/16');
  const used: string[] = [];
  for (let i = 2; i < 65000; i++) used.push(intToIp(s.network + i));
  const t0 = Date.now();
  assert.equal(allocate(s, used), '10.213.253.232');
  assert.ok(Date.now() - t0 < 1000);
});

test('pickFreeSubnet returns the first non-overlapping block', () => {
  assert.equal(pickFreeSubnet('10.89.0.0/16', 24, []).cidr, '10.89.0.0/24');
  assert.equal(pickFreeSubnet('10.89.0.0/16', 24, [parseCidr('10.89.0.0/24')]).cidr, '10.89.1.0/24');
  assert.equal(pickFreeSubnet('10.89.0.0/16', 24, [parseCidr('10.89.0.0/24'), parseCidr('10.89.2.0/24')]).cidr, '10.89.1.0/24');
  // A larger taken subnet is skipped in one step.
  assert.equal(pickFreeSubnet('10.89.0.0/16', 24, [parseCidr('10.89.0.0/20')]).cidr, '10.89.16.0/24');
  // A small taken subnet (a host route) blocks its whole containing block.
  assert.equal(pickFreeSubnet('10.89.0.0/16', 24, [parseCidr('10.89.0.77/32')]).cidr, '10.89.1.0/24');
  // A taken supernet of the pool exhausts it.
  assert.throws(
    () => pickFreeSubnet('10.89.0.0/16', 24, [parseCidr('10.0.0.0/8')]),
    (e: unknown) => e instanceof FailedPreconditionError && e.message === 'No free /24 subnet in pool 10.89.0.0/16',
  );
  // Unrelated taken subnets are ignored; pool host bits are normalised.
  assert.equal(pickFreeSubnet('10.89.3.3/16', 20, [parseCidr('192.0.2.0/24')]).cidr, '10.89.0.0/20');
  // Exhaustion of a small pool.
  const taken = [parseCidr('10.90.0.0/25')];
  assert.equal(pickFreeSubnet('10.90.0.0/24', 25, taken).cidr, '10.90.0.128/25');
  taken.push(parseCidr('10.90.0.128/25'));
  assert.throws(() => pickFreeSubnet('10.90.0.0/24', 25, taken), FailedPreconditionError);
  // Size must fit in the pool.
  assert.throws(() => pickFreeSubnet('10.89.0.0/16', 8, []), InvalidArgumentError);
  assert.throws(() => pickFreeSubnet('10.89.0.0/16', 33, []), InvalidArgumentError);
  assert.throws(() => pickFreeSubnet('bad', 24, []), InvalidArgumentError);
  // Picking the whole pool.
  assert.equal(pickFreeSubnet('10.89.0.0/16', 16, []).cidr, '10.89.0.0/16');
  // Top of the address space does not overflow.
  assert.equal(pickFreeSubnet('255.255.255.0/24', 25, [parseCidr('255.255.255.0/25')]).cidr, '255.255.255.128/25');
});

test('pickFreeSubnet over many networks stays fast', () => {
  const taken = [];
  for (let i = 0; i < 1000; i++) taken.push(parseCidr(`10.${100 + Math.floor(i / 256)}.${i % 256}.0/24`));
  const t0 = Date.now();
  assert.equal(pickFreeSubnet('10.100.0.0/14', 24, taken).cidr, '10.103.232.0/24');
  assert.ok(Date.now() - t0 < 2000);
});

test('hostRoutesFromIpRoute parses `ip -j route show table all`', () => {
  const json = JSON.stringify([
    { dst: 'default', gateway: '192.0.2.1', dev: 'eth0', flags: [] },
    { dst: '192.0.2.0/24', dev: 'eth0', protocol: 'kernel', scope: 'link', prefsrc: '192.0.2.2', flags: [] },
    { dst: '10.255.255.53', gateway: '192.0.2.1', dev: 'eth0', flags: [] },
    { type: 'local', dst: '127.0.0.0/8', dev: 'lo', table: 'local', protocol: 'kernel', scope: 'host', flags: [] },
    { type: 'local', dst: '127.0.0.1', dev: 'lo', table: 'local', flags: [] },
    { type: 'broadcast', dst: '127.255.255.255', dev: 'lo', table: 'local', flags: [] },
    { type: 'local', dst: '192.0.2.2', dev: 'eth0', table: 'local', flags: [] },
    { type: 'broadcast', dst: '192.0.2.255', dev: 'eth0', table: 'local', flags: [] },
    { dst: '192.0.2.0/24', dev: 'eth0', table: 'main', flags: [] },
    { type: 'blackhole', dst: '10.50.0.0/16', flags: [] },
    { dst: 'fd00::/64', dev: 'eth0', protocol: 'kernel', metric: 256, flags: [] },
    { dst: 'default', gateway: 'fd00::1', dev: 'eth0', metric: 1024, flags: [] },
    { type: 'multicast', dst: 'ff00::/8', dev: 'eth0', table: 'local', flags: [] },
    { dst: '0.0.0.0/0', gateway: '192.0.2.1', dev: 'eth0', table: 'other' },
    { nodst: true },
  ]);
  assert.deepEqual(
    hostRoutesFromIpRoute(json).map((s) => s.cidr),
    ['192.0.2.0/24', '10.255.255.53/32', '127.0.0.0/8', '127.0.0.1/32', '192.0.2.2/32', '10.50.0.0/16'],
  );
  assert.deepEqual(hostRoutesFromIpRoute(''), []);
  assert.deepEqual(hostRoutesFromIpRoute('[]\n'), []);
  assert.throws(() => hostRoutesFromIpRoute('{not json'), InvalidArgumentError);
  assert.throws(() => hostRoutesFromIpRoute('{}'), InvalidArgumentError);
});

test('hostRoutesFromIpRoute on this host feeds pickFreeSubnet', async () => {
  const { run } = await import('../core/exec.js');
  const r = await run('ip', ['-j', 'route', 'show', 'table', 'all']);
  const routes = hostRoutesFromIpRoute(r.stdout);
  assert.ok(routes.length > 0, 'the host has at least one IPv4 route');
  const picked = pickFreeSubnet('10.0.0.0/8', 24, routes);
  for (const route of routes) assert.ok(!overlaps(picked, route), `${picked.cidr} overlaps ${route.cidr}`);
});
