// The simulator's judge: it is fed every persist, role change, apply, acknowledgement and read of a run,
// keeps its own mirror of each node's disk, and throws SafetyViolation the moment a Raft safety property breaks.

import type { Entry, HardState, NodeId, Role, SnapshotMeta } from '../types.js';

/** The properties the checker enforces; the first five are the Raft paper's Figure 3. */
export type Property =
  | 'election-safety'
  | 'leader-append-only'
  | 'log-matching'
  | 'leader-completeness'
  | 'state-machine-safety'
  /** Persisted hard state: term and commit never go back, one vote per term, commit within the log. */
  | 'hard-state'
  /** Persisted log shape: contiguous batches, no gaps, storage agrees with what was persisted. */
  | 'log-structure'
  /** Committed entries reach the application in order, once, and only after their commit is durable. */
  | 'apply-order'
  /** An entry applied at a proposal's (index, term) is that proposal. */
  | 'proposal-integrity'
  | 'linearizable-read'
  /** Every acknowledged command is applied exactly once, in real-time order, on every member. */
  | 'exactly-once'
  /** After faults stop, the cluster converges (all members applied the same sequence). */
  | 'convergence'
  /** The core threw where it must not (anything but the documented RaftError codes). */
  | 'core-error';

export class SafetyViolation extends Error {
  constructor(
    readonly property: Property,
    readonly detail: string,
  ) {
    super(`${property}: ${detail}`);
    this.name = 'SafetyViolation';
  }
}

/** Read-only view of a node's storage, used to cross-check the core's storage against the checker's mirror. */
export interface LogView {
  firstIndex(): number;
  lastIndex(): number;
  /** Term at i for firstIndex()-1 <= i <= lastIndex(). */
  term(i: number): number;
  entry(i: number): Entry;
  hardState(): HardState;
}

/** A stable string for an entry's content, so entries can be compared across nodes. */
export function entryKey(e: Entry): string {
  let s = e.type === 'normal' ? 'n:' : 'c:';
  const d = e.data;
  for (let i = 0; i < d.length; i++) s += String.fromCharCode(d[i] as number);
  return s;
}

interface NodeMirror {
  /** Index and term of the last entry folded into a snapshot or compacted away (etcd's dummy entry). */
  dummyIndex: number;
  dummyTerm: number;
  /** entries[k].index === dummyIndex + 1 + k */
  entries: Entry[];
  hs: HardState;
  /** Last index handed to the application (snapshot or entry). */
  applied: number;
  /** The latest term in which this node was observed as leader (0 = never). */
  ledTerm: number;
  /** Term of the current leadership, if the node is leader right now. */
  leaderNow: number | null;
  alive: boolean;
}

interface Decided {
  term: number;
  /** Entry content, unknown when learned only from a snapshot's metadata. */
  key: string | null;
  /** An upper bound on the term in which the entry was committed (the observer's term). */
  commitTerm: number;
}

function lastIndexOf(m: NodeMirror): number {
  return m.dummyIndex + m.entries.length;
}

function termAt(m: NodeMirror, i: number): number | undefined {
  if (i === m.dummyIndex) return m.dummyTerm;
  if (i < m.dummyIndex) return undefined;
  return m.entries[i - m.dummyIndex - 1]?.term;
}

export class Checker {
  private readonly nodes = new Map<NodeId, NodeMirror>();
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** (index/term) -> content and the term of the entry before it: log matching, checked inductively. */
  private readonly logRegistry = new Map<string, { key: string; prevTerm: number | undefined }>();
  /** index -> the entry committed there (from durable commits and from applies). */
  private readonly decided = new Map<number, Decided>();
  /** The one true sequence of command ids, as applications append them (position -> id). */
  private readonly canonical: string[] = [];
  /** index -> length of the applied command sequence after applying that index. */
  private readonly seqLengthAt = new Map<number, number>();
  /** Command ids in the order their acknowledgements reached clients. */
  private readonly ackedOrder: string[] = [];
  private readonly acked = new Set<string>();
  /** id -> how many acknowledgements had happened when the command was first issued. */
  private readonly ackedBeforeIssue = new Map<string, number>();
  private readonly reads = new Map<string, number>();
  /** voter -> the latest term it granted a vote in, and to whom: one vote per term (§5.2). */
  private readonly votes = new Map<NodeId, { term: number; candidate: NodeId }>();
  /** Counters, reported with the run so a silently idle simulation shows up. */
  readonly stats = { elections: 0, commits: 0, applies: 0, acks: 0, readsServed: 0, snapshotsApplied: 0, truncations: 0 };

