/**
 * A real guest boot from a Vessel image: the guest kernel, initramfs and kit,
 * a base disk built from image layers, an overlay disk larger than the base,
 * and QEMU (TCG) speaking the guest-agent protocol.
 *
 * Two images: a busybox tree (fast, always built here) shut down through
 * qemu-ga's guest-shutdown, and a Debian minbase root file system
 * (`vessel image bootstrap debian:bookworm` into a real ImageStore; the
 * mmdebstrap tar is cached in /var/tmp/vessel-test-cache) shut down through the
 * ACPI power button. Missing tools fail the test; nothing is skipped.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, promises as fs, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync, chmodSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ensureGuestKernel, type GuestKernel } from '../../src/vm/guest/kernel.js';
import { ensureInitramfs } from '../../src/vm/guest/initramfs.js';
import { ensureGuestKit } from '../../src/vm/guest/kit.js';
import { createOverlayDisk, diskVirtualSize, ensureBaseDisk } from '../../src/vm/guest/base-disk.js';
import { guestKernelCmdline, hostTscKhz, type GuestIdentity } from '../../src/vm/guest/cmdline.js';
import { GUEST_AGENT_PORT } from '../../src/vm/guest/kit-scripts.js';
import { mknod, S_IFCHR, setxattr } from '../../src/native/native.js';
import { ImageStore } from '../../src/image/image-store.js';
import { bootstrapImage } from '../../src/image/bootstrap.js';
import { openDb } from '../../src/store/db.js';

const CACHE = '/var/tmp/vessel-test-cache';
const MiB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let work: string;
let kernel: GuestKernel;
let initrd: string;
let kitDir: string;
const netns = `vmtest${process.pid}`;
let netnsMade = false;

function need(tool: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`]);
  assert.equal(r.status, 0, `${tool} is required for this test (install it; the test does not skip)`);
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  assert.equal(process.getuid?.(), 0, 'this test needs root (overlay mounts, network namespaces)');
  for (const t of ['qemu-system-x86_64', 'qemu-img', 'mke2fs', 'cpio', 'apt-get', 'dpkg-deb', 'ip', 'ldd', 'tar', 'mmdebstrap']) need(t);
  mkdirSync(CACHE, { recursive: true });
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'vessel-vmboot-'));
  let t = Date.now();
  kernel = await ensureGuestKernel(CACHE, (l) => console.log(`# ${l}`));
  console.log(`# guest kernel ${kernel.version} (${Date.now() - t} ms)`);
  t = Date.now();
  initrd = await ensureInitramfs(kernel, CACHE);
  console.log(`# initramfs ${initrd} (${Date.now() - t} ms)`);
  t = Date.now();
  kitDir = await ensureGuestKit(CACHE);
  console.log(`# kit ${kitDir} (${Date.now() - t} ms)`);
  sh('ip', ['netns', 'add', netns]);
  netnsMade = true;
});

after(async () => {
  if (netnsMade) spawnSync('ip', ['netns', 'del', netns]);
  if (work) rmSync(work, { recursive: true, force: true });
});

test('cached pieces are reused without rebuilding', async () => {
  const t = Date.now();
  assert.deepEqual(await ensureGuestKernel(CACHE), kernel);
  assert.equal(await ensureInitramfs(kernel, CACHE), initrd);
  assert.equal(await ensureGuestKit(CACHE), kitDir);
  assert.ok(Date.now() - t < 5000, `cache hits took ${Date.now() - t} ms`);
  assert.ok(existsSync(path.join(kitDir, '.vessel/init')));
  assert.ok(existsSync(path.join(kitDir, '.vessel/ga/qemu-ga')));
});

/** A minimal busybox "image" layer (what `vessel image bootstrap busybox` makes). */
function busyboxLayer(dir: string): void {
  for (const d of ['bin', 'sbin', 'etc', 'root', 'tmp', 'proc', 'sys', 'dev', 'run', 'usr/bin', 'usr/sbin']) mkdirSync(path.join(dir, d), { recursive: true });
  chmodSync(dir, 0o755);
  copyFileSync('/bin/busybox', path.join(dir, 'bin/busybox'));
  chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  for (const a of sh('/bin/busybox', ['--list-full']).split('\n').filter(Boolean)) {
    if (a === 'bin/busybox' || existsSync(path.join(dir, a))) continue;
    symlinkSync(path.relative(path.dirname(path.join(dir, a)), path.join(dir, 'bin/busybox')), path.join(dir, a));
  }
  writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(path.join(dir, 'etc/group'), 'root:x:0:\ntty:x:5:\n');
  writeFileSync(path.join(dir, 'etc/hostname'), 'busybox\n');
}

