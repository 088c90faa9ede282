// Beyond Swarm: the rebalancer. When a node joins or comes back, a replicated service whose running tasks are piled
// on few nodes is spread again, a few tasks at a time: a new task of the slot starts on the emptiest node, and the
// old one stops only once the new one runs, so the running count never drops.

import { defaultUpdateConfig, isTerminalTaskState, type Node, type Op, type ReadTx, type Service, type Task } from '@swarm/store';
import { compileConstraints } from './constraints.js';
import { byCreation, isLive, newTask, shutdownOp } from './orchestrator.js';
import { assert, perService, type Reconciler } from './reconciler.js';
import { dynamicCheck, loadOf, staticCheck } from './scheduler.js';
import { isCurrent, isRolloutUnfinished } from './updater.js';

/** A service label that turns rebalancing off for it (`--label swarm.rebalance=false`). */
export const REBALANCE_LABEL = 'swarm.rebalance';

/** One service's rebalancing step: cancel moves that cannot happen, start at most `parallelism` (the orchestrator finishes them). */
export function rebalanceService(tx: ReadTx, service: Service, nowMs: number, newId: () => string): Op[] {
  const replicated = service.spec.mode.replicated;
  if (replicated === undefined || service.spec.labels[REBALANCE_LABEL] === 'false') return [];
  // Not while an update is under way or paused: its tasks of two templates are the updater's to sort out.
  if (isRolloutUnfinished(service)) return [];
  if (service.spec.taskTemplate.placement.preferences.length > 0) return []; // spread by label: uneven node counts are intended
  const ops: Op[] = [];
  const slots = new Map<number, Task[]>();
  for (const t of tx.tasksByService(service.id)) {
    if (t.slot > 0 && isLive(t)) slots.set(t.slot, [...(slots.get(t.slot) ?? []), t]);
  }
  let moving = 0;
  let settled = true;
  const running = new Map<string, Task[]>(); // node -> the service's running tasks that could move
  for (const live of slots.values()) {
    if (live.length >= 2) {
      // A move (or a start-first replacement) underway: the orchestrator retires the old task once the newest runs.
      const incoming = [...live].sort(byCreation)[live.length - 1] as Task;
      if (incoming.status.state !== 'running' && (isTerminalTaskState(incoming.status.state) || incoming.status.err !== '')) {
        // Failed to start, or no room after all (a pending reason): the move is off; the old task stays.
        ops.push(shutdownOp(tx, incoming, nowMs));
      } else {
        moving += 1;
      }
      continue;
    }
    const only = live[0];
    assert(only !== undefined, 'a slot in the map has a live task');
    if (only.status.state !== 'running' || !isCurrent(only, service)) {
      settled = false;
      continue;
    }
    running.set(only.nodeId, [...(running.get(only.nodeId) ?? []), only]);
  }
  if (ops.length > 0 || !settled || slots.size !== replicated.replicas) return ops; // one thing at a time
  const parallelism = Math.max(1, (service.spec.updateConfig ?? defaultUpdateConfig()).parallelism);
  const compiled = compileConstraints(service.spec.taskTemplate.placement.constraints);
  // Every running task here is of the current template: any one stands for the task a move would make.
  const sample = [...running.values()][0]?.[0];
  if (!compiled.ok || sample === undefined) return ops;
  // The nodes the scheduler would consider for it (ready, active, platform, constraints).
  const nodes = tx.list('node').filter((n) => staticCheck(n, sample, compiled.constraints) === null);
  if (nodes.length < 2) return ops;
  const count = new Map(nodes.map((n) => [n.id, running.get(n.id)?.length ?? 0]));
  while (moving < parallelism) {
    const byLoad = [...nodes].sort((a, b) => (count.get(a.id) ?? 0) - (count.get(b.id) ?? 0) || (a.id < b.id ? -1 : 1));
    const emptiest = byLoad[0] as Node;
    const fullest = byLoad[byLoad.length - 1] as Node;
    const low = count.get(emptiest.id) ?? 0;
    const high = count.get(fullest.id) ?? 0;
    // Room as the scheduler sees it (reservations, max replicas), so a move is never started only to be cancelled.
    if (high - low < 2 || dynamicCheck(loadOf(tx, emptiest), sample) !== null) break;
    const candidates = running.get(fullest.id) ?? [];
    const mover = candidates.pop(); // the highest slot on the fullest node
    if (mover === undefined) break;
    // Preassigned to the emptiest node: the scheduler places it there, or leaves it pending with a reason (cancelled).
    ops.push({ op: 'create', kind: 'task', object: newTask(service, mover.slot, emptiest.id, nowMs, newId()) });
    count.set(emptiest.id, low + 1);
    count.set(fullest.id, high - 1);
    moving += 1;
  }
  return ops;
}

export function rebalancer(options: { newId: () => string }): Reconciler {
  return perService('rebalancer', (tx, s, nowMs) => rebalanceService(tx, s, nowMs, options.newId));
}
