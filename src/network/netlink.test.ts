/**
 * Real tests: they create bridges, veth pairs and network namespaces named
 * `vt-…` and remove them afterwards, also on failure. Traffic only flows
 * between namespaces these tests create (subnet 10.216.0.0/16).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { AlreadyExistsError, InternalError, InvalidArgumentError } from '../core/errors.js';
import { run } from '../core/exec.js';
import {
  addVethToNetns,
  createNetns,
  deleteLink,
  deleteNetns,
  enableForwarding,
  ensureBridge,
  linkExists,
  listLinks,
  listNetns,
  removeVeth,
  vethName,
} from './netlink.js';

const TAG = `vt-${process.pid % 10000}x`; // ≤ 8 chars; the x keeps one TAG from prefixing another
const isRoot = process.getuid?.() === 0;

function requireRoot(): void {
  assert.ok(isRoot, 'needs root (creates bridges and network namespaces); this test cannot run here');
  assert.doesNotThrow(() => execFileSync('ip', ['-V']), 'needs iproute2 (ip)');
}

/** Removes every link and netns starting with `prefix` (only names the tests use). */
async function cleanup(prefix: string): Promise<void> {
  assert.ok(prefix.startsWith('vt-'));
  for (const ns of await listNetns(prefix)) await deleteNetns(ns);
  for (const l of await listLinks(prefix)) await deleteLink(l);
}

interface AddrInfo {
  family: string;
  local: string;
  prefixlen: number;
}
interface LinkJson {
  ifname: string;
  flags: string[];
  operstate?: string;
  master?: string;
  mtu: number;
  address: string;
  link_type?: string;
  linkinfo?: { info_kind?: string };
  addr_info?: AddrInfo[];
}

