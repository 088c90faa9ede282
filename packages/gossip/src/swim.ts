// SWIM membership and failure detection (with memberlist's Lifeguard refinements) as a pure state machine.
// No timers, sockets, clocks or randomness inside: the host calls tick(nowMs) and step(from, msg, nowMs), then ready().

import {
  assert,
  GossipError,
  metaEqual,
  type Incarnation,
  type MemberId,
  type MemberMeta,
  type MemberState,
  type SwimMessage,
  type SyncEntry,
  type Update,
} from './messages.js';

/**
 * Timing and bounds. The defaults aim at detecting a dead node in well under 2 s (median) on a LAN
 * while a merely slow node (replies late by a few hundred ms) is never declared dead:
 * - protocolPeriodMs 200: every node probes one peer per period, so with n nodes a dead one is
 *   probed by someone within about one period on average; a LAN round trip is < 1 ms, so 200 ms
 *   leaves two orders of magnitude of headroom while keeping probe traffic at 5 small messages/s/node.
 * - probeTimeoutMs 100: half a period for the direct ack, the other half for the indirect probes
 *   (ping-req through k helpers) so a lossy link to one peer does not cause suspicion by itself.
 * - suspicion: min = suspicionMult * max(1, log10 n) * period = 800 ms at n <= 10, max = 3 * min.
 *   Lifeguard starts each suspicion at max and shortens it to min as independent confirmations
 *   arrive, so a dead node (which everyone confirms) is dead ~0.8-1.4 s after the first suspicion,
 *   while a slow node has at least 800 ms to see the suspicion and refute it.
 *   Expected detection: ~0.1 s to the first probe + 0.2 s probe + 0.8-1.4 s suspicion ≈ 1.1-1.7 s.
 * - Local health (Lifeguard LHM, 0..maxHealthScore): a node that misses acks or nacks, or has to
 *   refute suspicion about itself, is probably the slow one; it multiplies its own period and probe
 *   timeout by (1 + score) so it stops accusing healthy peers.
 */
export interface SwimConfig {
  readonly protocolPeriodMs: number;
  readonly probeTimeoutMs: number;
  /** k: helpers asked to probe indirectly when the direct probe is not acked in time. */
  readonly indirectChecks: number;
  /** A helper sends a nack at this fraction of the probe timeout when the target has not acked. */
  readonly nackFraction: number;
  readonly suspicionMult: number;
  /** Suspicion timeout starts at suspicionMaxMult * min and shrinks to min with confirmations. */
  readonly suspicionMaxMult: number;
  readonly maxHealthScore: number;
  /** An update is piggybacked retransmitMult * ceil(log10(n + 1)) times. */
  readonly retransmitMult: number;
  readonly maxPiggyback: number;
  readonly maxBroadcastQueue: number;
  readonly gossipIntervalMs: number;
  readonly gossipFanout: number;
  /** Dead members still receive gossip this long, so they learn they were declared dead. */
  readonly gossipToDeadMs: number;
  /** Full-state exchange with a random alive member (anti-entropy). */
  readonly syncIntervalMs: number;
  /** Full-state exchange with a random dead member, so a healed partition merges back by itself. */
  readonly reconnectIntervalMs: number;
  readonly joinRetryMs: number;
  readonly maxJoinAttempts: number;
  /** Dead and left members are forgotten after this long. */
  readonly deadRetentionMs: number;
  readonly maxMembers: number;
  readonly maxPendingRelays: number;
  readonly maxOutbox: number;
  /**
   * A gap between two ticks longer than this means our own process was paused (GC, CPU starvation):
   * our deadlines move forward by the gap, since the acks may sit unread in our socket buffers.
   */
  readonly pauseThresholdMs: number;
}

export const DEFAULT_SWIM_CONFIG: SwimConfig = {
  protocolPeriodMs: 200,
  probeTimeoutMs: 100,
  indirectChecks: 3,
  nackFraction: 0.8,
  suspicionMult: 4,
  suspicionMaxMult: 3,
  maxHealthScore: 8,
  retransmitMult: 4,
  maxPiggyback: 8,
  maxBroadcastQueue: 1024,
  gossipIntervalMs: 200,
  gossipFanout: 3,
  gossipToDeadMs: 2_000,
  syncIntervalMs: 10_000,
  reconnectIntervalMs: 2_000,
  joinRetryMs: 500,
  maxJoinAttempts: 40,
  deadRetentionMs: 10 * 60_000,
  maxMembers: 4096,
  maxPendingRelays: 64,
  maxOutbox: 4096,
  pauseThresholdMs: 50,
};

