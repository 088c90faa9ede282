// What must hold of the store after every simulated step (task states only move forwards, a slot never runs two
// tasks unless start-first allows it, no live task on a vanished node, bounded history) and what it converges to.

import {
  DEFAULT_TASK_HISTORY_RETENTION_LIMIT,
  defaultUpdateConfig,
  deepEqual,
  isTerminalTaskState,
  taskStateRank,
  type Node,
  type Op,
  type ReadTx,
  type Service,
  type Task,
} from '@swarm/store';
import { constraintsHold, parseConstraints } from '../src/index.js';
import { imageFate, isFaultyImage } from './agent.js';

export type InvariantName =
  /** (a) A task's status or desired state moved backwards in SwarmKit's order. */
  | 'task-state-backwards'
  | 'desired-state-backwards'
  /** (b) A slot (replica, or node of a global service) runs more tasks than its update order allows. */
  | 'slot-overlap'
  /** (c) A live task stays on a node that is not in the store, or that is down or drained. */
  | 'task-on-missing-node'
  | 'task-on-unavailable-node'
  /** (d) The task table outgrew what the services and the retention limit account for. */
  | 'task-count-unbounded'
  /** (e) After the faults stopped, the services did not reach (or hold) their desired state. */
  | 'no-convergence'
  /** A reconciler threw (one of its own assertions), or the store refused its transaction. */
  | 'reconciler-threw'
  | 'reconciler-write-refused'
  /** The scheduler placed a task where it must not: an unavailable node, or next to a task still stopping. */
  | 'scheduler-placement';

export class InvariantViolation extends Error {
  constructor(
    readonly invariant: InvariantName,
    readonly step: number,
    readonly detail: string,
  ) {
    super(`step ${step}: ${invariant}: ${detail}`);
    this.name = 'InvariantViolation';
  }
}

const RANK_RUNNING = taskStateRank('running');

/** Live: the orchestrator still wants it (desired state running or earlier). */
function isLive(t: Task): boolean {
  return taskStateRank(t.desiredState) <= RANK_RUNNING;
}

/** The slot a task belongs to: its replica number, or for a global service its node. */
export function slotKey(t: Task): string {
  return t.slot > 0 ? `${t.serviceId}.${t.slot}` : `${t.serviceId}@${t.nodeId}`;
}

/** One line a person can read in a failure report: id, slot, state/desired, node, image, creation time. */
export function describeTask(t: Task): string {
  const where = t.slot > 0 ? `${t.serviceName}.${t.slot}` : `${t.serviceName}@${t.nodeId}`;
  const err = t.status.err === '' ? '' : ` err=${JSON.stringify(t.status.err)}`;
  return `${t.id} ${where} ${t.status.state}/${t.desiredState} node=${t.nodeId === '' ? '-' : t.nodeId} image=${t.spec.containerSpec.image} created=${t.meta.createdAtMs}${err}`;
}

function describeTasks(tasks: readonly Task[]): string {
  return tasks.map(describeTask).join('; ');
}

/**
 * How many tasks of one slot may run at once. start-first lets an update (or rollback) run the new task beside the
 * old one; while the update is paused its config still governs the slots it left half done.
 */
export function overlapAllowed(s: Service): number {
  const state = s.updateStatus?.state;
  let order: 'stop-first' | 'start-first' = 'stop-first';
  if (state === 'updating' || state === 'paused') order = (s.spec.updateConfig ?? defaultUpdateConfig()).order;
  if (state === 'rollback_started' || state === 'rollback_paused') order = (s.spec.rollbackConfig ?? defaultUpdateConfig()).order;
  return order === 'start-first' ? 2 : 1;
}

export interface CheckContext {
  step: number;
  /** Orchestrator passes that ran to the end (their ops committed): how long a stale task has had to be fixed. */
  orchestratorPasses: number;
  /**
   * Whether a task was made to start beside its slot's old one (by a start-first update or rollback, or a rebalancing
   * move): it may run next to it even after the service's update turned stop-first.
   */
  madeStartFirst?: (taskId: string) => boolean;
}

/** Per-slot history kept (task history retention) plus live, starting and stopping tasks of one slot. */
const TASKS_PER_SLOT_BEYOND_RETENTION = 2;
/** Tasks in flight that no slot accounts for (a batch being created while another is reaped, say). */
const TASK_COUNT_SLACK = 10;
/** Orchestrator passes a live task on a removed, down or drained node may survive: the first one after must fix it. */
const MISSING_NODE_GRACE_PASSES = 1;