async function addrJson(dev: string, netns?: string): Promise<LinkJson> {
  const args = netns ? ['-n', netns, '-j', '-d', 'addr', 'show', 'dev', dev] : ['-j', '-d', 'addr', 'show', 'dev', dev];
  const r = await run('ip', args);
  const list = JSON.parse(r.stdout) as LinkJson[];
  assert.equal(list.length, 1);
  return list[0]!;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function v4(l: LinkJson): string[] {
  return (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
}

test('vethName is deterministic, short and distinct', () => {
  const a = vethName('vh', 'a'.repeat(64));
  assert.equal(a, vethName('vh', 'a'.repeat(64)));
  assert.equal(a.length, 15);
  assert.match(a, /^vh[0-9a-f]{13}$/);
  assert.notEqual(a, vethName('vh', 'b'.repeat(64)));
  assert.notEqual(a, vethName('vh', 'a'.repeat(64), 'net1'));
  assert.notEqual(vethName('vh', 'x', 'net1'), vethName('vh', 'x', 'net2'));
  assert.equal(vethName('vessel-h', 'abc').length, 15);
  assert.throws(() => vethName('', 'abc'), InvalidArgumentError);
  assert.throws(() => vethName('way-too-long', 'abc'), InvalidArgumentError);
  assert.throws(() => vethName('v h', 'abc'), InvalidArgumentError);
  assert.throws(() => vethName('vh', ''), InvalidArgumentError);
});

test('input validation rejects names and addresses that could break an ip batch', async () => {
  await assert.rejects(ensureBridge('bad name', '10.216.0.1/24'), InvalidArgumentError);
  await assert.rejects(ensureBridge('x'.repeat(16), '10.216.0.1/24'), InvalidArgumentError);
  await assert.rejects(ensureBridge('vt-ok', '10.216.0.1'), InvalidArgumentError);
  await assert.rejects(ensureBridge('vt-ok', '10.216.0.1/24\nlink del eth0'), InvalidArgumentError);
  await assert.rejects(createNetns('a/b'), InvalidArgumentError);
  await assert.rejects(deleteLink('a b'), InvalidArgumentError);
  const base = { hostIf: 'vt-h', netns: 'vt-ns', bridge: 'vt-br', ifName: 'eth0', address: '10.216.0.5/24', gateway: '10.216.0.1' };
  await assert.rejects(addVethToNetns({ ...base, address: '10.216.0.5' }), InvalidArgumentError);
  await assert.rejects(addVethToNetns({ ...base, gateway: 'nope' }), InvalidArgumentError);
  await assert.rejects(addVethToNetns({ ...base, mac: '02:00:00:00:00' }), InvalidArgumentError);
  await assert.rejects(addVethToNetns({ ...base, mtu: 10 }), InvalidArgumentError);
  await assert.rejects(addVethToNetns({ ...base, netns: 'x y' }), InvalidArgumentError);
  await assert.rejects(addVethToNetns({ ...base, ifName: 'eth0 up' }), InvalidArgumentError);
});

test('createNetns / listNetns / deleteNetns', async () => {
  requireRoot();
  const ns = `${TAG}-ns`;
  try {
    assert.equal(await createNetns(ns), `/run/netns/${ns}`);
    assert.deepEqual(await listNetns(TAG), [ns]);
    const lo = await addrJson('lo', ns);
    assert.ok(lo.flags.includes('UP'), 'lo is up inside the namespace');
    assert.deepEqual(v4(lo), ['127.0.0.1/8']);
    await assert.rejects(createNetns(ns), (e: unknown) => e instanceof AlreadyExistsError && e.message === `Network namespace already exists: ${ns}`);
    await deleteNetns(ns);
    assert.deepEqual(await listNetns(TAG), []);
    await deleteNetns(ns); // idempotent
  } finally {
    await cleanup(TAG);
  }
});

test('ensureBridge creates, converges and is idempotent; linkExists/listLinks/deleteLink', async () => {
  requireRoot();
  const br = `${TAG}-br`;
  try {
    assert.equal(await linkExists(br), false);
    await ensureBridge(br, '10.216.1.1/24');
    assert.equal(await linkExists(br), true);
    let l = await addrJson(br);
    assert.equal(l.linkinfo?.info_kind, 'bridge');
    assert.ok(l.flags.includes('UP'));
    assert.deepEqual(v4(l), ['10.216.1.1/24']);
    assert.equal(readFileSync(`/proc/sys/net/ipv4/conf/${br}/route_localnet`, 'utf8').trim(), '1');

    await ensureBridge(br, '10.216.1.1/24'); // idempotent
    l = await addrJson(br);
    assert.deepEqual(v4(l), ['10.216.1.1/24']);

    await run('ip', ['link', 'set', 'dev', br, 'down']);
    await ensureBridge(br, '10.216.2.1/24'); // converges: old address removed, up again
    l = await addrJson(br);
    assert.deepEqual(v4(l), ['10.216.2.1/24']);
    assert.ok(l.flags.includes('UP'));

    assert.deepEqual(await listLinks(TAG), [br]);
    assert.ok(!(await listLinks(TAG)).includes('lo'));
    await deleteLink(br);
    assert.equal(await linkExists(br), false);
    await deleteLink(br); // idempotent
  } finally {
    await cleanup(TAG);
  }
});

test('addVethToNetns wires a namespace to the bridge; two namespaces talk over it; timing', async () => {
  requireRoot();
  const br = `${TAG}-br`;
  const nsA = `${TAG}-a`;
  const nsB = `${TAG}-b`;
  const hostA = vethName(`${TAG}h`.slice(0, 9), 'container-a');
  const hostB = vethName(`${TAG}h`.slice(0, 9), 'container-b');
  try {
    await ensureBridge(br, '10.216.3.1/24');
    await createNetns(nsA);
    await createNetns(nsB);
    let t0 = performance.now();
    await addVethToNetns({
      hostIf: hostA,
      peerIf: `${TAG}p`,
      netns: nsA,
      bridge: br,
      ifName: 'eth0',
      address: '10.216.3.2/24',
      gateway: '10.216.3.1',
      mac: '02:42:0A:D8:03:02',
      mtu: 1400,
    });
    const firstMs = performance.now() - t0;
    await addVethToNetns({ hostIf: hostB, netns: nsB, bridge: br, ifName: 'eth0', address: '10.216.3.3/24', gateway: null });

    const eth0 = await addrJson('eth0', nsA);
    assert.deepEqual(v4(eth0), ['10.216.3.2/24']);
    assert.equal(eth0.address, '02:42:0a:d8:03:02');
    assert.equal(eth0.mtu, 1400);
    assert.ok(eth0.flags.includes('UP'));
    const routes = JSON.parse((await run('ip', ['-n', nsA, '-j', 'route', 'show'])).stdout) as { dst: string; gateway?: string; dev: string }[];
    assert.ok(routes.some((r) => r.dst === 'default' && r.gateway === '10.216.3.1' && r.dev === 'eth0'), JSON.stringify(routes));
    const routesB = JSON.parse((await run('ip', ['-n', nsB, '-j', 'route', 'show'])).stdout) as { dst: string }[];
    assert.ok(!routesB.some((r) => r.dst === 'default'), 'no gateway → no default route');

    const h = await addrJson(hostA);
    assert.equal(h.master, br);
    assert.equal(h.mtu, 1400);
    assert.ok(h.flags.includes('UP'));
    assert.equal((await addrJson(hostB)).master, br);
    const slave = JSON.parse((await run('ip', ['-j', '-d', 'link', 'show', 'dev', hostA])).stdout) as {
      linkinfo?: { info_slave_kind?: string; info_slave_data?: { hairpin?: boolean } };
    }[];
    assert.equal(slave[0]?.linkinfo?.info_slave_kind, 'bridge');
    assert.equal(slave[0]?.linkinfo?.info_slave_data?.hairpin, true, 'hairpin mode on the bridge port');
    assert.deepEqual(await listLinks(`${TAG}h`), [hostA, hostB].sort());

    // Traffic between the two namespaces the test created, across the host bridge.
    const ping = await run('ip', ['netns', 'exec', nsA, 'busybox', 'ping', '-c', '1', '-W', '2', '10.216.3.3'], { reject: false });
    assert.equal(ping.exitCode, 0, `ping ${nsA} → ${nsB}: ${ping.stdout}${ping.stderr}`);

    // Timing: add + remove repeatedly.
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const ns = `${TAG}-t${i}`;
      await createNetns(ns);
      const hostIf = vethName(`${TAG}h`.slice(0, 9), `timing-${i}`);
      t0 = performance.now();
      await addVethToNetns({ hostIf, netns: ns, bridge: br, ifName: 'eth0', address: `10.216.3.${10 + i}/24`, gateway: '10.216.3.1', mtu: 1400 });
      times.push(performance.now() - t0);
      await deleteNetns(ns);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)]!;
    console.log(`addVethToNetns: first ${firstMs.toFixed(1)} ms, median of 10 ${median.toFixed(1)} ms, max ${times[times.length - 1]!.toFixed(1)} ms`);
    assert.ok(median < 200, `addVethToNetns took ${median} ms`);

    // Deleting the namespace destroys the pair (host side included).
    // The kernel tears the namespace down asynchronously, so the host side goes a moment later.
    await deleteNetns(nsB);
    await waitFor(async () => !(await linkExists(hostB)), 5000, `${hostB} to disappear with ${nsB}`);
    await removeVeth(hostA);
    assert.equal(await linkExists(hostA), false);
    await removeVeth(hostA); // idempotent
  } finally {
    await cleanup(TAG);
  }
});

