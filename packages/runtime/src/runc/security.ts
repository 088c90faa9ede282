// The runc runtime's security defaults: Docker's default capability set, the /proc paths masked or made
// read-only, and our default seccomp profile: an allow list of the system calls ordinary services make, with the
// calls that need a capability allowed only when the container holds it. docs/security.md explains the choices.

import { release } from 'node:os';
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

/** Every capability Linux has (0 to 40, CAP_CHOWN to CAP_CHECKPOINT_RESTORE), for `--cap-add ALL` and to check names. */
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

// ---------------------------------------------------------------- capabilities

/** Levenshtein distance, for "did you mean" on a mistyped capability name. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/** `net_admin`, `NET_ADMIN` and `cap_net_admin` are all CAP_NET_ADMIN; `all` is ALL. Anything else is refused. */
function capabilityName(raw: string, flag: '--cap-add' | '--cap-drop'): string {
  const upper = raw.trim().toUpperCase();
  if (upper === 'ALL') return 'ALL';
  const name = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (ALL_CAPABILITIES.includes(name)) return name;
  const close = ALL_CAPABILITIES.filter((c) => distance(c, name) <= 2).map((c) => c.slice(4));
  const hint = close.length > 0 ? ` (did you mean ${close.join(' or ')}?)` : '';
  throw new RuntimeError(
    'invalid_config',
    `unknown capability ${JSON.stringify(raw)} in ${flag}${hint}: give a Linux capability name, with or without CAP_, in any case ` +
      `(${ALL_CAPABILITIES.map((c) => c.slice(4)).join(', ')}), or ALL`,
  );
}

/**
 * The capability set of a container, by Docker's rules: `ALL` in `add` gives every capability but the ones named
 * in `drop`; otherwise `ALL` in `drop` starts from nothing, else from Docker's default set less `drop`, and `add`
 * is added to it. Names are `NET_ADMIN` or `CAP_NET_ADMIN` in any case; an unknown name is an invalid_config
 * error. Returns sorted CAP_ names.
 */
export function capabilities(add: readonly string[], drop: readonly string[]): string[] {
  const adds = add.map((c) => capabilityName(c, '--cap-add'));
  const drops = drop.map((c) => capabilityName(c, '--cap-drop'));
  let set: Set<string>;
  if (adds.includes('ALL')) {
    set = new Set(ALL_CAPABILITIES.filter((c) => !drops.includes(c)));
  } else {
    set = new Set(drops.includes('ALL') ? [] : DEFAULT_CAPABILITIES.filter((c) => !drops.includes(c)));
    for (const c of adds) set.add(c);
  }
  return [...set].sort();
}

// ---------------------------------------------------------------- seccomp
//
// The profile is an allow list: every call not named here fails with EPERM. Calls the kernel would refuse
// without a capability anyway are allowed only when the container holds that capability, so a container without
// it does not even reach the kernel code behind them. runc 1.1.5 skips names its libseccomp (2.5.4 on Debian 12)
// does not know, and answers ENOSYS (not EPERM) for call numbers above the highest one the profile names for an
// architecture, so C libraries fall back from calls newer than this list as they do on an older kernel.

const EPERM = 1;
const ENOSYS = 38;