export interface Member {
  readonly id: MemberId;
  readonly incarnation: Incarnation;
  readonly state: MemberState;
  readonly meta: MemberMeta;
  /** Local time of the last state change (not comparable across nodes). */
  readonly sinceMs: number;
}

export type MemberEventType = 'member-joined' | 'member-updated' | 'member-alive' | 'member-suspect' | 'member-dead' | 'member-left';

export interface MemberEvent {
  readonly type: MemberEventType;
  readonly member: Member;
}

/** A message to deliver. `to` null means "whoever answers at addrs" (a join seed not yet known). */
export interface Outgoing {
  readonly to: MemberId | null;
  readonly addrs: readonly string[];
  readonly message: SwimMessage;
}

export interface SwimReady {
  readonly messages: Outgoing[];
  readonly events: MemberEvent[];
  /** Updates this node originated, for a cluster-wide broadcast channel (gossipsub). */
  readonly publish: Update[];
}

export type JoinStatus = 'idle' | 'joining' | 'joined' | 'failed';

export interface SwimOptions {
  readonly id: MemberId;
  readonly meta: MemberMeta;
  readonly nowMs: number;
  /** Uniform in [0, 1); injected so a seed replays a run. */
  readonly random: () => number;
  readonly config?: Partial<SwimConfig>;
  /** Start above 0 e.g. after a restart, so the node's alive outranks what the cluster remembers. */
  readonly incarnation?: Incarnation;
}

interface MutableMember {
  id: MemberId;
  incarnation: Incarnation;
  state: MemberState;
  meta: MemberMeta;
  sinceMs: number;
}

interface Suspicion {
  readonly startMs: number;
  /** Nodes whose suspicion counted (the first suspecter is in it but not counted). */
  readonly seen: Set<MemberId>;
  confirmations: number;
  /** Confirmations that bring the timeout down to min. */
  readonly k: number;
  readonly minMs: number;
  readonly maxMs: number;
}

interface Probe {
  readonly seq: number;
  readonly target: MemberId;
  readonly directDeadlineMs: number;
  readonly periodEndMs: number;
  indirectSent: boolean;
  acked: boolean;
  expectedNacks: number;
  nacks: number;
}

interface Relay {
  readonly requester: MemberId;
  readonly requesterSeq: number;
  readonly nackAtMs: number;
  readonly expireMs: number;
  nacked: boolean;
}

interface Broadcast {
  readonly update: Update;
  transmits: number;
}

/** Bound on the queue of suspected members to probe ahead of the round robin. */
const MAX_URGENT_PROBES = 16;

function validateConfig(c: SwimConfig): void {
  const positive: (keyof SwimConfig)[] = ['protocolPeriodMs', 'probeTimeoutMs', 'gossipIntervalMs', 'syncIntervalMs', 'reconnectIntervalMs', 'joinRetryMs', 'pauseThresholdMs'];
  for (const k of positive) {
    if (!(c[k] > 0)) throw new GossipError('invalid_config', `swim config ${k} must be > 0 (got ${c[k]})`);
  }
  if (c.probeTimeoutMs >= c.protocolPeriodMs) {
    throw new GossipError('invalid_config', `swim config probeTimeoutMs (${c.probeTimeoutMs}) must be below protocolPeriodMs (${c.protocolPeriodMs}) to leave time for indirect probes`);
  }
  if (c.suspicionMaxMult < 1 || c.suspicionMult < 1) throw new GossipError('invalid_config', 'swim config suspicionMult and suspicionMaxMult must be >= 1');
  if (!(c.nackFraction > 0 && c.nackFraction < 1)) throw new GossipError('invalid_config', 'swim config nackFraction must be in (0, 1)');
}

function entryToUpdate(e: { id: MemberId; incarnation: Incarnation; state: MemberState; meta: MemberMeta }, self: MemberId): Update {
  switch (e.state) {
    case 'alive':
      return { kind: 'alive', id: e.id, incarnation: e.incarnation, meta: e.meta };
    case 'suspect':
      return { kind: 'suspect', id: e.id, incarnation: e.incarnation, from: self };
    case 'dead':
      return { kind: 'dead', id: e.id, incarnation: e.incarnation, from: self };
    case 'left':
      return { kind: 'left', id: e.id, incarnation: e.incarnation };
  }
}

