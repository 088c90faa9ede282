// Tests named after the rules of the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus
// Algorithm"), §5.1-§5.4, checked on single state machines and on a small in-memory network.

import test from 'ava';
import { Network, seededRandom, bytes, ent, ids, logTerms, newRaft, storageWithTerms } from './raft-harness.js';
import type { Raft } from '../src/raft.js';
import type { Message, NodeId } from '../src/types.js';

const three = ids(3);

function msgsOf(r: Raft): Message[] {
  return r.takeMessages();
}

function makeLeader(r: Raft, voters: readonly NodeId[]): void {
  r.hup(false);
  for (const id of voters) {
    if (id === r.id) continue;
    r.step({ type: 'vote-resp', from: id, to: r.id, term: r.term, reject: false });
  }
  if (r.role !== 'leader') throw new Error('makeLeader failed');
  r.takeMessages();
}

// §5.1: "If one server's current term is smaller than the other's, then it updates its current term to the larger
// value. If a candidate or leader discovers that its term is out of date, it immediately reverts to follower state."
for (const role of ['follower', 'candidate', 'leader'] as const) {
  test(`§5.1 a ${role} seeing a higher term adopts it and becomes follower`, (t) => {
    const r = newRaft('n1', three);
    if (role === 'candidate') r.hup(false);
    if (role === 'leader') makeLeader(r, three);
    t.is(r.role, role);
    r.step({ type: 'append', from: 'n2', to: 'n1', term: 7, index: 0, logTerm: 0, entries: [], commit: 0 });
    t.is(r.term, 7);
    t.is(r.role, 'follower');
    t.is(r.lead, 'n2');
  });
}

// §5.1: "If a server receives a request with a stale term number, it rejects the request."
test('§5.1 a message with a stale term is rejected and changes nothing', (t) => {
  const r = newRaft('n1', three);
  r.becomeFollower(2, null);
  r.step({ type: 'append', from: 'n2', to: 'n1', term: 1, index: 0, logTerm: 0, entries: [ent(1, 1)], commit: 1 });
  t.is(r.term, 2);
  t.is(r.lead, null);
  t.is(r.log.lastIndex(), 0);
  t.is(r.log.committed, 0);
  // The rejection carries our term so the stale leader can step down.
  const reply = r.takeMessages();
  t.is(reply.length, 1);
  t.truthy(reply[0] !== undefined && reply[0].type === 'append-resp' && reply[0].term === 2 && reply[0].to === 'n2');
});

test('§5.1 a stale leader steps down when a follower with a higher term rejects its heartbeat', (t) => {
  // No PreVote/CheckQuorum: n3's votes went elsewhere (e.g. a stale configuration), so only this reply tells the
  // leader about the higher term.
  const net = Network.of(3);
  net.campaign('n1');
  net.raft('n3').becomeFollower(9, null);
  net.tick('n1');
  t.is(net.raft('n1').role, 'follower');
  t.is(net.raft('n1').term, 9);
  // The next election is at a term above 9 and a node with the full log wins it.
  net.campaign('n1');
  t.is(net.raft('n1').role, 'leader');
  t.is(net.raft('n1').term, 10);
  t.is(net.raft('n3').lead, 'n1');
});

// §5.2: "When servers start up, they begin as followers."
test('§5.2 servers start up as followers', (t) => {
  const r = newRaft('n1', three);
  t.is(r.role, 'follower');
  t.is(r.term, 0);
});

// §5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry no log entries) to all followers."
test('§5.2 the leader broadcasts heartbeats every heartbeat timeout', (t) => {
  const r = newRaft('n1', three, { heartbeatTick: 2 });
  makeLeader(r, three);
  r.tick();
  t.deepEqual(msgsOf(r), []);
  r.tick();
  const hb = msgsOf(r);
  t.deepEqual(hb.map((m) => [m.type, m.to]).sort(), [['heartbeat', 'n2'], ['heartbeat', 'n3']]);
});