  private fail(property: Property, detail: string): never {
    throw new SafetyViolation(property, detail);
  }

  private mirror(node: NodeId): NodeMirror {
    let m = this.nodes.get(node);
    if (m === undefined) {
      m = {
        dummyIndex: 0,
        dummyTerm: 0,
        entries: [],
        hs: { term: 0, vote: null, commit: 0 },
        applied: 0,
        ledTerm: 0,
        leaderNow: null,
        alive: true,
      };
      this.nodes.set(node, m);
    }
    return m;
  }

  /** The highest committed index any node has made durable or applied. */
  maxDecidedIndex(): number {
    let max = 0;
    for (const i of this.decided.keys()) if (i > max) max = i;
    return max;
  }

  ackCount(): number {
    return this.ackedOrder.length;
  }

  isAcked(cmdId: string): boolean {
    return this.acked.has(cmdId);
  }

  /** What the node made durable from one Ready: snapshot, then entries, then hard state (one fsync). */
  observePersist(node: NodeId, snapshot: SnapshotMeta | null, entries: readonly Entry[], hardState: HardState | null): void {
    const m = this.mirror(node);
    const newTerm = hardState?.term ?? m.hs.term;
    const leaderInThisTerm = m.ledTerm !== 0 && m.ledTerm === newTerm;

    if (snapshot !== null) {
      if (leaderInThisTerm) {
        this.fail('leader-append-only', `${node} was leader in term ${newTerm} and replaced its log with a snapshot at ${snapshot.index}`);
      }
      if (snapshot.index <= m.dummyIndex) {
        this.fail('log-structure', `${node} persisted snapshot ${snapshot.index} not newer than its log start ${m.dummyIndex}`);
      }
      this.decide(snapshot.index, snapshot.term, null, newTerm, `snapshot persisted by ${node}`);
      m.dummyIndex = snapshot.index;
      m.dummyTerm = snapshot.term;
      m.entries = [];
    }

    if (entries.length > 0) this.persistEntries(node, m, entries, newTerm, leaderInThisTerm);

    if (hardState !== null) this.persistHardState(node, m, hardState);
    else if (entries.length > 0 || snapshot !== null) {
      if (m.hs.commit > lastIndexOf(m)) {
        this.fail('hard-state', `${node}: durable commit ${m.hs.commit} is beyond its durable log (last ${lastIndexOf(m)})`);
      }
    }
  }