/**
 * Checks (a)-(d) after each step. It remembers what it saw (last rank per task, slots that were legitimately doubled,
 * slots and nodes ever used per service), so a violation is a change between two steps, not only a bad snapshot.
 */
export class InvariantChecker {
  private readonly statusRank = new Map<string, number>();
  private readonly desiredRank = new Map<string, number>();
  /** Per slot, the running tasks last found acceptable: a set that shrinks is fine, a new task on top is not. */
  private readonly toleratedRunning = new Map<string, Set<string>>();
  private readonly stuckSince = new Map<string, number>();
  /** Per service: the most slots it ever had (replicas, or nodes it ran on), for the task-count bound. */
  private readonly slotsEver = new Map<string, number>();
  private readonly globalNodesEver = new Map<string, Set<string>>();
  /** Per removed service: tasks it had when first seen removed; the count may only fall from there. */
  private readonly removedServiceTasks = new Map<string, number>();
  /** The fullest the task table got, as a percentage of its bound (how much headroom (d) leaves). */
  worstTaskCountPercent = 0;

  check(tx: ReadTx, ctx: CheckContext): void {
    const tasks = tx.list('task').sort((a, b) => (a.id < b.id ? -1 : 1));
    const services = new Map(tx.list('service').map((s) => [s.id, s]));
    this.checkMonotonic(tasks, ctx);
    this.checkOverlap(tasks, services, ctx);
    this.checkMissingNodes(tx, tasks, ctx);
    this.checkTaskCount(tx, tasks, services, ctx);
  }

  /** (a) Status and desired state only move rightwards in TASK_STATES. */
  private checkMonotonic(tasks: readonly Task[], ctx: CheckContext): void {
    const present = new Set<string>();
    for (const t of tasks) {
      present.add(t.id);
      const status = taskStateRank(t.status.state);
      const desired = taskStateRank(t.desiredState);
      const lastStatus = this.statusRank.get(t.id);
      const lastDesired = this.desiredRank.get(t.id);
      if (lastStatus !== undefined && status < lastStatus) {
        throw new InvariantViolation('task-state-backwards', ctx.step, `status went back from rank ${lastStatus} to ${t.status.state}: ${describeTask(t)}`);
      }
      if (lastDesired !== undefined && desired < lastDesired) {
        throw new InvariantViolation('desired-state-backwards', ctx.step, `desired state went back from rank ${lastDesired} to ${t.desiredState}: ${describeTask(t)}`);
      }
      this.statusRank.set(t.id, status);
      this.desiredRank.set(t.id, desired);
    }
    // Ids are never reused, so a reaped task's memory can go (keeps the checker's maps bounded by the store).
    for (const id of [...this.statusRank.keys()]) {
      if (present.has(id)) continue;
      this.statusRank.delete(id);
      this.desiredRank.delete(id);
      this.stuckSince.delete(id);
    }
  }

  /** (b) At most one running live task per slot, two while a start-first update (or rollback) governs it. */
  private checkOverlap(tasks: readonly Task[], services: ReadonlyMap<string, Service>, ctx: CheckContext): void {
    const running = new Map<string, Task[]>();
    for (const t of tasks) {
      if (!isLive(t) || t.status.state !== 'running') continue;
      const key = slotKey(t);
      const list = running.get(key);
      if (list === undefined) running.set(key, [t]);
      else list.push(t);
    }
    for (const key of [...this.toleratedRunning.keys()]) if (!running.has(key)) this.toleratedRunning.delete(key);
    for (const [key, list] of running) {
      const service = services.get((list[0] as Task).serviceId);
      const startFirst = list.some((t) => ctx.madeStartFirst?.(t.id) === true);
      const allowed = Math.max(service === undefined ? 1 : overlapAllowed(service), startFirst ? 2 : 1);
      const ids = new Set(list.map((t) => t.id));
      const tolerated = this.toleratedRunning.get(key);
      const nothingNew = tolerated !== undefined && [...ids].every((id) => tolerated.has(id));
      if (list.length > allowed && !nothingNew) {
        const config = service === undefined ? 'service removed' : `update ${service.updateStatus?.state ?? 'none'}${startFirst ? ', one made start-first' : ''}, allows ${allowed}`;
        throw new InvariantViolation('slot-overlap', ctx.step, `slot ${key} runs ${list.length} live tasks (${config}): ${describeTasks(list)}`);
      }
      this.toleratedRunning.set(key, ids);
    }
  }

