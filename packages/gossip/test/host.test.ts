// Real-network tests of the libp2p host on 127.0.0.1: connections, gossipsub, streams, and the
// private-network key that keeps machines without it out. Every host is stopped in teardown.

import test from 'ava';
import { silentLogger, pollUntil } from '@swarm/wire';
import { checkSwarmKey, createGossipHost, generateSwarmKey, toListenMultiaddr, type GossipHost } from '../src/host.js';

const hosts: GossipHost[] = [];

async function newHost(psk: Uint8Array): Promise<GossipHost> {
  const h = await createGossipHost({ listen: '127.0.0.1:0', psk, logger: silentLogger() });
  hosts.push(h);
  return h;
}

test.after.always(async () => {
  await Promise.allSettled(hosts.map((h) => h.stop()));
});

const until = <T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, deadlineMs: number): Promise<T> =>
  pollUntil(what, fn, { deadlineMs, intervalMs: 20 });

test('listen addresses: IP:PORT and multiaddr forms are accepted, nonsense is refused', (t) => {
  t.is(toListenMultiaddr('127.0.0.1:0').toString(), '/ip4/127.0.0.1/tcp/0');
  t.is(toListenMultiaddr('[::1]:2377').toString(), '/ip6/::1/tcp/2377');
  t.is(toListenMultiaddr('/ip4/127.0.0.1/tcp/5').toString(), '/ip4/127.0.0.1/tcp/5');
  t.throws(() => toListenMultiaddr('localhost'), { message: /expected IP:PORT/ });
  t.throws(() => toListenMultiaddr('127.0.0.1:99999'), { message: /expected IP:PORT/ });
});

test('swarm key: a malformed key is refused with a clear error before libp2p starts', async (t) => {
  t.notThrows(() => checkSwarmKey(generateSwarmKey()));
  t.throws(() => checkSwarmKey(new TextEncoder().encode('not a key')), { message: /pnet v1 key file/ });
  await t.throwsAsync(createGossipHost({ listen: '127.0.0.1:0', psk: new Uint8Array(10), logger: silentLogger() }), { message: /pnet v1 key file/ });
});

test('hosts sharing the swarm key connect, and a gossipsub message reaches every subscriber', async (t) => {
  const psk = generateSwarmKey();
  const [a, b, c] = [await newHost(psk), await newHost(psk), await newHost(psk)];
  const seed = a.multiaddrs()[0];
  if (seed === undefined) throw new Error('no listen address');
  t.regex(seed, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//);
  t.is(await b.dial(seed), a.peerId);
  t.is(await c.dial(seed), a.peerId);
  const got = new Map<string, { data: string; from: string | null }>();
  for (const h of [a, b, c]) {
    h.subscribe('t/test', (data, from) => got.set(h.peerId, { data: new TextDecoder().decode(data), from }));
  }
  // The mesh needs subscriptions exchanged first; keep publishing until everyone got one.
  await until('gossipsub delivery to a and c', async () => {
    await b.publish('t/test', new TextEncoder().encode('hello'));
    return got.has(a.peerId) && got.has(c.peerId);
  }, 10_000);
  t.deepEqual(got.get(c.peerId), { data: 'hello', from: b.peerId });
  t.deepEqual(got.get(a.peerId), { data: 'hello', from: b.peerId });
  t.false(got.has(b.peerId), 'no echo to the publisher');
});

test('a stream protocol handler receives bytes and knows the authenticated remote peer', async (t) => {
  const psk = generateSwarmKey();
  const [a, b] = [await newHost(psk), await newHost(psk)];
  let seenFrom = '';
  await a.handle('/swarm/test-echo/1.0.0', async (stream, remote) => {
    seenFrom = remote;
    for await (const chunk of stream) stream.send(chunk);
    await stream.close();
  });
  const addr = a.multiaddrs()[0];
  if (addr === undefined) throw new Error('no address');
  const s = await b.openStream(addr, '/swarm/test-echo/1.0.0');
  s.send(new TextEncoder().encode('ping'));
  await s.close();
  const chunks: Uint8Array[] = [];
  for await (const c of s) chunks.push(c instanceof Uint8Array ? c : c.subarray());
  t.is(new TextDecoder().decode(Buffer.concat(chunks)), 'ping');
  t.is(seenFrom, b.peerId);
});

test('private network: a host without the cluster key cannot connect', async (t) => {
  const member = await newHost(generateSwarmKey());
  const outsider = await newHost(generateSwarmKey());
  const addr = member.multiaddrs()[0];
  if (addr === undefined) throw new Error('no address');
  await t.throwsAsync(outsider.dial(addr, AbortSignal.timeout(3_000)));
  t.false(member.connectedPeers().includes(outsider.peerId));
  t.false(outsider.connectedPeers().includes(member.peerId));
});
