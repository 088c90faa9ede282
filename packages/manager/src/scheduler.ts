// The scheduler: every PENDING task that should run gets a node, all of one pass in one plan (a batch, not a
// transaction per task). Filters (availability, platform, constraints, resources, max replicas) then spread.

import { isTerminalTaskState, taskStateRank, type Node, type Op, type ReadTx, type Store, type Task } from '@swarm/store';
import { compileConstraints, constraintsHold, normalizeArch, type Constraint } from './constraints.js';
import { assert, type Reconciler } from './reconciler.js';

/** Why a node cannot take a task; the order is the order filters run, and of the parts of a pending reason. */
const FILTERS = ['unavailable', 'platform', 'constraints', 'cpu', 'memory', 'maxReplicas', 'hostPort'] as const;
export type FilterFailure = (typeof FILTERS)[number];

function plural(n: number): string {
  return n === 1 ? '1 node' : `${n} nodes`;
}

const EXPLAIN: Record<FilterFailure, (n: number) => string> = {
  unavailable: (n) => `${plural(n)} not available for new tasks`,
  platform: (n) => `unsupported platform on ${plural(n)}`,
  constraints: (n) => `scheduling constraints not satisfied on ${plural(n)}`,
  cpu: (n) => `insufficient CPU on ${plural(n)}`,
  memory: (n) => `insufficient memory on ${plural(n)}`,
  maxReplicas: (n) => `max replicas per node limit exceed on ${plural(n)}`,
  hostPort: (n) => `host-mode port already in use on ${plural(n)}`,
};

/** Docker's form: "no suitable node (scheduling constraints not satisfied on 3 nodes; insufficient memory on 1 node)". */
export function pendingReason(failures: ReadonlyMap<FilterFailure, number>, nodeCount: number): string {
  if (nodeCount === 0) return 'no suitable node (no nodes in the cluster)';
  const parts = FILTERS.filter((f) => (failures.get(f) ?? 0) > 0).map((f) => EXPLAIN[f](failures.get(f) ?? 0));
  assert(parts.length > 0, 'a task with no suitable node has a reason');
  return `no suitable node (${parts.join('; ')})`;
}

/** What the scheduler tracks of a node while it plans: the counts change as tasks are placed in this pass. */
export interface NodeLoad {
  node: Node;
  tasks: number;
  byService: Map<string, number>;
  reservedNanoCpus: number;
  reservedMemoryBytes: number;
  /** Host-mode published ports its tasks hold, as `tcp/8080`: one task per port and node. */
  hostPorts: Set<string>;
}

/** A task's host-mode published ports with a number (0 would be any free port of the node). */
function hostPortsOf(t: Task): string[] {
  return (t.endpoint?.ports ?? []).filter((p) => p.publishMode === 'host' && p.publishedPort > 0).map((p) => `${p.protocol}/${p.publishedPort}`);
}

/** A task that holds (or is about to hold) a node's resources: placed, and neither ended nor told to stop. */
function occupies(t: Task): boolean {
  return t.nodeId !== '' && !isTerminalTaskState(t.status.state) && taskStateRank(t.desiredState) <= taskStateRank('running');
}

function loads(tx: ReadTx): Map<string, NodeLoad> {
  const out = new Map<string, NodeLoad>();
  for (const node of tx.list('node')) out.set(node.id, { node, tasks: 0, byService: new Map(), reservedNanoCpus: 0, reservedMemoryBytes: 0, hostPorts: new Set() });
  for (const t of tx.list('task')) {
    // A preassigned task still PENDING does not hold its node yet: this pass places it (or not).
    if (!occupies(t) || t.status.state === 'pending') continue;
    const load = out.get(t.nodeId);
    if (load !== undefined) place(load, t);
  }
  return out;
}

/** One node's load as the store has it now (the rebalancer asks about a single node). */
export function loadOf(tx: ReadTx, node: Node): NodeLoad {
  const load: NodeLoad = { node, tasks: 0, byService: new Map(), reservedNanoCpus: 0, reservedMemoryBytes: 0, hostPorts: new Set() };
  for (const t of tx.tasksByNode(node.id)) if (occupies(t) && t.status.state !== 'pending') place(load, t);
  return load;
}

function place(load: NodeLoad, t: Task): void {
  load.tasks += 1;
  load.byService.set(t.serviceId, (load.byService.get(t.serviceId) ?? 0) + 1);
  load.reservedNanoCpus += t.spec.resources.reservations.nanoCpus;
  load.reservedMemoryBytes += t.spec.resources.reservations.memoryBytes;
  for (const port of hostPortsOf(t)) load.hostPorts.add(port);
}

