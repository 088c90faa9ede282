// Beyond Swarm: the rebalancer. When a node joins or comes back, a replicated service whose running tasks are piled
// on few nodes is spread again, a few tasks at a time: a new task of the slot starts on the emptiest node, and the
// old one stops only once the new one runs, so the running count never drops.

import { defaultUpdateConfig, isTerminalTaskState, taskStateRank, type Node, type Op, type ReadTx, type Service, type Store, type Task } from '@swarm/store';
import { constraintsHold, parseConstraints, type Constraint } from './constraints.js';
import { byCreation, isLive, newTask, shutdownOp } from './orchestrator.js';
import { assert, type Reconciler } from './reconciler.js';
import { isCurrent } from './updater.js';

/** A service label that turns rebalancing off for it (`--label swarm.rebalance=false`). */
export const REBALANCE_LABEL = 'swarm.rebalance';

function eligible(node: Node, constraints: readonly Constraint[]): boolean {
  return node.status.state === 'ready' && node.spec.availability === 'active' && constraintsHold(node, constraints);
}

/** Room on the node for one more task of the service: reservations and max replicas, as the scheduler checks. */
function hasRoom(tx: ReadTx, node: Node, service: Service, onNode: number): boolean {
  const t = service.spec.taskTemplate;
  if (t.placement.maxReplicas > 0 && onNode >= t.placement.maxReplicas) return false;
  const want = t.resources.reservations;
  if (want.nanoCpus === 0 && want.memoryBytes === 0) return true;
  let cpu = 0;
  let mem = 0;
  for (const x of tx.tasksByNode(node.id)) {
    if (isTerminalTaskState(x.status.state) || taskStateRank(x.desiredState) > taskStateRank('running')) continue;
    cpu += x.spec.resources.reservations.nanoCpus;
    mem += x.spec.resources.reservations.memoryBytes;
  }
  return cpu + want.nanoCpus <= node.description.resources.nanoCpus && mem + want.memoryBytes <= node.description.resources.memoryBytes;
}

/** One service's rebalancing step: finish moves whose new task runs, cancel stuck ones, start at most `parallelism`. */
export function rebalanceService(tx: ReadTx, service: Service, nowMs: number, newId: () => string): Op[] {
  const replicated = service.spec.mode.replicated;
  if (replicated === undefined || service.spec.labels[REBALANCE_LABEL] === 'false') return [];
  // Not while an update is under way or paused: its tasks of two templates are the updater's to sort out.
  const u = service.updateStatus?.state;
  if (u === 'updating' || u === 'rollback_started' || u === 'paused' || u === 'rollback_paused') return [];
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
        ops.push(shutdownOp(incoming, nowMs, incoming.nodeId === '' ? undefined : tx.get('node', incoming.nodeId)));
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
  let constraints: Constraint[];
  try {
    constraints = parseConstraints(service.spec.taskTemplate.placement.constraints);
  } catch {
    return ops;
  }
  const nodes = tx.list('node').filter((n) => eligible(n, constraints));
  if (nodes.length < 2) return ops;
  const count = new Map(nodes.map((n) => [n.id, running.get(n.id)?.length ?? 0]));
  while (moving < parallelism) {
    const byLoad = [...nodes].sort((a, b) => (count.get(a.id) ?? 0) - (count.get(b.id) ?? 0) || (a.id < b.id ? -1 : 1));
    const emptiest = byLoad[0] as Node;
    const fullest = byLoad[byLoad.length - 1] as Node;
    const low = count.get(emptiest.id) ?? 0;
    const high = count.get(fullest.id) ?? 0;
    if (high - low < 2 || !hasRoom(tx, emptiest, service, low)) break;
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
  return {
    name: 'rebalancer',
    run: (store: Store, nowMs: number) =>
      store.view((tx) =>
        tx
          .list('service')
          .sort((a, b) => (a.id < b.id ? -1 : 1))
          .flatMap((s) => rebalanceService(tx, s, nowMs, options.newId)),
      ),
  };
}
