// The runc runtime's security defaults: Docker's default capability set, the /proc paths masked or made
// read-only, and our default seccomp profile: an allow list of the system calls ordinary services make, with the
// calls that need a capability allowed only when the container holds it.

import { RuntimeError } from '../runtime.js';

/** An OCI runtime-spec `linux.seccomp` object. */
export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: Array<{ names: string[]; action: string; errnoRet?: number; args?: Array<{ index: number; value: number; valueTwo?: number; op: string }> }>;
}

/** Docker's default capability set, with the CAP_ prefix. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** Every capability Linux has (up to 6.x), for `--cap-add ALL` and to check names. */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** Paths under /proc and /sys a container must not read (bind-mounted over with /dev/null or an empty tmpfs). */
export const MASKED_PATHS: readonly string[] = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
];

/** Paths a container may read but not write. */
export const READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/**
 * The capability set of a container: Docker's default set, minus `drop`, plus `add` (each `NET_ADMIN` or
 * `CAP_NET_ADMIN`, case-insensitive; `ALL` means every capability). An unknown name is an invalid_config error.
 */
export function capabilities(add: readonly string[], drop: readonly string[]): string[] {
  const norm = (c: string): string => {
    const u = c.trim().toUpperCase();
    const name = u === 'ALL' ? u : u.startsWith('CAP_') ? u : `CAP_${u}`;
    if (name !== 'ALL' && !ALL_CAPABILITIES.includes(name)) {
      throw new RuntimeError('invalid_config', `unknown capability ${JSON.stringify(c)}: use a Linux capability name such as NET_ADMIN or SYS_TIME, or ALL`);
    }
    return name;
  };
  let set = new Set(DEFAULT_CAPABILITIES);
  for (const c of drop.map(norm)) {
    if (c === 'ALL') set = new Set();
    else set.delete(c);
  }
  for (const c of add.map(norm)) {
    if (c === 'ALL') set = new Set(ALL_CAPABILITIES);
    else set.add(c);
  }
  return [...set].sort();
}

// ---------------------------------------------------------------- seccomp

const EPERM = 1;
const ENOSYS = 38;
/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET: a new namespace needs CAP_SYS_ADMIN. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;

