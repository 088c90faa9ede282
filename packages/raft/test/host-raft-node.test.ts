// Tests for RaftNode: three nodes in one process over real loopback TCP with temp data dirs and fsync on.
// Covers election, propose-on-commit, not_leader redirects, failover, restart from disk, snapshot catch-up, reads.

import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftNode } from '../src/host/raft-node.js';
import type { StateMachine } from '../src/host/raft-node.js';
import { TcpTransport } from '../src/transport/tcp.js';
import { RaftError } from '../src/types.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** "key=value" commands into a map; counts snapshot restores so tests can see the snapshot path. */
class MapMachine implements StateMachine<number> {
  readonly data = new Map<string, string>();
  restoredFromImage = 0;
  apply(bytes: Uint8Array, index: number): number {
    const [k, v] = dec.decode(bytes).split('=');
    if (k === undefined || v === undefined) throw new Error(`bad command at ${index}`);
    this.data.set(k, v);
    return index;
  }
  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify([...this.data]));
  }
  restore(bytes: Uint8Array): void {
    this.data.clear();
    if (bytes.length === 0) return;
    this.restoredFromImage++;
    for (const [k, v] of JSON.parse(dec.decode(bytes)) as [string, string][]) this.data.set(k, v);
  }
}

async function waitFor<T>(probe: () => T | null | undefined | false, what: string, deadlineMs = 10_000): Promise<T> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Member {
  id: string;
  port: number;
  dir: string;
  node: RaftNode<number> | null;
  transport: TcpTransport | null;
  sm: MapMachine;
}

interface Cluster {
  members: Member[];
  peers: Record<string, string>;
  start(m: Member): Promise<void>;
  stop(m: Member): Promise<void>;
  live(): Member[];
  leader(): Member | null;
}

const nodeOptions = { tickMs: 20, electionTick: 10, heartbeatTick: 2 };

async function cluster(t: import('ava').ExecutionContext, extra: { snapshotEvery?: number; catchUpEntries?: number } = {}): Promise<Cluster> {
  const root = await mkdtemp(join(tmpdir(), 'raft-host-test-'));
  const ids = ['a', 'b', 'c'];
  // Bind first (port 0) so every node's address is known before any RaftNode is built.
  const transports = ids.map((id) => new TcpTransport({ id, listenPort: 0 }));
  await Promise.all(transports.map((tr) => tr.listen()));
  const members: Member[] = ids.map((id, i) => ({ id, port: transports[i]?.port ?? 0, dir: join(root, id), node: null, transport: null, sm: new MapMachine() }));
  const peers = Object.fromEntries(members.map((m) => [m.id, `127.0.0.1:${m.port}`]));
  const firstTransport = new Map(ids.map((id, i) => [id, transports[i]]));

  const c: Cluster = {
    members,
    peers,
    async start(m) {
      let transport = firstTransport.get(m.id);
      firstTransport.delete(m.id);
      if (!transport) {
        transport = new TcpTransport({ id: m.id, listenPort: m.port });
        await transport.listen();
      }
      m.sm = new MapMachine();
      const node = new RaftNode<number>({ id: m.id, peers, dataDir: m.dir, transport, stateMachine: m.sm, ...nodeOptions, ...extra });
      await node.start();
      m.node = node;
      m.transport = transport;
    },
    async stop(m) {
      const node = m.node;
      m.node = null;
      m.transport = null;
      await node?.close();
    },
    live: () => members.filter((m) => m.node !== null),
    leader: () => members.find((m) => m.node?.isLeader === true) ?? null,
  };
  t.teardown(async () => {
    await Promise.all(members.map((m) => c.stop(m)));
    for (const tr of firstTransport.values()) await tr?.stop();
    await rm(root, { recursive: true, force: true });
  });
  for (const m of members) await c.start(m);
  return c;
}

function must<T>(v: T | null | undefined, what: string): T {
  if (v === null || v === undefined) throw new Error(`expected ${what}`);
  return v;
}