// §5.2: "If a follower receives no communication over a period of time called the election timeout, then it
// begins an election": it increments its term, votes for itself, and sends RequestVote to every other server.
for (const role of ['follower', 'candidate'] as const) {
  test(`§5.2 a ${role} starts a new election after the election timeout`, (t) => {
    const r = newRaft('n1', three);
    if (role === 'candidate') r.hup(false);
    const termBefore = r.term;
    r.takeMessages();
    for (let i = 0; i < 2 * r.electionTimeout; i++) r.tick();
    t.is(r.role, 'candidate');
    t.is(r.term, termBefore + 1);
    t.is(r.vote, 'n1');
    const votes = msgsOf(r).filter((m) => m.type === 'vote');
    t.deepEqual(votes.map((m) => m.to).sort(), ['n2', 'n3']);
    for (const m of votes) t.is(m.term, termBefore + 1);
  });
}

// §5.2: "A candidate wins an election if it receives votes from a majority of the servers"; it loses (becomes
// follower) once a majority rejected it; it stays candidate otherwise.
test('§5.2 a candidate wins with a majority of votes, loses with a majority of rejections', (t) => {
  const cases: Array<{ size: number; votes: Record<string, boolean>; role: Raft["role"] }> = [
    { size: 1, votes: {}, role: 'leader' },
    { size: 3, votes: { n2: true, n3: true }, role: 'leader' },
    { size: 3, votes: { n2: true }, role: 'leader' },
    { size: 5, votes: { n2: true, n3: true }, role: 'leader' },
    { size: 5, votes: { n2: true }, role: 'candidate' },
    { size: 5, votes: { n2: true, n3: false, n4: false }, role: 'candidate' },
    { size: 3, votes: { n2: false, n3: false }, role: 'follower' },
    { size: 5, votes: { n2: false, n3: false, n4: false }, role: 'follower' },
  ];
  for (const c of cases) {
    const names = ids(c.size);
    const r = newRaft('n1', names);
    r.hup(false);
    for (const [from, granted] of Object.entries(c.votes)) {
      r.step({ type: 'vote-resp', from, to: 'n1', term: r.term, reject: !granted });
    }
    t.is(r.role, c.role, JSON.stringify(c));
    t.is(r.term, 1);
  }
});

// §5.2: "Each server will vote for at most one candidate in a given term, on a first-come-first-served basis."
test('§5.2 a follower votes for at most one candidate per term', (t) => {
  const cases: Array<{ vote: NodeId | null; from: NodeId; reject: boolean }> = [
    { vote: null, from: 'n2', reject: false },
    { vote: null, from: 'n3', reject: false },
    { vote: 'n2', from: 'n2', reject: false },
    { vote: 'n3', from: 'n3', reject: false },
    { vote: 'n2', from: 'n3', reject: true },
    { vote: 'n3', from: 'n2', reject: true },
  ];
  for (const c of cases) {
    const r = newRaft('n1', three);
    r.becomeFollower(1, null);
    r.vote = c.vote;
    r.step({ type: 'vote', from: c.from, to: 'n1', term: 1, index: 0, logTerm: 0, transfer: false });
    const resp = msgsOf(r);
    t.is(resp.length, 1);
    const m = resp[0];
    t.truthy(m !== undefined && m.type === 'vote-resp' && m.reject === c.reject, JSON.stringify(c));
    t.is(r.vote, c.reject ? c.vote : c.from);
  }
});

// §5.2: "While waiting for votes, a candidate may receive an AppendEntries RPC from another server claiming to be
// leader. If the leader's term is at least as large as the candidate's current term, the candidate returns to
// follower state."
test('§5.2 a candidate falls back to follower on an append from a leader of its term or newer', (t) => {
  for (const term of [1, 2]) {
    const r = newRaft('n1', three);
    r.hup(false);
    t.is(r.term, 1);
    r.step({ type: 'append', from: 'n2', to: 'n1', term, index: 0, logTerm: 0, entries: [], commit: 0 });
    t.is(r.role, 'follower');
    t.is(r.term, term);
    t.is(r.lead, 'n2');
  }
});

// §5.2: "Raft uses randomized election timeouts ... chosen randomly from a fixed interval."
test('§5.2 election timeouts are randomized in [T, 2T) and take many values', (t) => {
  const r = newRaft('n1', three, { electionTick: 10 });
  const seen = new Set<number>();
  for (let k = 0; k < 200; k++) {
    const termBefore = r.term;
    let ticks = 0;
    while (r.term === termBefore) {
      r.tick();
      ticks++;
      if (ticks > 100) break;
    }
    t.true(ticks >= 10 && ticks < 20, `timeout ${ticks}`);
    seen.add(ticks);
  }
  t.true(seen.size >= 8, `only ${seen.size} distinct timeouts`);
});

