// RaftLog: the log as the core sees it, a stable prefix in Storage plus an in-memory unstable tail (entries and
// possibly a snapshot not yet persisted by the host), with the commit and applied indexes.

import { assert } from './assert.js';
import { limitSize } from './memory-storage.js';
import { RaftError, type Entry, type Snapshot, type Storage } from './types.js';

/** Entries and a snapshot received but not yet persisted. entries[k].index === offset + k. */
export class Unstable {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot === null ? undefined : this.snapshot.meta.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === null ? undefined : this.snapshot.meta.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== null && this.snapshot.meta.index === i) return this.snapshot.meta.term;
      return undefined;
    }
    const e = this.entries[i - this.offset];
    return e === undefined ? undefined : e.term;
  }

  /** The host persisted entries up to (i, t); drop them unless the tail was replaced meanwhile. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined || gt !== t || i < this.offset) return;
    this.entries = this.entries.slice(i + 1 - this.offset);
    this.offset = i + 1;
  }

  stableSnapTo(i: number): void {
    if (this.snapshot !== null && this.snapshot.meta.index === i) this.snapshot = null;
  }

  restore(s: Snapshot): void {
    this.offset = s.meta.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const first = ents[0];
    if (first === undefined) return;
    const after = first.index;
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replaces the whole unstable tail (and possibly part of the stable log, which the host overwrites).
      this.offset = after;
      this.entries = ents.slice();
    } else {
      // Copy rather than truncate in place: an earlier Ready may still hold the old array.
      const kept = this.entries.slice(0, after - this.offset);
      for (const e of ents) kept.push(e);
      this.entries = kept;
    }
  }

  /** Entries in [lo, hi), which must lie within the unstable tail. */
  slice(lo: number, hi: number): Entry[] {
    assert(lo >= this.offset && hi <= this.offset + this.entries.length && lo <= hi, `unstable slice [${lo},${hi}) out of [${this.offset},${this.offset + this.entries.length})`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known to be committed. */
  committed: number;
  /** Highest index the host has applied (reported through advance). */
  applied: number;
  /** Highest index handed to the host for applying (in a Ready not yet advanced). */
  applying: number;

  constructor(storage: Storage, committed: number, applied: number) {
    this.storage = storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    assert(committed >= first - 1 && committed <= last, `stored commit ${committed} outside the stored log [${first - 1}, ${last}]`);
    assert(applied >= first - 1 && applied <= committed, `applied ${applied} outside [${first - 1}, commit ${committed}]`);
    this.committed = committed;
    this.applied = applied;
    this.applying = applied;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term of entry i; throws RaftError 'compacted' below firstIndex-1 and 'unavailable' past lastIndex. */
  term(i: number): number {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    const dummy = this.firstIndex() - 1;
    if (i < dummy) throw new RaftError('compacted', `entry ${i} is compacted`);
    if (i > this.lastIndex()) throw new RaftError('unavailable', `entry ${i} is past the last index ${this.lastIndex()}`);
    return this.storage.term(i);
  }

  /** Term of i, or 0 when it is not held (compacted or past the end). */
  termOrZero(i: number): number {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return 0;
    return this.term(i);
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  matchTerm(i: number, t: number): boolean {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return false;
    return this.term(i) === t;
  }

  /** §5.4.1: a candidate's log (lastIndex, lastTerm) is at least as up-to-date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Follower side of AppendEntries: if our log holds (index, logTerm), append ents (truncating a conflicting
   * suffix) and learn the commit. Returns the last index now known to match the leader, or null on mismatch.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | null {
    if (!this.matchTerm(index, logTerm)) return null;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      assert(ci > this.committed, `entry ${ci} conflicts with committed entry (commit ${this.committed})`);
      const first = ents[0];
      assert(first !== undefined, 'maybeAppend: conflict without entries');
      this.append(ents.slice(ci - first.index));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Index of the first entry of ents whose term differs from ours (or is new), 0 if all already match. */
  private findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= index whose term is <= term (or the compaction point). Used for the conflict hint: one
   * round trip skips every entry of a conflicting term.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    const floor = this.firstIndex() - 1;
    while (i > floor) {
      if (this.term(i) <= term) return i;
      i--;
    }
    return i;
  }

  append(ents: readonly Entry[]): number {
    const first = ents[0];
    if (first === undefined) return this.lastIndex();
    assert(first.index - 1 >= this.committed, `append at ${first.index} would overwrite committed entries (commit ${this.committed})`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  commitTo(toCommit: number): void {
    if (toCommit <= this.committed) return; // commit never decreases
    assert(toCommit <= this.lastIndex(), `commit ${toCommit} is past the last index ${this.lastIndex()}: log lost or corrupt`);
    this.committed = toCommit;
  }

  /** Leader: commit maxIndex if it is of the current term (§5.4.2). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    assert(i <= this.committed && i >= this.applied, `applied ${i} outside [applied ${this.applied}, commit ${this.committed}]`);
    this.applied = i;
    if (this.applying < i) this.applying = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  hasNextCommittedEnts(): boolean {
    if (this.unstable.snapshot !== null) return false; // apply the snapshot first
    const lo = Math.max(this.applying + 1, this.firstIndex());
    return this.committed >= lo;
  }

  /** Committed entries not yet handed out for applying, at most maxBytes (at least one). */
  nextCommittedEnts(maxBytes: number): Entry[] {
    if (!this.hasNextCommittedEnts()) return [];
    const lo = Math.max(this.applying + 1, this.firstIndex());
    return this.slice(lo, this.committed + 1, maxBytes);
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  hasUnstable(): boolean {
    return this.unstable.entries.length > 0;
  }

  /** Entries from lo to the end, at most maxBytes. */
  entries(lo: number, maxBytes: number): Entry[] {
    const last = this.lastIndex();
    if (lo > last) return [];
    return this.slice(lo, last + 1, maxBytes);
  }

  /** Entries in [lo, hi), at most maxBytes (at least one). Throws 'compacted' when lo < firstIndex. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo <= hi, `slice: lo ${lo} > hi ${hi}`);
    if (lo < this.firstIndex()) throw new RaftError('compacted', `entries from ${lo} are compacted`);
    if (hi > this.lastIndex() + 1) throw new RaftError('unavailable', `entries up to ${hi - 1} are past the last index`);
    if (lo === hi) return [];
    const off = this.unstable.offset;
    let ents: Entry[] = [];
    if (lo < off) {
      const storedHi = Math.min(hi, off);
      ents = this.storage.entries(lo, storedHi, maxBytes);
      if (ents.length < storedHi - lo) return ents; // size limit reached inside storage
    }
    if (hi > off) {
      const tail = this.unstable.slice(Math.max(lo, off), hi);
      if (ents.length === 0) ents = tail;
      else for (const e of tail) ents.push(e);
    }
    return limitSize(ents, maxBytes);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Replace the log with a snapshot received from the leader. */
  restore(s: Snapshot): void {
    assert(s.meta.index > this.committed, `restore at ${s.meta.index} would move commit back from ${this.committed}`);
    this.committed = s.meta.index;
    this.unstable.restore(s);
  }

  /** Entries in (applied, committed] include a conf change not yet applied by the host. */
  hasPendingConfChange(): boolean {
    if (this.committed <= this.applied) return false;
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (lo > this.committed) return false;
    const ents = this.slice(lo, this.committed + 1, Infinity);
    return ents.some((e) => e.type === 'conf-change');
  }
}