  private persistEntries(node: NodeId, m: NodeMirror, entries: readonly Entry[], newTerm: number, leaderInThisTerm: boolean): void {
    const first = entries[0] as Entry;
    for (let k = 1; k < entries.length; k++) {
      if ((entries[k] as Entry).index !== first.index + k) {
        this.fail('log-structure', `${node}: Ready.entries not contiguous at ${(entries[k] as Entry).index} (batch starts at ${first.index})`);
      }
    }
    const last = lastIndexOf(m);
    if (first.index > last + 1) {
      this.fail('log-structure', `${node}: Ready.entries start at ${first.index} but the durable log ends at ${last} (gap)`);
    }
    if (leaderInThisTerm) {
      if (first.index !== last + 1) {
        this.fail('leader-append-only', `${node} is leader of term ${newTerm} and rewrote its log from index ${first.index} (last ${last})`);
      }
      for (const e of entries) {
        if (e.term !== newTerm) this.fail('leader-append-only', `${node}, leader of term ${newTerm}, appended an entry of term ${e.term} at ${e.index}`);
      }
    }
    for (const e of entries) {
      if (e.index <= m.dummyIndex) {
        // Already folded into this node's snapshot: must be the committed entry (compacted entries are applied).
        const d = this.decided.get(e.index);
        if (d !== undefined && d.term !== e.term && e.term > d.commitTerm) {
          this.fail('leader-completeness', `${node} received entry ${e.index}/${e.term} below its snapshot, committed there is term ${d.term}`);
        }
        continue;
      }
      const existingTerm = termAt(m, e.index);
      if (existingTerm !== undefined && existingTerm !== e.term) {
        this.stats.truncations++;
        if (e.index <= m.hs.commit) {
          this.fail('state-machine-safety', `${node} overwrote its committed entry ${e.index}/${existingTerm} with term ${e.term} (its commit is ${m.hs.commit})`);
        }
      }
      // An entry of term t at an index committed in an earlier term means the leader of t lacked a committed entry.
      const d = this.decided.get(e.index);
      if (d !== undefined && d.term !== e.term && e.term > d.commitTerm) {
        this.fail('leader-completeness', `entry ${e.index}/${e.term} reached ${node}, but ${e.index}/${d.term} was committed by term ${d.commitTerm}`);
      }
      // Truncate to e.index - 1 and append e.
      m.entries.length = e.index - m.dummyIndex - 1;
      const prevTerm = termAt(m, e.index - 1);
      m.entries.push(e);
      this.register(node, e, prevTerm);
    }
  }

  private register(node: NodeId, e: Entry, prevTerm: number | undefined): void {
    const id = `${e.index}/${e.term}`;
    const key = entryKey(e);
    const seen = this.logRegistry.get(id);
    if (seen === undefined) {
      this.logRegistry.set(id, { key, prevTerm });
      return;
    }
    if (seen.key !== key) {
      this.fail('log-matching', `two different entries exist at index ${e.index} term ${e.term} (seen again on ${node})`);
    }
    if (prevTerm !== undefined && seen.prevTerm !== undefined && prevTerm !== seen.prevTerm) {
      this.fail('log-matching', `entry ${id} on ${node} follows term ${prevTerm}, elsewhere it follows term ${seen.prevTerm}`);
    }
    if (seen.prevTerm === undefined) seen.prevTerm = prevTerm;
  }

  private persistHardState(node: NodeId, m: NodeMirror, hs: HardState): void {
    const old = m.hs;
    if (hs.term < old.term) this.fail('hard-state', `${node}: durable term went back from ${old.term} to ${hs.term}`);
    if (hs.term === old.term && old.vote !== null && hs.vote !== old.vote) {
      this.fail('hard-state', `${node} voted for ${old.vote} and then ${String(hs.vote)} in term ${hs.term}`);
    }
    if (hs.commit < old.commit) this.fail('hard-state', `${node}: durable commit went back from ${old.commit} to ${hs.commit}`);
    const last = lastIndexOf(m);
    if (hs.commit > last) this.fail('hard-state', `${node}: durable commit ${hs.commit} is beyond its durable log (last ${last})`);
    m.hs = hs;
    for (let i = Math.max(old.commit, m.dummyIndex) + 1; i <= hs.commit; i++) {
      const e = m.entries[i - m.dummyIndex - 1] as Entry;
      this.decide(i, e.term, entryKey(e), hs.term, `durable commit on ${node}`);
      this.stats.commits++;
    }
  }

  private decide(index: number, term: number, key: string | null, observerTerm: number, source: string): void {
    const d = this.decided.get(index);
    if (d === undefined) {
      this.decided.set(index, { term, key, commitTerm: observerTerm });
      // Every current leader of a later term must hold this entry.
      for (const [leader, lm] of this.nodes) {
        if (lm.leaderNow === null || lm.leaderNow <= observerTerm || !lm.alive) continue;
        const t = termAt(lm, index);
        if (index > lm.dummyIndex && t !== term) {
          this.fail('leader-completeness', `${index}/${term} committed (${source}) but ${leader}, leader of term ${lm.leaderNow}, has ${t === undefined ? 'no entry' : `term ${t}`} there`);
        }
      }
      return;
    }
    if (d.term !== term || (key !== null && d.key !== null && d.key !== key)) {
      this.fail('state-machine-safety', `index ${index}: committed entry of term ${d.term} conflicts with term ${term} (${source})`);
    }
    if (d.key === null) d.key = key;
    if (observerTerm < d.commitTerm) d.commitTerm = observerTerm;
  }