/** Newline-JSON client for the guest agent (or QMP) on a unix socket. */
class JsonLineSocket {
  #buf = Buffer.alloc(0);
  #waiters: Array<() => void> = [];
  closed = false;
  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    sock.on('error', () => undefined);
  }
  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
  static async connect(p: string, timeoutMs: number): Promise<JsonLineSocket> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const s = await new Promise<net.Socket>((resolve, reject) => {
          const c = net.connect(p, () => resolve(c));
          c.once('error', reject);
        });
        return new JsonLineSocket(s);
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await sleep(100);
      }
    }
  }
  send(obj: unknown): void {
    this.sock.write(JSON.stringify(obj) + '\n');
  }
  /** Drops everything up to and including the next 0xFF (guest-sync-delimited). */
  async skipToDelimiter(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.#buf.indexOf(0xff);
      if (i >= 0) {
        this.#buf = this.#buf.subarray(i + 1);
        return true;
      }
      this.#buf = Buffer.alloc(0);
      if (!(await this.#wait(deadline))) return false;
    }
  }
  /** The next JSON message, or null on timeout. */
  async next(timeoutMs: number): Promise<any | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const nl = this.#buf.indexOf(0x0a);
      if (nl >= 0) {
        // 0xFF never occurs in UTF-8 JSON: it is a sync delimiter, drop it
        const bytes = this.#buf.subarray(0, nl).filter((b) => b !== 0xff);
        this.#buf = this.#buf.subarray(nl + 1);
        const line = Buffer.from(bytes).toString().trim();
        if (line) return JSON.parse(line);
        continue;
      }
      if (!(await this.#wait(deadline))) return null;
    }
  }
  #wait(deadline: number): Promise<boolean> {
    const left = deadline - Date.now();
    if (left <= 0 || this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), left);
      this.#waiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }
  close(): void {
    this.sock.destroy();
  }
}

/** guest-sync-delimited until the agent answers (a fresh id each try), then a command helper. */
async function agentSync(ga: JsonLineSocket, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let id = 1000 + Math.floor(Math.random() * 1000);
  while (Date.now() < deadline) {
    id++;
    ga.send({ execute: 'guest-sync-delimited', arguments: { id } });
    // short attempts: a sync sent before the agent runs waits in the socket
    // and is answered later (stale ids are skipped), so retrying is cheap
    const tryUntil = Date.now() + 500;
    if (!(await ga.skipToDelimiter(500))) continue;
    while (Date.now() < tryUntil) {
      const m = await ga.next(tryUntil - Date.now());
      if (m?.return === id) return;
      if (m === null) break;
      // a late answer to an earlier sync: keep reading
    }
  }
  throw new Error(`guest agent did not answer guest-sync-delimited within ${timeoutMs} ms`);
}

async function agentCall(ga: JsonLineSocket, execute: string, args?: unknown, timeoutMs = 10_000): Promise<any> {
  ga.send(args === undefined ? { execute } : { execute, arguments: args });
  const m = await ga.next(timeoutMs);
  assert.ok(m, `${execute}: no answer within ${timeoutMs} ms`);
  assert.ok(!m.error, `${execute}: ${JSON.stringify(m.error)}`);
  return m.return;
}

async function guestExec(ga: JsonLineSocket, file: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { pid } = await agentCall(ga, 'guest-exec', { path: file, arg: args, 'capture-output': true });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const st = await agentCall(ga, 'guest-exec-status', { pid });
    if (st.exited) {
      return {
        code: st.exitcode,
        out: Buffer.from(st['out-data'] ?? '', 'base64').toString(),
        err: Buffer.from(st['err-data'] ?? '', 'base64').toString(),
      };
    }
    assert.ok(Date.now() < deadline, `guest-exec ${file} did not finish`);
    await sleep(100);
  }
}

interface Boot {
  qemu: ChildProcess;
  exited: Promise<number | null>;
  serialLog: string;
  ga: JsonLineSocket;
  qmp: JsonLineSocket;
  bootToAgentMs: number;
  stderr: () => string;
}

