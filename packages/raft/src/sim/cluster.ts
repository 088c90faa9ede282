// One simulated run: a cluster of SimNodes on a faulty network, clients, crashes, partitions and membership churn,
// all drawn from one seed; the Checker judges every step, and the run ends with a heal-and-converge check.

import type { ConfChange, ConfState, Entry, Message, NodeId, ReadState, Role } from '../types.js';
import { RaftError } from '../types.js';
import { Checker, SafetyViolation, entryKey, type Property } from './checker.js';
import { encodeConfChange } from './core.js';
import { EventQueue, Network, calmLinks, type LinkFaults } from './network.js';
import { SimNode, crashPoints, encodeCommand, type NodeEffects, type NodeTuning } from './node.js';
import { Rng } from './rng.js';

function assert(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new Error(`sim cluster: ${msg}`);
}

/** Virtual time units per tick: messages are delayed in units, so they interleave with ticks. */
const TICK_UNITS = 10;

export interface SimOptions {
  readonly seed: number;
  /** Called with each transcript line (crashes, elections, proposals, ...); null = no transcript. */
  readonly trace?: ((line: string) => void) | null;
  /** Also trace every delivered message (long). */
  readonly traceMessages?: boolean;
  /** Override the seed's number of faulty ticks (tests use fewer). */
  readonly chaosTicks?: number;
  /**
   * Deliberately break the host, to prove the checker catches real bugs (tests only):
   * 'forget-votes' persists hard states without the vote; 'stale-reads' serves reads from local state at once.
   */
  readonly sabotage?: Sabotage | null;
}

export type Sabotage = 'forget-votes' | 'stale-reads';

export interface SimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly violation: { readonly property: Property; readonly detail: string } | null;
  /** Virtual ticks simulated. */
  readonly ticks: number;
  readonly summary: string;
  readonly stats: Readonly<Record<string, number>>;
}

/** Everything about a run that the seed decides up front. */
interface Params {
  voters: number;
  tuning: NodeTuning;
  links: LinkFaults;
  crashP: number;
  /** Max deviation of a node's tick period from TICK_UNITS (clock drift). */
  clockDrift: number;
  /** Chance to crash a node right after it sends a vote, an ack, an append or a snapshot (the moments that matter). */
  pointedCrashP: number;
  downTicks: [number, number];
  partitionP: number;
  partitionTicks: [number, number];
  churn: boolean;
  churnP: number;
  transferP: number;
  clients: number;
  writeP: number;
  /** Writes a client keeps in flight at once, and how many it issues in one go. */
  maxOutstanding: number;
  burst: number;
  readP: number;
  retryTicks: number;
  chaosTicks: number;
  calmLimitTicks: number;
}

function drawParams(rng: Rng, chaosTicks: number | undefined): Params {
  const electionTick = rng.pick([5, 10, 10, 15]);
  const heartbeatTick = rng.int(1, Math.max(1, Math.floor(electionTick / 4)));
  const maxDelayTicks = rng.pick([0.5, 1, 2, 3, electionTick / 2]);
  const maxSizePerMsg = rng.pick([16, 64, 1024, 1 << 20]);
  return {
    voters: rng.pick([3, 5]),
    tuning: {
      electionTick,
      heartbeatTick,
      preVote: rng.chance(0.5),
      checkQuorum: rng.chance(0.5),
      maxSizePerMsg,
      // One-entry messages with a 256-deep window on a lossy link re-send whole windows per gap: real but slow to simulate.
      maxInflightMsgs: Math.min(rng.pick([1, 2, 8, 256]), maxSizePerMsg <= 64 ? 16 : 256),
      maxCommittedSizePerReady: rng.pick([32, 1 << 20]),
      maxUncommittedEntries: rng.pick([8, 1000]),
      snapshotEvery: rng.pick([3, 8, 20, 50]),
      compactLag: rng.pick([0, 0, 2, 10]),
    },
    links: {
      dropP: rng.pick([0, 0.02, 0.1, 0.25]),
      dupP: rng.pick([0, 0.02, 0.1]),
      minDelay: 1,
      maxDelay: Math.max(1, Math.round(maxDelayTicks * TICK_UNITS)),
      lateP: rng.pick([0, 0.002, 0.01, 0.05]),
      lateMaxDelay: rng.pick([3, 10]) * electionTick * TICK_UNITS,
    },
    crashP: rng.pick([0, 0.005, 0.02, 0.05]),
    pointedCrashP: rng.pick([0, 0, 0.002, 0.01, 0.03]),
    downTicks: [2, rng.pick([10, 40, 120])],
    partitionP: rng.pick([0, 0.01, 0.03]),
    partitionTicks: [5, rng.pick([20, 60, 150])],
    churn: rng.chance(0.4),
    churnP: rng.pick([0.02, 0.05, 0.2]),
    transferP: rng.pick([0, 0.01, 0.03]),
    clients: rng.int(1, 4),
    writeP: rng.pick([0.1, 0.3, 0.8]),
    maxOutstanding: rng.pick([1, 3, 10]),
    burst: rng.pick([1, 3, 8]),
    readP: rng.pick([0, 0.05, 0.2]),
    retryTicks: rng.int(electionTick, 4 * electionTick),
    chaosTicks: chaosTicks ?? rng.int(300, 1000),
    calmLimitTicks: 1500,
    clockDrift: rng.pick([0, 0, 1, 3]),
  };
}

