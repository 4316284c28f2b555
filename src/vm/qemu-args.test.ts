import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { QmpClient } from './qmp/client.js';
import { buildQemuArgs, escapeOptionValue, type QemuLaunchSpec } from './qemu-args.js';

const base: QemuLaunchSpec = { name: 'web', accel: 'tcg', vcpus: 2, memoryBytes: 512 * 1024 * 1024, qmpSocket: '/run/v/web.qmp' };

function after_(args: string[], flag: string): string[] {
  const out: string[] = [];
  args.forEach((a, i) => a === flag && out.push(args[i + 1]!));
  return out;
}

describe('buildQemuArgs', () => {
  it('builds a minimal q35 TCG command line', () => {
    assert.deepEqual(buildQemuArgs(base), [
      '-name', 'guest=web,debug-threads=on',
      '-nodefaults', '-no-user-config', '-display', 'none',
      '-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=allow,resourcecontrol=deny',
      '-machine', 'q35', '-accel', 'tcg', '-cpu', 'max',
      '-smp', '2,sockets=2,cores=1,threads=1', '-m', '512M',
      '-device', 'pcie-root-port,id=hp0,chassis=1,bus=pcie.0',
      '-device', 'pcie-root-port,id=hp1,chassis=2,bus=pcie.0',
      '-device', 'pcie-root-port,id=hp2,chassis=3,bus=pcie.0',
      '-device', 'pcie-root-port,id=hp3,chassis=4,bus=pcie.0',
      '-qmp', 'unix:/run/v/web.qmp,server=on,wait=off',
      '-device', 'virtio-balloon-pci,id=balloon0,deflate-on-oom=on,free-page-reporting=on',
    ]);
  });

  it('uses host CPU on KVM and honours topology', () => {
    const a = buildQemuArgs({ ...base, accel: 'kvm', vcpus: 4, topology: { sockets: 1, cores: 2, threads: 2 } });
    assert.deepEqual(after_(a, '-cpu'), ['host']);
    assert.deepEqual(after_(a, '-smp'), ['4,sockets=1,cores=2,threads=2']);
    assert.throws(() => buildQemuArgs({ ...base, topology: { sockets: 1, cores: 1, threads: 1 } }), /topology 1×1×1 does not equal 2 vcpus/);
  });

  it('adds disks as two blockdev nodes named by id, nics as tap + virtio-net', () => {
    const a = buildQemuArgs({
      ...base,
      disks: [
        { id: 'disk0', path: '/var/v/a,b.qcow2', format: 'qcow2', serial: 'root' },
        { id: 'seed', path: '/var/v/seed.img', format: 'raw', readOnly: true },
      ],
      nics: [{ id: 'net0', ifname: 'vtap0', mac: '52:54:00:AA:BB:CC' }],
    });
    assert.deepEqual(after_(a, '-blockdev'), [
      'driver=file,filename=/var/v/a,,b.qcow2,node-name=disk0-file,discard=unmap',
      'driver=qcow2,file=disk0-file,node-name=disk0,discard=unmap',
      'driver=file,filename=/var/v/seed.img,node-name=seed-file,read-only=on,discard=unmap',
      'driver=raw,file=seed-file,node-name=seed,read-only=on,discard=unmap',
    ]);
    assert.deepEqual(after_(a, '-device').slice(0, 3), [
      'virtio-blk-pci,drive=disk0,id=disk0,serial=root,bootindex=1',
      'virtio-blk-pci,drive=seed,id=seed',
      'virtio-net-pci,netdev=net0,id=net0,mac=52:54:00:aa:bb:cc',
    ]);
    assert.deepEqual(after_(a, '-netdev'), ['tap,id=net0,ifname=vtap0,script=no,downscript=no']);
  });

  it('adds agent, serial console, pidfile, runas, incoming and -S', () => {
    const a = buildQemuArgs({
      ...base,
      uuid: '0f8fad5b-d9cb-469f-a165-70867728950e',
      guestAgentSocket: '/run/v/qga.sock',
      serial: { socket: '/run/v/console.sock', logFile: '/var/log/v/console.log' },
      pidFile: '/run/v/qemu.pid',
      runAs: 'vessel-vm',
      incoming: 'exec:cat /var/v/state.bin',
      startPaused: true,
      noShutdown: true,
    });
    assert.deepEqual(after_(a, '-chardev'), [
      'socket,id=qga0,path=/run/v/qga.sock,server=on,wait=off',
      'socket,id=ser0,path=/run/v/console.sock,server=on,wait=off,logfile=/var/log/v/console.log,logappend=on',
    ]);
    assert.ok(a.includes('virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0'));
    assert.deepEqual(after_(a, '-serial'), ['chardev:ser0']);
    assert.deepEqual(after_(a, '-uuid'), ['0f8fad5b-d9cb-469f-a165-70867728950e']);
    assert.deepEqual(after_(a, '-runas'), ['vessel-vm']);
    assert.match(after_(a, '-sandbox')[0]!, /elevateprivileges=allow/);
    assert.deepEqual(after_(a, '-incoming'), ['exec:cat /var/v/state.bin']);
    assert.ok(a.includes('-S') && a.includes('-no-shutdown') && !a.includes('-no-reboot'));
    assert.deepEqual(after_(a, '-pidfile'), ['/run/v/qemu.pid']);
  });

  it('builds microvm with mmio devices and a kernel', () => {
    const a = buildQemuArgs({
      ...base,
      machine: 'microvm',
      kernel: '/k/vmlinuz',
      initrd: '/k/initrd',
      append: 'console=ttyS0 reboot=t tsc_early_khz=2000000',
      disks: [{ id: 'disk0', path: '/d.qcow2', format: 'qcow2' }],
      guestAgentSocket: '/run/qga',
    });
    assert.deepEqual(after_(a, '-machine'), ['microvm,acpi=on,isa-serial=on,rtc=on,pit=off,pic=off']);
    assert.ok(a.includes('virtio-blk-device,drive=disk0,id=disk0'));
    assert.ok(a.includes('virtio-serial-device,id=vser0'));
    assert.ok(a.includes('virtio-balloon-device,id=balloon0,deflate-on-oom=on,free-page-reporting=on'));
    assert.ok(a.includes('-no-reboot'));
    assert.ok(!a.some((x) => x.startsWith('pcie-root-port')));
    assert.deepEqual(after_(a, '-append'), ['console=ttyS0 reboot=t tsc_early_khz=2000000']);
  });

  it('rejects bad specs with one clear line', () => {
    const cases: [Partial<QemuLaunchSpec>, RegExp][] = [
      [{ machine: 'microvm' }, /microvm needs a kernel/],
      [{ machine: 'microvm', kernel: '/k', disks: Array.from({ length: 8 }, (_, i) => ({ id: `d${i}`, path: `/d${i}`, format: 'raw' as const })) }, /at most 8 virtio devices, spec has 9/],
      [{ memoryBytes: 1000 }, /memory 1000 bytes/],
      [{ vcpus: 0 }, /vcpus 0/],
      [{ disks: [{ id: 'a', path: 'rel.qcow2', format: 'qcow2' }] }, /must be an absolute path: rel.qcow2/],
      [{ disks: [{ id: 'a', path: '/a', format: 'raw' }, { id: 'a', path: '/b', format: 'raw' }] }, /duplicate or reserved device id a/],
      [{ nics: [{ id: 'n', ifname: 'tap0', mac: 'zz' }] }, /mac zz/],
      [{ name: 'a b' }, /name "a b"/],
      [{ append: 'x' }, /need a kernel/],
    ];
    for (const [patch, re] of cases) {
      assert.throws(() => buildQemuArgs({ ...base, ...patch }), (e: unknown) => {
        assert.ok(e instanceof Error && e.name === 'InvalidArgumentError', String(e));
        assert.match(e.message, /^Invalid VM launch spec: /);
        assert.match(e.message, re);
        assert.ok(!e.message.includes('\n'));
        return true;
      });
    }
    assert.equal(escapeOptionValue('a,b,,c'), 'a,,b,,,,c');
  });
});

