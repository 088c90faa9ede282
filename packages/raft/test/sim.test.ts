// Tests of the deterministic simulator: the checker must fire on fabricated histories that break each
// Raft safety property (so it cannot silently pass), and accept a legitimate history with elections and truncation.

import test from 'ava';
import { Checker, SafetyViolation, type Property } from '../src/sim/checker.js';
import { runSimulation, type Sabotage } from '../src/sim/cluster.js';
import { EventQueue, Network } from '../src/sim/network.js';
import { Rng } from '../src/sim/rng.js';
import type { Entry, HardState } from '../src/types.js';

const enc = new TextEncoder();
function e(index: number, term: number, data = ''): Entry {
  return { index, term, type: 'normal', data: enc.encode(data) };
}
function hs(term: number, vote: string | null, commit: number): HardState {
  return { term, vote, commit };
}

function expectViolation(t: import('ava').ExecutionContext, property: Property, history: (c: Checker) => void): void {
  const c = new Checker();
  const err = t.throws(() => history(c), { instanceOf: SafetyViolation });
  t.is(err?.property, property, err?.message);
}

test('checker accepts a legitimate history: election, replication, truncation of an uncommitted suffix, apply', (t) => {
  const c = new Checker();
  // n1 leads term 1 and replicates 1..2 to n2 (committed), 3 only to itself.
  c.observePersist('n1', null, [], hs(1, 'n1', 0));
  c.observeRole('n1', 'leader', 1);
  c.observePersist('n1', null, [e(1, 1, ''), e(2, 1, 'w:a'), e(3, 1, 'w:b')], null);
  c.observePersist('n2', null, [e(1, 1, ''), e(2, 1, 'w:a')], hs(1, 'n1', 0));
  c.observePersist('n1', null, [], hs(1, 'n1', 2));
  c.observeApply('n1', e(1, 1, ''));
  c.observeApply('n1', e(2, 1, 'w:a'));
  c.observeCommand('n1', 0, 'a');
  c.observeCrash('n1');
  // n2 leads term 2 with the committed prefix and overwrites n1's uncommitted 3.
  c.observePersist('n2', null, [], hs(2, 'n2', 0));
  c.observeRole('n2', 'leader', 2);
  c.observePersist('n2', null, [e(3, 2, '')], null);
  c.observeRestart('n1', 0, []);
  c.observePersist('n1', null, [e(3, 2, '')], hs(2, 'n2', 2));
  c.observePersist('n2', null, [], hs(2, 'n2', 3));
  c.observeApply('n2', e(1, 1, ''));
  c.observeApply('n2', e(2, 1, 'w:a'));
  c.observeCommand('n2', 0, 'a');
  c.observeSeqLength('n2', 2, 1);
  c.observeIssue('a');
  c.observeAck('a');
  c.observeReadIssued('r1');
  c.observeReadServed('r1', 'n2', 2, 2, (id) => id === 'a');
  c.finalCheck([{ id: 'n1', seq: ['a'] }, { id: 'n2', seq: ['a'] }]);
  t.is(c.stats.truncations, 1);
  t.is(c.stats.elections, 2);
});

test('checker reports election safety: two leaders in one term', (t) => {
  expectViolation(t, 'election-safety', (c) => {
    c.observeRole('n1', 'leader', 2);
    c.observeRole('n2', 'leader', 2);
  });
});

test('checker reports election safety: one voter grants two candidates in one term', (t) => {
  expectViolation(t, 'election-safety', (c) => {
    c.observeVoteGranted('n3', 'n1', 4);
    c.observeVoteGranted('n3', 'n1', 4);
    c.observeVoteGranted('n3', 'n2', 4);
  });
});

test('checker reports leader append-only: a leader overwrites its own entry', (t) => {
  expectViolation(t, 'leader-append-only', (c) => {
    c.observePersist('n1', null, [], hs(1, 'n1', 0));
    c.observeRole('n1', 'leader', 1);
    c.observePersist('n1', null, [e(1, 1, 'w:a'), e(2, 1, 'w:b')], null);
    c.observePersist('n1', null, [e(2, 1, 'w:c')], null);
  });
});

test('checker reports log matching: two different entries at the same index and term', (t) => {
  expectViolation(t, 'log-matching', (c) => {
    c.observePersist('n1', null, [e(1, 1, 'w:a'), e(2, 2, 'w:b')], hs(2, null, 0));
    c.observePersist('n2', null, [e(1, 1, 'w:a'), e(2, 2, 'w:c')], hs(2, null, 0));
  });
});