async function boot(name: string, disk: string, id: GuestIdentity, machine: 'q35' | 'microvm' = 'q35'): Promise<Boot> {
  const dir = path.join(work, name);
  mkdirSync(dir, { recursive: true });
  const gaSock = path.join(dir, 'ga.sock');
  const qmpSock = path.join(dir, 'qmp.sock');
  const serialLog = path.join(dir, 'serial.log');
  const mac = id.nics[0]!.mac;
  // microvm: virtio-mmio devices found through ACPI, and the TSC frequency
  // given up front (TCG calibration hangs there otherwise)
  const micro = machine === 'microvm';
  const bus = micro ? 'device' : 'pci';
  const tscKhz = micro ? hostTscKhz() : null;
  if (micro) assert.ok(tscKhz, 'the host TSC frequency is needed for microvm');
  const append = guestKernelCmdline(id, micro ? { tscKhz: tscKhz! } : {});
  const args = [
    'netns', 'exec', netns, 'qemu-system-x86_64',
    '-accel', 'tcg', '-M', micro ? 'microvm,acpi=on,rtc=on' : 'q35', '-nodefaults', '-display', 'none', '-no-user-config', '-no-reboot',
    '-m', '512', '-smp', '1',
    '-kernel', kernel.vmlinuz, '-initrd', initrd, '-append', append,
    '-blockdev', `driver=qcow2,node-name=disk0,file.driver=file,file.filename=${disk}`,
    '-device', `virtio-blk-${bus},drive=disk0`,
    '-device', `virtio-serial-${bus},id=vser0`,
    '-chardev', `socket,id=qga0,path=${gaSock},server=on,wait=off`,
    '-device', `virtserialport,bus=vser0.0,chardev=qga0,name=${GUEST_AGENT_PORT}`,
    '-chardev', `file,id=ser0,path=${serialLog}`, '-serial', 'chardev:ser0',
    '-netdev', `tap,id=net0,ifname=${name}0,script=no,downscript=no`,
    '-device', `virtio-net-${bus},netdev=net0,mac=${mac}`,
    '-qmp', `unix:${qmpSock},server=on,wait=off`,
  ];
  const started = Date.now();
  const qemu = spawn('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  qemu.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => qemu.on('exit', (code) => resolve(code)));
  const kill = (): void => {
    if (qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL');
  };
  try {
    const qmp = await JsonLineSocket.connect(qmpSock, 10_000);
    assert.ok((await qmp.next(5000))?.QMP, 'QMP greeting');
    qmp.send({ execute: 'qmp_capabilities' });
    assert.deepEqual((await qmp.next(5000))?.return, {});
    const ga = await JsonLineSocket.connect(gaSock, 10_000);
    await agentSync(ga, 120_000);
    assert.deepEqual(await agentCall(ga, 'guest-ping'), {});
    const bootToAgentMs = Date.now() - started;
    console.log(`# ${name}: boot to guest agent ${bootToAgentMs} ms`);
    return { qemu, exited, serialLog, ga, qmp, bootToAgentMs, stderr: () => stderr };
  } catch (e) {
    kill();
    const log = existsSync(serialLog) ? readFileSync(serialLog, 'utf8') : '(no serial log)';
    throw new Error(`${name} did not boot: ${e instanceof Error ? e.message : e}\nqemu: ${stderr}\nserial:\n${log.slice(-4000)}`);
  }
}

/** Prints the guest's console as test diagnostics (what an operator would see). */
function showSerial(b: Boot, name: string): void {
  for (const line of readFileSync(b.serialLog, 'utf8').split('\n')) if (line.trim()) console.log(`# ${name} serial: ${line.replace(/[\x00-\x1f]/g, '')}`);
}

async function waitExit(b: Boot, timeoutMs: number): Promise<number | null> {
  const t = setTimeout(() => b.qemu.kill('SIGKILL'), timeoutMs);
  const started = Date.now();
  const code = await b.exited;
  clearTimeout(t);
  console.log(`# ${path.basename(path.dirname(b.serialLog))}: shutdown request to QEMU exit ${Date.now() - started} ms`);
  assert.ok(Date.now() - started < timeoutMs, `QEMU did not exit by itself within ${timeoutMs} ms; serial:\n${readFileSync(b.serialLog, 'utf8').slice(-3000)}`);
  return code;
}

/** After a shutdown request: QEMU exits 0 by itself and the guest's init logged its poweroff. */
async function expectPoweroff(b: Boot): Promise<void> {
  const code = await waitExit(b, 30_000);
  assert.equal(code, 0, `QEMU exit code; stderr: ${b.stderr()}`);
  assert.match(readFileSync(b.serialLog, 'utf8'), /vessel: poweroff/);
}

/** Shows the console, closes the sockets and makes sure QEMU is gone. */
async function tearDown(b: Boot): Promise<void> {
  showSerial(b, path.basename(path.dirname(b.serialLog)));
  b.ga.close();
  b.qmp.close();
  if (b.qemu.exitCode === null) b.qemu.kill('SIGKILL');
  await b.exited;
}

/** The checks both images share: kernel, identity, network, grown disk, console. */
async function checkGuest(b: Boot, id: GuestIdentity, disk: { size: number; baseSize: number }, hostIp: string): Promise<void> {
  const uname = await guestExec(b.ga, 'uname', ['-r']);
  assert.equal(uname.code, 0, uname.err);
  assert.equal(uname.out.trim(), kernel.version);

  const host = await guestExec(b.ga, 'cat', ['/etc/hostname', '/etc/machine-id']);
  assert.deepEqual(host.out.trim().split('\n'), [id.hostname, id.machineId]);
  const addr = await guestExec(b.ga, '/.vessel/bin/ip', ['-4', '-o', 'addr', 'show']);
  assert.match(addr.out, new RegExp(`inet ${id.nics[0]!.address!.replace(/\./g, '\\.')} `));
  const route = await guestExec(b.ga, '/.vessel/bin/ip', ['route', 'show', 'default']);
  assert.match(route.out, new RegExp(`default via ${id.nics[0]!.gateway!.replace(/\./g, '\\.')}`));
  const resolv = await guestExec(b.ga, 'cat', ['/etc/resolv.conf']);
  assert.match(resolv.out, /nameserver 10\.89\.77\.53/);
  // the guest answers on the test network (only the test namespace sees it)
  const ping = await guestExec(b.ga, '/.vessel/bin/ping', ['-c', '1', '-W', '5', hostIp]);
  assert.equal(ping.code, 0, `guest ping ${hostIp}: ${ping.out}${ping.err}`);

  // The overlay disk is bigger than the base: the initramfs grew the ext4.
  const df = await guestExec(b.ga, '/.vessel/bin/df', ['-k', '/']);
  const totalK = Number(df.out.trim().split('\n')[1]?.trim().split(/\s+/)[1]);
  // (ext4 reports its size without the journal and inode tables, so compare with the base disk)
  assert.ok(totalK * 1024 > disk.baseSize, `root file system is ${totalK} KiB on a ${disk.size}-byte disk over a ${disk.baseSize}-byte base: ${df.out}`);

  // reidentify re-applies hostname, machine id and address in the running guest
  const re = await guestExec(b.ga, '/.vessel/bin/reidentify', [`${id.hostname}-2`, 'f'.repeat(32), id.nics[0]!.mac, '10.89.77.9/24', '10.89.77.1', '10.89.77.54']);
  assert.equal(re.code, 0, re.out + re.err);
  const after = await guestExec(b.ga, '/.vessel/bin/sh', ['-c', 'hostname; cat /etc/machine-id; ip -4 -o addr show; cat /etc/resolv.conf']);
  assert.match(after.out, new RegExp(`^${id.hostname}-2\nf{32}\n`));
  assert.match(after.out, /inet 10\.89\.77\.9\/24/);
  assert.match(after.out, /nameserver 10\.89\.77\.54/);

  // init reaps orphans: a background child of an exited shell leaves no zombie
  await guestExec(b.ga, '/.vessel/bin/sh', ['-c', '(/.vessel/bin/sleep 0.2 &); exit 0']);
  await sleep(1000);
  const ps = await guestExec(b.ga, '/.vessel/bin/ps', ['-o', 'pid,stat,comm']);
  assert.doesNotMatch(ps.out, /^\s*\d+\s+Z/m, `zombies:\n${ps.out}`);

  const serial = readFileSync(b.serialLog, 'utf8');
  assert.match(serial, new RegExp(`vessel: ${id.hostname} console: shell on ttyS0`));
}

function identity(hostname: string, mac: string, ip: string): GuestIdentity {
  return {
    hostname,
    machineId: Buffer.from(hostname.padEnd(16, 'x').slice(0, 16)).toString('hex'),
    nics: [{ mac, address: `${ip}/24`, gateway: '10.89.77.1' }],
    dns: ['10.89.77.53'],
  };
}

async function setupHostSide(ifname: string): Promise<void> {
  // QEMU creates the tap in the namespace shortly after start
  const deadline = Date.now() + 10_000;
  while (spawnSync('ip', ['-n', netns, 'link', 'show', ifname]).status !== 0) {
    assert.ok(Date.now() < deadline, `tap ${ifname} did not appear`);
    await sleep(50);
  }
  sh('ip', ['-n', netns, 'addr', 'add', '10.89.77.1/24', 'dev', ifname]);
  sh('ip', ['-n', netns, 'link', 'set', ifname, 'up']);
}

async function imageDisk(name: string, layers: string[], extra: number, imageId = `sha256:${Buffer.from(name).toString('hex').padEnd(64, '0')}`): Promise<{ disk: string; size: number; baseSize: number }> {
  const t = Date.now();
  const base = await ensureBaseDisk({ lowerDirs: layers, imageId, outDir: path.join(work, 'disks'), kitDir, cacheDir: CACHE });
  assert.equal(base.path, path.join(work, 'disks', `${imageId.replace('sha256:', '')}-${path.basename(kitDir).slice(0, 16)}.qcow2`));
  const again = Date.now();
  assert.deepEqual(await ensureBaseDisk({ lowerDirs: layers, imageId, outDir: path.join(work, 'disks'), kitDir, cacheDir: CACHE }), base);
  assert.ok(Date.now() - again < 2000, 'a cached base disk is not rebuilt');
  console.log(`# ${name}: base disk ${base.virtualSize / MiB} MiB in ${Date.now() - t} ms`);
  assert.equal(await diskVirtualSize(base.path), base.virtualSize);
  const disk = path.join(work, `${name}.qcow2`);
  const size = base.virtualSize + extra;
  await createOverlayDisk(base.path, disk, size);
  const info = JSON.parse(sh('qemu-img', ['info', '--output=json', disk]));
  assert.equal(info['backing-filename'], base.path);
  assert.equal(info['backing-filename-format'], 'qcow2');
  assert.equal(info['virtual-size'], size);
  return { disk, size, baseSize: base.virtualSize };
}

test('a busybox image boots, runs guest-exec and powers off through guest-shutdown', async () => {
  const layer = path.join(work, 'busybox-layer');
  busyboxLayer(layer);
  // a second, empty-ish layer on top, to exercise a multi-layer lowerdir
  const top = path.join(work, 'busybox-top');
  mkdirSync(path.join(top, 'etc'), { recursive: true });
  chmodSync(top, 0o755);
  writeFileSync(path.join(top, 'etc', 'motd'), 'vessel test image\n');
  // overlayfs layer semantics must survive into the disk: a whiteout hides a
  // lower file, an opaque directory hides a lower directory's entries
  for (const f of ['srv/keep', 'srv/gone', 'opt/old']) {
    mkdirSync(path.dirname(path.join(layer, f)), { recursive: true });
    writeFileSync(path.join(layer, f), f);
  }
  mkdirSync(path.join(top, 'srv'));
  mknod(path.join(top, 'srv', 'gone'), S_IFCHR, 0, 0);
  mkdirSync(path.join(top, 'opt'));
  setxattr(path.join(top, 'opt'), 'trusted.overlay.opaque', 'y');
  writeFileSync(path.join(top, 'opt', 'new'), 'new');
  // an image with power commands of its own: a link to a failing "systemctl"
  // and a plain file; init must take both over (guest-shutdown below relies on it)
  mkdirSync(path.join(top, 'bin'));
  mkdirSync(path.join(top, 'sbin'));
  writeFileSync(path.join(top, 'bin', 'fakectl'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  symlinkSync('../bin/fakectl', path.join(top, 'sbin', 'shutdown'));
  writeFileSync(path.join(top, 'sbin', 'halt'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  const d = await imageDisk('bb', [top, layer], 256 * MiB);
  const id = identity('bbguest', '52:54:00:77:00:05', '10.89.77.5');
  const b = await boot('bb', d.disk, id);
  try {
    await setupHostSide('bb0');
    await checkGuest(b, id, d, '10.89.77.1');
    const motd = await guestExec(b.ga, 'cat', ['/etc/motd']);
    assert.equal(motd.out, 'vessel test image\n');
    const ls = await guestExec(b.ga, 'ls', ['/srv', '/opt']);
    assert.equal(ls.out, '/opt:\nnew\n\n/srv:\nkeep\n');
    const takeover = await guestExec(b.ga, '/.vessel/bin/sh', ['-c', 'readlink /sbin/shutdown; cat /bin/fakectl; cmp /sbin/halt /.vessel/bin/halt && echo halt-covered']);
    assert.equal(takeover.out, '/.vessel/bin/shutdown\n#!/bin/sh\nexit 1\nhalt-covered\n');
    // the console shell is respawned when it dies (init's respawn loop, also
    // named init, keeps running)
    const banner = /console: shell on ttyS0/g;
    const before = readFileSync(b.serialLog, 'utf8').match(banner)?.length ?? 0;
    const kill = await guestExec(b.ga, '/.vessel/bin/sh', ['-c', 'for p in /proc/[0-9]*; do [ "$(readlink $p/fd/0)" = /dev/ttyS0 ] && [ "$(cat $p/comm)" != init ] && kill -KILL ${p#/proc/} && echo killed; done']);
    assert.match(kill.out, /killed/);
    const deadline = Date.now() + 10_000;
    while ((readFileSync(b.serialLog, 'utf8').match(banner)?.length ?? 0) <= before) {
      assert.ok(Date.now() < deadline, 'the console shell was not respawned');
      await sleep(200);
    }
    b.ga.send({ execute: 'guest-shutdown' });
    await expectPoweroff(b);
  } finally {
    await tearDown(b);
  }
});

test('a Debian minbase image boots and powers off on the ACPI power button', async () => {
  // a real image store entry: bootstrap's debian:bookworm (mmdebstrap
  // minbase, tar cached in the shared test cache) imported as layers
  const db = openDb(path.join(work, 'images.db'));
  let d: { disk: string; size: number; baseSize: number };
  try {
    const store = new ImageStore(path.join(work, 'images'), db);
    await store.init();
    const t = Date.now();
    const image = await bootstrapImage(store, 'debian:bookworm', { cacheDir: CACHE });
    console.log(`# deb: image import ${Date.now() - t} ms`);
    d = await imageDisk('deb', store.lowerDirs(image), 128 * MiB, image.id);
  } finally {
    db.close();
  }
  const id = identity('debguest', '52:54:00:77:00:06', '10.89.77.6');
  const b = await boot('deb', d.disk, id);
  try {
    await setupHostSide('deb0');
    await checkGuest(b, id, d, '10.89.77.1');
    const osr = await guestExec(b.ga, 'cat', ['/etc/os-release']);
    assert.match(osr.out, /bookworm/);
    // qemu-ga's shutdown path exists in an image that had none
    const sd = await guestExec(b.ga, '/.vessel/bin/readlink', ['-f', '/sbin/shutdown']);
    assert.equal(sd.out.trim(), '/.vessel/bin/shutdown');
    // ownership and modes come through mke2fs -d: setuid passwd, sticky /tmp on disk, root-owned /
    const st = await guestExec(b.ga, '/.vessel/bin/stat', ['-c', '%a %u %n', '/usr/bin/passwd', '/var/tmp', '/']);
    assert.equal(st.out, '4755 0 /usr/bin/passwd\n1777 0 /var/tmp\n755 0 /\n');
    b.qmp.send({ execute: 'system_powerdown' });
    await expectPoweroff(b);
  } finally {
    await tearDown(b);
  }
});

test('the busybox image boots on microvm too (virtio-mmio, tsc_early_khz)', async () => {
  const layer = path.join(work, 'mvm-layer');
  busyboxLayer(layer);
  const d = await imageDisk('mvm', [layer], 64 * MiB);
  const id = identity('mvmguest', '52:54:00:77:00:07', '10.89.77.7');
  const b = await boot('mvm', d.disk, id, 'microvm');
  try {
    await setupHostSide('mvm0');
    await checkGuest(b, id, d, '10.89.77.1');
    b.ga.send({ execute: 'guest-shutdown' });
    assert.equal(await waitExit(b, 30_000), 0, `QEMU exit code; stderr: ${b.stderr()}`);
  } finally {
    await tearDown(b);
  }
});
