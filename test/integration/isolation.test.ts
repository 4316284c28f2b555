/**
 * Acceptance: isolation defaults. A default container runs in its own
 * namespaces with Docker's default capability set, seccomp filter, masked
 * paths and a private /dev; the security flags tighten that as in Docker; two
 * daemons on one host do not see each other's containers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readlinkSync } from 'node:fs';
import { TestDaemon } from '../framework/daemon.js';
import { assertId, inspectF } from '../framework/helpers.js';

let d: TestDaemon;

before(async () => {
  d = new TestDaemon();
  await d.start();
  await d.ensureBusybox();
});

after(async () => {
  await d?.destroy();
});

/** `run --rm [flags] busybox sh -c script`, asserting success. */
async function sh(script: string, ...flags: string[]): Promise<string> {
  return d.ok(['run', '--rm', ...flags, 'busybox', 'sh', '-c', script]);
}

function statusField(status: string, field: string): string {
  const line = status.split('\n').find((l) => l.startsWith(`${field}:`));
  assert.ok(line, `${field} missing from /proc/self/status:\n${status}`);
  return line.slice(field.length + 1).trim();
}

test('PID 1 in the container is the command itself', async () => {
  assert.equal(await sh('echo $$'), '1\n');
  const cmdline = await d.ok(['run', '--rm', 'busybox', 'cat', '/proc/1/cmdline']);
  assert.equal(cmdline, 'cat\0/proc/1/cmdline\0');
  // Only the container's own processes are visible.
  const pids = (await sh('ls /proc | grep -E "^[0-9]+$"')).split('\n').filter(Boolean);
  assert.ok(pids.length <= 4, `too many processes visible in the container: ${pids}`);
});

test('a running container has its own pid, mount, uts, ipc and net namespaces', async () => {
  const id = assertId(await d.ok(['run', '-d', 'busybox', 'sleep', '1000']));
  const pid = Number(await inspectF(d, id, '{{.State.Pid}}'));
  assert.ok(pid > 0);
  for (const ns of ['pid', 'mnt', 'uts', 'ipc', 'net']) {
    const host = readlinkSync(`/proc/self/ns/${ns}`);
    const ctr = readlinkSync(`/proc/${pid}/ns/${ns}`);
    assert.notEqual(ctr, host, `${ns} namespace is shared with the host`);
  }
  await d.ok(['rm', '-f', id]);
});

test('default effective capabilities are Docker’s default set (CapEff 00000000a80425fb)', async () => {
  const status = await d.ok(['run', '--rm', 'busybox', 'cat', '/proc/self/status']);
  assert.equal(statusField(status, 'CapEff'), '00000000a80425fb');
  assert.equal(statusField(status, 'CapBnd'), '00000000a80425fb');
});

test('seccomp filtering is on by default (Seccomp: 2)', async () => {
  const status = await d.ok(['run', '--rm', 'busybox', 'cat', '/proc/self/status']);
  assert.equal(statusField(status, 'Seccomp'), '2');
});

test('--cap-drop ALL --cap-add NET_BIND_SERVICE leaves only that capability', async () => {
  const status = await d.ok([
    'run', '--rm', '--cap-drop', 'ALL', '--cap-add', 'NET_BIND_SERVICE', 'busybox', 'cat', '/proc/self/status',
  ]);
  assert.equal(statusField(status, 'CapEff'), '0000000000000400');
});

test('--cap-drop ALL leaves no capability: chown fails even as root', async () => {
  const r = await d.cli(['run', '--rm', '--cap-drop', 'ALL', 'busybox', 'sh', '-c', 'touch /f && chown 1:1 /f']);
  assert.notEqual(r.code, 0, 'chown without CAP_CHOWN must fail');
  const status = await d.ok(['run', '--rm', '--cap-drop', 'ALL', 'busybox', 'cat', '/proc/self/status']);
  assert.equal(statusField(status, 'CapEff'), '0000000000000000');
});

test('--security-opt no-new-privileges sets NoNewPrivs', async () => {
  const status = await d.ok(['run', '--rm', '--security-opt', 'no-new-privileges', 'busybox', 'cat', '/proc/self/status']);
  assert.equal(statusField(status, 'NoNewPrivs'), '1');
});

test('--read-only makes the root filesystem read-only while --tmpfs /tmp stays writable', async () => {
  const r = await d.cli(['run', '--rm', '--read-only', '--tmpfs', '/tmp', 'busybox', 'touch', '/x']);
  assert.notEqual(r.code, 0, 'touch /x must fail on a read-only rootfs');
  assert.match(r.stderr, /Read-only file system/i);
  assert.equal(
    await sh('touch /tmp/y && echo ok && grep " /tmp " /proc/mounts | cut -d" " -f3', '--read-only', '--tmpfs', '/tmp'),
    'ok\ntmpfs\n',
  );
});

test('-u 1000:1000 runs as that user with no capabilities', async () => {
  const out = await sh('id -u; id -g; grep CapEff /proc/self/status', '-u', '1000:1000');
  assert.equal(out, '1000\n1000\nCapEff:\t0000000000000000\n');
  const r = await d.cli(['run', '--rm', '-u', '1000:1000', 'busybox', 'touch', '/etc/owned']);
  assert.notEqual(r.code, 0, 'uid 1000 must not write root-owned /etc');
});

