// /proc/<pid>/stat read once, for everything that needs a process's name, state, parent, group or start time
// (the runc runtime watching conmon, the lab telling its own processes from a reused pid).

import { readFileSync } from 'node:fs';

export interface ProcStat {
  /** The command name (field 2), without its parentheses. */
  comm: string;
  /** Field 3: R, S, D, Z, ... */
  state: string;
  ppid: number;
  pgrp: number;
  /** Field 22: clock ticks after boot at which the process started (with the pid, it names the process). */
  startTime: number;
}

/** The process's stat fields, or null when there is no such process (or the file is not what it should be). */
export function readProcStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm may hold spaces and parentheses: the fields that follow start after the LAST ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  // rest[0] is field 3 (state), so field N is rest[N - 3].
  const rest = text.slice(close + 2).split(' ');
  const state = rest[0];
  const ppid = Number(rest[4 - 3]);
  const pgrp = Number(rest[5 - 3]);
  const startTime = Number(rest[22 - 3]);
  if (state === undefined || !Number.isFinite(ppid) || !Number.isFinite(pgrp) || !Number.isFinite(startTime)) return null;
  return { comm: text.slice(text.indexOf('(') + 1, close), state, ppid, pgrp, startTime };
}
