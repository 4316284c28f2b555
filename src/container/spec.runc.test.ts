/**
 * Runs containers from buildSpec output with the real runc and checks, from
 * inside, that the security defaults and limits took effect.
 *
 * Needs root, runc and a statically linked /bin/busybox; skipped otherwise.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { capMask, capsFromMask, formatCapMask } from './capabilities.js';
import { buildSpec, type SpecInput } from './spec.js';

const BUSYBOX = '/bin/busybox';
const CGROUP_ROOT = '/sys/fs/cgroup';
const CGROUP_PARENT = 'vessel-spectest';

function findRunc(): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', '/sbin', '/bin']) {
    const candidate = path.join(dir, 'runc');
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

const RUNC = findRunc();
// A test that cannot run fails loudly (project rule): say what is missing.
const missing =
  process.getuid?.() !== 0
    ? 'needs root'
    : !RUNC
      ? 'runc is not installed (npm run setup)'
      : !existsSync(BUSYBOX)
        ? `${BUSYBOX} is missing (npm run setup installs busybox-static)`
        : null;

const CGROUP_VERSION: 1 | 2 = existsSync(path.join(CGROUP_ROOT, 'cgroup.controllers')) ? 2 : 1;

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runProcess(file: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
}

/** Removes the container's cgroup directories that runc left behind in any hierarchy. */
async function removeCgroups(id: string): Promise<void> {
  let hierarchies: string[];
  try {
    hierarchies = CGROUP_VERSION === 2 ? [CGROUP_ROOT] : (await readdir(CGROUP_ROOT)).map((h) => path.join(CGROUP_ROOT, h));
  } catch {
    return;
  }
  for (const hierarchy of hierarchies) {
    for (const dir of [path.join(hierarchy, CGROUP_PARENT, id), path.join(hierarchy, CGROUP_PARENT)]) {
      // rmdir is the only way to remove a cgroup; the parent goes once it is empty.
      await rmdir(dir).catch(() => undefined);
    }
  }
}