test('addVethToNetns cleans up the host side on failure and leaves foreign links alone', async () => {
  requireRoot();
  const br = `${TAG}-br`;
  const ns = `${TAG}-f`;
  const hostIf = `${TAG}-fh`;
  try {
    await ensureBridge(br, '10.216.4.1/24');
    await createNetns(ns);
    // No such bridge: fails after the pair was created (line 2) → removed.
    await assert.rejects(
      addVethToNetns({ hostIf, netns: ns, bridge: `${TAG}-nobr`, ifName: 'eth0', address: '10.216.4.2/24', gateway: '10.216.4.1' }),
      (e: unknown) => e instanceof InternalError && /Failed to create veth/.test(e.message),
    );
    assert.equal(await linkExists(hostIf), false);
    assert.deepEqual(await listLinks(hostIf), []);

    // Gateway not reachable on the link: the in-namespace step fails → pair removed.
    await assert.rejects(
      addVethToNetns({ hostIf, netns: ns, bridge: br, ifName: 'eth0', address: '10.216.4.2/24', gateway: '10.216.99.1' }),
      (e: unknown) => e instanceof InternalError && /Failed to configure eth0/.test(e.message),
    );
    assert.equal(await linkExists(hostIf), false);
    const inside = JSON.parse((await run('ip', ['-n', ns, '-j', 'link', 'show'])).stdout) as { ifname: string }[];
    assert.deepEqual(inside.map((l) => l.ifname), ['lo']);

    // hostIf already exists (someone else's): error, and the existing link survives.
    await run('ip', ['link', 'add', 'name', hostIf, 'type', 'bridge']);
    await assert.rejects(
      addVethToNetns({ hostIf, netns: ns, bridge: br, ifName: 'eth0', address: '10.216.4.2/24', gateway: '10.216.4.1' }),
      (e: unknown) => e instanceof InternalError && /File exists/.test(e.message),
    );
    assert.equal(await linkExists(hostIf), true);

    // Missing namespace.
    await assert.rejects(
      addVethToNetns({ hostIf: `${TAG}-gh`, netns: `${TAG}-none`, bridge: br, ifName: 'eth0', address: '10.216.4.3/24', gateway: null }),
      InternalError,
    );
    assert.equal(await linkExists(`${TAG}-gh`), false);
  } finally {
    await cleanup(TAG);
  }
});

test('enableForwarding sets net.ipv4.ip_forward=1', async () => {
  requireRoot();
  await enableForwarding();
  assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), '1');
  await enableForwarding(); // no-op the second time
});
