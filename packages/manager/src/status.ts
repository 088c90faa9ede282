// Agents' status reports as store writes: the dispatcher's rule (and the simulator's fake dispatcher's). A report
// applies only to the reporting node's own tasks, only as a forward move, and only when something changed.

import { canTransitionTask, type Op, type ReadTx, type TaskStatusUpdate } from '@swarm/store';

export function statusOps(tx: ReadTx, nodeId: string, updates: readonly TaskStatusUpdate[]): Op[] {
  const latest = new Map<string, TaskStatusUpdate>();
  for (const u of updates) latest.set(u.taskId, u); // the last report of a task wins within a batch
  const ops: Op[] = [];
  for (const u of latest.values()) {
    const task = tx.get('task', u.taskId);
    if (task === undefined || task.nodeId !== nodeId) continue;
    if (!canTransitionTask(task.status.state, u.status.state)) continue;
    if (task.status.state === u.status.state && task.status.message === u.status.message && task.status.err === u.status.err) continue;
    ops.push({ op: 'update', kind: 'task', object: { ...task, status: u.status } });
  }
  return ops;
}
