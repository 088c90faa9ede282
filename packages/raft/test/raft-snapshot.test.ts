// Snapshots (Raft paper §7): a follower that needs compacted entries is sent the leader's snapshot, restores it
// (log replaced, membership from the snapshot), and the host persists/applies it from Ready.snapshot.

import test from 'ava';
import { RawCluster, bytes, ids, newRaft, storageWithTerms } from './raft-harness.js';
import type { Raft } from '../src/raft.js';
import type { Snapshot } from '../src/types.js';

const three = ids(3);

function elect(r: Raft): void {
  r.hup(false);
  for (const id of r.voters) if (id !== r.id) r.step({ type: 'vote-resp', from: id, to: r.id, term: r.term, reject: false });
  if (r.role !== 'leader') throw new Error('not elected');
  r.takeMessages();
}

test('§7 a follower behind the leader\'s compaction point is sent a snapshot and catches up', (t) => {
  const c = new RawCluster(three);
  const leader = c.elect();
  const lagger = leader === 'n3' ? 'n2' : 'n3';
  c.crash(lagger);
  for (let i = 0; i < 30; i++) c.rn(leader).propose(bytes(`v${i}`));
  c.stabilize();
  for (const id of three) if (id !== lagger) c.snapshotAndCompact(id);
  c.restart(lagger);
  c.tickAll(5);
  t.true(c.snapshotsSent.some((m) => m.to === lagger));
  t.is(c.member(lagger).applied.length, 30);
  t.deepEqual(c.member(lagger).applied, c.member(leader).applied);
  // Replication continues normally after the snapshot.
  c.rn(leader).propose(bytes('after'));
  c.stabilize();
  c.tickAll(2);
  t.deepEqual(c.member(lagger).applied.slice(-1), ['after']);
  t.is(c.rn(leader).status().progress[lagger]?.state, 'replicate');
});

test('§7 the leader puts the peer in snapshot state and stops sending appends until it answers', (t) => {
  const cs = { voters: three, learners: [] };
  const storage = storageWithTerms([1, 1, 1, 1, 1], cs, { term: 1, vote: null, commit: 5 });
  storage.createSnapshot(5, cs, bytes('img'));
  storage.compact(5);
  const r = newRaft('n1', three, { storage, applied: 5 });
  elect(r);
  // n2 has nothing: it rejects the probe, which makes it active and gets it a snapshot.
  r.step({ type: 'append-resp', from: 'n2', to: 'n1', term: r.term, index: 5, reject: true, rejectHint: 0, logTerm: 0 });
  const snaps = r.takeMessages().filter((m) => m.type === 'snapshot');
  t.is(snaps.length, 1);
  const pr = r.prs.get('n2');
  t.is(pr?.state, 'snapshot');
  t.is(pr?.pendingSnapshot, 5);
  r.propose('normal', bytes('x'));
  t.false(r.takeMessages().some((m) => m.to === 'n2' && m.type === 'append'), 'paused while the snapshot is in flight');
  // The follower installed it and acknowledges index 5.
  r.step({ type: 'append-resp', from: 'n2', to: 'n1', term: r.term, index: 5, reject: false, rejectHint: 0, logTerm: 0 });
  t.is(pr?.state, 'replicate');
});

test('reportSnapshot failure returns the peer to probe and waits for a heartbeat response before retrying', (t) => {
  const cs = { voters: three, learners: [] };
  const storage = storageWithTerms([1, 1, 1], cs, { term: 1, vote: null, commit: 3 });
  storage.createSnapshot(3, cs, bytes('img'));
  storage.compact(3);
  const r = newRaft('n1', three, { storage, applied: 3 });
  elect(r);
  r.step({ type: 'append-resp', from: 'n2', to: 'n1', term: r.term, index: 3, reject: true, rejectHint: 0, logTerm: 0 });
  r.takeMessages();
  r.reportSnapshot('n2', 'failure');
  const pr = r.prs.get('n2');
  t.is(pr?.state, 'probe');
  t.is(pr?.pendingSnapshot, 0);
  t.true(pr?.msgAppFlowPaused);
  r.step({ type: 'heartbeat-resp', from: 'n2', to: 'n1', term: r.term, context: null });
  t.true(r.takeMessages().some((m) => m.to === 'n2' && m.type === 'snapshot'), 'retried after the heartbeat response');
  r.reportSnapshot('n2', 'finish');
  t.is(pr?.state, 'probe');
  t.is(pr?.next, 4, 'after a finished snapshot the leader probes right after it');
});

