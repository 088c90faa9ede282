// The orchestrators: from services to tasks. Replicated services keep one live task per slot 1..N; global services
// one per eligible node. Both replace tasks whose node died or drains, and restart ended ones by the restart policy.

import { isTerminalTaskState, taskStateRank, type Node, type NewObject, type Op, type ReadTx, type Service, type Store, type Task, type TaskStatus } from '@swarm/store';
import { compileConstraints, constraintsHold } from './constraints.js';
import { assert, type Reconciler } from './reconciler.js';

export interface OrchestratorOptions {
  /** Makes task ids (random in production, counted in tests). */
  newId: () => string;
}

const RANK_RUNNING = taskStateRank('running');
const RANK_ASSIGNED = taskStateRank('assigned');

/** Live: the orchestrator still wants it (desired state running or earlier). Dead tasks are only history. */
export function isLive(t: Task): boolean {
  return taskStateRank(t.desiredState) <= RANK_RUNNING;
}

/** What became of a live task, and what its slot needs. */
type Verdict =
  /** Running or on its way: the slot is served. */
  | { kind: 'ok' }
  /** Ended, and the restart policy wants a new one, but not before the restart delay. */
  | { kind: 'waiting' }
  /** Ended, and the restart policy says not again: the slot stays served by this ended task. */
  | { kind: 'done' }
  /** Must go (node down or removed, node draining, restart due): the slot needs a new task. */
  | { kind: 'replace'; op: Op };

export function nodeOf(tx: ReadTx, t: Task): Node | undefined {
  return t.nodeId === '' ? undefined : tx.get('node', t.nodeId);
}

/**
 * The status of a task told to stop that no agent will ever report on: never placed (SHUTDOWN), or placed on a node
 * that is down or gone (ORPHANED). Null when its agent will report the stop itself, or it has already ended.
 */
function unreportedStop(t: Task, node: Node | undefined, nowMs: number): TaskStatus | null {
  if (isTerminalTaskState(t.status.state)) return null;
  if (t.nodeId === '' || taskStateRank(t.status.state) < RANK_ASSIGNED) {
    return { ...t.status, state: 'shutdown', timestampMs: nowMs, message: 'removed before it was scheduled', err: '' };
  }
  if (node === undefined || node.status.state === 'down') {
    return { ...t.status, state: 'orphaned', timestampMs: nowMs, message: node === undefined ? 'node was removed from the swarm' : 'node is down' };
  }
  return null;
}

/** The task told to stop; one that no agent will report on is marked stopped at once. */
export function shutdownOp(tx: ReadTx, t: Task, nowMs: number): Op {
  assert(isLive(t), 'only a live task is shut down');
  const status = unreportedStop(t, nodeOf(tx, t), nowMs);
  return update({ ...t, desiredState: 'shutdown', ...(status === null ? {} : { status }) });
}

function update(t: Task): Op {
  return { op: 'update', kind: 'task', object: t };
}

/** The task ended by itself (not stopped by us): what restart-policy attempts count. */
function endedByItself(t: Task): boolean {
  return t.status.state === 'complete' || t.status.state === 'failed' || t.status.state === 'rejected';
}

/**
 * Restart policy of an ended task: condition (none, on-failure, any), at most maxAttempts restarts within windowMs
 * (counted over the slot's kept history, so never more than the history retention limit), and delayMs after it ended.
 */
function restartVerdict(t: Task, history: readonly Task[], nowMs: number): 'now' | 'later' | 'never' {
  const p = t.spec.restartPolicy;
  if (t.status.state === 'shutdown' || t.status.state === 'orphaned') return 'now'; // stopped by someone else: not the task's fault
  if (p.condition === 'none') return 'never';
  if (p.condition === 'on-failure' && t.status.state === 'complete') return 'never';
  if (p.maxAttempts > 0) {
    const since = p.windowMs > 0 ? nowMs - p.windowMs : -Infinity;
    const restarts = history.filter((d) => endedByItself(d) && d.meta.updatedAtMs >= since).length;
    if (restarts >= p.maxAttempts) return 'never';
  }
  // The leader's clock at the write that ended it, not the node's: the delay needs one clock.
  return nowMs >= t.meta.updatedAtMs + p.delayMs ? 'now' : 'later';
}

