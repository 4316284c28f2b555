/**
 * Unit tests on the rendered ruleset, plus real tests: they create nft tables
 * named `vt_…`, bridges/veths/netns named `vt-…` (subnets 10.213–10.215.x)
 * and remove them afterwards, also on failure. Traffic only goes to loopback,
 * to the test's own interfaces, or into namespaces the test creates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { createSocket } from 'node:dgram';
import { ConflictError, InvalidArgumentError } from '../core/errors.js';
import { run } from '../core/exec.js';
import { applyRuleset, deleteTable, listTables, renderRuleset, tableExists, type NftState } from './nft.js';
import { addVethToNetns, createNetns, deleteLink, deleteNetns, enableForwarding, ensureBridge, listLinks, listNetns } from './netlink.js';

const PID = process.pid % 10000;
const TABLE = `vt_nft_${PID}`;
const TAG = `vt-${PID}n`; // interface / netns prefix, ≤ 8 chars
const isRoot = process.getuid?.() === 0;

function requireRoot(): void {
  assert.ok(isRoot, 'needs root (creates nftables tables, bridges and network namespaces); this test cannot run here');
  assert.doesNotThrow(() => execFileSync('nft', ['--version']), 'needs nftables (nft)');
  assert.doesNotThrow(() => execFileSync('ip', ['-V']), 'needs iproute2 (ip)');
}

// ---------------------------------------------------------------- rendering

const basic: NftState = {
  table: 'vessel_1a2b3c4d',
  networks: [{ bridge: 'vessel0', subnet: '10.88.0.0/16', internal: false }],
  ports: [{ proto: 'tcp', hostIp: null, hostPort: 8080, containerIp: '10.88.0.5', containerPort: 80, bridge: 'vessel0' }],
};

test('renderRuleset: exact output for one network and one port', () => {
  assert.equal(
    renderRuleset(basic),
    `table ip vessel_1a2b3c4d {}
delete table ip vessel_1a2b3c4d
table ip vessel_1a2b3c4d {
  comment "managed by vessel; rewritten as a whole on every change"
  chain ports {
    tcp dport 8080 dnat to 10.88.0.5:80
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local jump ports
  }
  chain output {
    type nat hook output priority -100; policy accept;
    fib daddr type local jump ports
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 10.88.0.0/16 oifname != "vessel0" masquerade
    oifname "vessel0" ip saddr 127.0.0.0/8 masquerade
    oifname "vessel0" ip saddr 10.88.0.0/16 ct status dnat masquerade
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
  }
}
`,
  );
  assert.equal(renderRuleset(basic), renderRuleset(structuredClone(basic)), 'deterministic');
});

test('renderRuleset: empty state is a valid, empty table', () => {
  const text = renderRuleset({ table: 'vt_empty', networks: [], ports: [] });
  assert.ok(text.startsWith('table ip vt_empty {}\ndelete table ip vt_empty\ntable ip vt_empty {\n'));
  assert.match(text, /chain ports \{\n  \}/);
  assert.doesNotMatch(text, /masquerade|dnat to|drop/);
});

const multi: NftState = {
  table: 'vt_multi',
  networks: [
    { bridge: 'br-a', subnet: '10.213.1.77/24', internal: false },
    { bridge: 'br-b', subnet: '10.213.2.0/24', internal: false },
    { bridge: 'br-int', subnet: '10.213.3.0/24', internal: true },
  ],
  ports: [
    { proto: 'tcp', hostIp: '127.0.0.1', hostPort: 8080, containerIp: '10.213.1.2', containerPort: 80, bridge: 'br-a' },
    { proto: 'tcp', hostIp: '192.0.2.2', hostPort: 8080, containerIp: '10.213.2.2', containerPort: 80, bridge: 'br-b' },
    { proto: 'udp', hostIp: '0.0.0.0', hostPort: 8080, containerIp: '10.213.1.2', containerPort: 53, bridge: 'br-a' },
  ],
};

test('renderRuleset: several networks, internal network, host IPs, udp', () => {
  const text = renderRuleset(multi);
  const lines = text.split('\n').map((l) => l.trim());
  // Subnets are normalised.
  assert.ok(lines.includes('ip saddr 10.213.1.0/24 oifname != "br-a" masquerade'));
  assert.ok(lines.includes('ip saddr 10.213.2.0/24 oifname != "br-b" masquerade'));
  // No egress NAT for the internal network, but loopback/hairpin NAT into it is still there.
  assert.ok(!lines.some((l) => l.startsWith('ip saddr 10.213.3.0/24 oifname !=')));
  assert.ok(lines.includes('oifname "br-int" ip saddr 127.0.0.0/8 masquerade'));
  // DNAT: host IPs, 0.0.0.0 means all.
  assert.ok(lines.includes('ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.213.1.2:80'));
  assert.ok(lines.includes('ip daddr 192.0.2.2 tcp dport 8080 dnat to 10.213.2.2:80'));
  assert.ok(lines.includes('udp dport 8080 dnat to 10.213.1.2:53'));
  // Isolation between every pair of bridges.
  assert.ok(lines.includes('iifname "br-a" oifname { "br-b", "br-int" } drop'));
  assert.ok(lines.includes('iifname "br-b" oifname { "br-a", "br-int" } drop'));
  assert.ok(lines.includes('iifname "br-int" oifname { "br-a", "br-b" } drop'));
  // Internal network: nothing leaves, only replies come in.
  const i = lines.indexOf('iifname "br-int" oifname != "br-int" drop');
  assert.ok(i > 0);
  assert.equal(lines[i + 1], 'oifname "br-int" iifname != "br-int" ct state established,related accept');
  assert.equal(lines[i + 2], 'oifname "br-int" iifname != "br-int" drop');
  // Every chain is declared once.
  for (const c of ['ports', 'prerouting', 'output', 'postrouting', 'forward']) {
    assert.equal(lines.filter((l) => l === `chain ${c} {`).length, 1, c);
  }
});

test('renderRuleset: validation', () => {
  const bad = (patch: Partial<NftState>, kind: typeof InvalidArgumentError | typeof ConflictError = InvalidArgumentError): void => {
    assert.throws(() => renderRuleset({ ...basic, ...patch }), kind, JSON.stringify(patch));
  };
  const port = basic.ports[0]!;
  bad({ table: 'bad-name' });
  bad({ table: '1abc' });
  bad({ table: 'x; flush ruleset' });
  bad({ networks: [{ bridge: 'a"b', subnet: '10.1.0.0/16', internal: false }], ports: [] });
  bad({ networks: [{ bridge: 'x'.repeat(16), subnet: '10.1.0.0/16', internal: false }], ports: [] });
  bad({ networks: [{ bridge: 'br0', subnet: '10.1.0.0/33', internal: false }], ports: [] });
  bad({ networks: [...basic.networks, { bridge: 'vessel0', subnet: '10.2.0.0/16', internal: false }] });
  bad({ ports: [{ ...port, hostPort: 0 }] });
  bad({ ports: [{ ...port, hostPort: 65536 }] });
  bad({ ports: [{ ...port, containerPort: 1.5 }] });
  bad({ ports: [{ ...port, containerIp: '10.88.0' }] });
  bad({ ports: [{ ...port, hostIp: '::1' }] });
  bad({ ports: [{ ...port, proto: 'sctp' as 'tcp' }] });
  bad({ ports: [{ ...port, bridge: 'unknown0' }] });
  // Conflicts: same proto/port on overlapping host addresses.
  bad({ ports: [port, { ...port, containerIp: '10.88.0.6' }] }, ConflictError);
  bad({ ports: [port, { ...port, hostIp: '127.0.0.1' }] }, ConflictError);
  bad({ ports: [{ ...port, hostIp: '127.0.0.1' }, { ...port, hostIp: '0.0.0.0' }] }, ConflictError);
  bad({ ports: [{ ...port, hostIp: '127.0.0.1' }, { ...port, hostIp: '127.0.0.1' }] }, ConflictError);
  // Not conflicts: different protocol, different specific host addresses.
  assert.doesNotThrow(() => renderRuleset({ ...basic, ports: [port, { ...port, proto: 'udp' }] }));
  assert.doesNotThrow(() =>
    renderRuleset({ ...basic, ports: [{ ...port, hostIp: '127.0.0.1' }, { ...port, hostIp: '127.0.0.2' }] }),
  );
  assert.throws(
    () => renderRuleset({ ...basic, ports: [port, port] }),
    (e: unknown) => e instanceof ConflictError && e.message === 'Port already allocated: 0.0.0.0:8080/tcp',
  );
});

// ---------------------------------------------------------------- real: nft only

interface NftJson {
  nftables: {
    table?: { name: string };
    chain?: { table: string; name: string; hook?: string; type?: string; prio?: number; policy?: string };
    rule?: { table: string; chain: string; expr: unknown[] };
  }[];
}

async function listTableJson(table: string): Promise<NftJson> {
  return JSON.parse((await run('nft', ['-j', 'list', 'table', 'ip', table])).stdout) as NftJson;
}

test('nft accepts the rendered ruleset (check mode, nothing applied)', async () => {
  requireRoot();
  await run('nft', ['-c', '-f', '-'], { input: renderRuleset(multi) });
});

test('applyRuleset creates the table; re-applying is idempotent; deleteTable removes it', async () => {
  requireRoot();
  const table = `${TABLE}_a`;
  const state: NftState = { ...multi, table };
  try {
    await deleteTable(table); // idempotent on a missing table
    assert.equal(await tableExists(table), false);
    await applyRuleset(state);
    assert.equal(await tableExists(table), true);
    assert.ok((await listTables(`${TABLE}_`)).includes(table));

    const j = await listTableJson(table);
    const chains = j.nftables.flatMap((x) => (x.chain ? [x.chain] : []));
    const byName = new Map(chains.map((c) => [c.name, c]));
    assert.deepEqual([...byName.keys()].sort(), ['forward', 'output', 'ports', 'postrouting', 'prerouting']);
    assert.deepEqual([byName.get('prerouting')!.type, byName.get('prerouting')!.hook, byName.get('prerouting')!.prio], ['nat', 'prerouting', -100]);
    assert.deepEqual([byName.get('output')!.type, byName.get('output')!.hook, byName.get('output')!.prio], ['nat', 'output', -100]);
    assert.deepEqual([byName.get('postrouting')!.type, byName.get('postrouting')!.hook, byName.get('postrouting')!.prio], ['nat', 'postrouting', 100]);
    assert.deepEqual([byName.get('forward')!.type, byName.get('forward')!.hook, byName.get('forward')!.prio], ['filter', 'forward', 0]);
    for (const c of chains) if (c.hook) assert.equal(c.policy, 'accept');
    const rules = j.nftables.flatMap((x) => (x.rule ? [x.rule] : []));
    const count = (chain: string): number => rules.filter((r) => r.chain === chain).length;
    assert.equal(count('ports'), 3);
    assert.equal(count('postrouting'), 2 + 3 * 2);
    assert.equal(count('forward'), 3 + 3);
    const text = JSON.stringify(rules);
    assert.match(text, /"dnat":\{"addr":"10.213.1.2","port":80\}/);
    assert.match(text, /"masquerade"/);

    // Re-apply: same content, no duplicates.
    await applyRuleset(state);
    const again = (await listTableJson(table)).nftables.flatMap((x) => (x.rule ? [x.rule] : []));
    assert.equal(again.length, rules.length);

    // A changed state replaces the table as a whole.
    await applyRuleset({ table, networks: [multi.networks[0]!], ports: [] });
    const changed = (await listTableJson(table)).nftables.flatMap((x) => (x.rule ? [x.rule] : []));
    assert.equal(changed.filter((r) => r.chain === 'ports').length, 0);
    assert.equal(changed.filter((r) => r.chain === 'forward').length, 0);

    await deleteTable(table);
    assert.equal(await tableExists(table), false);
    await deleteTable(table);
  } finally {
    await deleteTable(table);
  }
});

test('a failing nft script leaves the previous table untouched (the atomicity applyRuleset relies on)', async () => {
  requireRoot();
  const table = `${TABLE}_e`;
  try {
    await applyRuleset({ table, networks: [multi.networks[0]!], ports: [] });
    const broken = renderRuleset({ table, networks: [], ports: [] }).replace('chain forward {', 'chain forward {\n    bogus statement');
    const r = await run('nft', ['-f', '-'], { input: broken, reject: false });
    assert.notEqual(r.exitCode, 0);
    const rules = (await listTableJson(table)).nftables.flatMap((x) => (x.rule ? [x.rule] : []));
    assert.equal(rules.filter((x) => x.chain === 'postrouting').length, 3, 'old ruleset still in place');
  } finally {
    await deleteTable(table);
  }
});

// ---------------------------------------------------------------- real: end to end

function spawnServer(netns: string, script: string): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', netns, 'python3', '-u', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server in ${netns} did not start: ${err}`));
    }, 10_000);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server in ${netns} exited (${code}): ${err}`));
    });
  });
}

/** TCP server answering every connection with `<tag> <peer address>\n`. */
function tcpServerScript(ip: string, port: number, tag: string): string {
  return [
    'import socket',
    's = socket.socket(socket.AF_INET, socket.SOCK_STREAM)',
    's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
    `s.bind(('${ip}', ${port}))`,
    's.listen(16)',
    'print("ready", flush=True)',
    'while True:',
    '    c, a = s.accept()',
    `    c.sendall(('${tag} ' + a[0] + '\\n').encode())`,
    '    c.close()',
  ].join('\n');
}