/** Files, directories, descriptors, extended attributes, change notification. */
const FILES = [
  'access', 'cachestat', 'chdir', 'chmod', 'chown', 'close', 'close_range', 'copy_file_range', 'creat', 'dup', 'dup2',
  'dup3', 'faccessat', 'faccessat2', 'fadvise64', 'fallocate', 'fchdir', 'fchmod', 'fchmodat', 'fchmodat2', 'fchown',
  'fchownat', 'fcntl', 'fdatasync', 'flock', 'fstat', 'fstatfs', 'fsync', 'ftruncate', 'futimesat', 'getcwd',
  'getdents', 'getdents64', 'ioctl', 'lchown', 'link', 'linkat', 'lseek', 'lstat', 'mkdir', 'mkdirat', 'mknod',
  'mknodat', 'newfstatat', 'open', 'openat', 'openat2', 'pread64', 'preadv', 'preadv2', 'pwrite64', 'pwritev',
  'pwritev2', 'read', 'readahead', 'readlink', 'readlinkat', 'readv', 'rename', 'renameat', 'renameat2', 'rmdir',
  'sendfile', 'splice', 'stat', 'statfs', 'statx', 'symlink', 'symlinkat', 'sync', 'sync_file_range', 'syncfs', 'tee',
  'truncate', 'umask', 'unlink', 'unlinkat', 'utime', 'utimensat', 'utimes', 'vmsplice', 'write', 'writev',
  // extended attributes (the *xattrat forms are Linux 6.13)
  'fgetxattr', 'flistxattr', 'fremovexattr', 'fsetxattr', 'getxattr', 'getxattrat', 'lgetxattr', 'listxattr',
  'listxattrat', 'llistxattr', 'lremovexattr', 'lsetxattr', 'removexattr', 'removexattrat', 'setxattr', 'setxattrat',
  // inotify for file watchers (webpack, nodemon, config reloaders); fanotify_mark is useless without fanotify_init,
  // which needs CAP_SYS_ADMIN
  'fanotify_mark', 'inotify_add_watch', 'inotify_init', 'inotify_init1', 'inotify_rm_watch',
  // what the mount namespace looks like (Linux 6.8; the same facts as /proc/self/mountinfo)
  'listmount', 'statmount',
];

/** The process's own memory. The NUMA calls act on the caller only (moving another process's pages needs CAP_SYS_NICE). */
const MEMORY = [
  'brk', 'get_mempolicy', 'madvise', 'map_shadow_stack', 'mbind', 'membarrier', 'memfd_create', 'memfd_secret',
  'mincore', 'mlock', 'mlock2', 'mlockall', 'mmap', 'mprotect', 'mremap', 'mseal', 'msync', 'munlock', 'munlockall',
  'munmap', 'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'remap_file_pages', 'set_mempolicy', 'set_mempolicy_home_node',
];

/**
 * Processes and threads: fork/vfork/exec, ids, limits (raising a hard limit is still checked by the kernel),
 * scheduling of one's own threads, rseq (glibc 2.35+ registers it for every thread), the pidfd calls, and the
 * calls a program uses to sandbox itself further (seccomp, landlock: they only ever take rights away).
 * `clone`, `clone3` and `unshare` are ruled on separately below.
 */
const PROCESSES = [
  'arch_prctl', 'capget', 'capset', 'execve', 'execveat', 'exit', 'exit_group', 'fork', 'get_robust_list',
  'get_thread_area', 'getcpu', 'getegid', 'geteuid', 'getgid', 'getgroups', 'getpgid', 'getpgrp', 'getpid', 'getppid',
  'getpriority', 'getresgid', 'getresuid', 'getrlimit', 'getrusage', 'getsid', 'gettid', 'getuid', 'ioprio_get',
  'ioprio_set', 'pidfd_open', 'pidfd_send_signal', 'prctl', 'prlimit64', 'process_mrelease', 'rseq',
  'sched_get_priority_max', 'sched_get_priority_min', 'sched_getaffinity', 'sched_getattr', 'sched_getparam',
  'sched_getscheduler', 'sched_rr_get_interval', 'sched_setaffinity', 'sched_setattr', 'sched_setparam',
  'sched_setscheduler', 'sched_yield', 'set_robust_list', 'set_thread_area', 'set_tid_address', 'setfsgid',
  'setfsuid', 'setgid', 'setgroups', 'setpgid', 'setpriority', 'setregid', 'setresgid', 'setresuid', 'setreuid',
  'setrlimit', 'setsid', 'setuid', 'sysinfo', 'times', 'uname', 'vfork', 'wait4', 'waitid',
  'landlock_add_rule', 'landlock_create_ruleset', 'landlock_restrict_self', 'seccomp',
  // the kernel's return trampoline of a uretprobe a host tracer set (Linux 6.11): blocking it kills the process
  'uretprobe',
];

