import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailedPreconditionError, InvalidArgumentError } from '../core/errors.js';
import { DEFAULT_CAPABILITIES } from './capabilities.js';
import {
  DEFAULT_MASKED_PATHS,
  DEFAULT_PATH,
  DEFAULT_READONLY_PATHS,
  buildSpec,
  containerEnv,
  parseTmpfsOptions,
  validateSpecInput,
  type OciMount,
  type OciSeccomp,
  type SpecInput,
} from './spec.js';

function input(overrides: Partial<SpecInput> = {}): SpecInput {
  return {
    rootfsPath: '/var/lib/vessel/containers/abc/rootfs',
    readonlyRootfs: false,
    args: ['/bin/sh', '-c', 'echo hi'],
    env: ['FOO=bar'],
    cwd: '/',
    user: { uid: 0, gid: 0, additionalGids: [] },
    hostname: 'abc123',
    terminal: false,
    capAdd: [],
    capDrop: [],
    noNewPrivileges: false,
    cgroupsPath: '/vessel/abc',
    cgroupVersion: 1,
    tmpfs: {},
    binds: [],
    hostRlimits: { nofile: { soft: 20000, hard: 20000 }, nproc: { soft: 96365, hard: 96365 } },
    arch: 'x64',
    ...overrides,
  };
}

function mount(spec: { mounts: OciMount[] }, destination: string): OciMount | undefined {
  return spec.mounts.find((m) => m.destination === destination);
}

function rejects(overrides: Partial<SpecInput>, message: RegExp | string): void {
  assert.throws(
    () => buildSpec(input(overrides)),
    (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, String(e));
      if (typeof message === 'string') assert.equal(e.message, message);
      else assert.match(e.message, message);
      return true;
    },
  );
}

test('top level: version, root, hostname, process basics', () => {
  const spec = buildSpec(input({ readonlyRootfs: true, annotations: { 'io.vessel.id': 'abc' } }));
  assert.equal(spec.ociVersion, '1.0.2');
  assert.deepEqual(spec.root, { path: '/var/lib/vessel/containers/abc/rootfs', readonly: true });
  assert.equal(spec.hostname, 'abc123');
  assert.deepEqual(spec.annotations, { 'io.vessel.id': 'abc' });
  assert.deepEqual(spec.process.args, ['/bin/sh', '-c', 'echo hi']);
  assert.equal(spec.process.cwd, '/');
  assert.equal(spec.process.terminal, false);
  assert.equal(spec.process.noNewPrivileges, false);
  assert.equal(spec.process.oomScoreAdj, 0);
  assert.equal(spec.process.apparmorProfile, undefined);
  assert.deepEqual(spec.process.user, { uid: 0, gid: 0, additionalGids: [] });
  assert.deepEqual(JSON.parse(JSON.stringify(spec)), spec);
});

test('capabilities: bounding = effective = permitted, nothing inheritable or ambient', () => {
  const caps = buildSpec(input()).process.capabilities;
  assert.deepEqual(caps?.bounding, [...DEFAULT_CAPABILITIES]);
  assert.deepEqual(caps?.effective, [...DEFAULT_CAPABILITIES]);
  assert.deepEqual(caps?.permitted, [...DEFAULT_CAPABILITIES]);
  assert.deepEqual(caps?.inheritable, []);
  assert.deepEqual(caps?.ambient, []);

  const only = buildSpec(input({ capDrop: ['ALL'], capAdd: ['net_bind_service'] })).process.capabilities;
  assert.deepEqual(only?.effective, ['CAP_NET_BIND_SERVICE']);
  rejects({ capAdd: ['FOO'] }, 'Unknown capability: FOO');
});

test('availableCapabilities limits ALL and the defaults, and refuses explicit adds outside it', () => {
  const available = ['CAP_CHOWN', 'CAP_KILL', 'sys_admin'];
  const all = buildSpec(input({ capAdd: ['ALL'], availableCapabilities: available })).process.capabilities;
  assert.deepEqual(all?.bounding, ['CAP_CHOWN', 'CAP_KILL', 'CAP_SYS_ADMIN']);
  const defaults = buildSpec(input({ availableCapabilities: available })).process.capabilities;
  assert.deepEqual(defaults?.effective, ['CAP_CHOWN', 'CAP_KILL']);
  const added = buildSpec(input({ capAdd: ['SYS_ADMIN'], availableCapabilities: available })).process.capabilities;
  assert.deepEqual(added?.permitted, ['CAP_CHOWN', 'CAP_KILL', 'CAP_SYS_ADMIN']);
  assert.throws(
    () => buildSpec(input({ capAdd: ['SYS_RESOURCE'], availableCapabilities: available })),
    (e: unknown) => e instanceof FailedPreconditionError && e.message === 'Capability not available to the daemon: CAP_SYS_RESOURCE',
  );
  // With ALL added, a named drop wins over a named add, so nothing unavailable is requested.
  const dropped = buildSpec(
    input({ capAdd: ['ALL', 'SYS_RESOURCE'], capDrop: ['SYS_RESOURCE'], availableCapabilities: available }),
  ).process.capabilities;
  assert.deepEqual(dropped?.bounding, ['CAP_CHOWN', 'CAP_KILL', 'CAP_SYS_ADMIN']);
});