function platformFits(node: Node, t: Task): boolean {
  const platforms = t.spec.placement.platforms;
  if (platforms.length === 0) return true;
  const os = node.description.platform.os.toLowerCase();
  const arch = normalizeArch(node.description.platform.arch);
  return platforms.some((p) => (p.os === '' || p.os.toLowerCase() === os) && (p.arch === '' || normalizeArch(p.arch) === arch));
}

/** Filters that depend only on the node and the task's spec: run once per group of like tasks. */
export function staticCheck(n: Node, t: Task, constraints: readonly Constraint[]): FilterFailure | null {
  if (n.status.state !== 'ready' || n.spec.availability !== 'active') return 'unavailable';
  if (!platformFits(n, t)) return 'platform';
  if (!constraintsHold(n, constraints)) return 'constraints';
  return null;
}

/** Filters that change as this pass places tasks: reservations and max replicas per node. */
export function dynamicCheck(load: NodeLoad, t: Task): FilterFailure | null {
  const n = load.node;
  const want = t.spec.resources.reservations;
  if (want.nanoCpus > 0 && load.reservedNanoCpus + want.nanoCpus > n.description.resources.nanoCpus) return 'cpu';
  if (want.memoryBytes > 0 && load.reservedMemoryBytes + want.memoryBytes > n.description.resources.memoryBytes) return 'memory';
  const max = t.spec.placement.maxReplicas;
  if (max > 0 && (load.byService.get(t.serviceId) ?? 0) >= max) return 'maxReplicas';
  if (hostPortsOf(t).some((port) => load.hostPorts.has(port))) return 'hostPort';
  return null;
}

/** A heap entry: the node and its count of the group's service, kept here so comparing needs no map lookup. */
interface HeapEntry {
  load: NodeLoad;
  ofService: number;
}

/**
 * A binary min-heap of candidate nodes for one group of like tasks, ordered by (tasks of the service, tasks overall,
 * node id): placing a task is O(log nodes), so 100,000 tasks on 1,000 nodes are one quick pass.
 */
class NodeHeap {
  private readonly items: HeapEntry[] = [];
  constructor(loads: readonly NodeLoad[], serviceId: string) {
    for (const load of loads) this.push({ load, ofService: load.byService.get(serviceId) ?? 0 });
  }

  private static less(a: HeapEntry, b: HeapEntry): boolean {
    if (a.ofService !== b.ofService) return a.ofService < b.ofService;
    if (a.load.tasks !== b.load.tasks) return a.load.tasks < b.load.tasks;
    return a.load.node.id < b.load.node.id;
  }

  push(e: HeapEntry): void {
    const h = this.items;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent] as HeapEntry;
      if (!NodeHeap.less(e, p)) break;
      h[i] = p;
      i = parent;
    }
    h[i] = e;
  }

  pop(): HeapEntry | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && NodeHeap.less(h[r] as HeapEntry, h[l] as HeapEntry) ? r : l;
      const child = h[c] as HeapEntry;
      if (!NodeHeap.less(child, last)) break;
      h[i] = child;
      i = c;
    }
    h[i] = last;
    return top;
  }
}

/** The value a spread preference groups nodes by (`node.labels.zone`); nodes without it form one group. */
function spreadValue(node: Node, descriptor: string): string {
  const d = descriptor.trim();
  if (d.toLowerCase().startsWith('node.labels.')) return node.spec.labels[d.slice('node.labels.'.length)] ?? '';
  if (d.toLowerCase().startsWith('engine.labels.')) return node.description.engineLabels[d.slice('engine.labels.'.length)] ?? '';
  if (d === 'node.hostname') return node.description.hostname;
  if (d === 'node.id') return node.id;
  return '';
}

/**
 * Picks the node for one task among those that pass the filters: spread preferences first (the group with the fewest
 * tasks of the service), then the fewest tasks of the service, then the fewest tasks overall, then the node id.
 */