function verdict(tx: ReadTx, t: Task, history: readonly Task[], nowMs: number): Verdict {
  const ended = isTerminalTaskState(t.status.state);
  const node = nodeOf(tx, t);
  if (!ended && t.nodeId !== '') {
    if (node === undefined || node.status.state === 'down' || node.spec.availability === 'drain') return { kind: 'replace', op: shutdownOp(tx, t, nowMs) };
    // Docker's constraint enforcer: a node whose labels (or role) changed so that the task's constraints no longer
    // hold gives the task up; the scheduler places the replacement where they do. Placed tasks only: a pending one
    // is the scheduler's to explain.
    if (taskStateRank(t.status.state) >= RANK_ASSIGNED && !constraintsStillHold(node, t)) return { kind: 'replace', op: shutdownOp(tx, t, nowMs) };
  }
  if (!ended) return { kind: 'ok' };
  switch (restartVerdict(t, history, nowMs)) {
    case 'now':
      return { kind: 'replace', op: update({ ...t, desiredState: 'shutdown' }) };
    case 'later':
      return { kind: 'waiting' };
    case 'never':
      return { kind: 'done' };
  }
}

/** The task's own constraints on its node; a spec whose constraints do not parse is left where it is. */
function constraintsStillHold(node: Node, t: Task): boolean {
  const c = compileConstraints(t.spec.placement.constraints);
  return !c.ok || constraintsHold(node, c.constraints);
}

