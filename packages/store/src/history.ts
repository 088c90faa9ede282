// Task history: which dead tasks to delete so each slot keeps at most a bounded number (SwarmKit's task reaper idea).
// A pure function of the tasks, so the leader's reaper loop only turns its answer into delete ops.

import { assert } from './errors.js';
import { isTerminalTaskState, taskStateRank, type Task } from './objects.js';

export const DEFAULT_TASK_HISTORY_RETENTION_LIMIT = 5;

/** Bound on ids per answer, so one reaper pass never proposes an oversized transaction. */
export const DEFAULT_MAX_REAPED_PER_PASS = 10_000;

export interface ReapOptions {
  /** Dead tasks kept per slot (replicated) or per node (global); the cluster's taskHistoryRetentionLimit. */
  retentionLimit?: number;
  /** When given, every dead task of a service not in it is reaped: its service is gone. */
  liveServiceIds?: ReadonlySet<string>;
  maxTasks?: number;
}

/** Dead: stopped, and the orchestrator no longer wants it running, so nothing will touch it again. */
export function isDeadTask(task: Task): boolean {
  return isTerminalTaskState(task.status.state) && taskStateRank(task.desiredState) > taskStateRank('running');
}

function slotGroup(task: Task): string {
  // Global services put slot 0 on every task: their history is per node.
  return task.slot > 0 ? `${task.serviceId}\u0000slot\u0000${task.slot}` : `${task.serviceId}\u0000node\u0000${task.nodeId}`;
}

function olderFirst(a: Task, b: Task): number {
  if (a.status.timestampMs !== b.status.timestampMs) return a.status.timestampMs - b.status.timestampMs;
  if (a.meta.createdAtMs !== b.meta.createdAtMs) return a.meta.createdAtMs - b.meta.createdAtMs;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Ids of the dead tasks beyond the retention limit, oldest first within each slot; sorted by id overall. */
export function tasksToReap(tasks: Iterable<Task>, options: ReapOptions = {}): string[] {
  const limit = options.retentionLimit ?? DEFAULT_TASK_HISTORY_RETENTION_LIMIT;
  const maxTasks = options.maxTasks ?? DEFAULT_MAX_REAPED_PER_PASS;
  assert(Number.isInteger(limit) && limit >= 0, `retentionLimit must be an integer >= 0, not ${limit}`);
  assert(Number.isInteger(maxTasks) && maxTasks > 0, `maxTasks must be a positive integer, not ${maxTasks}`);
  const groups = new Map<string, Task[]>();
  for (const task of tasks) {
    if (!isDeadTask(task)) continue;
    const key = slotGroup(task);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [task]);
    else group.push(task);
  }
  const reaped: string[] = [];
  for (const group of groups.values()) {
    const first = group[0];
    assert(first !== undefined, 'empty history group');
    const serviceGone = options.liveServiceIds !== undefined && !options.liveServiceIds.has(first.serviceId);
    const keep = serviceGone ? 0 : limit;
    if (group.length <= keep) continue;
    group.sort(olderFirst);
    for (let i = 0; i < group.length - keep; i++) reaped.push((group[i] as Task).id);
  }
  reaped.sort();
  assert(new Set(reaped).size === reaped.length, 'a task was reaped twice');
  return reaped.slice(0, maxTasks);
}
