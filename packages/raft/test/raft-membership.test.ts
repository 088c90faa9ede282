// Membership changes (Raft thesis §4.1, single-server changes applied when committed): learners, promotion,
// removal (including the leader), one pending change at a time, and joining through a snapshot.

import test from 'ava';
import { decodeConfChange, encodeConfChange } from '../src/confchange.js';
import { RaftError } from '../src/types.js';
import { Network, RawCluster, bytes, ids, newRaft } from './raft-harness.js';
import type { Raft } from '../src/raft.js';

function elect(r: Raft): void {
  r.hup(false);
  for (const id of r.voters) if (id !== r.id) r.step({ type: 'vote-resp', from: id, to: r.id, term: r.term, reject: false });
  if (r.role !== 'leader') throw new Error('not elected');
  r.takeMessages();
}

function ack(r: Raft, from: string, index: number): void {
  r.step({ type: 'append-resp', from, to: r.id, term: r.term, index, reject: false, rejectHint: 0, logTerm: 0 });
}

test('conf change encoding round-trips, with and without context', (t) => {
  for (const cc of [
    { type: 'add-voter', nodeId: 'n4' },
    { type: 'add-learner', nodeId: 'ünïcode-id' },
    { type: 'remove-node', nodeId: 'abc', context: new Uint8Array([1, 2, 3]) },
    { type: 'add-voter', nodeId: 'x', context: new Uint8Array(0) },
  ] as const) {
    t.deepEqual(decodeConfChange(encodeConfChange(cc)), cc);
  }
});

test('decodeConfChange throws corrupt on garbage', (t) => {
  const good = encodeConfChange({ type: 'add-voter', nodeId: 'n4' });
  const bad: Uint8Array[] = [new Uint8Array(0), new Uint8Array([1, 2, 3]), good.slice(0, good.length - 1), Uint8Array.from([...good, 0])];
  const wrongType = good.slice();
  wrongType[2] = 9;
  bad.push(wrongType);
  const badUtf8 = Uint8Array.from([...good.slice(0, 6), 0xff]);
  bad.push(badUtf8);
  for (const b of bad) {
    const err = t.throws(() => decodeConfChange(b));
    t.true(err instanceof RaftError && err.code === 'corrupt', String([...b]));
  }
});

test('§4.1 a learner receives the log but its acks never count toward the commit quorum', (t) => {
  const r = newRaft('n1', ['n1', 'n2'], { learners: ['n3'] });
  r.hup(false);
  r.step({ type: 'vote-resp', from: 'n2', to: 'n1', term: 1, reject: false });
  t.is(r.role, 'leader');
  const toLearner = r.takeMessages().filter((m) => m.to === 'n3' && m.type === 'append');
  t.true(toLearner.length >= 1, 'the learner is sent appends');
  r.propose('normal', bytes('x'));
  ack(r, 'n3', 2);
  t.is(r.log.committed, 0, 'a learner ack alone does not commit');
  ack(r, 'n2', 2);
  t.is(r.log.committed, 2);
});

test('§4.1 a learner is not asked for votes and its vote does not count', (t) => {
  const r = newRaft('n1', ['n1', 'n2', 'n3'], { learners: ['n4'] });
  r.hup(false);
  const asked = r.takeMessages().map((m) => m.to).sort();
  t.deepEqual(asked, ['n2', 'n3']);
  r.step({ type: 'vote-resp', from: 'n4', to: 'n1', term: 1, reject: false });
  t.is(r.role, 'candidate');
});

test('§4.1 add-voter on a learner promotes it: it then counts for quorum and may campaign', (t) => {
  const l = newRaft('n3', ['n1', 'n2'], { learners: ['n3'] });
  for (let i = 0; i < 50; i++) l.tick();
  t.is(l.role, 'follower');
  l.applyConfChange({ type: 'add-voter', nodeId: 'n3' });
  t.deepEqual(l.confState(), { voters: ['n1', 'n2', 'n3'], learners: [] });
  for (let i = 0; i < 50 && l.role === 'follower'; i++) l.tick();
  t.is(l.role, 'candidate');

  const r = newRaft('n1', ['n1', 'n2'], { learners: ['n3'] });
  elect(r);
  r.applyConfChange({ type: 'add-voter', nodeId: 'n3' });
  r.propose('normal', bytes('x'));
  ack(r, 'n3', 2);
  t.is(r.log.committed, 2, 'the promoted node now counts');
});

test('§4.1 only one conf change may be pending: a second is refused until the first is applied', (t) => {
  const r = newRaft('n1', ['n1']);
  r.hup(false);
  // The leader's no-op must be applied before a conf change: everything up to the election's lastIndex is pending.
  r.log.appliedTo(r.log.committed);
  const pos = r.proposeConfChange({ type: 'add-learner', nodeId: 'n2' });
  t.is(r.pendingConfIndex, pos.index);
  const err = t.throws(() => r.proposeConfChange({ type: 'add-learner', nodeId: 'n3' }));
  t.true(err instanceof RaftError && err.code === 'conf_change_pending');
  r.log.appliedTo(pos.index);
  r.applyConfChange({ type: 'add-learner', nodeId: 'n2' });
  t.notThrows(() => r.proposeConfChange({ type: 'add-learner', nodeId: 'n3' }));
});

