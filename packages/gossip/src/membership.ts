// Runs the SWIM state machine over the libp2p host: the real clock and timer live here, SWIM messages
// travel as one-frame streams on /swarm/swim/1.0.0, and locally originated updates also go out on gossipsub.

import { decode, encode, encodeFrame, FrameDecoder, type Logger } from '@swarm/wire';
import type { GossipHost, Stream } from './host.js';
import { GossipError, parseSwimMessage, type MemberId, type MemberMeta, type SwimMessage, type Update } from './messages.js';
import { Swim, DEFAULT_SWIM_CONFIG, type Member, type MemberEvent, type MemberEventType, type Outgoing, type SwimConfig } from './swim.js';

export const SWIM_PROTOCOL = '/swarm/swim/1.0.0';
export const MEMBERSHIP_TOPIC = 'swarm/membership';


export interface MembershipOptions {
  readonly host: GossipHost;
  /** This node's metadata; addrs defaults to the host's listen addresses. */
  readonly meta: Omit<MemberMeta, 'addrs'> & { readonly addrs?: readonly string[] };
  readonly logger: Logger;
  readonly config?: Partial<SwimConfig>;
  /** How often the state machine's timers are checked (default 10 ms: 1/20 of the probe timeout). */
  readonly tickMs?: number;
  /** Monotonic milliseconds (default performance.now). */
  readonly clock?: () => number;
  readonly random?: () => number;
  /** Start above 0 after a restart so our alive outranks the cluster's memory of us. */
  readonly incarnation?: number;
  /** Outbound SWIM streams kept open at once; beyond it messages are dropped (SWIM tolerates loss). */
  readonly maxInFlightSends?: number;
}

/** A full-state sync of maxMembers entries (~300 bytes each) stays well below this. */
const MAX_SWIM_FRAME_BYTES = 4 * 1024 * 1024;
/** Frames queued for a peer while its stream opens. */
const MAX_PENDING_PER_PEER = 32;
/** Bytes buffered on one outbound stream before further messages are dropped. */
const MAX_WRITE_BUFFER_BYTES = 1024 * 1024;

/** One long-lived outbound stream per peer: opening a stream per message costs 15-60 ms in libp2p 3. */
interface OutboundLink {
  stream: Stream | null;
  pending: Uint8Array[];
}

export type MembershipListener = (e: MemberEvent) => void;

export class Membership {
  readonly id: MemberId;
  private readonly swim: Swim;
  private readonly host: GossipHost;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly sendTimeoutMs: number;
  private readonly maxInFlight: number;
  private readonly outbound = new Map<string, OutboundLink>();
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly listeners = new Map<MemberEventType | '*', Set<MembershipListener>>();
  private joinWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private stopped = false;
  /** Counters for logs and tests. */
  readonly stats = { sent: 0, sendFailed: 0, droppedInFlight: 0, received: 0, invalid: 0, published: 0 };

  private constructor(opts: MembershipOptions) {
    this.host = opts.host;
    this.id = opts.host.peerId;
    this.log = opts.logger;
    this.clock = opts.clock ?? (() => performance.now());
    const cfg = { ...DEFAULT_SWIM_CONFIG, ...opts.config };
    // A stream that has not delivered within a protocol period is useless to SWIM.
    this.sendTimeoutMs = cfg.protocolPeriodMs * 2;
    this.maxInFlight = opts.maxInFlightSends ?? 1024;
    const meta: MemberMeta = { ...opts.meta, addrs: opts.meta.addrs ?? opts.host.multiaddrs() };
    this.swim = new Swim({
      id: this.id,
      meta,
      nowMs: this.clock(),
      random: opts.random ?? Math.random,
      config: opts.config ?? {},
      ...(opts.incarnation !== undefined ? { incarnation: opts.incarnation } : {}),
    });
  }

  static async start(opts: MembershipOptions): Promise<Membership> {
    const m = new Membership(opts);
    await opts.host.handle(SWIM_PROTOCOL, (stream, remote) => m.receive(stream, remote));
    m.unsubscribe = opts.host.subscribe(MEMBERSHIP_TOPIC, (data, from) => m.receiveBroadcast(data, from));
    const tickMs = opts.tickMs ?? 10;
    m.timer = setInterval(() => m.tick(), tickMs);
    return m;
  }

  // ---- queries and commands ------------------------------------------------------------------

  members(): Member[] {
    return this.swim.memberList();
  }

  /** The membership's clock (monotonic, not the epoch): a member's sinceMs is on it. */
  nowMs(): number {
    return this.clock();
  }