/** What any process needs: files, memory, processes and threads, signals, time, sockets, polling, IPC. */
const ALLOWED: readonly string[] = [
  // files and directories
  'access', 'chdir', 'chmod', 'chown', 'close', 'close_range', 'copy_file_range', 'creat', 'dup', 'dup2', 'dup3',
  'faccessat', 'faccessat2', 'fadvise64', 'fallocate', 'fchdir', 'fchmod', 'fchmodat', 'fchown', 'fchownat', 'fcntl',
  'fdatasync', 'fgetxattr', 'flistxattr', 'flock', 'fremovexattr', 'fsetxattr', 'fstat', 'fstatfs', 'fsync', 'ftruncate',
  'futimesat', 'getcwd', 'getdents', 'getdents64', 'getxattr', 'inotify_add_watch', 'inotify_init', 'inotify_init1',
  'inotify_rm_watch', 'lchown', 'lgetxattr', 'link', 'linkat', 'listxattr', 'llistxattr', 'lremovexattr', 'lseek',
  'lsetxattr', 'lstat', 'mkdir', 'mkdirat', 'mknod', 'mknodat', 'newfstatat', 'open', 'openat', 'openat2', 'pread64',
  'preadv', 'preadv2', 'pwrite64', 'pwritev', 'pwritev2', 'read', 'readahead', 'readlink', 'readlinkat', 'readv',
  'removexattr', 'rename', 'renameat', 'renameat2', 'rmdir', 'sendfile', 'setxattr', 'splice', 'stat', 'statfs', 'statx',
  'symlink', 'symlinkat', 'sync', 'sync_file_range', 'syncfs', 'tee', 'truncate', 'umask', 'unlink', 'unlinkat', 'utime',
  'utimensat', 'utimes', 'vmsplice', 'write', 'writev', 'ioctl', 'fanotify_mark', 'chroot',
  // memory
  'brk', 'madvise', 'membarrier', 'memfd_create', 'mincore', 'mlock', 'mlock2', 'mlockall', 'mmap', 'mprotect', 'mremap',
  'msync', 'munlock', 'munlockall', 'munmap', 'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'remap_file_pages',
  // processes, threads, scheduling, limits
  'arch_prctl', 'capget', 'capset', 'execve', 'execveat', 'exit', 'exit_group', 'fork', 'vfork', 'futex', 'futex_waitv',
  'get_robust_list', 'set_robust_list', 'get_thread_area', 'set_thread_area', 'set_tid_address', 'getcpu', 'getegid',
  'geteuid', 'getgid', 'getgroups', 'getpgid', 'getpgrp', 'getpid', 'getppid', 'getpriority', 'getresgid', 'getresuid',
  'getrlimit', 'getrusage', 'getsid', 'gettid', 'getuid', 'ioprio_get', 'ioprio_set', 'prctl', 'prlimit64', 'rseq',
  'sched_getaffinity', 'sched_getattr', 'sched_getparam', 'sched_get_priority_max', 'sched_get_priority_min',
  'sched_getscheduler', 'sched_rr_get_interval', 'sched_setaffinity', 'sched_setattr', 'sched_setparam',
  'sched_setscheduler', 'sched_yield', 'seccomp', 'setfsgid', 'setfsuid', 'setgid', 'setgroups', 'setpgid', 'setpriority',
  'setregid', 'setresgid', 'setresuid', 'setreuid', 'setrlimit', 'setsid', 'setuid', 'sysinfo', 'times', 'uname', 'wait4',
  'waitid', 'ptrace', 'pidfd_open', 'pidfd_send_signal', 'process_mrelease', 'landlock_create_ruleset',
  'landlock_add_rule', 'landlock_restrict_self',
  // signals
  'alarm', 'kill', 'pause', 'restart_syscall', 'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo',
  'rt_sigreturn', 'rt_sigsuspend', 'rt_sigtimedwait', 'rt_tgsigqueueinfo', 'sigaltstack', 'signalfd', 'signalfd4',
  'tgkill', 'tkill',
  // time and timers (reading them; setting the clock needs CAP_SYS_TIME)
  'clock_getres', 'clock_gettime', 'clock_nanosleep', 'getitimer', 'gettimeofday', 'nanosleep', 'setitimer', 'time',
  'timer_create', 'timer_delete', 'timer_getoverrun', 'timer_gettime', 'timer_settime', 'timerfd_create',
  'timerfd_gettime', 'timerfd_settime', 'getrandom',
  // sockets and waiting on many files
  'accept', 'accept4', 'bind', 'connect', 'getpeername', 'getsockname', 'getsockopt', 'listen', 'recvfrom', 'recvmmsg',
  'recvmsg', 'sendmmsg', 'sendmsg', 'sendto', 'setsockopt', 'shutdown', 'socket', 'socketpair', 'epoll_create',
  'epoll_create1', 'epoll_ctl', 'epoll_pwait', 'epoll_pwait2', 'epoll_wait', 'eventfd', 'eventfd2', 'pipe', 'pipe2',
  'poll', 'ppoll', 'pselect6', 'select',
  // System V and POSIX IPC (inside the container's own IPC namespace), asynchronous I/O
  'mq_getsetattr', 'mq_notify', 'mq_open', 'mq_timedreceive', 'mq_timedsend', 'mq_unlink', 'msgctl', 'msgget', 'msgrcv',
  'msgsnd', 'semctl', 'semget', 'semop', 'semtimedop', 'shmat', 'shmctl', 'shmdt', 'shmget', 'io_cancel', 'io_destroy',
  'io_getevents', 'io_pgetevents', 'io_setup', 'io_submit',
  // the 32-bit names of the same calls (x86 and arm programs on a 64-bit kernel)
  '_llseek', '_newselect', 'chown32', 'fadvise64_64', 'fchown32', 'fcntl64', 'fstat64', 'fstatat64', 'fstatfs64',
  'ftruncate64', 'getegid32', 'geteuid32', 'getgid32', 'getgroups32', 'getresgid32', 'getresuid32', 'getuid32',
  'lchown32', 'lstat64', 'mmap2', 'recv', 'send', 'sendfile64', 'setfsgid32', 'setfsuid32', 'setgid32', 'setgroups32',
  'setregid32', 'setresgid32', 'setresuid32', 'setreuid32', 'setuid32', 'sigreturn', 'socketcall', 'stat64', 'statfs64',
  'truncate64', 'ugetrlimit', 'waitpid', 'clock_gettime64', 'clock_nanosleep_time64', 'clock_getres_time64',
  'futex_time64', 'ppoll_time64', 'pselect6_time64', 'recvmmsg_time64', 'rt_sigtimedwait_time64',
  'sched_rr_get_interval_time64', 'semtimedop_time64', 'timer_gettime64', 'timer_settime64', 'timerfd_gettime64',
  'timerfd_settime64', 'utimensat_time64', 'io_pgetevents_time64', 'mq_timedreceive_time64', 'mq_timedsend_time64',
  'sigaction', 'sigprocmask', 'sigsuspend', 'sigpending', 'set_tls', 'cacheflush', 'arm_fadvise64_64',
];