function udpEchoScript(ip: string, port: number): string {
  return [
    'import socket',
    's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
    `s.bind(('${ip}', ${port}))`,
    'print("ready", flush=True)',
    'while True:',
    '    d, a = s.recvfrom(2048)',
    "    s.sendto(b'echo ' + d + b' ' + a[0].encode(), a)",
  ].join('\n');
}

/** Connects from inside `netns` and returns what the server sent, or null when it could not connect. */
async function tcpFromNetns(netns: string, ip: string, port: number): Promise<string | null> {
  const script = [
    'import socket, sys',
    'try:',
    `    s = socket.create_connection(('${ip}', ${port}), timeout=2)`,
    '    print(s.recv(200).decode().strip())',
    'except OSError as e:',
    '    print("ERR", e); sys.exit(3)',
  ].join('\n');
  const r = await run('ip', ['netns', 'exec', netns, 'python3', '-c', script], { reject: false, timeoutMs: 10_000 });
  return r.exitCode === 0 ? r.stdout.trim() : null;
}

/** Connects from the host (only used with 127.0.0.1 and the test's own interface addresses). */
function tcpFromHost(ip: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: ip, port, timeout: 3000 });
    let data = '';
    sock.on('data', (d) => (data += d.toString()));
    sock.on('end', () => resolve(data.trim()));
    sock.on('timeout', () => {
      sock.destroy();
      reject(new Error(`timeout connecting to ${ip}:${port}`));
    });
    sock.on('error', reject);
  });
}

