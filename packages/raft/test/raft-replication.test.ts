// Log replication flow control: the conflict hint that skips a whole term per round trip, probe vs replicate
// progress states, the bounded inflight window, the message size bound and the uncommitted-entries bound.

import test from 'ava';
import { RaftError } from '../src/types.js';
import { Network, bytes, ids, logTerms, newRaft, storageWithTerms } from './raft-harness.js';
import type { Raft } from '../src/raft.js';
import type { Message } from '../src/types.js';

const three = ids(3);

function elect(r: Raft): void {
  r.hup(false);
  for (const id of r.voters) if (id !== r.id) r.step({ type: 'vote-resp', from: id, to: r.id, term: r.term, reject: false });
  if (r.role !== 'leader') throw new Error('not elected');
  r.takeMessages();
}

function ack(r: Raft, from: string, index: number): void {
  r.step({ type: 'append-resp', from, to: r.id, term: r.term, index, reject: false, rejectHint: 0, logTerm: 0 });
}

function appendsTo(msgs: readonly Message[], to: string): Array<Extract<Message, { type: 'append' }>> {
  return msgs.filter((m): m is Extract<Message, { type: 'append' }> => m.type === 'append' && m.to === to);
}

test('§5.3 conflict back-off: the reject hint skips a whole conflicting term per round trip', (t) => {
  // Leader: 1 entry of term 1 then 60 of term 3. Follower: 1 entry of term 1 then 80 of term 2.
  const cs = { voters: three, learners: [] };
  const leader = newRaft('n1', three, { storage: storageWithTerms([1, ...Array<number>(60).fill(3)], cs, { term: 3, vote: null, commit: 1 }) });
  const follower = newRaft('n2', three, { storage: storageWithTerms([1, ...Array<number>(80).fill(2)], cs, { term: 3, vote: null, commit: 1 }) });
  const net = new Network([leader, follower, null]);
  elect(leader);
  net.send([]);
  leader.propose('normal', bytes('x'));
  net.send(leader.takeMessages());
  // Heartbeats make the leader probe n2 (it is in probe state after the election).
  net.tick('n1');
  net.tick('n1');
  const rejects = net.trace.filter((m) => m.type === 'append-resp' && m.from === 'n2' && m.reject);
  t.true(rejects.length >= 1);
  t.true(rejects.length <= 3, `took ${rejects.length} rejections: the hint did not skip a whole term`);
  t.deepEqual(logTerms(follower), logTerms(leader));
});

test('§5.3 without a term hint (logTerm 0) the leader still backs off to the follower\'s last index at once', (t) => {
  const leader = newRaft('n1', three, { storage: storageWithTerms([1, 1, 1, 1, 1, 1], { voters: three, learners: [] }, { term: 1, vote: null, commit: 0 }) });
  elect(leader);
  const pr = leader.prs.get('n2');
  if (pr === undefined) return t.fail();
  t.is(pr.next, 7);
  // Follower has only 2 entries: it rejects index 6 with hint 2 (its last index), term 1.
  leader.step({ type: 'append-resp', from: 'n2', to: 'n1', term: leader.term, index: 6, reject: true, rejectHint: 2, logTerm: 0 });
  t.is(pr.next, 3);
  const msgs = appendsTo(leader.takeMessages(), 'n2');
  t.is(msgs.length, 1);
  t.is(msgs[0]?.index, 2);
});

test('probe state: at most one append in flight until it is answered or a heartbeat response arrives', (t) => {
  const r = newRaft('n1', three);
  elect(r);
  const pr = r.prs.get('n2');
  if (pr === undefined) return t.fail();
  t.is(pr.state, 'probe');
  // The election's append (carrying the no-op) is the one probe in flight.
  t.true(pr.msgAppFlowPaused);
  r.propose('normal', bytes('a'));
  r.propose('normal', bytes('b'));
  r.propose('normal', bytes('c'));
  t.is(appendsTo(r.takeMessages(), 'n2').length, 0, 'paused while probing');
  r.step({ type: 'heartbeat-resp', from: 'n2', to: 'n1', term: r.term, context: null });
  const after = appendsTo(r.takeMessages(), 'n2');
  t.is(after.length, 1, 'a heartbeat response unpauses the probe');
});

