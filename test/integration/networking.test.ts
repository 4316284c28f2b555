/**
 * Container networking against a real daemon: user-defined bridge networks
 * with name resolution, isolation between networks, published ports, egress
 * NAT to a test-made "outside" host, address leases under concurrency and
 * after a crash, and clean errors. Traffic only goes to loopback and to
 * namespaces this test creates.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import { TestDaemon } from '../framework/daemon.js';
import { assertId, assertOneLineError, inspectJson, sleep, waitFor } from '../framework/helpers.js';

let d: TestDaemon;

before(async () => {
  d = new TestDaemon();
  await d.start();
  await d.ensureBusybox();
});

after(async () => {
  await d?.destroy();
});

function httpGet(url: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout fetching ${url}`)));
    req.on('error', reject);
  });
}

/** A busybox httpd container serving `text` at / on port 80. */
async function webServer(name: string, text: string, ...flags: string[]): Promise<string> {
  return assertId(
    await d.ok(['run', '-d', '--name', name, ...flags, 'busybox', 'sh', '-c', `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 80 -h /www`]),
  );
}

/**
 * Fetches http://host:port/ from a new container and prints the body's last line.
 * (Debian's static busybox `wget` crashes on start, so the request is made with `nc`.)
 */
function fetchArgs(target: string, timeoutS: number): string[] {
  const [host, port = '80'] = target.split(':');
  return ['busybox', 'sh', '-c', `set -o pipefail; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w ${timeoutS} ${host} ${port} | tail -1`];
}

async function ipOf(ref: string, network: string): Promise<string> {
  const j = await inspectJson(d, ref);
  return j.NetworkSettings.Networks[network].IPAddress as string;
}

test('containers on a user-defined network reach each other by name and alias; other networks cannot', async () => {
  await d.ok(['network', 'create', 'appnet']);
  await d.ok(['network', 'create', 'othernet']);
  await webServer('web', 'hello-appnet', '--network', 'appnet', '--network-alias', 'frontend');
  await sleep(500);
  const byName = await d.cli(['run', '--rm', '--network', 'appnet', ...fetchArgs('web', 5)]);
  assert.equal(byName.code, 0, byName.stderr);
  assert.equal(byName.stdout.trim(), 'hello-appnet');
  const byAlias = await d.cli(['run', '--rm', '--network', 'appnet', ...fetchArgs('frontend', 5)]);
  assert.equal(byAlias.stdout.trim(), 'hello-appnet', byAlias.stderr);
  const webIp = await ipOf('web', 'appnet');
  const other = await d.cli(['run', '--rm', '--network', 'othernet', ...fetchArgs(webIp, 3)]);
  assert.doesNotMatch(other.stdout, /hello-appnet/, 'a container on another network must not reach web');
  const otherByName = await d.cli(['run', '--rm', '--network', 'othernet', 'busybox', 'nslookup', 'web']);
  assert.doesNotMatch(otherByName.stdout, new RegExp(webIp.replace(/\./g, '\\.')));
  const inspect = JSON.parse(await d.ok(['network', 'inspect', 'appnet']))[0];
  assert.equal(Object.keys(inspect.Containers).length, 1);
  await d.ok(['rm', '-f', 'web']);
});

test('network connect adds a running container to a second network with an alias', async () => {
  await webServer('web2', 'hello-connect', '--network', 'othernet');
  await d.ok(['network', 'connect', '--alias', 'api', 'appnet', 'web2']);
  const r = await d.cli(['run', '--rm', '--network', 'appnet', ...fetchArgs('api', 5)]);
  assert.equal(r.stdout.trim(), 'hello-connect', r.stderr);
  await d.ok(['network', 'disconnect', 'appnet', 'web2']);
  const gone = await d.cli(['run', '--rm', '--network', 'appnet', ...fetchArgs('api', 3)]);
  assert.doesNotMatch(gone.stdout, /hello-connect/);
  await d.ok(['rm', '-f', 'web2']);
});