/** Calls that only a container holding the capability may make (and would fail without it anyway). */
const BY_CAPABILITY: Readonly<Record<string, readonly string[]>> = {
  CAP_SYS_ADMIN: [
    'bpf', 'clone3', 'fanotify_init', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'lookup_dcookie', 'mount', 'mount_setattr',
    'move_mount', 'open_tree', 'perf_event_open', 'quotactl', 'quotactl_fd', 'setdomainname', 'sethostname', 'setns',
    'syslog', 'umount', 'umount2', 'unshare', 'pivot_root', 'name_to_handle_at',
  ],
  CAP_SYS_BOOT: ['reboot', 'kexec_load', 'kexec_file_load'],
  CAP_SYS_MODULE: ['init_module', 'finit_module', 'delete_module'],
  CAP_SYS_PACCT: ['acct'],
  CAP_SYS_PTRACE: ['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev'],
  CAP_SYS_RAWIO: ['iopl', 'ioperm'],
  CAP_SYS_TIME: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64', 'adjtimex', 'clock_adjtime', 'clock_adjtime64'],
  CAP_SYS_TTY_CONFIG: ['vhangup'],
  CAP_SYS_NICE: ['get_mempolicy', 'mbind', 'set_mempolicy', 'move_pages', 'migrate_pages'],
  CAP_SYSLOG: ['syslog'],
  CAP_DAC_READ_SEARCH: ['open_by_handle_at'],
  CAP_BPF: ['bpf'],
  CAP_PERFMON: ['perf_event_open'],
  CAP_SYS_RESOURCE: ['swapon', 'swapoff'],
};

function architectures(): string[] {
  if (process.arch === 'arm64') return ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'];
  return ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];
}

/**
 * The default seccomp profile of a container holding `caps`: everything not listed fails with EPERM. `clone` may
 * not make namespaces without CAP_SYS_ADMIN (its flags are checked; on s390 they would be the second argument,
 * which we do not run on), and `clone3`, whose flags sit in a struct seccomp cannot read, answers ENOSYS so C
 * libraries fall back to `clone`. `personality` is limited to the values programs use. io_uring is left out: a
 * large kernel surface that services do without (their runtimes fall back to epoll).
 */
export function defaultSeccompProfile(caps: readonly string[]): OciSeccomp | null {
  const held = new Set(caps);
  const names = new Set(ALLOWED);
  for (const [cap, calls] of Object.entries(BY_CAPABILITY)) if (held.has(cap)) for (const c of calls) names.add(c);
  const rules: OciSeccomp['syscalls'] = [{ names: [...names].sort(), action: 'SCMP_ACT_ALLOW' }];
  if (held.has('CAP_SYS_ADMIN')) {
    rules.push({ names: ['clone'], action: 'SCMP_ACT_ALLOW' });
  } else {
    rules.push({ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] });
    rules.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
  }
  for (const value of [0x0, 0x8, 0x20000, 0x20008, 0xffffffff]) {
    rules.push({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }] });
  }
  return { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: EPERM, architectures: architectures(), syscalls: rules };
}