test('environment gets Docker defaults that the input overrides', () => {
  assert.deepEqual(buildSpec(input()).process.env, [`PATH=${DEFAULT_PATH}`, 'HOSTNAME=abc123', 'FOO=bar']);
  assert.deepEqual(
    buildSpec(input({ terminal: true, env: ['PATH=/x', 'TERM=dumb', 'A=1', 'A=2'] })).process.env,
    ['PATH=/x', 'HOSTNAME=abc123', 'TERM=dumb', 'A=2'],
  );
  assert.deepEqual(containerEnv(['X=a=b', 'EMPTY='], '', false), [`PATH=${DEFAULT_PATH}`, 'X=a=b', 'EMPTY=']);
  rejects({ env: ['NOVALUE'] }, 'Invalid environment variable: NOVALUE');
  rejects({ env: ['=x'] }, 'Invalid environment variable: =x');
});

test('rlimits: nofile 1048576 clamped to the daemon hard limit, nproc at the daemon hard limit', () => {
  assert.deepEqual(buildSpec(input()).process.rlimits, [
    { type: 'RLIMIT_NOFILE', soft: 20000, hard: 20000 },
    { type: 'RLIMIT_NPROC', soft: 96365, hard: 96365 },
  ]);
  const roomy = buildSpec(input({ hostRlimits: { nofile: { soft: 1024, hard: 4194304 }, nproc: { soft: 5, hard: 10 } } }));
  assert.deepEqual(roomy.process.rlimits?.[0], { type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 });
});

test('ulimits override the defaults and may not exceed the daemon limits', () => {
  const spec = buildSpec(
    input({ ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }, { name: 'core', soft: 0, hard: 0 }] }),
  );
  assert.deepEqual(spec.process.rlimits, [
    { type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 },
    { type: 'RLIMIT_NPROC', soft: 96365, hard: 96365 },
    { type: 'RLIMIT_CORE', soft: 0, hard: 0 },
  ]);
  rejects({ ulimits: [{ name: 'nofile', soft: 1024, hard: 30000 }] }, /exceeds the daemon's hard limit 20000/);
  rejects({ ulimits: [{ name: 'nofile', soft: 2000, hard: 1000 }] }, /soft limit 2000 exceeds hard limit 1000/);
  rejects({ ulimits: [{ name: 'bogus', soft: 1, hard: 1 }] }, 'Invalid ulimit: bogus: unknown resource');
});

test('default mounts match Docker', () => {
  const spec = buildSpec(input());
  assert.deepEqual(
    spec.mounts.map((m) => m.destination),
    ['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/dev/mqueue', '/dev/shm'],
  );
  assert.deepEqual(mount(spec, '/proc'), { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] });
  assert.deepEqual(mount(spec, '/dev')?.options, ['nosuid', 'strictatime', 'mode=755', 'size=65536k']);
  assert.deepEqual(mount(spec, '/dev/pts')?.options, ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']);
  assert.equal(mount(spec, '/sys')?.type, 'sysfs');
  assert.ok(mount(spec, '/sys')?.options?.includes('ro'));
  assert.equal(mount(spec, '/sys/fs/cgroup')?.type, 'cgroup');
  assert.ok(mount(spec, '/sys/fs/cgroup')?.options?.includes('ro'));
  assert.equal(mount(spec, '/dev/mqueue')?.type, 'mqueue');
  assert.deepEqual(mount(spec, '/dev/shm'), {
    destination: '/dev/shm',
    type: 'tmpfs',
    source: 'shm',
    options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=67108864'],
  });
  assert.ok(mount(buildSpec(input({ shmSize: 1024 * 1024 })), '/dev/shm')?.options?.includes('size=1048576'));
});