function best(candidates: readonly NodeLoad[], t: Task, all: ReadonlyMap<string, NodeLoad>): NodeLoad {
  assert(candidates.length > 0, 'best() needs a candidate');
  const groupCounts = t.spec.placement.preferences.map((p) => {
    const counts = new Map<string, number>();
    for (const l of all.values()) {
      const v = spreadValue(l.node, p.spread);
      counts.set(v, (counts.get(v) ?? 0) + (l.byService.get(t.serviceId) ?? 0));
    }
    return { descriptor: p.spread, counts };
  });
  const key = (l: NodeLoad): number[] => [
    ...groupCounts.map((g) => g.counts.get(spreadValue(l.node, g.descriptor)) ?? 0),
    l.byService.get(t.serviceId) ?? 0,
    l.tasks,
  ];
  let winner = candidates[0] as NodeLoad;
  let winnerKey = key(winner);
  for (const c of candidates.slice(1)) {
    const k = key(c);
    let cmp = 0;
    for (let i = 0; i < k.length && cmp === 0; i++) cmp = (k[i] as number) - (winnerKey[i] as number);
    if (cmp < 0 || (cmp === 0 && c.node.id < winner.node.id)) {
      winner = c;
      winnerKey = k;
    }
  }
  return winner;
}

export interface SchedulerOptions {
  /** Tasks placed per pass; the rest wait for the next pass (which comes at once, as the store changed). */
  maxTasksPerPass?: number;
}

export const DEFAULT_MAX_TASKS_PER_PASS = 10_000;

function wantsToRun(t: Task): boolean {
  return t.status.state === 'pending' && taskStateRank(t.desiredState) <= taskStateRank('running');
}

