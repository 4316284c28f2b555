/**
 * Virtual machines for real: QEMU (TCG here), the Debian cloud kernel, a
 * debian:bookworm disk, the guest agent. Covers issue 5's acceptance 1, 2, 3,
 * 5 and 6; CPU shares and the balloon are in vm-resources.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { TestDaemon } from '../framework/daemon.js';
import { assertOneLineError, waitFor } from '../framework/helpers.js';

async function ensureDebian(d: TestDaemon): Promise<void> {
  if ((await d.cli(['image', 'inspect', 'debian:bookworm'])).code !== 0) {
    await d.ok(['image', 'bootstrap', 'debian:bookworm', '--quiet'], { timeoutMs: 900_000 });
  }
}

async function vmInspect(d: TestDaemon, name: string): Promise<any> {
  return JSON.parse(await d.ok(['vm', 'inspect', name]))[0];
}

function tapsOf(d: TestDaemon): string[] {
  const out = spawnSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' }).stdout;
  const bridges = new Set(d.networkLeftovers().bridges);
  return (JSON.parse(out || '[]') as Array<{ ifname: string; master?: string }>).filter((l) => l.ifname.startsWith('vm') && !!l.master && bridges.has(l.master)).map((l) => l.ifname);
}

describe('virtual machines', { timeout: 1_800_000 }, () => {
  const d = new TestDaemon();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'vessel-vmtest-'));

  before(async () => {
    await d.start();
    await ensureDebian(d);
    await d.ensureBusybox();
  });

  after(async () => {
    await d.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('refuses bad input with one line and leaves nothing behind', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['vm', 'create', 'bad1', '--image', 'no-such-image:1'], /No such image/],
      [['vm', 'create', 'bad2', '--image', 'debian:bookworm', '--memory', '12x'], /size/i],
      [['vm', 'create', 'bad3', '--image', 'debian:bookworm', '--vcpus', '999'], /vCPU/],
      [['vm', 'create', 'bad4', '--image', 'debian:bookworm', '--network', 'no-such-net'], /network/i],
      [['vm', 'start', 'no-such-vm'], /No such VM/],
    ];
    const xml = path.join(tmp, 'dom.xml');
    writeFileSync(xml, `<domain type='kvm'><name>x1</name><memory unit='MiB'>256</memory><vcpu>1</vcpu><devices><graphics type='vnc'/></devices></domain>`);
    cases.push([['vm', 'create', '--from-libvirt', xml], /graphics/]);
    for (const [args, pattern] of cases) {
      const r = await d.cli(args, { timeoutMs: 600_000 });
      assertOneLineError(r, args.join(' '), pattern);
    }
    assert.deepEqual(JSON.parse(await d.ok(['vm', 'ls', '--format', 'json'])), []);
    const vmsDir = path.join(d.stateRoot, 'vms');
    assert.deepEqual(existsSync(vmsDir) ? readdirSync(vmsDir) : [], [], 'no VM directories after failed creates');
    assert.deepEqual(tapsOf(d), []);
  });

  it('creates VMs from a YAML file and from libvirt domain XML', async () => {
    const yml = path.join(tmp, 'vm.yaml');
    writeFileSync(yml, 'name: y1\nimage: debian:bookworm\nvcpus: 1\nmemory: 384m\ncpuWeight: 300\n');
    await d.ok(['vm', 'create', '-f', yml], { timeoutMs: 900_000 });
    const y = await vmInspect(d, 'y1');
    assert.equal(y.Config.memory, 384 * 1024 ** 2);
    assert.equal(y.Config.cpuWeight, 300);
    const data = path.join(tmp, 'data.qcow2');
    assert.equal(spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', data, '64M']).status, 0);
    const xml = path.join(tmp, 'x1.xml');
    writeFileSync(xml, `<domain type='kvm'>
  <name>x1</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <cpu mode='host-passthrough'><topology sockets='1' cores='1' threads='1'/></cpu>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${data}'/><target dev='vdb' bus='virtio'/></disk>
    <interface type='bridge'><source bridge='${d.network.bridge}'/><mac address='52:54:00:aa:bb:cc'/><model type='virtio'/></interface>
  </devices>
</domain>`);
    const noDisk = path.join(tmp, 'nodisk.xml');
    writeFileSync(noDisk, `<domain type='kvm'><name>x0</name><memory unit='MiB'>256</memory><vcpu>1</vcpu></domain>`);
    assertOneLineError(await d.cli(['vm', 'create', '--from-libvirt', noDisk]), 'libvirt without disk or --image', /--image/);
    await d.ok(['vm', 'create', '--from-libvirt', xml, '--image', 'debian:bookworm'], { timeoutMs: 900_000 });
    const x = await vmInspect(d, 'x1');
    assert.equal(x.Config.memory, 256 * 1024 ** 2);
    assert.equal(x.Networks[0].network, 'bridge');
    assert.equal(x.Networks[0].mac, '52:54:00:aa:bb:cc');
    assert.ok(x.Disks.some((k: any) => k.Path === data), 'the domain disk is attached');
    await d.ok(['vm', 'rm', 'y1', 'x1']);
    assert.ok(existsSync(data), 'vm rm keeps an attached disk file the VM does not own');

    // A domain whose own disk is the root (an ext4 busybox tree, not built by Vessel): it boots,
    // the initramfs installs the guest kit on the VM's overlay, and the file itself is not written.
    const tree = path.join(tmp, 'lvroot');
    mkdirSync(path.join(tree, 'bin'), { recursive: true });
    mkdirSync(path.join(tree, 'etc'));
    copyFileSync('/bin/busybox', path.join(tree, 'bin', 'busybox'));
    chmodSync(path.join(tree, 'bin', 'busybox'), 0o755);
    symlinkSync('busybox', path.join(tree, 'bin', 'sh'));
    const raw = path.join(tmp, 'lvroot.raw');
    const rootQcow = path.join(tmp, 'lvroot.qcow2');
    assert.equal(spawnSync('truncate', ['-s', '64M', raw]).status, 0);
    assert.equal(spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, raw]).status, 0);
    assert.equal(spawnSync('qemu-img', ['convert', '-O', 'qcow2', raw, rootQcow]).status, 0);
    const before = spawnSync('sha256sum', [rootQcow], { encoding: 'utf8' }).stdout;
    const own = path.join(tmp, 'own.xml');
    writeFileSync(own, `<domain type='kvm'><name>x2</name><memory unit='MiB'>256</memory><vcpu>1</vcpu><devices>
  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${rootQcow}'/><target dev='vda' bus='virtio'/></disk>
</devices></domain>`);
    await d.ok(['vm', 'create', '--from-libvirt', own, '--start'], { timeoutMs: 300_000 });
    const out = await waitFor('the guest agent of a libvirt-disk VM', async () => {
      const r = await d.cli(['vm', 'exec', 'x2', '--', '/bin/busybox', 'uname', '-r'], { timeoutMs: 200_000 });
      return r.code === 0 ? r.stdout.trim() : '';
    }, 300_000, 1000);
    assert.match(out, /cloud-amd64$/);
    await d.ok(['vm', 'rm', '-f', 'x2'], { timeoutMs: 120_000 });
    assert.equal(spawnSync('sha256sum', [rootQcow], { encoding: 'utf8' }).stdout, before, 'the domain disk itself is never written');
  });

  it('a missing QEMU or guest kernel is one clear line, and nothing is left behind', async () => {
    const noQemu = new TestDaemon({ env: { VESSEL_QEMU: '/nonexistent/qemu-system-x86_64' } });
    const emptyCache = mkdtempSync(path.join(os.tmpdir(), 'vessel-vmcache-'));
    const noKernel = new TestDaemon({ env: { VESSEL_CACHE_DIR: emptyCache, VESSEL_GUEST_KERNEL_PACKAGE: 'linux-image-vessel-no-such-kernel' } });
    try {
      await noQemu.start();
      assertOneLineError(await noQemu.cli(['vm', 'create', 'q1', '--image', 'busybox']), 'create without QEMU', /QEMU is missing/);
      await noKernel.start();
      await noKernel.ok(['image', 'bootstrap', 'busybox', '--quiet'], { timeoutMs: 300_000 });
      await noKernel.ok(['vm', 'create', 'k1', '--image', 'busybox'], { timeoutMs: 300_000 });
      assertOneLineError(await noKernel.cli(['vm', 'start', 'k1'], { timeoutMs: 300_000 }), 'start without a kernel', /linux-image-vessel-no-such-kernel/);
      assert.equal(JSON.parse(await noKernel.ok(['vm', 'ls', '--format', 'json']))[0]?.Status, 'created');
      assert.deepEqual(tapsOf(noKernel), []);
      assert.equal(noKernel.qemuPids().length, 0);
      await noKernel.ok(['vm', 'rm', 'k1']);
      assert.deepEqual(readdirSync(path.join(noKernel.stateRoot, 'vms')), []);
      assert.deepEqual(noKernel.leftovers().cgroups, []);
    } finally {
      await noQemu.destroy();
      await noKernel.destroy();
      rmSync(emptyCache, { recursive: true, force: true });
    }
  });

  it('boots debian:bookworm, runs commands through the agent, shows a console and stops cleanly', async () => {
    await d.ok(['vm', 'create', 't1', '--image', 'debian:bookworm', '--memory', '512m'], { timeoutMs: 900_000 });
    await d.ok(['vm', 'start', 't1'], { timeoutMs: 300_000 });
    const uname = await waitFor<string>('the guest agent', async () => {
      const r = await d.cli(['vm', 'exec', 't1', '--', 'uname', '-r'], { timeoutMs: 200_000 });
      return r.code === 0 ? r.stdout.trim() : '';
    }, 300_000, 1000);
    assert.match(uname, /^\d+\.\d+\.\d+-\d+-cloud-amd64$/, 'the Debian cloud kernel');
    const info = await vmInspect(d, 't1');
    assert.equal(info.State.status, 'running');
    assert.ok(['kvm', 'tcg'].includes(info.Accelerator.Name) && info.Accelerator.Reason, 'inspect says which accelerator and why');
    // The console: what the serial line shows, and typing into it.
    const logs = await d.ok(['vm', 'logs', 't1']);
    assert.match(logs, /login:|# $|\$ $|#\s*$/m, 'a login or shell prompt on the serial console');
    const con = await d.cli(['vm', 'console', 't1', '--timeout', '3'], { input: 'echo console-$((6*7))\n', timeoutMs: 60_000 });
    assert.equal(con.code, 0, con.stderr);
    assert.match(con.stdout, /console-42/);
    await d.ok(['vm', 'stop', 't1', '--timeout', '120'], { timeoutMs: 200_000 });
    const after = await vmInspect(d, 't1');
    assert.equal(after.State.status, 'stopped');
    assert.match(after.State.reason, /guest shut down/, 'a clean guest shutdown, not a forced one');
    assert.equal(d.qemuPids().length, 0);
    assert.deepEqual(tapsOf(d), [], 'taps go with the stopped VM');
  });

  it('a VM and a container on one network reach each other by IP and by name', async () => {
    await d.ok(['network', 'create', 'vmnet']);
    const ud = path.join(tmp, 'user-data');
    writeFileSync(ud, '#cloud-config\nwrite_files:\n  - path: /etc/from-cloud-init\n    content: "hello ci\\n"\nruncmd:\n  - [sh, -c, "hostname > /root/ran-on"]\n');
    await d.ok(['vm', 'create', 'v2', '--image', 'debian:bookworm', '--network', 'vmnet', '--cloud-init', ud, '--start'], { timeoutMs: 900_000 });
    await d.ok(['run', '-d', '--name', 'c2', '--network', 'vmnet', 'busybox', 'sh', '-c', 'while :; do echo pong | nc -l -p 7000; done']);
    const vmIp = (await d.ok(['vm', 'ip', 'v2'])).trim();
    const cIp = (await d.ok(['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', 'c2'])).trim();
    await waitFor('the guest agent', async () => (await d.cli(['vm', 'exec', 'v2', '--', 'true'], { timeoutMs: 200_000 })).code === 0, 300_000, 1000);
    const ran = await waitFor('the cloud-init user-data to run', async () => {
      // runcmd's shell creates /root/ran-on before `hostname` writes to it: wait for the content.
      const r = await d.cli(['vm', 'exec', 'v2', '--', 'sh', '-c', 'test -s /root/ran-on && cat /etc/from-cloud-init /root/ran-on']);
      return r.code === 0 ? r.stdout : '';
    }, 60_000, 1000);
    assert.equal(ran, 'hello ci\nv2\n', 'write_files and runcmd ran at first boot');
    const bb = '/.vessel/bin/busybox';
    for (const target of [cIp, 'c2']) {
      const r = await d.cli(['vm', 'exec', 'v2', '--', bb, 'sh', '-c', `echo hi | ${bb} nc -w 5 ${target} 7000`]);
      assert.equal(r.code, 0, `VM → container ${target}: ${r.stderr}`);
      assert.match(r.stdout, /pong/);
    }
    await d.ok(['vm', 'exec', 'v2', '--', bb, 'sh', '-c', `(while :; do echo vmpong | ${bb} nc -l -p 7001; done) >/dev/null 2>&1 &`]);
    for (const target of [vmIp, 'v2']) {
      const r = await waitFor(`container → VM ${target}`, async () => {
        const x = await d.cli(['exec', 'c2', 'sh', '-c', `echo hi | nc -w 5 ${target} 7001`]);
        return /vmpong/.test(x.stdout) ? x : undefined;
      }, 30_000, 500);
      assert.match(r!.stdout, /vmpong/);
    }
    // A data disk hot-plugged into the running VM (QEMU runs as the unprivileged vessel-qemu user).
    await d.ok(['vm', 'disk', 'create', 'v2', 'data', '64m']);
    const blocks = await waitFor('the hot-plugged disk in the guest', async () => {
      const r = await d.cli(['vm', 'exec', 'v2', '--', 'ls', '/sys/block']);
      return /vdb/.test(r.stdout) ? r.stdout : '';
    }, 30_000, 1000);
    assert.match(blocks, /vda/);
    assert.match(await d.ok(['vm', 'disk', 'ls', 'v2']), /data\s+67.1MB/);
    const user = spawnSync('ps', ['-o', 'user=', '-p', String((await vmInspect(d, 'v2')).State.pid)], { encoding: 'utf8' }).stdout.trim();
    assert.equal(user, 'vessel-qemu', 'QEMU runs unprivileged');
    await d.ok(['rm', '-f', 'c2']);
    await d.ok(['vm', 'rm', '-f', 'v2'], { timeoutMs: 120_000 });
  });

  it('snapshots a running VM and restores that exact moment; clones get their own identity', async () => {
    await d.ok(['vm', 'create', 's1', '--image', 'debian:bookworm', '--start'], { timeoutMs: 900_000 });
    await waitFor('the guest agent', async () => (await d.cli(['vm', 'exec', 's1', '--', 'true'], { timeoutMs: 200_000 })).code === 0, 300_000, 1000);
    const sh = (vm: string, script: string) => d.cli(['vm', 'exec', vm, '--', '/bin/sh', '-c', script], { timeoutMs: 120_000 });
    assert.equal((await sh('s1', 'echo before > /root/before; sync')).code, 0);
    assert.equal((await sh('s1', 'setsid sleep 31337 >/dev/null 2>&1 < /dev/null &')).code, 0);
    await d.ok(['vm', 'snapshot', 'create', 's1', 'snap1'], { timeoutMs: 300_000 });
    assert.match(await d.ok(['vm', 'snapshot', 'ls', 's1']), /snap1\s+memory\+disk/);
    assert.equal((await sh('s1', 'echo after > /root/after; sync')).code, 0);
    await d.ok(['vm', 'snapshot', 'restore', 's1', 'snap1'], { timeoutMs: 300_000 });
    await waitFor('the agent after restore', async () => (await d.cli(['vm', 'exec', 's1', '--', 'true'], { timeoutMs: 60_000 })).code === 0, 120_000, 1000);
    assert.equal((await sh('s1', 'cat /root/before')).stdout.trim(), 'before');
    assert.notEqual((await sh('s1', 'test -e /root/after')).code, 0, 'a file written after the snapshot is gone');
    const ps = await sh('s1', 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "');
    assert.match(ps.stdout, /sleep 31337/, 'a process started before the snapshot runs again');

    await d.ok(['vm', 'clone', '--from-snapshot', 'snap1', 's1', 's1c'], { timeoutMs: 600_000 });
    const a = await vmInspect(d, 's1');
    const b = await vmInspect(d, 's1c');
    assert.equal(b.State.status, 'running');
    assert.notEqual(a.Networks[0].mac, b.Networks[0].mac);
    assert.notEqual(a.Networks[0].ip, b.Networks[0].ip);
    const guest = async (vm: string) => ({
      hostname: (await sh(vm, 'hostname')).stdout.trim(),
      mac: (await sh(vm, 'cat /sys/class/net/eth0/address')).stdout.trim(),
      ip: (await sh(vm, '/.vessel/bin/busybox ip -4 -o addr show dev eth0')).stdout,
      machineId: (await sh(vm, 'cat /etc/machine-id')).stdout.trim(),
      before: (await sh(vm, 'cat /root/before')).stdout.trim(),
    });
    const ga = await guest('s1');
    const gb = await guest('s1c');
    assert.equal(gb.before, 'before', 'the clone starts from the snapshot');
    assert.equal(ga.hostname, 's1');
    assert.equal(gb.hostname, 's1c');
    assert.notEqual(ga.machineId, gb.machineId);
    assert.equal(gb.mac, b.Networks[0].mac);
    assert.match(gb.ip, new RegExp(`inet ${b.Networks[0].ip.replace(/\./g, '\\.')}/`));
    assert.match(ga.ip, new RegExp(`inet ${a.Networks[0].ip.replace(/\./g, '\\.')}/`));
  });

  it('VMs outlive a kill -9 of the daemon; a VM whose QEMU dies is reported with the reason', async () => {
    const before = JSON.parse(await d.ok(['vm', 'ls', '--format', 'json'])).filter((v: any) => v.Status === 'running');
    assert.ok(before.length >= 2, 'two VMs running (s1 and its clone)');
    await d.kill9();
    await d.restart();
    const listed = JSON.parse(await d.ok(['vm', 'ls', '--format', 'json']));
    for (const v of before) assert.equal(listed.find((x: any) => x.Id === v.Id)?.Status, 'running', `${v.Name} is running after the restart`);
    const r = await d.cli(['vm', 'exec', 's1', '--', 'cat', '/root/before']);
    assert.equal(r.stdout.trim(), 'before', r.stderr);
    const con = await d.cli(['vm', 'console', 's1', '--timeout', '3'], { input: 'echo again-$((40+2))\n', timeoutMs: 60_000 });
    assert.match(con.stdout, /again-42/);
    await d.ok(['vm', 'stop', 's1', '--timeout', '120'], { timeoutMs: 200_000 });
    assert.equal((await vmInspect(d, 's1')).State.status, 'stopped');
    // QEMU of the clone dies under us.
    const pid = (await vmInspect(d, 's1c')).State.pid;
    process.kill(pid, 'SIGKILL');
    const st = await waitFor('the dead VM to be noticed', async () => {
      const s = (await vmInspect(d, 's1c')).State;
      return s.status === 'exited' ? s : null;
    }, 30_000);
    assert.match(st.reason, /QEMU died/);
    await d.ok(['vm', 'rm', 's1', 's1c'], { timeoutMs: 120_000 });
    assert.deepEqual(tapsOf(d), []);
    assert.equal(d.qemuPids().length, 0);
    assert.deepEqual(d.leftovers().cgroups.filter((c) => /vm-/.test(c)), [], 'no VM cgroups left');
    const remaining = JSON.parse(await d.ok(['vm', 'ls', '--format', 'json'])).map((v: any) => v.Id.slice(0, 12)).sort();
    assert.deepEqual(readdirSync(path.join(d.stateRoot, 'vms')).sort(), remaining, 'removed VMs leave no directory (disks, sockets)');
  });
});