// §5.2: randomized timeouts mean in most cases only a single server times out first.
test('§5.2 randomized timeouts rarely make two followers time out in the same tick', (t) => {
  let conflicts = 0;
  const rounds = 300;
  for (let k = 0; k < rounds; k++) {
    const a = newRaft('n1', three, { random: seededRandom(2 * k + 1) });
    const b = newRaft('n2', three, { random: seededRandom(2 * k + 2) });
    for (let i = 0; i < 20; i++) {
      a.tick();
      b.tick();
      const ac = a.role === 'candidate';
      const bc = b.role === 'candidate';
      if (ac || bc) {
        if (ac && bc) conflicts++;
        break;
      }
    }
  }
  t.true(conflicts / rounds < 0.3, `conflict ratio ${conflicts / rounds}`);
});

// §5.3: the leader appends the command to its log as a new entry, then issues AppendEntries in parallel.
test('§5.3 the leader appends a proposal and replicates it to every follower', (t) => {
  const r = newRaft('n1', three);
  makeLeader(r, three);
  // Followers acknowledge the no-op so the leader is in replicate state with nothing outstanding.
  r.step({ type: 'append-resp', from: 'n2', to: 'n1', term: 1, index: 1, reject: false, rejectHint: 0, logTerm: 0 });
  r.step({ type: 'append-resp', from: 'n3', to: 'n1', term: 1, index: 1, reject: false, rejectHint: 0, logTerm: 0 });
  r.takeMessages();
  const pos = r.propose('normal', bytes('x'));
  t.deepEqual(pos, { index: 2, term: 1 });
  t.is(r.log.lastIndex(), 2);
  const apps = msgsOf(r).filter((m) => m.type === 'append');
  t.deepEqual(apps.map((m) => m.to).sort(), ['n2', 'n3']);
  for (const m of apps) {
    if (m.type !== 'append') continue;
    t.is(m.index, 1);
    t.is(m.logTerm, 1);
    t.is(m.commit, 1);
    t.deepEqual(m.entries.map((e) => [e.index, e.term, new TextDecoder().decode(e.data)]), [[2, 1, 'x']]);
  }
});

// §5.3: "A log entry is committed once the leader that created the entry has replicated it on a majority."
test('§5.3 the leader commits an entry once a majority holds it, and tells followers', (t) => {
  for (const [size, acks, committed] of [
    [1, 0, true],
    [3, 0, false],
    [3, 1, true],
    [3, 2, true],
    [5, 1, false],
    [5, 2, true],
    [4, 1, false],
    [4, 2, true],
  ] as const) {
    const names = ids(size);
    const r = newRaft('n1', names);
    makeLeader(r, names);
    // The no-op (index 1) is acknowledged by everyone first.
    for (const id of names.slice(1)) {
      r.step({ type: 'append-resp', from: id, to: 'n1', term: 1, index: 1, reject: false, rejectHint: 0, logTerm: 0 });
    }
    r.takeMessages();
    r.propose('normal', bytes('x'));
    r.takeMessages();
    for (const id of names.slice(1, 1 + acks)) {
      r.step({ type: 'append-resp', from: id, to: 'n1', term: 1, index: 2, reject: false, rejectHint: 0, logTerm: 0 });
    }
    t.is(r.log.committed, committed ? 2 : 1, `size ${size} acks ${acks}`);
    if (committed && size > 1) {
      const apps = msgsOf(r).filter((m) => m.type === 'append');
      t.true(apps.length >= size - 1);
      for (const m of apps) if (m.type === 'append') t.is(m.commit, 2);
    }
  }
});

// §5.3: "This also commits all preceding entries in the leader's log, including entries created by previous leaders."
test('§5.3 committing an entry of the current term commits all preceding entries', (t) => {
  const storage = storageWithTerms([1, 1, 2], { voters: three, learners: [] }, { term: 2, vote: null, commit: 0 });
  const r = newRaft('n1', three, { storage });
  makeLeader(r, three);
  t.is(r.term, 3);
  t.is(r.log.lastIndex(), 4);
  t.is(r.log.committed, 0);
  r.step({ type: 'append-resp', from: 'n2', to: 'n1', term: 3, index: 4, reject: false, rejectHint: 0, logTerm: 0 });
  t.is(r.log.committed, 4);
});