/** Futexes (every threaded program) and signals. */
const SYNC_AND_SIGNALS = [
  'futex', 'futex_requeue', 'futex_wait', 'futex_waitv', 'futex_wake',
  'alarm', 'kill', 'pause', 'restart_syscall', 'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo',
  'rt_sigreturn', 'rt_sigsuspend', 'rt_sigtimedwait', 'rt_tgsigqueueinfo', 'sigaltstack', 'signalfd', 'signalfd4',
  'tgkill', 'tkill',
];

/**
 * Clocks and timers. Reading is free; `adjtimex`/`clock_adjtime` are allowed because glibc's ntp_gettime and NTP
 * status tools read through them and the kernel itself demands CAP_SYS_TIME for any change. Setting the clock is
 * in BY_CAPABILITY.
 */
const TIME = [
  'adjtimex', 'clock_adjtime', 'clock_getres', 'clock_gettime', 'clock_nanosleep', 'getitimer', 'getrandom',
  'gettimeofday', 'nanosleep', 'setitimer', 'time', 'timer_create', 'timer_delete', 'timer_getoverrun',
  'timer_gettime', 'timer_settime', 'timerfd_create', 'timerfd_gettime', 'timerfd_settime',
];

/** Sockets (`socket` itself is ruled on by family below) and waiting on many descriptors. */
const NETWORK_AND_POLLING = [
  'accept', 'accept4', 'bind', 'connect', 'getpeername', 'getsockname', 'getsockopt', 'listen', 'recvfrom',
  'recvmmsg', 'recvmsg', 'sendmmsg', 'sendmsg', 'sendto', 'setsockopt', 'shutdown', 'socketpair',
  'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_pwait', 'epoll_pwait2', 'epoll_wait', 'eventfd', 'eventfd2',
  'pipe', 'pipe2', 'poll', 'ppoll', 'pselect6', 'select',
];

/** System V and POSIX IPC (the container has its own IPC namespace) and Linux AIO (databases use it). */
const IPC_AND_AIO = [
  'mq_getsetattr', 'mq_notify', 'mq_open', 'mq_timedreceive', 'mq_timedsend', 'mq_unlink', 'msgctl', 'msgget',
  'msgrcv', 'msgsnd', 'semctl', 'semget', 'semop', 'semtimedop', 'shmat', 'shmctl', 'shmdt', 'shmget',
  'io_cancel', 'io_destroy', 'io_getevents', 'io_pgetevents', 'io_setup', 'io_submit',
];

/**
 * The names the same calls have in the 32-bit ABIs (i386 programs on x86_64, arm programs on aarch64): the
 * *32 id calls, the *64 file calls, the *_time64 calls of y2038-safe 32-bit libcs, and the multiplexers `ipc`
 * and `socketcall` (the latter ruled on below).
 */
const COMPAT_32BIT = [
  '_llseek', '_newselect', 'chown32', 'fadvise64_64', 'fchown32', 'fcntl64', 'fstat64', 'fstatat64', 'fstatfs64',
  'ftruncate64', 'getegid32', 'geteuid32', 'getgid32', 'getgroups32', 'getresgid32', 'getresuid32', 'getuid32',
  'ipc', 'lchown32', 'lstat64', 'mmap2', 'nice', 'sendfile64', 'setfsgid32', 'setfsuid32',
  'setgid32', 'setgroups32', 'setregid32', 'setresgid32', 'setresuid32', 'setreuid32', 'setuid32', 'sigaction',
  'sigpending', 'sigprocmask', 'sigreturn', 'sigsuspend', 'stat64', 'statfs64', 'truncate64', 'ugetrlimit', 'waitpid',
  'clock_adjtime64', 'clock_getres_time64', 'clock_gettime64', 'clock_nanosleep_time64', 'futex_time64', 'io_pgetevents_time64',
  'mq_timedreceive_time64', 'mq_timedsend_time64', 'ppoll_time64', 'pselect6_time64', 'recvmmsg_time64',
  'rt_sigtimedwait_time64', 'sched_rr_get_interval_time64', 'semtimedop_time64', 'timer_gettime64',
  'timer_settime64', 'timerfd_gettime64', 'timerfd_settime64', 'utimensat_time64',
  // 32-bit arm only (its recv and send are calls of their own, not socketcall's)
  'arm_fadvise64_64', 'arm_sync_file_range', 'breakpoint', 'cacheflush', 'recv', 'send', 'set_tls', 'sync_file_range2',
];

