// Elections beyond the basic paper rules: single-node clusters, PreVote (thesis §9.6), CheckQuorum and the leader
// lease (thesis §6.2 / §4.2.3), learners and non-members never campaigning.

import test from 'ava';
import { Network, ids, newRaft } from './raft-harness.js';

const three = ids(3);

test('single-node cluster: campaign elects the node at once and commits its no-op', (t) => {
  const r = newRaft('n1', ['n1']);
  r.hup(false);
  t.is(r.role, 'leader');
  t.is(r.term, 1);
  t.is(r.log.committed, 1);
});

test('single-node cluster: the election timeout alone elects the node (with pre-vote too)', (t) => {
  for (const preVote of [false, true]) {
    const r = newRaft('n1', ['n1'], { preVote });
    for (let i = 0; i < 2 * r.electionTimeout && r.role !== 'leader'; i++) r.tick();
    t.is(r.role, 'leader', `preVote=${preVote}`);
    t.is(r.term, 1);
  }
});

test('a learner never campaigns, even after many election timeouts', (t) => {
  const r = newRaft('n4', three, { learners: ['n4'] });
  for (let i = 0; i < 100; i++) r.tick();
  t.is(r.role, 'follower');
  t.is(r.term, 0);
  r.hup(false);
  t.is(r.role, 'follower');
  t.deepEqual(r.takeMessages(), []);
});

test('a node that is not in the configuration does not campaign', (t) => {
  const r = newRaft('n9', three);
  for (let i = 0; i < 100; i++) r.tick();
  t.is(r.role, 'follower');
  t.is(r.term, 0);
});

test('§9.6 PreVote: a pre-candidate does not bump its term and asks for term+1', (t) => {
  const r = newRaft('n1', three, { preVote: true });
  r.hup(false);
  t.is(r.role, 'pre-candidate');
  t.is(r.term, 0);
  t.is(r.vote, null);
  const msgs = r.takeMessages();
  t.deepEqual(msgs.map((m) => [m.type, m.to, m.term]).sort(), [['pre-vote', 'n2', 1], ['pre-vote', 'n3', 1]]);
});

test('§9.6 PreVote: the term is bumped only once a quorum grants the pre-vote', (t) => {
  const r = newRaft('n1', ids(5), { preVote: true });
  r.hup(false);
  r.takeMessages();
  r.step({ type: 'pre-vote-resp', from: 'n2', to: 'n1', term: 1, reject: false });
  t.is(r.role, 'pre-candidate');
  t.is(r.term, 0);
  r.step({ type: 'pre-vote-resp', from: 'n3', to: 'n1', term: 1, reject: false });
  t.is(r.role, 'candidate');
  t.is(r.term, 1);
  const votes = r.takeMessages().filter((m) => m.type === 'vote');
  t.is(votes.length, 4);
});

test('§9.6 PreVote: a pre-candidate rejected by a quorum returns to follower at its old term', (t) => {
  const r = newRaft('n1', three, { preVote: true });
  r.hup(false);
  r.step({ type: 'pre-vote-resp', from: 'n2', to: 'n1', term: 0, reject: true });
  r.step({ type: 'pre-vote-resp', from: 'n3', to: 'n1', term: 0, reject: true });
  t.is(r.role, 'follower');
  t.is(r.term, 0);
});

test('§9.6 PreVote: granting a pre-vote does not change the voter\'s term or vote', (t) => {
  const r = newRaft('n2', three, { preVote: true });
  r.step({ type: 'pre-vote', from: 'n1', to: 'n2', term: 1, index: 0, logTerm: 0, transfer: false });
  t.is(r.term, 0);
  t.is(r.vote, null);
  const m = r.takeMessages()[0];
  t.truthy(m !== undefined && m.type === 'pre-vote-resp' && !m.reject && m.term === 1);
});

test('§9.6 PreVote: a rejoining partitioned node does not disrupt a healthy leader', (t) => {
  const net = Network.of(3, { preVote: true });
  net.campaign('n1');
  net.propose('n1', 'a');
  const leaderTerm = net.raft('n1').term;
  net.isolate('n3');
  // n3 times out again and again while partitioned: its term must not grow.
  for (let i = 0; i < 100; i++) net.tick('n3');
  t.is(net.raft('n3').term, leaderTerm);
  t.is(net.raft('n3').role, 'pre-candidate');
  net.recover();
  // Keep the leader heartbeating so followers are within their lease, then let n3 try again.
  net.tick('n1');
  for (let i = 0; i < 40; i++) {
    net.tick('n3');
    net.tick('n1');
  }
  t.is(net.raft('n1').role, 'leader');
  t.is(net.raft('n1').term, leaderTerm);
  t.is(net.raft('n3').lead, 'n1');
});

test('without PreVote a rejoining partitioned node disrupts the leader (control for the test above)', (t) => {
  const net = Network.of(3);
  net.campaign('n1');
  const leaderTerm = net.raft('n1').term;
  net.isolate('n3');
  for (let i = 0; i < 100; i++) net.tick('n3');
  t.true(net.raft('n3').term > leaderTerm);
  net.recover();
  for (let i = 0; i < 20; i++) net.tick('n3');
  t.true(net.raft('n1').term > leaderTerm);
  t.not(net.raft('n1').role, 'leader');
});