test('user tmpfs mounts get Docker default flags and byte sizes', () => {
  const spec = buildSpec(input({ tmpfs: { '/tmp': 'rw,size=64m,mode=1777', '/run/': 'exec' } }));
  assert.deepEqual(mount(spec, '/tmp'), {
    destination: '/tmp',
    type: 'tmpfs',
    source: 'tmpfs',
    options: ['noexec', 'nosuid', 'nodev', 'rprivate', 'rw', 'size=67108864', 'mode=1777'],
  });
  assert.deepEqual(mount(spec, '/run')?.options, ['exec', 'nosuid', 'nodev', 'rprivate']);
  assert.deepEqual(parseTmpfsOptions('size=50%,uid=1000,gid=1000,nr_inodes=1k,ro,suid'), [
    'noexec', 'suid', 'nodev', 'rprivate', 'size=50%', 'uid=1000', 'gid=1000', 'nr_inodes=1k', 'ro',
  ]);
  rejects({ tmpfs: { '/tmp': 'size=lots' } }, 'Invalid tmpfs option: size=lots');
  rejects({ tmpfs: { '/tmp': 'mode=999' } }, 'Invalid tmpfs option: mode=999');
  rejects({ tmpfs: { '/tmp': 'bogus' } }, 'Invalid tmpfs option: bogus');
  rejects({ tmpfs: { tmp: '' } }, /^Invalid tmpfs destination: tmp: path must be absolute$/);
  rejects({ tmpfs: { '/': '' } }, /cannot mount over \//);
});

test('binds are rbind, ro when asked, and sorted parents first', () => {
  const spec = buildSpec(
    input({
      binds: [
        { source: '/srv/data/cache', destination: '/data/cache', readonly: false },
        { source: '/srv/cfg', destination: '/etc/app/conf.d', readonly: true },
        { source: '/srv/data', destination: '/data', readonly: true, propagation: 'rslave' },
      ],
      tmpfs: { '/data/cache/tmp': '' },
    }),
  );
  const user = spec.mounts.slice(7);
  assert.deepEqual(
    user.map((m) => m.destination),
    ['/data', '/data/cache', '/data/cache/tmp', '/etc/app/conf.d'],
  );
  assert.deepEqual(user[0], { destination: '/data', type: 'bind', source: '/srv/data', options: ['rbind', 'ro', 'rslave'] });
  assert.deepEqual(user[1]?.options, ['rbind', 'rprivate']);
  rejects({ binds: [{ source: 'rel', destination: '/x', readonly: false }] }, /^Invalid bind source: rel/);
  rejects({ binds: [{ source: '/a', destination: 'x', readonly: false }] }, /^Invalid bind destination: x/);
});

test('duplicate destinations are rejected, also after normalisation', () => {
  rejects(
    { tmpfs: { '/data': '' }, binds: [{ source: '/srv', destination: '/data/', readonly: false }] },
    'Duplicate mount point: /data',
  );
  rejects(
    {
      binds: [
        { source: '/a', destination: '/x', readonly: false },
        { source: '/b', destination: '//x', readonly: true },
      ],
    },
    'Duplicate mount point: /x',
  );
  rejects({ extraMounts: [{ destination: '/etc/hosts' }, { destination: '/etc/hosts' }] }, 'Duplicate mount point: /etc/hosts');
});

test('a user mount replaces the default at the same place; /dev replaces all of /dev', () => {
  const shm = buildSpec(input({ tmpfs: { '/dev/shm': 'size=1g' } }));
  const shms = shm.mounts.filter((m) => m.destination === '/dev/shm');
  assert.equal(shms.length, 1);
  assert.equal(shms[0]?.source, 'tmpfs');
  assert.ok(shms[0]?.options?.includes('size=1073741824'));

  const dev = buildSpec(input({ binds: [{ source: '/dev', destination: '/dev', readonly: false }] }));
  assert.deepEqual(
    dev.mounts.map((m) => m.destination),
    ['/proc', '/sys', '/sys/fs/cgroup', '/dev'],
  );
});

test('extra mounts are kept as given and sorted with the others', () => {
  const hosts: OciMount = { destination: '/etc/hosts', type: 'bind', source: '/var/lib/vessel/abc/hosts', options: ['rbind', 'rprivate'] };
  const spec = buildSpec(input({ extraMounts: [hosts], tmpfs: { '/etc': '' } }));
  assert.deepEqual(spec.mounts.slice(7).map((m) => m.destination), ['/etc', '/etc/hosts']);
  assert.deepEqual(mount(spec, '/etc/hosts'), hosts);
});

test('namespaces: private by default, cgroup only on v2, paths joined, host shared', () => {
  assert.deepEqual(buildSpec(input()).linux.namespaces, [
    { type: 'pid' },
    { type: 'ipc' },
    { type: 'uts' },
    { type: 'mount' },
    { type: 'network' },
  ]);
  assert.deepEqual(buildSpec(input({ cgroupVersion: 2 })).linux.namespaces.at(-1), { type: 'cgroup' });
  const joined = buildSpec(input({ namespaces: { network: '/run/netns/vessel-abc' } }));
  assert.deepEqual(joined.linux.namespaces.find((n) => n.type === 'network'), { type: 'network', path: '/run/netns/vessel-abc' });
  const host = buildSpec(input({ namespaces: { network: 'host', pid: 'host', uts: 'host' } }));
  assert.deepEqual(host.linux.namespaces.map((n) => n.type), ['ipc', 'mount']);
  assert.equal(host.hostname, undefined, 'no hostname without a private UTS namespace');
  assert.equal(buildSpec(input({ hostname: '' })).hostname, undefined);
  assert.equal(buildSpec(input()).linux.uidMappings, undefined);
  rejects({ namespaces: { network: 'bridge' } }, /^Invalid network namespace: bridge/);
});

test('masked and read-only paths match Docker', () => {
  const spec = buildSpec(input());
  assert.deepEqual(spec.linux.maskedPaths, [...DEFAULT_MASKED_PATHS]);
  assert.ok(spec.linux.maskedPaths?.includes('/proc/kcore'));
  assert.ok(spec.linux.maskedPaths?.includes('/sys/devices/virtual/powercap'));
  assert.deepEqual(spec.linux.readonlyPaths, [...DEFAULT_READONLY_PATHS]);
  assert.equal(spec.linux.sysctl, undefined);
  assert.equal(spec.linux.cgroupsPath, '/vessel/abc');
});

test('device rules: deny all, mknod anything, use the standard pseudo-devices', () => {
  const rules = buildSpec(input()).linux.resources?.devices ?? [];
  assert.deepEqual(rules[0], { allow: false, access: 'rwm' });
  const allowed = rules.slice(1).map((r) => `${r.type} ${r.major ?? '*'}:${r.minor ?? '*'} ${r.access}`);
  assert.deepEqual(allowed.sort(), [
    'b *:* m',
    'c *:* m',
    'c 136:* rwm',
    'c 1:3 rwm',
    'c 1:5 rwm',
    'c 1:7 rwm',
    'c 1:8 rwm',
    'c 1:9 rwm',
    'c 5:0 rwm',
    'c 5:1 rwm',
    'c 5:2 rwm',
  ]);
  assert.ok(rules.every((r) => r.major !== 10), 'no /dev/net/tun by default');
});

test('extra devices are created and allowed', () => {
  const spec = buildSpec(input({ devices: [{ path: '/dev/net/tun', type: 'c', major: 10, minor: 200, fileMode: 0o666 }] }));
  assert.deepEqual(spec.linux.devices, [{ path: '/dev/net/tun', type: 'c', major: 10, minor: 200, fileMode: 0o666 }]);
  assert.deepEqual(spec.linux.resources?.devices?.at(-1), { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' });
  rejects({ devices: [{ path: '/tmp/x', type: 'c', major: 1, minor: 3 }] }, /must be under \/dev/);
});

test('resources: memory, cpu, pids', () => {
  const spec = buildSpec(
    input({ memory: 64 * 1024 * 1024, memoryReservation: 32 * 1024 * 1024, nanoCpus: 500_000_000, cpuShares: 512, pidsLimit: 100 }),
  );
  assert.deepEqual(spec.linux.resources?.memory, { limit: 67108864, reservation: 33554432 });
  assert.deepEqual(spec.linux.resources?.cpu, { shares: 512, period: 100000, quota: 50000 });
  assert.deepEqual(spec.linux.resources?.pids, { limit: 100 });

  const bare = buildSpec(input()).linux.resources;
  assert.equal(bare?.memory, undefined);
  assert.equal(bare?.cpu, undefined);
  assert.equal(bare?.pids, undefined);
  assert.equal(buildSpec(input({ pidsLimit: -1 })).linux.resources?.pids, undefined);
  assert.equal(buildSpec(input({ pidsLimit: 0 })).linux.resources?.pids, undefined);
  assert.equal(buildSpec(input({ cpuShares: 0 })).linux.resources?.cpu, undefined);
  assert.deepEqual(buildSpec(input({ nanoCpus: 2_500_000_000 })).linux.resources?.cpu, { period: 100000, quota: 250000 });
});

test('swap is set only when the caller asks', () => {
  assert.deepEqual(buildSpec(input({ memory: 64 << 20, memorySwap: 128 << 20 })).linux.resources?.memory, {
    limit: 64 << 20,
    swap: 128 << 20,
  });
  assert.equal(buildSpec(input({ memory: 64 << 20, memorySwap: -1 })).linux.resources?.memory?.swap, -1);
  rejects({ memorySwap: 128 << 20 }, 'A memory+swap limit requires a memory limit');
  rejects({ memory: 64 << 20, memorySwap: 32 << 20 }, /must be at least the memory limit/);
});

test('resource validation follows Docker', () => {
  rejects({ memory: 1024 * 1024 }, /minimum is 6MB/);
  rejects({ memory: 64 << 20, memoryReservation: 128 << 20 }, /must not exceed the memory limit/);
  rejects({ nanoCpus: 1_000_000 }, /minimum is 0.01/);
  rejects({ nanoCpus: -1 }, 'Invalid CPU count: -1');
  rejects({ cpuShares: 1 }, /minimum is 2/);
  rejects({ cpuShares: 300000 }, 'Invalid CPU shares: 300000');
  rejects({ pidsLimit: -2 }, 'Invalid pids limit: -2');
  rejects({ memory: 1.5 }, 'Invalid memory limit: 1.5');
});

test('seccomp: default profile follows the resolved capabilities; custom or unconfined on request', () => {
  const plain = buildSpec(input()).linux.seccomp;
  assert.equal(plain?.defaultAction, 'SCMP_ACT_ERRNO');
  const allowAll = (s: OciSeccomp | undefined): string[] => (s?.syscalls ?? []).filter((r) => !r.args && r.action === 'SCMP_ACT_ALLOW').flatMap((r) => r.names);
  assert.ok(!allowAll(plain).includes('mount'));
  assert.ok(allowAll(buildSpec(input({ capAdd: ['SYS_ADMIN'] })).linux.seccomp).includes('mount'));
  assert.equal(buildSpec(input({ seccomp: 'unconfined' })).linux.seccomp, undefined);
  const custom = { defaultAction: 'SCMP_ACT_ALLOW' as const };
  assert.deepEqual(buildSpec(input({ seccomp: custom })).linux.seccomp, custom);
});

test('user, terminal and other process options', () => {
  const spec = buildSpec(
    input({
      user: { uid: 1000, gid: 1000, additionalGids: [27, 100] },
      terminal: true,
      consoleSize: { height: 40, width: 120 },
      noNewPrivileges: true,
      oomScoreAdj: 500,
      cwd: '/home/app/',
    }),
  );
  assert.deepEqual(spec.process.user, { uid: 1000, gid: 1000, additionalGids: [27, 100] });
  assert.equal(spec.process.terminal, true);
  assert.deepEqual(spec.process.consoleSize, { height: 40, width: 120 });
  assert.equal(spec.process.noNewPrivileges, true);
  assert.equal(spec.process.oomScoreAdj, 500);
  assert.equal(spec.process.cwd, '/home/app');
});

test('basic input validation', () => {
  rejects({ cwd: 'app' }, 'Invalid working directory: app: path must be absolute');
  rejects({ args: [] }, 'No command specified');
  rejects({ rootfsPath: 'rootfs' }, /^Invalid rootfs path: rootfs/);
  rejects({ user: { uid: -1, gid: 0, additionalGids: [] } }, 'Invalid user id: -1');
  rejects({ user: { uid: 0, gid: 0, additionalGids: [0.5] } }, 'Invalid group id: 0.5');
  rejects({ hostname: 'a b' }, 'Invalid hostname: a b');
  rejects({ hostname: 'x'.repeat(65) }, /^Invalid hostname/);
  rejects({ cgroupsPath: '' }, 'Invalid cgroups path: ');
  rejects({ cgroupsPath: '/vessel/../escape' }, 'Invalid cgroups path: /vessel/../escape');
  rejects({ oomScoreAdj: 2000 }, 'Invalid OOM score adjustment: 2000');
  assert.doesNotThrow(() => validateSpecInput(input()));
});

test('buildSpec does not share or mutate its input', () => {
  const given = input({ args: ['a'], user: { uid: 1, gid: 1, additionalGids: [5] }, annotations: { a: 'b' } });
  const before = structuredClone(given);
  const spec = buildSpec(given);
  spec.process.args.push('x');
  spec.process.user.additionalGids?.push(6);
  assert.deepEqual(given, before);
});