  /** Compaction drops entries up to `index` (which must be applied) from the node's disk. */
  observeCompact(node: NodeId, index: number): void {
    const m = this.mirror(node);
    if (index > m.applied) this.fail('log-structure', `${node} compacted to ${index} beyond applied ${m.applied}`);
    if (index <= m.dummyIndex) return;
    const t = termAt(m, index);
    if (t === undefined) this.fail('log-structure', `${node} compacted to ${index} beyond its log`);
    m.entries = m.entries.slice(index - m.dummyIndex);
    m.dummyIndex = index;
    m.dummyTerm = t;
  }

  /** The node's role after an event (from Ready.softState or status()). */
  observeRole(node: NodeId, role: Role, term: number): void {
    const m = this.mirror(node);
    if (role !== 'leader') {
      m.leaderNow = null;
      return;
    }
    const holder = this.leaderOfTerm.get(term);
    if (holder !== undefined && holder !== node) {
      this.fail('election-safety', `${node} and ${holder} were both leader in term ${term}`);
    }
    if (m.leaderNow === term) return;
    if (term < m.ledTerm) this.fail('election-safety', `${node} became leader of term ${term} after leading term ${m.ledTerm}`);
    this.leaderOfTerm.set(term, node);
    m.leaderNow = term;
    m.ledTerm = term;
    this.stats.elections++;
    // Leader completeness: everything committed in an earlier term is in the new leader's log.
    const last = lastIndexOf(m);
    for (const [index, d] of this.decided) {
      if (d.commitTerm >= term || index <= m.dummyIndex) continue;
      const t = termAt(m, index);
      if (t !== d.term) {
        this.fail('leader-completeness', `${node} became leader of term ${term} without committed entry ${index}/${d.term} (has ${t === undefined ? `nothing, last ${last}` : `term ${t}`})`);
      }
    }
  }

  /** `voter` sent a granted (non-pre) vote to `candidate` for `term`. */
  observeVoteGranted(voter: NodeId, candidate: NodeId, term: number): void {
    const prev = this.votes.get(voter);
    if (prev !== undefined && prev.term === term && prev.candidate !== candidate) {
      this.fail('election-safety', `${voter} granted its vote in term ${term} to both ${prev.candidate} and ${candidate}`);
    }
    if (prev === undefined || term >= prev.term) this.votes.set(voter, { term, candidate });
  }

  /**
   * The leader's progress: a follower it believes matches up to `match` must hold the leader's entry there on
   * its durable log (acks follow persistence), unless it has since moved to a newer term.
   */
  observeLeaderProgress(leader: NodeId, term: number, progress: Readonly<Record<NodeId, { readonly match: number }>>): void {
    const lm = this.mirror(leader);
    for (const [peer, pr] of Object.entries(progress)) {
      const m = pr.match;
      if (peer === leader || m === 0) continue;
      const fm = this.nodes.get(peer);
      if (fm === undefined || fm.hs.term > term || m <= fm.dummyIndex || m <= lm.dummyIndex) continue;
      const ft = termAt(fm, m);
      const lt = termAt(lm, m);
      if (ft !== lt) {
        this.fail('log-matching', `${leader} (leader, term ${term}) counts ${peer} as matching up to ${m}, but ${peer}'s durable log has ${ft === undefined ? `nothing there (last ${lastIndexOf(fm)})` : `term ${ft}`} vs ${String(lt)}`);
      }
    }
  }

  observeCrash(node: NodeId): void {
    const m = this.mirror(node);
    m.leaderNow = null;
    m.alive = false;
  }

  /** A restarted node's application starts over from its snapshot at `snapshotIndex` holding `seq`. */
  observeRestart(node: NodeId, snapshotIndex: number, seq: readonly string[]): void {
    const m = this.mirror(node);
    m.alive = true;
    m.applied = snapshotIndex;
    this.checkSeqAt(node, snapshotIndex, seq, 'restart');
  }