/** A temp directory and a list of QEMU processes, both gone after the suite. */
function qemuScratch(prefix: string): { dir: string; procs: ChildProcess[] } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const procs: ChildProcess[] = [];
  after(() => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, procs };
}

describe('buildQemuArgs output runs in a real QEMU', () => {
  const { dir, procs } = qemuScratch('vessel-qargs-');

  it('q35 + sandbox + qcow2 disk + agent + serial: snapshots and exec: migration work', async () => {
    const disk = join(dir, 'disk 0,x.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M']);
    const spec: QemuLaunchSpec = {
      name: 'argtest',
      accel: 'tcg',
      vcpus: 1,
      memoryBytes: 64 * 1024 * 1024,
      disks: [{ id: 'disk0', path: disk, format: 'qcow2', serial: 'root' }],
      qmpSocket: join(dir, 'qmp.sock'),
      guestAgentSocket: join(dir, 'qga.sock'),
      serial: { socket: join(dir, 'console.sock'), logFile: join(dir, 'console.log') },
      pidFile: join(dir, 'qemu.pid'),
      startPaused: true,
    };
    const proc = spawn('qemu-system-x86_64', buildQemuArgs(spec), { stdio: ['ignore', 'ignore', 'pipe'] });
    procs.push(proc);
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
    const qmp = await QmpClient.connect(spec.qmpSocket, { connectTimeoutMs: 10_000 }).catch((e) => {
      throw new Error(`${e.message}; stderr: ${stderr}`);
    });
    try {
      assert.equal((await qmp.queryStatus()).status, 'prelaunch');
      assert.equal(Number(readFileSync(spec.pidFile!, 'utf8').trim()), proc.pid);
      assert.ok(existsSync(spec.guestAgentSocket!) && existsSync(spec.serial!.socket));
      const nodes = await qmp.queryNamedBlockNodes();
      assert.deepEqual(nodes.map((n) => n.nodeName).sort(), ['disk0', 'disk0-file']);
      assert.equal((await qmp.queryBalloon()).actual, 64 * 1024 * 1024);

      // Internal snapshot job: save, see it listed, delete.
      await qmp.snapshotSave('s1', 'disk0', ['disk0']);
      const blk = (await qmp.queryBlock()).find((b) => b.inserted?.nodeName === 'disk0');
      assert.deepEqual(blk?.inserted?.snapshots.map((s) => s.name), ['s1']);
      await qmp.snapshotLoad('s1', 'disk0', ['disk0']);
      await qmp.snapshotDelete('s1', ['disk0']);
      await assert.rejects(qmp.snapshotLoad('nope', 'disk0', ['disk0']), /snapshot-load nope failed: .*nope/);
      assert.deepEqual(await qmp.queryJobs(), []);

      // External snapshot: an overlay on top of disk0, with an absolute backing path.
      const overlay = join(dir, 'overlay1.qcow2');
      await qmp.blockdevSnapshotSync('disk0', overlay, 'ov1');
      const ov = (await qmp.queryNamedBlockNodes()).find((n) => n.nodeName === 'ov1');
      assert.equal(ov?.backingFile, disk);

      // Memory snapshot through exec: works inside the sandbox (spawn allowed).
      const state = join(dir, 'state.bin');
      await qmp.migrate(`exec:cat > '${state}'`);
      await qmp.waitMigration(30_000);
      assert.ok(statSync(state).size > 0);

      // Hotplug a second disk into a root port. Unplug needs a guest to acknowledge it,
      // so here the request is accepted but DEVICE_DELETED never comes.
      const extra = join(dir, 'extra.qcow2');
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', extra, '16M']);
      await qmp.blockdevAdd({ driver: 'qcow2', 'node-name': 'disk1', file: { driver: 'file', filename: extra } });
      await qmp.deviceAdd({ driver: 'virtio-blk-pci', id: 'disk1', drive: 'disk1', bus: 'hp0' });
      assert.ok((await qmp.queryBlock()).some((b) => b.qdev?.includes('disk1')));
      await assert.rejects(qmp.deviceDel('disk1', 300), /QMP event DEVICE_DELETED: not seen within 300 ms/);
      await assert.rejects(qmp.blockdevDel('disk1'), /in use/);

      await qmp.quit();
      assert.equal(await exited, 0);
    } finally {
      if (!qmp.isClosed) await qmp.close();
    }
  });
});