export class Swim {
  readonly id: MemberId;
  private readonly cfg: SwimConfig;
  private readonly random: () => number;
  private nowMs: number;
  private incarnation: Incarnation;
  private meta: MemberMeta;
  private leaving = false;
  private healthScore = 0;
  private seq = 0;

  private readonly members = new Map<MemberId, MutableMember>();
  private readonly suspicions = new Map<MemberId, Suspicion>();
  private readonly relays = new Map<number, Relay>();
  /** At most one broadcast per member: a newer update about it replaces the older one. */
  private readonly broadcasts = new Map<MemberId, Broadcast>();

  /** Members suspected by others, probed ahead of the round robin so confirmations come within a period. */
  private urgent: MemberId[] = [];
  private probeOrder: MemberId[] = [];
  private probeIndex = 0;
  private probe: Probe | null = null;
  private nextProbeMs: number;
  private nextGossipMs: number;
  private nextSyncMs: number;
  private nextReconnectMs: number;
  private lastTickMs: number;

  private join: { addrs: readonly (readonly string[])[]; attempts: number; nextMs: number } | null = null;
  private joinState: JoinStatus = 'idle';

  private outbox: Outgoing[] = [];
  private events: MemberEvent[] = [];
  private published: Update[] = [];
  /** Counts of things dropped at a bound; exposed for logs and tests. */
  readonly dropped = { outbox: 0, members: 0, relays: 0, broadcasts: 0 };

  constructor(opts: SwimOptions) {
    this.cfg = { ...DEFAULT_SWIM_CONFIG, ...opts.config };
    validateConfig(this.cfg);
    assert(opts.id.length > 0, 'member id must not be empty');
    this.id = opts.id;
    this.meta = opts.meta;
    this.random = opts.random;
    this.nowMs = opts.nowMs;
    this.incarnation = opts.incarnation ?? 0;
    // Spread the first probe over a period so nodes started together do not probe in lockstep.
    this.nextProbeMs = opts.nowMs + Math.floor(this.random() * this.cfg.protocolPeriodMs);
    this.nextGossipMs = opts.nowMs + this.cfg.gossipIntervalMs;
    this.nextSyncMs = opts.nowMs + this.cfg.syncIntervalMs;
    this.nextReconnectMs = opts.nowMs + this.cfg.reconnectIntervalMs;
    this.lastTickMs = opts.nowMs;
  }

  // ---- queries -------------------------------------------------------------------------------

  self(): Member {
    return { id: this.id, incarnation: this.incarnation, state: this.leaving ? 'left' : 'alive', meta: this.meta, sinceMs: this.nowMs };
  }

  /** All known members except this node, in no particular order. */
  memberList(): Member[] {
    return [...this.members.values()].map((m) => ({ ...m }));
  }

  member(id: MemberId): Member | undefined {
    const m = this.members.get(id);
    return m === undefined ? undefined : { ...m };
  }

  /** Ids of members this node believes alive, itself included (unless leaving), sorted. */
  aliveIds(): MemberId[] {
    const ids = [...this.members.values()].filter((m) => m.state === 'alive').map((m) => m.id);
    if (!this.leaving) ids.push(this.id);
    return ids.sort();
  }

  /** Lifeguard's local health multiplier score: 0 is healthy. */
  localHealth(): number {
    return this.healthScore;
  }

  joinStatus(): JoinStatus {
    return this.joinState;
  }

  // ---- commands ------------------------------------------------------------------------------

  /**
   * Joins (or rejoins) through seeds, each given as the address list of one seed. Bumps our
   * incarnation so our alive outranks whatever the cluster remembers of an earlier life.
   */
  joinVia(seeds: readonly (readonly string[])[], nowMs: number): void {
    this.advance(nowMs);
    if (seeds.length === 0) throw new GossipError('invalid_address', 'join needs at least one seed address');
    this.leaving = false;
    this.incarnation += 1;
    this.enqueueBroadcast(this.selfAlive(), true);
    this.join = { addrs: seeds, attempts: 0, nextMs: nowMs };
    this.joinState = 'joining';
    this.tickJoin();
  }

  /** Announces new metadata (labels, role...) with a higher incarnation. */
  updateMeta(meta: MemberMeta, nowMs: number): void {
    this.advance(nowMs);
    this.meta = meta;
    this.incarnation += 1;
    this.enqueueBroadcast(this.selfAlive(), true);
  }

