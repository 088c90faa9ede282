// One simulated server: a RawNode, its "disk" (a MemoryStorage that survives crashes) and its application,
// driven through the Ready contract in phases so that a crash can strike between any two of them.

import type { ConfChange, ConfState, Entry, Message, NodeId, ProposalPosition, ReadState, Role, Snapshot, Status } from '../types.js';
import { RaftError, silentLogger } from '../types.js';
import type { Checker, LogView } from './checker.js';
import { SafetyViolation } from './checker.js';
import { MemoryStorage, RawNode, bootstrap, decodeConfChange } from './core.js';
import type { Rng } from './rng.js';

function assert(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new Error(`sim node: ${msg}`);
}

/** Points in Ready handling where an injected crash strikes (persist itself is one atomic fsync). */
export const crashPoints = ['before-persist', 'after-persist', 'mid-send', 'after-send', 'mid-apply', 'before-advance'] as const;
export type CrashPoint = (typeof crashPoints)[number];

export interface NodeTuning {
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly maxCommittedSizePerReady: number;
  readonly maxUncommittedEntries: number;
  /** Take an application snapshot every this many applied entries. */
  readonly snapshotEvery: number;
  /** Keep this many applied entries behind the snapshot when compacting. */
  readonly compactLag: number;
}

/** What a node's host does to the world; implemented by the cluster. */
export interface NodeEffects {
  send(m: Message): void;
  applied(node: NodeId, e: Entry): void;
  snapshotApplied(node: NodeId, index: number): void;
  confApplied(node: NodeId, cc: ConfChange, cs: ConfState): void;
  readState(node: NodeId, rs: ReadState): void;
  roleChanged(node: NodeId, role: Role, term: number, leader: NodeId | null): void;
  crashed(node: NodeId, where: string): void;
  trace(line: string): void;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export function encodeCommand(cmdId: string): Uint8Array {
  return textEncoder.encode(`w:${cmdId}`);
}

function decodeCommand(data: Uint8Array): string {
  const s = textDecoder.decode(data);
  if (!s.startsWith('w:')) throw new SafetyViolation('state-machine-safety', `applied a command the clients never wrote: ${JSON.stringify(s.slice(0, 40))}`);
  return s.slice(2);
}

/** The replicated application: the sequence of distinct command ids applied, deduplicating client retries by id. */
export class AppState {
  readonly seq: string[];
  readonly seen: Set<string>;
  applied: number;
  confState: ConfState;

  constructor(seq: string[], applied: number, confState: ConfState) {
    this.seq = seq;
    this.seen = new Set(seq);
    assert(this.seen.size === seq.length, 'snapshot holds a command twice');
    this.applied = applied;
    this.confState = confState;
  }

  static fromSnapshot(snap: Snapshot, confState: ConfState): AppState {
    if (snap.data.length === 0) return new AppState([], snap.meta.index, confState);
    const parsed: unknown = JSON.parse(textDecoder.decode(snap.data));
    if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) {
      throw new SafetyViolation('state-machine-safety', `snapshot ${snap.meta.index} does not hold an application image`);
    }
    return new AppState(parsed as string[], snap.meta.index, confState);
  }

  encode(): Uint8Array {
    return textEncoder.encode(JSON.stringify(this.seq));
  }
}

function copyConf(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}

export class SimNode {
  /** The disk: survives crashes. Replaced by a freshly loaded copy on every start. */
  private disk: MemoryStorage;
  private raw: RawNode | null = null;
  app: AppState | null = null;
  /** Bumped on every crash, so events addressed to an earlier life are ignored. */
  incarnation = 0;
  role: Role = 'follower';
  term = 0;
  leader: NodeId | null = null;
  private pendingCrash: { point: CrashPoint; at: number } | null = null;
  private lastSnapshotIndex = 0;

  constructor(
    readonly id: NodeId,
    private readonly tuning: NodeTuning,
    private readonly rng: Rng,
    private readonly checker: Checker,
    private readonly fx: NodeEffects,
    founders: readonly NodeId[] | null,
    /** Sabotage for tests: drop the vote from every persisted hard state (a host that forgets to fsync it). */
    private readonly forgetVotes = false,
  ) {
    this.disk = new MemoryStorage();
    if (founders !== null) bootstrap(this.disk, founders);
    // Tell the checker what bootstrap put on disk, so its mirror starts equal to the storage.
    const snap = this.disk.snapshot();
    const first = this.disk.firstIndex();
    const last = this.disk.lastIndex();
    const base = snap.meta.index > 0 || first > 1 ? { index: first - 1, term: this.disk.term(first - 1), confState: snap.meta.confState } : null;
    const entries = last >= first ? this.disk.entries(first, last + 1, Number.MAX_SAFE_INTEGER) : [];
    checker.observePersist(id, base, entries, this.disk.initialState().hardState);
  }

  get alive(): boolean {
    return this.raw !== null;
  }

