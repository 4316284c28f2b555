/**
 * The default seccomp filter for containers, as an OCI `linux.seccomp` object.
 *
 * The policy matches the effect of Docker's default profile: everything is
 * refused with EPERM unless listed; ordinary syscalls are allowed; syscalls
 * that act on the whole host (mounting, loading modules, setting the clock,
 * tracing other processes, ...) are allowed only when the container holds
 * the capability the kernel itself would check; `personality` and `clone`
 * are allowed only for harmless arguments; `clone3` (whose flags sit in
 * memory where seccomp cannot inspect them) fails with ENOSYS so that libc
 * falls back to `clone`.
 *
 * Names a runtime's libseccomp does not know are skipped by runc, so the
 * lists may name syscalls newer than the host kernel.
 */
import { normalizeCapability } from './capabilities.js';

export type SeccompAction =
  | 'SCMP_ACT_KILL'
  | 'SCMP_ACT_KILL_PROCESS'
  | 'SCMP_ACT_KILL_THREAD'
  | 'SCMP_ACT_TRAP'
  | 'SCMP_ACT_ERRNO'
  | 'SCMP_ACT_TRACE'
  | 'SCMP_ACT_ALLOW'
  | 'SCMP_ACT_LOG'
  | 'SCMP_ACT_NOTIFY';

export type SeccompOperator =
  | 'SCMP_CMP_NE'
  | 'SCMP_CMP_LT'
  | 'SCMP_CMP_LE'
  | 'SCMP_CMP_EQ'
  | 'SCMP_CMP_GE'
  | 'SCMP_CMP_GT'
  | 'SCMP_CMP_MASKED_EQ';

/** One argument condition; all conditions of a rule must hold. */
export interface OciSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: SeccompOperator;
}

export interface OciSyscall {
  names: string[];
  action: SeccompAction;
  errnoRet?: number;
  args?: OciSeccompArg[];
}

/** The OCI runtime-spec `linux.seccomp` object. */
export interface OciSeccomp {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: OciSyscall[];
}

/** Node's `process.arch` values this profile supports. */
export type SeccompArch = 'x64' | 'arm64';

export interface SeccompProfileOptions {
  /** Target architecture; defaults to the architecture Node runs on. */
  arch?: SeccompArch;
}

const EPERM = 1;
const ENOSYS = 38;

/** Namespace flags of clone(2): NEWTIME is left out on purpose, as in Docker. */
export const CLONE_NAMESPACE_FLAGS =
  0x00020000 /* CLONE_NEWNS */ |
  0x02000000 /* CLONE_NEWCGROUP */ |
  0x04000000 /* CLONE_NEWUTS */ |
  0x08000000 /* CLONE_NEWIPC */ |
  0x10000000 /* CLONE_NEWUSER */ |
  0x20000000 /* CLONE_NEWPID */ |
  0x40000000; /* CLONE_NEWNET */

