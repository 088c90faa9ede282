// RaftNode: the host that runs the pure RawNode on a real machine: timers, the WAL, the transport,
// the application state machine, and promises for proposals (settled on apply) and linearizable reads.

import { mkdir } from 'node:fs/promises';
import { RawNode } from '../rawnode.js';
import { MemoryStorage, bootstrap } from '../memory-storage.js';
import { decodeConfChange } from '../confchange.js';
import { DiskLog } from '../wal/disk-log.js';
import { decodeSnapshotEnvelope, encodeSnapshotEnvelope } from './snapshot-envelope.js';
import type { Transport } from '../transport/transport.js';
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, RaftLogger, Ready, Snapshot, Status } from '../types.js';
import { RaftError, silentLogger } from '../types.js';

/** The replicated application. apply() must be deterministic: every node applies the same entries. */
export interface StateMachine<R = unknown> {
  apply(data: Uint8Array, index: number): R;
  /** An image of everything applied so far. */
  snapshot(): Uint8Array;
  /** Replace all state with a snapshot() image. */
  restore(data: Uint8Array): void;
}

export interface RaftNodeOptions<R = unknown> {
  readonly id: NodeId;
  /**
   * Initial members and their transport addresses (the own id included). A fresh dataDir is
   * bootstrapped with exactly these voters unless `join` is set; later it is only an address book.
   */
  readonly peers: Readonly<Record<NodeId, string>>;
  /** Start with an empty log and wait to be added by the leader (addVoter/addLearner). */
  readonly join?: boolean;
  readonly dataDir: string;
  readonly transport: Transport;
  readonly stateMachine: StateMachine<R>;
  /**
   * Tick period. Defaults (25 ms, electionTick 20, heartbeatTick 2): heartbeats every 50 ms, election timeout
   * randomized in [500, 1000) ms at 25 ms granularity (fewer tied candidacies than 50 ms steps).
   */
  readonly tickMs?: number;
  readonly electionTick?: number;
  readonly heartbeatTick?: number;
  /** Take a snapshot (and compact the log) after this many applied entries. */
  readonly snapshotEvery?: number;
  /** Entries kept behind a snapshot so a slightly lagging follower catches up without one. */
  readonly catchUpEntries?: number;
  /** Bound on proposals waiting to be applied; more are rejected with 'proposal_dropped'. */
  readonly maxPendingProposals?: number;
  readonly proposalTimeoutMs?: number;
  /** Bound on read() calls waiting for a read index. */
  readonly maxPendingReads?: number;
  readonly readTimeoutMs?: number;
  /** fsync before acknowledging (default true). Turning it off is for tests only: it breaks durability. */
  readonly fsync?: boolean;
  /**
   * Leader sends its appends before its own fsync completes (default true; etcd does the same). Entries are
   * still acknowledged only once durable on a quorum including the leader. False = strictly persist-then-send.
   */
  readonly leaderSendsEarly?: boolean;
  readonly logger?: RaftLogger;
  readonly random?: () => number;
  /** Called when the node stops on an unrecoverable error (e.g. the disk failed). */
  readonly onFatal?: (err: Error) => void;
}

interface PendingProposal {
  readonly term: number;
  readonly proposedMs: number;
  readonly deadlineMs: number;
  resolve(result: unknown): void;
  reject(err: Error): void;
}

interface PendingRead {
  readonly deadlineMs: number;
  resolve(): void;
  reject(err: Error): void;
}

interface PendingTransfer {
  readonly to: NodeId;
  readonly deadlineMs: number;
  resolve(): void;
  reject(err: Error): void;
}

