// Leadership transfer (Raft thesis §3.10): the leader stops accepting proposals, brings the transferee up to date,
// sends timeout-now; the transferee campaigns at once (bypassing leases); an unfinished transfer aborts after an
// election timeout.

import test from 'ava';
import { RaftError } from '../src/types.js';
import { Network, bytes, newRaft } from './raft-harness.js';

test('§3.10 transfer to an up-to-date follower: it becomes leader at the next term, even with leases', (t) => {
  const net = Network.of(3, { checkQuorum: true, preVote: true });
  net.campaign('n1');
  net.propose('n1', 'a');
  const term = net.raft('n1').term;
  const r = net.raft('n1');
  r.transferLeader('n2');
  const msgs = r.takeMessages();
  t.true(msgs.some((m) => m.type === 'timeout-now' && m.to === 'n2'));
  net.send(msgs);
  t.is(net.raft('n2').role, 'leader');
  t.is(net.raft('n2').term, term + 1);
  t.is(net.raft('n1').role, 'follower');
  t.is(net.raft('n1').lead, 'n2');
});

test('§3.10 transfer to a lagging follower first brings it up to date, then sends timeout-now', (t) => {
  const net = Network.of(3);
  net.campaign('n1');
  net.isolate('n3');
  for (let i = 0; i < 5; i++) net.propose('n1', `x${i}`);
  t.true(net.raft('n3').log.lastIndex() < net.raft('n1').log.lastIndex());
  net.recover();
  const r = net.raft('n1');
  r.transferLeader('n3');
  const first = r.takeMessages();
  t.false(first.some((m) => m.type === 'timeout-now'), 'no timeout-now before the transferee caught up');
  net.send(first);
  t.true(net.trace.some((m) => m.type === 'timeout-now' && m.to === 'n3'));
  t.is(net.raft('n3').role, 'leader');
  t.is(net.raft('n3').log.lastIndex(), 7, 'n3 holds every entry plus its own no-op');
});

test('§3.10 the leader refuses proposals while a transfer is in progress', (t) => {
  const net = Network.of(3);
  net.campaign('n1');
  net.isolate('n3');
  const r = net.raft('n1');
  r.transferLeader('n3');
  const err = t.throws(() => r.propose('normal', bytes('x')));
  t.true(err instanceof RaftError && err.code === 'proposal_dropped');
});

test('§3.10 a transfer that does not complete within an election timeout is aborted', (t) => {
  const net = Network.of(3);
  net.campaign('n1');
  net.isolate('n3');
  const r = net.raft('n1');
  r.transferLeader('n3');
  t.is(r.leadTransferee, 'n3');
  for (let i = 0; i < r.electionTimeout; i++) net.tick('n1');
  t.is(r.leadTransferee, null);
  t.is(r.role, 'leader');
  t.notThrows(() => r.propose('normal', bytes('x')));
});

test('§3.10 transfer to a learner or unknown node is refused; a follower cannot transfer', (t) => {
  const net = Network.of(3);
  net.campaign('n1');
  const e1 = t.throws(() => net.raft('n1').transferLeader('n9'));
  t.true(e1 instanceof RaftError && e1.code === 'invalid_config');
  const e2 = t.throws(() => net.raft('n2').transferLeader('n3'));
  t.true(e2 instanceof RaftError && e2.code === 'not_leader');
});

test('§3.10 a second transfer to another node replaces the first', (t) => {
  const net = Network.of(3);
  net.campaign('n1');
  net.isolate('n3');
  const r = net.raft('n1');
  r.transferLeader('n3');
  r.takeMessages();
  net.recover();
  r.transferLeader('n2');
  t.is(r.leadTransferee, 'n2');
  net.send(r.takeMessages());
  t.is(net.raft('n2').role, 'leader');
});

test('§3.10 timeout-now to a learner does not make it campaign', (t) => {
  const l = newRaft('n4', ['n1', 'n2', 'n3'], { learners: ['n4'] });
  l.step({ type: 'timeout-now', from: 'n1', to: 'n4', term: 1 });
  t.is(l.role, 'follower');
  t.deepEqual(l.takeMessages(), []);
});
