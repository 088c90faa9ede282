// The overlay's control plane on gossip: a host with local tasks on a network publishes its whole endpoint table
// for it on the network's gossipsub topic (at every change, and again every few seconds), asks for everyone's on
// joining, and programs the union; a peer that gossip declares dead or gone is dropped from every table.

import { decode, encode, type Logger } from '@swarm/wire';
import type { GossipHost, Membership, MemberEvent } from '@swarm/gossip';
import { LB_STRATEGIES } from '@swarm/store';
import { FULL_WEIGHT } from './balance.js';
import { EndpointTable, MAX_ENDPOINTS_PER_TABLE, type Endpoint, type PublishedTable, type RemoteEndpoint } from './endpoints.js';
import { assert } from './errors.js';
import { isIPv4 } from './ipam.js';

/** What the gossip needs of the data plane (the OverlayDriver is one). */
export interface EndpointSource {
  onLocalChange(fn: (networkId: string) => void): () => void;
  /** Networks with local endpoints. */
  localNetworks(): string[];
  localEndpoints(networkId: string): Endpoint[];
  setPeers(networkId: string, peers: readonly RemoteEndpoint[]): Promise<void>;
}

export const ENDPOINT_TOPIC_PREFIX = 'swarm/net/';
export const DEFAULT_REPUBLISH_MS = 5_000;
/** Joining a network is announced again after 100, 200, 400 … ms, this many times (the last after ~6 s). */
const ANNOUNCE_RETRIES = 6;
const ANNOUNCE_FIRST_RETRY_MS = 100;
/** A sync request is answered at most this often per network: a burst of joins gets one answer each period. */
const SYNC_ANSWER_MIN_GAP_MS = 100;

type EndpointMessage = { kind: 'table'; table: PublishedTable } | { kind: 'sync'; networkId: string };

export interface EndpointGossipOptions {
  host: GossipHost;
  membership: Membership;
  driver: EndpointSource;
  /** This host's underlay address, as its tables carry it. */
  underlayAddr: string;
  logger: Logger;
  republishMs?: number;
  /** Epoch milliseconds: sequence numbers start from it so a restarted host outranks its earlier tables. */
  nowMs?: () => number;
}

export function endpointTopic(networkId: string): string {
  return `${ENDPOINT_TOPIC_PREFIX}${networkId}`;
}

export class EndpointGossip {
  readonly table: EndpointTable;
  private readonly log: Logger;
  private readonly joined = new Map<string, () => void>();
  private readonly lastSyncAnswer = new Map<string, number>();
  private seq: number;
  private timer: NodeJS.Timeout | null = null;
  private readonly unlisten: Array<() => void> = [];
  private stopped = false;
  /** Counters for logs and tests. */
  readonly stats = { published: 0, received: 0, invalid: 0, peersDropped: 0 };

  constructor(private readonly opts: EndpointGossipOptions) {
    this.log = opts.logger;
    this.table = new EndpointTable(opts.host.peerId);
    // Milliseconds since the epoch, scaled: room for 1000 publications per millisecond before the next boot's start.
    this.seq = (opts.nowMs ?? Date.now)() * 1000;
  }

