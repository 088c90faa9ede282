// A task's ulimits (Docker's --ulimit) as the kernel's resource limits: the OCI rlimit names, prlimit's options,
// and the check against this node's own limits, so that a limit the daemon cannot grant fails with a clear error.

import { readFileSync } from 'node:fs';
import { ULIMIT_UNLIMITED, type UlimitName } from '@swarm/store';
import { RuntimeError, type UlimitConfig } from './runtime.js';

/** The kernel's RLIM_INFINITY (an unsigned 64-bit all ones): what -1 means in a ulimit, as in Docker. */
export const RLIM_INFINITY = 2n ** 64n - 1n;

/** The OCI rlimit type of a ulimit name: `nofile` -> `RLIMIT_NOFILE` (Docker's names are the kernel's, lower-cased). */
export function rlimitType(name: UlimitName): string {
  return `RLIMIT_${name.toUpperCase()}`;
}

/** A ulimit value as the kernel takes it: -1 is RLIM_INFINITY. */
export function rlimitValue(value: number): number | bigint {
  return value === ULIMIT_UNLIMITED ? RLIM_INFINITY : value;
}

/** Linux's CAP_SYS_RESOURCE: a process with it may raise a hard limit above its own. */
const CAP_SYS_RESOURCE = 24;

/** What this node's daemon may grant: its own limits (from /proc/self/limits) and whether it may raise them. */
export interface HostLimits {
  /** Hard limits by ulimit name; -1 is unlimited. A name missing here is not checked. */
  readonly hard: ReadonlyMap<UlimitName, number>;
  /** The daemon holds CAP_SYS_RESOURCE (root outside a restricted container usually does). */
  readonly canRaise: boolean;
  /** fs.nr_open: the most open files any process may have, CAP_SYS_RESOURCE or not. */
  readonly nrOpen: number;
}

/** The rows of /proc/self/limits, by the names Docker gives them. */
const PROC_LIMIT_ROWS: ReadonlyMap<string, UlimitName> = new Map([
  ['Max cpu time', 'cpu'],
  ['Max file size', 'fsize'],
  ['Max data size', 'data'],
  ['Max stack size', 'stack'],
  ['Max core file size', 'core'],
  ['Max resident set', 'rss'],
  ['Max processes', 'nproc'],
  ['Max open files', 'nofile'],
  ['Max locked memory', 'memlock'],
  ['Max file locks', 'locks'],
  ['Max pending signals', 'sigpending'],
  ['Max msgqueue size', 'msgqueue'],
  ['Max nice priority', 'nice'],
  ['Max realtime priority', 'rtprio'],
  ['Max realtime timeout', 'rttime'],
]);

/** /proc/<pid>/limits as hard limits by ulimit name (-1 for unlimited); rows it does not know are skipped. */
export function parseProcLimits(text: string): Map<UlimitName, { soft: number; hard: number }> {
  const out = new Map<UlimitName, { soft: number; hard: number }>();
  for (const line of text.split('\n')) {
    const m = /^(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
    if (m === null || m[1] === undefined) continue;
    const name = PROC_LIMIT_ROWS.get(m[1]);
    const value = (v: string | undefined): number => (v === 'unlimited' ? ULIMIT_UNLIMITED : Number(v));
    const soft = value(m[2]);
    const hard = value(m[3]);
    if (name !== undefined && Number.isSafeInteger(soft) && Number.isSafeInteger(hard)) out.set(name, { soft, hard });
  }
  return out;
}

/** Whether the effective capabilities of /proc/<pid>/status hold CAP_SYS_RESOURCE. */
export function hasSysResource(status: string): boolean {
  const m = /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(status);
  if (m === null || m[1] === undefined) return false;
  return ((BigInt(`0x${m[1]}`) >> BigInt(CAP_SYS_RESOURCE)) & 1n) === 1n;
}

/** This process's limits, read now (they can change: `prlimit --pid` on the daemon). */
export function readHostLimits(): HostLimits {
  const limits = parseProcLimits(readFileSync('/proc/self/limits', 'utf8'));
  const nrOpen = Number(readFileSync('/proc/sys/fs/nr_open', 'utf8').trim());
  return {
    hard: new Map([...limits].map(([name, l]) => [name, l.hard])),
    canRaise: hasSysResource(readFileSync('/proc/self/status', 'utf8')),
    nrOpen: Number.isSafeInteger(nrOpen) && nrOpen > 0 ? nrOpen : 1_048_576,
  };
}

const above = (value: number, limit: number): boolean => limit !== ULIMIT_UNLIMITED && (value === ULIMIT_UNLIMITED || value > limit);
const shown = (value: number): string => (value === ULIMIT_UNLIMITED ? 'unlimited' : String(value));

/**
 * Refuses (RuntimeError invalid_config, naming the ulimit) what the kernel would refuse the container's process:
 * a hard limit above the daemon's own when it lacks CAP_SYS_RESOURCE, and open files above fs.nr_open. Without
 * this the task would fail in runc's init with an EPERM that names nothing.
 */
export function checkUlimits(ulimits: readonly UlimitConfig[], host: HostLimits): void {
  for (const u of ulimits) {
    if (u.name === 'nofile' && above(u.hard, host.nrOpen)) {
      throw new RuntimeError('invalid_config', `ulimit nofile: the hard limit ${shown(u.hard)} is above this node's kernel maximum of open files (fs.nr_open = ${host.nrOpen}): lower it`);
    }
    const own = host.hard.get(u.name);
    if (!host.canRaise && own !== undefined && above(u.hard, own)) {
      throw new RuntimeError(
        'invalid_config',
        `ulimit ${u.name}: the hard limit ${shown(u.hard)} is above the daemon's own hard limit on this node (${shown(own)}), which it cannot raise without CAP_SYS_RESOURCE: lower the service's ulimit, or raise the daemon's (Limit${u.name.toUpperCase()}= in its systemd unit)`,
      );
    }
  }
}