  /**
   * (c) A live task still under way on a node that left the store, went down or is drained is shut down (orphaned)
   * by the next orchestrator pass. One that already ended is only its slot's record: it needs no node.
   */
  private checkMissingNodes(tx: ReadTx, tasks: readonly Task[], ctx: CheckContext): void {
    for (const t of tasks) {
      const node = t.nodeId === '' ? undefined : tx.get('node', t.nodeId);
      const unusable = node === undefined || node.status.state === 'down' || node.spec.availability === 'drain';
      if (!isLive(t) || isTerminalTaskState(t.status.state) || t.nodeId === '' || !unusable) {
        this.stuckSince.delete(t.id);
        continue;
      }
      const since = this.stuckSince.get(t.id);
      if (since === undefined) {
        this.stuckSince.set(t.id, ctx.orchestratorPasses);
        continue;
      }
      if (ctx.orchestratorPasses - since > MISSING_NODE_GRACE_PASSES) {
        const why = node === undefined ? 'its node left the store' : `its node is ${node.status.state}/${node.spec.availability}`;
        throw new InvariantViolation(
          node === undefined ? 'task-on-missing-node' : 'task-on-unavailable-node',
          ctx.step,
          `${ctx.orchestratorPasses - since} orchestrator passes after ${why}, the task is still live: ${describeTask(t)}`,
        );
      }
    }
  }

  /**
   * (d) Every slot a service ever had keeps at most the retention limit of dead tasks plus the few it is working
   * on; a removed service's tasks only go away; tasks stranded on removed nodes are counted (the end check names them).
   */
  private checkTaskCount(tx: ReadTx, tasks: readonly Task[], services: ReadonlyMap<string, Service>, ctx: CheckContext): void {
    const retention = tx.list('cluster')[0]?.spec.orchestration.taskHistoryRetentionLimit ?? DEFAULT_TASK_HISTORY_RETENTION_LIMIT;
    const byService = new Map<string, number>();
    let stranded = 0;
    for (const t of tasks) {
      byService.set(t.serviceId, (byService.get(t.serviceId) ?? 0) + 1);
      if (t.nodeId !== '' && !isTerminalTaskState(t.status.state) && tx.get('node', t.nodeId) === undefined) stranded++;
    }
    for (const s of services.values()) {
      if (s.spec.mode.replicated !== undefined) {
        this.slotsEver.set(s.id, Math.max(this.slotsEver.get(s.id) ?? 0, s.spec.mode.replicated.replicas));
      } else {
        let nodes = this.globalNodesEver.get(s.id);
        if (nodes === undefined) this.globalNodesEver.set(s.id, (nodes = new Set()));
        for (const n of tx.list('node')) nodes.add(n.id);
        this.slotsEver.set(s.id, nodes.size);
      }
    }
    let bound = TASK_COUNT_SLACK + stranded;
    for (const [serviceId, slots] of this.slotsEver) {
      if (services.has(serviceId)) {
        bound += slots * (1 + retention + TASKS_PER_SLOT_BEYOND_RETENTION);
        continue;
      }
      const left = byService.get(serviceId) ?? 0;
      const first = this.removedServiceTasks.get(serviceId);
      if (first === undefined) this.removedServiceTasks.set(serviceId, left);
      else if (left > first) {
        const extra = tasks.filter((t) => t.serviceId === serviceId);
        throw new InvariantViolation('task-count-unbounded', ctx.step, `removed service ${serviceId} went from ${first} to ${left} tasks: ${describeTasks(extra)}`);
      }
      bound += first ?? left;
      if (left === 0) {
        this.slotsEver.delete(serviceId);
        this.globalNodesEver.delete(serviceId);
        this.removedServiceTasks.delete(serviceId);
      }
    }
    this.worstTaskCountPercent = Math.max(this.worstTaskCountPercent, Math.round((100 * tasks.length) / bound));
    if (tasks.length > bound) {
      const worst = [...byService].sort((a, b) => b[1] - a[1])[0];
      throw new InvariantViolation(
        'task-count-unbounded',
        ctx.step,
        `${tasks.length} tasks in the store, bound ${bound} (retention ${retention}); most held by ${worst?.[0] ?? '-'} (${worst?.[1] ?? 0})`,
      );
    }
  }