type Ev =
  | { readonly k: 'control' }
  | { readonly k: 'tick'; readonly node: NodeId; readonly inc: number }
  | { readonly k: 'deliver'; readonly m: Message; readonly fromInc: number }
  | { readonly k: 'report'; readonly from: NodeId; readonly to: NodeId; readonly inc: number; readonly what: 'unreachable' | 'snap-finish' | 'snap-failure' };

interface PendingWrite {
  readonly cmdId: string;
  lastTryTick: number;
  nextTryTick: number;
  attempts: number;
}

interface Client {
  readonly id: number;
  nextSeq: number;
  belief: NodeId | null;
  /** Writes issued and not yet acknowledged, oldest first (bounded by Params.maxOutstanding). */
  readonly pending: PendingWrite[];
}

interface Proposal {
  readonly term: number;
  readonly cmdId: string;
  readonly key: string;
  readonly client: number;
}

interface PendingRead {
  readonly readId: string;
  readonly issuedTick: number;
  /** Set once a ReadState arrived: serve when applied >= index. */
  index: number | null;
}

interface PendingConf {
  readonly cc: ConfChange;
  readonly node: NodeId;
  readonly index: number;
  readonly term: number;
  readonly tick: number;
}

const MAX_EVENTS = 200_000;
const MAX_READS_PER_NODE = 32;
const READ_TIMEOUT_TICKS = 100;
const CONF_TIMEOUT_TICKS = 150;
const MAX_ADDED_NODES = 3;

function cloneMessage(m: Message): Message {
  switch (m.type) {
    case 'append':
      return { ...m, entries: m.entries.map((e) => ({ ...e, data: e.data.slice() })) };
    case 'snapshot': {
      const s = m.snapshot;
      return {
        ...m,
        snapshot: { meta: { ...s.meta, confState: { voters: [...s.meta.confState.voters], learners: [...s.meta.confState.learners] } }, data: s.data.slice() },
      };
    }
    case 'heartbeat':
    case 'heartbeat-resp':
      return { ...m, context: m.context === null ? null : m.context.slice() };
    case 'read-index':
    case 'read-index-resp':
      return { ...m, context: m.context.slice() };
    default:
      return { ...m };
  }
}

function describeMessage(m: Message): string {
  const base = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'append':
      return `${base} prev=${m.index}/${m.logTerm} n=${m.entries.length} commit=${m.commit}`;
    case 'append-resp':
      return `${base} index=${m.index}${m.reject ? ` REJECT hint=${m.rejectHint}/${m.logTerm}` : ''}`;
    case 'vote':
    case 'pre-vote':
      return `${base} last=${m.index}/${m.logTerm}${m.transfer ? ' transfer' : ''}`;
    case 'vote-resp':
    case 'pre-vote-resp':
      return `${base}${m.reject ? ' REJECT' : ' granted'}`;
    case 'heartbeat':
      return `${base} commit=${m.commit}`;
    case 'snapshot':
      return `${base} snap=${m.snapshot.meta.index}/${m.snapshot.meta.term}`;
    case 'read-index-resp':
      return `${base} index=${m.index}`;
    default:
      return base;
  }
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