test('replicate state: a successful ack moves the peer to replicate and appends are pipelined', (t) => {
  const r = newRaft('n1', three, { maxInflightMsgs: 4 });
  elect(r);
  ack(r, 'n2', 1);
  r.takeMessages();
  const pr = r.prs.get('n2');
  if (pr === undefined) return t.fail();
  t.is(pr.state, 'replicate');
  for (let i = 0; i < 10; i++) {
    r.propose('normal', bytes(`e${i}`));
    r.flushAppends();
  }
  const apps = appendsTo(r.takeMessages(), 'n2');
  t.is(apps.length, 4, 'the inflight window bounds appends in flight');
  t.is(pr.inflights.count(), 4);
  t.true(pr.isPaused());
  // Acknowledging the first two frees two slots and the leader sends more right away.
  const second = apps[1];
  if (second === undefined) return t.fail();
  ack(r, 'n2', second.index + second.entries.length);
  const more = appendsTo(r.takeMessages(), 'n2').filter((m) => m.entries.length > 0);
  t.true(more.length >= 1 && more.length <= 2);
  t.true(pr.inflights.count() <= 4);
});

test('replicate state: proposals made between two collections are batched into one append per follower', (t) => {
  const r = newRaft('n1', three);
  elect(r);
  ack(r, 'n2', 1);
  ack(r, 'n3', 1);
  r.takeMessages();
  for (let i = 0; i < 100; i++) r.propose('normal', bytes(`e${i}`));
  const apps = appendsTo(r.takeMessages(), 'n2');
  t.is(apps.length, 1);
  t.is(apps[0]?.entries.length, 100);
});

test('maxSizePerMsg bounds the entry bytes of one append (but always sends at least one entry)', (t) => {
  const r = newRaft('n1', three, { maxSizePerMsg: 1000 });
  elect(r);
  ack(r, 'n2', 1);
  r.takeMessages();
  for (let i = 0; i < 20; i++) r.propose('normal', new Uint8Array(300));
  r.propose('normal', new Uint8Array(5000));
  const apps = appendsTo(r.takeMessages(), 'n2');
  let total = 0;
  for (const m of apps) {
    const bytesInMsg = m.entries.reduce((s, e) => s + e.data.byteLength, 0);
    t.true(m.entries.length === 1 || bytesInMsg <= 1000, `append of ${bytesInMsg} bytes`);
    total += m.entries.length;
  }
  t.is(total, 21);
});

test('a rejected append in replicate state sends the peer back to probe', (t) => {
  const r = newRaft('n1', three);
  elect(r);
  ack(r, 'n2', 1);
  r.propose('normal', bytes('a'));
  r.takeMessages();
  const pr = r.prs.get('n2');
  if (pr === undefined) return t.fail();
  t.is(pr.state, 'replicate');
  r.step({ type: 'append-resp', from: 'n2', to: 'n1', term: r.term, index: 1, reject: true, rejectHint: 1, logTerm: 1 });
  t.is(pr.state, 'replicate', 'a stale rejection (index <= match) is ignored');
  r.step({ type: 'append-resp', from: 'n2', to: 'n1', term: r.term, index: 2, reject: true, rejectHint: 1, logTerm: 1 });
  t.is(pr.state, 'probe');
  t.is(pr.next, 2);
});

test('reportUnreachable moves a replicating peer back to probe', (t) => {
  const r = newRaft('n1', three);
  elect(r);
  ack(r, 'n2', 1);
  const pr = r.prs.get('n2');
  t.is(pr?.state, 'replicate');
  r.reportUnreachable('n2');
  t.is(pr?.state, 'probe');
});

test('replication recovers when every append of a full window is lost', (t) => {
  const net = Network.of(3, { maxInflightMsgs: 2 });
  net.campaign('n1');
  net.filter = (m) => !(m.type === 'append' && m.to === 'n3');
  for (let i = 0; i < 10; i++) net.propose('n1', `x${i}`);
  t.is(net.raft('n3').log.lastIndex(), 1);
  net.recover();
  for (let i = 0; i < 20; i++) net.tick('n1');
  t.is(net.raft('n3').log.lastIndex(), net.raft('n1').log.lastIndex());
  t.is(net.raft('n3').log.committed, net.raft('n1').log.committed);
});