// §5.3: "Once a follower learns that a log entry is committed, it applies the entry" - it learns commit from the
// leader's appends, never past what it holds from this leader.
test('§5.3 a follower learns the commit index from appends, bounded by the entries it matched', (t) => {
  const r = newRaft('n1', three);
  r.becomeFollower(1, 'n2');
  r.step({ type: 'append', from: 'n2', to: 'n1', term: 1, index: 0, logTerm: 0, entries: [ent(1, 1), ent(2, 1)], commit: 1 });
  t.is(r.log.committed, 1);
  // Commit 5 but only entry 3 sent: commit stops at 3.
  r.step({ type: 'append', from: 'n2', to: 'n1', term: 1, index: 2, logTerm: 1, entries: [ent(3, 1)], commit: 5 });
  t.is(r.log.committed, 3);
  // Heartbeat carries min(commit, match).
  r.step({ type: 'heartbeat', from: 'n2', to: 'n1', term: 1, commit: 3, context: null });
  t.is(r.log.committed, 3);
});

// §5.3: "If the follower does not find an entry in its log with the same index and term, then it refuses the new
// entries."
test('§5.3 a follower refuses entries whose predecessor it does not hold', (t) => {
  const cases: Array<{ index: number; logTerm: number; reject: boolean }> = [
    { index: 0, logTerm: 0, reject: false },
    { index: 1, logTerm: 1, reject: false },
    { index: 2, logTerm: 2, reject: false },
    { index: 2, logTerm: 3, reject: true },
    { index: 3, logTerm: 3, reject: true },
  ];
  for (const c of cases) {
    const storage = storageWithTerms([1, 2], { voters: three, learners: [] }, { term: 2, vote: null, commit: 1 });
    const r = newRaft('n1', three, { storage });
    r.becomeFollower(2, 'n2');
    r.step({ type: 'append', from: 'n2', to: 'n1', term: 2, index: c.index, logTerm: c.logTerm, entries: [], commit: 1 });
    const m = msgsOf(r)[0];
    t.truthy(m !== undefined && m.type === 'append-resp' && m.reject === c.reject, JSON.stringify(c));
  }
});

// §5.3: "If an existing entry conflicts with a new one (same index but different terms), delete the existing entry
// and all that follow it; append any new entries not already in the log."
test('§5.3 a follower deletes conflicting entries and appends the leader\'s', (t) => {
  const cases: Array<{ index: number; logTerm: number; ents: Array<[number, number]>; want: number[] }> = [
    { index: 2, logTerm: 2, ents: [[3, 3]], want: [1, 2, 3] },
    { index: 1, logTerm: 1, ents: [[2, 3], [3, 4]], want: [1, 3, 4] },
    { index: 0, logTerm: 0, ents: [[1, 1]], want: [1, 2] },
    { index: 0, logTerm: 0, ents: [[1, 3]], want: [3] },
  ];
  for (const c of cases) {
    const storage = storageWithTerms([1, 2], { voters: three, learners: [] }, { term: 2, vote: null, commit: 0 });
    const r = newRaft('n1', three, { storage });
    r.becomeFollower(2, 'n2');
    r.step({ type: 'append', from: 'n2', to: 'n1', term: 4, index: c.index, logTerm: c.logTerm, entries: c.ents.map(([i, tm]) => ent(i, tm)), commit: 0 });
    t.deepEqual(logTerms(r), c.want, JSON.stringify(c));
  }
});

