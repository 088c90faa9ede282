// The Raft consensus state machine (Ongaro & Ousterhout, and the thesis for PreVote, CheckQuorum, leadership
// transfer, ReadIndex and single-server membership). Pure: driven only by tick() and step(); output is collected
// in msgs/readStates and the log's unstable part, handed to the host by RawNode.

import { assert } from './assert.js';
import { applyConfChangeToState, encodeConfChange, validateConfChange } from './confchange.js';
import { RaftLog } from './log.js';
import { Progress } from './progress.js';
import { committedIndex, hasQuorum, voteResult } from './quorum.js';
import { ReadOnly } from './read-only.js';
import {
  RaftError,
  silentLogger,
  type ConfChange,
  type ConfState,
  type Entry,
  type EntryType,
  type HardState,
  type Message,
  type NodeId,
  type ProposalPosition,
  type RaftConfig,
  type RaftLogger,
  type ReadState,
  type Role,
  type SoftState,
  type Snapshot,
  type Status,
} from './types.js';

export const DEFAULT_MAX_SIZE_PER_MSG = 1024 * 1024;
export const DEFAULT_MAX_INFLIGHT_MSGS = 256;
export const DEFAULT_MAX_COMMITTED_SIZE_PER_READY = 16 * 1024 * 1024;
export const DEFAULT_MAX_UNCOMMITTED_ENTRIES = 65536;
/** Bound on ReadIndex requests waiting for a heartbeat round or for the first commit of the term. */
export const MAX_PENDING_READS = 4096;

const EMPTY = new Uint8Array(0);

type VoteMessage = Extract<Message, { type: 'vote' | 'pre-vote' }>;
type AppendMessage = Extract<Message, { type: 'append' }>;
type AppendRespMessage = Extract<Message, { type: 'append-resp' }>;
type HeartbeatMessage = Extract<Message, { type: 'heartbeat' }>;
type SnapshotMessage = Extract<Message, { type: 'snapshot' }>;

interface PendingRead {
  readonly from: NodeId;
  readonly context: Uint8Array;
}

export class Raft {
  readonly id: NodeId;
  readonly log: RaftLog;
  readonly logger: RaftLogger;

  term = 0;
  vote: NodeId | null = null;
  lead: NodeId | null = null;
  role: Role = 'follower';

  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  /** Progress of every member (voters and learners), self included. Meaningful on the leader. */
  prs = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();

  msgs: Message[] = [];
  readStates: ReadState[] = [];

  readonly electionTimeout: number;
  readonly heartbeatTimeout: number;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;

  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxSizePerMsg: number;
  readonly maxInflight: number;
  readonly maxUncommittedEntries: number;
  private readonly random: () => number;

  leadTransferee: NodeId | null = null;
  /** Index of the latest conf-change entry proposed (or possibly present) in the log; a new one waits until applied. */
  pendingConfIndex = 0;
  readOnly = new ReadOnly(MAX_PENDING_READS);
  /** ReadIndex requests that arrived before this leader committed an entry of its term. */
  pendingReads: PendingRead[] = [];
  /** Entries were proposed since the last broadcast: send them (batched) when the host collects messages. */
  private appendsPending = false;

