// RawNode: the Ready/advance hand-off (what appears in a Ready and when), bootstrap, and restart from persisted
// state. Uses a real Ready loop that persists into MemoryStorage.

import test from 'ava';
import { RawNode } from '../src/rawnode.js';
import { MemoryStorage, bootstrap } from '../src/memory-storage.js';
import { RaftError } from '../src/types.js';
import { RawCluster, bytes, seededRandom } from './raft-harness.js';
import type { RaftConfig, Ready } from '../src/types.js';

function cfg(id: string, storage: MemoryStorage, extra: Partial<RaftConfig> = {}): RaftConfig {
  return { id, storage, electionTick: 10, heartbeatTick: 1, random: seededRandom(7), ...extra };
}

function persist(storage: MemoryStorage, rd: Ready): void {
  if (rd.snapshot !== null) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState !== null) storage.setHardState(rd.hardState);
}

test('bootstrap writes identical state on every voter regardless of the order given', (t) => {
  const a = new MemoryStorage();
  const b = new MemoryStorage();
  bootstrap(a, ['n2', 'n1', 'n3']);
  bootstrap(b, ['n3', 'n1', 'n2', 'n1']);
  t.deepEqual(a.snapshot(), b.snapshot());
  t.deepEqual(a.hardState(), b.hardState());
  t.deepEqual(a.initialState().confState, { voters: ['n1', 'n2', 'n3'], learners: [] });
  t.throws(() => bootstrap(a, ['n1']), { instanceOf: RaftError });
});

test('a fresh bootstrapped node has nothing ready until something happens', (t) => {
  const s = new MemoryStorage();
  bootstrap(s, ['n1', 'n2', 'n3']);
  const rn = new RawNode(cfg('n1', s));
  t.false(rn.hasReady());
  t.is(rn.status().commit, 1);
  t.is(rn.status().applied, 1);
});

test('Ready after a single-node election: soft state, hard state, the no-op entry, committed, mustSync', (t) => {
  const s = new MemoryStorage();
  bootstrap(s, ['n1']);
  const rn = new RawNode(cfg('n1', s));
  rn.campaign();
  t.true(rn.hasReady());
  const rd = rn.ready();
  t.deepEqual(rd.softState, { leader: 'n1', role: 'leader' });
  t.deepEqual(rd.hardState, { term: 2, vote: 'n1', commit: 2 });
  t.deepEqual(rd.entries.map((e) => [e.index, e.term, e.data.length]), [[2, 2, 0]]);
  t.deepEqual(rd.committedEntries.map((e) => e.index), [2]);
  t.true(rd.mustSync);
  t.deepEqual(rd.messages, []);
  persist(s, rd);
  rn.advance(rd);
  t.false(rn.hasReady());
  t.is(rn.status().applied, 2);
});

test('Ready omits unchanged soft and hard state; a proposal yields entries to persist and apply', (t) => {
  const s = new MemoryStorage();
  bootstrap(s, ['n1']);
  const rn = new RawNode(cfg('n1', s));
  rn.campaign();
  let rd = rn.ready();
  persist(s, rd);
  rn.advance(rd);
  const pos = rn.propose(bytes('hello'));
  t.deepEqual(pos, { index: 3, term: 2 });
  rd = rn.ready();
  t.is(rd.softState, null);
  t.deepEqual(rd.hardState, { term: 2, vote: 'n1', commit: 3 });
  t.deepEqual(rd.entries.map((e) => e.index), [3]);
  t.deepEqual(rd.committedEntries.map((e) => new TextDecoder().decode(e.data)), ['hello']);
  t.true(rd.mustSync);
  persist(s, rd);
  rn.advance(rd);
  t.false(rn.hasReady());
});

test('mustSync is false when only the commit index changed', (t) => {
  const c = new RawCluster(['n1', 'n2', 'n3'], { recordReadies: true });
  const leader = c.elect();
  c.tickAll(3);
  const follower = leader === 'n1' ? 'n2' : 'n1';
  const m = c.member(follower);
  m.readies.length = 0;
  c.rn(leader).propose(bytes('x'));
  c.stabilize();
  const withEntries = m.readies.filter((r) => r.entries.length > 0);
  t.true(withEntries.length >= 1);
  for (const r of withEntries) t.true(r.mustSync);
  const commitOnly = m.readies.filter((r) => r.entries.length === 0 && r.hardState !== null);
  t.true(commitOnly.length >= 1, 'the commit reached the follower in a later Ready');
  for (const r of commitOnly) t.false(r.mustSync, 'a commit-only change needs no fsync');
  t.deepEqual(m.applied, ['x']);
});

test('committed entries in one Ready are bounded by maxCommittedSizePerReady; the rest follow', (t) => {
  const s = new MemoryStorage();
  bootstrap(s, ['n1']);
  const rn = new RawNode(cfg('n1', s, { maxCommittedSizePerReady: 1000 }));
  rn.campaign();
  for (let i = 0; i < 10; i++) rn.propose(new Uint8Array(400));
  let total = 0;
  let readies = 0;
  while (rn.hasReady()) {
    const rd = rn.ready();
    readies++;
    const size = rd.committedEntries.reduce((a, e) => a + e.data.byteLength, 0);
    t.true(rd.committedEntries.length <= 1 || size <= 1000, `ready with ${size} bytes`);
    total += rd.committedEntries.length;
    persist(s, rd);
    rn.advance(rd);
  }
  t.is(total, 11);
  t.true(readies >= 5);
});

