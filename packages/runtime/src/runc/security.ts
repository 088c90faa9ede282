// The runc runtime's security defaults: Docker's default capability set, the /proc paths masked or made
// read-only, and the default seccomp profile. (Signatures fixed; bodies are being filled in.)

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
    return u === 'ALL' ? u : u.startsWith('CAP_') ? u : `CAP_${u}`;
  };
  let set = new Set(DEFAULT_CAPABILITIES);
  for (const c of drop.map(norm)) {
    if (c === 'ALL') set = new Set();
    else set.delete(c);
  }
  for (const c of add.map(norm)) {
    if (c === 'ALL') throw new RuntimeError('invalid_config', 'cap-add ALL is not supported yet');
    set.add(c);
  }
  return [...set].sort();
}

/** The default seccomp profile for a container holding `caps`; null means none (being written). */
export function defaultSeccompProfile(_caps: readonly string[]): OciSeccomp | null {
  return null;
}
