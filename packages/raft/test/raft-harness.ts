// Test harness for the Raft core: a deterministic in-memory network of Raft state machines (etcd's "network"
// idea), with message filters for partitions and drops. Messages are delivered synchronously, breadth-first.

import { Raft } from '../src/raft.js';
import { MemoryStorage } from '../src/memory-storage.js';
import type { ConfState, Entry, HardState, Message, MessageType, NodeId, RaftConfig } from '../src/types.js';
import { Rng } from '../src/sim/rng.js';

/** Deterministic random source so every test run is identical (the simulator's PRNG). */
export function seededRandom(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.float();
}

function hashId(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** A MemoryStorage whose membership is given directly (an empty log at term 0), like a freshly configured node. */
export class ConfStorage extends MemoryStorage {
  constructor(private readonly cs: ConfState) {
    super();
  }
  override initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState(), confState: this.cs };
  }
}

export interface TestRaftOptions {
  electionTick?: number;
  heartbeatTick?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  learners?: readonly NodeId[];
  storage?: MemoryStorage;
  maxSizePerMsg?: number;
  maxInflightMsgs?: number;
  maxUncommittedEntries?: number;
  applied?: number;
  random?: () => number;
}

export function newRaft(id: NodeId, voters: readonly NodeId[], opts: TestRaftOptions = {}): Raft {
  const storage = opts.storage ?? new ConfStorage({ voters, learners: opts.learners ?? [] });
  const cfg: RaftConfig = {
    id,
    storage,
    electionTick: opts.electionTick ?? 10,
    heartbeatTick: opts.heartbeatTick ?? 1,
    preVote: opts.preVote ?? false,
    checkQuorum: opts.checkQuorum ?? false,
    ...(opts.maxSizePerMsg !== undefined ? { maxSizePerMsg: opts.maxSizePerMsg } : {}),
    ...(opts.maxInflightMsgs !== undefined ? { maxInflightMsgs: opts.maxInflightMsgs } : {}),
    ...(opts.maxUncommittedEntries !== undefined ? { maxUncommittedEntries: opts.maxUncommittedEntries } : {}),
    ...(opts.applied !== undefined ? { applied: opts.applied } : {}),
    random: opts.random ?? seededRandom(hashId(id)),
  };
  return new Raft(cfg);
}

/** A storage holding the given entries (terms listed from index 1) and membership. */
export function storageWithTerms(terms: readonly number[], cs: ConfState, hs?: HardState): ConfStorage {
  const s = new ConfStorage(cs);
  s.append(terms.map((term, k) => ({ term, index: k + 1, type: 'normal' as const, data: new Uint8Array(0) })));
  if (hs !== undefined) s.setHardState(hs);
  return s;
}