/** Every container gets these. */
const ALLOWED: readonly string[] = [
  ...FILES, ...MEMORY, ...PROCESSES, ...SYNC_AND_SIGNALS, ...TIME, ...NETWORK_AND_POLLING, ...IPC_AND_AIO, ...COMPAT_32BIT,
];

/**
 * Looking into another process: allowed to every container on Linux 4.8+ (before, a traced process could use
 * ptrace to get past seccomp), where the kernel's ptrace access checks (same user, Yama) still apply.
 */
const PTRACE = ['ptrace', 'process_vm_readv', 'process_vm_writev', 'pidfd_getfd'];
const PTRACE_SAFE_SINCE: readonly [number, number] = [4, 8];

/**
 * Calls that only a container holding the capability may make (a call listed under two capabilities needs
 * either). Left out for everyone: kexec_load/kexec_file_load (CAP_SYS_BOOT in a container would replace the host's
 * kernel, not restart the container as reboot does), keyctl/add_key/request_key (the kernel keyring is not
 * namespaced: the reason /proc/keys is masked), io_uring (see defaultSeccompProfile), and old or obscure calls
 * (uselib, ustat, sysfs, _sysctl, modify_ldt, vm86, nfsservctl, lookup_dcookie, ...).
 */
const BY_CAPABILITY: Readonly<Record<string, readonly string[]>> = {
  CAP_SYS_ADMIN: [
    // mounts and the new mount API, namespaces (unshare and clone/clone3 with namespace flags: see below)
    'fsconfig', 'fsmount', 'fsopen', 'fspick', 'mount', 'mount_setattr', 'move_mount', 'open_tree', 'open_tree_attr',
    'pivot_root', 'setns', 'umount', 'umount2',
    // the host's swap, quotas, kernel log, names, BPF and perf (also under CAP_BPF / CAP_PERFMON), fanotify
    'bpf', 'fanotify_init', 'name_to_handle_at', 'perf_event_open', 'quotactl', 'quotactl_fd', 'setdomainname',
    'sethostname', 'swapoff', 'swapon', 'syslog',
  ],
  CAP_BPF: ['bpf'],
  CAP_PERFMON: ['perf_event_open'],
  CAP_SYSLOG: ['syslog'],
  CAP_DAC_READ_SEARCH: ['name_to_handle_at', 'open_by_handle_at'],
  // In a pid namespace reboot() ends the container's init, not the host.
  CAP_SYS_BOOT: ['reboot'],
  CAP_SYS_MODULE: ['delete_module', 'finit_module', 'init_module'],
  CAP_SYS_PACCT: ['acct'],
  // Also PTRACE on old kernels; kcmp compares kernel objects of two processes, userfaultfd is a favourite tool
  // of kernel exploits (the kernel itself wants CAP_SYS_PTRACE for it since 5.11 by default).
  CAP_SYS_PTRACE: ['kcmp', 'process_madvise', 'userfaultfd'],
  CAP_SYS_RAWIO: ['ioperm', 'iopl'],
  CAP_SYS_TIME: ['clock_settime', 'clock_settime64', 'settimeofday', 'stime'],
  CAP_SYS_TTY_CONFIG: ['vhangup'],
  CAP_SYS_NICE: ['migrate_pages', 'move_pages'],
  CAP_SYS_CHROOT: ['chroot'],
};

/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET: a new namespace needs CAP_SYS_ADMIN. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;
/** CLONE_NEWTIME: only unshare and clone3 take it (for clone the bit is part of the exit signal). */
const CLONE_NEWTIME = 0x80;

/** Socket families any service may open; AF_PACKET also needs CAP_NET_RAW, which the kernel checks too. */
const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16; // getifaddrs (glibc, Node's os.networkInterfaces, Go's net.Interfaces), ip, ss
const AF_PACKET = 17;
/** vsock is not network-namespaced: from a VM's container it reaches the hypervisor's services. Never allowed. */
const AF_VSOCK = 40;
/** socketcall's call number for socket(2): seccomp cannot see the family behind it. */
const SYS_SOCKET = 1;

