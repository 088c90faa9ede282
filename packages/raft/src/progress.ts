// The leader's view of one peer: how much of the log it matches, where to send next, and the flow-control state
// (probe: one append per heartbeat; replicate: pipelined within a bounded Inflights window; snapshot: wait).

import { assert } from './assert.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** A bounded FIFO of the last indexes of appends sent but not yet acknowledged (a ring buffer). */
export class Inflights {
  private readonly buf: number[];
  private start = 0;
  private countInner = 0;

  constructor(readonly capacity: number) {
    assert(Number.isInteger(capacity) && capacity > 0, `inflights capacity must be a positive integer, got ${capacity}`);
    this.buf = new Array<number>(capacity).fill(0);
  }

  count(): number {
    return this.countInner;
  }

  full(): boolean {
    return this.countInner === this.capacity;
  }

  add(lastIndex: number): void {
    assert(!this.full(), 'inflights: add to a full window');
    const pos = (this.start + this.countInner) % this.capacity;
    if (this.countInner > 0) {
      const prev = this.buf[(pos + this.capacity - 1) % this.capacity];
      assert(prev !== undefined && lastIndex > prev, `inflights: index ${lastIndex} not after ${String(prev)}`);
    }
    this.buf[pos] = lastIndex;
    this.countInner++;
  }

  /** Frees every inflight append whose last index is <= to (they were acknowledged). */
  freeLE(to: number): void {
    while (this.countInner > 0) {
      const v = this.buf[this.start];
      assert(v !== undefined, 'inflights: hole');
      if (v > to) break;
      this.start = (this.start + 1) % this.capacity;
      this.countInner--;
    }
    if (this.countInner === 0) this.start = 0;
  }

  freeFirstOne(): void {
    if (this.countInner === 0) return;
    this.start = (this.start + 1) % this.capacity;
    this.countInner--;
  }

  reset(): void {
    this.start = 0;
    this.countInner = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In 'snapshot' state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from since the last CheckQuorum round (the leader itself always counts). */
  recentActive = false;
  /** In 'probe' state: an append is outstanding, wait for its answer or a heartbeat response. */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, maxInflight: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** An append ack up to n arrived; false if it was stale. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * The append probing at `rejected` was refused; matchHint is the highest index the follower might match.
   * Returns false when the rejection is stale (for an append we no longer care about).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /** Record that an append carrying `count` entries ending at lastIndex was sent. */
  sentEntries(count: number, lastIndex: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
    } else if (this.state === 'probe') {
      this.msgAppFlowPaused = true;
    } else {
      assert(false, 'sending entries to a peer in snapshot state');
    }
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.msgAppFlowPaused;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
