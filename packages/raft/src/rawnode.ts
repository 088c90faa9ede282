// RawNode: the host-facing wrapper of the Raft state machine. The host drives it with tick()/step()/propose()
// and drains it with ready()/advance(); RawNode tracks what was already handed out.

import { assert } from './assert.js';
import { Raft, DEFAULT_MAX_COMMITTED_SIZE_PER_READY } from './raft.js';
import {
  RaftError,
  type ConfChange,
  type ConfState,
  type HardState,
  type Message,
  type NodeId,
  type ProposalPosition,
  type RaftConfig,
  type Ready,
  type SoftState,
  type Status,
} from './types.js';

/**
 * Host contract (beyond the order documented on Ready):
 * - call advance(rd) before the next ready(); step()/tick()/propose() may be called in between;
 * - persist into the MemoryStorage given in the config (append entries, setHardState, applySnapshot) before advance;
 * - call applyConfChange() when applying a committed 'conf-change' entry, in log order (also when replaying);
 * - compact storage only up to a snapshot index created with createSnapshot (a follower that needs compacted
 *   entries is sent storage.snapshot(), which must cover them);
 * - on restart, pass `applied` only if the application state really includes those entries; by default the
 *   entries after the storage snapshot are handed out again.
 */
export class RawNode {
  /** The state machine itself; exposed for tests and the simulator's invariant checks. */
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private readonly maxCommittedSizePerReady: number;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
    const max = config.maxCommittedSizePerReady ?? DEFAULT_MAX_COMMITTED_SIZE_PER_READY;
    if (!(max > 0)) throw new RaftError('invalid_config', 'config.maxCommittedSizePerReady must be positive');
    this.maxCommittedSizePerReady = max;
  }

  tick(): void {
    this.raft.tick();
  }

  campaign(): void {
    this.raft.hup(false);
  }

  step(m: Message): void {
    if (m.to !== this.raft.id) return;
    this.raft.step(m);
  }

  propose(data: Uint8Array): ProposalPosition {
    return this.raft.propose('normal', data);
  }

  proposeConfChange(cc: ConfChange): ProposalPosition {
    return this.raft.proposeConfChange(cc);
  }

  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  readIndex(context: Uint8Array): void {
    this.raft.readIndex(context);
  }

  transferLeader(to: NodeId): void {
    this.raft.transferLeader(to);
  }

  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  reportSnapshot(id: NodeId, outcome: 'finish' | 'failure'): void {
    this.raft.reportSnapshot(id, outcome);
  }

  status(): Status {
    return this.raft.status();
  }

  hasReady(): boolean {
    const r = this.raft;
    const ss = r.softState();
    if (ss.leader !== this.prevSoftState.leader || ss.role !== this.prevSoftState.role) return true;
    if (!hardStateEqual(r.hardState(), this.prevHardState)) return true;
    if (r.log.unstable.snapshot !== null) return true;
    if (r.msgs.length > 0 || r.hasPendingAppends() || r.log.hasUnstable()) return true;
    if (r.readStates.length > 0) return true;
    return r.log.hasNextCommittedEnts();
  }

  ready(): Ready {
    const r = this.raft;
    const messages = r.takeMessages();
    const ss = r.softState();
    const hs = r.hardState();
    const softChanged = ss.leader !== this.prevSoftState.leader || ss.role !== this.prevSoftState.role;
    const hardChanged = !hardStateEqual(hs, this.prevHardState);
    const entries = r.log.unstableEntries();
    const snapshot = r.log.unstable.snapshot;
    const committedEntries = r.log.nextCommittedEnts(this.maxCommittedSizePerReady);
    const mustSync = entries.length > 0 || snapshot !== null || hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote;
    const rd: Ready = {
      softState: softChanged ? ss : null,
      hardState: hardChanged ? hs : null,
      entries,
      snapshot,
      committedEntries,
      messages,
      readStates: r.readStates,
      mustSync,
    };
    // Accept the Ready: everything in it counts as handed out.
    r.readStates = [];
    if (softChanged) this.prevSoftState = ss;
    if (hardChanged) this.prevHardState = hs;
    const lastCommitted = committedEntries[committedEntries.length - 1];
    if (lastCommitted !== undefined) {
      assert(lastCommitted.index <= hs.commit, 'handing out an uncommitted entry for applying');
      r.log.applying = lastCommitted.index;
    }
    return rd;
  }

  /** The host has persisted rd's snapshot/entries/hard state, sent its messages and applied its entries. */
  advance(rd: Ready): void {
    const log = this.raft.log;
    if (rd.snapshot !== null) {
      log.stableSnapTo(rd.snapshot.meta.index);
      if (rd.snapshot.meta.index > log.applied) log.appliedTo(rd.snapshot.meta.index);
    }
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted !== undefined) log.appliedTo(lastCommitted.index);
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) log.stableTo(lastEntry.index, lastEntry.term);
  }
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