/** personality(2) values programs use: Linux, 32-bit Linux, either with a 2.6-style uname, and the query 0xffffffff. */
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

function architectures(): string[] | null {
  if (process.arch === 'x64') return ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];
  if (process.arch === 'arm64') return ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'];
  return null;
}

function kernelAtLeast([major, minor]: readonly [number, number]): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release());
  if (m === null) return false;
  const [have, haveMinor] = [Number(m[1]), Number(m[2])];
  return have > major || (have === major && haveMinor >= minor);
}

/**
 * The default seccomp profile of a container holding `caps` (CAP_ names), or null on an architecture it was not
 * written for (only x86_64 and aarch64: elsewhere the argument positions it checks may differ).
 *
 * - Anything not allowed fails with EPERM.
 * - `clone` may not create namespaces without CAP_SYS_ADMIN (its flags are checked). `clone3` passes its flags in a
 *   struct seccomp cannot read, so without CAP_SYS_ADMIN it answers ENOSYS and glibc (2.34+, for threads and
 *   posix_spawn) falls back to `clone`. `unshare` works without CAP_SYS_ADMIN only for its namespace-free flags
 *   (CLONE_FILES, CLONE_FS, CLONE_SYSVSEM).
 * - `socket` takes AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, and AF_PACKET with CAP_NET_RAW; with CAP_NET_ADMIN every
 *   family but AF_VSOCK. 32-bit x86 programs may not create sockets through `socketcall` (its family cannot be
 *   checked); those built on musl or a glibc for Linux 4.3+ use `socket` itself.
 * - io_uring answers ENOSYS, as on a kernel built without it, so runtimes fall back to epoll and thread pools: it
 *   is a large kernel surface with a long record of privilege escalations, and seccomp cannot see the operations
 *   submitted through its rings.
 * - `personality` takes only PERSONALITIES (no turning off address space randomisation).
 */
export function defaultSeccompProfile(caps: readonly string[]): OciSeccomp | null {
  const arches = architectures();
  if (arches === null) return null;
  const held = new Set(caps);
  const admin = held.has('CAP_SYS_ADMIN');

  const names = new Set(ALLOWED);
  for (const [cap, calls] of Object.entries(BY_CAPABILITY)) if (held.has(cap)) for (const c of calls) names.add(c);
  if (held.has('CAP_SYS_PTRACE') || kernelAtLeast(PTRACE_SAFE_SINCE)) for (const c of PTRACE) names.add(c);
  if (admin) for (const c of ['clone', 'clone3', 'unshare']) names.add(c);

  const rules: OciSeccomp['syscalls'] = [{ names: [...names].sort(), action: 'SCMP_ACT_ALLOW' }];
  const allowIf = (name: string, index: number, op: string, value: number, valueTwo?: number): void => {
    rules.push({ names: [name], action: 'SCMP_ACT_ALLOW', args: [{ index, value, ...(valueTwo === undefined ? {} : { valueTwo }), op }] });
  };

  if (!admin) {
    allowIf('clone', 0, 'SCMP_CMP_MASKED_EQ', CLONE_NAMESPACE_FLAGS, 0);
    allowIf('unshare', 0, 'SCMP_CMP_MASKED_EQ', CLONE_NAMESPACE_FLAGS | CLONE_NEWTIME, 0);
    rules.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
  }
  if (held.has('CAP_NET_ADMIN')) {
    allowIf('socket', 0, 'SCMP_CMP_NE', AF_VSOCK);
  } else {
    for (const family of [AF_UNIX, AF_INET, AF_INET6, AF_NETLINK]) allowIf('socket', 0, 'SCMP_CMP_EQ', family);
    if (held.has('CAP_NET_RAW')) allowIf('socket', 0, 'SCMP_CMP_EQ', AF_PACKET);
  }
  allowIf('socketcall', 0, 'SCMP_CMP_NE', SYS_SOCKET);
  for (const value of PERSONALITIES) allowIf('personality', 0, 'SCMP_CMP_EQ', value);
  rules.push({ names: ['io_uring_enter', 'io_uring_register', 'io_uring_setup'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });

  return { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: EPERM, architectures: arches, syscalls: rules };
}