/** Oldest first (creation time, then id): the newest task of a slot is the last. */
export function byCreation(a: Task, b: Task): number {
  return a.meta.createdAtMs - b.meta.createdAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** One slot (a replica number, or a node for a global service): its ops, and whether it is still served. */
function reconcileSlot(tx: ReadTx, live: readonly Task[], history: readonly Task[], nowMs: number): { ops: Op[]; served: boolean } {
  const ops: Op[] = [];
  let served = false;
  let keep = live;
  if (live.length >= 2) {
    // Two live tasks in a slot: a start-first replacement (update) or a move (rebalancer). Once the newest runs,
    // the others go, whoever started it and whatever became of that update since (paused, superseded).
    const sorted = [...live].sort(byCreation);
    const newest = sorted[sorted.length - 1] as Task;
    if (newest.status.state === 'running') {
      for (const old of sorted.slice(0, -1)) ops.push(shutdownOp(tx, old, nowMs));
      keep = [newest];
    }
  }
  for (const t of keep) {
    const v = verdict(tx, t, history, nowMs);
    if (v.kind === 'replace') ops.push(v.op);
    else served = true;
  }
  return { ops, served };
}

export function newTask(service: Service, slot: number, nodeId: string, nowMs: number, id: string): NewObject<'task'> {
  // A global task has a node and no slot; a replicated one a slot, and a node only when preassigned (a rebalancing move).
  assert(slot > 0 || nodeId !== '', 'a task has a slot or a node');
  return {
    id,
    serviceId: service.id,
    slot,
    nodeId,
    spec: service.spec.taskTemplate,
    specVersion: service.specVersion,
    serviceName: service.spec.name,
    desiredState: 'running',
    status: { state: 'new', timestampMs: nowMs, message: 'created', err: '', containerStatus: null, portStatus: [] },
    networksAttachments: [],
    endpoint: { spec: service.endpoint.spec, ports: service.endpoint.ports },
  };
}

function group<K>(tasks: readonly Task[], key: (t: Task) => K): Map<K, { live: Task[]; dead: Task[] }> {
  const out = new Map<K, { live: Task[]; dead: Task[] }>();
  for (const t of tasks) {
    const k = key(t);
    let g = out.get(k);
    if (g === undefined) out.set(k, (g = { live: [], dead: [] }));
    (isLive(t) ? g.live : g.dead).push(t);
  }
  return out;
}

/** Which slots go when there are more than `replicas`: those not running first, then the highest numbers. */
function slotsToRemove(slots: ReadonlyMap<number, { live: Task[] }>, replicas: number): Set<number> {
  const withLive = [...slots.entries()].filter(([, g]) => g.live.length > 0);
  const excess = withLive.length - replicas;
  if (excess <= 0) return new Set();
  const running = (g: { live: Task[] }): number => (g.live.some((t) => t.status.state === 'running') ? 1 : 0);
  withLive.sort(([a, ga], [b, gb]) => running(ga) - running(gb) || b - a);
  return new Set(withLive.slice(0, excess).map(([slot]) => slot));
}

export function reconcileReplicated(tx: ReadTx, service: Service, nowMs: number, newId: () => string): Op[] {
  const replicated = service.spec.mode.replicated;
  assert(replicated !== undefined, 'reconcileReplicated takes a replicated service');
  const slots = group(
    tx.tasksByService(service.id).filter((t) => t.slot > 0),
    (t) => t.slot,
  );
  const ops: Op[] = [];
  const removed = slotsToRemove(slots, replicated.replicas);
  const served = new Set<number>();
  for (const [slot, g] of slots) {
    if (g.live.length === 0) continue;
    if (removed.has(slot)) {
      for (const t of g.live) ops.push(shutdownOp(tx, t, nowMs));
      continue;
    }
    const r = reconcileSlot(tx, g.live, g.dead, nowMs);
    ops.push(...r.ops);
    if (!r.served) ops.push({ op: 'create', kind: 'task', object: newTask(service, slot, '', nowMs, newId()) });
    served.add(slot);
  }
  // New slots take the lowest free numbers; a slot still shutting down keeps its number until it is history.
  for (let slot = 1; served.size < replicated.replicas; slot++) {
    if (served.has(slot) || removed.has(slot)) continue;
    ops.push({ op: 'create', kind: 'task', object: newTask(service, slot, '', nowMs, newId()) });
    served.add(slot);
  }
  return ops;
}

export function reconcileGlobal(tx: ReadTx, service: Service, nowMs: number, newId: () => string): Op[] {
  assert(service.spec.mode.global !== undefined, 'reconcileGlobal takes a global service');
  const byNode = group(
    tx.tasksByService(service.id).filter((t) => t.slot === 0 && t.nodeId !== ''),
    (t) => t.nodeId,
  );
  // Validation keeps unparsable constraints out; an old spec whose constraints do not parse places nowhere.
  const compiled = compileConstraints(service.spec.taskTemplate.placement.constraints);
  const matches = (node: Node): boolean => compiled.ok && constraintsHold(node, compiled.constraints);
  const ops: Op[] = [];
  const nodes = new Map(tx.list('node').map((n) => [n.id, n]));
  // Tasks whose node is gone, down, draining or no longer matching go; the node's slot is not refilled.
  for (const [nodeId, g] of byNode) {
    const node = nodes.get(nodeId);
    const keeps = node !== undefined && node.status.state !== 'down' && node.spec.availability !== 'drain' && matches(node);
    if (!keeps) for (const t of g.live) ops.push(shutdownOp(tx, t, nowMs));
  }
  for (const node of [...nodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    if (node.status.state === 'down' || node.spec.availability === 'drain' || !matches(node)) continue;
    const g = byNode.get(node.id) ?? { live: [], dead: [] };
    const r = reconcileSlot(tx, g.live, g.dead, nowMs);
    ops.push(...r.ops);
    // A paused node keeps what it runs but gets nothing new; a node not yet ready waits.
    if (!r.served && node.status.state === 'ready' && node.spec.availability === 'active') {
      ops.push({ op: 'create', kind: 'task', object: newTask(service, 0, node.id, nowMs, newId()) });
    }
  }
  return ops;
}

/**
 * Live tasks whose service is gone (removed between a read and a write elsewhere) are shut down; a task told to
 * stop that never got to a node, or whose node died or left before it reported, is marked stopped (SHUTDOWN or
 * ORPHANED) here, since no agent will ever report it.
 */
function strays(tx: ReadTx, nowMs: number): Op[] {
  const ops: Op[] = [];
  for (const t of tx.list('task')) {
    if (isLive(t)) {
      if (tx.get('service', t.serviceId) === undefined) ops.push(shutdownOp(tx, t, nowMs));
      continue;
    }
    const status = unreportedStop(t, nodeOf(tx, t), nowMs);
    if (status !== null) ops.push(update({ ...t, status }));
  }
  return ops;
}

export function orchestrate(tx: ReadTx, nowMs: number, options: OrchestratorOptions): Op[] {
  const ops: Op[] = [];
  const services = tx.list('service').sort((a, b) => (a.id < b.id ? -1 : 1));
  for (const s of services) {
    ops.push(...(s.spec.mode.replicated !== undefined ? reconcileReplicated(tx, s, nowMs, options.newId) : reconcileGlobal(tx, s, nowMs, options.newId)));
  }
  ops.push(...strays(tx, nowMs));
  const written = ops.filter((o) => o.op === 'update').map((o) => (o.op === 'update' ? o.object.id : ''));
  assert(new Set(written).size === written.length, 'one pass writes a task at most once');
  return ops;
}

export function orchestrator(options: OrchestratorOptions): Reconciler {
  return { name: 'orchestrator', run: (store: Store, nowMs: number) => store.view((tx) => orchestrate(tx, nowMs, options)) };
}
