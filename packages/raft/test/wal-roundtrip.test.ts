// WAL round trips: what save() made durable is exactly what open() recovers, across overwrites of a suffix,
// segment rotation, reopen-and-append, queued (unawaited) saves, and with or without preallocation.

import test from 'ava';
import { readdir } from 'node:fs/promises';
import { DiskLog, openDiskStorage } from '../src/wal/index.js';
import { emptyHardState, emptySnapshot, RaftError } from '../src/types.js';
import { entries, hs, plain, tempDir } from './wal-fixtures.js';

async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('wal-')).sort();
}

test('a fresh directory opens empty and is created if missing', async (t) => {
  const dir = `${await tempDir(t, 'fresh')}/nested/data`;
  const { log, state, repaired } = await DiskLog.open(dir);
  t.is(repaired, null);
  t.deepEqual(state.hardState, emptyHardState);
  t.deepEqual(state.snapshot, emptySnapshot);
  t.deepEqual(state.entries, []);
  t.is(log.dir, dir);
  await log.close();
  t.deepEqual(await segmentFiles(dir), ['wal-0000000000000000-0000000000000001.log']);
});

for (const preallocate of [true, false]) {
  test(`entries, hard state, a suffix overwrite and rotation survive reopen exactly (preallocate=${preallocate})`, async (t) => {
    const dir = await tempDir(t, 'roundtrip');
    const opts = { segmentBytes: 512, preallocate };
    const first = await DiskLog.open(dir, opts);
    const log = first.log;
    const expected = entries(1, 40, 1);
    for (let i = 1; i <= 40; i += 4) await log.save(hs(1, Math.max(0, i - 2)), entries(i, i + 3, 1), true);
    // A new leader overwrites 31..40 with a shorter suffix of term 2.
    await log.save(hs(2, 30, 'n2'), entries(31, 35, 2), true);
    expected.splice(30, 10, ...entries(31, 35, 2));
    // Then the log grows again over several more segments.
    for (let i = 36; i <= 120; i += 5) await log.save(null, entries(i, i + 4, 2), i % 2 === 0);
    expected.push(...entries(36, 120, 2));
    await log.save(hs(2, 100, 'n2'), [], true);
    await log.close();

    const segs = await segmentFiles(dir);
    t.true(segs.length >= 4, `rotation made several segments: ${segs.join(', ')}`);
    const again = await DiskLog.open(dir, opts);
    t.is(again.repaired, null);
    t.deepEqual(again.state.hardState, hs(2, 100, 'n2'));
    t.deepEqual(again.state.snapshot, emptySnapshot);
    t.deepEqual(plain(again.state.entries), plain(expected));
    await again.log.close();
  });
}

test('an overwrite that reaches back into a sealed segment supersedes everything after it', async (t) => {
  const dir = await tempDir(t, 'overwrite');
  const { log } = await DiskLog.open(dir, { segmentBytes: 300 });
  for (let i = 1; i <= 60; i += 6) await log.save(hs(1, 0), entries(i, i + 5, 1), true);
  t.true((await segmentFiles(dir)).length >= 3);
  await log.save(hs(3, 4, 'n3'), entries(5, 8, 3), true);
  await log.close();
  const { log: again, state } = await DiskLog.open(dir, { segmentBytes: 300 });
  t.deepEqual(plain(state.entries), plain([...entries(1, 4, 1), ...entries(5, 8, 3)]));
  t.deepEqual(state.hardState, hs(3, 4, 'n3'));
  await again.close();
});

test('reopen then append continues the same log', async (t) => {
  const dir = await tempDir(t, 'reopen');
  const a = await openDiskStorage(dir, { segmentBytes: 1024 });
  await a.log.save(hs(1, 3), entries(1, 10, 1), true);
  await a.log.close();
  const b = await openDiskStorage(dir, { segmentBytes: 1024 });
  t.is(b.state.entries.length, 10);
  await b.log.save(hs(1, 12), entries(11, 30, 1), true);
  await b.log.close();
  const c = await openDiskStorage(dir, { segmentBytes: 1024 });
  t.is(c.repaired, null);
  t.deepEqual(plain(c.state.entries), plain(entries(1, 30, 1)));
  t.deepEqual(c.state.hardState, hs(1, 12));
  await c.log.close();
});

test('saves issued without awaiting are written in call order and all resolve', async (t) => {
  const dir = await tempDir(t, 'queue');
  const { log } = await DiskLog.open(dir, { segmentBytes: 700 });
  const pending: Promise<void>[] = [];
  for (let i = 1; i <= 200; i++) pending.push(log.save(hs(1, i - 1), entries(i, i, 1), i % 3 === 0));
  // The overwrite is queued behind the appends and must land after them.
  pending.push(log.save(hs(2, 150, 'n2'), entries(151, 152, 2), true));
  await Promise.all(pending);
  await log.close();
  const { log: again, state } = await DiskLog.open(dir, { segmentBytes: 700 });
  t.deepEqual(plain(state.entries), plain([...entries(1, 150, 1), ...entries(151, 152, 2)]));
  t.deepEqual(state.hardState, hs(2, 150, 'n2'));
  await again.close();
});

test('a save that would leave a gap in the log is refused', async (t) => {
  const dir = await tempDir(t, 'gap');
  const { log } = await DiskLog.open(dir);
  await log.save(null, entries(1, 3, 1), true);
  await t.throwsAsync(log.save(null, entries(5, 6, 1), true), { message: /gap/ });
  await t.throwsAsync(log.save(null, [...entries(4, 4, 1), ...entries(6, 6, 1)], true), { message: /contiguous/ });
  await log.close();
});

test('calls after close fail with RaftError io', async (t) => {
  const dir = await tempDir(t, 'closed');
  const { log } = await DiskLog.open(dir);
  await log.close();
  const err = await t.throwsAsync(log.save(null, entries(1, 1, 1), true));
  t.true(err instanceof RaftError && err.code === 'io');
});