class Simulation implements NodeEffects {
  private readonly rng: Rng;
  private readonly faultRng: Rng;
  private readonly clientRng: Rng;
  private readonly nodeRngSource: Rng;
  private readonly driftRng: Rng;
  readonly checker = new Checker();
  private readonly net: Network;
  private readonly queue = new EventQueue<Ev>(MAX_EVENTS);
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly tickOffset = new Map<NodeId, number>();
  /** Each node's own tick period in time units: clocks drift apart by up to Params.clockDrift units per tick. */
  private readonly tickPeriod = new Map<NodeId, number>();
  private readonly retired = new Set<NodeId>();
  private readonly restartAt = new Map<NodeId, number>();
  private readonly proposals = new Map<NodeId, Map<number, Proposal>>();
  private readonly reads = new Map<NodeId, Map<string, PendingRead>>();
  private readonly clients: Client[] = [];
  private readonly p: Params;
  private now = 0;
  private tickNo = 0;
  private calm = false;
  private healAtTick = 0;
  private nextNodeNo = 1;
  private addedNodes = 0;
  private pendingConf: PendingConf | null = null;
  /** Set when a new leader appears: churn at the next control tick. */
  private churnNow = false;
  private readSeq = 0;
  private finished = false;
  private readonly counters = { crashes: 0, restarts: 0, confChanges: 0, transfers: 0, proposals: 0, readsIssued: 0 };

  constructor(
    readonly seed: number,
    private readonly traceFn: ((line: string) => void) | null,
    private readonly traceMessages: boolean,
    chaosTicks: number | undefined,
    private readonly sabotage: Sabotage | null,
  ) {
    this.rng = new Rng(seed);
    this.p = drawParams(this.rng.fork(), chaosTicks);
    this.faultRng = this.rng.fork();
    this.clientRng = this.rng.fork();
    this.nodeRngSource = this.rng.fork();
    this.net = new Network(this.rng.fork(), this.p.links);
    this.driftRng = this.rng.fork();
  }

  trace(line: string): void {
    if (this.traceFn !== null) this.traceFn(`[${(this.now / TICK_UNITS).toFixed(1).padStart(6)}] ${line}`);
  }

  describeParams(): string {
    const p = this.p;
    const t = p.tuning;
    return (
      `voters=${p.voters} election=${t.electionTick} heartbeat=${t.heartbeatTick} preVote=${t.preVote} checkQuorum=${t.checkQuorum} ` +
      `maxMsg=${t.maxSizePerMsg} inflight=${t.maxInflightMsgs} snapEvery=${t.snapshotEvery} lag=${t.compactLag} ` +
      `drop=${p.links.dropP} dup=${p.links.dupP} delay<=${p.links.maxDelay / TICK_UNITS}t crash=${p.crashP} part=${p.partitionP} ` +
      `churn=${p.churn} transfer=${p.transferP} clients=${p.clients} drift=${p.clockDrift} late=${p.links.lateP} chaos=${p.chaosTicks}t`
    );
  }

  private newNodeId(): NodeId {
    return `n${this.nextNodeNo++}`;
  }

  private addNode(id: NodeId, founders: readonly NodeId[] | null): SimNode {
    const node = new SimNode(id, this.p.tuning, this.nodeRngSource.fork(), this.checker, this, founders, this.sabotage === 'forget-votes');
    this.nodes.set(id, node);
    this.tickOffset.set(id, this.faultRng.int(1, TICK_UNITS - 1));
    this.tickPeriod.set(id, TICK_UNITS + (this.p.clockDrift === 0 ? 0 : this.driftRng.int(-this.p.clockDrift, this.p.clockDrift)));
    if (this.p.clockDrift !== 0) this.trace(`${id}: ticks every ${this.tickPeriod.get(id)} time units (${TICK_UNITS} nominal)`);
    this.proposals.set(id, new Map());
    this.reads.set(id, new Map());
    this.startNode(node);
    return node;
  }

  private startNode(node: SimNode): void {
    node.start();
    const tick = Math.floor(this.now / TICK_UNITS);
    this.queue.push((tick + 1) * TICK_UNITS + (this.tickOffset.get(node.id) ?? 1), { k: 'tick', node: node.id, inc: node.incarnation });
  }

  private liveNodes(): SimNode[] {
    const out: SimNode[] = [];
    for (const n of this.nodes.values()) if (n.alive) out.push(n);
    return out;
  }

  /** The live leader with the highest term, if any (the simulator's god view, used by churn and convergence). */
  private currentLeader(): SimNode | null {
    let best: SimNode | null = null;
    for (const n of this.nodes.values()) {
      if (n.alive && n.role === 'leader' && (best === null || n.term > best.term)) best = n;
    }
    return best;
  }

