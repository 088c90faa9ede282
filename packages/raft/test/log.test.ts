// RaftLog: the stable/unstable split, conflict detection, commit rules, and committed-entry hand-out.

import test from 'ava';
import { RaftLog } from '../src/log.js';
import { MemoryStorage } from '../src/memory-storage.js';
import { RaftError } from '../src/types.js';
import { ent } from './raft-harness.js';

function logWith(stableTerms: number[], committed = 0): RaftLog {
  const s = new MemoryStorage();
  s.append(stableTerms.map((term, k) => ent(k + 1, term)));
  return new RaftLog(s, committed, 0);
}

test('lastIndex/term see the unstable tail on top of storage', (t) => {
  const l = logWith([1, 1]);
  l.append([ent(3, 2), ent(4, 2)]);
  t.is(l.lastIndex(), 4);
  t.is(l.term(4), 2);
  t.is(l.term(1), 1);
  t.deepEqual(l.slice(1, 5, Infinity).map((e) => e.index), [1, 2, 3, 4]);
  t.deepEqual(l.unstableEntries().map((e) => e.index), [3, 4]);
});

test('stableTo drops persisted entries from the unstable tail only if the term still matches', (t) => {
  const l = logWith([1]);
  l.append([ent(2, 1), ent(3, 1)]);
  l.stableTo(3, 2); // wrong term: stale report
  t.is(l.unstable.entries.length, 2);
  (l.storage as MemoryStorage).append(l.unstableEntries());
  l.stableTo(3, 1);
  t.is(l.unstable.entries.length, 0);
  t.is(l.unstable.offset, 4);
  t.is(l.lastIndex(), 3);
});

test('maybeAppend truncates a conflicting tail but refuses to touch committed entries', (t) => {
  const l = logWith([1, 1, 2], 1);
  t.is(l.maybeAppend(1, 1, 3, [ent(2, 3), ent(3, 3)]), 3);
  t.deepEqual([1, 2, 3].map((i) => l.term(i)), [1, 3, 3]);
  t.is(l.committed, 3);
  t.is(l.maybeAppend(1, 2, 3, [ent(2, 3)]), null, 'mismatched predecessor term');
  t.throws(() => l.maybeAppend(1, 1, 3, [ent(2, 4)]), { message: /conflicts with committed/ });
});

test('an append that already matches is idempotent and does not truncate newer entries', (t) => {
  const l = logWith([1, 1, 1, 1]);
  t.is(l.maybeAppend(1, 1, 0, [ent(2, 1)]), 2);
  t.is(l.lastIndex(), 4);
});

test('findConflictByTerm returns the last index whose term is <= the given term', (t) => {
  const l = logWith([1, 1, 2, 2, 4, 4, 4]);
  t.is(l.findConflictByTerm(7, 3), 4);
  t.is(l.findConflictByTerm(7, 4), 7);
  t.is(l.findConflictByTerm(7, 1), 2);
  t.is(l.findConflictByTerm(7, 0), 0);
  t.is(l.findConflictByTerm(100, 4), 7, 'clamped to lastIndex');
});

test('commit never decreases and never passes lastIndex', (t) => {
  const l = logWith([1, 1, 1]);
  l.commitTo(2);
  l.commitTo(1);
  t.is(l.committed, 2);
  t.throws(() => l.commitTo(4), { message: /raft invariant/ });
});

test('maybeCommit only commits an index of the given (current) term', (t) => {
  const l = logWith([1, 1, 2]);
  t.false(l.maybeCommit(2, 2));
  t.is(l.committed, 0);
  t.true(l.maybeCommit(3, 2));
  t.is(l.committed, 3);
});

test('nextCommittedEnts hands out each committed entry once (applying) and respects maxBytes', (t) => {
  const l = logWith([1, 1, 1, 1]);
  l.commitTo(3);
  const first = l.nextCommittedEnts(0);
  t.deepEqual(first.map((e) => e.index), [1]);
  l.applying = 1;
  t.deepEqual(l.nextCommittedEnts(Infinity).map((e) => e.index), [2, 3]);
  l.applying = 3;
  t.false(l.hasNextCommittedEnts());
  l.appliedTo(3);
  t.is(l.applied, 3);
});

test('a restored snapshot replaces the log and holds back committed entries until persisted', (t) => {
  const l = logWith([1, 1]);
  l.restore({ meta: { index: 10, term: 3, confState: { voters: ['n1'], learners: [] } }, data: new Uint8Array() });
  t.is(l.firstIndex(), 11);
  t.is(l.lastIndex(), 10);
  t.is(l.term(10), 3);
  t.is(l.committed, 10);
  t.false(l.hasNextCommittedEnts());
  const err = t.throws(() => l.term(5));
  t.true(err instanceof RaftError && err.code === 'compacted');
});