  /** Start (or restart) from disk: a fresh RawNode over a freshly loaded copy of the storage, the app from the snapshot. */
  start(): void {
    assert(this.raw === null, `${this.id} started twice`);
    const old = this.disk;
    const fresh = new MemoryStorage();
    const snap = old.snapshot();
    if (snap.meta.index > 0) fresh.applySnapshot(snap);
    const first = old.firstIndex();
    const last = old.lastIndex();
    if (last >= first && last > snap.meta.index) {
      fresh.append(old.entries(Math.max(first, snap.meta.index + 1), last + 1, Number.MAX_SAFE_INTEGER));
    }
    fresh.setHardState(old.initialState().hardState);
    this.disk = fresh;
    const confState = fresh.initialState().confState;
    this.app = AppState.fromSnapshot(snap, copyConf(confState));
    this.lastSnapshotIndex = snap.meta.index;
    this.checker.observeRestart(this.id, snap.meta.index, this.app.seq);
    // Loading from the snapshot drops the entries a lagging compaction kept before it.
    if (first - 1 < snap.meta.index) this.checker.observeCompact(this.id, snap.meta.index);
    this.checker.verifyStorage(this.id, this.view());
    const t = this.tuning;
    this.raw = new RawNode({
      id: this.id,
      storage: fresh,
      electionTick: t.electionTick,
      heartbeatTick: t.heartbeatTick,
      applied: snap.meta.index,
      preVote: t.preVote,
      checkQuorum: t.checkQuorum,
      maxSizePerMsg: t.maxSizePerMsg,
      maxInflightMsgs: t.maxInflightMsgs,
      maxCommittedSizePerReady: t.maxCommittedSizePerReady,
      maxUncommittedEntries: t.maxUncommittedEntries,
      random: () => this.rng.float(),
      logger: silentLogger,
    });
    const st = this.raw.status();
    this.role = st.role;
    this.term = st.term;
    this.leader = st.leader;
    this.pendingCrash = null;
  }

  /** Lose everything not on disk. */
  crash(where: string): void {
    if (this.raw === null) return;
    this.raw = null;
    this.app = null;
    this.pendingCrash = null;
    this.incarnation++;
    this.role = 'follower';
    this.leader = null;
    this.checker.observeCrash(this.id);
    this.fx.crashed(this.id, where);
  }

  /** Arrange for the node to crash at `point` while handling a later Ready; `at` picks the message/entry for mid-* points. */
  armCrash(point: CrashPoint, at: number): void {
    if (this.raw !== null) this.pendingCrash = { point, at };
  }

  disarmCrash(): void {
    this.pendingCrash = null;
  }

  get crashArmed(): boolean {
    return this.pendingCrash !== null;
  }

  private node(): RawNode {
    assert(this.raw !== null, `${this.id} is down`);
    return this.raw;
  }

  view(): LogView {
    const d = this.disk;
    return {
      firstIndex: () => d.firstIndex(),
      lastIndex: () => d.lastIndex(),
      term: (i) => d.term(i),
      entry: (i) => {
        const e = d.entries(i, i + 1, Number.MAX_SAFE_INTEGER)[0];
        assert(e !== undefined, `storage returned nothing at ${i}`);
        return e;
      },
      hardState: () => d.initialState().hardState,
    };
  }

  status(): Status {
    return this.node().status();
  }

  tick(): void {
    this.node().tick();
    this.drive();
  }

  step(m: Message): void {
    try {
      this.node().step(m);
    } catch (err) {
      // Documented refusals (e.g. a message from a peer it does not know) are not bugs; anything else is.
      if (!(err instanceof RaftError)) throw err;
      this.fx.trace(`${this.id}: step ${m.type} from ${m.from} refused: ${err.code}`);
    }
    this.drive();
  }

  propose(data: Uint8Array): ProposalPosition | RaftError {
    return expectRaftError(() => this.node().propose(data), ['not_leader', 'proposal_dropped']);
  }

  proposeConfChange(cc: ConfChange): ProposalPosition | RaftError {
    return expectRaftError(() => this.node().proposeConfChange(cc), ['not_leader', 'proposal_dropped', 'conf_change_pending']);
  }

  /** Documented refusals (no leader known, too many pending reads) come back as the error. */
  readIndex(ctx: Uint8Array): RaftError | null {
    const r = expectRaftError(() => this.node().readIndex(ctx), ['not_leader', 'proposal_dropped']);
    return r instanceof RaftError ? r : null;
  }

  transferLeader(to: NodeId): RaftError | null {
    const r = expectRaftError(() => this.node().transferLeader(to), ['not_leader', 'invalid_config']);
    return r instanceof RaftError ? r : null;
  }

  reportUnreachable(id: NodeId): void {
    this.node().reportUnreachable(id);
  }

  reportSnapshot(id: NodeId, status: 'finish' | 'failure'): void {
    this.node().reportSnapshot(id, status);
  }