test('the leader drops proposals beyond maxUncommittedEntries', (t) => {
  const r = newRaft('n1', three, { maxUncommittedEntries: 5 });
  elect(r); // no-op at index 1, uncommitted
  let dropped = 0;
  for (let i = 0; i < 10; i++) {
    try {
      r.propose('normal', bytes('x'));
    } catch (e) {
      t.true(e instanceof RaftError && e.code === 'proposal_dropped');
      dropped++;
    }
  }
  t.is(r.log.lastIndex(), 5);
  t.is(dropped, 6);
  // Once committed, proposals are accepted again.
  ack(r, 'n2', 5);
  t.is(r.log.committed, 5);
  r.propose('normal', bytes('y'));
  t.is(r.log.lastIndex(), 6);
});

test('a follower refuses proposals with not_leader and a leader hint', (t) => {
  const net = Network.of(3);
  net.campaign('n1');
  const err = t.throws(() => net.raft('n2').propose('normal', bytes('x')));
  t.true(err instanceof RaftError && err.code === 'not_leader' && err.leaderHint === 'n1');
});

test('heartbeats carry commit bounded by the follower\'s match', (t) => {
  const r = newRaft('n1', three);
  elect(r);
  ack(r, 'n2', 1);
  r.propose('normal', bytes('a'));
  ack(r, 'n2', 2);
  t.is(r.log.committed, 2);
  r.takeMessages();
  r.tick();
  const hbs = r.takeMessages().filter((m) => m.type === 'heartbeat');
  const toN2 = hbs.find((m) => m.to === 'n2');
  const toN3 = hbs.find((m) => m.to === 'n3');
  t.truthy(toN2 !== undefined && toN2.type === 'heartbeat' && toN2.commit === 2);
  t.truthy(toN3 !== undefined && toN3.type === 'heartbeat' && toN3.commit === 0);
});

test('quorum: the committed index is the highest index matched by a majority of voters', async (t) => {
  const { committedIndex, voteResult } = await import('../src/quorum.js');
  const cases: Array<[number[], number]> = [
    [[5], 5],
    [[5, 3], 3],
    [[1, 5, 3], 3],
    [[9, 1, 5, 3], 3],
    [[2, 9, 1, 5, 3], 3],
    [[7, 7, 7, 1, 1], 7],
    [[0, 0, 4, 4, 4], 4],
  ];
  for (const [matches, want] of cases) {
    const voters = new Set(matches.map((_, k) => `n${k}`));
    t.is(committedIndex(voters, (id) => matches[Number(id.slice(1))] ?? -1), want, JSON.stringify(matches));
  }
  t.is(committedIndex(new Set(), () => 9), 0);
  const v5 = new Set(ids(5));
  t.is(voteResult(v5, new Map([['n1', true], ['n2', true]])), 'pending');
  t.is(voteResult(v5, new Map([['n1', true], ['n2', true], ['n3', true]])), 'won');
  t.is(voteResult(v5, new Map([['n1', false], ['n2', false], ['n3', false]])), 'lost');
  t.is(voteResult(v5, new Map([['n1', true], ['n9', true], ['n8', true]])), 'pending', 'non-voters do not count');
});

test('a malformed append (entries not contiguous after index) is dropped without touching the log', (t) => {
  const r = newRaft('n2', three);
  r.step({ type: 'append', from: 'n1', to: 'n2', term: 1, index: 0, logTerm: 0, entries: [{ index: 2, term: 1, type: 'normal', data: bytes('x') }], commit: 0 });
  t.is(r.log.lastIndex(), 0);
  r.step({ type: 'append', from: 'n1', to: 'n2', term: 1, index: 0, logTerm: 0, entries: [{ index: 1, term: 5, type: 'normal', data: bytes('x') }], commit: 0 });
  t.is(r.log.lastIndex(), 0, 'an entry from a term newer than the sender\'s is impossible');
  r.step({ type: 'append', from: 'n1', to: 'n2', term: 1, index: 0, logTerm: 0, entries: [{ index: 1, term: 1, type: 'normal', data: bytes('x') }], commit: 0 });
  t.is(r.log.lastIndex(), 1);
});
