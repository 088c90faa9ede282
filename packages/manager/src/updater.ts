// The rolling updater: while a service's update (or rollback) is in progress, tasks made from an older task
// template are replaced in batches (parallelism, delay, stop-first or start-first), failures of the new tasks are
// counted against max_failure_ratio, and the failure action (pause, continue, rollback) is taken. SwarmKit's model.

import { deepEqual, defaultUpdateConfig, isTerminalTaskState, type Op, type ReadTx, type Service, type Task, type UpdateStatus } from '@swarm/store';
import { byCreation, isLive, newTask, shutdownOp } from './orchestrator.js';
import { assert, perService, type Reconciler } from './reconciler.js';

export function isUpdating(s: Service): boolean {
  return s.updateStatus !== null && (s.updateStatus.state === 'updating' || s.updateStatus.state === 'rollback_started');
}

/** Updating, or paused part-way: the service's tasks may be of two templates, which only the updater sorts out. */
export function isRolloutUnfinished(s: Service): boolean {
  return isUpdating(s) || s.updateStatus?.state === 'paused' || s.updateStatus?.state === 'rollback_paused';
}

/**
 * A task made from the service's current template and endpoint spec (what an update converges to). As SwarmKit's:
 * published ports, endpoint mode or strategy changed make a task outdated too, since its network attachments (the
 * ingress leg for the routing mesh) and its endpoint come from them.
 */
export function isCurrent(t: Task, s: Service): boolean {
  return deepEqual(t.spec, s.spec.taskTemplate) && (t.endpoint === null || deepEqual(t.endpoint.spec, s.spec.endpointSpec));
}

interface SlotState {
  slot: number;
  nodeId: string;
  current: Task[];
  outdated: Task[];
}

function slotsOf(tx: ReadTx, s: Service): SlotState[] {
  const byKey = new Map<string, SlotState>();
  for (const t of tx.tasksByService(s.id)) {
    if (!isLive(t)) continue;
    const key = t.slot > 0 ? `s${t.slot}` : `n${t.nodeId}`;
    let st = byKey.get(key);
    if (st === undefined) byKey.set(key, (st = { slot: t.slot, nodeId: t.slot > 0 ? '' : t.nodeId, current: [], outdated: [] }));
    (isCurrent(t, s) ? st.current : st.outdated).push(t);
  }
  return [...byKey.values()].sort((a, b) => a.slot - b.slot || (a.nodeId < b.nodeId ? -1 : 1));
}

function failedEarly(t: Task): boolean {
  return t.status.state === 'failed' || t.status.state === 'rejected';
}

function setStatus(s: Service, status: UpdateStatus): Op {
  return { op: 'update', kind: 'service', object: { ...s, updateStatus: status } };
}

