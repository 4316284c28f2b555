/**
 * `bench/net-throughput [--seconds N] [--runs R] [--json] [--no-netns] [--no-diag]`
 *
 * TCP throughput (iperf3, one stream, N seconds per measurement) over the
 * paths a container's traffic takes, side by side and interleaved round-robin
 * so that drift on a noisy machine hits every path equally:
 *
 *   (base)       a raw veth pair between two network namespaces the bench
 *                makes itself (10.220.0.0/30), with the MTU vessel gives its
 *                veths: the floor;
 *   (bridge)     container → container on a `vessel network create` network;
 *   (published)  host → `-p 127.0.0.1:HOSTPORT:5201` (nftables DNAT from the
 *                output hook, hairpin masquerade);
 *   (pubns)      a client in a bench namespace behind a veth to the host
 *                (10.221.0.x/30) → `-p 10.221.0.1:HOSTPORT2:5201` (DNAT in
 *                prerouting, then forwarded into the bridge);
 *   (rawbr)      diagnostic: two namespaces joined by a bridge inside a third
 *                bench namespace, bridge-nf-call-iptables=0 there (no
 *                netfilter at all);
 *   (nfbr)       diagnostic: the same bridge with br_netfilter on and an
 *                nftables table shaped like vessel's (nat prerouting /
 *                postrouting, filter forward), so conntrack and the hooks run.
 *
 * Containers run the host's iperf3 with /usr, /lib and /lib64 bind-mounted
 * read-only (busybox has no iperf3). Only loopback and addresses inside
 * namespaces this bench or its private daemon create are ever used.
 * Everything is removed at the end, also on Ctrl-C or failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import {
  BenchDaemon,
  execOk,
  execTimed,
  loadAverage,
  machineLine,
  note,
  onCleanup,
  r2,
  requireRoot,
  parseBenchFlags,
  runMain,
  sleep,
  summarize,
  toolVersion,
  VESSEL,
  ensureTool,
  which,
  type Summary,
} from './lib.js';

const USAGE = `Usage: bench/net-throughput [--seconds N] [--runs R] [--json] [--no-netns] [--no-diag]

  --seconds N   length of each iperf3 measurement (default 5, 1–60)
  --runs R      rounds (default 3); each round measures every path once
  --json        print a machine-readable summary on stdout (progress goes to stderr)
  --no-netns    skip (pubns), the client in a bench namespace behind a host veth
  --no-diag     skip the diagnostic bench-made bridges (rawbr) and (nfbr)
`;

interface Options {
  seconds: number;
  runs: number;
  json: boolean;
  netns: boolean;
  diag: boolean;
}

function parseArgs(argv: string[]): Options {
  const seconds = { key: 'seconds', int: [1, 60] } as const;
  const runs = { key: 'runs', int: [1, 100] } as const;
  return parseBenchFlags(argv, USAGE, { seconds: 5, runs: 3, json: false, netns: true, diag: true }, {
    '--seconds': seconds,
    '-t': seconds,
    '--runs': runs,
    '-n': runs,
    '--json': { key: 'json', set: true },
    '--no-netns': { key: 'netns', set: false },
    '--no-diag': { key: 'diag', set: false },
  });
}

// ---- host helpers -------------------------------------------------------------

const IPERF_PORT = 5201;

/** `ip ...`, throwing with its output on failure. */
const ip = (args: string[]) => execOk('ip', args, { timeoutMs: 30_000 });
/** Best-effort, synchronous (for cleanup steps). */
const ipQuiet = (args: string[]) => spawnSync('ip', args, { stdio: 'ignore', timeout: 30_000 });

function linkExists(name: string, netns?: string): boolean {
  const args = netns ? ['-n', netns, 'link', 'show', name] : ['link', 'show', name];
  return spawnSync('ip', args, { stdio: 'ignore' }).status === 0;
}

function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