/** personality(2) values a container may set: Linux, with ADDR_NO_RANDOMIZE and/or UNAME26, and the query value. */
export const ALLOWED_PERSONALITIES: readonly number[] = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** Syscalls every container may make. */
const ALLOWED_SYSCALLS: readonly string[] = [
  // Files, directories and descriptors.
  'access', 'faccessat', 'faccessat2',
  'chdir', 'fchdir', 'getcwd',
  'chmod', 'fchmod', 'fchmodat', 'fchmodat2',
  'chown', 'chown32', 'fchown', 'fchown32', 'fchownat', 'lchown', 'lchown32',
  'close', 'close_range',
  'creat', 'open', 'openat', 'openat2',
  'dup', 'dup2', 'dup3',
  'fcntl', 'fcntl64', 'flock',
  'fadvise64', 'fadvise64_64', 'fallocate', 'readahead',
  'fsync', 'fdatasync', 'sync', 'syncfs', 'sync_file_range',
  'stat', 'stat64', 'lstat', 'lstat64', 'fstat', 'fstat64', 'fstatat64', 'newfstatat', 'statx',
  'statfs', 'statfs64', 'fstatfs', 'fstatfs64',
  'truncate', 'truncate64', 'ftruncate', 'ftruncate64',
  'getdents', 'getdents64',
  'link', 'linkat', 'symlink', 'symlinkat', 'unlink', 'unlinkat',
  'readlink', 'readlinkat',
  'rename', 'renameat', 'renameat2',
  'mkdir', 'mkdirat', 'rmdir',
  'mknod', 'mknodat',
  'lseek', '_llseek',
  'read', 'readv', 'pread64', 'preadv', 'preadv2',
  'write', 'writev', 'pwrite64', 'pwritev', 'pwritev2',
  'sendfile', 'sendfile64', 'splice', 'tee', 'vmsplice', 'copy_file_range',
  'utime', 'utimes', 'utimensat', 'utimensat_time64', 'futimesat',
  'umask',
  'getxattr', 'lgetxattr', 'fgetxattr', 'setxattr', 'lsetxattr', 'fsetxattr',
  'listxattr', 'llistxattr', 'flistxattr', 'removexattr', 'lremovexattr', 'fremovexattr',
  'getxattrat', 'setxattrat', 'listxattrat', 'removexattrat',
  'inotify_init', 'inotify_init1', 'inotify_add_watch', 'inotify_rm_watch',
  'ioctl',
  'memfd_create',
  // Asynchronous I/O (io_uring is deliberately absent).
  'io_setup', 'io_destroy', 'io_submit', 'io_cancel', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64',
  // Memory.
  'brk', 'mmap', 'mmap2', 'munmap', 'mremap', 'mprotect', 'madvise', 'mincore', 'msync',
  'remap_file_pages',
  'mlock', 'mlock2', 'mlockall', 'munlock', 'munlockall',
  'pkey_alloc', 'pkey_free', 'pkey_mprotect',
  'membarrier', 'memfd_secret', 'mseal',
  // Processes and threads.
  'fork', 'vfork', 'execve', 'execveat',
  'exit', 'exit_group', 'wait4', 'waitid', 'waitpid',
  'getpid', 'getppid', 'gettid', 'getpgid', 'setpgid', 'getpgrp', 'getsid', 'setsid',
  'set_tid_address', 'set_robust_list', 'get_robust_list', 'rseq',
  'futex', 'futex_time64', 'futex_waitv', 'futex_wake', 'futex_wait', 'futex_requeue',
  'prctl', 'capget', 'capset', 'seccomp',
  'getrlimit', 'ugetrlimit', 'setrlimit', 'prlimit64', 'getrusage',
  'getpriority', 'setpriority', 'ioprio_get', 'ioprio_set',
  'sched_yield', 'sched_getaffinity', 'sched_setaffinity', 'sched_getparam', 'sched_setparam',
  'sched_getscheduler', 'sched_setscheduler', 'sched_get_priority_max', 'sched_get_priority_min',
  'sched_getattr', 'sched_setattr', 'sched_rr_get_interval', 'sched_rr_get_interval_time64',
  'getcpu', 'uname', 'sysinfo', 'times', 'restart_syscall', 'getrandom',
  'pidfd_open', 'pidfd_send_signal', 'process_madvise', 'process_mrelease',
  'landlock_create_ruleset', 'landlock_add_rule', 'landlock_restrict_self',
  'cachestat', 'map_shadow_stack',
  // Credentials (the kernel checks CAP_SETUID/CAP_SETGID itself).
  'getuid', 'getuid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getegid', 'getegid32',
  'getresuid', 'getresuid32', 'getresgid', 'getresgid32',
  'setuid', 'setuid32', 'setgid', 'setgid32', 'setreuid', 'setreuid32', 'setregid', 'setregid32',
  'setresuid', 'setresuid32', 'setresgid', 'setresgid32',
  'setfsuid', 'setfsuid32', 'setfsgid', 'setfsgid32',
  'getgroups', 'getgroups32', 'setgroups', 'setgroups32',
  // Signals.
  'kill', 'tkill', 'tgkill',
  'rt_sigaction', 'rt_sigprocmask', 'rt_sigpending', 'rt_sigreturn', 'rt_sigsuspend',
  'rt_sigqueueinfo', 'rt_tgsigqueueinfo', 'rt_sigtimedwait', 'rt_sigtimedwait_time64',
  'sigaction', 'sigprocmask', 'sigpending', 'sigreturn', 'sigsuspend', 'sigaltstack', 'signal',
  'signalfd', 'signalfd4', 'pause', 'alarm',
  // Time (setting the clock needs CAP_SYS_TIME, below).
  'time', 'gettimeofday', 'clock_gettime', 'clock_gettime64', 'clock_getres', 'clock_getres_time64',
  'clock_nanosleep', 'clock_nanosleep_time64', 'nanosleep',
  'getitimer', 'setitimer',
  'timer_create', 'timer_delete', 'timer_getoverrun', 'timer_gettime', 'timer_gettime64',
  'timer_settime', 'timer_settime64',
  'timerfd_create', 'timerfd_gettime', 'timerfd_gettime64', 'timerfd_settime', 'timerfd_settime64',
  'adjtimex', 'clock_adjtime', 'clock_adjtime64',
  // Waiting for events.
  'select', '_newselect', 'pselect6', 'pselect6_time64', 'poll', 'ppoll', 'ppoll_time64',
  'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_wait', 'epoll_wait_old',
  'epoll_pwait', 'epoll_pwait2',
  'eventfd', 'eventfd2',
  // Pipes and System V / POSIX IPC (private to the IPC namespace).
  'pipe', 'pipe2',
  'ipc', 'msgget', 'msgctl', 'msgsnd', 'msgrcv',
  'semget', 'semctl', 'semop', 'semtimedop', 'semtimedop_time64',
  'shmget', 'shmctl', 'shmat', 'shmdt',
  'mq_open', 'mq_unlink', 'mq_getsetattr', 'mq_notify',
  'mq_timedsend', 'mq_timedsend_time64', 'mq_timedreceive', 'mq_timedreceive_time64',
  // Networking (socket(2) itself is a conditional rule below; 32-bit socketcall stays allowed for old binaries).
  'socketpair', 'socketcall', 'bind', 'connect', 'listen', 'accept', 'accept4',
  'getsockname', 'getpeername', 'getsockopt', 'setsockopt', 'shutdown',
  'send', 'sendto', 'sendmsg', 'sendmmsg', 'recv', 'recvfrom', 'recvmsg', 'recvmmsg', 'recvmmsg_time64',
];

