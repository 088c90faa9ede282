// A deterministic simulator for the SWIM state machine: virtual time, a seeded network with loss,
// delay, per-node slowness, partitions and crashes. Used by swim.test.ts; not a test file itself.

import { decode, encode, seededRandom } from '@swarm/wire';
import { parseSwimMessage, type MemberMeta, type SwimMessage } from '../src/messages.js';
import { Swim, type MemberEvent, type SwimConfig } from '../src/swim.js';

export { seededRandom };

export function simMeta(id: string): MemberMeta {
  return { nodeId: id, addrs: [`sim:${id}`], hostname: id, role: 'worker', cpus: 2, memoryBytes: 1 << 30, labels: {}, version: 'test' };
}

interface InFlight {
  readonly atMs: number;
  readonly order: number;
  readonly from: string;
  readonly to: string;
  readonly bytes: Uint8Array;
}

export interface SimOptions {
  readonly nodes: number;
  readonly seed: number;
  /** Probability that one message is lost. */
  readonly dropRate?: number;
  /** Deliver the updates a node originates to every reachable node (as gossipsub would). */
  readonly broadcastChannel?: boolean;
  readonly config?: Partial<SwimConfig>;
}

export interface RecordedEvent extends MemberEvent {
  readonly atMs: number;
  readonly observer: string;
}

export class SwimSim {
  nowMs = 0;
  readonly ids: string[];
  readonly nodes = new Map<string, Swim>();
  readonly crashed = new Set<string>();
  /** Extra delay on every message a node sends (a slow, CPU-starved node). */
  readonly slowMs = new Map<string, number>();
  /** Nodes cut off from everyone (both directions). */
  readonly isolated = new Set<string>();
  /** Nodes that receive nothing (outbound still works). */
  readonly deaf = new Set<string>();
  readonly events: RecordedEvent[] = [];
  private readonly net: () => number;
  private queue: InFlight[] = [];
  private order = 0;
  private readonly dropRate: number;
  private readonly broadcastChannel: boolean;
  messagesSent = 0;

  constructor(readonly opts: SimOptions) {
    this.net = seededRandom(opts.seed);
    this.dropRate = opts.dropRate ?? 0;
    this.broadcastChannel = opts.broadcastChannel ?? true;
    this.ids = Array.from({ length: opts.nodes }, (_, i) => `node-${String(i).padStart(2, '0')}`);
    for (const [i, id] of this.ids.entries()) {
      this.nodes.set(id, new Swim({ id, meta: simMeta(id), nowMs: 0, random: seededRandom(opts.seed * 1000 + i + 1), config: opts.config ?? {} }));
    }
  }

  node(id: string): Swim {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no sim node ${id}`);
    return n;
  }

  /** Every node joins through the first one, staggered by 10 ms. */
  joinAll(): void {
    const seed = this.ids[0];
    if (seed === undefined) throw new Error('no nodes');
    for (const [i, id] of this.ids.entries()) {
      if (i === 0) continue;
      this.runUntil(this.nowMs + 10);
      this.node(id).joinVia([[`sim:${seed}`]], this.nowMs);
      this.flush(id);
    }
  }

  private canTalk(from: string, to: string): boolean {
    if (this.isolated.has(from) !== this.isolated.has(to)) return false;
    return !this.deaf.has(to);
  }

  private enqueue(from: string, to: string, message: SwimMessage, lossy: boolean): void {
    this.messagesSent += 1;
    if (this.crashed.has(to) || !this.canTalk(from, to)) return;
    if (lossy && this.net() < this.dropRate) return;
    // 0.2-2 ms LAN latency plus the sender's slowness (with up to 20% jitter).
    const slow = this.slowMs.get(from) ?? 0;
    const delay = 0.2 + this.net() * 1.8 + slow * (0.8 + 0.4 * this.net());
    this.queue.push({ atMs: this.nowMs + delay, order: this.order++, from, to, bytes: encode(message) });
  }

  /** Moves a node's outputs onto the network and records its events. */
  flush(id: string): void {
    const ready = this.node(id).ready();
    if (this.crashed.has(id)) return;
    for (const e of ready.events) this.events.push({ ...e, atMs: this.nowMs, observer: id });
    for (const o of ready.messages) {
      const to = o.to ?? o.addrs.find((a) => a.startsWith('sim:'))?.slice(4);
      if (to !== undefined) this.enqueue(id, to, o.message, true);
    }
    if (this.broadcastChannel && ready.publish.length > 0) {
      for (const other of this.ids) {
        if (other !== id) this.enqueue(id, other, { type: 'gossip', updates: ready.publish }, false);
      }
    }
  }

  crash(id: string): void {
    this.crashed.add(id);
  }

  /** Advances virtual time in 5 ms ticks, delivering messages as they fall due. */
  runUntil(untilMs: number, stepMs = 5): void {
    while (this.nowMs < untilMs) {
      const next = Math.min(untilMs, this.nowMs + stepMs);
      this.queue.sort((a, b) => a.atMs - b.atMs || a.order - b.order);
      while (this.queue.length > 0 && (this.queue[0]?.atMs ?? Infinity) <= next) {
        const m = this.queue.shift();
        if (m === undefined) break;
        this.nowMs = Math.max(this.nowMs, m.atMs);
        if (this.crashed.has(m.to)) continue;
        const msg = parseSwimMessage(decode(m.bytes));
        this.node(m.to).step(m.from, msg, this.nowMs);
        this.flush(m.to);
      }
      this.nowMs = next;
      for (const id of this.ids) {
        if (this.crashed.has(id)) continue;
        this.node(id).tick(this.nowMs);
        this.flush(id);
      }
    }
  }

  /** Runs until pred holds or the deadline passes; returns the time it held, or null. */
  runUntilTrue(pred: () => boolean, deadlineMs: number): number | null {
    while (this.nowMs < deadlineMs) {
      if (pred()) return this.nowMs;
      this.runUntil(this.nowMs + 5);
    }
    return pred() ? this.nowMs : null;
  }

  live(): string[] {
    return this.ids.filter((id) => !this.crashed.has(id));
  }

  /** True when every live node (except those in `except`) holds `id` in `state`. */
  allSee(id: string, state: 'alive' | 'suspect' | 'dead' | 'left', except: readonly string[] = []): boolean {
    return this.live()
      .filter((o) => o !== id && !except.includes(o))
      .every((o) => this.node(o).member(id)?.state === state);
  }

  /** True when every live node's alive set equals `expected`. */
  converged(expected: readonly string[]): boolean {
    const want = [...expected].sort().join(',');
    return this.live().every((id) => this.node(id).aliveIds().join(',') === want);
  }
}