/**
 * A multiboot "kernel" (a.out-kludge header, loaded at 1 MiB) whose 32-bit code
 * writes 0x31 to an isa-debug-exit port: QEMU then exits with status 99.
 */
function exitKernel(): Buffer {
  const h = Buffer.alloc(64);
  const magic = 0x1badb002;
  const flags = 0x00010000;
  [magic, flags, (-(magic + flags)) >>> 0, 0x100000, 0x100000, 0, 0, 0x100020].forEach((v, i) => h.writeUInt32LE(v, i * 4));
  Buffer.from([0xb0, 0x31, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]).copy(h, 32);
  return h;
}

describe('microvm argv runs in a real QEMU', () => {
  const { dir, procs } = qemuScratch('vessel-qargs-mvm-');

  it('microvm with mmio disk, agent, balloon and serial boots a kernel to its exit', async () => {
    const kernel = join(dir, 'kernel');
    writeFileSync(kernel, exitKernel());
    const disk = join(dir, 'disk.raw');
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', disk, '8M']);
    const spec: QemuLaunchSpec = {
      name: 'mvm',
      machine: 'microvm',
      accel: 'tcg',
      vcpus: 1,
      memoryBytes: 64 * 1024 * 1024,
      kernel,
      disks: [{ id: 'disk0', path: disk, format: 'raw' }],
      qmpSocket: join(dir, 'qmp.sock'),
      guestAgentSocket: join(dir, 'qga.sock'),
      serial: { socket: join(dir, 'console.sock'), logFile: join(dir, 'console.log') },
      startPaused: true,
    };
    const argv = [...buildQemuArgs(spec), '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04'];
    const proc = spawn('qemu-system-x86_64', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    procs.push(proc);
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
    const qmp = await QmpClient.connect(spec.qmpSocket, { connectTimeoutMs: 10_000 }).catch((e) => {
      throw new Error(`${e.message}; stderr: ${stderr}`);
    });
    try {
      assert.equal((await qmp.queryStatus()).status, 'prelaunch');
      assert.deepEqual((await qmp.queryNamedBlockNodes()).map((n) => n.nodeName).sort(), ['disk0', 'disk0-file']);
      assert.equal((await qmp.queryBalloon()).actual, 64 * 1024 * 1024);
      // The kernel exits at once, so QEMU may be gone before it answers `cont`.
      await qmp.cont().catch((e: Error) => {
        if (!qmp.isClosed) throw e;
      });
      assert.equal(await exited, 99, stderr);
    } finally {
      if (!qmp.isClosed) await qmp.close();
    }
  });
});
