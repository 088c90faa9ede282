// The cluster's endpoint tables as one host sees them: for each overlay network, the endpoints (task address, MAC,
// underlay address of the host) each peer last published. Pure and deterministic; the gossip module feeds it.

import type { LbStrategy } from '@swarm/store';
import { assert } from './errors.js';

/** One task's interface on an overlay network, as its host publishes it. */
export interface Endpoint {
  /** Address without prefix, e.g. '10.0.1.5'. */
  ip: string;
  mac: string;
  taskId: string;
  /** What the embedded DNS answers for it: its service's name, its own name (`web.1.<task id>`), its aliases. */
  service: string;
  task: string;
  aliases: readonly string[];
  /** Its service's virtual IP on this network, without prefix; '' in endpoint mode dnsrr. */
  vip: string;
  /** Running (and healthy, with a health check): only ready endpoints are in DNS answers. */
  ready: boolean;
  /** Its service's load-balancing strategy (absent: round-robin). */
  lb?: LbStrategy;
  /**
   * Its circuit, as its own host sees the connections it refuses or resets: open (no traffic, out of DNS answers)
   * or half-open (a trickle); absent: closed.
   */
  circuit?: Circuit;
  /** Its host's spare capacity, 1-10, for load-aware balancing (absent: full). */
  capacity?: number;
}

export type Circuit = 'open' | 'half-open';

/** An endpoint of another host, with where VXLAN must send its frames. */
export interface RemoteEndpoint extends Endpoint {
  /** The underlay address of the host that runs the task. */
  host: string;
}

/** A publisher's whole table for one network: later sequence numbers replace earlier ones. */
export interface PublishedTable {
  networkId: string;
  /** Strictly increasing per publisher, across its restarts too (it starts from its boot time). */
  seq: number;
  host: string;
  endpoints: readonly Endpoint[];
}

interface Held {
  seq: number;
  host: string;
  endpoints: readonly Endpoint[];
}

/** Bound on endpoints one publisher may claim on one network (a /16 of tasks on one host is already absurd). */
export const MAX_ENDPOINTS_PER_TABLE = 65_536;

export class EndpointTable {
  /** networkId -> publisher -> its table. */
  private readonly tables = new Map<string, Map<string, Held>>();

  constructor(private readonly self: string) {
    assert(self !== '', 'the table knows who it is');
  }

  /** Takes a publisher's table; true when it changed what remote() answers for the network. */
  apply(publisher: string, table: PublishedTable): boolean {
    if (publisher === this.self) return false;
    assert(table.endpoints.length <= MAX_ENDPOINTS_PER_TABLE, `table of ${table.endpoints.length} endpoints`);
    let byPublisher = this.tables.get(table.networkId);
    const held = byPublisher?.get(publisher);
    if (held !== undefined && held.seq >= table.seq) return false;
    if (byPublisher === undefined) this.tables.set(table.networkId, (byPublisher = new Map()));
    const before = held === undefined ? '' : key(held);
    // An empty table is kept too: its sequence number stops an older full one, arriving late, from bringing endpoints back.
    byPublisher.set(publisher, { seq: table.seq, host: table.host, endpoints: [...table.endpoints] });
    return before !== key({ seq: table.seq, host: table.host, endpoints: table.endpoints });
  }

  /** A peer is gone (gossip's verdict): its endpoints leave every network. The networks that changed. */
  dropPublisher(publisher: string): string[] {
    const changed: string[] = [];
    for (const [networkId, byPublisher] of this.tables) {
      const held = byPublisher.get(publisher);
      if (held === undefined) continue;
      byPublisher.delete(publisher);
      if (held.endpoints.length > 0) changed.push(networkId);
      if (byPublisher.size === 0) this.tables.delete(networkId);
    }
    return changed.sort();
  }

  /** This host left the network: forget what it knew of it. */
  dropNetwork(networkId: string): void {
    this.tables.delete(networkId);
  }

  /**
   * Every other host's endpoints on the network, one per address. Two hosts claiming one address (a task moved
   * and its old host has not withdrawn it yet) resolve to the later publication, deterministically.
   */
  remote(networkId: string): RemoteEndpoint[] {
    const byIp = new Map<string, RemoteEndpoint & { seq: number; publisher: string }>();
    for (const [publisher, held] of this.tables.get(networkId) ?? []) {
      for (const e of held.endpoints) {
        const prev = byIp.get(e.ip);
        if (prev !== undefined && (prev.seq > held.seq || (prev.seq === held.seq && prev.publisher > publisher))) continue;
        byIp.set(e.ip, { ...e, host: held.host, seq: held.seq, publisher });
      }
    }
    return [...byIp.values()].map(({ seq: _seq, publisher: _publisher, ...e }) => e).sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
  }

  /** Publishers that hold at least one endpoint on the network. */
  publishers(networkId: string): string[] {
    return [...(this.tables.get(networkId) ?? [])].filter(([, h]) => h.endpoints.length > 0).map(([p]) => p).sort();
  }
}

function key(h: Held): string {
  if (h.endpoints.length === 0) return '';
  return `${h.host}|${[...h.endpoints].map((e) => JSON.stringify([e.ip, e.mac, e.taskId, e.service, e.task, e.aliases, e.vip, e.ready, e.lb ?? '', e.circuit ?? '', e.capacity ?? 0])).sort().join(',')}`;
}

/** Docker's rule: 02:42 followed by the four bytes of the IPv4 address, so a MAC never has to be looked up. */
export function macForIp(ip: string): string {
  const parts = ip.split('.').map(Number);
  assert(parts.length === 4 && parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255), `${ip} is an IPv4 address`);
  return ['02', '42', ...parts.map((p) => p.toString(16).padStart(2, '0'))].join(':');
}