  /**
   * The scheduler's plan, before it is committed: a task goes PENDING -> ASSIGNED only to a ready, active node, only
   * while it is still wanted, and not while another task of its slot is being stopped on a node that is up.
   */
  checkSchedulerPlan(tx: ReadTx, ops: readonly Op[], step: number): void {
    for (const op of ops) {
      if (op.op !== 'update' || op.kind !== 'task' || op.object.status.state !== 'assigned') continue;
      const before = tx.get('task', op.object.id);
      if (before === undefined || before.status.state === 'assigned') continue;
      const t = op.object;
      const node = tx.get('node', t.nodeId);
      if (node === undefined || node.status.state !== 'ready' || node.spec.availability !== 'active') {
        const why = node === undefined ? 'not in the store' : `${node.status.state}/${node.spec.availability}`;
        throw new InvariantViolation('scheduler-placement', step, `task assigned to node ${t.nodeId} (${why}): ${describeTask(before)}`);
      }
      if (!isLive(before)) throw new InvariantViolation('scheduler-placement', step, `a task told to stop was assigned: ${describeTask(before)}`);
      const siblings = t.slot > 0 ? tx.tasksBySlot(t.serviceId, t.slot) : tx.tasksByNode(t.nodeId).filter((o) => o.serviceId === t.serviceId && o.slot === 0);
      const stopping = siblings.filter((o) => {
        if (o.id === t.id || o.nodeId === '' || isLive(o) || isTerminalTaskState(o.status.state)) return false;
        const on = tx.get('node', o.nodeId);
        return on !== undefined && on.status.state !== 'down';
      });
      if (stopping.length > 0) {
        throw new InvariantViolation('scheduler-placement', step, `task assigned while its slot is still stopping ${describeTasks(stopping)}: ${describeTask(before)}`);
      }
    }
  }
}

// ---------------------------------------------------------------- convergence

/**
 * Placement holds in the end: a task that is under way sits on a node its own template's constraints allow (Docker's
 * constraint enforcer moves tasks off a node whose labels changed), and no node runs more than max replicas.
 */
function placementGaps(s: Service, live: readonly Task[], nodes: readonly Node[]): string[] {
  const gaps: string[] = [];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const misplaced = live.filter((t) => {
    const node = byId.get(t.nodeId);
    if (node === undefined || isTerminalTaskState(t.status.state)) return false;
    try {
      return !constraintsHold(node, parseConstraints(t.spec.placement.constraints));
    } catch {
      return false; // a template whose constraints do not parse is placed nowhere; nothing to hold it to
    }
  });
  if (misplaced.length > 0) gaps.push(`${s.spec.name}: tasks on nodes their constraints exclude: ${describeTasks(misplaced)}`);
  const max = s.spec.taskTemplate.placement.maxReplicas;
  if (max > 0) {
    const perNode = new Map<string, number>();
    for (const t of live) if (t.status.state === 'running') perNode.set(t.nodeId, (perNode.get(t.nodeId) ?? 0) + 1);
    for (const [nodeId, count] of perNode) if (count > max) gaps.push(`${s.spec.name}: ${count} running tasks on ${nodeId}, max replicas per node ${max}`);
  }
  return gaps;
}

function endedByItself(t: Task): boolean {
  return t.status.state === 'complete' || t.status.state === 'failed' || t.status.state === 'rejected';
}

/**
 * A live task that ended by itself and that its restart policy will not restart (condition none, on-failure after
 * a clean exit, or max attempts used up within the window): its slot is rightly left without a running task.
 */
export function restartGivenUp(t: Task, slotTasks: readonly Task[], nowMs: number): boolean {
  if (!endedByItself(t)) return false;
  const p = t.spec.restartPolicy;
  if (p.condition === 'none') return true;
  if (p.condition === 'on-failure' && t.status.state === 'complete') return true;
  if (p.maxAttempts === 0) return false;
  const since = p.windowMs > 0 ? nowMs - p.windowMs : -Infinity;
  const restarts = slotTasks.filter((d) => !isLive(d) && endedByItself(d) && d.meta.updatedAtMs >= since).length;
  return restarts >= p.maxAttempts;
}

function isPaused(s: Service): boolean {
  return s.updateStatus?.state === 'paused' || s.updateStatus?.state === 'rollback_paused';
}

/** One slot's verdict: exactly one running task, unless every live task there is excused (faulty image, gave up). */
function slotGap(where: string, slotTasks: readonly Task[], nowMs: number): string | null {
  const live = slotTasks.filter(isLive);
  const expected = live.filter((t) => !isFaultyImage(t) && !restartGivenUp(t, slotTasks, nowMs));
  if (live.length === 0) return `${where}: no live task`;
  if (expected.length === 0) return null;
  if (expected.length === 1 && (expected[0] as Task).status.state === 'running') return null;
  return `${where}: wants one running task, has ${describeTasks(expected)}`;
}

/**
 * (e) Why the cluster is not (yet) where its services say it should be; empty when it is. Every replicated slot
 * 1..replicas and every eligible node of a global service runs one task; nothing runs elsewhere; an update that is
 * not paused has replaced every task with the current template and finished; and no task is left behind on a node
 * or of a service that no longer exists.
 */
