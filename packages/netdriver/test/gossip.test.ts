// The endpoint tables' gossip over real libp2p hosts on 127.0.0.1 (gossipsub, SWIM), with stand-in data planes:
// hosts on a network learn each other's endpoints, a host that joins late gets the whole table at once (not at
// the next republish), a withdrawn endpoint leaves every peer, and a dead host's endpoints are dropped everywhere.

import test from 'ava';
import { createGossipHost, generateSwarmKey, Membership, type GossipHost } from '@swarm/gossip';
import { pollUntil, silentLogger } from '@swarm/wire';
import { EndpointGossip, macForIp, type Endpoint, type EndpointSource, type RemoteEndpoint } from '../src/index.js';

/** A data plane that keeps what gossip tells it. */
class FakePlane implements EndpointSource {
  readonly local = new Map<string, Endpoint[]>();
  readonly peers = new Map<string, RemoteEndpoint[]>();
  private readonly listeners = new Set<(n: string) => void>();
  onLocalChange(fn: (n: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  localNetworks(): string[] {
    return [...this.local.keys()].filter((n) => (this.local.get(n) ?? []).length > 0);
  }
  localEndpoints(n: string): Endpoint[] {
    return this.local.get(n) ?? [];
  }
  async setPeers(n: string, peers: readonly RemoteEndpoint[]): Promise<void> {
    this.peers.set(n, [...peers]);
  }
  set(n: string, ips: string[]): void {
    this.local.set(n, ips.map((ip) => ({ ip, mac: macForIp(ip), taskId: `t-${ip}`, service: 'web', task: `web.1.t-${ip}`, aliases: [], vip: '', ready: true })));
    for (const fn of this.listeners) fn(n);
  }
  seen(n: string): string[] {
    return (this.peers.get(n) ?? []).map((p) => `${p.ip}@${p.host}`).sort();
  }
}

interface Host {
  host: GossipHost;
  membership: Membership;
  plane: FakePlane;
  gossip: EndpointGossip;
  underlay: string;
  stop(): Promise<void>;
}

const psk = generateSwarmKey();
const running: Host[] = [];
test.after.always(async () => {
  await Promise.allSettled(running.map((h) => h.stop()));
});

async function start(underlay: string, seed: Host | null, plane = new FakePlane()): Promise<Host> {
  const host = await createGossipHost({ listen: '127.0.0.1:0', psk, logger: silentLogger() });
  const membership = await Membership.start({ host, logger: silentLogger(), meta: { nodeId: underlay, hostname: underlay, role: 'worker', cpus: 1, memoryBytes: 1 << 30, labels: {}, version: 'test' } });
  if (seed !== null) await membership.join([seed.host.multiaddrs()[0] ?? '']);
  // A republish period far beyond the test: whatever arrives, arrives by change or by sync.
  const gossip = new EndpointGossip({ host, membership, driver: plane, underlayAddr: underlay, logger: silentLogger(), republishMs: 600_000 });
  gossip.start();
  let stopped = false;
  const h: Host = {
    host,
    membership,
    plane,
    gossip,
    underlay,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      gossip.stop();
      await membership.stop();
      await host.stop();
    },
  };
  running.push(h);
  return h;
}

const until = <T>(what: string, fn: () => T | undefined | false): Promise<T> => pollUntil(what, fn, { deadlineMs: 15_000, intervalMs: 20 });

test.serial('hosts learn each other\'s endpoints; a late joiner gets the whole table at once; withdrawals and dead hosts leave every table', async (t) => {
  const planeA = new FakePlane();
  planeA.set('net1', ['10.0.1.2']);
  const a = await start('10.250.0.1', null, planeA);
  const planeB = new FakePlane();
  planeB.set('net1', ['10.0.1.3', '10.0.1.4']);
  planeB.set('net2', ['10.0.2.3']);
  const b = await start('10.250.0.2', a, planeB);
  await until('a and b see each other on net1', () => a.plane.seen('net1').length === 2 && b.plane.seen('net1').length === 1);
  t.deepEqual(a.plane.seen('net1'), ['10.0.1.3@10.250.0.2', '10.0.1.4@10.250.0.2']);
  t.deepEqual(b.plane.seen('net1'), ['10.0.1.2@10.250.0.1']);
  t.deepEqual(a.plane.seen('net2'), [], 'a has no task on net2: it does not take part');

  // A late joiner asks on joining: it has both tables long before any republish (600 s away).
  const planeC = new FakePlane();
  planeC.set('net1', ['10.0.1.5']);
  const c = await start('10.250.0.3', a, planeC);
  await until('c has the whole table', () => c.plane.seen('net1').length === 3);
  t.deepEqual(c.plane.seen('net1'), ['10.0.1.2@10.250.0.1', '10.0.1.3@10.250.0.2', '10.0.1.4@10.250.0.2']);
  await until('a and b see c', () => a.plane.seen('net1').includes('10.0.1.5@10.250.0.3') && b.plane.seen('net1').includes('10.0.1.5@10.250.0.3'));

  // b's task 10.0.1.4 goes: gone from a and c.
  b.plane.set('net1', ['10.0.1.3']);
  await until('10.0.1.4 withdrawn everywhere', () => !a.plane.seen('net1').some((x) => x.startsWith('10.0.1.4')) && !c.plane.seen('net1').some((x) => x.startsWith('10.0.1.4')));

  // c dies without a word: SWIM declares it dead, and its endpoints leave a's and b's tables.
  await c.stop();
  await until("c's endpoints dropped", () => !a.plane.seen('net1').some((x) => x.endsWith('@10.250.0.3')) && !b.plane.seen('net1').some((x) => x.endsWith('@10.250.0.3')));
  t.deepEqual(a.plane.seen('net1'), ['10.0.1.3@10.250.0.2']);
  t.true(a.gossip.stats.invalid === 0 && b.gossip.stats.invalid === 0);
});