test('§7 a follower restores a snapshot: log replaced, commit and membership from the snapshot', (t) => {
  const r = newRaft('n2', three, { storage: storageWithTerms([1, 1], { voters: three, learners: [] }, { term: 1, vote: null, commit: 1 }) });
  const snap: Snapshot = { meta: { index: 10, term: 3, confState: { voters: ['n1', 'n2', 'n3', 'n4'], learners: ['n5'] } }, data: bytes('s') };
  r.step({ type: 'snapshot', from: 'n1', to: 'n2', term: 3, snapshot: snap });
  t.is(r.log.lastIndex(), 10);
  t.is(r.log.committed, 10);
  t.is(r.log.firstIndex(), 11);
  t.deepEqual(r.confState(), { voters: ['n1', 'n2', 'n3', 'n4'], learners: ['n5'] });
  const resp = r.takeMessages()[0];
  t.truthy(resp !== undefined && resp.type === 'append-resp' && resp.index === 10 && !resp.reject);
  // A node with a snapshot not yet persisted does not campaign.
  r.hup(false);
  t.is(r.role, 'follower');
});

test('§7 a snapshot not newer than the commit index is ignored; one matching our log only advances commit', (t) => {
  const cs = { voters: three, learners: [] };
  const r = newRaft('n2', three, { storage: storageWithTerms([1, 1, 2, 2], cs, { term: 2, vote: null, commit: 2 }) });
  r.step({ type: 'snapshot', from: 'n1', to: 'n2', term: 2, snapshot: { meta: { index: 2, term: 1, confState: cs }, data: bytes('') } });
  t.is(r.log.lastIndex(), 4);
  t.is(r.log.unstable.snapshot, null);
  r.step({ type: 'snapshot', from: 'n1', to: 'n2', term: 2, snapshot: { meta: { index: 3, term: 2, confState: cs }, data: bytes('') } });
  t.is(r.log.committed, 3);
  t.is(r.log.lastIndex(), 4, 'our log is kept');
  t.is(r.log.unstable.snapshot, null);
});

test('Ready.snapshot hands the snapshot to the host (mustSync), then committed entries resume after it', (t) => {
  const c = new RawCluster(three, { recordReadies: true });
  const leader = c.elect();
  const lagger = leader === 'n1' ? 'n2' : 'n1';
  c.crash(lagger);
  for (let i = 0; i < 10; i++) c.rn(leader).propose(bytes(`v${i}`));
  c.stabilize();
  for (const id of three) if (id !== lagger) c.snapshotAndCompact(id);
  c.restart(lagger);
  c.tickAll(5);
  const withSnap = c.member(lagger).readies.filter((r) => r.snapshot !== null);
  t.is(withSnap.length, 1);
  const rd = withSnap[0];
  t.true(rd?.mustSync);
  t.deepEqual(rd?.committedEntries, [], 'no committed entries alongside an unpersisted snapshot');
  t.is(c.rn(lagger).status().applied, c.rn(leader).status().applied);
});

test('§7 restart from a snapshot-only storage: the node continues with applied = snapshot index', (t) => {
  const c = new RawCluster(three);
  const leader = c.elect();
  for (let i = 0; i < 5; i++) c.rn(leader).propose(bytes(`v${i}`));
  c.stabilize();
  c.tickAll(2);
  for (const id of three) c.snapshotAndCompact(id);
  for (const id of three) {
    c.crash(id);
    const m = c.restart(id);
    t.is(m.rn.status().applied, m.storage.snapshot().meta.index);
  }
  const l2 = c.elect();
  c.rn(l2).propose(bytes('z'));
  c.stabilize();
  c.tickAll(2);
  for (const id of three) t.deepEqual(c.member(id).applied, ['v0', 'v1', 'v2', 'v3', 'v4', 'z']);
});
