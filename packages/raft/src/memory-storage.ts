// MemoryStorage: the in-memory Storage the Raft core reads its stable log from (the host loads it from the WAL on
// start and appends to it after persisting each Ready). Also bootstrap(), the deterministic initial membership.

import { assert } from './assert.js';
import {
  emptyHardState,
  emptySnapshot,
  RaftError,
  type ConfState,
  type Entry,
  type HardState,
  type NodeId,
  type Snapshot,
  type Storage,
} from './types.js';

/** Per-entry bookkeeping bytes counted on top of the data, so a run of empty entries is still size-bounded. */
export const ENTRY_OVERHEAD_BYTES = 16;

export function entrySizeBytes(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

/** Keeps the longest prefix within maxBytes, but always at least one entry. Returns ents itself when nothing is cut. */
export function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length <= 1 || maxBytes === Infinity) return ents;
  let size = 0;
  for (let i = 0; i < ents.length; i++) {
    const e = ents[i];
    assert(e !== undefined, 'limitSize: hole in entries');
    size += entrySizeBytes(e);
    if (size > maxBytes && i > 0) return ents.slice(0, i);
  }
  return ents;
}

export class MemoryStorage implements Storage {
  private hs: HardState = emptyHardState;
  private snap: Snapshot = emptySnapshot;
  /** Index and term of the entry just before ents[0] (the compaction point). */
  private baseIndex = 0;
  private baseTerm = 0;
  /** ents[k].index === baseIndex + 1 + k: O(1) lookup by index. */
  private ents: Entry[] = [];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hs, confState: this.snap.meta.confState };
  }

  setHardState(hs: HardState): void {
    assert(hs.term >= this.hs.term, `hard state term went back from ${this.hs.term} to ${hs.term}`);
    this.hs = hs;
  }

  hardState(): HardState {
    return this.hs;
  }

  firstIndex(): number {
    return this.baseIndex + 1;
  }

  lastIndex(): number {
    return this.baseIndex + this.ents.length;
  }

  term(i: number): number {
    if (i < this.baseIndex) throw new RaftError('compacted', `entry ${i} is compacted (first index ${this.firstIndex()})`);
    if (i === this.baseIndex) return this.baseTerm;
    const e = this.ents[i - this.baseIndex - 1];
    if (e === undefined) throw new RaftError('unavailable', `entry ${i} is past the last index ${this.lastIndex()}`);
    return e.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.baseIndex) throw new RaftError('compacted', `entries from ${lo} are compacted (first index ${this.firstIndex()})`);
    if (hi > this.lastIndex() + 1) throw new RaftError('unavailable', `entries up to ${hi - 1} are past the last index ${this.lastIndex()}`);
    assert(lo <= hi, `entries: lo ${lo} > hi ${hi}`);
    const offset = this.baseIndex + 1;
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Appends entries, replacing any existing suffix from entries[0].index on. Entries already compacted are skipped. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0];
    assert(first !== undefined, 'append: empty');
    for (let k = 1; k < entries.length; k++) {
      const e = entries[k];
      assert(e !== undefined && e.index === first.index + k, 'append: entries are not contiguous');
    }
    const lastNew = first.index + entries.length - 1;
    if (lastNew <= this.baseIndex) return; // all compacted already
    const skip = Math.max(0, this.baseIndex + 1 - first.index);
    const startIndex = first.index + skip;
    if (startIndex > this.lastIndex() + 1) {
      throw new RaftError('unavailable', `append at ${startIndex} would leave a gap after last index ${this.lastIndex()}`);
    }
    const pos = startIndex - this.baseIndex - 1;
    // Truncate in place: slices handed out earlier are copies, so nobody else holds this array.
    if (pos < this.ents.length) this.ents.length = pos;
    for (let k = skip; k < entries.length; k++) {
      const e = entries[k];
      assert(e !== undefined, 'append: hole');
      this.ents.push(e);
    }
  }

  applySnapshot(snap: Snapshot): void {
    if (snap.meta.index <= this.snap.meta.index) {
      throw new RaftError('snapshot_out_of_date', `snapshot at ${snap.meta.index} is not newer than the held one at ${this.snap.meta.index}`);
    }
    this.snap = snap;
    this.baseIndex = snap.meta.index;
    this.baseTerm = snap.meta.term;
    this.ents = [];
  }

  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.meta.index) {
      throw new RaftError('snapshot_out_of_date', `snapshot at ${index} is not newer than the held one at ${this.snap.meta.index}`);
    }
    if (index > this.lastIndex()) throw new RaftError('unavailable', `snapshot index ${index} is past the last index ${this.lastIndex()}`);
    const term = this.term(index);
    this.snap = { meta: { index, term, confState: { voters: [...confState.voters], learners: [...confState.learners] } }, data };
    return this.snap;
  }

  compact(compactIndex: number): void {
    if (compactIndex <= this.baseIndex) throw new RaftError('compacted', `already compacted up to ${this.baseIndex}`);
    if (compactIndex > this.lastIndex()) throw new RaftError('unavailable', `compact index ${compactIndex} is past the last index ${this.lastIndex()}`);
    const term = this.term(compactIndex);
    this.ents = this.ents.slice(compactIndex - this.baseIndex);
    this.baseIndex = compactIndex;
    this.baseTerm = term;
  }
}

/**
 * Writes the initial membership into a fresh storage as a snapshot at index 1, term 1 (empty data) and a hard
 * state {term 1, commit 1}. Voters are deduplicated and sorted, so every voter writes identical bytes. Nodes that
 * join later start with an empty storage and receive this (or a later) snapshot from the leader.
 */
export function bootstrap(storage: MemoryStorage, voters: readonly NodeId[]): void {
  if (voters.length === 0) throw new RaftError('invalid_config', 'bootstrap needs at least one voter');
  if (voters.some((v) => v === '')) throw new RaftError('invalid_config', 'bootstrap: a voter id is empty');
  if (storage.lastIndex() !== 0 || storage.snapshot().meta.index !== 0 || storage.hardState().term !== 0) {
    throw new RaftError('invalid_config', 'bootstrap needs a fresh storage: this one already holds state');
  }
  const sorted = [...new Set(voters)].sort();
  storage.applySnapshot({ meta: { index: 1, term: 1, confState: { voters: sorted, learners: [] } }, data: new Uint8Array(0) });
  storage.setHardState({ term: 1, vote: null, commit: 1 });
}