  start(): void {
    assert(this.timer === null && !this.stopped, 'started once');
    this.unlisten.push(this.opts.driver.onLocalChange((networkId) => this.localChanged(networkId)));
    const drop = (e: MemberEvent): void => this.peerGone(e.member.id);
    this.unlisten.push(this.opts.membership.on('member-dead', drop), this.opts.membership.on('member-left', drop));
    // A peer back from the dead (a false suspicion, a restart) gets everyone's tables again at its next republish;
    // asking at once makes that immediate.
    this.unlisten.push(this.opts.membership.on('member-alive', () => this.requestAll()));
    for (const networkId of this.opts.driver.localNetworks()) this.localChanged(networkId);
    this.timer = setInterval(() => this.republish(), this.opts.republishMs ?? DEFAULT_REPUBLISH_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    for (const u of this.unlisten.splice(0)) u();
    for (const unsubscribe of this.joined.values()) unsubscribe();
    this.joined.clear();
  }

  /** Networks this host takes part in. */
  networks(): string[] {
    return [...this.joined.keys()].sort();
  }

  private localChanged(networkId: string): void {
    if (this.stopped) return;
    const local = this.opts.driver.localEndpoints(networkId);
    if (local.length > 0 && !this.joined.has(networkId)) {
      const unsubscribe = this.opts.host.subscribe(endpointTopic(networkId), (data, from) => this.receive(networkId, data, from));
      this.joined.set(networkId, unsubscribe);
      this.announce(networkId, 0);
      return;
    }
    // Withdrawn or changed: peers get the new table (an empty one removes us from theirs).
    this.publish(networkId, local);
    if (local.length === 0 && this.joined.has(networkId)) {
      this.joined.get(networkId)?.();
      this.joined.delete(networkId);
      this.table.dropNetwork(networkId);
      void this.opts.driver.setPeers(networkId, []).catch((err: unknown) => this.log.warn({ err: (err as Error).message, network: networkId }, 'clearing peers failed'));
    }
  }

  private publish(networkId: string, endpoints: readonly Endpoint[]): void {
    this.seq += 1;
    void this.send(networkId, { kind: 'table', table: { networkId, seq: this.seq, host: this.opts.underlayAddr, endpoints: endpoints.map((e) => ({ ...e, aliases: [...e.aliases] })) } });
  }

  /**
   * On joining a network: our table and a request for everyone's, sent again after 100, 200, 400 … ms
   * (ANNOUNCE_RETRIES times). Right after subscribing, gossipsub may not know yet who else is on the topic
   * (subscriptions travel too), or know only some: a request that reached one peer is not one that reached all,
   * and those it missed would otherwise answer only at their next republish. Answers are rate-limited per network.
   */
  private announce(networkId: string, attempt: number): void {
    if (this.stopped || !this.joined.has(networkId)) return;
    this.publish(networkId, this.opts.driver.localEndpoints(networkId));
    void this.send(networkId, { kind: 'sync', networkId });
    if (attempt >= ANNOUNCE_RETRIES) return;
    const timer = setTimeout(() => this.announce(networkId, attempt + 1), ANNOUNCE_FIRST_RETRY_MS * 2 ** attempt);
    timer.unref();
  }

  /** Resolves to the number of peers the message was sent to (0 when it failed). */
  private send(networkId: string, msg: EndpointMessage): Promise<number> {
    this.stats.published += 1;
    return this.opts.host.publish(endpointTopic(networkId), encode(msg)).catch((err: unknown) => {
      if (!this.stopped) this.log.debug({ err: (err as Error).message, network: networkId }, 'endpoint publish failed');
      return 0;
    });
  }

  private receive(networkId: string, data: Uint8Array, from: string | null): void {
    if (this.stopped || from === null || from === this.opts.host.peerId) return;
    const msg = parseMessage(data);
    if (msg === null || (msg.kind === 'table' ? msg.table.networkId : msg.networkId) !== networkId) {
      this.stats.invalid += 1;
      this.log.warn({ from, network: networkId }, 'malformed endpoint message dropped');
      return;
    }
    this.stats.received += 1;
    if (msg.kind === 'sync') {
      const now = Date.now();
      if (now - (this.lastSyncAnswer.get(networkId) ?? 0) < SYNC_ANSWER_MIN_GAP_MS) return;
      this.lastSyncAnswer.set(networkId, now);
      this.publish(networkId, this.opts.driver.localEndpoints(networkId));
      return;
    }
    if (this.table.apply(from, msg.table)) this.program(networkId);
  }

  private peerGone(peerId: string): void {
    const changed = this.table.dropPublisher(peerId);
    if (changed.length === 0) return;
    this.stats.peersDropped += 1;
    this.log.info({ peer: peerId, networks: changed }, "a dead peer's endpoints removed");
    for (const networkId of changed) this.program(networkId);
  }

  private program(networkId: string): void {
    if (!this.joined.has(networkId)) return;
    const peers = this.table.remote(networkId);
    void this.opts.driver.setPeers(networkId, peers).catch((err: unknown) => this.log.warn({ err: (err as Error).message, network: networkId }, 'programming peers failed'));
  }

  private republish(): void {
    for (const networkId of this.joined.keys()) this.publish(networkId, this.opts.driver.localEndpoints(networkId));
  }

  private requestAll(): void {
    for (const networkId of this.joined.keys()) void this.send(networkId, { kind: 'sync', networkId });
  }
}

/** Aliases per endpoint, and a DNS name's length: bounds on what a peer can make us hold. */
const MAX_ALIASES = 32;
const MAX_NAME_LENGTH = 255;

function isName(v: unknown): v is string {
  return typeof v === 'string' && v.length <= MAX_NAME_LENGTH;
}

/** Outside data: anything not exactly an endpoint message is null, never thrown. */
export function parseMessage(data: Uint8Array): EndpointMessage | null {
  let raw: unknown;
  try {
    raw = decode(data);
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const m = raw as Record<string, unknown>;
  if (m['kind'] === 'sync') return typeof m['networkId'] === 'string' ? { kind: 'sync', networkId: m['networkId'] } : null;
  if (m['kind'] !== 'table' || typeof m['table'] !== 'object' || m['table'] === null) return null;
  const t = m['table'] as Record<string, unknown>;
  if (typeof t['networkId'] !== 'string' || typeof t['seq'] !== 'number' || !Number.isFinite(t['seq']) || typeof t['host'] !== 'string') return null;
  const endpoints = t['endpoints'];
  if (!Array.isArray(endpoints) || endpoints.length > MAX_ENDPOINTS_PER_TABLE) return null;
  const out: Endpoint[] = [];
  for (const e of endpoints as unknown[]) {
    if (typeof e !== 'object' || e === null) return null;
    const r = e as Record<string, unknown>;
    if (typeof r['ip'] !== 'string' || typeof r['mac'] !== 'string' || typeof r['taskId'] !== 'string') return null;
    if (!isIPv4(r['ip']) || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(r['mac'])) return null;
    const aliases = r['aliases'];
    if (!isName(r['service']) || !isName(r['task']) || typeof r['ready'] !== 'boolean') return null;
    if (!Array.isArray(aliases) || aliases.length > MAX_ALIASES || !aliases.every(isName)) return null;
    if (typeof r['vip'] !== 'string' || (r['vip'] !== '' && !isIPv4(r['vip']))) return null;
    // Optional, and ignored when not understood (a peer of a later version): never a reason to drop a table.
    const lb = LB_STRATEGIES.find((x) => x === r['lb']);
    const circuit = r['circuit'] === 'open' || r['circuit'] === 'half-open' ? r['circuit'] : undefined;
    const capacity = typeof r['capacity'] === 'number' && Number.isInteger(r['capacity']) && r['capacity'] >= 1 && r['capacity'] <= FULL_WEIGHT ? r['capacity'] : undefined;
    out.push({
      ip: r['ip'],
      mac: r['mac'],
      taskId: r['taskId'],
      service: r['service'],
      task: r['task'],
      aliases: aliases as string[],
      vip: r['vip'],
      ready: r['ready'],
      ...(lb !== undefined ? { lb } : {}),
      ...(circuit !== undefined ? { circuit } : {}),
      ...(capacity !== undefined ? { capacity } : {}),
    });
  }
  if (!isIPv4(t['host'])) return null;
  return { kind: 'table', table: { networkId: t['networkId'], seq: t['seq'], host: t['host'], endpoints: out } };
}