  /** Leaves gracefully: others mark us left (not dead). The host keeps running briefly to spread it. */
  leave(nowMs: number): void {
    this.advance(nowMs);
    if (this.leaving) return;
    this.leaving = true;
    this.incarnation += 1;
    this.probe = null;
    this.join = null;
    const update: Update = { kind: 'left', id: this.id, incarnation: this.incarnation };
    this.enqueueBroadcast(update, true);
    // Tell a few members directly right away; the host may stop soon after.
    for (const m of this.pickRandom(this.cfg.gossipFanout, (x) => x.state === 'alive' || x.state === 'suspect')) {
      this.send(m.id, m.meta.addrs, { type: 'gossip', updates: [update] });
    }
  }

  /** Drains what the host must do: messages to send, events to report, updates to broadcast. */
  ready(): SwimReady {
    const out: SwimReady = { messages: this.outbox, events: this.events, publish: this.published };
    this.outbox = [];
    this.events = [];
    this.published = [];
    return out;
  }

  // ---- time ----------------------------------------------------------------------------------

  tick(nowMs: number): void {
    this.advance(nowMs);
    const gapMs = nowMs - this.lastTickMs;
    this.lastTickMs = nowMs;
    if (gapMs > this.cfg.pauseThresholdMs) this.excusePause(gapMs);
    this.tickJoin();
    if (!this.leaving) this.tickProbe();
    this.tickRelays();
    this.tickSuspicions();
    this.tickGossip();
    if (!this.leaving) this.tickSync();
    this.tickGc();
  }

  private advance(nowMs: number): void {
    assert(Number.isFinite(nowMs), 'time must be finite');
    assert(nowMs >= this.nowMs, `time went backwards: ${nowMs} < ${this.nowMs}`);
    this.nowMs = nowMs;
  }

  /**
   * Lifeguard in spirit: our own stall is no evidence against others. (Not counted against our health
   * score either: that score only recovers one step per acked probe, and short GC pauses would pin it high.)
   */
  private excusePause(gapMs: number): void {
    const p = this.probe;
    if (p !== null) {
      this.probe = { ...p, directDeadlineMs: p.directDeadlineMs + gapMs, periodEndMs: p.periodEndMs + gapMs };
    }
    for (const [seq, r] of this.relays) this.relays.set(seq, { ...r, nackAtMs: r.nackAtMs + gapMs, expireMs: r.expireMs + gapMs });
    for (const [id, sus] of this.suspicions) this.suspicions.set(id, { ...sus, startMs: sus.startMs + gapMs });
    this.nextProbeMs += gapMs;
  }

  private scaled(ms: number): number {
    return ms * (1 + this.healthScore);
  }

  private adjustHealth(delta: number): void {
    this.healthScore = Math.max(0, Math.min(this.cfg.maxHealthScore, this.healthScore + delta));
  }

  private tickJoin(): void {
    const j = this.join;
    if (j === null || this.nowMs < j.nextMs) return;
    if (j.attempts >= this.cfg.maxJoinAttempts) {
      this.join = null;
      this.joinState = 'failed';
      return;
    }
    j.attempts += 1;
    j.nextMs = this.nowMs + this.cfg.joinRetryMs;
    for (const addrs of j.addrs) this.send(null, addrs, { type: 'sync', reply: false, members: this.fullState() });
  }

  private tickProbe(): void {
    const p = this.probe;
    if (p !== null) {
      if (!p.acked && !p.indirectSent && this.nowMs >= p.directDeadlineMs) this.sendIndirect(p);
      if (this.nowMs < p.periodEndMs) return;
      this.finishProbe(p);
      this.probe = null;
    }
    if (this.nowMs < this.nextProbeMs) return;
    const target = this.nextProbeTarget();
    const periodMs = this.scaled(this.cfg.protocolPeriodMs);
    this.nextProbeMs = this.nowMs + periodMs;
    if (target === null) return;
    const seq = this.nextSeq();
    this.probe = {
      seq,
      target: target.id,
      directDeadlineMs: this.nowMs + this.scaled(this.cfg.probeTimeoutMs),
      periodEndMs: this.nowMs + periodMs,
      indirectSent: false,
      acked: false,
      expectedNacks: 0,
      nacks: 0,
    };
    this.send(target.id, target.meta.addrs, { type: 'ping', seq, target: target.id, updates: [] });
  }