test('published ports: fixed loopback port, random port shown by `port`, and UDP', async () => {
  await webServer('pub', 'hello-published', '-p', '127.0.0.1:18080:80');
  await waitFor('the published port to answer', async () => (await httpGet('http://127.0.0.1:18080/').catch(() => '')).trim() === 'hello-published', 15_000);
  const ps = await d.ok(['ps']);
  assert.match(ps, /127\.0\.0\.1:18080->80\/tcp/);
  await webServer('pubrand', 'hello-random', '-p', '80');
  const port = await d.ok(['port', 'pubrand']);
  const m = /80\/tcp -> 0\.0\.0\.0:(\d+)/.exec(port);
  assert.ok(m, `port output: ${port}`);
  await waitFor('the random port to answer', async () => (await httpGet(`http://127.0.0.1:${m![1]}/`).catch(() => '')).trim() === 'hello-random', 15_000);
  // UDP: busybox has no UDP server here, so the host's python3 runs in the container
  // (host /usr bind-mounted read-only); it logs each datagram and answers "pong".
  await d.ok([
    'run', '-d', '--name', 'udp', '-v', '/usr:/usr:ro', '-v', '/lib:/lib:ro', '-v', '/lib64:/lib64:ro',
    '-p', '127.0.0.1:15353:5353/udp', 'busybox', 'python3', '-u', '-c',
    "import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 5353))\nwhile True:\n    d, a = s.recvfrom(512); print(d.decode().strip()); s.sendto(b'pong', a)\n",
  ]);
  const dgram = await import('node:dgram');
  const reply = await waitFor('a UDP reply through the published port', async () => {
    const s = dgram.createSocket('udp4');
    try {
      return await new Promise<string>((resolve) => {
        const t = setTimeout(() => resolve(''), 1000);
        s.once('message', (m) => {
          clearTimeout(t);
          resolve(m.toString());
        });
        s.send('ping-udp\n', 15353, '127.0.0.1');
      });
    } finally {
      s.close();
    }
  }, 20_000);
  assert.equal(reply, 'pong');
  assert.match(await d.ok(['logs', 'udp']), /ping-udp/);
  await d.ok(['rm', '-f', 'pub', 'pubrand', 'udp']);
});

test('a host port already in use is refused at run with one line', async () => {
  const server = http.createServer((_q, s) => s.end('host')).listen(18181, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const r = await d.cli(['run', '-d', '-p', '127.0.0.1:18181:80', 'busybox', 'sleep', '30']);
    assertOneLineError(r, 'taken host port', /already allocated|in use/i);
  } finally {
    server.close();
  }
});

