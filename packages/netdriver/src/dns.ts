// The embedded DNS server: answers a task's questions about the swarm's names (services, `tasks.<service>`, task
// names, aliases) from the endpoint tables of the networks the asking task is on, and passes every other question
// to the host's own resolvers. One per host, on the gateway bridge's address, which every task with a way out reaches.

import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { decode, encode, RECURSION_AVAILABLE, RECURSION_DESIRED, type Answer, type Packet, type Question } from 'dns-packet';
import type { Logger } from '@swarm/wire';
import type { Endpoint } from './endpoints.js';
import { isIPv4 } from './ipam.js';

/** The swarm's answers live as long as the tables do: no caching, so changes are seen at once. */
const TTL_SECONDS = 0;
const UPSTREAM_TIMEOUT_MS = 2_000;
/** Questions being forwarded at once; beyond it a question is answered SERVFAIL at once. */
const MAX_FORWARDING = 1_024;

/**
 * The addresses a name stands for, seen from a task on `networks` (each the endpoints of one of its networks, in its
 * order: the first network that knows a name answers it); null when the swarm does not know the name.
 * `web` and an alias: the service's virtual IP when `vipRouted`, else its ready tasks' addresses; `tasks.web`: its
 * ready tasks' addresses; `web.1.<task id>`: that task's address.
 */
export function resolveName(name: string, networks: ReadonlyArray<readonly Endpoint[]>, vipRouted: boolean): string[] | null {
  const n = name.toLowerCase().replace(/\.$/, '');
  const ofTasks = n.startsWith('tasks.') ? n.slice('tasks.'.length) : null;
  for (const endpoints of networks) {
    const named = (e: Endpoint, what: string): boolean => e.service.toLowerCase() === what || e.aliases.some((a) => a.toLowerCase() === what);
    if (ofTasks !== null) {
      const members = endpoints.filter((e) => named(e, ofTasks));
      if (members.length > 0) return unique(members.filter((e) => e.ready && e.circuit !== 'open').map((e) => e.ip));
      continue;
    }
    const members = endpoints.filter((e) => named(e, n));
    if (members.length > 0) {
      const vip = members.find((e) => e.vip !== '')?.vip;
      if (vip !== undefined && vipRouted) return [vip];
      return unique(members.filter((e) => e.ready && e.circuit !== 'open').map((e) => e.ip));
    }
    const task = endpoints.find((e) => e.task !== '' && e.task.toLowerCase() === n);
    if (task !== undefined) return [task.ip];
  }
  return null;
}

function unique(ips: string[]): string[] {
  return [...new Set(ips)].sort();
}

/** The nameservers of a resolv.conf (the host's, by default). */
export function upstreamServers(path = '/etc/resolv.conf'): string[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((s): s is string => s !== undefined && isIPv4(s));
}

export interface EmbeddedDnsOptions {
  /** What the asking task may see (see OverlayDriver.dnsView); null for an address that is no task's. */
  view: (askerIp: string) => Endpoint[][] | null;
  logger: Logger;
  /** Resolvers for the names the swarm does not know (default: the host's resolv.conf, read at start). */
  upstream?: readonly string[];
  upstreamPort?: number;
  /** Whether a service's virtual IP reaches its tasks yet (the VIP load balancer); until then `web` gives task IPs. */
  vipRouted?: boolean;
}

export class EmbeddedDns {
  private socket: Socket | null = null;
  private forwarding = 0;
  /** The resolvers other names go to: given, or the host's resolv.conf as it was when the server started. */
  private upstream: readonly string[] = [];
  /** Counters for logs, tests and the benchmark. */
  readonly stats = { answered: 0, forwarded: 0, refused: 0, failed: 0 };

  constructor(private readonly opts: EmbeddedDnsOptions) {}

  /** Listens on `address:port` (UDP); resolves once bound. */
  async start(address: string, port = 53): Promise<void> {
    if (this.socket !== null) return;
    this.upstream = this.opts.upstream ?? upstreamServers();
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', (err) => this.opts.logger.warn({ err: err.message }, 'dns socket error'));
    socket.on('message', (msg, from) => this.onQuery(msg, from));
    this.socket = socket;
    this.opts.logger.info({ address, port }, 'embedded DNS listening');
  }

  async stop(): Promise<void> {
    const s = this.socket;
    this.socket = null;
    if (s !== null) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  address(): { address: string; port: number } | null {
    return this.socket === null ? null : this.socket.address();
  }

  private onQuery(msg: Buffer, from: RemoteInfo): void {
    let query: Packet;
    try {
      query = decode(msg);
    } catch {
      this.stats.refused += 1;
      return; // not DNS: no answer at all
    }
    const q = query.questions?.[0];
    if (query.type !== 'query' || q === undefined) {
      this.stats.refused += 1;
      return;
    }
    const view = this.opts.view(from.address);
    if (view !== null && (q.type === 'A' || q.type === 'AAAA')) {
      const ips = resolveName(q.name, view, this.opts.vipRouted ?? false);
      if (ips !== null) {
        // The swarm has no IPv6: a known name has no AAAA records (an empty answer, not an error).
        const answers: Answer[] = q.type === 'AAAA' ? [] : ips.map((ip) => ({ type: 'A', name: q.name, ttl: TTL_SECONDS, class: 'IN', data: ip }));
        this.reply(from, { id: query.id ?? 0, type: 'response', flags: RESPONSE_FLAGS, questions: [q], answers });
        this.stats.answered += 1;
        return;
      }
    }
    this.forward(msg, query, q, from);
  }

  private forward(msg: Buffer, query: Packet, q: Question, from: RemoteInfo): void {
    const server = this.upstream[0];
    if (server === undefined || this.forwarding >= MAX_FORWARDING) {
      this.fail(query, q, from);
      return;
    }
    this.forwarding += 1;
    this.stats.forwarded += 1;
    const out = createSocket('udp4');
    let done = false;
    const finish = (answer: Buffer | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.forwarding -= 1;
      out.close();
      if (answer === null) this.fail(query, q, from);
      else this.socket?.send(answer, from.port, from.address);
    };
    const timer = setTimeout(() => finish(null), UPSTREAM_TIMEOUT_MS);
    out.on('error', () => finish(null));
    out.on('message', (answer) => finish(answer));
    out.send(msg, this.opts.upstreamPort ?? 53, server);
  }

  private fail(query: Packet, q: Question, from: RemoteInfo): void {
    this.stats.failed += 1;
    this.reply(from, { id: query.id ?? 0, type: 'response', flags: RESPONSE_FLAGS | SERVFAIL, questions: [q], answers: [] });
  }

  private reply(to: RemoteInfo, packet: Packet): void {
    this.socket?.send(encode(packet), to.port, to.address);
  }
}

/** QR is set by `type: 'response'`; recursion desired and available, as a resolver says; rcode in the low bits. */
const RESPONSE_FLAGS = RECURSION_DESIRED | RECURSION_AVAILABLE;
const SERVFAIL = 2;