  /** Cross-check the core's storage against what the node was told to persist. */
  verifyStorage(node: NodeId, view: LogView): void {
    const m = this.mirror(node);
    const first = view.firstIndex();
    const last = view.lastIndex();
    if (first !== m.dummyIndex + 1 || last !== lastIndexOf(m)) {
      this.fail('log-structure', `${node}: storage holds [${first}, ${last}], persisted was [${m.dummyIndex + 1}, ${lastIndexOf(m)}]`);
    }
    if (view.term(first - 1) !== m.dummyTerm) this.fail('log-structure', `${node}: storage term at ${first - 1} is ${view.term(first - 1)}, persisted ${m.dummyTerm}`);
    for (let i = first; i <= last; i++) {
      const want = m.entries[i - first] as Entry;
      const got = view.entry(i);
      if (got.index !== i || got.term !== want.term || entryKey(got) !== entryKey(want)) {
        this.fail('log-structure', `${node}: storage entry ${i} is ${got.index}/${got.term}, persisted ${want.index}/${want.term}`);
      }
    }
    const hs = view.hardState();
    if (hs.term !== m.hs.term || hs.vote !== m.hs.vote || hs.commit !== m.hs.commit) {
      this.fail('log-structure', `${node}: storage hard state ${JSON.stringify(hs)} differs from persisted ${JSON.stringify(m.hs)}`);
    }
  }

  /** A committed entry handed to the node's application. */
  observeApply(node: NodeId, e: Entry): void {
    const m = this.mirror(node);
    if (e.index !== m.applied + 1) this.fail('apply-order', `${node} applied ${e.index} after ${m.applied}`);
    if (e.index > m.hs.commit) this.fail('apply-order', `${node} applied ${e.index} before its commit (${m.hs.commit}) was durable`);
    const own = termAt(m, e.index);
    if (e.index > m.dummyIndex && own !== e.term) {
      this.fail('apply-order', `${node} applied ${e.index}/${e.term} but its log has term ${String(own)} there`);
    }
    m.applied = e.index;
    this.stats.applies++;
    this.decide(e.index, e.term, entryKey(e), m.hs.term, `applied on ${node}`);
  }

  /** The node's application state machine was replaced by a snapshot. */
  observeApplySnapshot(node: NodeId, meta: SnapshotMeta, seq: readonly string[]): void {
    const m = this.mirror(node);
    if (meta.index <= m.applied) this.fail('apply-order', `${node} applied snapshot ${meta.index} at or below applied ${m.applied}`);
    this.decide(meta.index, meta.term, null, m.hs.term, `snapshot applied on ${node}`);
    m.applied = meta.index;
    this.stats.snapshotsApplied++;
    this.checkSeqAt(node, meta.index, seq, 'snapshot');
  }

  /** The application appended command `cmdId` at `position` of its applied sequence. */
  observeCommand(node: NodeId, position: number, cmdId: string): void {
    if (position < this.canonical.length) {
      if (this.canonical[position] !== cmdId) {
        this.fail('state-machine-safety', `${node} applied command ${cmdId} at position ${position}, others applied ${String(this.canonical[position])}`);
      }
      return;
    }
    if (position !== this.canonical.length) this.fail('state-machine-safety', `${node} applied position ${position}, beyond any known (${this.canonical.length})`);
    this.canonical.push(cmdId);
  }

  /** After applying `index` the node's command sequence has `length` entries. */
  observeSeqLength(node: NodeId, index: number, length: number): void {
    const known = this.seqLengthAt.get(index);
    if (known === undefined) this.seqLengthAt.set(index, length);
    else if (known !== length) this.fail('state-machine-safety', `${node} has ${length} commands after index ${index}, another node had ${known}`);
  }

  private checkSeqAt(node: NodeId, index: number, seq: readonly string[], what: string): void {
    const known = this.seqLengthAt.get(index);
    if (known !== undefined && known !== seq.length) {
      this.fail('state-machine-safety', `${node}'s ${what} at index ${index} holds ${seq.length} commands, applied state there had ${known}`);
    }
    if (known === undefined) this.seqLengthAt.set(index, seq.length);
    for (let p = 0; p < seq.length; p++) this.observeCommand(node, p, seq[p] as string);
  }