test.serial('three nodes elect one leader; propose resolves once the entry is applied, on every node', async (t) => {
  const c = await cluster(t);
  const leader = await waitFor(() => c.leader(), 'a leader');
  const node = must(leader.node, 'leader node');
  const index = await node.propose(enc.encode('x=1'));
  t.true(index > 1, 'resolves with the state machine result (the applied index)');
  t.is(leader.sm.data.get('x'), '1', 'applied on the leader before the promise resolved');
  await waitFor(() => c.members.every((m) => m.sm.data.get('x') === '1'), 'x=1 applied everywhere');
  t.is(c.members.filter((m) => m.node?.isLeader).length, 1);
});

test.serial('propose on a follower rejects with not_leader and names the leader', async (t) => {
  const c = await cluster(t);
  const leader = await waitFor(() => c.leader(), 'a leader');
  const follower = must(c.members.find((m) => m !== leader), 'a follower');
  await waitFor(() => follower.node?.leaderId === leader.id, 'follower knows the leader');
  const err = await t.throwsAsync(must(follower.node, 'node').propose(enc.encode('y=2')));
  t.true(err instanceof RaftError);
  t.is((err as RaftError).code, 'not_leader');
  t.is((err as RaftError).leaderHint, leader.id);
});

test.serial('when the leader stops, the others elect a new leader that takes writes', async (t) => {
  const c = await cluster(t);
  const old = await waitFor(() => c.leader(), 'a leader');
  await must(old.node, 'node').propose(enc.encode('before=1'));
  await c.stop(old);
  const next = await waitFor(() => {
    const l = c.leader();
    return l && l !== old ? l : null;
  }, 'a new leader');
  t.not(next.id, old.id);
  await must(next.node, 'node').propose(enc.encode('after=2'));
  const others = c.live();
  await waitFor(() => others.every((m) => m.sm.data.get('after') === '2' && m.sm.data.get('before') === '1'), 'writes on survivors');
  t.pass();
});

test.serial('a node restarted from its data dir catches up through a snapshot when the log was compacted', async (t) => {
  const c = await cluster(t, { snapshotEvery: 5, catchUpEntries: 1 });
  const leader = await waitFor(() => c.leader(), 'a leader');
  const follower = must(c.members.find((m) => m !== leader), 'a follower');
  await must(leader.node, 'node').propose(enc.encode('k0=v0'));
  await waitFor(() => follower.sm.data.get('k0') === 'v0', 'follower applied k0');
  await c.stop(follower);
  // Far past snapshotEvery + catchUpEntries: the follower's next index is compacted on the leader.
  for (let i = 1; i <= 30; i++) await must(leader.node, 'node').propose(enc.encode(`k${i}=v${i}`));
  await c.start(follower);
  await waitFor(() => follower.sm.data.get('k30') === 'v30', 'restarted follower caught up');
  t.is(follower.sm.data.size, 31);
  t.true(follower.sm.restoredFromImage >= 1, 'state arrived as a snapshot (or was restored from the local one)');
  // And it keeps following: a new write reaches it through the log.
  await must(leader.node, 'node').propose(enc.encode('later=1'));
  await waitFor(() => follower.sm.data.get('later') === '1', 'follower applies new writes');
});

test.serial('every node restarted from its data dir resumes the same state and keeps working', async (t) => {
  const c = await cluster(t, { snapshotEvery: 4, catchUpEntries: 2 });
  const leader = await waitFor(() => c.leader(), 'a leader');
  for (let i = 0; i < 10; i++) await must(leader.node, 'node').propose(enc.encode(`r${i}=${i}`));
  await waitFor(() => c.members.every((m) => m.sm.data.get('r9') === '9'), 'all applied');
  for (const m of c.members) await c.stop(m);
  for (const m of c.members) await c.start(m);
  // Committed state is back even before any new leader is elected (replayed from snapshot + WAL as committed).
  const again = await waitFor(() => c.leader(), 'a leader after full restart');
  await must(again.node, 'node').propose(enc.encode('fresh=1'));
  await waitFor(() => c.members.every((m) => m.sm.data.get('fresh') === '1' && m.sm.data.get('r9') === '9' && m.sm.data.size === 11), 'state after restart');
  t.pass();
});