test('egress NAT reaches a test-made outside host, masqueraded to the host address', async () => {
  const ns = `vt-out-${process.pid}`;
  const hostIf = `vto${process.pid % 100000}`;
  const sh = (cmd: string) => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  sh(`ip netns add ${ns} && ip link add ${hostIf} type veth peer name eth0 netns ${ns} && ip addr add 10.216.7.1/30 dev ${hostIf} && ip link set ${hostIf} up && ip -n ${ns} addr add 10.216.7.2/30 dev eth0 && ip -n ${ns} link set eth0 up && ip -n ${ns} link set lo up && ip -n ${ns} route add default via 10.216.7.1`);
  const server = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', `
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(self.client_address[0].encode())
    def log_message(self, *a): pass
http.server.HTTPServer(('10.216.7.2', 8000), H).serve_forever()
`], { stdio: 'ignore' });
  try {
    // The outside server (python) may take a moment to listen.
    const r = await waitFor('the outside host to answer', async () => {
      const res = await d.cli(['run', '--rm', ...fetchArgs('10.216.7.2:8000', 5)]);
      return res.code === 0 ? res : undefined;
    }, 30_000, 500);
    assert.ok(r);
    assert.equal(r.stdout.trim(), '10.216.7.1', 'the outside host must see the host address (masquerade)');
    // A published port is reachable from another namespace through the host's address there.
    await webServer('fromns', 'hello-from-ns', '-p', '18282:80');
    const viaNs = await waitFor('the published port from the outside namespace', async () => {
      const r2 = spawnSync('ip', ['netns', 'exec', ns, 'python3', '-c', "import urllib.request; print(urllib.request.urlopen('http://10.216.7.1:18282/', timeout=3).read().decode().strip())"], { encoding: 'utf8' });
      return r2.stdout.trim() === 'hello-from-ns' ? r2.stdout.trim() : undefined;
    }, 20_000, 500);
    assert.equal(viaNs, 'hello-from-ns');
    await d.ok(['rm', '-f', 'fromns']);
    const table = spawnSync('nft', ['list', 'table', 'ip', `vessel_${d.tag}`], { encoding: 'utf8' }).stdout;
    assert.doesNotMatch(table, /dport 18282/, 'the port rule is gone with the container');
    await d.ok(['network', 'create', '--internal', 'sealed']);
    const sealed = await d.cli(['run', '--rm', '--network', 'sealed', ...fetchArgs('10.216.7.2:8000', 3)]);
    assert.doesNotMatch(sealed.stdout, /10\.216/, 'an --internal network has no egress');
    await d.ok(['network', 'rm', 'sealed']);
  } finally {
    server.kill('SIGKILL');
    sh(`ip link del ${hostIf}; ip netns del ${ns}`);
  }
});

test('50 concurrent containers get 50 distinct addresses; rm releases every lease, veth and namespace', async () => {
  await d.ok(['network', 'create', '--subnet', '10.217.0.0/24', 'many']);
  const ids = await Promise.all(
    Array.from({ length: 50 }, () => d.ok(['run', '-d', '--network', 'many', 'busybox', 'sleep', '600'], { timeoutMs: 300_000 }).then(assertId)),
  );
  const ips = await Promise.all(ids.map((id) => ipOf(id, 'many')));
  assert.equal(new Set(ips).size, 50, `addresses: ${ips.join(' ')}`);
  await d.ok(['rm', '-f', ...ids], { timeoutMs: 300_000 });
  const net = JSON.parse(await d.ok(['network', 'inspect', 'many']))[0];
  assert.deepEqual(net.Containers, {});
  const left = d.networkLeftovers();
  assert.deepEqual(left.netns, []);
  assert.deepEqual(left.vethsOnBridges, []);
  await d.ok(['network', 'rm', 'many']);
});

test('after a daemon kill -9 mid-start and a restart, nothing is orphaned', async () => {
  await d.ok(['network', 'create', '--subnet', '10.218.0.0/24', 'crashnet']);
  const starting = Array.from({ length: 8 }, () => d.cli(['run', '-d', '--network', 'crashnet', 'busybox', 'sleep', '600']));
  await sleep(700);
  await d.kill9();
  await Promise.allSettled(starting);
  await d.restart();
  const running = (await d.ok(['ps', '-q', '--no-trunc'])).split('\n').filter(Boolean);
  const left = d.networkLeftovers();
  // Every namespace and veth left belongs to a container that is running.
  assert.equal(left.netns.length, running.length, `netns ${left.netns} vs running ${running}`);
  assert.equal(left.vethsOnBridges.length, running.length);
  const ids = (await d.ok(['ps', '-aq'])).split('\n').filter(Boolean);
  if (ids.length) await d.ok(['rm', '-f', ...ids], { timeoutMs: 120_000 });
  const after = d.networkLeftovers();
  assert.deepEqual(after.netns, []);
  assert.deepEqual(after.vethsOnBridges, []);
  await d.ok(['network', 'rm', 'crashnet']);
});

test('bad network input: one line each, nothing half made', async () => {
  assertOneLineError(await d.cli(['run', '--rm', '--network', 'nosuchnet', 'busybox', 'true']), 'unknown network', /not found/i);
  await d.ok(['network', 'create', '--subnet', '10.219.0.0/24', 'first']);
  assertOneLineError(await d.cli(['network', 'create', '--subnet', '10.219.0.128/25', 'second']), 'overlapping subnet', /overlap/i);
  assertOneLineError(await d.cli(['run', '-d', '-p', '99999:80', 'busybox', 'true']), 'bad -p', /invalid/i);
  assertOneLineError(await d.cli(['run', '-d', '-p', 'abc', 'busybox', 'true']), 'bad -p', /invalid/i);
  const id = assertId(await d.ok(['run', '-d', '--network', 'first', 'busybox', 'sleep', '600']));
  assertOneLineError(await d.cli(['network', 'rm', 'first']), 'network in use', /active endpoints|in use/i);
  await d.ok(['rm', '-f', id]);
  await d.ok(['network', 'rm', 'first']);
  const nets = await d.ok(['network', 'ls']);
  assert.doesNotMatch(nets, /second|first/);
});
