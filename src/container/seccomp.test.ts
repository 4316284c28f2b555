import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../core/errors.js';
import { DEFAULT_CAPABILITIES } from './capabilities.js';
import { ALLOWED_PERSONALITIES, CLONE_NAMESPACE_FLAGS, defaultSeccompProfile, type OciSeccomp, type OciSyscall } from './seccomp.js';

function allowedUnconditionally(profile: OciSeccomp): Set<string> {
  const names = new Set<string>();
  for (const rule of profile.syscalls ?? []) {
    if (rule.action === 'SCMP_ACT_ALLOW' && !rule.args?.length) for (const n of rule.names) names.add(n);
  }
  return names;
}

function rulesFor(profile: OciSeccomp, name: string): OciSyscall[] {
  return (profile.syscalls ?? []).filter((r) => r.names.includes(name));
}

const defaults = defaultSeccompProfile([...DEFAULT_CAPABILITIES], { arch: 'x64' });

test('denies by default with EPERM on the x86 family', () => {
  assert.equal(defaults.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(defaults.defaultErrnoRet, 1);
  assert.deepEqual(defaults.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
});

test('aarch64 gets its own architectures and arch-specific calls', () => {
  const arm = defaultSeccompProfile([], { arch: 'arm64' });
  assert.deepEqual(arm.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  const allowed = allowedUnconditionally(arm);
  assert.ok(allowed.has('set_tls'));
  assert.ok(!allowed.has('arch_prctl'));
  assert.ok(allowedUnconditionally(defaults).has('arch_prctl'));
});

test('allows what ordinary programs need', () => {
  const allowed = allowedUnconditionally(defaults);
  for (const name of [
    'read', 'write', 'openat', 'openat2', 'close', 'close_range', 'statx', 'newfstatat', 'faccessat2',
    'epoll_pwait2', 'epoll_wait', 'mmap', 'mprotect', 'brk', 'futex', 'rt_sigaction', 'rt_sigreturn',
    'clock_gettime', 'nanosleep', 'execve', 'execveat', 'exit_group', 'wait4', 'getrandom', 'connect',
    'accept4', 'sendmsg', 'recvmsg', 'pipe2', 'dup3', 'getdents64', 'prlimit64', 'set_robust_list', 'rseq',
    'setuid', 'setgroups', 'capget', 'capset', 'prctl', 'ioctl', 'fork', 'vfork', 'chroot', 'seccomp',
  ]) {
    assert.ok(allowed.has(name), `${name} should be allowed`);
  }
});

test('refuses host-wide operations without the matching capability', () => {
  const allowed = allowedUnconditionally(defaults);
  for (const name of [
    'mount', 'umount2', 'unshare', 'setns', 'pivot_root', 'bpf', 'ptrace', 'process_vm_readv',
    'init_module', 'finit_module', 'delete_module', 'settimeofday', 'clock_settime', 'reboot', 'iopl',
    'ioperm', 'syslog', 'acct', 'perf_event_open', 'open_by_handle_at', 'kexec_load', 'keyctl', 'add_key',
    'userfaultfd', 'io_uring_setup', 'swapon', 'mbind', 'vhangup',
  ]) {
    assert.ok(!allowed.has(name), `${name} should not be allowed`);
    assert.equal(rulesFor(defaults, name).length, 0, `${name} should have no rule`);
  }
});

test('each capability opens up its own syscalls', () => {
  const cases: Array<[string, string[]]> = [
    ['CAP_SYS_ADMIN', ['mount', 'umount2', 'unshare', 'setns', 'pivot_root', 'bpf', 'sethostname', 'fsopen']],
    ['CAP_SYS_PTRACE', ['ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp']],
    ['CAP_SYS_MODULE', ['init_module', 'finit_module', 'delete_module']],
    ['CAP_SYS_TIME', ['settimeofday', 'clock_settime']],
    ['CAP_SYS_BOOT', ['reboot']],
    ['CAP_SYS_NICE', ['mbind', 'set_mempolicy', 'move_pages']],
    ['CAP_SYS_RAWIO', ['iopl', 'ioperm']],
    ['CAP_SYSLOG', ['syslog']],
    ['CAP_SYS_PACCT', ['acct']],
    ['CAP_BPF', ['bpf']],
    ['CAP_PERFMON', ['perf_event_open']],
    ['CAP_DAC_READ_SEARCH', ['open_by_handle_at']],
  ];
  for (const [cap, names] of cases) {
    const allowed = allowedUnconditionally(defaultSeccompProfile([cap], { arch: 'x64' }));
    for (const name of names) assert.ok(allowed.has(name), `${cap} should allow ${name}`);
  }
  // chroot follows CAP_SYS_CHROOT, which is in the default set.
  assert.ok(!allowedUnconditionally(defaultSeccompProfile([], { arch: 'x64' })).has('chroot'));
});

test('capability names are accepted in any spelling', () => {
  assert.ok(allowedUnconditionally(defaultSeccompProfile(['sys_ptrace'], { arch: 'x64' })).has('ptrace'));
  assert.throws(() => defaultSeccompProfile(['CAP_NOPE']), InvalidArgumentError);
});

test('personality is allowed only for the harmless values, one rule each', () => {
  const rules = rulesFor(defaults, 'personality');
  assert.equal(rules.length, ALLOWED_PERSONALITIES.length);
  assert.deepEqual(
    rules.map((r) => r.args),
    [0x0, 0x8, 0x20000, 0x20008, 0xffffffff].map((value) => [{ index: 0, value, op: 'SCMP_CMP_EQ' }]),
  );
  assert.ok(rules.every((r) => r.action === 'SCMP_ACT_ALLOW'));
});

test('clone is allowed only without namespace flags, clone3 fails with ENOSYS', () => {
  assert.equal(CLONE_NAMESPACE_FLAGS, 0x7e020000);
  assert.deepEqual(rulesFor(defaults, 'clone'), [
    {
      names: ['clone'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    },
  ]);
  assert.deepEqual(rulesFor(defaults, 'clone3'), [{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
});

test('CAP_SYS_ADMIN allows clone and clone3 without conditions', () => {
  const admin = defaultSeccompProfile(['CAP_SYS_ADMIN'], { arch: 'x64' });
  assert.deepEqual(rulesFor(admin, 'clone'), [{ names: ['clone', 'clone3'], action: 'SCMP_ACT_ALLOW' }]);
  assert.deepEqual(rulesFor(admin, 'clone3'), rulesFor(admin, 'clone'));
});

test('socket is allowed for every family but AF_VSOCK', () => {
  assert.deepEqual(rulesFor(defaults, 'socket'), [
    { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 40, op: 'SCMP_CMP_NE' }] },
  ]);
});

test('no syscall is listed twice and the profile is JSON-serialisable', () => {
  const all = (defaults.syscalls ?? []).filter((r) => !r.args).flatMap((r) => r.names);
  assert.equal(new Set(all).size, all.length);
  const everything = defaultSeccompProfile(['ALL'], { arch: 'x64' });
  const names = (everything.syscalls ?? []).filter((r) => !r.args).flatMap((r) => r.names);
  assert.equal(new Set(names).size, names.length);
  assert.deepEqual(JSON.parse(JSON.stringify(defaults)), defaults);
});