  constructor(cfg: RaftConfig) {
    if (cfg.id === '') throw new RaftError('invalid_config', 'config.id must not be empty');
    if (!Number.isInteger(cfg.heartbeatTick) || cfg.heartbeatTick <= 0) {
      throw new RaftError('invalid_config', 'config.heartbeatTick must be a positive integer');
    }
    if (!Number.isInteger(cfg.electionTick) || cfg.electionTick <= cfg.heartbeatTick) {
      throw new RaftError('invalid_config', 'config.electionTick must be an integer greater than heartbeatTick');
    }
    this.id = cfg.id;
    this.logger = cfg.logger ?? silentLogger;
    this.electionTimeout = cfg.electionTick;
    this.heartbeatTimeout = cfg.heartbeatTick;
    this.preVote = cfg.preVote ?? false;
    this.checkQuorum = cfg.checkQuorum ?? false;
    this.maxSizePerMsg = positive(cfg.maxSizePerMsg, DEFAULT_MAX_SIZE_PER_MSG, 'maxSizePerMsg');
    this.maxInflight = positive(cfg.maxInflightMsgs, DEFAULT_MAX_INFLIGHT_MSGS, 'maxInflightMsgs');
    this.maxUncommittedEntries = positive(cfg.maxUncommittedEntries, DEFAULT_MAX_UNCOMMITTED_ENTRIES, 'maxUncommittedEntries');
    this.random = cfg.random;

    const { hardState, confState } = cfg.storage.initialState();
    // The application restarts from the storage's snapshot: entries after it (even if still in the log) are
    // handed out again unless the host says it applied them. Entries below the compaction point cannot be.
    const applied = Math.max(cfg.applied ?? 0, cfg.storage.snapshot().meta.index, cfg.storage.firstIndex() - 1);
    if (applied > hardState.commit) {
      throw new RaftError('invalid_config', `config.applied ${applied} is past the stored commit ${hardState.commit}`);
    }
    this.log = new RaftLog(cfg.storage, hardState.commit, applied);
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.resetConfState(confState);
    this.becomeFollower(this.term, null);
    this.logger.info({ node: this.id, term: this.term, commit: this.log.committed, applied, lastIndex: this.log.lastIndex() }, 'raft: started');
  }