// §5.3 Figure 7: the leader brings followers with missing, extra and conflicting entries to its own log.
test('§5.3 the leader forces every follower log of Figure 7 to duplicate its own', (t) => {
  const leaderTerms = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const followers: number[][] = [
    [1, 1, 1, 4, 4, 5, 5, 6, 6], // (a) missing one
    [1, 1, 1, 4], // (b) missing many
    [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6], // (c) one extra
    [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7], // (d) extra of a later term
    [1, 1, 1, 4, 4, 4, 4], // (e) conflicting
    [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], // (f) conflicting from an old term
  ];
  for (const fterms of followers) {
    const leader = newRaft('n1', three, { storage: storageWithTerms(leaderTerms, { voters: three, learners: [] }, { term: 8, vote: null, commit: 0 }) });
    const follower = newRaft('n2', three, { storage: storageWithTerms(fterms, { voters: three, learners: [] }, { term: 8, vote: null, commit: 0 }) });
    const net = new Network([leader, follower, null]);
    // n3 votes for n1 (it is unreachable afterwards: a black hole).
    leader.hup(false);
    const votes = leader.takeMessages();
    leader.step({ type: 'vote-resp', from: 'n3', to: 'n1', term: 9, reject: false });
    net.send([...votes, ...leader.takeMessages()]);
    net.propose('n1', 'after');
    t.deepEqual(logTerms(follower), logTerms(leader), JSON.stringify(fterms));
    t.deepEqual(logTerms(leader), [...leaderTerms, 9, 9]);
  }
});

// §5.4.1: "The voter denies its vote if its own log is more up-to-date than that of the candidate."
test('§5.4.1 a voter grants only to a candidate whose log is at least as up-to-date', (t) => {
  const cases: Array<{ index: number; logTerm: number; reject: boolean }> = [
    { index: 2, logTerm: 1, reject: true }, // older last term
    { index: 3, logTerm: 1, reject: true },
    { index: 1, logTerm: 2, reject: true }, // same term, shorter
    { index: 2, logTerm: 2, reject: false }, // identical
    { index: 3, logTerm: 2, reject: false }, // longer
    { index: 1, logTerm: 3, reject: false }, // newer last term
  ];
  for (const c of cases) {
    const r = newRaft('n1', three, { storage: storageWithTerms([1, 2], { voters: three, learners: [] }, { term: 2, vote: null, commit: 0 }) });
    r.step({ type: 'vote', from: 'n2', to: 'n1', term: 3, index: c.index, logTerm: c.logTerm, transfer: false });
    const m = msgsOf(r)[0];
    t.truthy(m !== undefined && m.type === 'vote-resp' && m.reject === c.reject, JSON.stringify(c));
  }
});

// §5.4.1: a candidate cannot win without every committed entry: a node missing a committed entry loses.
test('§5.4.1 a node missing committed entries cannot be elected', (t) => {
  const net = Network.of(3);
  net.campaign('n1');
  net.isolate('n3');
  net.propose('n1', 'a');
  net.propose('n1', 'b');
  t.is(net.raft('n1').log.committed, 3);
  net.recover();
  net.isolate('n1'); // leader gone
  net.campaign('n3');
  t.not(net.raft('n3').role, 'leader');
  net.campaign('n2');
  t.is(net.raft('n2').role, 'leader');
});

// §5.4.2 / Figure 8: "Raft never commits log entries from previous terms by counting replicas."
test('§5.4.2 a leader does not commit an entry of an earlier term by counting replicas', (t) => {
  const storage = storageWithTerms([1, 2], { voters: three, learners: [] }, { term: 2, vote: null, commit: 0 });
  const r = newRaft('n1', three, { storage });
  makeLeader(r, three); // term 3, appends no-op at index 3
  // A majority holds index 2 (term 2), but not the no-op of term 3.
  r.step({ type: 'append-resp', from: 'n2', to: 'n1', term: 3, index: 2, reject: false, rejectHint: 0, logTerm: 0 });
  t.is(r.log.committed, 0);
  r.step({ type: 'append-resp', from: 'n2', to: 'n1', term: 3, index: 3, reject: false, rejectHint: 0, logTerm: 0 });
  t.is(r.log.committed, 3);
});

// §5.2/§5.3 on a network: an election followed by replication commits on every node.
test('§5.2 a leader is elected and its proposals are committed on all nodes', (t) => {
  const net = Network.of(5);
  net.campaign('n1');
  t.is(net.raft('n1').role, 'leader');
  for (const id of ids(5).slice(1)) {
    t.is(net.raft(id).role, 'follower');
    t.is(net.raft(id).lead, 'n1');
  }
  net.propose('n1', 'x');
  for (const id of ids(5)) t.is(net.raft(id).log.committed, 2, id);
});