  /** A proposal accepted at `pos` saw `applied` land at that index on the proposing node. */
  observeProposalOutcome(node: NodeId, pos: { index: number; term: number }, proposedKey: string, applied: Entry): boolean {
    if (applied.index !== pos.index) this.fail('proposal-integrity', `${node}: outcome for ${pos.index} checked against entry ${applied.index}`);
    if (applied.term !== pos.term) return false;
    if (entryKey(applied) !== proposedKey) {
      this.fail('proposal-integrity', `${node} accepted a proposal at ${pos.index}/${pos.term} but applied a different entry there`);
    }
    return true;
  }

  observeIssue(cmdId: string): void {
    if (!this.ackedBeforeIssue.has(cmdId)) this.ackedBeforeIssue.set(cmdId, this.ackedOrder.length);
  }

  observeAck(cmdId: string): void {
    if (this.acked.has(cmdId)) return;
    if (!this.ackedBeforeIssue.has(cmdId)) this.fail('exactly-once', `command ${cmdId} acknowledged but never issued`);
    this.acked.add(cmdId);
    this.ackedOrder.push(cmdId);
    this.stats.acks++;
  }

  observeReadIssued(readId: string): void {
    this.reads.set(readId, this.ackedOrder.length);
  }

  /** A read served from `node`'s state at applied index `appliedIndex`: it must see every write acknowledged before it was issued. */
  observeReadServed(readId: string, node: NodeId, readIndex: number, appliedIndex: number, has: (cmdId: string) => boolean): void {
    const before = this.reads.get(readId);
    if (before === undefined) this.fail('linearizable-read', `read ${readId} served but never issued`);
    if (appliedIndex < readIndex) this.fail('linearizable-read', `read ${readId} served on ${node} at applied ${appliedIndex} < read index ${readIndex}`);
    for (let k = 0; k < before; k++) {
      const id = this.ackedOrder[k] as string;
      if (!has(id)) {
        this.fail('linearizable-read', `read ${readId} on ${node} (read index ${readIndex}, applied ${appliedIndex}) misses ${id}, acknowledged before the read was issued`);
      }
    }
    this.reads.delete(readId);
    this.stats.readsServed++;
  }

  observeReadAbandoned(readId: string): void {
    this.reads.delete(readId);
  }

  /** End of a run: every member applied the same sequence, holding each acknowledged command once, in real-time order. */
  finalCheck(members: readonly { id: NodeId; seq: readonly string[] }[]): void {
    if (members.length === 0) this.fail('convergence', 'no live members at the end of the run');
    const ref = members[0] as { id: NodeId; seq: readonly string[] };
    for (const n of members) {
      if (n.seq.length !== ref.seq.length || n.seq.some((id, p) => id !== ref.seq[p])) {
        this.fail('convergence', `${n.id} applied ${n.seq.length} commands, ${ref.id} applied ${ref.seq.length}; sequences differ`);
      }
    }
    const pos = new Map<string, number>();
    ref.seq.forEach((id, p) => {
      if (pos.has(id)) this.fail('exactly-once', `${id} applied twice (positions ${String(pos.get(id))} and ${p}) on ${ref.id}`);
      pos.set(id, p);
    });
    for (const id of this.ackedOrder) {
      if (!pos.has(id)) this.fail('exactly-once', `acknowledged command ${id} is not applied on ${ref.id}`);
    }
    // Real-time order: a command acknowledged before another was first issued comes first.
    const prefixMaxPos: number[] = [];
    let maxPos = -1;
    for (const id of this.ackedOrder) {
      maxPos = Math.max(maxPos, pos.get(id) as number);
      prefixMaxPos.push(maxPos);
    }
    for (const [id, before] of this.ackedBeforeIssue) {
      const p = pos.get(id);
      if (p === undefined || before === 0) continue;
      const earlier = prefixMaxPos[before - 1] as number;
      if (earlier > p) {
        this.fail('exactly-once', `${id} was issued after ${String(ref.seq[earlier])} was acknowledged, but applied before it`);
      }
    }
  }
}