test.serial('read() on a follower waits until it has applied writes committed before the read', async (t) => {
  const c = await cluster(t);
  const leader = await waitFor(() => c.leader(), 'a leader');
  const follower = must(c.members.find((m) => m !== leader), 'a follower');
  await waitFor(() => follower.node?.leaderId === leader.id, 'follower knows the leader');
  for (let i = 0; i < 20; i++) {
    await must(leader.node, 'node').propose(enc.encode(`seq=${i}`));
    await must(follower.node, 'node').read();
    t.is(follower.sm.data.get('seq'), String(i), `read after write ${i} sees it`);
  }
});

test.serial('pending proposals are bounded', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'raft-host-bound-'));
  const transport = new TcpTransport({ id: 'solo', listenPort: 0 });
  await transport.listen();
  const node = new RaftNode<number>({
    id: 'solo',
    peers: { solo: `127.0.0.1:${transport.port}` },
    dataDir: root,
    transport,
    stateMachine: new MapMachine(),
    maxPendingProposals: 3,
    ...nodeOptions,
  });
  t.teardown(async () => {
    await node.close();
    await rm(root, { recursive: true, force: true });
  });
  await node.start();
  await waitFor(() => node.isLeader, 'single node leads');
  const accepted = [1, 2, 3].map((i) => node.propose(enc.encode(`p=${i}`)));
  const err = await t.throwsAsync(node.propose(enc.encode('p=4')));
  t.is((err as RaftError).code, 'proposal_dropped');
  await Promise.all(accepted);
  await node.propose(enc.encode('p=5'));
});

test.serial('a node started in join mode is added with addVoter, receives the state, and counts as a voter', async (t) => {
  const c = await cluster(t);
  const leader = await waitFor(() => c.leader(), 'a leader');
  const ln = must(leader.node, 'node');
  for (let i = 0; i < 5; i++) await ln.propose(enc.encode(`j${i}=${i}`));

  const transport = new TcpTransport({ id: 'd', listenPort: 0 });
  await transport.listen();
  const address = `127.0.0.1:${transport.port}`;
  const sm = new MapMachine();
  const dir = join(c.members[0]?.dir ?? tmpdir(), '..', 'd');
  const joiner = new RaftNode<number>({ id: 'd', peers: { ...c.peers, d: address }, join: true, dataDir: dir, transport, stateMachine: sm, ...nodeOptions });
  t.teardown(() => joiner.close());
  await joiner.start();
  await ln.addVoter('d', address);
  await waitFor(() => sm.data.get('j4') === '4', 'joiner received the existing state');
  t.deepEqual([...ln.status().confState.voters].sort(), ['a', 'b', 'c', 'd']);
  await ln.propose(enc.encode('post=1'));
  await waitFor(() => sm.data.get('post') === '1', 'joiner follows new writes');

  // Another member learned d's address from the committed change (not from its peers option): once it leads,
  // it still replicates to d.
  const other = must(c.members.find((m) => m !== leader), 'a follower');
  t.false(Object.hasOwn(c.peers, 'd'));
  await ln.transferLeadership(other.id);
  const on = await waitFor(() => (other.node?.isLeader ? other.node : null), 'other member leads');
  await on.propose(enc.encode('via-new-leader=1'));
  await waitFor(() => sm.data.get('via-new-leader') === '1', 'new leader replicates to the joined node');

  await on.removeNode('d');
  t.deepEqual([...on.status().confState.voters].sort(), ['a', 'b', 'c']);
});

test.serial('transferLeadership hands leadership to the named follower', async (t) => {
  const c = await cluster(t);
  const leader = await waitFor(() => c.leader(), 'a leader');
  const target = must(c.members.find((m) => m !== leader), 'a follower');
  await must(leader.node, 'node').propose(enc.encode('t=1'));
  await waitFor(() => target.sm.data.get('t') === '1', 'target caught up');
  await must(leader.node, 'node').transferLeadership(target.id);
  await waitFor(() => target.node?.isLeader === true, 'target leads');
  await must(target.node, 'node').propose(enc.encode('t=2'));
  t.is(target.sm.data.get('t'), '2');
});