  member(id: MemberId): Member | undefined {
    return id === this.id ? this.swim.self() : this.swim.member(id);
  }

  self(): Member {
    return this.swim.self();
  }

  aliveIds(): MemberId[] {
    return this.swim.aliveIds();
  }

  localHealth(): number {
    return this.swim.localHealth();
  }

  /** Subscribes to one event type, or '*' for all; returns the unsubscribe function. */
  on(type: MemberEventType | '*', fn: MembershipListener): () => void {
    let set = this.listeners.get(type);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(type, set);
    }
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Joins through seed addresses (multiaddrs, /p2p/ optional); resolves once a seed answered. */
  join(seeds: readonly string[]): Promise<void> {
    this.checkRunning('join');
    const done = new Promise<void>((resolve, reject) => this.joinWaiters.push({ resolve, reject }));
    this.swim.joinVia(
      seeds.map((s) => [s]),
      this.clock(),
    );
    this.flush();
    return done;
  }

  updateMeta(meta: Omit<MemberMeta, 'addrs'> & { readonly addrs?: readonly string[] }): void {
    this.checkRunning('update metadata');
    this.swim.updateMeta({ ...meta, addrs: meta.addrs ?? this.host.multiaddrs() }, this.clock());
    this.flush();
  }

  /** Announces that we leave, gives the announcement `graceMs` to spread, then stops. */
  async leave(graceMs = 300): Promise<void> {
    if (this.stopped) return;
    this.swim.leave(this.clock());
    this.flush();
    await new Promise((r) => setTimeout(r, graceMs));
    await this.stop();
  }