  private sendIndirect(p: Probe): void {
    p.indirectSent = true;
    const target = this.members.get(p.target);
    if (target === undefined) return;
    const helpers = this.pickRandom(this.cfg.indirectChecks, (m) => m.state === 'alive' && m.id !== p.target);
    p.expectedNacks = helpers.length;
    for (const h of helpers) {
      this.send(h.id, h.meta.addrs, { type: 'ping-req', seq: p.seq, target: p.target, targetAddrs: target.meta.addrs, updates: [] });
    }
  }

  private finishProbe(p: Probe): void {
    if (p.acked) return; // health already credited when the ack came
    // Lifeguard: if helpers did not even nack, the problem is likely on our side; without helpers,
    // any failed probe counts against our own health.
    if (p.expectedNacks > 0) {
      if (p.nacks < p.expectedNacks) this.adjustHealth(p.expectedNacks - p.nacks);
    } else {
      this.adjustHealth(1);
    }
    const m = this.members.get(p.target);
    if (m === undefined || (m.state !== 'alive' && m.state !== 'suspect')) return;
    this.applyUpdate({ kind: 'suspect', id: m.id, incarnation: m.incarnation, from: this.id }, this.id);
  }

  /** Round robin over a shuffled list; reshuffled each round (SWIM's bounded first-detection time). */
  private nextProbeTarget(): MutableMember | null {
    while (this.urgent.length > 0) {
      const id = this.urgent.shift();
      const m = id === undefined ? undefined : this.members.get(id);
      if (m !== undefined && m.state === 'suspect') return m;
    }
    for (let pass = 0; pass < 2; pass++) {
      while (this.probeIndex < this.probeOrder.length) {
        const id = this.probeOrder[this.probeIndex++];
        const m = id === undefined ? undefined : this.members.get(id);
        if (m !== undefined && (m.state === 'alive' || m.state === 'suspect')) return m;
      }
      this.probeOrder = this.shuffle([...this.members.values()].filter((m) => m.state === 'alive' || m.state === 'suspect').map((m) => m.id));
      this.probeIndex = 0;
      if (this.probeOrder.length === 0) return null;
    }
    return null;
  }

  private tickRelays(): void {
    for (const [seq, r] of this.relays) {
      if (this.nowMs >= r.expireMs) {
        this.relays.delete(seq);
        continue;
      }
      if (!r.nacked && this.nowMs >= r.nackAtMs) {
        r.nacked = true;
        const req = this.members.get(r.requester);
        this.send(r.requester, req?.meta.addrs ?? [], { type: 'nack', seq: r.requesterSeq, updates: [] });
      }
    }
  }

  private suspicionTimeoutMs(s: Suspicion): number {
    if (s.k < 1 || s.confirmations === 0) return s.k < 1 ? s.minMs : s.maxMs;
    const frac = Math.log(s.confirmations + 1) / Math.log(s.k + 1);
    return Math.max(s.minMs, s.maxMs - (s.maxMs - s.minMs) * frac);
  }

  private tickSuspicions(): void {
    for (const [id, s] of this.suspicions) {
      const m = this.members.get(id);
      if (m === undefined || m.state !== 'suspect') {
        this.suspicions.delete(id);
        continue;
      }
      if (this.nowMs - s.startMs >= this.suspicionTimeoutMs(s)) {
        this.applyUpdate({ kind: 'dead', id, incarnation: m.incarnation, from: this.id }, this.id);
      }
    }
  }

  private tickGossip(): void {
    if (this.nowMs < this.nextGossipMs) return;
    this.nextGossipMs = this.nowMs + this.cfg.gossipIntervalMs;
    if (this.broadcasts.size === 0) return;
    const targets = this.pickRandom(
      this.cfg.gossipFanout,
      (m) => m.state === 'alive' || m.state === 'suspect' || (m.state === 'dead' && this.nowMs - m.sinceMs < this.cfg.gossipToDeadMs),
    );
    for (const t of targets) {
      const updates = this.takePiggyback();
      if (updates.length === 0) break;
      this.outboxPush({ to: t.id, addrs: t.meta.addrs, message: { type: 'gossip', updates } });
    }
  }

  private tickSync(): void {
    if (this.nowMs >= this.nextSyncMs) {
      this.nextSyncMs = this.nowMs + this.cfg.syncIntervalMs;
      const [m] = this.pickRandom(1, (x) => x.state === 'alive');
      if (m !== undefined) this.send(m.id, m.meta.addrs, { type: 'sync', reply: false, members: this.fullState() });
    }
    if (this.nowMs >= this.nextReconnectMs) {
      this.nextReconnectMs = this.nowMs + this.cfg.reconnectIntervalMs;
      const [m] = this.pickRandom(1, (x) => x.state === 'dead');
      if (m !== undefined) this.send(m.id, m.meta.addrs, { type: 'sync', reply: false, members: this.fullState() });
    }
  }

