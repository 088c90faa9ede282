// The simulated network and clock: one event queue in virtual time, and a faulty link model
// (drop, delay and so reordering, duplication, partitions) whose every choice comes from the seed.

import type { NodeId } from '../types.js';
import type { Rng } from './rng.js';

function assert(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new Error(`sim network: ${msg}`);
}

/** Events in virtual time, ordered by (time, sequence): equal times run in the order they were scheduled. */
export class EventQueue<T> {
  private readonly heap: { time: number; seq: number; item: T }[] = [];
  private nextSeq = 0;

  constructor(private readonly maxEvents: number) {}

  get size(): number {
    return this.heap.length;
  }

  push(time: number, item: T): void {
    assert(Number.isFinite(time) && time >= 0, `bad event time ${time}`);
    assert(this.heap.length < this.maxEvents, `event queue above its bound of ${this.maxEvents}`);
    const node = { time, seq: this.nextSeq++, item };
    const h = this.heap;
    h.push(node);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p] as typeof node;
      if (parent.time < time || (parent.time === time && parent.seq < node.seq)) break;
      h[i] = parent;
      i = p;
    }
    h[i] = node;
  }

  peekTime(): number | undefined {
    return this.heap[0]?.time;
  }

  pop(): { time: number; item: T } | undefined {
    const h = this.heap;
    const top = h[0];
    if (top === undefined) return undefined;
    const last = h.pop() as typeof top;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        let mNode = last;
        const ln = h[l];
        if (ln !== undefined && (ln.time < mNode.time || (ln.time === mNode.time && ln.seq < mNode.seq))) {
          m = l;
          mNode = ln;
        }
        const rn = h[r];
        if (rn !== undefined && (rn.time < mNode.time || (rn.time === mNode.time && rn.seq < mNode.seq))) {
          m = r;
          mNode = rn;
        }
        if (m === i) break;
        h[i] = mNode;
        i = m;
      }
      h[i] = last;
    }
    return { time: top.time, item: top.item };
  }
}

export interface LinkFaults {
  /** Probability that one copy of a message is lost. */
  readonly dropP: number;
  /** Probability that a message is delivered twice (each copy with its own delay). */
  readonly dupP: number;
  /** Delivery delay is uniform in [minDelay, maxDelay] time units, so messages overtake each other. */
  readonly minDelay: number;
  readonly maxDelay: number;
  /** Probability that a copy is held back far longer (up to lateMaxDelay units): a stale message from an old term. */
  readonly lateP: number;
  readonly lateMaxDelay: number;
}

export const calmLinks: LinkFaults = { dropP: 0, dupP: 0, minDelay: 1, maxDelay: 3, lateP: 0, lateMaxDelay: 3 };

/** Links between nodes: who can reach whom right now, and what happens to one message. */
export class Network {
  /** Directed links cut by the current partition ("from>to"); null when the network is whole. */
  private cut: ReadonlySet<string> | null = null;
  private faults: LinkFaults;
  readonly stats = { sent: 0, dropped: 0, duplicated: 0, late: 0, partitions: 0 };

  constructor(
    private readonly rng: Rng,
    faults: LinkFaults,
  ) {
    assert(faults.minDelay >= 1 && faults.maxDelay >= faults.minDelay, 'delays must be >= 1 unit');
    this.faults = faults;
  }

  setFaults(faults: LinkFaults): void {
    assert(faults.minDelay >= 1 && faults.maxDelay >= faults.minDelay, 'delays must be >= 1 unit');
    this.faults = faults;
  }

  get partitioned(): boolean {
    return this.cut !== null;
  }

  /**
   * Cut the network at random, in one of four shapes: a clean split into two sides, one node isolated,
   * a split with one "bridge" node that still reaches both sides, or a one-way split (A's messages to B are
   * lost, B's to A arrive). Returns a description for the transcript.
   */
  partition(nodes: readonly NodeId[]): string {
    assert(nodes.length >= 2, 'need two nodes to partition');
    const shuffled = this.rng.shuffle([...nodes]);
    const shape = this.rng.pick(['split', 'isolate', 'bridge', 'one-way'] as const);
    let bridge: NodeId | null = null;
    if (shape === 'bridge' && shuffled.length >= 3) bridge = shuffled.pop() as NodeId;
    const cutAt = shape === 'isolate' ? 1 : this.rng.int(1, shuffled.length - 1);
    const a = shuffled.slice(0, cutAt);
    const b = shuffled.slice(cutAt);
    const cut = new Set<string>();
    for (const x of a) {
      for (const y of b) {
        cut.add(`${x}>${y}`);
        if (shape !== 'one-way') cut.add(`${y}>${x}`);
      }
    }
    this.cut = cut;
    this.stats.partitions++;
    const arrow = shape === 'one-way' ? ' -/-> ' : ' | ';
    return `${shape}: ${a.join(',')}${arrow}${b.join(',')}${bridge !== null ? ` (bridge ${bridge})` : ''}`;
  }

  heal(): void {
    this.cut = null;
  }

  connected(from: NodeId, to: NodeId): boolean {
    return this.cut === null || !this.cut.has(`${from}>${to}`);
  }

  /** The delays (time units) of the copies of one message sent now from `from` to `to`; empty when lost. */
  route(from: NodeId, to: NodeId): number[] {
    this.stats.sent++;
    if (!this.connected(from, to)) {
      this.stats.dropped++;
      return [];
    }
    const copies = this.rng.chance(this.faults.dupP) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    const delays: number[] = [];
    for (let c = 0; c < copies; c++) {
      if (this.rng.chance(this.faults.dropP)) {
        this.stats.dropped++;
        continue;
      }
      if (this.rng.chance(this.faults.lateP)) {
        this.stats.late++;
        delays.push(this.rng.int(this.faults.maxDelay, Math.max(this.faults.maxDelay, this.faults.lateMaxDelay)));
      } else delays.push(this.rng.int(this.faults.minDelay, this.faults.maxDelay));
    }
    return delays;
  }
}