test.serial('a proposal whose index is taken by a newer leader rejects with proposal_dropped', async (t) => {
  const c = await cluster(t);
  const old = await waitFor(() => c.leader(), 'a leader');
  const others = c.members.filter((m) => m !== old);
  // Cut the leader's outbound links: it keeps believing it leads for a while, but nothing it appends replicates.
  for (const m of others) old.transport?.removePeer(m.id);
  const lost = must(old.node, 'node').propose(enc.encode('lost=1'));
  lost.catch(() => {}); // observed below
  const next = await waitFor(() => others.find((m) => m.node?.isLeader) ?? null, 'a new leader among the others');
  await must(next.node, 'node').propose(enc.encode('won=1'));
  // Heal: the old leader learns the new log, which holds a newer term at the index it proposed at.
  for (const m of others) old.transport?.addPeer(m.id, c.peers[m.id] ?? '');
  const err = await t.throwsAsync(lost);
  t.is((err as RaftError).code, 'proposal_dropped');
  await waitFor(() => old.sm.data.get('won') === '1', 'old leader caught up');
  t.false(old.sm.data.has('lost'), 'the lost proposal was never applied');
});

test.serial('a joiner restored from a snapshot whose configuration lacks the current leader still answers it and catches up', async (t) => {
  // a bootstraps alone (snapshot at index 1: voters [a]), b joins and takes over the lead; d then joins from b. d's
  // first snapshot is that bootstrap one, whose configuration does not name b: d must still reply to b.
  const root = await mkdtemp(join(tmpdir(), 'raft-host-test-'));
  const nodes: RaftNode<number>[] = [];
  t.teardown(async () => {
    for (const n of nodes.reverse()) await n.close();
    await rm(root, { recursive: true, force: true });
  });
  const transports = await Promise.all(['a', 'b', 'd'].map(async (id) => {
    const tr = new TcpTransport({ id, listenPort: 0 });
    await tr.listen();
    return tr;
  }));
  const [ta, tb, td] = transports;
  if (ta === undefined || tb === undefined || td === undefined) throw new Error('three transports');
  const addr = { a: `127.0.0.1:${ta.port}`, b: `127.0.0.1:${tb.port}`, d: `127.0.0.1:${td.port}` };
  const start = async (id: 'a' | 'b' | 'd', transport: TcpTransport, peers: Record<string, string>, joining: boolean): Promise<[RaftNode<number>, MapMachine]> => {
    const sm = new MapMachine();
    const node = new RaftNode<number>({ id, peers, join: joining, dataDir: join(root, id), transport, stateMachine: sm, ...nodeOptions });
    nodes.push(node);
    await node.start();
    return [node, sm];
  };
  const [a] = await start('a', ta, { a: addr.a }, false);
  await waitFor(() => a.isLeader, 'a leads alone');
  await a.propose(enc.encode('k=1'));
  const [b, smB] = await start('b', tb, { a: addr.a, b: addr.b }, true);
  await a.addVoter('b', addr.b);
  await waitFor(() => smB.data.get('k') === '1', 'b caught up');
  await a.transferLeadership('b');
  await waitFor(() => b.isLeader, 'b leads');

  const [d, smD] = await start('d', td, { a: addr.a, b: addr.b, d: addr.d }, true);
  await b.addLearner('d', addr.d);
  await waitFor(() => smD.data.get('k') === '1', 'd restored the state');
  await b.propose(enc.encode('k=2'));
  await waitFor(() => smD.data.get('k') === '2', 'd follows new writes from b');
  await b.addVoter('d', addr.d);
  await waitFor(() => d.status().confState.voters.includes('d'), 'd applied its own promotion');
  t.deepEqual([...d.status().confState.voters].sort(), ['a', 'b', 'd']);
});