  private tickGc(): void {
    for (const [id, m] of this.members) {
      if ((m.state === 'dead' || m.state === 'left') && this.nowMs - m.sinceMs >= this.cfg.deadRetentionMs) {
        this.members.delete(id);
        this.suspicions.delete(id);
        this.broadcasts.delete(id);
      }
    }
  }

  // ---- input ---------------------------------------------------------------------------------

  /** Handles one message from `from` (the transport-authenticated sender). */
  step(from: MemberId, msg: SwimMessage, nowMs: number): void {
    this.advance(nowMs);
    if (from === this.id) return;
    if (msg.type === 'sync') {
      this.mergeSync(from, msg.members);
      if (!msg.reply) {
        const m = this.members.get(from);
        this.send(from, m?.meta.addrs ?? [], { type: 'sync', reply: true, members: this.fullState() });
      } else if (this.join !== null) {
        this.join = null;
        this.joinState = 'joined';
      }
      return;
    }
    for (const u of msg.updates) this.applyUpdate(u, from);
    switch (msg.type) {
      case 'ping': {
        // A ping for another id reached us (e.g. an address reused by a new node): stay silent.
        if (msg.target !== this.id || this.leaving) return;
        const m = this.members.get(from);
        this.send(from, m?.meta.addrs ?? [], { type: 'ack', seq: msg.seq, updates: [] });
        return;
      }
      case 'ack': {
        const p = this.probe;
        if (p !== null && p.seq === msg.seq && !p.acked) {
          p.acked = true;
          this.adjustHealth(-1);
          return;
        }
        const r = this.relays.get(msg.seq);
        if (r !== undefined) {
          this.relays.delete(msg.seq);
          const req = this.members.get(r.requester);
          this.send(r.requester, req?.meta.addrs ?? [], { type: 'ack', seq: r.requesterSeq, updates: [] });
        }
        return;
      }
      case 'nack': {
        const p = this.probe;
        if (p !== null && p.seq === msg.seq && p.nacks < p.expectedNacks) p.nacks += 1;
        return;
      }
      case 'ping-req': {
        if (this.leaving) return;
        if (this.relays.size >= this.cfg.maxPendingRelays) {
          this.dropped.relays += 1;
          return;
        }
        const seq = this.nextSeq();
        this.relays.set(seq, {
          requester: from,
          requesterSeq: msg.seq,
          nackAtMs: this.nowMs + this.cfg.probeTimeoutMs * this.cfg.nackFraction,
          expireMs: this.nowMs + this.cfg.protocolPeriodMs,
          nacked: false,
        });
        const t = this.members.get(msg.target);
        this.send(msg.target, t?.meta.addrs ?? msg.targetAddrs, { type: 'ping', seq, target: msg.target, updates: [] });
        return;
      }
      case 'gossip':
        return;
    }
  }

  private mergeSync(from: MemberId, entries: readonly SyncEntry[]): void {
    for (const e of entries) {
      switch (e.state) {
        case 'alive':
          this.applyUpdate({ kind: 'alive', id: e.id, incarnation: e.incarnation, meta: e.meta }, from);
          break;
        case 'left':
          this.applyUpdate({ kind: 'left', id: e.id, incarnation: e.incarnation }, from);
          break;
        case 'suspect':
        case 'dead':
          // Another node's verdict of death in a full-state exchange may be stale (a healed partition):
          // take it as suspicion, so the member gets the chance to refute instead of dying here.
          this.applyUpdate({ kind: 'suspect', id: e.id, incarnation: e.incarnation, from }, from);
          break;
      }
    }
  }

  // ---- the incarnation rules -----------------------------------------------------------------