/** IPv4 prefixes the host routes or has on an interface (to keep 10.221.x.y/30 clear of them). */
function hostPrefixes(): Array<[number, number]> {
  const toInt = (a: string) => a.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  const out: Array<[number, number]> = [];
  const add = (cidr: string) => {
    const [addr, len] = cidr.split('/');
    if (!addr || !/^\d+\.\d+\.\d+\.\d+$/.test(addr)) return;
    const bits = len === undefined ? 32 : Number(len);
    const size = 2 ** (32 - bits);
    const start = Math.floor(toInt(addr) / size) * size;
    out.push([start, start + size - 1]);
  };
  const routes = spawnSync('ip', ['-j', 'route', 'show', 'table', 'all'], { encoding: 'utf8' });
  try {
    for (const r of JSON.parse(routes.stdout || '[]') as Array<{ dst?: string }>) if (r.dst && r.dst !== 'default') add(r.dst);
  } catch {
    /* no JSON: nothing known */
  }
  const addrs = spawnSync('ip', ['-j', '-4', 'addr'], { encoding: 'utf8' });
  try {
    for (const l of JSON.parse(addrs.stdout || '[]') as Array<{ addr_info?: Array<{ local: string; prefixlen: number }> }>) {
      for (const a of l.addr_info ?? []) add(`${a.local}/${a.prefixlen}`);
    }
  } catch {
    /* ignore */
  }
  return out;
}

/** The first 10.221.0.(4k)/30 that no host route or address overlaps. */
function freeHostSlash30(): { host: string; peer: string } {
  const taken = hostPrefixes();
  const base = (10 << 24) + (221 << 16);
  for (let k = 0; k < 64; k++) {
    const start = base + 4 * k;
    if (taken.some(([a, b]) => a <= start + 3 && start <= b)) continue;
    const s = (x: number) => [x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255].join('.');
    return { host: s(start + 1), peer: s(start + 2) };
  }
  throw new Error('no free /30 in 10.221.0.0/24 on this host');
}

/** A TCP port nothing listens on at `host` right now (the daemon re-checks it at container start). */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ port: 0, host, exclusive: true }, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function readSysctl(p: string): string {
  try {
    return readFileSync(`/proc/sys/${p}`, 'utf8').trim();
  } catch {
    return '-';
  }
}

/** Hooked nftables base chains in the host namespace, by hook (every one runs for each packet through that hook). */
function hostHookedChains(): { tables: number; chains: Record<string, number> } {
  const r = spawnSync('nft', ['-j', 'list', 'chains'], { encoding: 'utf8', timeout: 10_000 });
  const chains: Record<string, number> = {};
  const tables = new Set<string>();
  try {
    const items = (JSON.parse(r.stdout || '{}') as { nftables?: Array<{ chain?: { family: string; table: string; hook?: string } }> }).nftables ?? [];
    for (const it of items) {
      const c = it.chain;
      if (!c?.hook) continue;
      tables.add(`${c.family} ${c.table}`);
      const k = `${c.family}/${c.hook}`;
      chains[k] = (chains[k] ?? 0) + 1;
    }
  } catch {
    /* nft missing or no JSON */
  }
  return { tables: tables.size, chains };
}

// ---- iperf3 ---------------------------------------------------------------------

interface Sample {
  gbps: number;
  retransmits: number;
  /** CPU use of the sending and receiving iperf3, % of one core. */
  cpuSender: number;
  cpuReceiver: number;
}

function parseIperf(stdout: string, what: string): Sample {
  let j: {
    error?: string;
    end?: {
      sum_received?: { bits_per_second?: number };
      sum_sent?: { retransmits?: number };
      cpu_utilization_percent?: { host_total?: number; remote_total?: number };
    };
  };
  try {
    j = JSON.parse(stdout);
  } catch {
    throw new Error(`${what}: iperf3 printed no JSON:\n${stdout.slice(0, 2000)}`);
  }
  if (j.error) throw new Error(`${what}: iperf3: ${j.error}`);
  const bps = j.end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number') throw new Error(`${what}: iperf3 JSON without end.sum_received`);
  return {
    gbps: bps / 1e9,
    retransmits: j.end?.sum_sent?.retransmits ?? 0,
    cpuSender: j.end?.cpu_utilization_percent?.host_total ?? NaN,
    cpuReceiver: j.end?.cpu_utilization_percent?.remote_total ?? NaN,
  };
}