/** Syscalls that exist only on some architectures, allowed there. */
const ARCH_SYSCALLS: Readonly<Record<SeccompArch, readonly string[]>> = {
  x64: ['arch_prctl', 'modify_ldt', 'set_thread_area', 'get_thread_area'],
  arm64: ['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls'],
};

const ARCHITECTURES: Readonly<Record<SeccompArch, readonly string[]>> = {
  x64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
};

/**
 * Syscalls opened up by a capability. Each is a host-wide operation that the
 * kernel guards with that capability (or, for namespaced operations such as
 * mount, that is unsafe to expose without it).
 */
const CAPABILITY_SYSCALLS: Readonly<Record<string, readonly string[]>> = {
  CAP_SYS_ADMIN: [
    'mount', 'umount', 'umount2', 'pivot_root',
    'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'open_tree_attr', 'mount_setattr',
    'unshare', 'setns',
    'sethostname', 'setdomainname',
    'quotactl', 'quotactl_fd',
    'bpf', 'perf_event_open', 'fanotify_init', 'fanotify_mark', 'lookup_dcookie', 'name_to_handle_at',
    'syslog',
  ],
  CAP_SYS_PTRACE: ['ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp', 'pidfd_getfd', 'userfaultfd'],
  CAP_SYS_MODULE: ['init_module', 'finit_module', 'delete_module'],
  CAP_SYS_TIME: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'],
  CAP_SYS_BOOT: ['reboot'],
  CAP_SYS_NICE: ['get_mempolicy', 'set_mempolicy', 'set_mempolicy_home_node', 'mbind', 'move_pages', 'migrate_pages'],
  CAP_SYS_RAWIO: ['iopl', 'ioperm', 'pciconfig_iobase', 'pciconfig_read', 'pciconfig_write'],
  CAP_SYSLOG: ['syslog'],
  CAP_SYS_PACCT: ['acct'],
  CAP_SYS_TTY_CONFIG: ['vhangup'],
  CAP_SYS_CHROOT: ['chroot'],
  CAP_BPF: ['bpf'],
  CAP_PERFMON: ['perf_event_open'],
  CAP_DAC_READ_SEARCH: ['open_by_handle_at', 'name_to_handle_at'],
};

const AF_VSOCK = 40;

function hostArch(): SeccompArch {
  return process.arch === 'arm64' ? 'arm64' : 'x64';
}

/**
 * The default seccomp profile for a container holding `caps` (names with or
 * without the `CAP_` prefix, e.g. the output of resolveCapabilities).
 */
export function defaultSeccompProfile(caps: readonly string[], options: SeccompProfileOptions = {}): OciSeccomp {
  const arch = options.arch ?? hostArch();
  const held = new Set(caps.map(normalizeCapability));
  const has = (cap: string): boolean => held.has(cap) || held.has('ALL');

  const allowed = new Set<string>([...ALLOWED_SYSCALLS, ...ARCH_SYSCALLS[arch]]);
  for (const [cap, names] of Object.entries(CAPABILITY_SYSCALLS)) {
    if (has(cap)) for (const name of names) allowed.add(name);
  }

  const syscalls: OciSyscall[] = [{ names: [...allowed].sort(), action: 'SCMP_ACT_ALLOW' }];

  // One rule per value: the conditions inside a single rule are ANDed.
  for (const value of ALLOWED_PERSONALITIES) {
    syscalls.push({
      names: ['personality'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }],
    });
  }

  // socket(2) for every address family except vsock, which reaches the hypervisor.
  syscalls.push({
    names: ['socket'],
    action: 'SCMP_ACT_ALLOW',
    args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }],
  });

  if (has('CAP_SYS_ADMIN')) {
    syscalls.push({ names: ['clone', 'clone3'], action: 'SCMP_ACT_ALLOW' });
  } else {
    // clone(flags, ...) with none of the namespace flags set; flags is the first argument on x86 and arm.
    syscalls.push({
      names: ['clone'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    });
    syscalls.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
  }

  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: [...ARCHITECTURES[arch]],
    syscalls,
  };
}
