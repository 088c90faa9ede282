// MemoryStorage: the Storage contract the core relies on (O(1) index lookups, compaction, snapshots, overwrite of
// a conflicting suffix) and its typed errors.

import test from 'ava';
import { MemoryStorage } from '../src/memory-storage.js';
import { RaftError } from '../src/types.js';
import { ent } from './raft-harness.js';

const cs = { voters: ['n1'], learners: [] };

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof RaftError) return e.code;
    throw e;
  }
  return 'none';
}

function filled(): MemoryStorage {
  const s = new MemoryStorage();
  s.append([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 3), ent(5, 3)]);
  return s;
}

test('a new MemoryStorage is empty with the empty hard state and snapshot', (t) => {
  const s = new MemoryStorage();
  t.is(s.firstIndex(), 1);
  t.is(s.lastIndex(), 0);
  t.is(s.term(0), 0);
  t.deepEqual(s.initialState().hardState, { term: 0, vote: null, commit: 0 });
  t.is(s.snapshot().meta.index, 0);
});

test('term() and entries() read by index; out-of-range reads raise compacted/unavailable', (t) => {
  const s = filled();
  t.is(s.term(3), 2);
  t.deepEqual(s.entries(2, 5, Infinity).map((e) => e.index), [2, 3, 4]);
  t.is(code(() => s.term(6)), 'unavailable');
  t.is(code(() => s.entries(4, 7, Infinity)), 'unavailable');
  s.compact(2);
  t.is(s.firstIndex(), 3);
  t.is(s.term(2), 1, 'the term at the compaction point stays readable');
  t.is(code(() => s.term(1)), 'compacted');
  t.is(code(() => s.entries(2, 4, Infinity)), 'compacted');
});

test('entries() honours maxBytes but always returns at least one entry', (t) => {
  const s = new MemoryStorage();
  s.append([1, 2, 3, 4].map((i) => ({ index: i, term: 1, type: 'normal' as const, data: new Uint8Array(100) })));
  t.is(s.entries(1, 5, 0).length, 1);
  t.is(s.entries(1, 5, 250).length, 2);
  t.is(s.entries(1, 5, Infinity).length, 4);
});

test('append overwrites a conflicting suffix and rejects gaps and non-contiguous batches', (t) => {
  const s = filled();
  s.append([ent(3, 4), ent(4, 4)]);
  t.is(s.lastIndex(), 4);
  t.deepEqual([1, 2, 3, 4].map((i) => s.term(i)), [1, 1, 4, 4]);
  t.is(code(() => s.append([ent(9, 4)])), 'unavailable');
  t.throws(() => s.append([ent(5, 4), ent(7, 4)]), { message: /not contiguous/ });
});

test('append skips entries that are already compacted', (t) => {
  const s = filled();
  s.compact(3);
  s.append([ent(2, 1), ent(3, 2), ent(4, 3), ent(5, 3), ent(6, 3)]);
  t.is(s.firstIndex(), 4);
  t.is(s.lastIndex(), 6);
});

test('entries slices are copies: a later overwrite does not change what a caller holds', (t) => {
  const s = filled();
  const got = s.entries(1, 6, Infinity);
  s.append([ent(2, 9)]);
  t.is(got[1]?.term, 1);
  t.is(got.length, 5);
});

test('createSnapshot records term and membership; compact drops entries; applySnapshot resets the log', (t) => {
  const s = filled();
  const snap = s.createSnapshot(4, cs, new Uint8Array([7]));
  t.deepEqual(snap.meta, { index: 4, term: 3, confState: cs });
  t.is(code(() => s.createSnapshot(3, cs, new Uint8Array())), 'snapshot_out_of_date');
  t.is(code(() => s.createSnapshot(9, cs, new Uint8Array())), 'unavailable');
  t.is(code(() => s.compact(9)), 'unavailable');
  s.compact(4);
  t.is(s.firstIndex(), 5);
  t.is(code(() => s.compact(4)), 'compacted');
  t.is(code(() => s.applySnapshot(snap)), 'snapshot_out_of_date');
  s.applySnapshot({ meta: { index: 10, term: 5, confState: cs }, data: new Uint8Array() });
  t.is(s.firstIndex(), 11);
  t.is(s.lastIndex(), 10);
  t.is(s.term(10), 5);
  t.deepEqual(s.initialState().confState, cs);
});

test('setHardState refuses to move the term back (an invariant, not input)', (t) => {
  const s = new MemoryStorage();
  s.setHardState({ term: 3, vote: 'n1', commit: 0 });
  t.throws(() => s.setHardState({ term: 2, vote: null, commit: 0 }), { message: /raft invariant/ });
  t.deepEqual(s.hardState(), { term: 3, vote: 'n1', commit: 0 });
});