test('§4.1 a new leader treats its uncommitted tail as holding a conf change until applied', (t) => {
  const r = newRaft('n1', ['n1']);
  r.hup(false);
  t.is(r.pendingConfIndex, 0, 'lastIndex before the no-op was 0');
  const r3 = newRaft('n1', ids(3));
  r3.log.append([{ index: 1, term: 0, type: 'normal', data: new Uint8Array() }]);
  elect(r3);
  t.is(r3.pendingConfIndex, 1);
  const err = t.throws(() => r3.proposeConfChange({ type: 'add-learner', nodeId: 'n4' }));
  t.true(err instanceof RaftError && err.code === 'conf_change_pending');
});

test('invalid conf changes are refused at proposal: removing the last voter, demoting a voter', (t) => {
  const r = newRaft('n1', ['n1']);
  r.hup(false);
  r.log.appliedTo(r.log.committed);
  const e1 = t.throws(() => r.proposeConfChange({ type: 'remove-node', nodeId: 'n1' }));
  t.true(e1 instanceof RaftError && e1.code === 'invalid_config');
  const e2 = t.throws(() => r.proposeConfChange({ type: 'add-learner', nodeId: 'n1' }));
  t.true(e2 instanceof RaftError && e2.code === 'invalid_config');
});

test('removing a member recomputes the quorum: a pending entry commits once the silent node is removed', (t) => {
  const r = newRaft('n1', ['n1', 'n2']);
  elect(r);
  ack(r, 'n2', 1);
  r.propose('normal', bytes('x'));
  t.is(r.log.committed, 1);
  r.applyConfChange({ type: 'remove-node', nodeId: 'n2' });
  t.is(r.log.committed, 2);
  t.false(r.prs.has('n2'));
});

test('§4.2.2 a leader removed from the configuration steps down once the removal is applied', (t) => {
  const net = Network.of(3);
  net.campaign('n1');
  const leader = net.raft('n1');
  leader.log.appliedTo(leader.log.committed);
  leader.proposeConfChange({ type: 'remove-node', nodeId: 'n1' });
  net.send(leader.takeMessages());
  t.is(leader.role, 'leader', 'still leading while the removal is only committed');
  for (const id of ids(3)) {
    const r = net.raft(id);
    t.is(r.log.committed, 2, id);
    r.log.appliedTo(r.log.committed);
    r.applyConfChange({ type: 'remove-node', nodeId: 'n1' });
  }
  t.is(leader.role, 'follower');
  // It never campaigns again, and the others elect a leader among themselves.
  for (let i = 0; i < 50; i++) leader.tick();
  t.is(leader.role, 'follower');
  net.campaign('n2');
  t.is(net.raft('n2').role, 'leader');
  t.deepEqual([...net.raft('n2').voters].sort(), ['n2', 'n3']);
});

test('a node with a committed but unapplied conf change does not campaign', (t) => {
  const r = newRaft('n2', ids(3));
  r.step({
    type: 'append', from: 'n1', to: 'n2', term: 1, index: 0, logTerm: 0, commit: 1,
    entries: [{ index: 1, term: 1, type: 'conf-change', data: encodeConfChange({ type: 'remove-node', nodeId: 'n3' }) }],
  });
  t.is(r.log.committed, 1);
  r.hup(false);
  t.is(r.role, 'follower');
  r.log.appliedTo(1);
  r.hup(false);
  t.is(r.role, 'candidate');
});

test('end to end: a new empty node joins as learner via snapshot, is promoted, and holds the data', (t) => {
  const c = new RawCluster(['n1', 'n2', 'n3']);
  const leader = c.elect();
  for (let i = 0; i < 20; i++) c.rn(leader).propose(bytes(`v${i}`));
  c.stabilize();
  for (const id of ['n1', 'n2', 'n3']) c.snapshotAndCompact(id);
  c.addEmpty('n4');
  c.rn(leader).proposeConfChange({ type: 'add-learner', nodeId: 'n4' });
  c.stabilize();
  c.tickAll(5);
  t.true(c.snapshotsSent.some((m) => m.to === 'n4'), 'the learner was sent a snapshot');
  t.deepEqual(c.member('n4').applied, c.member(leader).applied);
  t.deepEqual(c.member('n4').confState.learners, ['n4']);
  // The learner never campaigns.
  c.tick('n4', 100);
  t.is(c.rn('n4').status().role, 'follower');
  c.rn(leader).proposeConfChange({ type: 'add-voter', nodeId: 'n4' });
  c.stabilize();
  c.rn(leader).propose(bytes('last'));
  c.stabilize();
  c.tickAll(3);
  t.deepEqual(c.rn(leader).status().confState, { voters: ['n1', 'n2', 'n3', 'n4'], learners: [] });
  t.deepEqual(c.member('n4').applied.slice(-1), ['last']);
  t.deepEqual(c.rn('n4').status().confState.voters, ['n1', 'n2', 'n3', 'n4']);
});