  /** Applies an update; new information is queued for re-dissemination. `via` is the node that told us. */
  private applyUpdate(u: Update, via: MemberId): void {
    if (u.id === this.id) {
      this.aboutSelf(u, via);
      return;
    }
    const m = this.members.get(u.id);
    switch (u.kind) {
      case 'alive': {
        if (m === undefined) {
          if (this.members.size >= this.cfg.maxMembers) {
            this.dropped.members += 1;
            return;
          }
          const fresh: MutableMember = { id: u.id, incarnation: u.incarnation, state: 'alive', meta: u.meta, sinceMs: this.nowMs };
          this.members.set(u.id, fresh);
          this.insertIntoProbeOrder(u.id);
          this.emit('member-joined', fresh);
          this.enqueueBroadcast(u, false);
          return;
        }
        if (u.incarnation <= m.incarnation) return;
        const prev = m.state;
        const metaChanged = !metaEqual(m.meta, u.meta);
        m.incarnation = u.incarnation;
        m.meta = u.meta;
        m.state = 'alive';
        if (prev !== 'alive') m.sinceMs = this.nowMs;
        this.suspicions.delete(u.id);
        if (prev === 'dead' || prev === 'left') {
          this.insertIntoProbeOrder(u.id);
          this.emit('member-joined', m);
        } else if (prev === 'suspect') {
          this.emit('member-alive', m);
          if (metaChanged) this.emit('member-updated', m);
        } else if (metaChanged) {
          this.emit('member-updated', m);
        }
        this.enqueueBroadcast(u, false);
        return;
      }
      case 'suspect': {
        if (m === undefined || m.state === 'dead' || m.state === 'left' || u.incarnation < m.incarnation) return;
        const originated = u.from === this.id;
        if (m.state === 'suspect' && u.incarnation > m.incarnation) {
          // The member refuted in between (we missed its alive): this is a new suspicion with a full timer.
          m.incarnation = u.incarnation;
          this.startSuspicion(u.id, u.from);
          this.enqueueBroadcast(u, originated);
          return;
        }
        if (m.state === 'suspect') {
          const s = this.suspicions.get(u.id);
          if (s !== undefined && !s.seen.has(u.from)) {
            s.seen.add(u.from);
            s.confirmations += 1;
            // A new independent confirmation is news for others' timers too.
            this.enqueueBroadcast(u, originated);
          }
          return;
        }
        m.incarnation = u.incarnation;
        m.state = 'suspect';
        m.sinceMs = this.nowMs;
        this.startSuspicion(u.id, u.from);
        // Check it ourselves soon: a quick independent confirmation (or ack) is what lets Lifeguard
        // shorten the suspicion of a dead node without shortening it for a live one.
        if (!originated && !this.urgent.includes(u.id) && this.urgent.length < MAX_URGENT_PROBES) this.urgent.push(u.id);
        this.emit('member-suspect', m);
        this.enqueueBroadcast(u, originated);
        return;
      }
      case 'dead': {
        if (m === undefined || m.state === 'dead' || m.state === 'left' || u.incarnation < m.incarnation) return;
        m.incarnation = u.incarnation;
        m.state = 'dead';
        m.sinceMs = this.nowMs;
        this.suspicions.delete(u.id);
        this.emit('member-dead', m);
        this.enqueueBroadcast(u, u.from === this.id);
        return;
      }
      case 'left': {
        if (m === undefined || m.state === 'left' || u.incarnation < m.incarnation) return;
        if (m.state === 'dead' && u.incarnation === m.incarnation) return;
        m.incarnation = u.incarnation;
        m.state = 'left';
        m.sinceMs = this.nowMs;
        this.suspicions.delete(u.id);
        this.emit('member-left', m);
        this.enqueueBroadcast(u, false);
        return;
      }
    }
  }

  private aboutSelf(u: Update, via: MemberId): void {
    if (this.leaving) return;
    switch (u.kind) {
      case 'alive':
        // Someone carries a newer alive of ours than we have (we restarted): outrank it.
        if (u.incarnation > this.incarnation) this.refute(u.incarnation, via);
        return;
      case 'suspect':
      case 'dead':
      case 'left':
        if (u.incarnation >= this.incarnation) {
          // Lifeguard: being suspected hints that we are the slow one.
          this.adjustHealth(1);
          this.refute(u.incarnation, via);
        }
        return;
    }
  }

  private refute(seenIncarnation: Incarnation, via: MemberId): void {
    this.incarnation = Math.max(this.incarnation, seenIncarnation) + 1;
    const alive = this.selfAlive();
    this.enqueueBroadcast(alive, true);
    // Tell the accuser directly too: it may hold us dead and so never probe or gossip to us.
    const m = this.members.get(via);
    if (via !== this.id) this.send(via, m?.meta.addrs ?? [], { type: 'gossip', updates: [alive] });
  }