test('checker reports log matching: the same entry after different predecessors', (t) => {
  expectViolation(t, 'log-matching', (c) => {
    c.observePersist('n1', null, [e(1, 1, 'w:a'), e(2, 3, 'w:b')], hs(3, null, 0));
    c.observePersist('n2', null, [e(1, 2, 'w:x'), e(2, 3, 'w:b')], hs(3, null, 0));
  });
});

test('checker reports log matching: a leader counts a follower as matching an entry it does not hold', (t) => {
  expectViolation(t, 'log-matching', (c) => {
    c.observePersist('n1', null, [e(1, 1, 'w:a'), e(2, 1, 'w:b')], hs(1, 'n1', 0));
    c.observePersist('n2', null, [e(1, 1, 'w:a')], hs(1, 'n1', 0));
    c.observeLeaderProgress('n1', 1, { n1: { match: 2 }, n2: { match: 2 } });
  });
});

test('checker reports leader completeness: a new leader lacks a committed entry', (t) => {
  expectViolation(t, 'leader-completeness', (c) => {
    c.observePersist('n1', null, [e(1, 1, 'w:a')], hs(1, 'n1', 1));
    c.observePersist('n2', null, [], hs(2, 'n2', 0));
    c.observeRole('n2', 'leader', 2);
  });
});

test('checker reports leader completeness: a later-term entry lands on a committed index', (t) => {
  expectViolation(t, 'leader-completeness', (c) => {
    c.observePersist('n1', null, [e(1, 1, 'w:a')], hs(1, 'n1', 1));
    c.observePersist('n3', null, [e(1, 2, 'w:z')], hs(2, 'n2', 0));
  });
});

test('checker reports state machine safety: two nodes apply different entries at one index', (t) => {
  expectViolation(t, 'state-machine-safety', (c) => {
    c.observePersist('n1', null, [e(1, 1, 'w:a')], hs(1, null, 1));
    c.observePersist('n2', null, [e(1, 1, 'w:a')], hs(1, null, 1));
    c.observeApply('n1', e(1, 1, 'w:a'));
    c.observeApply('n2', e(1, 1, 'w:b'));
  });
});

test('checker reports state machine safety: a node overwrites its own committed entry', (t) => {
  expectViolation(t, 'state-machine-safety', (c) => {
    c.observePersist('n1', null, [e(1, 1, 'w:a'), e(2, 1, 'w:b')], hs(1, null, 2));
    c.observePersist('n1', null, [e(2, 2, 'w:c')], hs(2, null, 2));
  });
});

test('checker reports state machine safety: applications diverge in their command sequence', (t) => {
  expectViolation(t, 'state-machine-safety', (c) => {
    c.observeCommand('n1', 0, 'a');
    c.observeCommand('n2', 0, 'b');
  });
});

test('checker reports hard state: two votes in one term', (t) => {
  expectViolation(t, 'hard-state', (c) => {
    c.observePersist('n1', null, [], hs(3, 'n2', 0));
    c.observePersist('n1', null, [], hs(3, 'n3', 0));
  });
});

test('checker reports hard state: commit beyond the durable log', (t) => {
  expectViolation(t, 'hard-state', (c) => {
    c.observePersist('n1', null, [e(1, 1)], hs(1, null, 2));
  });
});

test('checker reports apply order: applying an entry whose commit is not durable', (t) => {
  expectViolation(t, 'apply-order', (c) => {
    c.observePersist('n1', null, [e(1, 1, 'w:a')], hs(1, null, 0));
    c.observeApply('n1', e(1, 1, 'w:a'));
  });
});

test('checker reports proposal integrity: a different entry applied at the proposal position', (t) => {
  expectViolation(t, 'proposal-integrity', (c) => {
    c.observeProposalOutcome('n1', { index: 4, term: 2 }, 'n:w:a', e(4, 2, 'w:b'));
  });
});

test('checker reports a stale read: a read misses a write acknowledged before it was issued', (t) => {
  expectViolation(t, 'linearizable-read', (c) => {
    c.observeIssue('a');
    c.observeAck('a');
    c.observeReadIssued('r1');
    c.observeReadServed('r1', 'n2', 1, 1, () => false);
  });
});

test('checker reports exactly-once: an acknowledged command is missing at the end', (t) => {
  expectViolation(t, 'exactly-once', (c) => {
    c.observeIssue('a');
    c.observeAck('a');
    c.finalCheck([{ id: 'n1', seq: [] }]);
  });
});

test('checker reports exactly-once: a command applied twice', (t) => {
  expectViolation(t, 'exactly-once', (c) => {
    c.finalCheck([{ id: 'n1', seq: ['a', 'a'] }]);
  });
});