/** The ops of one service's update step; none when it is not updating. */
export function updateService(tx: ReadTx, s: Service, nowMs: number, newId: () => string): Op[] {
  const status = s.updateStatus;
  if (status === null || !isUpdating(s)) return [];
  const rollingBack = status.state === 'rollback_started';
  const cfg = (rollingBack ? s.spec.rollbackConfig : s.spec.updateConfig) ?? defaultUpdateConfig();
  const slots = slotsOf(tx, s);
  const all = tx.tasksByService(s.id);
  // Tasks of this update: made from the current template since it started. Their failures count.
  const ofUpdate = all.filter((t) => isCurrent(t, s) && t.meta.createdAtMs >= status.startedAtMs);
  const failures = ofUpdate.filter(failedEarly);
  const total = Math.max(1, slots.length);
  if (failures.length > 0 && failures.length / total > cfg.maxFailureRatio && cfg.failureAction !== 'continue') {
    const culprit = failures[0] as Task;
    if (cfg.failureAction === 'rollback' && !rollingBack && s.previousSpec !== null) {
      return [
        {
          op: 'update',
          kind: 'service',
          object: {
            ...s,
            spec: s.previousSpec,
            previousSpec: s.spec,
            updateStatus: { state: 'rollback_started', startedAtMs: nowMs, completedAtMs: null, message: `update rolled back due to failure or early termination of task ${culprit.id}` },
          },
        },
      ];
    }
    const state = rollingBack ? 'rollback_paused' : 'paused';
    const what = rollingBack ? 'rollback' : 'update';
    return [setStatus(s, { ...status, state, message: `${what} paused due to failure or early termination of task ${culprit.id}` })];
  }

  const ops: Op[] = [];
  const stop = (t: Task): void => {
    ops.push(shutdownOp(tx, t, nowMs));
  };
  let inFlight = 0;
  const waiting: SlotState[] = [];
  for (const st of slots) {
    if (st.outdated.length === 0) {
      // Updated; its new task still coming up counts against parallelism.
      if (st.current.some((t) => !isTerminalTaskState(t.status.state) && t.status.state !== 'running')) inFlight += 1;
      continue;
    }
    if (st.current.length > 0) {
      if (st.current.some((t) => t.status.state === 'running')) {
        // start-first, or a rollback whose target template still runs here: the other template's tasks go.
        for (const old of st.outdated) stop(old);
      } else if (st.current.every((t) => isTerminalTaskState(t.status.state))) {
        // Its new task ended (and counted as a failure if it failed): the slot's update is over, the old task goes.
        for (const old of st.outdated) stop(old);
      } else {
        inFlight += 1; // start-first: the new task is coming up beside the old one
      }
      continue;
    }
    if (st.outdated.length > 1) {
      // Left over from an earlier update's start-first replacement: keep one task (a running one, the oldest).
      const sorted = [...st.outdated].sort((x, y) => Number(y.status.state === 'running') - Number(x.status.state === 'running') || byCreation(x, y));
      for (const extra of sorted.slice(1)) stop(extra);
      inFlight += 1;
      continue;
    }
    waiting.push(st);
  }
  // The last time a task of this update came up: the next batch waits `delay` after it, completion `monitor`.
  const lastUp = Math.max(status.startedAtMs, ...ofUpdate.filter((t) => t.status.state === 'running').map((t) => t.meta.updatedAtMs));

  if (waiting.length === 0 && inFlight === 0) {
    if (nowMs >= lastUp + cfg.monitorMs || ofUpdate.length === 0) {
      const message = rollingBack ? 'rollback completed' : 'update completed';
      ops.push(setStatus(s, { ...status, state: rollingBack ? 'rollback_completed' : 'completed', completedAtMs: nowMs, message }));
    }
    return ops;
  }
  if (waiting.length === 0) return ops; // the last batch is still coming up
  // parallelism slots are replaced at a time (0: all at once); each new start waits `delay` after the last task of
  // the update came up, so with a delay the update goes at most one batch per delay.
  if (cfg.parallelism > 0 && inFlight >= cfg.parallelism) return ops;
  if (cfg.delayMs > 0 && ofUpdate.length > 0 && nowMs < lastUp + cfg.delayMs) return ops;
  const budget = cfg.parallelism === 0 ? waiting.length : cfg.parallelism - inFlight;
  for (const st of waiting.slice(0, budget)) {
    // stop-first: the new task waits in PENDING until the old one stopped (the scheduler's rule for a slot being
    // emptied); start-first: both run until the orchestrator retires the old one.
    if (cfg.order === 'stop-first') for (const old of st.outdated) stop(old);
    ops.push({ op: 'create', kind: 'task', object: newTask(s, st.slot, st.nodeId, nowMs, newId()) });
  }
  assert(budget > 0 && ops.length > 0, 'an update with work to do and room for it does something');
  return ops;
}

export function updater(options: { newId: () => string }): Reconciler {
  return perService('updater', (tx, s, nowMs) => updateService(tx, s, nowMs, options.newId));
}