test('the hostname defaults to the short container id', async () => {
  const id = assertId(await d.ok(['run', '-d', 'busybox', 'sleep', '1000']));
  assert.equal(await d.ok(['exec', id, 'hostname']), `${id.slice(0, 12)}\n`);
  assert.equal(await inspectF(d, id, '{{.Config.Hostname}}'), id.slice(0, 12));
  await d.ok(['rm', '-f', id]);
});

test('masked paths (/proc/kcore, /proc/keys, /proc/timer_list, /sys/firmware) show no content', async () => {
  for (const p of ['/proc/kcore', '/proc/keys', '/proc/timer_list']) {
    const r = await d.cli(['run', '--rm', 'busybox', 'sh', '-c', `head -c 4096 ${p} | wc -c`]);
    assert.equal(r.stdout.trim(), '0', `${p} is readable with content (${r.stdout.trim()} bytes)`);
  }
  assert.equal(await sh('ls -A /sys/firmware | wc -l'), '0\n');
  // Read-only paths: /proc/sys cannot be written.
  const w = await d.cli(['run', '--rm', 'busybox', 'sh', '-c', 'echo 1 > /proc/sys/kernel/domainname']);
  assert.notEqual(w.code, 0, '/proc/sys must be read-only');
});

test('/dev is a private tmpfs with null, zero, urandom and tty', async () => {
  const out = await sh('grep " /dev " /proc/mounts | cut -d" " -f3; for f in null zero urandom tty; do [ -c /dev/$f ] && echo $f; done');
  assert.equal(out, 'tmpfs\nnull\nzero\nurandom\ntty\n');
  assert.equal(await sh('echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 8 /dev/urandom | wc -c'), '4\n8\n');
  // No host block devices.
  assert.equal(await sh('ls /dev | grep -cE "^(sd|vd|nvme|xvd|loop)" || true'), '0\n');
});

function interfaces(procNetDev: string): string[] {
  return procNetDev
    .split('\n')
    .slice(2)
    .filter((l) => l.includes(':'))
    .map((l) => l.split(':')[0]!.trim());
}

test('--network none gives a private namespace with only the loopback interface', async () => {
  const out = await d.ok(['run', '--rm', '--network', 'none', 'busybox', 'cat', '/proc/net/dev']);
  assert.deepEqual(interfaces(out), ['lo']);
});

test('by default a container is on the bridge network: lo and eth0 in its own namespace', async () => {
  const out = await d.ok(['run', '--rm', 'busybox', 'cat', '/proc/net/dev']);
  assert.deepEqual(interfaces(out).sort(), ['eth0', 'lo']);
});

test('two daemons side by side: separate containers and separate cgroup parents', async () => {
  const d2 = new TestDaemon();
  try {
    await d2.start();
    await d2.ensureBusybox();
    assert.notEqual(d2.cgroupParent, d.cgroupParent);
    const a = assertId(await d.ok(['run', '-d', '--name', 'same-name', 'busybox', 'sleep', '1000']));
    // The same name is free on the other daemon.
    const b = assertId(await d2.ok(['run', '-d', '--name', 'same-name', 'busybox', 'sleep', '1000']));
    const listA = (await d.ok(['ps', '-aq', '--no-trunc'])).split('\n').filter(Boolean);
    const listB = (await d2.ok(['ps', '-aq', '--no-trunc'])).split('\n').filter(Boolean);
    assert.ok(listA.includes(a) && !listA.includes(b), `daemon 1 sees: ${listA}`);
    assert.ok(listB.includes(b) && !listB.includes(a), `daemon 2 sees: ${listB}`);
    assert.notEqual((await d.cli(['inspect', b])).code, 0, 'daemon 1 must not resolve daemon 2’s container');
    // Each container lives under its own daemon's cgroup parent.
    for (const [daemon, id] of [[d, a], [d2, b]] as const) {
      const pid = Number(await inspectF(daemon, id, '{{.State.Pid}}'));
      const cg = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      const mem = cg.split('\n').find((l) => /:memory:/.test(l));
      assert.ok(mem, `no memory cgroup line:\n${cg}`);
      assert.ok(mem.endsWith(`${daemon.cgroupParent}/${id}`), `memory cgroup ${mem} not under ${daemon.cgroupParent}/${id}`);
    }
    // Each daemon's runtime state (runc's, conmon's, the bundles) sits in an exec root of its own.
    assert.notEqual(d2.execRoot, d.execRoot);
    assert.deepEqual([d.leftovers().bundles.includes(a), d.leftovers().bundles.includes(b)], [true, false]);
    assert.deepEqual([d2.leftovers().bundles.includes(b), d2.leftovers().bundles.includes(a)], [true, false]);
    assert.ok(d.leftovers().runtimeState.includes(`runc/${a}`), `runc state of ${a} under ${d.execRoot}`);
    await d2.ok(['rm', '-f', b]);
    // Removing on daemon 2 did not touch daemon 1's container.
    assert.equal(await inspectF(d, a, '{{.State.Status}}'), 'running');
    await d.ok(['rm', '-f', a]);
  } finally {
    await d2.destroy();
  }
});