/** iperf3 client arguments: one TCP stream to host:port for `seconds`, JSON out, bounded connect. */
function clientArgs(host: string, port: number, seconds: number): string[] {
  return ['-c', host, '-p', String(port), '-t', String(seconds), '-J', '--connect-timeout', '3000'];
}

/** Runs an iperf3 client command line (`cmd args`) and parses its result. */
async function runClient(what: string, cmd: string, args: string[], seconds: number): Promise<Sample> {
  const r = await execTimed(cmd, args, { capture: true, timeoutMs: (seconds + 20) * 1000 });
  if (r.code !== 0) {
    let msg = r.stderr.trim();
    try {
      msg = (JSON.parse(r.stdout) as { error?: string }).error ?? msg;
    } catch {
      /* not JSON */
    }
    throw new Error(`${what}: iperf3 client exited ${r.code}: ${msg}`);
  }
  return parseIperf(r.stdout, what);
}

/** A host-side iperf3 server (run in a namespace through `ip netns exec`), killed at cleanup. */
function spawnServer(netns: string, bind: string, iperf3: string): ChildProcess {
  // `ip netns exec` execs iperf3 itself, so this child's pid is iperf3's.
  const child = spawn('ip', ['netns', 'exec', netns, iperf3, '-s', '-B', bind, '-p', String(IPERF_PORT)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  child.on('exit', (code, sig) => {
    if (!stopping.has(child)) note(`iperf3 server in ${netns} exited (${code ?? sig}): ${err.trim()}`);
  });
  onCleanup(`iperf3 server in ${netns}`, () => stopChild(child));
  return child;
}

const stopping = new Set<ChildProcess>();
async function stopChild(child: ChildProcess): Promise<void> {
  stopping.add(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(t);
}

// ---- namespaces -------------------------------------------------------------------

/** `ip netns add`, loopback up, deleted at cleanup (with every veth end inside it). */
async function addNetns(name: string): Promise<void> {
  if (netnsExists(name)) throw new Error(`network namespace ${name} already exists`);
  onCleanup(`netns ${name}`, () => {
    if (netnsExists(name)) ipQuiet(['netns', 'del', name]);
  });
  await ip(['netns', 'add', name]);
  await ip(['-n', name, 'link', 'set', 'lo', 'up']);
}

/** A veth pair `a`/`b` with both ends' namespaces given (undefined: the host). */
async function addVeth(a: string, aNs: string | undefined, b: string, bNs: string | undefined, mtu: number): Promise<void> {
  onCleanup(`veth ${a}`, () => {
    if (linkExists(a, aNs)) ipQuiet([...(aNs ? ['-n', aNs] : []), 'link', 'del', a]);
  });
  await ip(['link', 'add', a, 'mtu', String(mtu), ...(aNs ? ['netns', aNs] : []), 'type', 'veth', 'peer', 'name', b, 'mtu', String(mtu), ...(bNs ? ['netns', bNs] : [])]);
}

async function upWithAddr(netns: string | undefined, dev: string, cidr: string | null): Promise<void> {
  const n = netns ? ['-n', netns] : [];
  if (cidr) await ip([...n, 'addr', 'add', cidr, 'dev', dev]);
  await ip([...n, 'link', 'set', dev, 'up']);
}

// ---- main -------------------------------------------------------------------------------

interface Variant {
  key: string;
  label: string;
  path: string;
  diag: boolean;
  run: (seconds: number) => Promise<Sample>;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  requireRoot();
  if (!which('ip')) throw new Error('iproute2 (`ip`) not found');
  const iperf3 = ensureTool('iperf3');

  const loadStart = loadAverage();
  const totalS = opts.runs * opts.seconds * (3 + (opts.netns ? 1 : 0) + (opts.diag ? 2 : 0));
  note(`net-throughput: ${opts.runs} rounds × ${opts.seconds} s per path, paths interleaved round-robin (≈ ${totalS} s of iperf3)`);
  note(`machine: ${machineLine()}; load average ${loadStart}`);

  const tag = `${process.pid}`;
  const vtag = (process.pid % 0x10000).toString(16);
  const nsName = (x: string) => `vessel-nt-${tag}-${x}`;

  // Host objects the private daemon leaves behind when it stops (its bridges and
  // nft table stay by design): registered first, so this runs after the daemon is gone.
  const daemonLeftovers: { bridges: string[]; table: string | null } = { bridges: [], table: null };
  onCleanup('daemon bridges and nft table', () => {
    for (const b of daemonLeftovers.bridges) if (linkExists(b)) ipQuiet(['link', 'del', b]);
    if (daemonLeftovers.table) spawnSync('nft', ['delete', 'table', 'ip', daemonLeftovers.table], { stdio: 'ignore' });
  });

  // ---- the private daemon, its network, the containers ------------------------------
  const d = new BenchDaemon('vessel-bench-');
  daemonLeftovers.table = `vessel_${d.cgroupParent.replace(/^\/vessel-/, '')}`;
  note('starting a private vesseld');
  await d.start();
  const bridgeInfo = JSON.parse(await d.ok(['network', 'inspect', 'bridge'])) as Array<{ Options?: Record<string, string> }>;
  const defBridge = bridgeInfo[0]?.Options?.['com.docker.network.bridge.name'];
  if (defBridge) daemonLeftovers.bridges.push(defBridge);
  note('bootstrapping busybox into it');
  await d.bootstrapBusybox();

  const netName = `vnt-${tag}`;
  onCleanup(`vessel network ${netName}`, async () => {
    await d.cli(['network', 'rm', netName], { timeoutMs: 30_000 }).catch(() => null);
  });
  await d.ok(['network', 'create', netName]);
  const netInfo = JSON.parse(await d.ok(['network', 'inspect', netName])) as Array<{
    Options?: Record<string, string>;
    IPAM?: { Config?: Array<{ Subnet?: string }> };
  }>;
  const userBridge = netInfo[0]?.Options?.['com.docker.network.bridge.name'] ?? '?';
  if (userBridge !== '?') daemonLeftovers.bridges.push(userBridge);
  const userSubnet = netInfo[0]?.IPAM?.Config?.[0]?.Subnet ?? '?';

  // (pubns)'s host veth first: the daemon bind-tests 10.221.0.1:PORT when it publishes it.
  let pubns: { ns: string; hostIp: string; peerIp: string } | null = null;
  const hostVeth = `vnt${vtag}h0`;
  const mounts = ['-v', '/usr:/usr:ro', '-v', '/lib:/lib:ro', '-v', '/lib64:/lib64:ro'];
  const srvName = `vnt-srv-${tag}`;
  const cliName = `vnt-cli-${tag}`;
  // Containers go before the network (registered later → removed first).
  onCleanup('containers', async () => {
    await d.cli(['rm', '-f', srvName, cliName], { timeoutMs: 60_000 }).catch(() => null);
  });

  // A throwaway container first, only to read the MTU vessel gives its veths.
  const cliId = (await d.ok(['run', '-d', '--network', netName, '--name', cliName, ...mounts, 'busybox', 'sleep', '3600'])).trim();
  const mtu = Number((await d.ok(['exec', cliName, 'cat', '/sys/class/net/eth0/mtu'])).trim());
  if (!Number.isInteger(mtu) || mtu < 576) throw new Error(`could not read the container's eth0 MTU (got ${mtu})`);
  note(`vessel veth MTU: ${mtu}; user network ${netName} on bridge ${userBridge} (${userSubnet})`);

  if (opts.netns) {
    const { host, peer } = freeHostSlash30();
    const ns = nsName('c');
    await addNetns(ns);
    await addVeth(hostVeth, undefined, 'eth0', ns, mtu);
    await upWithAddr(undefined, hostVeth, `${host}/30`);
    await upWithAddr(ns, 'eth0', `${peer}/30`);
    pubns = { ns, hostIp: host, peerIp: peer };
  }

  const loPort = await freePort('127.0.0.1');
  const nsPort = pubns ? await freePort(pubns.hostIp) : 0;
  const publish = ['-p', `127.0.0.1:${loPort}:${IPERF_PORT}`, ...(pubns ? ['-p', `${pubns.hostIp}:${nsPort}:${IPERF_PORT}`] : [])];
  await d.ok(['run', '-d', '--network', netName, '--name', srvName, ...publish, ...mounts, 'busybox', '/usr/bin/iperf3', '-s', '-p', String(IPERF_PORT)]);
  const srvIp = (await d.ok(['inspect', '-f', `{{.NetworkSettings.Networks.${netName}.IPAddress}}`, srvName])).trim();
  const cliIp = (await d.ok(['inspect', '-f', `{{.NetworkSettings.Networks.${netName}.IPAddress}}`, cliId])).trim();
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(srvIp)) throw new Error(`no IP address for ${srvName}: '${srvIp}'`);
  note(`server container ${srvName} at ${srvIp}, client container ${cliName} at ${cliIp}; published 127.0.0.1:${loPort}${pubns ? `, ${pubns.hostIp}:${nsPort}` : ''} → ${IPERF_PORT}`);

  // ---- (base): raw veth between two bench namespaces ----------------------------------
  const nsA = nsName('a');
  const nsB = nsName('b');
  await addNetns(nsA);
  await addNetns(nsB);
  await addVeth('eth0', nsA, 'eth0', nsB, mtu);
  await upWithAddr(nsA, 'eth0', '10.220.0.1/30');
  await upWithAddr(nsB, 'eth0', '10.220.0.2/30');
  spawnServer(nsA, '10.220.0.1', iperf3);

  // ---- diagnostics: a bench-made bridge, without and with netfilter --------------------
  const diagBridges: Array<{ key: string; nsX: string; nsY: string }> = [];
  if (opts.diag) {
    for (const [key, nf, octet] of [['rawbr', false, 222], ['nfbr', true, 223]] as const) {
      const nsBr = nsName(`${key}`);
      const nsX = nsName(`${key}x`);
      const nsY = nsName(`${key}y`);
      for (const n of [nsBr, nsX, nsY]) await addNetns(n);
      await ip(['-n', nsBr, 'link', 'add', 'br0', 'type', 'bridge']);
      await ip(['-n', nsBr, 'link', 'set', 'br0', 'up']);
      for (const [n, ipAddr, side] of [[nsX, `10.${octet}.0.1/29`, 'x'], [nsY, `10.${octet}.0.2/29`, 'y']] as const) {
        await addVeth(`v${side}`, nsBr, 'eth0', n, mtu);
        await ip(['-n', nsBr, 'link', 'set', `v${side}`, 'master', 'br0']);
        await upWithAddr(nsBr, `v${side}`, null);
        await upWithAddr(n, 'eth0', ipAddr);
      }
      // Per-namespace br_netfilter switches (kernel ≥ 5.3); the host's values are untouched.
      const v = nf ? '1' : '0';
      await execOk('ip', ['netns', 'exec', nsBr, 'sysctl', '-q', '-w', `net.bridge.bridge-nf-call-iptables=${v}`, `net.bridge.bridge-nf-call-ip6tables=${v}`, `net.bridge.bridge-nf-call-arptables=${v}`]).catch((e: Error) => {
        note(`(${key}): could not set bridge-nf-call-* in ${nsBr}: ${e.message.split('\n')[0]}`);
      });
      if (nf) {
        // Shaped like vessel's table: nat prerouting/postrouting (conntrack on), a filter forward chain.
        const rules = [
          'table ip nt {',
          '  chain ports { }',
          '  chain prerouting { type nat hook prerouting priority dstnat; policy accept; fib daddr type local jump ports; }',
          '  chain postrouting { type nat hook postrouting priority srcnat; policy accept;',
          `    ip saddr 10.${octet}.0.0/29 oifname != "br0" masquerade; }`,
          '  chain forward { type filter hook forward priority filter; policy accept; iifname "brX" oifname "br0" drop; }',
          '}',
        ].join('\n');
        const r = spawnSync('ip', ['netns', 'exec', nsBr, 'nft', '-f', '-'], { input: rules, encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`nft in ${nsBr}: ${r.stderr}`);
      }
      spawnServer(nsX, `10.${octet}.0.1`, iperf3);
      diagBridges.push({ key, nsX, nsY });
    }
  }

  // ---- the variants --------------------------------------------------------------------
  const variants: Variant[] = [
    {
      key: 'base',
      label: 'raw veth pair, bench netns → netns',
      path: `ip netns exec ${nsB} iperf3 -c 10.220.0.1 (veth, MTU ${mtu}, no bridge, no netfilter)`,
      diag: false,
      run: (s) => runClient('base', 'ip', ['netns', 'exec', nsB, iperf3, ...clientArgs('10.220.0.1', IPERF_PORT, s)], s),
    },
    {
      key: 'bridge',
      label: 'container → container, vessel network',
      path: `vessel exec ${cliName} iperf3 -c ${srvIp} (veth → ${userBridge} → veth)`,
      diag: false,
      run: (s) => runClient('bridge', VESSEL, ['--host', d.host, 'exec', cliName, '/usr/bin/iperf3', ...clientArgs(srvIp, IPERF_PORT, s)], s),
    },
    {
      key: 'published',
      label: 'host → -p 127.0.0.1:PORT (DNAT)',
      path: `iperf3 -c 127.0.0.1 -p ${loPort} (output DNAT → ${userBridge} → veth)`,
      diag: false,
      run: (s) => runClient('published', iperf3, clientArgs('127.0.0.1', loPort, s), s),
    },
  ];
  if (pubns) {
    const p = pubns;
    variants.push({
      key: 'pubns',
      label: 'bench netns → host veth → -p HOSTIP:PORT',
      path: `ip netns exec ${p.ns} iperf3 -c ${p.hostIp} -p ${nsPort} (veth → prerouting DNAT → forward → ${userBridge} → veth)`,
      diag: false,
      run: (s) => runClient('pubns', 'ip', ['netns', 'exec', p.ns, iperf3, ...clientArgs(p.hostIp, nsPort, s)], s),
    });
  }
  for (const b of diagBridges) {
    const octet = b.key === 'rawbr' ? 222 : 223;
    variants.push({
      key: b.key,
      label: b.key === 'rawbr' ? 'diag: bench bridge, no netfilter' : 'diag: bench bridge + br_netfilter + nft',
      path: `ip netns exec ${b.nsY} iperf3 -c 10.${octet}.0.1 (veth → br0 in a bench netns → veth${b.key === 'rawbr' ? ', bridge-nf-call-iptables=0' : ', bridge-nf-call-iptables=1, nat+filter chains like vessel\'s'})`,
      diag: true,
      run: (s) => runClient(b.key, 'ip', ['netns', 'exec', b.nsY, iperf3, ...clientArgs(`10.${octet}.0.1`, IPERF_PORT, s)], s),
    });
  }

  // ---- preflight: one 1-second run per path (servers may still be starting) ----------------
  note('preflight: 1 s per path');
  for (const v of variants) {
    let last: Error | null = null;
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        const s = await v.run(1);
        note(`  ${v.key}: ${s.gbps.toFixed(2)} Gbit/s`);
        last = null;
        break;
      } catch (e) {
        last = e as Error;
        await sleep(500);
      }
    }
    if (last) throw last;
  }

  // ---- rounds -----------------------------------------------------------------------
  const samples: Record<string, Sample[]> = Object.fromEntries(variants.map((v) => [v.key, []]));
  for (let round = 0; round < opts.runs; round++) {
    const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
    const line: string[] = [];
    for (const v of order) {
      const s = await v.run(opts.seconds);
      samples[v.key]!.push(s);
      line.push(`${v.key}=${s.gbps.toFixed(2)}`);
    }
    note(`round ${round + 1}/${opts.runs} (load ${loadAverage()}): ${line.join(' ')} Gbit/s`);
  }
  const loadEnd = loadAverage();

  // ---- results --------------------------------------------------------------------------
  const stats: Record<string, Summary> = {};
  for (const v of variants) stats[v.key] = summarize(samples[v.key]!.map((s) => s.gbps));
  const med = (k: string) => stats[k]?.median ?? NaN;
  const medOf = (k: string, f: (s: Sample) => number) => summarize(samples[k]!.map(f)).median;
  const ratio = (name: string, num: string, goal: number | null, what: string) => {
    const value = med(num) / med('base');
    return { name, what, value: r2(value), goal, pass: goal === null ? null : value >= goal };
  };
  const ratios = [
    ratio('bridge/base', 'bridge', 0.9, 'container → container over a vessel network'),
    ratio('published/base', 'published', 0.8, 'host → published port on 127.0.0.1 (DNAT)'),
    ...(pubns ? [ratio('pubns/base', 'pubns', 0.8, 'namespace → host veth → published port (DNAT + forward)')] : []),
    ...(opts.diag ? [ratio('rawbr/base', 'rawbr', null, 'diagnostic: a plain bridge hop, no netfilter'), ratio('nfbr/base', 'nfbr', null, 'diagnostic: bridge hop with br_netfilter + conntrack + nft')] : []),
  ];

  const hooks = hostHookedChains();
  const host = {
    bridgeNfCallIptables: readSysctl('net/bridge/bridge-nf-call-iptables'),
    conntrackCount: readSysctl('net/netfilter/nf_conntrack_count'),
    conntrackMax: readSysctl('net/netfilter/nf_conntrack_max'),
    nftTables: hooks.tables,
    nftHookedChains: hooks.chains,
  };

  const summary = {
    date: new Date().toISOString(),
    machine: machineLine(),
    tools: { iperf3: toolVersion(iperf3, ['--version']) },
    loadAverage: { start: loadStart, end: loadEnd },
    runs: opts.runs,
    seconds: opts.seconds,
    mtu,
    unit: 'Gbit/s',
    host,
    variants: Object.fromEntries(
      variants.map((v) => {
        const s = stats[v.key]!;
        return [
          v.key,
          {
            label: v.label,
            path: v.path,
            median: r2(s.median),
            min: r2(s.min),
            max: r2(s.max),
            samples: samples[v.key]!.map((x) => r2(x.gbps)),
            retransmits: samples[v.key]!.map((x) => x.retransmits),
            cpuSenderPct: Math.round(medOf(v.key, (x) => x.cpuSender)),
            cpuReceiverPct: Math.round(medOf(v.key, (x) => x.cpuReceiver)),
          },
        ];
      }),
    ),
    ratios,
  };

  if (opts.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return 0;
  }
  const out: string[] = [];
  out.push('');
  out.push(`Vessel TCP throughput (iperf3, 1 stream): ${opts.runs} rounds × ${opts.seconds} s, paths interleaved round-robin`);
  out.push(`machine: ${summary.machine}`);
  out.push(`${summary.tools.iperf3}; MTU ${mtu}; load average ${loadStart} → ${loadEnd}`);
  out.push('');
  const w = Math.max(...variants.map((v) => v.label.length)) + 4;
  out.push(`${'path'.padEnd(w + 12)}${'median'.padStart(8)}${'min'.padStart(8)}${'max'.padStart(8)}  Gbit/s   retr  cpu snd/rcv %`);
  for (const v of variants) {
    const s = stats[v.key]!;
    const sv = summary.variants[v.key]!;
    const retr = summarize(sv.retransmits).median;
    out.push(
      `(${v.key})`.padEnd(12) +
        v.label.padEnd(w) +
        s.median.toFixed(2).padStart(8) +
        s.min.toFixed(2).padStart(8) +
        s.max.toFixed(2).padStart(8) +
        `${String(Math.round(retr)).padStart(15)}  ${sv.cpuSenderPct}/${sv.cpuReceiverPct}`,
    );
  }
  out.push('');
  out.push('ratios (of medians):');
  for (const r of ratios) {
    const verdict = r.goal === null ? '' : `goal ≥ ${r.goal}: ${r.pass ? 'PASS' : 'MISS'}`;
    out.push(`  ${r.name.padEnd(16)} = ${r.value.toFixed(2).padStart(5)}   ${verdict.padEnd(17)} (${r.what})`);
  }
  out.push('');
  out.push('paths:');
  for (const v of variants) out.push(`  (${v.key}) ${v.path}`);
  out.push('');
  const hc = Object.entries(host.nftHookedChains).map(([k, n]) => `${k} ${n}`).join(', ');
  out.push(
    `host netfilter: bridge-nf-call-iptables=${host.bridgeNfCallIptables} (bridged IPv4 frames go through the ip hooks and conntrack); ` +
      `${host.nftTables} nft tables with hooked chains (${hc || 'none'}); conntrack entries ${host.conntrackCount}/${host.conntrackMax}`,
  );
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

runMain(main);