  // ---- NodeEffects ----

  send(m: Message): void {
    const target = this.nodes.get(m.to);
    const from = this.nodes.get(m.from);
    assert(from !== undefined, `message from unknown node ${m.from}`);
    if (m.type === 'vote-resp' && !m.reject) this.checker.observeVoteGranted(m.from, m.to, m.term);
    const delays = target === undefined ? [] : this.net.route(m.from, m.to);
    if (delays.length === 0) {
      if (m.type === 'snapshot') this.queue.push(this.now + 1, { k: 'report', from: m.from, to: m.to, inc: from.incarnation, what: 'snap-failure' });
      else if (this.faultRng.chance(0.1)) this.queue.push(this.now + 1, { k: 'report', from: m.from, to: m.to, inc: from.incarnation, what: 'unreachable' });
      if (this.traceMessages) this.trace(`drop ${describeMessage(m)}`);
      return;
    }
    for (const d of delays) this.queue.push(this.now + d, { k: 'deliver', m: cloneMessage(m), fromInc: from.incarnation });
    const pivotal = this.pivotalWeight(m);
    if (!this.calm && !from.crashArmed && pivotal > 0 && this.faultRng.chance(Math.min(0.5, pivotal * this.p.pointedCrashP))) {
      // Crash once this Ready's messages are out, before it applies: a vote or ack just given is all that survives.
      from.armCrash('after-send', 0);
      this.restartAt.set(from.id, this.tickNo + this.faultRng.int(1, 6));
      this.trace(`${from.id}: will crash right after sending ${m.type} to ${m.to}`);
    }
  }

  /** How much a crash right after sending `m` matters: elections are rare and decisive, so they weigh more. */
  private pivotalWeight(m: Message): number {
    switch (m.type) {
      case 'vote-resp':
      case 'pre-vote-resp':
        return m.reject ? 0 : 10;
      case 'vote':
      case 'timeout-now':
      case 'snapshot':
        return 10;
      case 'append-resp':
      case 'append':
        return 1;
      default:
        return 0;
    }
  }

  applied(node: NodeId, e: Entry): void {
    const props = this.proposals.get(node);
    const prop = props?.get(e.index);
    if (props !== undefined && prop !== undefined) {
      props.delete(e.index);
      if (this.checker.observeProposalOutcome(node, { index: e.index, term: prop.term }, prop.key, e)) {
        const first = !this.checker.isAcked(prop.cmdId);
        this.checker.observeAck(prop.cmdId);
        const client = this.clients[prop.client];
        if (client !== undefined) {
          const k = client.pending.findIndex((w) => w.cmdId === prop.cmdId);
          if (k >= 0) client.pending.splice(k, 1);
        }
        if (first) this.trace(`ack ${prop.cmdId} at ${e.index}/${e.term} on ${node}`);
      } else {
        this.trace(`proposal ${prop.cmdId} at ${e.index}/${prop.term} on ${node} lost (term ${e.term} there)`);
      }
    }
    const pc = this.pendingConf;
    if (pc !== null && pc.node === node && pc.index === e.index) {
      this.pendingConf = null;
      this.trace(`conf change ${pc.cc.type} ${pc.cc.nodeId} at ${pc.index}/${pc.term} ${e.term === pc.term ? 'committed' : 'lost'}`);
    }
    this.serveReads(node);
  }

  snapshotApplied(node: NodeId, index: number): void {
    // Proposals covered by the snapshot have unknown outcome; the clients time out and retry.
    const props = this.proposals.get(node);
    if (props !== undefined) for (const i of [...props.keys()]) if (i <= index) props.delete(i);
    if (this.pendingConf !== null && this.pendingConf.node === node && this.pendingConf.index <= index) this.pendingConf = null;
    this.serveReads(node);
  }

  confApplied(node: NodeId, cc: ConfChange, cs: ConfState): void {
    this.trace(`${node}: applied ${cc.type} ${cc.nodeId} -> voters=[${cs.voters.join(',')}] learners=[${cs.learners.join(',')}]`);
    if (cc.type === 'remove-node') this.removalCommitted(cc.nodeId);
  }

  readState(node: NodeId, rs: ReadState): void {
    const ctx = textDecoder.decode(rs.context);
    const pending = this.reads.get(node)?.get(ctx);
    if (pending === undefined || pending.index !== null) return;
    pending.index = rs.index;
    this.serveReads(node);
  }

