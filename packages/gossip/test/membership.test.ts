// Real-network membership on 127.0.0.1: hosts form a cluster through one seed, a stopped host is
// declared dead by all others within a deadline, a host without the key never becomes a member.

import test from 'ava';
import { silentLogger, pollUntil } from '@swarm/wire';
import { createGossipHost, generateSwarmKey, type GossipHost } from '../src/host.js';
import { Membership } from '../src/membership.js';
import type { MemberEvent } from '../src/swim.js';

interface Node {
  host: GossipHost;
  membership: Membership;
  events: (MemberEvent & { atMs: number })[];
}

const cleanups: (() => Promise<void>)[] = [];

test.after.always(async () => {
  await Promise.allSettled(cleanups.map((c) => c()));
});

async function startNode(psk: Uint8Array, name: string): Promise<Node> {
  const host = await createGossipHost({ listen: '127.0.0.1:0', psk, logger: silentLogger() });
  const membership = await Membership.start({
    host,
    logger: silentLogger(),
    meta: { nodeId: name, hostname: name, role: 'worker', cpus: 1, memoryBytes: 1 << 30, labels: { test: 'yes' }, version: 'test' },
  });
  cleanups.push(async () => {
    await membership.stop();
    await host.stop();
  });
  const node: Node = { host, membership, events: [] };
  membership.on('*', (e) => node.events.push({ ...e, atMs: performance.now() }));
  return node;
}

const until = <T>(what: string, fn: () => T | undefined | false, deadlineMs: number): Promise<T> =>
  pollUntil(what, fn, { deadlineMs, intervalMs: 10 });

function seedAddr(n: Node): string {
  const a = n.host.multiaddrs()[0];
  if (a === undefined) throw new Error('no listen address');
  return a;
}

test.serial('5 hosts form one membership through one seed; a stopped host is dead on all others; metadata travels', async (t) => {
  const psk = generateSwarmKey();
  const nodes: Node[] = [];
  for (let i = 0; i < 5; i++) nodes.push(await startNode(psk, `node-${i + 1}`));
  const [seed, ...rest] = nodes;
  if (seed === undefined) throw new Error('seed');
  await Promise.all(rest.map((n) => n.membership.join([seedAddr(seed)])));
  const all = nodes.map((n) => n.host.peerId).sort();
  await until('all 5 agree on the alive set', () => nodes.every((n) => n.membership.aliveIds().join() === all.join()), 10_000);
  const second = rest[0];
  if (second === undefined) throw new Error('nodes');
  const seen = second.membership.member(seed.host.peerId);
  t.is(seen?.meta.hostname, 'node-1');
  t.deepEqual(seen?.meta.labels, { test: 'yes' });
  t.true(seen?.meta.addrs.every((a) => a.startsWith('/ip4/127.0.0.1/')));

  // Stay stable a while: no one is suspected to death on a healthy loopback network.
  await new Promise((r) => setTimeout(r, 2_000));
  t.deepEqual(nodes.flatMap((n) => n.events.filter((e) => e.type === 'member-dead')), []);

  // New metadata (a label added) reaches every other member as member-updated.
  const labeled = nodes[2];
  if (labeled === undefined) throw new Error('nodes');
  labeled.membership.updateMeta({ nodeId: 'node-3', hostname: 'node-3', role: 'worker', cpus: 1, memoryBytes: 1 << 30, labels: { test: 'yes', zone: 'b' }, version: 'test' });
  await until(
    'the new label on every other node',
    () => nodes.every((n) => n === labeled || n.membership.member(labeled.host.peerId)?.meta.labels['zone'] === 'b'),
    5_000,
  );
  t.true(nodes.every((n) => n === labeled || n.events.some((e) => e.type === 'member-updated' && e.member.id === labeled.host.peerId)));

  // Kill one abruptly (no leave): everyone else must see it dead.
  const victim = nodes[3];
  if (victim === undefined) throw new Error('victim');
  const survivors = nodes.filter((n) => n !== victim);
  const killedAt = performance.now();
  await victim.membership.stop();
  await victim.host.stop();
  await until('the stopped host is dead on all survivors', () => survivors.every((n) => n.membership.member(victim.host.peerId)?.state === 'dead'), 10_000);
  const detectedAt = Math.max(
    ...survivors.map((n) => n.events.find((e) => e.type === 'member-dead' && e.member.id === victim.host.peerId)?.atMs ?? Infinity),
  );
  t.log(`real-network detection: ${Math.round(detectedAt - killedAt)} ms from stop to dead on all ${survivors.length} survivors`);
  t.deepEqual(
    survivors.flatMap((n) => n.events.filter((e) => e.type === 'member-dead' && e.member.id !== victim.host.peerId)),
    [],
    'only the stopped host died',
  );
  const left = survivors.map((n) => n.host.peerId).sort();
  await until('survivors agree', () => survivors.every((n) => n.membership.aliveIds().join() === left.join()), 5_000);
  t.pass();
});

test.serial('a graceful leave is seen as left, not dead', async (t) => {
  const psk = generateSwarmKey();
  const nodes = [await startNode(psk, 'a'), await startNode(psk, 'b'), await startNode(psk, 'c')];
  const [seed, b, c] = nodes;
  if (seed === undefined || b === undefined || c === undefined) throw new Error('nodes');
  await Promise.all([b.membership.join([seedAddr(seed)]), c.membership.join([seedAddr(seed)])]);
  await until('3 alive everywhere', () => nodes.every((n) => n.membership.aliveIds().length === 3), 10_000);
  await c.membership.leave();
  await c.host.stop();
  await until('c left on a and b', () => [seed, b].every((n) => n.membership.member(c.host.peerId)?.state === 'left'), 5_000);
  await new Promise((r) => setTimeout(r, 1_500));
  t.true([seed, b].every((n) => n.membership.member(c.host.peerId)?.state === 'left'));
});

test.serial('a host without the cluster key cannot join: its join fails and no member ever lists it', async (t) => {
  const psk = generateSwarmKey();
  const a = await startNode(psk, 'a');
  const outsider = await startNode(generateSwarmKey(), 'outsider');
  // Give up quickly: the outsider's dials fail at the private-network handshake.
  const joined = outsider.membership.join([seedAddr(a)]);
  await t.throwsAsync(Promise.race([joined, new Promise<void>((_, rej) => setTimeout(() => rej(new Error('join did not complete')), 4_000))]));
  t.is(a.membership.member(outsider.host.peerId), undefined);
  t.deepEqual(a.membership.aliveIds(), [a.host.peerId]);
});