  private crashHere(point: CrashPoint, k = 0): boolean {
    const pc = this.pendingCrash;
    if (pc === null || pc.point !== point || k < pc.at) return false;
    this.crash(`${point}${point.startsWith('mid') ? ` #${k}` : ''}`);
    return true;
  }

  /** Handle every pending Ready: persist, send, apply, advance, with crash points in between. */
  drive(): void {
    // Applying a long committed backlog takes one Ready per maxCommittedSizePerReady; any other Ready must drain.
    let roundsWithoutApply = 0;
    while (this.raw !== null && this.raw.hasReady()) {
      const raw = this.raw;
      const rd = raw.ready();
      if (rd.committedEntries.length === 0) {
        assert(++roundsWithoutApply <= 100, `${this.id}: hasReady() still true after 100 Readys that applied nothing`);
      }
      if (this.crashHere('before-persist')) return;

      // 1. Persist: snapshot, entries, hard state; one fsync, so it is atomic here.
      if (rd.snapshot !== null) this.disk.applySnapshot(rd.snapshot);
      if (rd.entries.length > 0) this.disk.append(rd.entries);
      const hs = rd.hardState !== null && this.forgetVotes ? { ...rd.hardState, vote: null } : rd.hardState;
      if (hs !== null) this.disk.setHardState(hs);
      this.checker.observePersist(this.id, rd.snapshot?.meta ?? null, rd.entries, hs);
      if (rd.snapshot !== null) this.lastSnapshotIndex = rd.snapshot.meta.index;
      if (this.crashHere('after-persist')) return;

      // 2. Send.
      for (let k = 0; k < rd.messages.length; k++) {
        if (this.crashHere('mid-send', k)) return;
        this.fx.send(rd.messages[k] as Message);
      }
      if (this.crashHere('after-send')) return;

      // 3. Apply: snapshot, then committed entries.
      const app = this.app;
      assert(app !== null, `${this.id} has no application while up`);
      if (rd.snapshot !== null) {
        const snap = rd.snapshot;
        this.app = AppState.fromSnapshot(snap, copyConf(snap.meta.confState));
        this.checker.observeApplySnapshot(this.id, snap.meta, this.app.seq);
        this.fx.snapshotApplied(this.id, snap.meta.index);
        this.fx.trace(`${this.id}: applied snapshot ${snap.meta.index}/${snap.meta.term} (${this.app.seq.length} commands)`);
      }
      for (let k = 0; k < rd.committedEntries.length; k++) {
        if (this.crashHere('mid-apply', k)) return;
        this.applyEntry(raw, rd.committedEntries[k] as Entry);
      }
      for (const rs of rd.readStates) this.fx.readState(this.id, rs);
      if (this.crashHere('before-advance')) return;

      // 4. Advance.
      raw.advance(rd);
      if (rd.softState !== null) this.noteRole();
      this.maybeSnapshot();
    }
  }

  /** Cross-check the tracked role with status() (catches a core that changes role without a softState). */
  noteRole(): void {
    const st = this.node().status();
    const changed = st.role !== this.role || st.term !== this.term || st.leader !== this.leader;
    this.role = st.role;
    this.term = st.term;
    this.leader = st.leader;
    this.checker.observeRole(this.id, st.role, st.term);
    if (changed) this.fx.roleChanged(this.id, st.role, st.term, st.leader);
  }

  private applyEntry(raw: RawNode, e: Entry): void {
    const app = this.app;
    assert(app !== null, `${this.id} has no application while up`);
    this.checker.observeApply(this.id, e);
    if (e.type === 'conf-change') {
      const cc = decodeConfChange(e.data);
      const cs = raw.applyConfChange(cc);
      app.confState = copyConf(cs);
      this.fx.confApplied(this.id, cc, cs);
    } else if (e.data.length > 0) {
      const cmdId = decodeCommand(e.data);
      if (!app.seen.has(cmdId)) {
        this.checker.observeCommand(this.id, app.seq.length, cmdId);
        app.seen.add(cmdId);
        app.seq.push(cmdId);
      }
    }
    app.applied = e.index;
    this.checker.observeSeqLength(this.id, e.index, app.seq.length);
    this.fx.applied(this.id, e);
  }

  /** Snapshot the application and compact the log every `snapshotEvery` applied entries. */
  private maybeSnapshot(): void {
    const app = this.app;
    if (app === null || app.applied - this.lastSnapshotIndex < this.tuning.snapshotEvery) return;
    this.disk.createSnapshot(app.applied, copyConf(app.confState), app.encode());
    this.lastSnapshotIndex = app.applied;
    const compactTo = app.applied - this.tuning.compactLag;
    if (compactTo >= this.disk.firstIndex()) {
      this.disk.compact(compactTo);
      this.checker.observeCompact(this.id, compactTo);
    }
    this.fx.trace(`${this.id}: snapshot at ${app.applied}, compacted to ${Math.max(compactTo, this.disk.firstIndex() - 1)}`);
  }
}

function expectRaftError<T>(fn: () => T, codes: readonly string[]): T | RaftError {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RaftError && codes.includes(err.code)) return err;
    throw err;
  }
}