test('RawNode.step ignores messages addressed to another node', (t) => {
  const s = new MemoryStorage();
  bootstrap(s, ['n1', 'n2', 'n3']);
  const rn = new RawNode(cfg('n1', s));
  rn.step({ type: 'append', from: 'n2', to: 'n3', term: 5, index: 1, logTerm: 1, entries: [], commit: 1 });
  t.is(rn.status().term, 1);
  t.false(rn.hasReady());
});

test('restart: a node over its persisted storage keeps term, vote, log and does not re-apply', (t) => {
  const s = new MemoryStorage();
  bootstrap(s, ['n1']);
  let rn = new RawNode(cfg('n1', s));
  rn.campaign();
  for (const d of ['a', 'b']) rn.propose(bytes(d));
  const rd = rn.ready();
  persist(s, rd);
  rn.advance(rd);
  const applied = rd.committedEntries[rd.committedEntries.length - 1]?.index ?? 0;
  t.is(applied, 4);
  // Restart with applied = 4: nothing is handed out again.
  rn = new RawNode(cfg('n1', s, { applied }));
  t.is(rn.status().term, 2);
  t.is(rn.status().vote, 'n1');
  t.is(rn.status().lastIndex, 4);
  t.false(rn.hasReady());
  rn.campaign();
  const rd2 = rn.ready();
  t.deepEqual(rd2.hardState, { term: 3, vote: 'n1', commit: 5 });
  t.deepEqual(rd2.committedEntries.map((e) => e.index), [5]);
});

test('restart with applied unset replays committed entries after the snapshot', (t) => {
  const s = new MemoryStorage();
  bootstrap(s, ['n1']);
  let rn = new RawNode(cfg('n1', s));
  rn.campaign();
  rn.propose(bytes('a'));
  const rd = rn.ready();
  persist(s, rd);
  rn.advance(rd);
  rn = new RawNode(cfg('n1', s));
  const rd2 = rn.ready();
  t.deepEqual(rd2.committedEntries.map((e) => e.index), [2, 3]);
  t.is(rd2.hardState, null);
  t.deepEqual(rd2.entries, []);
});

test('restart: a 3-node cluster recovers after every node restarts from storage', (t) => {
  const c = new RawCluster(['n1', 'n2', 'n3']);
  const leader = c.elect();
  for (let i = 0; i < 5; i++) c.rn(leader).propose(bytes(`v${i}`));
  c.stabilize();
  for (const id of ['n1', 'n2', 'n3']) {
    c.crash(id);
    c.restart(id);
  }
  const l2 = c.elect();
  c.rn(l2).propose(bytes('after'));
  c.stabilize();
  c.tickAll(3);
  for (const id of ['n1', 'n2', 'n3']) {
    t.deepEqual(c.member(id).applied, ['v0', 'v1', 'v2', 'v3', 'v4', 'after'], id);
  }
});

test('invalid configuration is refused with invalid_config', (t) => {
  const s = new MemoryStorage();
  const err = t.throws(() => new RawNode(cfg('n1', s, { electionTick: 1, heartbeatTick: 1 })));
  t.true(err instanceof RaftError && err.code === 'invalid_config');
  const err2 = t.throws(() => new RawNode(cfg('', s)));
  t.true(err2 instanceof RaftError && err2.code === 'invalid_config');
});

test('Ready.readStates carries ReadIndex answers on the leader and on a forwarding follower', (t) => {
  const c = new RawCluster(['n1', 'n2', 'n3']);
  const leader = c.elect();
  c.tickAll(2);
  const follower = leader === 'n1' ? 'n2' : 'n1';
  c.rn(leader).readIndex(bytes('L'));
  c.rn(follower).readIndex(bytes('F'));
  c.stabilize();
  const commit = c.rn(leader).status().commit;
  t.deepEqual(c.member(leader).readStates.map((r) => [r.index, new TextDecoder().decode(r.context)]), [[commit, 'L']]);
  t.deepEqual(c.member(follower).readStates.map((r) => [r.index, new TextDecoder().decode(r.context)]), [[commit, 'F']]);
});

test('step between ready() and advance() is safe: nothing is lost or handed out twice', (t) => {
  const s = new MemoryStorage();
  bootstrap(s, ['n1', 'n2', 'n3']);
  const rn = new RawNode(cfg('n2', s));
  rn.step({ type: 'append', from: 'n1', to: 'n2', term: 2, index: 1, logTerm: 1, entries: [{ index: 2, term: 2, type: 'normal', data: bytes('a') }], commit: 1 });
  const rd1 = rn.ready();
  t.deepEqual(rd1.entries.map((e) => e.index), [2]);
  // A second append arrives while rd1 is being persisted.
  rn.step({ type: 'append', from: 'n1', to: 'n2', term: 2, index: 2, logTerm: 2, entries: [{ index: 3, term: 2, type: 'normal', data: bytes('b') }], commit: 3 });
  persist(s, rd1);
  rn.advance(rd1);
  const rd2 = rn.ready();
  t.deepEqual(rd2.entries.map((e) => e.index), [3]);
  t.deepEqual(rd2.committedEntries.map((e) => e.index), [2, 3]);
  const acks = rd2.messages.filter((m) => m.type === 'append-resp');
  t.deepEqual(acks.map((m) => (m.type === 'append-resp' ? m.index : -1)), [3]);
  persist(s, rd2);
  rn.advance(rd2);
  t.false(rn.hasReady());
  t.is(rn.status().applied, 3);
});