function assert(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new Error(`raft node invariant violated: ${msg}`);
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function ctxKey(ctx: Uint8Array): string {
  return Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('hex');
}

export class RaftNode<R = unknown> {
  readonly id: NodeId;
  private readonly logger: RaftLogger;
  private readonly tickMs: number;
  private readonly electionTick: number;
  private readonly heartbeatTick: number;
  private readonly snapshotEvery: number;
  private readonly catchUpEntries: number;
  private readonly maxPendingProposals: number;
  private readonly proposalTimeoutMs: number;
  private readonly maxPendingReads: number;
  private readonly readTimeoutMs: number;
  private readonly fsync: boolean;
  private readonly addresses = new Map<NodeId, string>();

  private log: DiskLog | null = null;
  private storage: MemoryStorage | null = null;
  private raw: RawNode | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private nextTickAtMs = 0;
  private ticks = 0;

  private started = false;
  private closed = false;
  private processing: Promise<void> | null = null;
  private readyScheduled = false;

  private applied = 0;
  /** What the WAL holds: last entry index, and the term/vote of the last hard state written. */
  private durableLastIndex = 0;
  private durableTerm = 0;
  private durableVote: NodeId | null = null;
  /** Latest hard state whose only change is `commit`, not yet written (see handleReady). */
  private unsavedHardState: HardState | null = null;
  private readonly leaderSendsEarly: boolean;
  private readonly counters = {
    readies: 0,
    syncs: 0,
    entriesSaved: 0,
    saveMs: 0,
    messagesSent: 0,
    applied: 0,
    proposalsResolved: 0,
    proposalWaitMs: 0,
  };
  private snapshotIndex = 0;
  private confState: ConfState = { voters: [], learners: [] };
  private role: Status['role'] = 'follower';
  private leader: NodeId | null = null;

  private readonly proposals = new Map<number, PendingProposal>();
  private readBatch: PendingRead[] = [];
  private readonly readsAwaitingIndex = new Map<string, PendingRead[]>();
  private readsAwaitingApply: { index: number; reads: PendingRead[] }[] = [];
  private pendingReadCount = 0;
  private readSeq = 0n;
  private transfers: PendingTransfer[] = [];
  private roleListeners: ((role: Status['role'], leader: NodeId | null) => void)[] = [];

  constructor(private readonly options: RaftNodeOptions<R>) {
    assert(options.id.length > 0, 'id must be non-empty');
    this.id = options.id;
    this.logger = options.logger ?? silentLogger;
    this.tickMs = options.tickMs ?? 25;
    this.electionTick = options.electionTick ?? 20;
    this.heartbeatTick = options.heartbeatTick ?? 2;
    this.snapshotEvery = options.snapshotEvery ?? 10_000;
    this.catchUpEntries = options.catchUpEntries ?? Math.min(5_000, this.snapshotEvery);
    this.maxPendingProposals = options.maxPendingProposals ?? 10_000;
    this.proposalTimeoutMs = options.proposalTimeoutMs ?? 10_000;
    this.maxPendingReads = options.maxPendingReads ?? 10_000;
    this.readTimeoutMs = options.readTimeoutMs ?? 5_000;
    this.fsync = options.fsync ?? true;
    this.leaderSendsEarly = options.leaderSendsEarly ?? true;
    assert(this.tickMs > 0 && this.heartbeatTick > 0 && this.heartbeatTick < this.electionTick, 'tick settings');
    assert(this.snapshotEvery > 0 && this.catchUpEntries >= 0, 'snapshot settings');
    for (const [id, address] of Object.entries(options.peers)) this.addresses.set(id, address);
    assert(options.join === true || this.addresses.has(this.id), 'peers must include the own id unless joining');
  }

  /** Open (or create) the data dir, restore state, start the transport and the ticker. */
  async start(): Promise<void> {
    assert(!this.started, 'start() called twice');
    this.started = true;
    const { dataDir, stateMachine, transport } = this.options;
    await mkdir(dataDir, { recursive: true });
    const opened = await DiskLog.open(dataDir, { logger: this.logger });
    this.log = opened.log;
    if (opened.repaired) this.logger.warn({ repaired: opened.repaired }, 'raft log had a torn tail; repaired');
    const { hardState, snapshot, entries } = opened.state;
    const storage = new MemoryStorage();
    this.storage = storage;
    const fresh = hardState.term === 0 && snapshot.meta.index === 0 && entries.length === 0;
    if (fresh && this.options.join !== true) {
      const voters = [...this.addresses.keys()].sort();
      bootstrap(storage, voters);
      await this.persistBootstrap(storage);
      this.logger.info({ voters }, 'bootstrapped a new raft group');
    } else if (!fresh) {
      if (snapshot.meta.index > 0) {
        storage.applySnapshot(snapshot);
        this.restoreImage(snapshot.data);
      }
      storage.setHardState(hardState);
      if (entries.length > 0) storage.append(entries);
      this.logger.info(
        { term: hardState.term, commit: hardState.commit, snapshotIndex: snapshot.meta.index, entries: entries.length },
        'restarted from the data dir',
      );
    }
    // After bootstrap or restore, the storage's snapshot is the point the state machine stands at.
    this.applied = storage.snapshot().meta.index;
    this.durableLastIndex = storage.lastIndex();
    this.durableTerm = storage.hardState().term;
    this.durableVote = storage.hardState().vote;
    this.snapshotIndex = this.applied;
    this.confState = storage.initialState().confState;
    for (const [id, address] of this.addresses) transport.addPeer(id, address);

    this.raw = new RawNode({
      id: this.id,
      storage,
      electionTick: this.electionTick,
      heartbeatTick: this.heartbeatTick,
      applied: this.applied,
      preVote: true,
      checkQuorum: true,
      maxSizePerMsg: 1024 * 1024,
      maxInflightMsgs: 256,
      maxCommittedSizePerReady: 16 * 1024 * 1024,
      maxUncommittedEntries: Math.max(this.maxPendingProposals * 2, 1024),
      random: this.options.random ?? Math.random,
      logger: this.logger,
    });
    await this.startTransport(transport);
    this.nextTickAtMs = performance.now();
    this.armTicker();
    this.scheduleReady();
  }

  /**
   * Ticks on a wall-clock grid (start + k * tickMs), like a Go time.Ticker: a late callback does not push
   * every later tick back (setInterval's drift stretched a 500 ms election timeout by 10-20% on a loaded
   * machine), and a tick missed entirely is dropped rather than replayed in a burst.
   */
  private armTicker(): void {
    const now = performance.now();
    this.nextTickAtMs += this.tickMs;
    if (this.nextTickAtMs <= now) this.nextTickAtMs += Math.ceil((now - this.nextTickAtMs) / this.tickMs) * this.tickMs;
    this.ticker = setTimeout(() => {
      this.ticker = null;
      if (this.closed) return;
      this.onTick();
      this.armTicker();
    }, this.nextTickAtMs - now);
  }

  private async startTransport(transport: Transport): Promise<void> {
    try {
      await this.startTransportOnce(transport);
    } catch (err) {
      // Leave nothing open behind a failed start (the caller may retry with another port).
      this.closed = true;
      await this.log?.close().catch(() => {});
      throw err;
    }
  }

  private async startTransportOnce(transport: Transport): Promise<void> {
    await transport.start((m) => this.onMessage(m), {
      unreachable: (id) => {
        if (!this.closed) this.raw?.reportUnreachable(id);
      },
      snapshotStatus: (id, status) => {
        if (this.closed) return;
        this.raw?.reportSnapshot(id, status);
        this.scheduleReady();
      },
    });
  }

  /** Replicate `data`; resolves with the state machine's result once applied here. */
  propose(data: Uint8Array): Promise<R> {
    const raw = this.running();
    if (raw instanceof RaftError) return Promise.reject(raw);
    if (this.proposals.size >= this.maxPendingProposals) {
      return Promise.reject(new RaftError('proposal_dropped', `too many proposals in flight (${this.maxPendingProposals}); retry later`));
    }
    let pos;
    try {
      pos = raw.propose(data);
    } catch (err) {
      return Promise.reject(err);
    }
    const promise = this.track(pos.index, pos.term) as Promise<R>;
    this.scheduleReady();
    return promise;
  }

  /** A linearizable read barrier: resolves once this node has applied everything committed before the call. */
  read(): Promise<void> {
    const raw = this.running();
    if (raw instanceof RaftError) return Promise.reject(raw);
    if (this.pendingReadCount >= this.maxPendingReads) {
      return Promise.reject(new RaftError('proposal_dropped', `too many reads in flight (${this.maxPendingReads}); retry later`));
    }
    return new Promise<void>((resolve, reject) => {
      this.pendingReadCount++;
      const done = () => this.pendingReadCount--;
      this.readBatch.push({
        deadlineMs: Date.now() + this.readTimeoutMs,
        resolve: () => (done(), resolve()),
        reject: (err) => (done(), reject(err)),
      });
      this.scheduleReady();
    });
  }

  addVoter(id: NodeId, address: string): Promise<void> {
    try {
      this.learnAddress(id, address);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.proposeConfChange({ type: 'add-voter', nodeId: id, context: utf8.encode(address) });
  }

  addLearner(id: NodeId, address: string): Promise<void> {
    try {
      this.learnAddress(id, address);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.proposeConfChange({ type: 'add-learner', nodeId: id, context: utf8.encode(address) });
  }

  removeNode(id: NodeId): Promise<void> {
    return this.proposeConfChange({ type: 'remove-node', nodeId: id });
  }

  /** Hand leadership to `to`; resolves when this node sees `to` as leader. */
  transferLeadership(to: NodeId): Promise<void> {
    const raw = this.running();
    if (raw instanceof RaftError) return Promise.reject(raw);
    if (this.leader === to) return Promise.resolve();
    try {
      raw.transferLeader(to);
    } catch (err) {
      return Promise.reject(err);
    }
    this.scheduleReady();
    return new Promise<void>((resolve, reject) => {
      this.transfers.push({ to, deadlineMs: Date.now() + this.tickMs * this.electionTick * 4, resolve, reject });
    });
  }

  status(): Status {
    return this.ensureRunning().status();
  }

  /** Counters since start, for status pages and benchmarks (entries per fsync = entriesSaved / syncs). */
  stats(): Readonly<RaftNode['counters']> {
    return { ...this.counters, saveMs: Math.round(this.counters.saveMs), proposalWaitMs: Math.round(this.counters.proposalWaitMs) };
  }

  /** Address of a member's transport, if known (used by servers to point clients at the leader). */
  addressOf(id: NodeId): string | null {
    return this.addresses.get(id) ?? null;
  }

  get isLeader(): boolean {
    return this.role === 'leader';
  }

  get leaderId(): NodeId | null {
    return this.leader;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  onRoleChange(listener: (role: Status['role'], leader: NodeId | null) => void): void {
    this.roleListeners.push(listener);
  }

  /** Stop ticking, fail everything pending, wait for in-progress disk writes, close transport and WAL. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ticker) clearTimeout(this.ticker);
    this.ticker = null;
    this.failAll(new RaftError('proposal_dropped', `raft node ${this.id} is closing`));
    await this.processing?.catch(() => {});
    await this.options.transport.stop();
    await this.processing?.catch(() => {});
    if (this.log) await this.flushHardState(this.log).catch(() => {});
    await this.log?.close();
  }

  // ---- internals ----

  private ensureRunning(): RawNode {
    const raw = this.running();
    if (raw instanceof RaftError) throw raw;
    return raw;
  }

  /** The RawNode, or the error explaining why there is none (promise-returning calls reject with it). */
  private running(): RawNode | RaftError {
    if (this.closed) return new RaftError('unavailable', `raft node ${this.id} is closed`);
    if (this.raw === null) return new RaftError('unavailable', `raft node ${this.id} is not started: call start() first`);
    return this.raw;
  }

  private notLeader(): RaftError {
    return new RaftError(
      'not_leader',
      this.leader ? `node ${this.id} is not the leader; send to ${this.leader}` : `node ${this.id} is not the leader and knows no leader yet; retry shortly`,
      this.leader,
    );
  }

  /** Restore the application from snapshot bytes, and learn the addresses carried with them. */
  private restoreImage(data: Uint8Array): void {
    const env = decodeSnapshotEnvelope(data);
    for (const [id, address] of Object.entries(env.addresses)) {
      // The own peers option wins for ids it names: the operator's current address beats a recorded one.
      if (!this.options.peers[id]) this.addresses.set(id, address);
    }
    this.options.stateMachine.restore(env.app);
  }

  private learnAddress(id: NodeId, address: string): void {
    this.options.transport.addPeer(id, address); // throws on a malformed address, before we record it
    this.addresses.set(id, address);
  }

  private proposeConfChange(cc: ConfChange): Promise<void> {
    const raw = this.running();
    if (raw instanceof RaftError) return Promise.reject(raw);
    let pos;
    try {
      pos = raw.proposeConfChange(cc);
    } catch (err) {
      return Promise.reject(err);
    }
    const p = this.track(pos.index, pos.term).then(() => undefined);
    this.scheduleReady();
    return p;
  }

  private track(index: number, term: number): Promise<unknown> {
    const previous = this.proposals.get(index);
    if (previous) {
      // A newer term wrote this index: the older proposal can no longer commit.
      this.proposals.delete(index);
      previous.reject(new RaftError('proposal_dropped', `proposal at index ${index} (term ${previous.term}) was overwritten by term ${term}`));
    }
    return new Promise<unknown>((resolve, reject) => {
      const now = Date.now();
      this.proposals.set(index, { term, proposedMs: performance.now(), deadlineMs: now + this.proposalTimeoutMs, resolve, reject });
    });
  }

  private onMessage(m: Message): void {
    if (this.closed || this.raw === null || m.to !== this.id) return;
    try {
      this.raw.step(m);
    } catch (err) {
      this.logger.debug({ from: m.from, type: m.type, err: (err as Error).message }, 'raft step refused a message');
    }
    this.scheduleReady();
  }

  private onTick(): void {
    if (this.closed || this.raw === null) return;
    this.raw.tick();
    this.ticks++;
    // Deadlines are checked every ~200 ms; precision beyond that buys nothing for timeouts of seconds.
    if (this.ticks % Math.max(1, Math.round(200 / this.tickMs)) === 0) this.expire(Date.now());
    this.scheduleReady();
  }

  private scheduleReady(): void {
    if (this.readyScheduled || this.closed) return;
    this.readyScheduled = true;
    // setImmediate (not a microtask): proposals and messages from this I/O turn join the same Ready.
    setImmediate(() => {
      this.readyScheduled = false;
      if (this.processing === null && !this.closed) {
        this.processing = this.readyLoop().finally(() => {
          this.processing = null;
          if (!this.closed && (this.raw?.hasReady() || this.readBatch.length > 0)) this.scheduleReady();
        });
      }
    });
  }

  private async readyLoop(): Promise<void> {
    const raw = this.raw;
    assert(raw !== null, 'ready loop needs a started node');
    try {
      // Bound the loop so timers and I/O get a turn even under a flood of proposals.
      for (let rounds = 0; rounds < 64 && !this.closed; rounds++) {
        this.submitReads(raw);
        if (!raw.hasReady()) break;
        const rd = raw.ready();
        await this.handleReady(raw, rd);
      }
    } catch (err) {
      this.fatal(err as Error);
    }
  }

  private submitReads(raw: RawNode): void {
    if (this.readBatch.length === 0) return;
    const batch = this.readBatch;
    this.readBatch = [];
    const ctx = new Uint8Array(8);
    new DataView(ctx.buffer).setBigUint64(0, ++this.readSeq);
    try {
      raw.readIndex(ctx);
    } catch (err) {
      for (const r of batch) r.reject(err as Error);
      return;
    }
    this.readsAwaitingIndex.set(ctxKey(ctx), batch);
  }

  private async handleReady(raw: RawNode, rd: Ready): Promise<void> {
    const storage = this.storage;
    const log = this.log;
    assert(storage !== null && log !== null, 'storage is open');
    if (rd.softState) this.onSoftState(rd.softState.role, rd.softState.leader);

    // Leader fast path (Raft thesis §10.2.1, as etcd does): a leader's appends may leave before its own fsync,
    // because nothing is acknowledged before committedEntries hands it out, and that needs this Ready's entries
    // durable here (advance) plus a quorum's acks, each sent only after the follower's fsync. Not when this
    // Ready changes term or vote: those must be durable before any message depends on them.
    const sendEarly =
      this.leaderSendsEarly &&
      this.role === 'leader' &&
      (rd.hardState === null || (rd.hardState.term === this.durableTerm && rd.hardState.vote === this.durableVote));
    if (sendEarly && rd.messages.length > 0) this.options.transport.send(rd.messages);

    // Committed entries already durable here can be applied while this Ready's new entries are fsynced:
    // applying never waits behind the disk for entries it does not include.
    let next = 0;
    const committed = rd.committedEntries;
    if (rd.snapshot === null) {
      while (next < committed.length && (committed[next]?.index ?? Infinity) <= this.durableLastIndex) {
        this.applyEntry(raw, committed[next] as Entry);
        next++;
      }
    }

    // 1. Durable first: nothing that depends on these bytes may leave the node before they are on disk.
    if (rd.snapshot) await log.saveSnapshot(rd.snapshot);
    // A hard state that only moves `commit` need not be written now: commit is volatile in Raft (a restarted
    // node relearns it from the leader), so it rides along with the next entries, snapshot or close instead
    // of costing a WAL write (and a turn of this loop) per heartbeat and per commit.
    const commitOnly =
      rd.hardState !== null &&
      rd.entries.length === 0 &&
      rd.snapshot === null &&
      rd.hardState.term === this.durableTerm &&
      rd.hardState.vote === this.durableVote;
    if (commitOnly) {
      this.unsavedHardState = rd.hardState;
    } else if (rd.hardState || rd.entries.length > 0) {
      const t0 = performance.now();
      const sync = rd.mustSync && this.fsync;
      await log.save(rd.hardState ?? this.unsavedHardState, rd.entries, sync);
      this.unsavedHardState = null;
      this.counters.saveMs += performance.now() - t0;
      if (sync) this.counters.syncs++;
      this.counters.entriesSaved += rd.entries.length;
    }
    this.counters.readies++;
    this.counters.messagesSent += rd.messages.length;
    if (rd.snapshot) {
      storage.applySnapshot(rd.snapshot);
      this.durableLastIndex = rd.snapshot.meta.index;
    }
    if (rd.hardState) {
      storage.setHardState(rd.hardState);
      this.durableTerm = rd.hardState.term;
      this.durableVote = rd.hardState.vote;
    }
    const lastNew = rd.entries[rd.entries.length - 1];
    if (lastNew !== undefined) {
      storage.append(rd.entries);
      this.durableLastIndex = lastNew.index;
    }

    // 2. Then the messages.
    if (!sendEarly && rd.messages.length > 0) this.options.transport.send(rd.messages);

    // 3. Then the state machine.
    if (rd.snapshot) this.applySnapshot(rd.snapshot);
    for (; next < committed.length; next++) this.applyEntry(raw, committed[next] as Entry);
    for (const rs of rd.readStates) {
      const key = ctxKey(rs.context);
      const reads = this.readsAwaitingIndex.get(key);
      if (!reads) continue;
      this.readsAwaitingIndex.delete(key);
      this.readsAwaitingApply.push({ index: rs.index, reads });
    }
    this.releaseReads();

    // 4. Hand the Ready back.
    raw.advance(rd);
    await this.maybeSnapshot(storage, log);
  }

  private onSoftState(role: Status['role'], leader: NodeId | null): void {
    const leaderChanged = leader !== this.leader;
    this.role = role;
    this.leader = leader;
    this.logger.info({ role, leader }, 'raft role changed');
    if (leaderChanged) {
      // A read index requested from (or by) the old leader may never be answered: fail fast, the client retries.
      for (const reads of this.readsAwaitingIndex.values()) for (const r of reads) r.reject(this.notLeader());
      this.readsAwaitingIndex.clear();
    }
    const remaining: PendingTransfer[] = [];
    for (const t of this.transfers) (leader === t.to ? t.resolve() : remaining.push(t));
    this.transfers = remaining;
    for (const l of this.roleListeners) l(role, leader);
  }

  private applySnapshot(snap: Snapshot): void {
    if (snap.meta.index <= this.applied) return;
    this.restoreImage(snap.data);
    this.applied = snap.meta.index;
    this.snapshotIndex = snap.meta.index;
    this.confState = snap.meta.confState;
    this.syncPeers();
    // Whatever we proposed at or below the snapshot is folded into it; whether it won is unknown here.
    for (const [index, p] of this.proposals) {
      if (index > snap.meta.index) continue;
      this.proposals.delete(index);
      p.reject(new RaftError('proposal_dropped', `outcome of the proposal at index ${index} is unknown (replaced by a snapshot); check and retry`));
    }
    this.logger.info({ index: snap.meta.index, term: snap.meta.term }, 'applied a snapshot from the leader');
  }

  private applyEntry(raw: RawNode, e: Entry): void {
    if (e.index <= this.applied) return;
    assert(e.index === this.applied + 1, `entries apply in order (applied ${this.applied}, got ${e.index})`);
    let result: unknown = undefined;
    let failure: Error | null = null;
    if (e.type === 'conf-change') {
      const cc = decodeConfChange(e.data);
      this.confState = raw.applyConfChange(cc);
      this.onConfChange(cc);
    } else if (e.data.length > 0) {
      try {
        result = this.options.stateMachine.apply(e.data, e.index);
      } catch (err) {
        // A deterministic application error is the proposal's answer, not the node's failure.
        failure = err as Error;
      }
    }
    this.applied = e.index;
    this.counters.applied++;
    const p = this.proposals.get(e.index);
    if (!p) return;
    this.proposals.delete(e.index);
    if (p.term !== e.term) {
      p.reject(new RaftError('proposal_dropped', `proposal at index ${e.index} lost to an entry of term ${e.term} (leader changed); retry`, this.leader));
    } else if (failure) {
      p.reject(failure);
    } else {
      this.counters.proposalsResolved++;
      this.counters.proposalWaitMs += performance.now() - p.proposedMs;
      p.resolve(result);
    }
  }

  private onConfChange(cc: ConfChange): void {
    if (cc.type !== 'remove-node' && cc.context !== undefined && cc.context.length > 0) {
      // Every member learns the new member's address from the committed change itself.
      try {
        if (cc.nodeId !== this.id) this.addresses.set(cc.nodeId, utf8Strict.decode(cc.context));
      } catch {
        this.logger.warn({ node: cc.nodeId }, 'conf change carries an address that is not UTF-8; ignored');
      }
    }
    this.logger.info({ change: cc.type, node: cc.nodeId, confState: this.confState }, 'membership changed');
    if (cc.type === 'remove-node' && cc.nodeId !== this.id) {
      this.options.transport.removePeer(cc.nodeId);
      this.addresses.delete(cc.nodeId);
    }
    this.syncPeers();
    if (cc.type === 'remove-node' && cc.nodeId === this.id) this.logger.warn({}, 'this node was removed from the group');
  }

  /**
   * Gives the transport every member's address (from the address book). Only a remove-node change takes a peer
   * away: a configuration restored from an older snapshot may lack the current leader (a learner catching up from
   * the bootstrap snapshot), and the learner must still be able to answer it.
   */
  private syncPeers(): void {
    const members = new Set([...this.confState.voters, ...this.confState.learners]);
    for (const id of members) {
      const address = this.addresses.get(id);
      if (id === this.id || !address) continue;
      try {
        this.options.transport.addPeer(id, address);
      } catch (err) {
        // A bad recorded address must not stop the node: that member stays unreachable until fixed.
        this.logger.warn({ node: id, address, err: (err as Error).message }, 'cannot use member address');
      }
    }
  }

  private releaseReads(): void {
    if (this.readsAwaitingApply.length === 0) return;
    const waiting: { index: number; reads: PendingRead[] }[] = [];
    for (const w of this.readsAwaitingApply) {
      if (w.index <= this.applied) for (const r of w.reads) r.resolve();
      else waiting.push(w);
    }
    this.readsAwaitingApply = waiting;
  }

  private async flushHardState(log: DiskLog): Promise<void> {
    const hs = this.unsavedHardState;
    if (hs === null) return;
    this.unsavedHardState = null;
    await log.save(hs, [], false);
  }

  private async maybeSnapshot(storage: MemoryStorage, log: DiskLog): Promise<void> {
    if (this.applied - this.snapshotIndex < this.snapshotEvery) return;
    const index = this.applied;
    // The WAL's commit must not trail the snapshot it is about to hold.
    await this.flushHardState(log);
    const members = [...this.confState.voters, ...this.confState.learners];
    const addresses = Object.fromEntries(members.flatMap((id) => {
      const address = this.addresses.get(id);
      return address === undefined ? [] : [[id, address] as const];
    }));
    const data = encodeSnapshotEnvelope({ addresses, app: this.options.stateMachine.snapshot() });
    const snap = storage.createSnapshot(index, this.confState, data);
    await log.saveSnapshot(snap);
    this.snapshotIndex = index;
    const compactTo = index - this.catchUpEntries;
    if (compactTo > storage.firstIndex()) storage.compact(compactTo);
    this.logger.info({ index, compactedTo: Math.max(compactTo, 0) }, 'took a snapshot');
  }

  private expire(nowMs: number): void {
    for (const [index, p] of this.proposals) {
      if (p.deadlineMs > nowMs) continue;
      this.proposals.delete(index);
      p.reject(new RaftError('proposal_dropped', `proposal at index ${index} not applied within ${this.proposalTimeoutMs} ms; outcome unknown`, this.leader));
    }
    const timeout = (reads: PendingRead[]): PendingRead[] =>
      reads.filter((r) => {
        if (r.deadlineMs > nowMs) return true;
        r.reject(new RaftError('not_leader', `read not confirmed within ${this.readTimeoutMs} ms (no leader reachable?)`, this.leader));
        return false;
      });
    for (const [key, reads] of this.readsAwaitingIndex) {
      const left = timeout(reads);
      if (left.length === 0) this.readsAwaitingIndex.delete(key);
      else this.readsAwaitingIndex.set(key, left);
    }
    this.readsAwaitingApply = this.readsAwaitingApply.map((w) => ({ index: w.index, reads: timeout(w.reads) })).filter((w) => w.reads.length > 0);
    this.transfers = this.transfers.filter((t) => {
      if (t.deadlineMs > nowMs) return true;
      t.reject(new RaftError('proposal_dropped', `leadership did not move to ${t.to} in time`, this.leader));
      return false;
    });
  }

  private failAll(err: RaftError): void {
    for (const p of this.proposals.values()) p.reject(err);
    this.proposals.clear();
    for (const r of this.readBatch) r.reject(err);
    this.readBatch = [];
    for (const reads of this.readsAwaitingIndex.values()) for (const r of reads) r.reject(err);
    this.readsAwaitingIndex.clear();
    for (const w of this.readsAwaitingApply) for (const r of w.reads) r.reject(err);
    this.readsAwaitingApply = [];
    for (const t of this.transfers) t.reject(err);
    this.transfers = [];
  }

  private fatal(err: Error): void {
    if (this.closed) return;
    this.logger.error({ err: err.message, stack: err.stack }, 'raft node stopping on an unrecoverable error');
    void this.close();
    this.options.onFatal?.(err);
  }

  private async persistBootstrap(storage: MemoryStorage): Promise<void> {
    const log = this.log;
    assert(log !== null, 'log open');
    const snap = storage.snapshot();
    if (snap.meta.index > 0) await log.saveSnapshot(snap);
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    const entries = last >= first ? storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER) : [];
    await log.save(storage.hardState(), entries, true);
  }
}