function udpFromHost(ip: string, port: number, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`no UDP reply from ${ip}:${port}`));
    }, 3000);
    sock.on('message', (d) => {
      clearTimeout(timer);
      sock.close();
      resolve(d.toString());
    });
    sock.send(msg, port, ip);
  });
}

async function ping(netns: string, ip: string): Promise<boolean> {
  const r = await run('ip', ['netns', 'exec', netns, 'busybox', 'ping', '-c', '1', '-W', '2', ip], { reject: false, timeoutMs: 10_000 });
  return r.exitCode === 0;
}

test('end to end: egress masquerade, published ports (host, loopback, outside, hairpin), isolation, internal', async () => {
  requireRoot();
  assert.doesNotThrow(() => execFileSync('python3', ['-c', 'pass']), 'needs python3');
  assert.doesNotThrow(() => execFileSync('busybox', ['ping', '--help'], { stdio: 'ignore' }), 'needs busybox (ping)');

  const table = `${TABLE}_x`;
  const br = `${TAG}-br`;
  const br2 = `${TAG}-br2`;
  const ctr = `${TAG}-ctr`;
  const ctr2 = `${TAG}-ctr2`;
  const outside = `${TAG}-out`;
  const hostOut = `${TAG}-ho`;
  const servers: ChildProcess[] = [];
  try {
    await enableForwarding();
    await ensureBridge(br, '10.213.1.1/24');
    await ensureBridge(br2, '10.215.1.1/24');
    await createNetns(ctr);
    await createNetns(ctr2);
    await createNetns(outside);
    await addVethToNetns({ hostIf: `${TAG}-hc`, netns: ctr, bridge: br, ifName: 'eth0', address: '10.213.1.2/24', gateway: '10.213.1.1' });
    await addVethToNetns({ hostIf: `${TAG}-hc2`, netns: ctr2, bridge: br2, ifName: 'eth0', address: '10.215.1.2/24', gateway: '10.215.1.1' });
    // The "outside world": a namespace behind a plain veth pair, not a bridge.
    await run('ip', ['-batch', '-'], {
      input: [
        `link add ${hostOut} type veth peer name eth0 netns ${outside}`,
        `addr add 10.214.0.1/24 dev ${hostOut}`,
        `link set dev ${hostOut} up`,
      ].join('\n') + '\n',
    });
    await run('ip', ['-n', outside, '-batch', '-'], { input: 'addr add 10.214.0.2/24 dev eth0\nlink set dev eth0 up\n' });

    servers.push(await spawnServer(outside, tcpServerScript('10.214.0.2', 9000, 'outside')));
    servers.push(await spawnServer(ctr, tcpServerScript('10.213.1.2', 8080, 'ctr')));
    servers.push(await spawnServer(ctr, udpEchoScript('10.213.1.2', 5300)));

    const net1 = { bridge: br, subnet: '10.213.1.0/24', internal: false };
    const ports: NftState['ports'] = [
      { proto: 'tcp', hostIp: null, hostPort: 18080, containerIp: '10.213.1.2', containerPort: 8080, bridge: br },
      { proto: 'udp', hostIp: '127.0.0.1', hostPort: 18053, containerIp: '10.213.1.2', containerPort: 5300, bridge: br },
    ];
    await applyRuleset({ table, networks: [net1], ports });

    // Egress: reachable, and the outside sees the host's address (masqueraded).
    assert.ok(await ping(ctr, '10.214.0.2'), 'ping ctr → outside');
    assert.equal(await tcpFromNetns(ctr, '10.214.0.2', 9000), 'outside 10.214.0.1');

    // Published port from the host via loopback (route_localnet + masquerade) and via the host's address.
    assert.equal(await tcpFromHost('127.0.0.1', 18080), 'ctr 10.213.1.1');
    // Host to its own address: the source stays that address (no NAT needed, replies come back to the host).
    assert.equal(await tcpFromHost('10.214.0.1', 18080), 'ctr 10.214.0.1');
    assert.equal(await udpFromHost('127.0.0.1', 18053, 'hi'), 'echo hi 10.213.1.1');
    // From the outside namespace: DNAT in prerouting; the client address is preserved.
    assert.equal(await tcpFromNetns(outside, '10.214.0.1', 18080), 'ctr 10.214.0.2');
    // Hairpin: the container reaches its own published port through a host address.
    assert.equal(await tcpFromNetns(ctr, '10.214.0.1', 18080), 'ctr 10.213.1.1');
    // Ports not published are not forwarded.
    assert.equal(await tcpFromNetns(outside, '10.214.0.1', 18081), null);

    // Isolation: with only net1 in the ruleset, ctr reaches ctr2; once both networks are managed, it does not.
    assert.ok(await ping(ctr, '10.215.1.2'), 'without isolation rules the bridges are routed');
    const net2 = { bridge: br2, subnet: '10.215.1.0/24', internal: false };
    await applyRuleset({ table, networks: [net1, net2], ports });
    assert.ok(!(await ping(ctr, '10.215.1.2')), 'ctr → ctr2 must be dropped');
    assert.ok(!(await ping(ctr2, '10.213.1.2')), 'ctr2 → ctr must be dropped');
    assert.ok(await ping(ctr2, '10.214.0.2'), 'ctr2 still reaches the outside');
    assert.ok(await ping(ctr, '10.214.0.2'), 'ctr still reaches the outside');

    // Internal: nothing in or out, the host itself still reaches it.
    await applyRuleset({ table, networks: [{ ...net1, internal: true }, net2], ports });
    assert.ok(!(await ping(ctr, '10.214.0.2')), 'internal network must not reach the outside');
    assert.equal(await tcpFromNetns(ctr, '10.214.0.2', 9000), null);
    assert.equal(await tcpFromNetns(outside, '10.214.0.1', 18080), null, 'published port of an internal network is not reachable from outside');
    assert.equal(await tcpFromHost('127.0.0.1', 18080), 'ctr 10.213.1.1');

    // Back to non-internal: works again (the ruleset is a pure function of the state).
    await applyRuleset({ table, networks: [net1, net2], ports });
    assert.ok(await ping(ctr, '10.214.0.2'));
  } finally {
    for (const s of servers) s.kill('SIGKILL');
    await deleteTable(table);
    for (const ns of await listNetns(TAG)) await deleteNetns(ns);
    for (const l of await listLinks(TAG)) await deleteLink(l);
  }
});