/** Oldest first, then by service and slot: a stable order, so the same store gives the same plan. */
function schedulingOrder(a: Task, b: Task): number {
  if (a.meta.createdAtMs !== b.meta.createdAtMs) return a.meta.createdAtMs - b.meta.createdAtMs;
  if (a.serviceId !== b.serviceId) return a.serviceId < b.serviceId ? -1 : 1;
  if (a.slot !== b.slot) return a.slot - b.slot;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Tasks that filter alike: same service and same placement-relevant spec, not preassigned to a node. */
function groupKey(t: Task): string {
  const p = t.spec.placement;
  const r = t.spec.resources.reservations;
  return `${t.serviceId}\u0000${p.constraints.join('\u0001')}\u0000${JSON.stringify(p.platforms)}\u0000${r.nanoCpus}\u0000${r.memoryBytes}\u0000${p.maxReplicas}`;
}

interface Group {
  tasks: Task[];
  /** Nodes past the static filters, and how many failed each. */
  fit: NodeLoad[];
  failures: Map<FilterFailure, number>;
}

/** The plan for one pass as store writes: PENDING -> ASSIGNED with a node, or PENDING with a (changed) reason. */
export function schedule(tx: ReadTx, nowMs: number, options: SchedulerOptions = {}): Op[] {
  const max = options.maxTasksPerPass ?? DEFAULT_MAX_TASKS_PER_PASS;
  assert(Number.isInteger(max) && max > 0, 'maxTasksPerPass is a positive integer');
  const pending = tx.list('task').filter(wantsToRun).sort(schedulingOrder).slice(0, max);
  if (pending.length === 0) return [];
  const all = loads(tx);
  const nodes = [...all.values()].sort((a, b) => (a.node.id < b.node.id ? -1 : 1));
  const ops: Op[] = [];
  const groups = new Map<string, Group>();
  for (const t of pending) {
    if (tx.get('service', t.serviceId) === undefined) continue; // the orchestrator shuts it down
    if (predecessorStopping(tx, t)) continue; // stop-first: the slot is emptied before its new task is placed
    const compiled = compileConstraints(t.spec.placement.constraints);
    if (!compiled.ok) {
      // A spec that got past validation parses; one that does not (an older version's) places nowhere.
      ops.push(...stillPending(t, nowMs, `invalid constraint: ${compiled.error}`));
      continue;
    }
    const constraints = compiled.constraints;
    if (t.nodeId !== '') {
      // Preassigned (a global service's task): that node or nothing.
      const load = all.get(t.nodeId);
      const why = load === undefined ? 'unavailable' : (staticCheck(load.node, t, constraints) ?? dynamicCheck(load, t));
      if (load !== undefined && why === null) {
        place(load, t);
        ops.push(assigned(t, load, nowMs));
      } else {
        ops.push(...stillPending(t, nowMs, pendingReason(new Map([[why ?? 'unavailable', 1]]), 1)));
      }
      continue;
    }
    const key = groupKey(t);
    let g = groups.get(key);
    if (g === undefined) {
      const failures = new Map<FilterFailure, number>();
      const fit: NodeLoad[] = [];
      for (const l of nodes) {
        const why = staticCheck(l.node, t, constraints);
        if (why === null) fit.push(l);
        else failures.set(why, (failures.get(why) ?? 0) + 1);
      }
      groups.set(key, (g = { tasks: [], fit, failures }));
    }
    g.tasks.push(t);
  }
  for (const g of groups.values()) {
    const first = g.tasks[0];
    assert(first !== undefined, 'a group has a task');
    if (first.spec.placement.preferences.length > 0) ops.push(...placeSpread(g, all, nowMs));
    else ops.push(...placeLeastLoaded(g, nodes.length, nowMs));
  }
  return ops;
}

function assigned(t: Task, load: NodeLoad, nowMs: number): Op {
  return {
    op: 'update',
    kind: 'task',
    object: { ...t, nodeId: load.node.id, status: { ...t.status, state: 'assigned', timestampMs: nowMs, message: 'scheduler assigned task to node', err: '' } },
  };
}

/** No preferences: the heap gives the least loaded node; one that fails a dynamic filter is out for the group. */
function placeLeastLoaded(g: Group, nodeCount: number, nowMs: number): Op[] {
  const first = g.tasks[0] as Task;
  const heap = new NodeHeap(g.fit, first.serviceId);
  const failures = new Map(g.failures);
  const ops: Op[] = [];
  for (const t of g.tasks) {
    let chosen: HeapEntry | undefined;
    for (let e = heap.pop(); e !== undefined; e = heap.pop()) {
      const why = dynamicCheck(e.load, t);
      if (why === null) {
        chosen = e;
        break;
      }
      // Loads only grow within a pass, and the group's tasks want the same: this node is out for all of them.
      failures.set(why, (failures.get(why) ?? 0) + 1);
    }
    if (chosen === undefined) {
      ops.push(...stillPending(t, nowMs, pendingReason(failures, nodeCount)));
      continue;
    }
    place(chosen.load, t);
    chosen.ofService += 1;
    heap.push(chosen);
    ops.push(assigned(t, chosen.load, nowMs));
  }
  return ops;
}

/** Spread preferences: the group with the fewest tasks of the service first; a linear scan per task. */
function placeSpread(g: Group, all: ReadonlyMap<string, NodeLoad>, nowMs: number): Op[] {
  const ops: Op[] = [];
  for (const t of g.tasks) {
    const failures = new Map(g.failures);
    const fit: NodeLoad[] = [];
    for (const l of g.fit) {
      const why = dynamicCheck(l, t);
      if (why === null) fit.push(l);
      else failures.set(why, (failures.get(why) ?? 0) + 1);
    }
    if (fit.length === 0) {
      ops.push(...stillPending(t, nowMs, pendingReason(failures, all.size)));
      continue;
    }
    const chosen = best(fit, t, all);
    place(chosen, t);
    ops.push(assigned(t, chosen, nowMs));
  }
  return ops;
}

/**
 * Another task of the same slot (replica number, or node for a global service) was told to stop and has not yet:
 * its replacement waits, so a slot never runs two tasks unless an update asked for start-first. A task on a node
 * that is down is not waited for (the orchestrator marks it ORPHANED).
 */
function predecessorStopping(tx: ReadTx, t: Task): boolean {
  const siblings = t.slot > 0 ? tx.tasksBySlot(t.serviceId, t.slot) : tx.tasksByNode(t.nodeId).filter((o) => o.serviceId === t.serviceId && o.slot === 0);
  return siblings.some((o) => {
    if (o.id === t.id || o.nodeId === '' || isTerminalTaskState(o.status.state) || taskStateRank(o.desiredState) <= taskStateRank('running')) return false;
    const node = tx.get('node', o.nodeId);
    return node !== undefined && node.status.state !== 'down';
  });
}

/** A pending task's reason is written only when it changes, so an unplaceable task costs nothing per pass. */
function stillPending(t: Task, nowMs: number, reason: string): Op[] {
  if (t.status.err === reason) return [];
  return [{ op: 'update', kind: 'task', object: { ...t, status: { ...t.status, timestampMs: nowMs, message: 'pending task scheduling', err: reason } } }];
}

export function scheduler(options: SchedulerOptions = {}): Reconciler {
  return {
    name: 'scheduler',
    run: (store: Store, nowMs: number) => store.view((tx) => schedule(tx, nowMs, options)),
  };
}