  // ---------------------------------------------------------------- state views

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { leader: this.lead, role: this.role };
  }

  confState(): ConfState {
    return { voters: [...this.voters].sort(), learners: [...this.learners].sort() };
  }

  status(): Status {
    const progress: Record<NodeId, { match: number; next: number; state: 'probe' | 'replicate' | 'snapshot' }> = {};
    if (this.role === 'leader') {
      for (const [id, pr] of this.prs) progress[id] = { match: pr.match, next: pr.next, state: pr.state };
    }
    return {
      id: this.id,
      role: this.role,
      leader: this.lead,
      term: this.term,
      vote: this.vote,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      confState: this.confState(),
      progress,
      leadTransferee: this.leadTransferee,
    };
  }

  /** A voter with no snapshot waiting to be persisted may start elections; learners and non-members never. */
  promotable(): boolean {
    return this.voters.has(this.id) && this.log.unstable.snapshot === null;
  }

  /** Messages produced so far (flushing batched appends first); the caller takes ownership. */
  takeMessages(): Message[] {
    this.flushAppends();
    const out = this.msgs;
    this.msgs = [];
    return out;
  }

  flushAppends(): void {
    if (!this.appendsPending) return;
    this.appendsPending = false;
    if (this.role === 'leader') this.bcastAppend(false);
  }

  hasPendingAppends(): boolean {
    return this.appendsPending;
  }

  // ---------------------------------------------------------------- role transitions

  private resetRandomizedElectionTimeout(): void {
    let r = this.random();
    if (!(r >= 0 && r < 1)) r = 0; // a bad random source must not break the [T, 2T) bound
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(r * this.electionTimeout);
    assert(
      this.randomizedElectionTimeout >= this.electionTimeout && this.randomizedElectionTimeout < 2 * this.electionTimeout,
      'randomized election timeout out of [T, 2T)',
    );
  }

  private reset(term: number): void {
    assert(term >= this.term, `term must never decrease (${this.term} -> ${term})`);
    if (term !== this.term) {
      this.term = term;
      this.vote = null;
    }
    this.lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = null;
    this.votes.clear();
    const lastIndex = this.log.lastIndex();
    for (const [id, old] of this.prs) {
      const pr = new Progress(lastIndex + 1, this.maxInflight, old.isLearner);
      if (id === this.id) pr.match = lastIndex;
      this.prs.set(id, pr);
    }
    this.pendingConfIndex = 0;
    this.readOnly = new ReadOnly(MAX_PENDING_READS);
    this.pendingReads = [];
    this.appendsPending = false;
  }

  becomeFollower(term: number, lead: NodeId | null): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become pre-candidate');
    // Neither the term nor the vote changes: that is the point of PreVote.
    this.role = 'pre-candidate';
    this.votes.clear();
    this.lead = null;
    this.electionElapsed = 0;
    this.resetRandomizedElectionTimeout();
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', 'only a candidate can become leader');
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    const self = this.prs.get(this.id);
    assert(self !== undefined, 'leader is not a member');
    self.becomeReplicate();
    self.recentActive = true;
    // Conservatively treat the uncommitted tail as holding a conf change: no new one until it is applied.
    this.pendingConfIndex = this.log.lastIndex();
    // §5.4.2 / §8: a no-op of the new term lets earlier entries commit and makes ReadIndex possible.
    this.appendEntries([{ type: 'normal', data: EMPTY }]);
    this.logger.info({ node: this.id, term: this.term, lastIndex: this.log.lastIndex() }, 'raft: became leader');
  }

  // ---------------------------------------------------------------- elections

  /** Start an election if allowed (a no-op for leaders, learners, non-members and with unapplied conf changes). */
  hup(transfer: boolean): void {
    if (this.role === 'leader') return;
    if (!this.promotable()) {
      this.logger.debug({ node: this.id }, 'raft: not promotable, not campaigning');
      return;
    }
    if (this.log.hasPendingConfChange()) {
      this.logger.warn({ node: this.id }, 'raft: committed conf change not yet applied, not campaigning');
      return;
    }
    if (this.preVote && !transfer) this.campaign('pre-vote', false);
    else this.campaign('vote', transfer);
  }

  private campaign(kind: 'pre-vote' | 'vote', transfer: boolean): void {
    let voteTerm: number;
    if (kind === 'pre-vote') {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
    }
    this.votes.set(this.id, true);
    if (voteResult(this.voters, this.votes) === 'won') {
      // Single voter: nobody else to ask.
      if (kind === 'pre-vote') this.campaign('vote', transfer);
      else this.winElection();
      return;
    }
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    for (const id of this.voters) {
      if (id === this.id) continue;
      this.msgs.push({ type: kind, from: this.id, to: id, term: voteTerm, index, logTerm, transfer });
    }
  }

  private winElection(): void {
    this.becomeLeader();
    this.bcastAppend(true);
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.quorumActive()) {
        this.logger.warn({ node: this.id, term: this.term }, 'raft: leader lost contact with a quorum, stepping down');
        this.becomeFollower(this.term, null);
        return;
      }
      // A transfer that has not finished within an election timeout is abandoned.
      if (this.leadTransferee !== null) this.abortLeaderTransfer();
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readOnly.lastPendingContext());
    }
  }

  /** CheckQuorum: did a majority of voters talk to us since the last round? Resets the activity marks. */
  private quorumActive(): boolean {
    const ok = hasQuorum(this.voters, (id) => id === this.id || this.prs.get(id)?.recentActive === true);
    for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false;
    return ok;
  }

  // ---------------------------------------------------------------- step

  step(m: Message): void {
    if (m.to !== this.id || m.from === this.id) return;
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'pre-vote') {
        // Leader lease: a node that heard from a live leader within the minimum election timeout ignores
        // campaigns (always for pre-votes, thesis §9.6; for votes only with CheckQuorum), unless the campaign
        // comes from a leadership transfer.
        const inLease = this.lead !== null && this.electionElapsed < this.electionTimeout;
        if (!m.transfer && inLease && (m.type === 'pre-vote' || this.checkQuorum)) return;
      }
      if (m.type === 'pre-vote') {
        // A pre-vote never changes our term.
      } else if (m.type === 'pre-vote-resp' && !m.reject) {
        // The term is bumped only when a pre-vote quorum is reached.
      } else if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
        this.becomeFollower(m.term, m.from);
      } else if (m.type === 'vote' && this.role === 'follower') {
        // Raft Figure 2: only a granted vote restarts the election timer. Restarting it on every higher-term vote
        // we reject lets candidates that cannot win starve the one voter that can (simulator seed 95033).
        const elapsed = this.electionElapsed;
        const timeout = this.randomizedElectionTimeout;
        this.becomeFollower(m.term, null);
        this.electionElapsed = elapsed;
        this.randomizedElectionTimeout = timeout;
      } else {
        this.becomeFollower(m.term, null);
      }
    } else if (m.term < this.term) {
      if (m.type === 'append' || m.type === 'heartbeat') {
        // §5.1: reject with our term, so a stale leader (e.g. back from a partition) steps down. Always, not only
        // with CheckQuorum/PreVote as in etcd: a node whose term grew while it held a stale configuration sends
        // its votes to the wrong peers, and this reply is then the only way the cluster learns its term.
        // Removed nodes get no appends, so they cannot disrupt the cluster through this path.
        this.send({ type: 'append-resp', from: this.id, to: m.from, term: this.term, index: 0, reject: false, rejectHint: 0, logTerm: 0 });
      } else if (m.type === 'pre-vote') {
        this.send({ type: 'pre-vote-resp', from: this.id, to: m.from, term: this.term, reject: true });
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'pre-vote') {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'pre-candidate':
        this.stepCandidate(m);
        break;
      case 'follower':
        this.stepFollower(m);
        break;
    }
  }

  private send(m: Message): void {
    this.msgs.push(m);
  }

  private handleVoteRequest(m: VoteMessage): void {
    const respType = m.type === 'vote' ? 'vote-resp' : 'pre-vote-resp';
    // §5.2: one vote per term (re-granting to the same candidate is fine); a pre-vote for a future term is not a vote.
    const canVote = this.vote === m.from || (this.vote === null && this.lead === null) || (m.type === 'pre-vote' && m.term > this.term);
    // §5.4.1: only for a candidate whose log is at least as up-to-date as ours.
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      this.send({ type: respType, from: this.id, to: m.from, term: m.term, reject: false });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'append-resp':
        this.handleAppendResp(m);
        return;
      case 'heartbeat-resp': {
        const pr = this.prs.get(m.from);
        if (pr === undefined) return;
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        // Appends may have been lost with a full window: free a slot so replication cannot stall forever.
        if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.log.lastIndex() || pr.state === 'probe') this.sendAppend(m.from);
        if (m.context !== null) this.recvReadAck(m.from, m.context);
        return;
      }
      case 'read-index':
        if (!this.handleReadIndex(m.from, m.context)) {
          this.logger.warn({ node: this.id, from: m.from }, 'raft: read-index queue full, dropping forwarded request');
        }
        return;
      default:
        return; // nothing else is meaningful for a leader at its own term
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'vote-resp':
      case 'pre-vote-resp': {
        const expected = this.role === 'pre-candidate' ? 'pre-vote-resp' : 'vote-resp';
        if (m.type !== expected) return;
        if (!this.votes.has(m.from)) this.votes.set(m.from, !m.reject);
        const res = voteResult(this.voters, this.votes);
        if (res === 'won') {
          if (this.role === 'pre-candidate') this.campaign('vote', false);
          else this.winElection();
        } else if (res === 'lost') {
          this.becomeFollower(this.term, null);
        }
        return;
      }
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'timeout-now':
        // Leadership transfer: campaign at once, skipping pre-vote and bypassing leases.
        this.hup(true);
        return;
      case 'read-index-resp':
        this.readStates.push({ index: m.index, context: m.context });
        return;
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- follower handlers

  private handleAppend(m: AppendMessage): void {
    // Outside data: entries must continue right after (index, logTerm), contiguously. Drop a malformed append
    // rather than corrupt the log; the leader will retry.
    for (let k = 0; k < m.entries.length; k++) {
      const e = m.entries[k];
      if (e === undefined || e.index !== m.index + 1 + k || e.term > m.term || e.term < m.logTerm) {
        this.logger.warn({ node: this.id, from: m.from, index: m.index }, 'raft: dropping malformed append');
        return;
      }
    }
    if (m.index < this.log.committed) {
      this.send({ type: 'append-resp', from: this.id, to: m.from, term: this.term, index: this.log.committed, reject: false, rejectHint: 0, logTerm: 0 });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== null) {
      this.send({ type: 'append-resp', from: this.id, to: m.from, term: this.term, index: lastNew, reject: false, rejectHint: 0, logTerm: 0 });
      return;
    }
    // Reject with a hint: the last index whose term is <= the leader's logTerm at m.index, so the leader can skip
    // every entry of a conflicting term in one round trip.
    const hintIndex = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    const hintTerm = this.log.termOrZero(hintIndex);
    this.send({ type: 'append-resp', from: this.id, to: m.from, term: this.term, index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm });
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    this.log.commitTo(m.commit);
    this.send({ type: 'heartbeat-resp', from: this.id, to: m.from, term: this.term, context: m.context });
  }

  private handleSnapshot(m: SnapshotMessage): void {
    const index = this.restore(m.snapshot) ? this.log.lastIndex() : this.log.committed;
    this.send({ type: 'append-resp', from: this.id, to: m.from, term: this.term, index, reject: false, rejectHint: 0, logTerm: 0 });
  }

  /** Install a leader's snapshot; false when we already have (and committed) what it covers. */
  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    assert(this.role === 'follower', 'only a follower restores a snapshot');
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // We hold the entry: just learn that it is committed.
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.resetConfState(s.meta.confState);
    this.logger.info({ node: this.id, index: s.meta.index, term: s.meta.term }, 'raft: restored snapshot');
    return true;
  }

  // ---------------------------------------------------------------- leader: replication

  /** Leader appends entries of its term at the end of its log (never truncating it). */
  private appendEntries(es: readonly { type: EntryType; data: Uint8Array }[]): number {
    const li = this.log.lastIndex();
    const ents: Entry[] = es.map((e, k) => ({ term: this.term, index: li + 1 + k, type: e.type, data: e.data }));
    const last = this.log.append(ents);
    assert(last === li + es.length, 'a leader never truncates its own log');
    const self = this.prs.get(this.id);
    if (self !== undefined) self.maybeUpdate(last);
    this.maybeCommit();
    return last;
  }

  /** Advance commit to the highest index a quorum matches, if it is of our term (§5.4.2). */
  private maybeCommit(): boolean {
    const mci = committedIndex(this.voters, (id) => this.prs.get(id)?.match ?? 0);
    const before = this.log.committed;
    const changed = this.log.maybeCommit(mci, this.term);
    assert(this.log.committed >= before, 'commit never decreases');
    if (changed) this.releasePendingReads();
    return changed;
  }

  private bcastAppend(sendIfEmpty: boolean): void {
    for (const id of this.prs.keys()) {
      if (id === this.id) continue;
      if (sendIfEmpty) this.sendAppend(id);
      else while (this.maybeSendAppend(id, false)) { /* fill the window */ }
    }
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /** Sends one append (or a snapshot) to `to` if its flow control allows; true if something was sent. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const lastIndex = this.log.lastIndex();
    assert(prevIndex <= lastIndex, `progress next ${pr.next} of ${to} is past the leader's last index ${lastIndex}`);
    if (prevIndex < this.log.firstIndex() - 1) return this.maybeSendSnapshot(to, pr);
    const prevTerm = this.log.term(prevIndex);
    const ents = pr.next <= lastIndex ? this.log.entries(pr.next, this.maxSizePerMsg) : [];
    if (ents.length === 0 && !sendIfEmpty) return false;
    const lastEnt = ents[ents.length - 1];
    pr.sentEntries(ents.length, lastEnt === undefined ? prevIndex : lastEnt.index);
    this.send({ type: 'append', from: this.id, to, term: this.term, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.log.committed });
    return true;
  }

  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    // Only to a peer we know is alive: a snapshot is large.
    if (!pr.recentActive) return false;
    const snap = this.log.snapshot();
    if (snap.meta.index === 0) {
      this.logger.warn({ node: this.id, to }, 'raft: peer needs compacted entries but no snapshot is available');
      return false;
    }
    pr.becomeSnapshot(snap.meta.index);
    this.send({ type: 'snapshot', from: this.id, to, term: this.term, snapshot: snap });
    return true;
  }

  private bcastHeartbeat(context: Uint8Array | null): void {
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      // Never tell a follower to commit past what it is known to hold.
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: 'heartbeat', from: this.id, to: id, term: this.term, commit, context });
    }
  }

  private handleAppendResp(m: AppendRespMessage): void {
    const pr = this.prs.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.reject) {
      let nextProbe = m.rejectHint;
      if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm);
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    if (m.index > this.log.lastIndex()) return; // cannot match what we never had: ignore
    const oldPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot') {
      if (pr.match + 1 >= this.log.firstIndex()) {
        pr.becomeProbe();
        pr.becomeReplicate();
      }
    } else pr.inflights.freeLE(m.index);

    if (this.maybeCommit()) this.bcastAppend(true);
    else if (oldPaused) this.sendAppend(m.from);
    while (this.maybeSendAppend(m.from, false)) { /* pipeline up to the window */ }

    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: 'timeout-now', from: this.id, to: m.from, term: this.term });
    }
  }

  // ---------------------------------------------------------------- proposals

  propose(type: EntryType, data: Uint8Array): ProposalPosition {
    if (this.role !== 'leader') {
      throw new RaftError('not_leader', 'this node is not the leader: send the proposal to the leader', this.lead);
    }
    if (!this.prs.has(this.id)) throw new RaftError('proposal_dropped', 'this leader has been removed from the cluster');
    if (this.leadTransferee !== null) {
      throw new RaftError('proposal_dropped', `leadership is being transferred to ${this.leadTransferee}: retry shortly`);
    }
    if (this.log.lastIndex() - this.log.committed + 1 > this.maxUncommittedEntries) {
      throw new RaftError('proposal_dropped', `over ${this.maxUncommittedEntries} uncommitted entries: retry when the cluster catches up`);
    }
    const index = this.appendEntries([{ type, data }]);
    this.appendsPending = true;
    return { index, term: this.term };
  }

  proposeConfChange(cc: ConfChange): ProposalPosition {
    if (this.role !== 'leader') {
      throw new RaftError('not_leader', 'this node is not the leader: send the conf change to the leader', this.lead);
    }
    if (this.pendingConfIndex > this.log.applied) {
      throw new RaftError('conf_change_pending', `a conf change at index ${this.pendingConfIndex} is not applied yet (applied ${this.log.applied})`);
    }
    validateConfChange(this.confState(), cc);
    const pos = this.propose('conf-change', encodeConfChange(cc));
    this.pendingConfIndex = pos.index;
    return pos;
  }

  // ---------------------------------------------------------------- membership

  /** Rebuild membership from scratch (start-up and snapshot restore). */
  private resetConfState(cs: ConfState): void {
    this.voters = new Set(cs.voters);
    this.learners = new Set(cs.learners);
    for (const id of this.learners) assert(!this.voters.has(id), `${id} is both voter and learner`);
    this.prs = new Map();
    const next = this.log.lastIndex() + 1;
    for (const id of [...this.voters, ...this.learners]) {
      const pr = new Progress(next, this.maxInflight, this.learners.has(id));
      if (id === this.id) pr.match = next - 1;
      this.prs.set(id, pr);
    }
  }

  /** The host applies a committed conf-change entry. */
  applyConfChange(cc: ConfChange): ConfState {
    const cs = applyConfChangeToState(this.confState(), cc);
    this.voters = new Set(cs.voters);
    this.learners = new Set(cs.learners);
    const next = this.log.lastIndex() + 1;
    for (const id of [...cs.voters, ...cs.learners]) {
      const existing = this.prs.get(id);
      if (existing !== undefined) {
        existing.isLearner = this.learners.has(id);
        continue;
      }
      const pr = new Progress(next, this.maxInflight, this.learners.has(id));
      // A new member is assumed alive so that it can be sent a snapshot right away.
      pr.recentActive = true;
      if (id === this.id) pr.match = next - 1;
      this.prs.set(id, pr);
    }
    for (const id of [...this.prs.keys()]) {
      if (!this.voters.has(id) && !this.learners.has(id)) this.prs.delete(id);
    }
    this.logger.info({ node: this.id, change: cc, voters: cs.voters, learners: cs.learners }, 'raft: applied conf change');

    if (this.role === 'leader' && !this.voters.has(this.id)) {
      // Removed (or demoted): a leader outside the voters must not keep leading.
      this.becomeFollower(this.term, null);
      return cs;
    }
    if (this.role !== 'leader' || this.voters.size === 0) return cs;
    // The quorum changed: commit may advance, and new members need the log.
    if (this.maybeCommit()) this.bcastAppend(true);
    else this.bcastAppend(false);
    if (this.leadTransferee !== null && !this.voters.has(this.leadTransferee)) this.abortLeaderTransfer();
    return cs;
  }

  // ---------------------------------------------------------------- leadership transfer

  transferLeader(to: NodeId): void {
    if (this.role !== 'leader') throw new RaftError('not_leader', 'only the leader can transfer leadership', this.lead);
    if (!this.voters.has(to)) throw new RaftError('invalid_config', `${to} is not a voter: it cannot become leader`);
    if (this.leadTransferee !== null) {
      if (this.leadTransferee === to) return;
      this.abortLeaderTransfer();
    }
    if (to === this.id) return;
    // The transfer must finish within one election timeout.
    this.electionElapsed = 0;
    this.leadTransferee = to;
    const pr = this.prs.get(to);
    assert(pr !== undefined, 'voter without progress');
    if (pr.match === this.log.lastIndex()) this.send({ type: 'timeout-now', from: this.id, to, term: this.term });
    else this.sendAppend(to);
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = null;
  }

  // ---------------------------------------------------------------- flow-control reports from the host

  reportUnreachable(id: NodeId): void {
    if (this.role !== 'leader') return;
    const pr = this.prs.get(id);
    // Appends in flight were probably lost: fall back to probing.
    if (pr !== undefined && pr.state === 'replicate') pr.becomeProbe();
  }

  reportSnapshot(id: NodeId, outcome: 'finish' | 'failure'): void {
    if (this.role !== 'leader') return;
    const pr = this.prs.get(id);
    if (pr === undefined || pr.state !== 'snapshot') return;
    if (outcome === 'failure') pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the peer's next heartbeat response before probing again.
    pr.msgAppFlowPaused = true;
  }

  // ---------------------------------------------------------------- ReadIndex (thesis §6.4)

  /** A local ReadIndex request. */
  readIndex(context: Uint8Array): void {
    if (this.role === 'leader') {
      if (!this.handleReadIndex(this.id, context)) {
        throw new RaftError('proposal_dropped', `over ${MAX_PENDING_READS} pending reads: retry shortly`);
      }
      return;
    }
    if (this.lead === null) throw new RaftError('not_leader', 'no leader is known: retry after an election');
    this.send({ type: 'read-index', from: this.id, to: this.lead, term: this.term, context });
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  /** Leader: handle a read for `from`; false when the bounded queues are full. */
  private handleReadIndex(from: NodeId, context: Uint8Array): boolean {
    if (this.voters.size === 1 && this.voters.has(this.id)) {
      // Single voter: our leadership needs no confirmation.
      this.respondRead(from, this.log.committed, context);
      return true;
    }
    if (!this.committedEntryInCurrentTerm()) {
      // Our commit index may lag the true one until an entry of our term commits: answer later.
      if (this.pendingReads.length >= MAX_PENDING_READS) return false;
      this.pendingReads.push({ from, context });
      return true;
    }
    return this.startReadRound(from, context);
  }

  private startReadRound(from: NodeId, context: Uint8Array): boolean {
    if (this.readOnly.full()) return false;
    if (!this.readOnly.add(this.log.committed, from, context)) return true; // same context already pending
    this.readOnly.recvAck(this.id, context);
    this.bcastHeartbeat(context);
    return true;
  }

  private releasePendingReads(): void {
    if (this.pendingReads.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const reads = this.pendingReads;
    this.pendingReads = [];
    for (const r of reads) {
      if (!this.startReadRound(r.from, r.context)) {
        this.logger.warn({ node: this.id, from: r.from }, 'raft: read-index queue full, dropping request');
      }
    }
  }

  private recvReadAck(from: NodeId, context: Uint8Array): void {
    if (this.readOnly.size() === 0) return;
    const acks = this.readOnly.recvAck(from, context);
    if (acks === null || !hasQuorum(this.voters, (id) => acks.has(id))) return;
    for (const rs of this.readOnly.advance(context)) this.respondRead(rs.from, rs.index, rs.context);
  }

  private respondRead(to: NodeId, index: number, context: Uint8Array): void {
    if (to === this.id) this.readStates.push({ index, context });
    else this.send({ type: 'read-index-resp', from: this.id, to, term: this.term, index, context });
  }
}

function positive(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  if (!(v > 0)) throw new RaftError('invalid_config', `config.${name} must be positive, got ${v}`);
  return v;
}