test('checker reports exactly-once: real-time order of acknowledged writes is broken', (t) => {
  expectViolation(t, 'exactly-once', (c) => {
    c.observeIssue('a');
    c.observeAck('a');
    c.observeIssue('b');
    c.observeAck('b');
    c.finalCheck([{ id: 'n1', seq: ['b', 'a'] }]);
  });
});

test('checker reports convergence: members end with different sequences', (t) => {
  expectViolation(t, 'convergence', (c) => {
    c.finalCheck([
      { id: 'n1', seq: ['a', 'b'] },
      { id: 'n2', seq: ['a'] },
    ]);
  });
});

test('rng: a seed determines the stream, different seeds differ', (t) => {
  const draw = (seed: number): number[] => {
    const r = new Rng(seed);
    return Array.from({ length: 8 }, () => r.u32());
  };
  t.deepEqual(draw(42), draw(42));
  t.notDeepEqual(draw(42), draw(43));
  const r = new Rng(7);
  for (let i = 0; i < 1000; i++) {
    const v = r.int(3, 5);
    t.true(v >= 3 && v <= 5);
  }
});

test('event queue pops in (time, insertion) order', (t) => {
  const q = new EventQueue<string>(100);
  q.push(5, 'c');
  q.push(1, 'a');
  q.push(5, 'd');
  q.push(3, 'b');
  q.push(1, 'a2');
  const out: string[] = [];
  for (let ev = q.pop(); ev !== undefined; ev = q.pop()) out.push(ev.item);
  t.deepEqual(out, ['a', 'a2', 'b', 'c', 'd']);
});

test('network: a partition cuts some link (never a node from itself), heal restores all, route honours cuts', (t) => {
  const nodes = ['a', 'b', 'c', 'd'];
  for (let seed = 1; seed <= 50; seed++) {
    const net = new Network(new Rng(seed), { dropP: 0, dupP: 0, minDelay: 1, maxDelay: 5, lateP: 0, lateMaxDelay: 5 });
    net.partition(nodes);
    const cut = nodes.flatMap((x) => nodes.filter((y) => !net.connected(x, y)).map((y) => [x, y] as const));
    t.true(cut.length > 0);
    for (const [x, y] of cut) {
      t.not(x, y);
      t.deepEqual(net.route(x, y), []);
    }
    net.heal();
    for (const x of nodes) for (const y of nodes) t.true(net.connected(x, y));
    const d = net.route('a', 'b');
    t.is(d.length, 1);
    t.true((d[0] ?? 0) >= 1 && (d[0] ?? 0) <= 5);
  }
});

test('simulator: seeds 0..199 keep every safety property, converge, and really exercise the core', (t) => {
  const failures: string[] = [];
  const total: Record<string, number> = {};
  for (let seed = 0; seed < 200; seed++) {
    const r = runSimulation({ seed });
    if (r.violation !== null) failures.push(`seed ${seed}: ${r.violation.property}: ${r.violation.detail}`);
    for (const [k, v] of Object.entries(r.stats)) total[k] = (total[k] ?? 0) + v;
  }
  t.deepEqual(failures, []);
  // A simulator that silently does nothing would pass the line above: require that each mechanism ran.
  for (const k of ['elections', 'acks', 'readsServed', 'snapshotsApplied', 'truncations', 'crashes', 'restarts', 'confChanges', 'transfers', 'partitions', 'dropped', 'duplicated', 'late']) {
    t.true((total[k] ?? 0) > 0, `no ${k} in 200 seeds`);
  }
});

test('simulator: a seed determines the whole run (same transcript twice)', (t) => {
  const transcript = (seed: number): string[] => {
    const lines: string[] = [];
    runSimulation({ seed, trace: (l) => lines.push(l), traceMessages: true, chaosTicks: 120 });
    return lines;
  };
  const a = transcript(11);
  t.true(a.length > 100);
  t.deepEqual(transcript(11), a);
  t.notDeepEqual(transcript(12), a);
});

function firstViolation(sabotage: Sabotage, seeds: number): { seed: number; property: Property } | null {
  for (let seed = 0; seed < seeds; seed++) {
    const r = runSimulation({ seed, sabotage });
    if (r.violation !== null) return { seed, property: r.violation.property };
  }
  return null;
}

test('simulator catches a host that does not persist its vote (one vote per term broken)', (t) => {
  const v = firstViolation('forget-votes', 200);
  t.not(v, null);
  t.is(v?.property, 'election-safety');
});

test('simulator catches reads served without ReadIndex (stale reads)', (t) => {
  const v = firstViolation('stale-reads', 200);
  t.not(v, null);
  t.is(v?.property, 'linearizable-read');
});