  roleChanged(node: NodeId, role: Role, term: number, leader: NodeId | null): void {
    this.trace(`${node}: ${role} term ${term}${leader !== null && role !== 'leader' ? ` (leader ${leader})` : ''}`);
    // A fresh leader is where single-server membership changes go wrong (it may not have committed in its term yet).
    if (role === 'leader' && this.p.churn && !this.calm && this.faultRng.chance(0.3)) this.churnNow = true;
  }

  crashed(node: NodeId, where: string): void {
    this.counters.crashes++;
    this.proposals.get(node)?.clear();
    const reads = this.reads.get(node);
    if (reads !== undefined) {
      for (const r of reads.values()) this.checker.observeReadAbandoned(r.readId);
      reads.clear();
    }
    if (this.pendingConf?.node === node) this.pendingConf = null;
    this.trace(`${node}: CRASH (${where})`);
  }

  // ---- reads ----

  private serveReads(nodeId: NodeId): void {
    const node = this.nodes.get(nodeId);
    const reads = this.reads.get(nodeId);
    if (node === undefined || reads === undefined || node.app === null || reads.size === 0) return;
    const app = node.app;
    for (const [ctx, r] of reads) {
      if (r.index === null || app.applied < r.index) continue;
      reads.delete(ctx);
      this.checker.observeReadServed(r.readId, nodeId, r.index, app.applied, (id) => app.seen.has(id));
      this.trace(`read ${r.readId} served on ${nodeId} at index ${r.index} (applied ${app.applied}, ${app.seq.length} commands)`);
    }
  }

  private issueRead(): void {
    const live = this.liveNodes();
    if (live.length === 0) return;
    const node = this.clientRng.pick(live);
    const reads = this.reads.get(node.id);
    assert(reads !== undefined, 'no read table');
    if (reads.size >= MAX_READS_PER_NODE) return;
    const readId = `r${this.readSeq++}`;
    this.checker.observeReadIssued(readId);
    if (this.sabotage === 'stale-reads' && node.app !== null) {
      const app = node.app;
      this.checker.observeReadServed(readId, node.id, app.applied, app.applied, (id) => app.seen.has(id));
      return;
    }
    const refused = node.readIndex(textEncoder.encode(readId));
    if (refused !== null) {
      this.checker.observeReadAbandoned(readId);
      this.trace(`read ${readId} refused by ${node.id}: ${refused.code}`);
      return;
    }
    reads.set(readId, { readId, issuedTick: this.tickNo, index: null });
    this.counters.readsIssued++;
    this.trace(`read ${readId} issued on ${node.id}`);
    node.drive();
  }

  private expireReads(): void {
    for (const reads of this.reads.values()) {
      for (const [ctx, r] of reads) {
        if (this.tickNo - r.issuedTick > READ_TIMEOUT_TICKS) {
          reads.delete(ctx);
          this.checker.observeReadAbandoned(r.readId);
        }
      }
    }
  }

  // ---- clients ----

  private tryWrite(client: Client, w: PendingWrite): void {
    w.lastTryTick = this.tickNo;
    w.attempts++;
    let target = client.belief === null ? undefined : this.nodes.get(client.belief);
    if (target === undefined || !target.alive) {
      const live = this.liveNodes();
      if (live.length === 0) {
        w.nextTryTick = this.tickNo + 1;
        return;
      }
      target = this.clientRng.pick(live);
    }
    const res = target.propose(encodeCommand(w.cmdId));
    if (res instanceof RaftError) {
      client.belief = res.code === 'not_leader' ? res.leaderHint : null;
      w.nextTryTick = this.tickNo + (res.code === 'not_leader' && res.leaderHint !== null ? 1 : 3);
      return;
    }
    this.counters.proposals++;
    client.belief = target.id;
    const props = this.proposals.get(target.id);
    assert(props !== undefined, 'no proposal table');
    assert(props.size < 10_000, 'proposal table above its bound');
    props.set(res.index, { term: res.term, cmdId: w.cmdId, key: entryKey({ index: res.index, term: res.term, type: 'normal', data: encodeCommand(w.cmdId) }), client: client.id });
    w.nextTryTick = this.tickNo + this.p.retryTicks;
    this.trace(`propose ${w.cmdId} on ${target.id} -> ${res.index}/${res.term}${w.attempts > 1 ? ` (attempt ${w.attempts})` : ''}`);
    target.drive();
  }