export function convergenceGaps(tx: ReadTx, nowMs: number): string[] {
  const gaps: string[] = [];
  const nodes = tx.list('node').sort((a, b) => (a.id < b.id ? -1 : 1));
  const services = tx.list('service').sort((a, b) => (a.id < b.id ? -1 : 1));
  for (const s of services) {
    const tasks = tx.tasksByService(s.id);
    const live = tasks.filter(isLive);
    const replicated = s.spec.mode.replicated;
    if (replicated !== undefined) {
      // Slot numbers need not be 1..replicas: a scale-down keeps the running slots, whatever their numbers.
      const slots = [...new Set(live.filter((t) => t.slot > 0).map((t) => t.slot))].sort((a, b) => a - b);
      if (slots.length !== replicated.replicas) gaps.push(`${s.spec.name}: ${slots.length} slots with live tasks for ${replicated.replicas} replicas (${slots.join(', ')})`);
      for (const slot of slots) {
        const gap = slotGap(`${s.spec.name}.${slot}`, tasks.filter((t) => t.slot === slot), nowMs);
        if (gap !== null) gaps.push(gap);
      }
      const unslotted = live.filter((t) => t.slot === 0);
      if (unslotted.length > 0) gaps.push(`${s.spec.name}: live tasks without a slot: ${describeTasks(unslotted)}`);
    } else {
      let constraints: ReturnType<typeof parseConstraints> | null;
      try {
        constraints = parseConstraints(s.spec.taskTemplate.placement.constraints);
      } catch {
        constraints = null;
      }
      const eligible = new Set(
        nodes.filter((n) => n.status.state === 'ready' && n.spec.availability === 'active' && constraints !== null && constraintsHold(n, constraints)).map((n) => n.id),
      );
      for (const nodeId of eligible) {
        const gap = slotGap(`${s.spec.name}@${nodeId}`, tasks.filter((t) => t.slot === 0 && t.nodeId === nodeId), nowMs);
        if (gap !== null) gaps.push(gap);
      }
      const extra = live.filter((t) => t.slot !== 0 || !eligible.has(t.nodeId));
      if (extra.length > 0) gaps.push(`${s.spec.name}: live tasks off its eligible nodes: ${describeTasks(extra)}`);
    }
    gaps.push(...placementGaps(s, live, nodes));
    if (isPaused(s)) continue;
    const state = s.updateStatus?.state;
    const rollingOut = state === 'updating' || state === 'rollback_started';
    if (imageFate(s.spec.taskTemplate.containerSpec.image) !== 'runs') {
      // A template that cannot run never finishes rolling out (its tasks crash-loop beside start-first old ones):
      // all that is owed is the failure action, unless that is to continue.
      const config = (state === 'rollback_started' ? s.spec.rollbackConfig : s.spec.updateConfig) ?? defaultUpdateConfig();
      if (rollingOut && config.failureAction !== 'continue') {
        gaps.push(`${s.spec.name}: ${state ?? 'none'} to a template that cannot run (${s.spec.taskTemplate.containerSpec.image}) neither finished nor took its failure action ${config.failureAction} (max failure ratio ${config.maxFailureRatio})`);
      }
      continue;
    }
    const outdated = live.filter((t) => !deepEqual(t.spec, s.spec.taskTemplate));
    if (outdated.length > 0) gaps.push(`${s.spec.name}: update ${state ?? 'none'} but tasks of an older template are live: ${describeTasks(outdated)}`);
    if (rollingOut) gaps.push(`${s.spec.name}: update still ${state ?? 'none'} (${s.updateStatus?.message ?? ''})`);
  }
  const serviceIds = new Set(services.map((s) => s.id));
  const nodeIds = new Set(nodes.map((n) => n.id));
  const orphans = tx.list('task').filter((t) => !serviceIds.has(t.serviceId));
  if (orphans.length > 0) gaps.push(`tasks of removed services are still in the store: ${describeTasks(orphans.slice(0, 5))}${orphans.length > 5 ? ` (+${orphans.length - 5})` : ''}`);
  const stranded = tx.list('task').filter((t) => t.nodeId !== '' && !nodeIds.has(t.nodeId) && !isTerminalTaskState(t.status.state));
  if (stranded.length > 0) gaps.push(`tasks on removed nodes never end: ${describeTasks(stranded.slice(0, 5))}${stranded.length > 5 ? ` (+${stranded.length - 5})` : ''}`);
  return gaps;
}