  /** Stops timers and handlers; the host stays up (the caller owns it). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    for (const w of this.joinWaiters) w.reject(new GossipError('stopped', 'membership stopped before the join completed'));
    this.joinWaiters = [];
    for (const link of this.outbound.values()) link.stream?.abort(new GossipError('stopped', 'membership stopped'));
    this.outbound.clear();
    await this.host.unhandle(SWIM_PROTOCOL).catch(() => undefined);
  }

  private checkRunning(what: string): void {
    if (this.stopped) throw new GossipError('stopped', `membership is stopped: cannot ${what}`);
  }

  // ---- the edge: time, input, output ---------------------------------------------------------

  private tick(): void {
    if (this.stopped) return;
    this.swim.tick(this.clock());
    this.flush();
  }

  private step(from: MemberId, msg: SwimMessage): void {
    if (this.stopped) return;
    this.stats.received += 1;
    this.swim.step(from, msg, this.clock());
    this.flush();
  }

  /** One long-lived inbound stream per peer; every frame is one SWIM message, handled as it arrives. */
  private async receive(stream: Stream, remote: string): Promise<void> {
    const decoder = new FrameDecoder();
    // Bytes received since the last whole frame: caps what one peer can make us buffer far below
    // the 64 MiB the generic frame decoder accepts.
    let partialBytes = 0;
    for await (const chunk of stream) {
      const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
      let frames: unknown[];
      try {
        frames = decoder.push(bytes);
        partialBytes = frames.length > 0 ? 0 : partialBytes + bytes.byteLength;
        if (partialBytes > MAX_SWIM_FRAME_BYTES) throw new GossipError('invalid_message', `a swim frame over ${MAX_SWIM_FRAME_BYTES} bytes`);
      } catch (err) {
        this.stats.invalid += 1;
        stream.abort(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      for (const f of frames) {
        try {
          this.step(remote, parseSwimMessage(f));
        } catch (err) {
          this.stats.invalid += 1;
          this.log.debug({ err, remote }, 'dropped an invalid swim message');
        }
      }
      if (this.stopped) break;
    }
    await stream.close().catch(() => undefined);
  }

  private receiveBroadcast(data: Uint8Array, from: string | null): void {
    if (from === null || from === this.id) return;
    try {
      const msg = parseSwimMessage(decode(data));
      if (msg.type !== 'gossip') throw new GossipError('invalid_message', `only gossip messages travel on ${MEMBERSHIP_TOPIC}`);
      this.step(from, msg);
    } catch (err) {
      this.stats.invalid += 1;
      this.log.debug({ err, from }, 'dropped an invalid membership broadcast');
    }
  }

  private flush(): void {
    const ready = this.swim.ready();
    for (const e of ready.events) {
      if (e.type === 'member-joined') this.warmUp(e.member);
      this.emit(e);
    }
    for (const o of ready.messages) this.send(o);
    if (ready.publish.length > 0) this.publish(ready.publish);
    const status = this.swim.joinStatus();
    if (this.joinWaiters.length > 0 && (status === 'joined' || status === 'failed')) {
      const waiters = this.joinWaiters;
      this.joinWaiters = [];
      for (const w of waiters) {
        if (status === 'joined') w.resolve();
        else w.reject(new GossipError('dial_failed', 'no seed answered the join: check the addresses and that the seeds run with the same cluster key'));
      }
    }
  }

  private emit(e: MemberEvent): void {
    this.log.info({ event: e.type, member: e.member.id, hostname: e.member.meta.hostname, incarnation: e.member.incarnation }, 'membership change');
    for (const key of [e.type, '*'] as const) {
      for (const fn of this.listeners.get(key) ?? []) {
        try {
          fn(e);
        } catch (err) {
          this.log.error({ err, event: e.type }, 'membership listener threw');
        }
      }
    }
  }

  private publish(updates: Update[]): void {
    this.stats.published += 1;
    this.host.publish(MEMBERSHIP_TOPIC, encode({ type: 'gossip', updates })).catch((err: unknown) => {
      this.log.debug({ err }, 'membership publish failed');
    });
  }

  /** Outbound stream for a message, opened on first use. */
  private send(o: Outgoing): void {
    this.link(o, encodeFrame(o.message));
  }

  /**
   * Opens the stream to a member as soon as we learn of it: a first dial (tcp + pnet + noise + yamux)
   * takes ~100 ms, as long as a whole probe timeout, and would otherwise cost a false suspicion.
   */
  private warmUp(m: Member): void {
    if (this.stopped || m.state !== 'alive') return;
    this.link({ to: m.id, addrs: m.meta.addrs, message: { type: 'gossip', updates: [] } }, null);
  }

  private link(o: Outgoing, frame: Uint8Array | null): void {
    // Prefer the member's peer id when connected (the stream reuses the connection); otherwise dial its
    // first advertised address.
    let key: string | undefined;
    try {
      if (o.to !== null && (this.outbound.has(o.to) || this.host.isConnected(o.to))) key = o.to;
    } catch {
      key = undefined; // not a valid peer id: fall back to the addresses
    }
    key ??= o.addrs.find((a) => a.startsWith('/'));
    if (key === undefined) {
      this.stats.sendFailed += 1;
      return;
    }
    const existing = this.outbound.get(key);
    if (existing !== undefined) {
      if (frame !== null) this.write(key, existing, frame);
      return;
    }
    if (this.outbound.size >= this.maxInFlight) {
      this.stats.droppedInFlight += 1;
      return;
    }
    const link: OutboundLink = { stream: null, pending: frame === null ? [] : [frame] };
    this.outbound.set(key, link);
    const dest = key;
    void (async () => {
      try {
        const stream = await this.host.openStream(dest, SWIM_PROTOCOL, AbortSignal.timeout(this.sendTimeoutMs));
        if (this.stopped || this.outbound.get(dest) !== link) {
          stream.abort(new GossipError('stopped', 'membership stopped'));
          return;
        }
        link.stream = stream;
        stream.addEventListener('close', () => {
          if (this.outbound.get(dest) === link) this.outbound.delete(dest);
        });
        const queued = link.pending;
        link.pending = [];
        for (const f of queued) this.write(dest, link, f);
      } catch (err) {
        this.stats.sendFailed += link.pending.length;
        if (this.outbound.get(dest) === link) this.outbound.delete(dest);
        this.log.trace({ err, to: o.to, dest }, 'swim stream open failed');
      }
    })();
  }

  private write(key: string, link: OutboundLink, frame: Uint8Array): void {
    if (link.stream === null) {
      // Still opening: keep a few; SWIM tolerates the loss of the rest.
      if (link.pending.length < MAX_PENDING_PER_PEER) link.pending.push(frame);
      else this.stats.droppedInFlight += 1;
      return;
    }
    const s = link.stream;
    if (s.status !== 'open' || s.writeStatus !== 'writable') {
      this.outbound.delete(key);
      this.stats.sendFailed += 1;
      return;
    }
    // A peer that does not read (stopped, overloaded) must not grow our memory: drop past the bound.
    if (s.writeBufferLength > MAX_WRITE_BUFFER_BYTES) {
      this.stats.droppedInFlight += 1;
      return;
    }
    this.stats.sent += 1;
    try {
      s.send(frame);
    } catch (err) {
      this.stats.sendFailed += 1;
      this.outbound.delete(key);
      s.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