  private runClients(): void {
    for (const c of this.clients) {
      for (const w of [...c.pending]) if (this.tickNo >= w.nextTryTick) this.tryWrite(c, w);
      if (this.calm || !this.clientRng.chance(this.p.writeP)) continue;
      const burst = this.clientRng.int(1, this.p.burst);
      for (let b = 0; b < burst && c.pending.length < this.p.maxOutstanding; b++) {
        const w: PendingWrite = { cmdId: `c${c.id}.${c.nextSeq++}`, lastTryTick: this.tickNo, nextTryTick: this.tickNo, attempts: 0 };
        c.pending.push(w);
        this.checker.observeIssue(w.cmdId);
        this.tryWrite(c, w);
      }
    }
    if (this.clientRng.chance(this.p.readP)) this.issueRead();
  }

  // ---- faults ----

  private injectFaults(): void {
    const r = this.faultRng;
    for (const [id, at] of this.restartAt) {
      if (this.tickNo >= at) {
        this.restartAt.delete(id);
        const node = this.nodes.get(id);
        if (node !== undefined && !node.alive && !this.retired.has(id)) {
          this.counters.restarts++;
          this.startNode(node);
          this.trace(`${id}: RESTART (term ${node.term}, applied ${node.app?.applied ?? -1})`);
        }
      }
    }
    if (r.chance(this.p.crashP)) {
      const live = this.liveNodes().filter((n) => !n.crashArmed);
      if (live.length > 0) {
        const victim = r.pick(live);
        this.restartAt.set(victim.id, this.tickNo + r.int(this.p.downTicks[0], this.p.downTicks[1]));
        if (r.chance(0.4)) victim.crash('idle');
        else {
          const point = r.pick(crashPoints);
          victim.armCrash(point, r.int(0, 3));
          this.trace(`${victim.id}: will crash at ${point}`);
        }
      }
    }
    if (this.net.partitioned) {
      if (this.tickNo >= this.healAtTick) {
        this.net.heal();
        this.trace('network healed');
      }
    } else if (r.chance(this.p.partitionP)) {
      const ids = [...this.nodes.keys()].filter((id) => !this.retired.has(id));
      if (ids.length >= 2) {
        this.healAtTick = this.tickNo + r.int(this.p.partitionTicks[0], this.p.partitionTicks[1]);
        this.trace(`PARTITION ${this.net.partition(ids)} until tick ${this.healAtTick}`);
      }
    }
  }

  // ---- membership and leadership churn ----

  private runChurn(): void {
    const r = this.faultRng;
    const pc = this.pendingConf;
    if (pc !== null && this.tickNo - pc.tick > CONF_TIMEOUT_TICKS) this.pendingConf = null;
    const leader = this.currentLeader();
    if (leader === null) return;
    if (r.chance(this.p.transferP)) {
      const voters = leader.status().confState.voters.filter((v) => v !== leader.id);
      if (voters.length > 0) {
        const to = r.pick(voters);
        this.counters.transfers++;
        const refused = leader.transferLeader(to);
        this.trace(`transfer leadership ${leader.id} -> ${to}${refused === null ? '' : ` refused: ${refused.code}`}`);
        leader.drive();
      }
    }
    // Now and then propose regardless of our own bookkeeping: the core itself must refuse a second pending change.
    const pushy = r.chance(0.2);
    const now = this.churnNow;
    this.churnNow = false;
    if (!this.p.churn || !leader.alive || (this.pendingConf !== null && !pushy) || !(now || r.chance(this.p.churnP))) return;
    const cs = leader.status().confState;
    const options: (() => ConfChange | null)[] = [];
    if (this.addedNodes < MAX_ADDED_NODES) {
      options.push(() => {
        const id = this.newNodeId();
        this.addedNodes++;
        this.addNode(id, null);
        this.trace(`${id}: created (empty) to join as learner`);
        return { type: 'add-learner', nodeId: id };
      });
    }
    const learners = cs.learners.filter((id) => this.nodes.has(id) && !this.retired.has(id));
    if (learners.length > 0) options.push(() => ({ type: 'add-voter', nodeId: r.pick(learners) }));
    if (cs.voters.length > 3) {
      options.push(() => {
        const others = cs.voters.filter((v) => v !== leader.id);
        // Removing the leader itself is the rarer, nastier case.
        return { type: 'remove-node', nodeId: r.chance(0.2) || others.length === 0 ? leader.id : r.pick(others) };
      });
    }
    if (options.length === 0) return;
    const cc = r.pick(options)();
    if (cc === null) return;
    const res = leader.proposeConfChange(cc);
    if (res instanceof RaftError) {
      this.trace(`propose ${cc.type} ${cc.nodeId} on ${leader.id} refused: ${res.code}`);
      return;
    }
    this.counters.confChanges++;
    this.pendingConf = { cc, node: leader.id, index: res.index, term: res.term, tick: this.tickNo };
    this.trace(`propose ${cc.type} ${cc.nodeId} on ${leader.id} -> ${res.index}/${res.term}`);
    leader.drive();
  }

