// The task reaper: dead tasks beyond the cluster's retention limit per slot, and every dead task of a removed
// service, are deleted, so the store's task table stays bounded however often tasks restart.

import { DEFAULT_TASK_HISTORY_RETENTION_LIMIT, tasksToReap, type Op, type Store } from '@swarm/store';
import type { Reconciler } from './reconciler.js';

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
