// One simulated cluster under the manager's reconcilers: a Store, an injected clock, fake agents on N nodes, a leader
// loop that loses proposals and changes hands, seeded faults and user actions, and the invariants after every step.

import {
  DEFAULT_TASK_HISTORY_RETENTION_LIMIT,
  deepEqual,
  defaultClusterSpec,
  encodeTransaction,
  isTerminalTaskState,
  Store,
  type ApplyResult,
  type NewObject,
  type Node,
  type Op,
  type Placement,
  type ReadTx,
  type RestartPolicy,
  type Service,
  type ServiceSpec,
  type StoreEvent,
  type TaskStatusUpdate,
  type UpdateConfig,
} from '@swarm/store';
import { newNode, taskSpec } from '@swarm/store/testing';
import { leaderReconcilers, type Reconciler } from '../src/index.js';
import { statusOps } from '../src/status.js';
import { SimAgent } from './agent.js';
import { convergenceGaps, describeTask, InvariantChecker, InvariantViolation, overlapAllowed, type InvariantName } from './invariants.js';
import { Rng } from './random.js';

/** Everything the simulator can do to the cluster; each can be switched off (`--skip`) to look past a known bug. */
export const FAULT_KINDS = [
  'node-death',
  'slow-node',
  'node-availability',
  'node-removal',
  'node-join',
  /** `node update --label-add zone=...`: a node moves to another zone, so constraints on zones start or stop holding. */
  'node-relabel',
  'task-crash',
  'service-create',
  'service-scale',
  'service-update',
  'crashing-update',
  'service-rollback',
  'service-removal',
  /**
   * An update, rollback or removal of a service some of whose tasks are not assigned yet (NEW or PENDING); off, it
   * also leaves failure action rollback out of update configs (an automatic rollback is such an update).
   */
  'update-while-pending',
  /** An update or rollback of a service whose previous update, rollback or rebalancing move is still under way. */
  'update-during-rollout',
  /** Updates and rollbacks that start the new task of a slot before stopping the old one. Off, all are stop-first. */
  'start-first',
  /** The rebalancer's moves (a service opts out with the label swarm.rebalance=false). Off, every service opts out. */
  'rebalancing',
  /** Restart policies that give up: condition none or on-failure, or a max attempts. Off, every policy is 'any'. */
  'finite-restart-policy',
  /** Placement in service specs and updates: zone constraints, max replicas per node, spread over zones. */
  'placement',
  /** An update that also changes the update and rollback configs (order, parallelism, failure action). */
  'update-config-change',
  /** A cluster whose task history retention limit is not the default 5 (0, 1 or 2). */
  'history-retention',
  'lost-proposal',
  'leader-change',
  'write-race',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

export function isFaultKind(value: string): value is FaultKind {
  return (FAULT_KINDS as readonly string[]).includes(value);
}

export interface SimOptions {
  seed: number;
  /** Steps with faults and user actions; then the faults stop and the cluster must converge. */
  steps?: number;
  /** Nodes the cluster starts with (and is brought back to when the faults stop). */
  nodes?: number;
  /** Steps after the faults within which the cluster must converge. */
  convergenceSteps?: number;
  /** Consecutive converged steps that count as converged (a flapping cluster never gets there). */
  stableSteps?: number;
  skip?: ReadonlySet<FaultKind>;
  /** Receives the transcript: faults, user actions, each pass's writes. */
  trace?: ((line: string) => void) | null;
}

export const DEFAULT_STEPS = 200;
export const DEFAULT_NODES = 5;
export const DEFAULT_CONVERGENCE_STEPS = 300;
export const DEFAULT_STABLE_STEPS = 20;

export interface SimViolation {
  seed: number;
  step: number;
  invariant: InvariantName;
  detail: string;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  violation: SimViolation | null;
  steps: number;
  /** Simulated time from the first step to the last. */
  simulatedMs: number;
  stats: Readonly<Record<string, number>>;
}

/** The simulated clock starts at a realistic epoch time; each step advances it 50 to 1000 ms. */
const START_MS = 1_700_000_000_000;
const STEP_MS: readonly [number, number] = [50, 1000];
const MAX_SERVICES = 6;
/** The rebalancer (packages/manager/src/rebalancer.ts) leaves a service with this label set to 'false' alone. */
const REBALANCE_OPT_OUT_LABEL = 'swarm.rebalance';
const MAX_REPLICAS = 8;
/** Node labels the placement rules use: nodes alternate between two zones. */
const ZONES = ['a', 'b'] as const;

/** Per-step chances of the faults (fault phase) and of the leader's own troubles (every step). */
const P = {
  nodeDeath: 0.02,
  nodeReturn: 0.08,
  slowNode: 0.02,
  availability: 0.03,
  nodeRemoval: 0.01,
  nodeJoin: 0.005,
  nodeRelabel: 0.01,
  taskCrash: 0.06,
  userAction: 0.15,
  /** Per non-empty proposal: the leader loses track of it (and ends the pass); it commits or not, half and half. */
  lostProposal: 0.03,
  /** Per pass: a new leader, with reconcilers made afresh. */
  leaderChange: 0.01,
  /** Per non-empty proposal: agent reports and node status land between the reconciler's read and its commit. */
  writeRace: 0.1,
  /** A pass that wrote makes the loop run again at once, before the clock moves much. */
  secondPass: 0.3,
} as const;

type UserAction = 'service-create' | 'service-scale' | 'service-update' | 'crashing-update' | 'service-rollback' | 'service-removal';

const USER_ACTION_WEIGHTS: ReadonlyArray<[UserAction, number]> = [
  ['service-create', 2],
  ['service-scale', 3],
  ['service-update', 3],
  ['crashing-update', 1],
  ['service-rollback', 1.5],
  ['service-removal', 0.5],
];

class World {
  readonly store = new Store();
  readonly rng: Rng;
  readonly checker = new InvariantChecker();
  step = 0;
  nowMs = START_MS;
  orchestratorPasses = 0;
  readonly stats: Record<string, number> = {};
  private index = 0;
  private readonly agents = new Map<string, SimAgent>();
  /** The leader's failure detector: when it will write each node's status as gossip then sees it. */
  private readonly nodeStatusDue = new Map<string, number>();
  /** Tasks made to start beside their slot's old task (start-first update or rollback, rebalancing move). */
  private readonly startFirst = new Set<string>();
  private reconcilers: Reconciler[];
  private nodesMade = 0;
  private servicesMade = 0;
  private tasksMade = 0;
  private imageRevision = 0;

  constructor(
    private readonly options: Required<Omit<SimOptions, 'trace' | 'skip'>> & { skip: ReadonlySet<FaultKind>; trace: ((line: string) => void) | null },
  ) {
    this.rng = new Rng(options.seed);
    this.reconcilers = this.newLeader();
  }

  // ------------------------------------------------------------ plumbing

  private newLeader(): Reconciler[] {
    // Task ids must stay unique across leaders (real ones are random): one counter for the whole run.
    return leaderReconcilers({ newId: () => `t${String(++this.tasksMade).padStart(6, '0')}` });
  }

  private log(line: string): void {
    this.options.trace?.(`[${this.step} +${this.nowMs - START_MS}ms] ${line}`);
  }

  private count(stat: string, by = 1): void {
    this.stats[stat] = (this.stats[stat] ?? 0) + by;
  }

  private allowed(kind: FaultKind): boolean {
    return !this.options.skip.has(kind);
  }

  /** One Raft entry: the store stamps it with the proposer's clock, which here is the one simulated clock. */
  private commit(ops: Op[], who: string): ApplyResult {
    this.index += 1;
    const result = this.store.apply(this.index, encodeTransaction({ timestampMs: this.nowMs, ops }));
    if (result.ok && this.options.trace !== null) this.journal(result.events, who);
    return result;
  }

  /** In the transcript, every task write of an entry: how each task got where it is. */
  private journal(events: readonly StoreEvent[], who: string): void {
    for (const e of events) {
      if (e.kind !== 'task') continue;
      const t = e.object;
      if (e.action === 'create') this.log(`  ${who}: + ${describeTask(t)}`);
      else if (e.action === 'delete') this.log(`  ${who}: - ${t.id}`);
      else {
        const p = e.previous;
        const moves: string[] = [];
        if (p.status.state !== t.status.state) moves.push(`${p.status.state}->${t.status.state}`);
        if (p.desiredState !== t.desiredState) moves.push(`desired ${p.desiredState}->${t.desiredState}`);
        if (p.nodeId !== t.nodeId) moves.push(`on ${t.nodeId}`);
        if (p.status.err !== t.status.err && t.status.err !== '') moves.push(`err ${JSON.stringify(t.status.err)}`);
        this.log(`  ${who}: ${t.id} ${t.slot > 0 ? `${t.serviceName}.${t.slot}` : `${t.serviceName}@${t.nodeId}`} ${moves.join(', ')}`);
      }
    }
  }

  /** Writes of the user (API) and of the dispatcher are built from a fresh read: the store must take them. */
  private mustCommit(ops: Op[], who: string): void {
    if (ops.length === 0) return;
    const r = this.commit(ops, who);
    if (!r.ok) throw new Error(`simulator bug: ${who}'s write refused: ${r.error.code}: ${r.error.message}`);
  }

  private services(): Service[] {
    return this.store.view((tx) => tx.list('service')).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  private nodes(): Node[] {
    return this.store.view((tx) => tx.list('node')).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  private agentList(): SimAgent[] {
    return [...this.agents.values()].sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
  }

  // ------------------------------------------------------------ the step

  setup(): void {
    const retention = this.allowed('history-retention') && this.rng.chance(0.3) ? this.rng.pick([0, 1, 2]) : DEFAULT_TASK_HISTORY_RETENTION_LIMIT;
    this.log(`setup: ${this.options.nodes} nodes, task history retention ${retention}`);
    this.mustCommit([{ op: 'create', kind: 'cluster', object: clusterObject(retention) }, ...Array.from({ length: this.options.nodes }, (_, i) => this.nodeOp(ZONES[i % ZONES.length] as string))], 'setup');
    const initial = this.rng.int(2, 3);
    for (let i = 0; i < initial; i++) this.createService();
  }

  runStep(faults: boolean): void {
    this.step += 1;
    this.nowMs += this.rng.int(STEP_MS[0], STEP_MS[1]);
    if (faults) this.injectFaults();
    this.writeNodeStatuses();
    this.tickAgents();
    this.deliverReports();
    this.leaderPass();
    if (this.rng.chance(P.secondPass)) this.leaderPass();
    this.store.view((tx) => {
      for (const id of [...this.startFirst]) if (tx.get('task', id) === undefined) this.startFirst.delete(id);
      this.checker.check(tx, { step: this.step, orchestratorPasses: this.orchestratorPasses, madeStartFirst: (id) => this.startFirst.has(id) });
    });
  }

  /** The faults stop: every node comes back and is made active, and the cluster is brought back to its size. */
  endFaults(): void {
    this.log('faults end: every node back and active');
    for (const agent of this.agentList()) {
      if (agent.link === 'partitioned' || agent.link === 'crashed') this.reviveNode(agent);
    }
    for (const n of this.nodes()) {
      if (n.spec.availability !== 'active') this.mustCommit([{ op: 'update', kind: 'node', object: { ...n, spec: { ...n.spec, availability: 'active' } } }], 'user');
    }
    // Nodes join (never relabelled: that would move tasks) until every zone has its share and the cluster its size,
    // so every placement drawn by randomPlacement can be met.
    for (const zone of ZONES) while (this.nodesIn(zone) < this.fewestPerZone()) this.joinNode(zone);
    while (this.nodes().length < this.options.nodes) this.joinNode();
  }

  gaps(): string[] {
    return this.store.view((tx) => convergenceGaps(tx, this.nowMs));
  }

  // ------------------------------------------------------------ agents and the dispatcher

  private tickAgents(): void {
    for (const agent of this.agentList()) this.store.view((tx) => agent.tick(tx, this.step, this.nowMs));
  }

  /** The dispatcher's batch: every report due from every connected agent, as one transaction. */
  private deliverReports(): number {
    const byNode: Array<[string, TaskStatusUpdate[]]> = this.agentList().map((a) => [a.nodeId, a.takeDueReports(this.step)]);
    const ops = this.store.view((tx) => byNode.flatMap(([nodeId, updates]) => statusOps(tx, nodeId, updates)));
    this.mustCommit(ops, 'dispatcher');
    this.count('statusWrites', ops.length);
    return ops.length;
  }

  /** The leader's gossip loop writes a node down (or ready) a few steps after its agent stopped (or came back). */
  private writeNodeStatuses(): void {
    for (const [nodeId, due] of [...this.nodeStatusDue].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      if (due > this.step) continue;
      this.nodeStatusDue.delete(nodeId);
      const node = this.store.view((tx) => tx.get('node', nodeId));
      const agent = this.agents.get(nodeId);
      if (node === undefined || agent === undefined) continue;
      const state = agent.link === 'up' ? 'ready' : 'down';
      if (node.status.state === state) continue;
      this.log(`leader: node ${nodeId} is ${state}`);
      this.mustCommit([{ op: 'update', kind: 'node', object: { ...node, status: { ...node.status, state, message: state === 'down' ? 'heartbeat failure' : '' } } }], 'leader');
    }
  }

  private scheduleNodeStatus(nodeId: string): void {
    this.nodeStatusDue.set(nodeId, this.step + this.rng.int(1, 4));
  }

  // ------------------------------------------------------------ the leader

  /** What the daemon's reconcile loop does: each reconciler in order, its ops committed before the next reads. */
  private leaderPass(): void {
    if (this.allowed('leader-change') && this.rng.chance(P.leaderChange)) {
      this.log('leader: new leader, reconcilers made afresh');
      this.count('leaderChanges');
      this.reconcilers = this.newLeader();
    }
    const wrote: string[] = [];
    for (const r of this.reconcilers) {
      let ops: Op[];
      try {
        ops = r.run(this.store, this.nowMs);
      } catch (err) {
        throw new InvariantViolation('reconciler-threw', this.step, `${r.name}: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (ops.length === 0) {
        if (r.name === 'orchestrator') this.orchestratorPasses += 1;
        continue;
      }
      // A proposal the leader loses track of (leadership lost, entry dropped or timed out) ends the pass; half the
      // time the entry commits anyway, which the reconcile loop cannot tell apart.
      const lost = this.allowed('lost-proposal') && this.rng.chance(P.lostProposal);
      if (lost && this.rng.chance(0.5)) {
        this.log(`leader: ${r.name}'s proposal of ${ops.length} ops lost; the pass ends`);
        this.count('lostProposals');
        break;
      }
      if (r.name === 'scheduler') this.store.view((tx) => this.checker.checkSchedulerPlan(tx, ops, this.step));
      const startFirst = this.store.view((tx) => ops.flatMap((op) => (op.op === 'create' && op.kind === 'task' && madeStartFirst(tx, r.name, op.object.serviceId) ? [op.object.id] : [])));
      let raced = false;
      if (this.allowed('write-race') && this.rng.chance(P.writeRace)) {
        // Other writers commit between the reconciler's read and its entry: its versions may now be stale.
        raced = this.deliverReports() > 0;
        this.writeNodeStatuses();
      }
      const result = this.commit(ops, r.name);
      if (!result.ok) {
        if (raced && result.error.code === 'version_conflict') {
          this.log(`leader: ${r.name}'s write lost a race (${result.error.message}); the pass ends`);
          this.count('versionConflicts');
          break;
        }
        throw new InvariantViolation('reconciler-write-refused', this.step, `${r.name}'s ${ops.length} ops refused: ${result.error.code}: ${result.error.message}`);
      }
      if (r.name === 'orchestrator') this.orchestratorPasses += 1;
      for (const id of startFirst) this.startFirst.add(id);
      this.count(`ops.${r.name}`, ops.length);
      wrote.push(`${r.name} ${ops.length}`);
      if (lost) {
        this.log(`leader: ${r.name}'s proposal committed, but the leader lost track of it; the pass ends`);
        this.count('lostButCommitted');
        break;
      }
    }
    this.count('passes');
    if (wrote.length > 0) this.log(`pass: ${wrote.join(', ')}`);
  }

  // ------------------------------------------------------------ faults

  private injectFaults(): void {
    const r = this.rng;
    if (this.allowed('node-death') && r.chance(P.nodeDeath)) this.killNode();
    for (const agent of this.agentList()) {
      if ((agent.link === 'partitioned' || agent.link === 'crashed') && r.chance(P.nodeReturn)) this.reviveNode(agent);
    }
    if (this.allowed('slow-node') && r.chance(P.slowNode)) this.toggleSlow();
    if (this.allowed('node-availability') && r.chance(P.availability)) this.changeAvailability();
    if (this.allowed('node-removal') && r.chance(P.nodeRemoval)) this.removeDownNode();
    if (this.allowed('node-join') && r.chance(P.nodeJoin)) this.joinNode();
    if (this.allowed('node-relabel') && r.chance(P.nodeRelabel)) this.relabelNode();
    if (this.allowed('task-crash') && r.chance(P.taskCrash)) this.crashTask();
    if (r.chance(P.userAction)) this.userAction();
  }

  private killNode(): void {
    const up = this.agentList().filter((a) => a.link === 'up');
    if (up.length <= 1) return; // one node stays, so the services always have somewhere to go
    const agent = this.rng.pick(up);
    const kind = this.rng.chance(0.5) ? 'crashed' : 'partitioned';
    this.log(`fault: node ${agent.nodeId} ${kind === 'crashed' ? 'crashes (its containers die)' : 'is partitioned away (its containers keep running)'}`);
    this.count(`fault.${kind}`);
    agent.fail(kind);
    this.scheduleNodeStatus(agent.nodeId);
  }

  private reviveNode(agent: SimAgent): void {
    this.log(`fault: node ${agent.nodeId} is back`);
    agent.recover(this.step);
    this.scheduleNodeStatus(agent.nodeId);
  }

  private toggleSlow(): void {
    const agents = this.agentList().filter((a) => a.link !== 'removed');
    if (agents.length === 0) return;
    const agent = this.rng.pick(agents);
    agent.slow = !agent.slow;
    this.log(`fault: node ${agent.nodeId} is ${agent.slow ? 'slow' : 'fast again'}`);
    this.count('fault.slow');
  }

  private changeAvailability(): void {
    const nodes = this.nodes();
    if (nodes.length === 0) return;
    const node = this.rng.pick(nodes);
    const availability = this.rng.pick(['active', 'active', 'pause', 'drain'] as const);
    if (node.spec.availability === availability) return;
    this.log(`user: node update --availability ${availability} ${node.id}`);
    this.count(`fault.${availability}`);
    this.mustCommit([{ op: 'update', kind: 'node', object: { ...node, spec: { ...node.spec, availability } } }], 'user');
  }

  /** `node rm` without --force: only a node that is down (and whose agent is really gone) can go. */
  private removeDownNode(): void {
    const candidates = this.nodes().filter((n) => n.status.state === 'down' && this.agents.get(n.id)?.link !== 'up');
    if (candidates.length === 0) return;
    const node = this.rng.pick(candidates);
    this.log(`user: node rm ${node.id}`);
    this.count('fault.nodeRemoved');
    this.mustCommit([{ op: 'delete', kind: 'node', id: node.id, version: node.meta.version }], 'user');
    this.agents.get(node.id)?.remove();
    this.nodeStatusDue.delete(node.id);
  }

  /** Two zones, so a service constrained to one of them has nodes to run on and nodes to avoid. */
  private nodeOp(zone: string): Op {
    const n = ++this.nodesMade;
    const id = `node${String(n).padStart(2, '0')}`;
    const node = newNode(id, `host-${n}`);
    node.spec.labels = { zone };
    this.agents.set(id, new SimAgent(id, this.rng));
    return { op: 'create', kind: 'node', object: node };
  }

  private nodesIn(zone: string): number {
    return this.nodes().filter((n) => n.spec.labels['zone'] === zone).length;
  }

  /** The nodes each zone has at least once the faults stop (what max replicas per node is sized for). */
  private fewestPerZone(): number {
    return Math.max(1, Math.floor(this.options.nodes / ZONES.length));
  }

  /** A node joins, by default in the zone with the fewest nodes. */
  private joinNode(zone?: string): void {
    const into = zone ?? [...ZONES].sort((a, b) => this.nodesIn(a) - this.nodesIn(b))[0] ?? 'a';
    const op = this.nodeOp(into);
    this.log(`user: node joins (${op.op === 'create' ? op.object.id : ''}, zone ${into})`);
    this.count('fault.nodeJoined');
    this.mustCommit([op], 'user');
  }

  private relabelNode(): void {
    const nodes = this.nodes();
    if (nodes.length === 0) return;
    const node = this.rng.pick(nodes);
    const zone = this.rng.pick([...ZONES, 'c']);
    if (node.spec.labels['zone'] === zone) return;
    this.log(`user: node update --label-add zone=${zone} ${node.id}`);
    this.count('fault.relabel');
    this.mustCommit([{ op: 'update', kind: 'node', object: { ...node, spec: { ...node.spec, labels: { ...node.spec.labels, zone } } } }], 'user');
  }

  private crashTask(): void {
    const running = this.agentList()
      .filter((a) => a.link === 'up')
      .flatMap((a) => a.runningTaskIds().map((id): [SimAgent, string] => [a, id]));
    if (running.length === 0) return;
    const [agent, taskId] = this.rng.pick(running);
    const how = this.rng.chance(0.8) ? 'failed' : 'complete';
    this.log(`fault: task ${taskId} on ${agent.nodeId} ends by itself (${how})`);
    this.count(`fault.task.${how}`);
    agent.endContainer(taskId, how, this.step, this.nowMs);
  }

  // ------------------------------------------------------------ the user

  /** Whether the user may change this service's template (or remove it) now, given the kinds switched off. */
  private changeable(s: Service): boolean {
    const tasks = this.store.view((tx) => tx.tasksByService(s.id));
    if (!this.allowed('update-during-rollout')) {
      if (s.updateStatus?.state === 'updating' || s.updateStatus?.state === 'rollback_started') return false;
      const liveSlots = tasks.filter((t) => t.desiredState === 'running' || t.desiredState === 'new').map((t) => `${t.slot}@${t.slot > 0 ? '' : t.nodeId}`);
      if (new Set(liveSlots).size < liveSlots.length) return false; // a slot with two live tasks: a move under way
    }
    if (!this.allowed('update-while-pending') && tasks.some((t) => t.status.state === 'new' || t.status.state === 'pending')) return false;
    return true;
  }

  private userAction(): void {
    const all = this.services();
    const changeable = all.filter((s) => this.changeable(s));
    const possible = USER_ACTION_WEIGHTS.filter(([action]) => {
      if (!this.allowed(action)) return false;
      if (action === 'service-create') return all.length < MAX_SERVICES;
      if (action === 'service-scale') return all.some((s) => s.spec.mode.replicated !== undefined);
      if (action === 'service-rollback') return changeable.some((s) => s.previousSpec !== null);
      if (action === 'service-removal') return this.allowed('update-while-pending') ? all.length > 0 : changeable.length > 0;
      return changeable.length > 0;
    });
    if (possible.length === 0) return;
    const total = possible.reduce((sum, [, w]) => sum + w, 0);
    let x = this.rng.float() * total;
    let action = (possible[0] as [UserAction, number])[0];
    for (const [a, w] of possible) {
      if (x < w) {
        action = a;
        break;
      }
      x -= w;
    }
    this.count(`user.${action}`);
    switch (action) {
      case 'service-create':
        return this.createService();
      case 'service-scale':
        return this.scaleService(this.rng.pick(all.filter((s) => s.spec.mode.replicated !== undefined)));
      case 'service-update':
        return this.updateTemplate(this.rng.pick(changeable), false);
      case 'crashing-update':
        return this.updateTemplate(this.rng.pick(changeable), true);
      case 'service-rollback':
        return this.rollback(this.rng.pick(changeable.filter((s) => s.previousSpec !== null)));
      case 'service-removal':
        return this.removeService(this.rng.pick(this.allowed('update-while-pending') ? all : changeable));
    }
  }

  private randomUpdateConfig(): UpdateConfig {
    const r = this.rng;
    return {
      parallelism: r.pick([0, 1, 1, 2, 3]),
      delayMs: r.pick([0, 0, 500, 2_000]),
      failureAction: this.allowed('update-while-pending') ? r.pick(['pause', 'continue', 'rollback'] as const) : r.pick(['pause', 'continue'] as const),
      monitorMs: r.pick([0, 1_000, 5_000]),
      maxFailureRatio: r.pick([0, 0, 0.34]),
      order: this.allowed('start-first') ? r.pick(['stop-first', 'start-first'] as const) : 'stop-first',
    };
  }

  private randomRestartPolicy(): RestartPolicy {
    const r = this.rng;
    if (!this.allowed('finite-restart-policy')) return { condition: 'any', delayMs: r.pick([0, 1_000, 5_000]), maxAttempts: 0, windowMs: 0 };
    return {
      condition: r.pick(['any', 'any', 'on-failure', 'none'] as const),
      delayMs: r.pick([0, 1_000, 5_000]),
      maxAttempts: r.pick([0, 0, 1, 3]),
      windowMs: r.pick([0, 0, 10_000]),
    };
  }

  /**
   * Placement that can always be met once the faults stop (each zone has its share of nodes again, and max replicas
   * leaves a spare per node), but that bites while nodes are down, drained or relabelled.
   */
  private randomPlacement(): Placement {
    const placement: Placement = { constraints: [], preferences: [], maxReplicas: 0, platforms: [] };
    if (!this.allowed('placement')) return placement;
    // With one node there is one zone: only constraints it meets.
    const zoned = this.options.nodes >= 2;
    if (this.rng.chance(0.3)) placement.constraints = [this.rng.pick(zoned ? ['node.labels.zone==a', 'node.labels.zone==b', 'node.labels.zone!=b', 'node.labels.zone!=c'] : ['node.labels.zone==a', 'node.labels.zone!=c'])];
    // One spare per node over an even spread on the fewest nodes a zone ends with: a start-first update can always
    // place a new task somewhere, so the slots keep moving.
    if (this.rng.chance(0.2)) placement.maxReplicas = Math.ceil(MAX_REPLICAS / this.fewestPerZone()) + 1;
    if (this.rng.chance(0.15)) placement.preferences = [{ spread: 'node.labels.zone' }];
    return placement;
  }

  private createService(): void {
    const n = ++this.servicesMade;
    const global = this.rng.chance(0.25);
    const template = taskSpec(`app:v${++this.imageRevision}`);
    template.restartPolicy = this.randomRestartPolicy();
    template.placement = this.randomPlacement();
    const spec: ServiceSpec = {
      name: `svc${n}`,
      // The rebalancer's opt-out label: some services use it anyway, and all do when rebalancing is switched off.
      labels: !this.allowed('rebalancing') || this.rng.chance(0.2) ? { [REBALANCE_OPT_OUT_LABEL]: 'false' } : {},
      taskTemplate: template,
      mode: global ? { global: {} } : { replicated: { replicas: this.rng.int(0, 6) } },
      updateConfig: this.rng.chance(0.8) ? this.randomUpdateConfig() : null,
      rollbackConfig: this.rng.chance(0.6) ? this.randomUpdateConfig() : null,
      endpointSpec: { mode: 'vip', ports: [] },
    };
    const mode = spec.mode.replicated !== undefined ? `${spec.mode.replicated.replicas} replicas` : 'global';
    this.log(`user: service create ${spec.name} (${mode}, placement ${JSON.stringify(template.placement)}, restart ${JSON.stringify(template.restartPolicy)}, update ${JSON.stringify(spec.updateConfig)}, rollback ${JSON.stringify(spec.rollbackConfig)})`);
    this.mustCommit(
      [{ op: 'create', kind: 'service', object: { id: `svc${n}`, spec, previousSpec: null, specVersion: { index: 0 }, endpoint: { spec: spec.endpointSpec, ports: [], virtualIps: [] }, updateStatus: null } }],
      'user',
    );
  }

  /** What the daemon's updateService writes: the new spec, the old one kept, and a rollout when the template changed. */
  private writeSpec(s: Service, spec: ServiceSpec, what: string): void {
    const rollingOut = !deepEqual(spec.taskTemplate, s.spec.taskTemplate);
    this.log(`user: service update ${s.spec.name}: ${what}${rollingOut ? ' (rolls out)' : ''}`);
    const updateStatus = rollingOut ? { state: 'updating' as const, startedAtMs: this.nowMs, completedAtMs: null, message: 'update in progress' } : s.updateStatus;
    this.mustCommit([{ op: 'update', kind: 'service', object: { ...s, spec, previousSpec: s.spec, updateStatus } }], 'user');
  }

  private scaleService(s: Service): void {
    const spec = structuredClone(s.spec);
    const replicas = this.rng.int(0, MAX_REPLICAS);
    spec.mode = { replicated: { replicas } };
    this.writeSpec(s, spec, `--replicas ${replicas}`);
  }

  private updateTemplate(s: Service, faulty: boolean): void {
    const spec = structuredClone(s.spec);
    const revision = ++this.imageRevision;
    const container = spec.taskTemplate.containerSpec;
    const change = faulty ? 'faulty-image' : this.rng.pick(['image', 'image', 'env', 'force', 'placement'] as const);
    let what: string;
    switch (change) {
      case 'faulty-image':
        container.image = this.rng.chance(0.7) ? `crash:v${revision}` : `badimage:v${revision}`;
        what = `--image ${container.image}`;
        break;
      case 'image':
        container.image = `app:v${revision}`;
        what = `--image ${container.image}`;
        break;
      case 'env':
        container.env = [`REVISION=${revision}`];
        what = `--env REVISION=${revision}`;
        break;
      case 'force':
        spec.taskTemplate.forceUpdate += 1;
        what = '--force';
        break;
      case 'placement':
        spec.taskTemplate.placement = this.randomPlacement();
        spec.taskTemplate.forceUpdate += 1; // rolls out even when the drawn placement is the same
        what = `--placement ${JSON.stringify(spec.taskTemplate.placement)}`;
        break;
    }
    if (this.allowed('update-config-change') && this.rng.chance(0.15)) {
      spec.updateConfig = this.rng.chance(0.8) ? this.randomUpdateConfig() : null;
      spec.rollbackConfig = this.rng.chance(0.6) ? this.randomUpdateConfig() : null;
      what += ` --update-config ${JSON.stringify(spec.updateConfig)} --rollback-config ${JSON.stringify(spec.rollbackConfig)}`;
    }
    if (spec.mode.replicated !== undefined && this.rng.chance(0.2)) {
      spec.mode = { replicated: { replicas: this.rng.int(0, MAX_REPLICAS) } };
      what += ` --replicas ${spec.mode.replicated?.replicas ?? 0}`;
    }
    this.writeSpec(s, spec, what);
  }

  /** `service rollback`: the previous spec comes back; a different template is rolled out with the rollback config. */
  private rollback(s: Service): void {
    const previous = s.previousSpec;
    if (previous === null) return;
    const rollingOut = !deepEqual(previous.taskTemplate, s.spec.taskTemplate);
    this.log(`user: service rollback ${s.spec.name}${rollingOut ? ` (to ${previous.taskTemplate.containerSpec.image})` : ''}`);
    const updateStatus = rollingOut ? { state: 'rollback_started' as const, startedAtMs: this.nowMs, completedAtMs: null, message: 'manually requested rollback' } : s.updateStatus;
    this.mustCommit([{ op: 'update', kind: 'service', object: { ...s, spec: previous, previousSpec: s.spec, updateStatus } }], 'user');
  }

  /** `service rm`: the service goes, and all its tasks are told to stop in the same entry (the daemon's removeService). */
  private removeService(s: Service): void {
    this.log(`user: service rm ${s.spec.name}`);
    const tasks = this.store.view((tx) => tx.tasksByService(s.id));
    const ops: Op[] = [{ op: 'delete', kind: 'service', id: s.id, version: s.meta.version }];
    for (const t of tasks) {
      if (isTerminalTaskState(t.desiredState)) continue;
      ops.push({ op: 'update', kind: 'task', object: { ...t, desiredState: 'shutdown' } });
    }
    this.mustCommit(ops, 'user');
  }
}

/** The cluster object, for its task history retention limit (the reaper reads it); the rest is placeholder. */
function clusterObject(retention: number): NewObject<'cluster'> {
  const spec = defaultClusterSpec('sim');
  spec.orchestration.taskHistoryRetentionLimit = retention;
  return {
    id: 'cluster',
    spec,
    rootCA: { certPem: '', fingerprint: '' },
    joinTokens: { worker: 'SWMTKN-1-sim-worker', manager: 'SWMTKN-1-sim-manager' },
    defaultAddrPool: ['10.0.0.0/8'],
    subnetSize: 24,
    dataPathPort: 4789,
  };
}

/** The rebalancer moves a task start-first by design; the updater does when the update (or rollback) says so. */
function madeStartFirst(tx: ReadTx, reconciler: string, serviceId: string): boolean {
  if (reconciler === 'rebalancer') return true;
  const service = tx.get('service', serviceId);
  return reconciler === 'updater' && service !== undefined && overlapAllowed(service) > 1;
}

/** Runs one seed: the fault phase, then the calm phase in which the cluster must converge and stay converged. */
export function runSimulation(options: SimOptions): SimResult {
  const steps = options.steps ?? DEFAULT_STEPS;
  const convergenceSteps = options.convergenceSteps ?? DEFAULT_CONVERGENCE_STEPS;
  const stableSteps = options.stableSteps ?? DEFAULT_STABLE_STEPS;
  const nodes = options.nodes ?? DEFAULT_NODES;
  if (!Number.isInteger(steps) || steps < 0 || !Number.isInteger(nodes) || nodes < 1) throw new RangeError(`steps ${steps} must be >= 0 and nodes ${nodes} >= 1`);
  if (!Number.isInteger(stableSteps) || stableSteps < 1 || convergenceSteps < stableSteps) throw new RangeError('convergenceSteps must be at least stableSteps (>= 1)');
  const world = new World({ seed: options.seed, steps, nodes, convergenceSteps, stableSteps, skip: options.skip ?? new Set(), trace: options.trace ?? null });
  const finish = (violation: SimViolation | null): SimResult => ({
    seed: options.seed,
    ok: violation === null,
    violation,
    steps: world.step,
    simulatedMs: world.nowMs - START_MS,
    stats: world.stats,
  });
  try {
    world.setup();
    for (let i = 0; i < steps; i++) world.runStep(true);
    world.endFaults();
    let calm = 0;
    let gaps: string[] = [];
    for (let i = 0; i < convergenceSteps && calm < stableSteps; i++) {
      world.runStep(false);
      gaps = world.gaps();
      calm = gaps.length === 0 ? calm + 1 : 0;
    }
    world.stats['calmStepsToConverge'] = world.step - steps - stableSteps;
    world.stats['worstTaskCountPercent'] = world.checker.worstTaskCountPercent;
    if (calm < stableSteps) {
      const shown = gaps.slice(0, 4).join(' | ');
      throw new InvariantViolation('no-convergence', world.step, `${convergenceSteps} steps after the faults stopped: ${shown}${gaps.length > 4 ? ` (+${gaps.length - 4} more)` : ''}`);
    }
    return finish(null);
  } catch (err) {
    if (!(err instanceof InvariantViolation)) throw err;
    return finish({ seed: options.seed, step: err.step, invariant: err.invariant, detail: err.detail });
  }
}