  /** A removal applied anywhere is committed: the removed server is shut down for good (its id is never reused). */
  private removalCommitted(id: NodeId): void {
    if (this.retired.has(id)) return;
    this.retired.add(id);
    this.restartAt.delete(id);
    const node = this.nodes.get(id);
    // Not immediately: a leader that removed itself keeps serving a few ticks, as in a real handover.
    if (node !== undefined && node.alive) this.retireAfter.set(id, this.tickNo + this.faultRng.int(0, 20));
  }

  private readonly retireAfter = new Map<NodeId, number>();

  private retireDue(): void {
    for (const [id, at] of this.retireAfter) {
      if (this.tickNo < at) continue;
      this.retireAfter.delete(id);
      const node = this.nodes.get(id);
      if (node !== undefined && node.alive) {
        node.crash('retired');
        this.trace(`${id}: RETIRED (removed from the cluster)`);
      }
    }
  }

  // ---- the run ----

  private enterCalm(): void {
    this.calm = true;
    this.net.heal();
    this.net.setFaults(calmLinks);
    this.trace('--- faults stop: heal, restart everyone, converge ---');
    for (const node of this.nodes.values()) {
      node.disarmCrash();
      if (!node.alive && !this.retired.has(node.id)) {
        this.restartAt.delete(node.id);
        this.counters.restarts++;
        this.startNode(node);
        this.trace(`${node.id}: RESTART (calm)`);
      }
    }
  }

  /** Converged: one leader, every member alive and caught up, no client write outstanding, no conf change pending. */
  private converged(): boolean {
    const leader = this.currentLeader();
    if (leader === null) return false;
    const st = leader.status();
    if (st.commit !== st.lastIndex || this.pendingConf !== null || this.retireAfter.size > 0) return false;
    if (this.clients.some((c) => c.pending.length > 0)) return false;
    for (const id of [...st.confState.voters, ...st.confState.learners]) {
      const n = this.nodes.get(id);
      if (n === undefined || n.app === null || n.app.applied !== st.lastIndex) return false;
    }
    return true;
  }

  private finalCheck(): void {
    const leader = this.currentLeader();
    assert(leader !== null, 'final check without a leader');
    const cs = leader.status().confState;
    const members = [...cs.voters, ...cs.learners].map((id) => {
      const n = this.nodes.get(id);
      assert(n !== undefined && n.app !== null, `member ${id} is not up`);
      return { id, seq: n.app.seq };
    });
    for (const n of this.liveNodes()) this.checker.verifyStorage(n.id, n.view());
    this.checker.finalCheck(members);
  }

  private control(): void {
    this.tickNo = Math.floor(this.now / TICK_UNITS);
    if (!this.calm && this.tickNo >= this.p.chaosTicks) this.enterCalm();
    if (!this.calm) this.injectFaults();
    this.retireDue();
    this.runClients();
    if (!this.calm) this.runChurn();
    else {
      const pc = this.pendingConf;
      if (pc !== null && this.tickNo - pc.tick > CONF_TIMEOUT_TICKS) this.pendingConf = null;
    }
    this.expireReads();
    if (this.tickNo % 25 === 0) for (const n of this.liveNodes()) this.checker.verifyStorage(n.id, n.view());
    if (this.calm && this.converged()) {
      this.finalCheck();
      this.trace(`converged at tick ${this.tickNo}`);
      this.finished = true;
      return;
    }
    if (this.tickNo >= this.p.chaosTicks + this.p.calmLimitTicks) {
      const leader = this.currentLeader();
      const state = [...this.nodes.values()]
        .filter((n) => !this.retired.has(n.id))
        .map((n) => `${n.id}:${n.alive ? `${n.role[0]}${n.term}@${n.app?.applied ?? '?'}` : 'down'}`)
        .join(' ');
      throw new SafetyViolation(
        'convergence',
        `no convergence ${this.p.calmLimitTicks} ticks after faults stopped (leader ${leader?.id ?? 'none'}; ${state}; pending writes ${this.clients.reduce((n, c) => n + c.pending.length, 0)})`,
      );
    }
    this.queue.push(this.now + TICK_UNITS, { k: 'control' });
  }