test('CheckQuorum: a leader that has not heard from a quorum within an election timeout steps down', (t) => {
  const net = Network.of(3, { checkQuorum: true });
  net.campaign('n1');
  net.isolate('n1');
  const r = net.raft('n1');
  for (let i = 0; i < r.electionTimeout - 1; i++) net.tick('n1');
  // One election timeout of silence may have just started counting; after two it must be gone.
  for (let i = 0; i < r.electionTimeout + 1 && r.role === 'leader'; i++) net.tick('n1');
  t.is(r.role, 'follower');
  t.is(r.lead, null);
});

test('CheckQuorum: a leader that hears from a quorum keeps leading', (t) => {
  const net = Network.of(3, { checkQuorum: true });
  net.campaign('n1');
  net.isolate('n3');
  for (let i = 0; i < 50; i++) net.tick('n1');
  t.is(net.raft('n1').role, 'leader');
});

test('CheckQuorum lease: followers that heard from the leader recently ignore vote requests', (t) => {
  const net = Network.of(3, { checkQuorum: true });
  net.campaign('n1');
  const term = net.raft('n1').term;
  // n3 campaigns right away (as if its timer fired): n2 is within its lease and must ignore it.
  net.campaign('n3');
  t.is(net.raft('n2').term, term);
  t.is(net.raft('n2').vote, 'n1');
  t.is(net.raft('n3').role, 'candidate');
  t.is(net.raft('n1').role, 'leader');
});

test('CheckQuorum lease: a vote with transfer=true bypasses the lease', (t) => {
  const r = newRaft('n2', three, { checkQuorum: true });
  r.step({ type: 'heartbeat', from: 'n1', to: 'n2', term: 1, commit: 0, context: null });
  r.takeMessages();
  r.step({ type: 'vote', from: 'n3', to: 'n2', term: 2, index: 0, logTerm: 0, transfer: false });
  t.is(r.term, 1, 'a non-transfer vote inside the lease is ignored');
  t.deepEqual(r.takeMessages(), []);
  r.step({ type: 'vote', from: 'n3', to: 'n2', term: 2, index: 0, logTerm: 0, transfer: true });
  t.is(r.term, 2);
  t.is(r.vote, 'n3');
});

test('CheckQuorum lease expires: after an election timeout without a leader the follower votes', (t) => {
  const r = newRaft('n2', three, { checkQuorum: true, electionTick: 10 });
  r.step({ type: 'heartbeat', from: 'n1', to: 'n2', term: 1, commit: 0, context: null });
  r.takeMessages();
  // Tick just under the minimum election timeout: still in lease.
  for (let i = 0; i < 9; i++) r.tick();
  r.step({ type: 'vote', from: 'n3', to: 'n2', term: 2, index: 0, logTerm: 0, transfer: false });
  t.is(r.term, 1);
  r.tick();
  r.step({ type: 'vote', from: 'n3', to: 'n2', term: 2, index: 0, logTerm: 0, transfer: false });
  t.is(r.term, 2);
  t.is(r.vote, 'n3');
});

test('a stale leader back from a partition learns the new term and steps down (CheckQuorum)', (t) => {
  const net = Network.of(3, { checkQuorum: true });
  net.campaign('n1');
  net.isolate('n1');
  // n2 and n3 elect a new leader after their leases expire.
  for (let i = 0; i < 30 && net.raft('n2').role !== 'leader' && net.raft('n3').role !== 'leader'; i++) {
    net.tick('n2');
    net.tick('n3');
  }
  const newLeader = net.raft('n2').role === 'leader' ? 'n2' : 'n3';
  t.is(net.raft(newLeader).role, 'leader');
  net.recover();
  // The old leader (if still leading) heartbeats with its stale term: the reply carries the new term.
  const old = net.raft('n1');
  old.becomeFollower(old.term, null);
  t.is(old.role, 'follower');
  net.tick(newLeader);
  t.is(old.term, net.raft(newLeader).term);
  t.is(old.lead, newLeader);
});

test('split vote: candidates at the same term both lose and a later election succeeds', (t) => {
  const net = Network.of(4);
  net.cut('n1', 'n2');
  net.isolate('n4');
  net.campaign('n1'); // n1 gets n3
  net.campaign('n2'); // n3 already voted for n1 in term 1
  t.not(net.raft('n1').role, 'leader');
  t.not(net.raft('n2').role, 'leader');
  net.recover();
  net.campaign('n1');
  t.is(net.raft('n1').role, 'leader');
});

test('invariant: the term never decreases (a bug that tries it throws a raft invariant error)', (t) => {
  const r = newRaft('n1', three);
  r.becomeFollower(5, null);
  t.throws(() => r.becomeFollower(4, null), { message: /raft invariant: term must never decrease/ });
  t.is(r.term, 5);
});

test('§9.6 PreVote without CheckQuorum: a follower that heard from its leader recently ignores pre-votes', (t) => {
  const r = newRaft('n2', three, { preVote: true });
  r.step({ type: 'heartbeat', from: 'n1', to: 'n2', term: 1, commit: 0, context: null });
  r.takeMessages();
  r.step({ type: 'pre-vote', from: 'n3', to: 'n2', term: 2, index: 5, logTerm: 1, transfer: false });
  t.deepEqual(r.takeMessages(), []);
  for (let i = 0; i < r.electionTimeout; i++) r.tick();
  r.step({ type: 'pre-vote', from: 'n3', to: 'n2', term: 2, index: 5, logTerm: 1, transfer: false });
  const m = r.takeMessages()[0];
  t.truthy(m !== undefined && m.type === 'pre-vote-resp' && !m.reject);
});
