// The processes the lab starts: detached spawn into a log file, identity by (pid, start time) from
// /proc/PID/stat so a recorded pid that the kernel reused for someone else's process is never signalled.

import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { assert } from './errors.js';
import { readProcStat, type ProcStat } from '@swarm/runtime';

export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/PID/stat: clock ticks after boot at which the process started. */
  startTime: number;
}

export type { ProcStat } from '@swarm/runtime';

/** State, start time and process group of `pid`, or null when there is no such process. */
export function readStat(pid: number): ProcStat | null {
  return readProcStat(pid);
}

export function readStartTime(pid: number): number | null {
  return readStat(pid)?.startTime ?? null;
}

/** True when `id` still names the same, not yet exited, process (a zombie counts as exited). */
export function isAlive(id: ProcessIdentity): boolean {
  const st = readStat(id.pid);
  return st !== null && st.startTime === id.startTime && st.state !== 'Z' && st.state !== 'X';
}

export function cmdline(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const parts = raw.split('\0');
    if (parts.at(-1) === '') parts.pop();
    return parts;
  } catch {
    return null;
  }
}

/** The environment variable a swarm daemon's runtime sets on every task process it starts. */
export const TASK_ENV_MARKER = 'SWARM_TASK_ID=';

/**
 * True if the process carries the task marker in its environment (of the task `taskId`, when given): in a lab
 * namespace, that is a task a lab daemon started (its own process group, so the daemon's group does not cover it).
 */
export function isSwarmTask(pid: number, taskId?: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1')
      .split('\0')
      .some((kv) => (taskId === undefined ? kv.startsWith(TASK_ENV_MARKER) : kv === `${TASK_ENV_MARKER}${taskId}`));
  } catch {
    return false;
  }
}

/**
 * Signals the process only if it is still the one recorded. With `group`, the whole process group it
 * leads (it was spawned detached, so it leads one) gets the signal: helpers it started without detaching.
 */
export function signalVerified(id: ProcessIdentity, signal: NodeJS.Signals, group: boolean): boolean {
  assert(Number.isInteger(id.pid) && id.pid > 1, `pid ${id.pid}`);
  const st = readStat(id.pid);
  if (st === null || st.startTime !== id.startTime || st.state === 'Z') return false;
  const target = group && st.pgrp === id.pid ? -id.pid : id.pid;
  try {
    process.kill(target, signal);
    return true;
  } catch {
    return false;
  }
}

export async function waitExited(id: ProcessIdentity, deadlineMs: number): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (isAlive(id)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** SIGTERM, then SIGKILL after `graceMs`; returns once the process is gone or `graceMs * 2` has passed. */
export async function stopVerified(id: ProcessIdentity, graceMs: number, group: boolean): Promise<boolean> {
  if (!signalVerified(id, 'SIGTERM', group)) return !isAlive(id);
  if (await waitExited(id, graceMs)) return true;
  signalVerified(id, 'SIGKILL', group);
  return await waitExited(id, graceMs);
}

/**
 * Starts `file args` detached (its own session and process group) with stdout and stderr appended to
 * `logPath`, so it outlives the lab command that started it. Resolves once the kernel has the process.
 */
export async function spawnDetached(file: string, args: readonly string[], env: NodeJS.ProcessEnv, logPath: string, cwd?: string): Promise<ProcessIdentity> {
  const fd = openSync(logPath, 'a', 0o644);
  try {
    const child = spawn(file, [...args], { detached: true, stdio: ['ignore', fd, fd], env, ...(cwd === undefined ? {} : { cwd }) });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', reject);
    });
    child.unref();
    const pid = child.pid;
    assert(pid !== undefined, 'spawned child has a pid');
    // A command that failed at once may already be reaped: -1 then matches no process, so it reads as exited.
    return { pid, startTime: readStartTime(pid) ?? -1 };
  } finally {
    closeSync(fd);
  }
}