export function ent(index: number, term: number, data = ''): Entry {
  return { index, term, type: 'normal', data: new TextEncoder().encode(data) };
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

export function ids(n: number): NodeId[] {
  return Array.from({ length: n }, (_, k) => `n${k + 1}`);
}

/** Terms of every entry from firstIndex to lastIndex. */
export function logTerms(r: Raft): number[] {
  const out: number[] = [];
  for (let i = r.log.firstIndex(); i <= r.log.lastIndex(); i++) out.push(r.log.term(i));
  return out;
}

export class Network {
  readonly peers = new Map<NodeId, Raft | null>();
  private readonly cuts = new Set<string>();
  private readonly ignored = new Set<MessageType>();
  /** Every message delivered (or dropped), in order, for assertions. */
  readonly trace: Message[] = [];
  /** Return false to drop a message. */
  filter: ((m: Message) => boolean) | null = null;
  /** Bound on messages delivered per send(): a livelock in the protocol must fail the test, not hang it. */
  maxDeliveries = 1_000_000;

  constructor(nodes: ReadonlyArray<Raft | null>, names: readonly NodeId[] = ids(nodes.length)) {
    nodes.forEach((r, k) => {
      const name = names[k];
      if (name === undefined) throw new Error('network: missing name');
      this.peers.set(name, r);
    });
  }

  /** A network of n fresh nodes (n1..nn), all voters. */
  static of(n: number, opts: TestRaftOptions = {}): Network {
    const names = ids(n);
    return new Network(names.map((id) => newRaft(id, names, opts)), names);
  }

  raft(id: NodeId): Raft {
    const r = this.peers.get(id);
    if (r === undefined || r === null) throw new Error(`network: no raft ${id}`);
    return r;
  }

  cut(a: NodeId, b: NodeId): void {
    this.cuts.add(`${a}>${b}`);
    this.cuts.add(`${b}>${a}`);
  }

  isolate(id: NodeId): void {
    for (const other of this.peers.keys()) if (other !== id) this.cut(id, other);
  }

  ignore(t: MessageType): void {
    this.ignored.add(t);
  }

  recover(): void {
    this.cuts.clear();
    this.ignored.clear();
    this.filter = null;
  }

  private allowed(m: Message): boolean {
    if (this.cuts.has(`${m.from}>${m.to}`)) return false;
    if (this.ignored.has(m.type)) return false;
    if (this.filter !== null && !this.filter(m)) return false;
    return true;
  }

  /** Deliver msgs and everything they cause until the network is quiet. */
  send(msgs: readonly Message[]): void {
    const queue: Message[] = [...msgs];
    let delivered = 0;
    while (queue.length > 0) {
      const m = queue.shift();
      if (m === undefined) break;
      if (++delivered > this.maxDeliveries) throw new Error('network: too many deliveries (livelock?)');
      this.trace.push(m);
      if (!this.allowed(m)) continue;
      const p = this.peers.get(m.to);
      if (p === undefined || p === null) continue;
      p.step(m);
      for (const out of p.takeMessages()) queue.push(out);
    }
  }

  /** Flush whatever every node has queued. */
  flush(): void {
    const all: Message[] = [];
    for (const p of this.peers.values()) if (p !== null) all.push(...p.takeMessages());
    this.send(all);
  }

  campaign(id: NodeId): void {
    const r = this.raft(id);
    r.hup(false);
    this.send(r.takeMessages());
  }

  propose(id: NodeId, data: string): void {
    const r = this.raft(id);
    r.propose('normal', bytes(data));
    this.send(r.takeMessages());
  }

  tick(id: NodeId, n = 1): void {
    const r = this.raft(id);
    for (let k = 0; k < n; k++) r.tick();
    this.send(r.takeMessages());
  }
}

// ------------------------------------------------------------------ RawNode cluster with a real Ready loop

import { RawNode } from '../src/rawnode.js';
import { bootstrap } from '../src/memory-storage.js';
import { decodeConfChange } from '../src/confchange.js';
import type { Ready, ReadState, Snapshot } from '../src/types.js';

export interface RawMember {
  rn: RawNode;
  storage: MemoryStorage;
  /** The application: data of every applied normal entry, in order (no-ops skipped). */
  applied: string[];
  appliedIndex: number;
  confState: ConfState;
  readStates: ReadState[];
  readies: Ready[];
}

export interface RawClusterOptions {
  preVote?: boolean;
  checkQuorum?: boolean;
  electionTick?: number;
  heartbeatTick?: number;
  maxCommittedSizePerReady?: number;
  maxInflightMsgs?: number;
  /** Keep every Ready for assertions. */
  recordReadies?: boolean;
}

const dec = new TextDecoder();

export class RawCluster {
  readonly members = new Map<NodeId, RawMember>();
  inflight: Message[] = [];
  filter: ((m: Message) => boolean) | null = null;
  readonly down = new Set<NodeId>();
  readonly snapshotsSent: Message[] = [];

  constructor(
    voters: readonly NodeId[],
    private readonly opts: RawClusterOptions = {},
  ) {
    for (const id of voters) {
      const storage = new MemoryStorage();
      bootstrap(storage, voters);
      this.start(id, storage);
    }
  }

  config(id: NodeId, storage: MemoryStorage, applied?: number): RaftConfig {
    return {
      id,
      storage,
      electionTick: this.opts.electionTick ?? 10,
      heartbeatTick: this.opts.heartbeatTick ?? 1,
      preVote: this.opts.preVote ?? true,
      checkQuorum: this.opts.checkQuorum ?? true,
      ...(this.opts.maxCommittedSizePerReady !== undefined ? { maxCommittedSizePerReady: this.opts.maxCommittedSizePerReady } : {}),
      ...(this.opts.maxInflightMsgs !== undefined ? { maxInflightMsgs: this.opts.maxInflightMsgs } : {}),
      ...(applied !== undefined ? { applied } : {}),
      random: seededRandom(hashId(id)),
    };
  }

  /** (Re)start a node over a storage; the application state is rebuilt from the snapshot and the log. */
  start(id: NodeId, storage: MemoryStorage): RawMember {
    const snap = storage.snapshot();
    const m: RawMember = {
      rn: new RawNode(this.config(id, storage)),
      storage,
      applied: snap.data.length > 0 ? (JSON.parse(dec.decode(snap.data)) as string[]) : [],
      appliedIndex: snap.meta.index,
      confState: snap.meta.confState,
      readStates: [],
      readies: [],
    };
    this.members.set(id, m);
    this.down.delete(id);
    return m;
  }

  /** A new node with an empty storage (joins through a conf change and a snapshot). */
  addEmpty(id: NodeId): RawMember {
    return this.start(id, new MemoryStorage());
  }

  member(id: NodeId): RawMember {
    const m = this.members.get(id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  rn(id: NodeId): RawNode {
    return this.member(id).rn;
  }

  /** Crash: drop everything not persisted, and the node's in-flight messages. */
  crash(id: NodeId): void {
    this.down.add(id);
    this.inflight = this.inflight.filter((m) => m.to !== id && m.from !== id);
  }

  restart(id: NodeId): RawMember {
    const old = this.member(id);
    return this.start(id, old.storage);
  }

  /** Run one node's Ready loop: persist, send, apply, advance. */
  handleReady(id: NodeId): boolean {
    if (this.down.has(id)) return false;
    const m = this.member(id);
    let any = false;
    for (let guard = 0; guard < 1000 && m.rn.hasReady(); guard++) {
      any = true;
      const rd = m.rn.ready();
      if (this.opts.recordReadies === true) m.readies.push(rd);
      if (rd.snapshot !== null) m.storage.applySnapshot(rd.snapshot);
      m.storage.append(rd.entries);
      if (rd.hardState !== null) m.storage.setHardState(rd.hardState);
      for (const msg of rd.messages) {
        if (msg.type === 'snapshot') this.snapshotsSent.push(msg);
        this.inflight.push(msg);
      }
      if (rd.snapshot !== null) {
        const s: Snapshot = rd.snapshot;
        m.applied = s.data.length > 0 ? (JSON.parse(dec.decode(s.data)) as string[]) : [];
        m.appliedIndex = s.meta.index;
        m.confState = s.meta.confState;
      }
      for (const e of rd.committedEntries) {
        if (e.index <= m.appliedIndex) throw new Error(`${id}: entry ${e.index} applied twice`);
        if (e.index !== m.appliedIndex + 1) throw new Error(`${id}: gap in applied entries at ${e.index}`);
        m.appliedIndex = e.index;
        if (e.type === 'conf-change') m.confState = m.rn.applyConfChange(decodeConfChange(e.data));
        else if (e.data.length > 0) m.applied.push(dec.decode(e.data));
      }
      for (const r of rd.readStates) m.readStates.push(r);
      m.rn.advance(rd);
    }
    return any;
  }

  /** Deliver messages and run Ready loops until nothing moves. */
  stabilize(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      let moved = false;
      for (const id of this.members.keys()) if (this.handleReady(id)) moved = true;
      const batch = this.inflight;
      this.inflight = [];
      for (const msg of batch) {
        moved = true;
        if (this.down.has(msg.to) || this.down.has(msg.from)) continue;
        if (this.filter !== null && !this.filter(msg)) continue;
        const to = this.members.get(msg.to);
        if (to !== undefined) to.rn.step(msg);
      }
      if (!moved) return;
    }
    throw new Error('cluster did not stabilize');
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) if (!this.down.has(id)) this.rn(id).tick();
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const id of this.members.keys()) this.tick(id);
      this.stabilize();
    }
  }

  leader(): NodeId | null {
    for (const [id, m] of this.members) if (!this.down.has(id) && m.rn.status().role === 'leader') return id;
    return null;
  }

  /** Tick everyone until a leader exists (bounded). */
  elect(maxTicks = 200): NodeId {
    for (let i = 0; i < maxTicks; i++) {
      const l = this.leader();
      if (l !== null) return l;
      this.tickAll();
    }
    throw new Error('no leader elected');
  }

  snapshotAndCompact(id: NodeId): void {
    const m = this.member(id);
    const data = new TextEncoder().encode(JSON.stringify(m.applied));
    m.storage.createSnapshot(m.appliedIndex, m.confState, data);
    m.storage.compact(m.appliedIndex);
  }
}
