// ReadIndex bookkeeping on the leader (Raft thesis §6.4): each read waits for a heartbeat round acknowledged by a
// quorum; an ack for a later request also confirms every earlier one. Bounded by maxPending.

import { assert } from './assert.js';
import type { NodeId } from './types.js';

export interface ReadRequest {
  /** Commit index when the request arrived: safe to serve once applied >= index and leadership is confirmed. */
  readonly index: number;
  /** Who asked: this node (local) or a follower that forwarded it. */
  readonly from: NodeId;
  readonly context: Uint8Array;
  readonly acks: Set<NodeId>;
}

export function contextKey(ctx: Uint8Array): string {
  return Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('hex');
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadRequest>();
  /** Keys in arrival order. */
  private queue: string[] = [];

  constructor(private readonly maxPending: number) {}

  size(): number {
    return this.queue.length;
  }

  full(): boolean {
    return this.queue.length >= this.maxPending;
  }

  /** Returns false when a request with the same context is already pending (it will be answered once). */
  add(index: number, from: NodeId, context: Uint8Array): boolean {
    const key = contextKey(context);
    if (this.pending.has(key)) return false;
    assert(!this.full(), 'read-only: queue over its bound');
    this.pending.set(key, { index, from, context, acks: new Set() });
    this.queue.push(key);
    return true;
  }

  /** Records an ack for context; returns everyone who acked it so far (null when the context is unknown). */
  recvAck(id: NodeId, context: Uint8Array): Set<NodeId> | null {
    const rs = this.pending.get(contextKey(context));
    if (rs === undefined) return null;
    rs.acks.add(id);
    return rs.acks;
  }

  /** Removes and returns every request up to and including context's (in arrival order). */
  advance(context: Uint8Array): ReadRequest[] {
    const key = contextKey(context);
    const pos = this.queue.indexOf(key);
    if (pos < 0) return [];
    const released: ReadRequest[] = [];
    for (let i = 0; i <= pos; i++) {
      const k = this.queue[i];
      assert(k !== undefined, 'read-only: hole in queue');
      const rs = this.pending.get(k);
      assert(rs !== undefined, 'read-only: queue and map disagree');
      released.push(rs);
      this.pending.delete(k);
    }
    this.queue = this.queue.slice(pos + 1);
    return released;
  }

  lastPendingContext(): Uint8Array | null {
    const k = this.queue[this.queue.length - 1];
    if (k === undefined) return null;
    return this.pending.get(k)?.context ?? null;
  }
}