  private handle(ev: Ev): void {
    switch (ev.k) {
      case 'control':
        this.control();
        return;
      case 'tick': {
        const node = this.nodes.get(ev.node);
        if (node === undefined || !node.alive || node.incarnation !== ev.inc) return;
        node.tick();
        if (node.alive) {
          node.noteRole();
          if (node.role === 'leader') {
            const st = node.status();
            this.checker.observeLeaderProgress(node.id, st.term, st.progress);
          }
          this.queue.push(this.now + (this.tickPeriod.get(node.id) ?? TICK_UNITS), { k: 'tick', node: node.id, inc: node.incarnation });
        }
        return;
      }
      case 'deliver': {
        const m = ev.m;
        const node = this.nodes.get(m.to);
        const ok = node !== undefined && node.alive && this.net.connected(m.from, m.to);
        if (this.traceMessages) this.trace(`${ok ? 'recv' : 'lost'} ${describeMessage(m)}`);
        if (m.type === 'snapshot') {
          this.queue.push(this.now + 1, { k: 'report', from: m.from, to: m.to, inc: ev.fromInc, what: ok ? 'snap-finish' : 'snap-failure' });
        }
        if (!ok) return;
        node.step(m);
        return;
      }
      case 'report': {
        const node = this.nodes.get(ev.from);
        if (node === undefined || !node.alive || node.incarnation !== ev.inc || ev.from === ev.to) return;
        if (ev.what === 'unreachable') node.reportUnreachable(ev.to);
        else node.reportSnapshot(ev.to, ev.what === 'snap-finish' ? 'finish' : 'failure');
        node.drive();
        return;
      }
    }
  }

  run(): SimResult {
    let violation: SimResult['violation'] = null;
    try {
      this.trace(`seed ${this.seed}: ${this.describeParams()}`);
      const founders: NodeId[] = [];
      for (let i = 0; i < this.p.voters; i++) founders.push(this.newNodeId());
      for (const id of founders) this.addNode(id, founders);
      for (let c = 0; c < this.p.clients; c++) this.clients.push({ id: c, nextSeq: 0, belief: null, pending: [] });
      this.queue.push(TICK_UNITS, { k: 'control' });
      while (!this.finished) {
        const next = this.queue.pop();
        assert(next !== undefined, 'event queue ran dry');
        assert(next.time >= this.now, 'time went backwards');
        this.now = next.time;
        this.handle(next.item);
      }
    } catch (err) {
      if (err instanceof SafetyViolation) violation = { property: err.property, detail: err.detail };
      else {
        const e = err instanceof Error ? err : new Error(String(err));
        const where = (e.stack ?? '').split('\n').slice(1, 3).map((s) => s.trim()).join(' < ');
        violation = { property: 'core-error', detail: `${e.name}: ${e.message} (${where})` };
      }
      this.trace(`VIOLATION ${violation.property}: ${violation.detail}`);
    }
    const c = this.checker.stats;
    const stats: Record<string, number> = { ...c, ...this.counters, ...this.net.stats, ticks: this.tickNo };
    return {
      seed: this.seed,
      ok: violation === null,
      violation,
      ticks: this.tickNo,
      summary: `ticks=${this.tickNo} elections=${c.elections} commits=${c.commits} acks=${c.acks} reads=${c.readsServed} snapshots=${c.snapshotsApplied} crashes=${this.counters.crashes} conf=${this.counters.confChanges}`,
      stats,
    };
  }
}

/** Run one seed to completion (deterministic: same seed, same run). */
export function runSimulation(opts: SimOptions): SimResult {
  assert(Number.isSafeInteger(opts.seed) && opts.seed >= 0, `seed must be a non-negative integer, got ${opts.seed}`);
  return new Simulation(opts.seed, opts.trace ?? null, opts.traceMessages ?? false, opts.chaosTicks, opts.sabotage ?? null).run();
}