describe('buildSpec with runc', () => {
  test('prerequisites are present', () => assert.equal(missing, null, missing ?? ''));

  let work = '';
  let rootfs = '';
  let runcRoot = '';

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'vessel-spec-runc-'));
    rootfs = path.join(work, 'rootfs');
    runcRoot = path.join(work, 'runc-root');
    await mkdir(path.join(rootfs, 'bin'), { recursive: true });
    await mkdir(runcRoot);
    for (const dir of ['proc', 'sys', 'dev', 'tmp', 'etc', 'mnt']) await mkdir(path.join(rootfs, dir));
    await copyFile(BUSYBOX, path.join(rootfs, 'bin', 'busybox'));
    await chmod(path.join(rootfs, 'bin', 'busybox'), 0o755);
    const list = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' });
    const applets = list.stdout.split('\n').filter((a) => a !== '' && a !== 'busybox' && !a.includes('/'));
    assert.ok(applets.includes('sh'), 'busybox has no sh applet');
    for (const applet of applets) await symlink('busybox', path.join(rootfs, 'bin', applet));
    await writeFile(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n');
    await writeFile(path.join(rootfs, 'etc', 'group'), 'root:x:0:\napp:x:1000:\n');
  });

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Runs `script` with /bin/sh in a fresh container and cleans everything up. */
  async function runScript(script: string, overrides: Partial<SpecInput> = {}): Promise<RunResult> {
    const id = `spectest-${randomBytes(6).toString('hex')}`;
    const bundle = path.join(work, id);
    await mkdir(bundle);
    const spec = buildSpec({
      rootfsPath: rootfs,
      readonlyRootfs: false,
      args: ['/bin/sh', '-c', script],
      env: [],
      cwd: '/',
      user: { uid: 0, gid: 0, additionalGids: [] },
      hostname: 'spectest',
      terminal: false,
      capAdd: [],
      capDrop: [],
      noNewPrivileges: false,
      cgroupsPath: `/${CGROUP_PARENT}/${id}`,
      cgroupVersion: CGROUP_VERSION,
      tmpfs: {},
      binds: [],
      hostRlimits: hostRlimits(),
      ...overrides,
    });
    await writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
    try {
      return await runProcess(RUNC as string, ['--root', runcRoot, 'run', '--bundle', bundle, id]);
    } finally {
      await runProcess(RUNC as string, ['--root', runcRoot, 'delete', '-f', id]).catch(() => undefined);
      await removeCgroups(id);
      await rm(bundle, { recursive: true, force: true });
    }
  }

  async function runOk(script: string, overrides: Partial<SpecInput> = {}): Promise<string> {
    const result = await runScript(script, overrides);
    assert.equal(result.code, 0, `container failed (exit ${result.code}):\n${result.stderr}\n${result.stdout}`);
    return result.stdout;
  }

  function field(status: string, name: string): string | undefined {
    return new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim();
  }

  test('the command is PID 1 with Docker capabilities, seccomp filter and hostname', async () => {
    const out = await runOk('echo pid=$$; echo cmd=$(tr "\\0" " " < /proc/1/cmdline); hostname; cat /proc/self/status');
    assert.match(out, /^pid=1$/m);
    assert.match(out, /^cmd=\/bin\/sh -c echo pid/m);
    assert.match(out, /^spectest$/m);
    assert.equal(field(out, 'CapEff'), '00000000a80425fb');
    assert.equal(field(out, 'CapPrm'), '00000000a80425fb');
    assert.equal(field(out, 'CapBnd'), '00000000a80425fb');
    assert.equal(field(out, 'CapInh'), '0000000000000000');
    assert.equal(field(out, 'CapAmb'), '0000000000000000');
    assert.equal(field(out, 'Seccomp'), '2');
    assert.equal(field(out, 'NoNewPrivs'), '0');
  });

  test('environment and rlimits', async () => {
    const out = await runOk('env; echo nofile=$(ulimit -n)', { env: ['FOO=bar'] });
    assert.match(out, /^FOO=bar$/m);
    assert.match(out, /^HOSTNAME=spectest$/m);
    assert.match(out, /^PATH=\/usr\/local\/sbin:/m);
    assert.match(out, new RegExp(`^nofile=${Math.min(1048576, hostRlimits().nofile.hard)}$`, 'm'));
  });

  test('drop ALL and add NET_BIND_SERVICE leaves only that capability', async () => {
    const out = await runOk('cat /proc/self/status', { capDrop: ['ALL'], capAdd: ['NET_BIND_SERVICE'] });
    assert.equal(field(out, 'CapEff'), '0000000000000400');
    assert.equal(field(out, 'CapBnd'), '0000000000000400');
  });

  test('noNewPrivileges sets NoNewPrivs', async () => {
    const out = await runOk('cat /proc/self/status', { noNewPrivileges: true });
    assert.equal(field(out, 'NoNewPrivs'), '1');
  });

  test('a read-only rootfs refuses writes while a tmpfs stays writable', async () => {
    const out = await runOk(
      'touch /x 2>/dev/null && echo root=rw || echo root=ro; touch /tmp/y && echo tmp=rw; grep " /tmp " /proc/mounts',
      { readonlyRootfs: true, tmpfs: { '/tmp': 'rw,size=64m,mode=1777' } },
    );
    assert.match(out, /^root=ro$/m);
    assert.match(out, /^tmp=rw$/m);
    assert.match(out, /^tmpfs \/tmp tmpfs rw,nosuid,nodev,noexec,relatime,size=65536k(,mode=1777)?/m);
  });

  test('binds are mounted, read-only when asked', async () => {
    const data = path.join(work, 'bind-data');
    await mkdir(data, { recursive: true });
    await writeFile(path.join(data, 'hello'), 'from host\n');
    const out = await runOk('cat /data/hello; echo x > /data/new 2>/dev/null && echo data=rw || echo data=ro; echo y > /scratch/z && echo scratch=rw', {
      binds: [
        { source: data, destination: '/data', readonly: true },
        { source: data, destination: '/scratch', readonly: false },
      ],
    });
    assert.match(out, /^from host$/m);
    assert.match(out, /^data=ro$/m);
    assert.match(out, /^scratch=rw$/m);
  });

  test('a non-root user runs with its ids and no effective capabilities', async () => {
    const out = await runOk('id -u; id -g; id -G; cat /proc/self/status', {
      user: { uid: 1000, gid: 1000, additionalGids: [1000, 20] },
    });
    const lines = out.split('\n');
    assert.equal(lines[0], '1000');
    assert.equal(lines[1], '1000');
    assert.match(lines[2] ?? '', /\b20\b/);
    assert.equal(field(out, 'CapEff'), '0000000000000000');
  });

  test('memory, cpu and pids limits land in the container cgroup', async () => {
    const script =
      CGROUP_VERSION === 1
        ? 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/pids/pids.max'
        : 'cat /sys/fs/cgroup/memory.max; cut -d" " -f1 /sys/fs/cgroup/cpu.max; cut -d" " -f2 /sys/fs/cgroup/cpu.max; cat /sys/fs/cgroup/pids.max';
    const out = await runOk(script, { memory: 64 * 1024 * 1024, nanoCpus: 500_000_000, pidsLimit: 100 });
    assert.deepEqual(out.trim().split('\n'), ['67108864', '50000', '100000', '100']);
  });

  test('masked and read-only paths, default devices', async () => {
    const out = await runOk(
      [
        // Masked files read as empty (kcore may not exist at all), masked directories are empty.
        'echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c)',
        'echo keys=$(cat /proc/keys | wc -c)',
        'echo timer_list=$(cat /proc/timer_list | wc -c)',
        'echo firmware=$(ls -A /sys/firmware | wc -l)',
        'echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo procsys=rw || echo procsys=ro',
        'for d in null zero full random urandom tty; do test -c /dev/$d && echo dev=$d; done',
        'test -e /dev/ptmx && echo dev=ptmx',
        'for l in fd stdin stdout stderr; do test -L /dev/$l && echo link=$l; done',
        'echo discard > /dev/null && echo null=ok',
        'echo zero=$(head -c 16 /dev/zero | wc -c)',
        'echo urandom=$(head -c 16 /dev/urandom | wc -c)',
        'mknod /dev/sda1 b 8 1 && echo mknod=ok',
        'head -c 1 /dev/sda1 2>/dev/null && echo sda=read || echo sda=denied',
      ].join('; '),
    );
    assert.match(out, /^kcore=0$/m);
    assert.match(out, /^keys=0$/m);
    assert.match(out, /^timer_list=0$/m);
    assert.match(out, /^firmware=0$/m);
    assert.match(out, /^procsys=ro$/m);
    for (const d of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'ptmx']) assert.match(out, new RegExp(`^dev=${d}$`, 'm'));
    for (const l of ['fd', 'stdin', 'stdout', 'stderr']) assert.match(out, new RegExp(`^link=${l}$`, 'm'));
    assert.match(out, /^null=ok$/m);
    assert.match(out, /^zero=16$/m);
    assert.match(out, /^urandom=16$/m);
    assert.match(out, /^mknod=ok$/m);
    assert.match(out, /^sda=denied$/m);
  });

  test('seccomp blocks namespace creation and mount unless CAP_SYS_ADMIN; allowed personalities work', async () => {
    const script = [
      'unshare -U true 2>/dev/null && echo userns=yes || echo userns=no',
      'mount -t tmpfs none /mnt 2>/dev/null && echo mount=yes || echo mount=no',
      'linux32 true && echo linux32=yes || echo linux32=no',
    ].join('; ');
    const confined = await runOk(script);
    assert.match(confined, /^userns=no$/m);
    assert.match(confined, /^mount=no$/m);
    assert.match(confined, /^linux32=yes$/m);

    // The same container without the filter can create a user namespace: the filter is what stopped it.
    const unconfined = await runOk(script, { seccomp: 'unconfined' });
    assert.match(unconfined, /^userns=yes$/m);

    const admin = await runOk(script, { capAdd: ['SYS_ADMIN'] });
    assert.match(admin, /^userns=yes$/m);
    assert.match(admin, /^mount=yes$/m);
  });

  test('a real multi-threaded program runs under the default profile (clone3 falls back to clone)', async () => {
    assert.ok(process.execPath.startsWith('/usr/'), `this test borrows the host /usr and needs node under it, not ${process.execPath}`);
    // Borrow the host's /usr (node and its libraries) read-only; /lib and /lib64 point into it.
    for (const link of ['lib', 'lib64']) {
      if (!existsSync(path.join(rootfs, link))) await symlink(`usr/${link}`, path.join(rootfs, link));
    }
    const program = [
      "const { Worker } = require('node:worker_threads');",
      "const w = new Worker('require(\"node:worker_threads\").parentPort.postMessage(6 * 7)', { eval: true });",
      "w.on('message', (m) => { console.log('worker says ' + m); w.terminate(); });",
      "require('node:fs').writeFileSync('/tmp/f', 'x'); console.log('fs ok ' + require('node:fs').statSync('/tmp/f').size);",
    ].join('\n');
    const out = await runOk(`${process.execPath} -e '${program.replaceAll("'", "'\\''")}'`, {
      binds: [{ source: '/usr', destination: '/usr', readonly: true }],
      tmpfs: { '/tmp': '' },
    });
    assert.match(out, /^worker says 42$/m);
    assert.match(out, /^fs ok 1$/m);
  });

  test('added capabilities show up in CapEff', async () => {
    const out = await runOk('cat /proc/self/status', { capAdd: ['SYS_PTRACE', 'NET_ADMIN'] });
    const mask = BigInt(`0x${field(out, 'CapEff') ?? '0'}`);
    assert.equal(mask, 0xa80425fbn | (1n << 19n) | (1n << 12n));
  });

  test('add ALL limited to the daemon bounding set starts and grants exactly that set', async () => {
    const own = /^CapBnd:\s*(\S+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
    const out = await runOk('cat /proc/self/status', { capAdd: ['ALL'], availableCapabilities: capsFromMask(BigInt(`0x${own}`)) });
    assert.equal(field(out, 'CapEff'), formatCapMask(capMask(capsFromMask(BigInt(`0x${own}`)))));
    assert.equal(field(out, 'Seccomp'), '2');
  });
});

/** The test process's own rlimits stand in for the daemon's. */
function hostRlimits(): SpecInput['hostRlimits'] {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const pair = (label: string): { soft: number; hard: number } => {
    const match = new RegExp(`^${label}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(limits);
    assert.ok(match, `no "${label}" in /proc/self/limits`);
    const value = (text: string | undefined): number => (text === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(text));
    return { soft: value(match[1]), hard: value(match[2]) };
  };
  return { nofile: pair('Max open files'), nproc: pair('Max processes') };
}
