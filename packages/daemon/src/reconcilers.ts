// The leader's reconcilers, in the order one pass runs them: the orchestrators (services -> tasks), the scheduler
// (tasks -> nodes), and the task reaper (bounded history of dead tasks per slot; all of a removed service's).

import { DEFAULT_TASK_HISTORY_RETENTION_LIMIT, tasksToReap, type Op, type Store } from '@swarm/store';
import type { Reconciler } from './reconcile-loop.js';

/** Dead tasks beyond the cluster's retention limit, and every dead task of a removed service, are deleted. */
export const taskReaper: Reconciler = {
  name: 'task-reaper',
  run(store: Store): Op[] {
    return store.view((tx) => {
      const cluster = tx.list('cluster')[0];
      const retentionLimit = cluster?.spec.orchestration.taskHistoryRetentionLimit ?? DEFAULT_TASK_HISTORY_RETENTION_LIMIT;
      const liveServiceIds = new Set(tx.list('service').map((s) => s.id));
      return tasksToReap(tx.list('task'), { retentionLimit, liveServiceIds }).map((id): Op => ({ op: 'delete', kind: 'task', id }));
    });
  },
};

export function leaderReconcilers(): Reconciler[] {
  return [taskReaper];
}