  private startSuspicion(id: MemberId, from: MemberId): void {
    const n = this.liveCount();
    const minMs = this.cfg.suspicionMult * Math.max(1, Math.log10(Math.max(1, n))) * this.cfg.protocolPeriodMs;
    const maxMs = this.cfg.suspicionMaxMult * minMs;
    // Expect confirmations only when enough other members exist to give them.
    const wanted = this.cfg.suspicionMult - 2;
    const k = n - 2 < wanted ? 0 : wanted;
    this.suspicions.set(id, { startMs: this.nowMs, seen: new Set([from]), confirmations: 0, k, minMs, maxMs });
  }

  // ---- dissemination -------------------------------------------------------------------------

  private selfAlive(): Update {
    return { kind: 'alive', id: this.id, incarnation: this.incarnation, meta: this.meta };
  }

  private fullState(): SyncEntry[] {
    const entries: SyncEntry[] = [{ id: this.id, incarnation: this.incarnation, state: this.leaving ? 'left' : 'alive', meta: this.meta }];
    for (const m of this.members.values()) {
      if (entries.length >= this.cfg.maxMembers) break;
      entries.push({ id: m.id, incarnation: m.incarnation, state: m.state, meta: m.meta });
    }
    return entries;
  }

  private enqueueBroadcast(u: Update, originated: boolean): void {
    if (!this.broadcasts.has(u.id) && this.broadcasts.size >= this.cfg.maxBroadcastQueue) {
      // Drop the most retransmitted entry: it has had the most chances to spread already.
      let worst: MemberId | null = null;
      let worstTransmits = -1;
      for (const [id, b] of this.broadcasts) {
        if (b.transmits > worstTransmits) {
          worst = id;
          worstTransmits = b.transmits;
        }
      }
      if (worst !== null) this.broadcasts.delete(worst);
      this.dropped.broadcasts += 1;
    }
    this.broadcasts.set(u.id, { update: u, transmits: 0 });
    if (originated) this.published.push(u);
  }

  private retransmitLimit(): number {
    return this.cfg.retransmitMult * Math.ceil(Math.log10(this.liveCount() + 1));
  }

  /** The least-sent updates, up to maxPiggyback; each is dropped after retransmitLimit sends. */
  private takePiggyback(): Update[] {
    if (this.broadcasts.size === 0) return [];
    const limit = this.retransmitLimit();
    const chosen = [...this.broadcasts.values()].sort((a, b) => a.transmits - b.transmits).slice(0, this.cfg.maxPiggyback);
    for (const b of chosen) {
      b.transmits += 1;
      if (b.transmits >= limit) this.broadcasts.delete(b.update.id);
    }
    return chosen.map((b) => b.update);
  }

  private send(to: MemberId | null, addrs: readonly string[], body: SwimMessage): void {
    let message = body;
    if (body.type !== 'sync' && body.updates.length < this.cfg.maxPiggyback) {
      const extra = this.takePiggyback().filter((u) => !body.updates.includes(u));
      message = { ...body, updates: [...body.updates, ...extra].slice(0, this.cfg.maxPiggyback) };
    }
    this.outboxPush({ to, addrs, message });
  }

  private outboxPush(o: Outgoing): void {
    if (this.outbox.length >= this.cfg.maxOutbox) {
      this.dropped.outbox += 1;
      return;
    }
    this.outbox.push(o);
  }

  private emit(type: MemberEventType, m: MutableMember): void {
    this.events.push({ type, member: { ...m } });
  }

  // ---- helpers -------------------------------------------------------------------------------

  private nextSeq(): number {
    this.seq = (this.seq + 1) % Number.MAX_SAFE_INTEGER;
    return this.seq;
  }

  /** Members alive or suspect, plus ourselves: the "n" of SWIM's formulas. */
  private liveCount(): number {
    let n = 1;
    for (const m of this.members.values()) if (m.state === 'alive' || m.state === 'suspect') n += 1;
    return n;
  }

  private insertIntoProbeOrder(id: MemberId): void {
    // A random position after the cursor keeps the round robin fair to newcomers.
    const span = this.probeOrder.length - this.probeIndex;
    const at = this.probeIndex + Math.floor(this.random() * (span + 1));
    this.probeOrder.splice(at, 0, id);
  }

  private shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      const a = xs[i];
      const b = xs[j];
      assert(a !== undefined && b !== undefined, 'shuffle index in range');
      xs[i] = b;
      xs[j] = a;
    }
    return xs;
  }

  private pickRandom(count: number, keep: (m: MutableMember) => boolean): MutableMember[] {
    const pool = this.shuffle([...this.members.values()].filter(keep));
    return pool.slice(0, count);
  }
}
