// The lab's state file: every namespace, link, process and path it made, written BEFORE each is made,
// so `down` can undo a lab whose creator crashed. Also the lock files that serialize changes to it.

import { mkdirSync, openSync, readFileSync, readdirSync, renameSync, unlinkSync, writeFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { LabError, assert } from './errors.js';
import { isAlive, readStartTime } from './proc.js';

export const DEFAULT_ROOT = '/var/lib/swarm-lab';
export const STATE_VERSION = 1;

export function labRoot(root?: string): string {
  return root ?? process.env['SWARM_LAB_ROOT'] ?? DEFAULT_ROOT;
}

export type HostRole = 'manager' | 'worker';

/** What a host's process is doing, as far as the lab knows. */
export type HostProcess =
  | { state: 'none' }
  /** Written just before spawn: if the lab dies here, down finds the process by its argv inside the namespace. */
  | { state: 'starting'; argv: string[] }
  | { state: 'running'; pid: number; startTime: number; startedAtMs: number; argv: string[] }
  | { state: 'killed'; pid: number; startTime: number; killedAtMs: number; argv: string[] };

export interface HostState {
  name: string;
  index: number;
  role: HostRole;
  netns: string;
  /** The root-namespace end of the host's veth pair (its other end is eth0 in the namespace). */
  vethRoot: string;
  ip: string;
  dir: string;
  dataDir: string;
  socketPath: string;
  logPath: string;
  command: { argv: string[]; env: Record<string, string> };
  process: HostProcess;
  /** Underlay addresses this host's nft table drops (partition); empty when healed. */
  blockedIps: string[];
}

export type ClusterState = { state: 'none' } | { state: 'formed'; atMs: number } | { state: 'failed'; error: string };

export interface LabState {
  version: number;
  name: string;
  /** Short number that names the lab's links (swlb-<id>, swlb-<id>-<i>): unique among live labs. */
  id: number;
  /** First three octets of the lab's /24 underlay, e.g. "10.250.3". */
  subnetBase: string;
  bridge: string;
  bridgeIp: string;
  dir: string;
  nodes: number;
  managers: number;
  phase: 'creating' | 'up' | 'destroying';
  cluster: ClusterState;
  createdAtMs: number;
  /** Everything the lab made (or was about to make), in creation order. Down removes these and only these. */
  made: { namespaces: string[]; links: string[]; paths: string[] };
  hosts: HostState[];
  /** The lab's image registry on the bridge address (host:port), when the lab was made with one. */
  registry?: { addr: string; process: { state: 'starting' } | { state: 'running'; pid: number; startTime: number } };
}

export function labDir(root: string, name: string): string {
  return join(root, name);
}

export function statePath(dir: string): string {
  return join(dir, 'state.json');
}

export function readState(dir: string): LabState | null {
  let text: string;
  try {
    text = readFileSync(statePath(dir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const s = JSON.parse(text) as LabState;
  if (s.version !== STATE_VERSION) throw new LabError('invalid_argument', `${statePath(dir)} has state version ${s.version}; this lab understands ${STATE_VERSION}`);
  assert(typeof s.name === 'string' && Array.isArray(s.hosts) && typeof s.made === 'object', `${statePath(dir)} is a lab state file`);
  return s;
}

/** Atomic replace: a crash leaves either the old or the new file, never half of one. */
export function writeState(s: LabState): void {
  assert(s.hosts.length === s.nodes || s.phase !== 'up', 'an up lab records every host');
  const path = statePath(s.dir);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}

/** Names of the labs with a state file under `root`. */
export function listLabNames(root: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return entries.filter((n) => !n.startsWith('.')).filter((n) => {
    try {
      readFileSync(statePath(join(root, n)));
      return true;
    } catch {
      return false;
    }
  }).sort();
}

const LOCK_WAIT_MS = 15_000;
const LOCK_POLL_MS = 50;

/**
 * Runs `fn` holding an exclusive lock file at `path`. A lock left by a process that died is taken over
 * (identity by pid and start time); a live holder is waited for at most LOCK_WAIT_MS.
 */
export async function withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const end = Date.now() + LOCK_WAIT_MS;
  const me = `${process.pid} ${readStartTime(process.pid) ?? -1}`;
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeFileSync(fd, me);
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder = '';
    try {
      holder = readFileSync(path, 'utf8');
    } catch {
      continue; // released between our open and read: try again
    }
    const [pidText, stText] = holder.split(' ');
    const pid = Number(pidText);
    const startTime = Number(stText);
    // An empty file is a holder between open and write: give it the benefit of the doubt until the deadline.
    if (holder !== '' && !(Number.isInteger(pid) && pid > 0 && isAlive({ pid, startTime }))) {
      try {
        unlinkSync(path);
      } catch {
        // Someone else took it over first.
      }
      continue;
    }
    if (Date.now() > end) throw new LabError('busy', `another lab command holds ${path} (${holder.trim() || 'starting'}); wait for it or remove the file if no lab command runs`);
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
  try {
    return await fn();
  } finally {
    try {
      unlinkSync(path);
    } catch {
      // Already gone: nothing to release.
    }
  }
}

export function ensureDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o755 });
}
