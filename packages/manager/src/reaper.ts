// The task reaper: dead tasks beyond the cluster's retention limit per slot, and every dead task of a removed
// service, are deleted, so the store's task table stays bounded however often tasks restart.

import { DEFAULT_TASK_HISTORY_RETENTION_LIMIT, defaultUpdateConfig, tasksToReap, type Op, type Service, type Store, type Task } from '@swarm/store';
import type { Reconciler } from './reconciler.js';
import { isUpdating } from './updater.js';

/**
 * A failed task of an update in progress is kept until the update ends: the updater counts such failures
 * against max_failure_ratio, and with a small retention limit the reaper would delete them before they count
 * (found by the manager simulator, seed 15601, retention 0). Not kept when the failure action is `continue`,
 * where failures change nothing and a crash loop would otherwise keep them all.
 */
function heldForUpdate(t: Task, service: Service | undefined): boolean {
  const u = service?.updateStatus;
  if (service === undefined || u === undefined || u === null || !isUpdating(service)) return false;
  const cfg = (u.state === 'rollback_started' ? service.spec.rollbackConfig : service.spec.updateConfig) ?? defaultUpdateConfig();
  return cfg.failureAction !== 'continue' && t.meta.createdAtMs >= u.startedAtMs && (t.status.state === 'failed' || t.status.state === 'rejected');
}

export const taskReaper: Reconciler = {
  name: 'task-reaper',
  run(store: Store): Op[] {
    return store.view((tx) => {
      const cluster = tx.list('cluster')[0];
      const retentionLimit = cluster?.spec.orchestration.taskHistoryRetentionLimit ?? DEFAULT_TASK_HISTORY_RETENTION_LIMIT;
      const services = new Map(tx.list('service').map((s) => [s.id, s]));
      const candidates = tx.list('task').filter((t) => !heldForUpdate(t, services.get(t.serviceId)));
      return tasksToReap(candidates, { retentionLimit, liveServiceIds: new Set(services.keys()) }).map((id): Op => ({ op: 'delete', kind: 'task', id }));
    });
  },
};
