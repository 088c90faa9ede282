// Snapshots in the WAL: saveSnapshot + reopen gives the snapshot and only later entries, old files are pruned,
// a corrupt newest snapshot falls back to the older one, and a snapshot replacing a conflicting log wins.

import test from 'ava';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DiskLog } from '../src/wal/index.js';
import { writeSnapshotFile } from '../src/wal/snapshot-file.js';
import { RaftError, type Snapshot } from '../src/types.js';
import { entries, hs, plain, RecordingLogger, tempDir } from './wal-fixtures.js';

function snap(index: number, term: number, text = `state@${index}`): Snapshot {
  return {
    meta: { index, term, confState: { voters: ['n1', 'n2', 'n3'], learners: ['n4'] } },
    data: new Uint8Array(Buffer.from(text)),
  };
}

async function files(dir: string, prefix: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith(prefix)).sort();
}

const opts = { segmentBytes: 400 };

/** Writes entries 1..to in batches of 5 (term 1), each with a hard state committing the batch. */
async function fill(log: DiskLog, from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i += 5) await log.save(hs(1, Math.min(i + 4, to)), entries(i, Math.min(i + 4, to), 1), true);
}

test('after saveSnapshot, reopen returns the snapshot and only the entries after it', async (t) => {
  const dir = await tempDir(t, 'snap');
  const { log } = await DiskLog.open(dir, opts);
  await fill(log, 1, 60);
  await log.saveSnapshot(snap(40, 1));
  await fill(log, 61, 70);
  await log.close();
  const { log: again, state, repaired } = await DiskLog.open(dir, opts);
  t.is(repaired, null);
  t.deepEqual(state.snapshot.meta, snap(40, 1).meta);
  t.is(Buffer.from(state.snapshot.data).toString(), 'state@40');
  t.deepEqual(plain(state.entries), plain(entries(41, 70, 1)));
  t.deepEqual(state.hardState, hs(1, 70));
  await again.close();
});

test('segments wholly below the older kept snapshot are deleted, and at most two snapshot files remain', async (t) => {
  const dir = await tempDir(t, 'prune');
  const { log } = await DiskLog.open(dir, opts);
  await fill(log, 1, 100);
  const segsBefore = await files(dir, 'wal-');
  t.true(segsBefore.length >= 5, `several segments: ${segsBefore.join(' ')}`);
  await log.saveSnapshot(snap(50, 1));
  await fill(log, 101, 150);
  await log.saveSnapshot(snap(120, 1));
  await log.saveSnapshot(snap(140, 1));
  t.deepEqual(await files(dir, 'snap-'), [
    'snap-0000000000000001-0000000000000078.snap',
    'snap-0000000000000001-000000000000008c.snap',
  ]);
  const segsAfter = await files(dir, 'wal-');
  // Every remaining segment but the first starts above index 121, so nothing needed after snapshot 120 is gone.
  const firstIndexes = segsAfter.map((n) => Number.parseInt(n.slice(21, 37), 16));
  t.true((firstIndexes[1] ?? Infinity) > 121, `first indexes ${firstIndexes.join(',')}`);
  t.false(segsAfter.includes(segsBefore[0] ?? ''), 'the first segment is deleted');
  await log.close();
  const { log: again, state } = await DiskLog.open(dir, opts);
  t.is(state.snapshot.meta.index, 140);
  t.deepEqual(plain(state.entries), plain(entries(141, 150, 1)));
  t.deepEqual(state.hardState, hs(1, 150));
  await again.close();
});

test('a corrupt newest snapshot is skipped with a warning and the older one is used with its entries', async (t) => {
  const dir = await tempDir(t, 'fallback');
  const { log } = await DiskLog.open(dir, opts);
  await fill(log, 1, 80);
  await log.saveSnapshot(snap(30, 1));
  await fill(log, 81, 120);
  await log.saveSnapshot(snap(100, 1));
  await fill(log, 121, 130);
  await log.close();
  const newest = join(dir, 'snap-0000000000000001-0000000000000064.snap');
  const bytes = await readFile(newest);
  const at = bytes.length - 3;
  bytes.writeUInt8(bytes.readUInt8(at) ^ 0x40, at);
  await writeFile(newest, bytes);

  const logger = new RecordingLogger();
  const { log: again, state } = await DiskLog.open(dir, { ...opts, logger });
  t.is(state.snapshot.meta.index, 30);
  t.is(Buffer.from(state.snapshot.data).toString(), 'state@30');
  t.deepEqual(plain(state.entries), plain(entries(31, 130, 1)));
  t.true(logger.warnings.some((w) => /snapshot file is corrupt/.test(w.msg ?? '')));
  t.true((await readdir(dir)).includes('snap-0000000000000001-0000000000000064.snap.corrupt'), 'kept aside for the operator');
  // The log keeps working from the fallback, and a new snapshot is kept next to the verified one.
  await again.saveSnapshot(snap(125, 1));
  await again.close();
  const third = await DiskLog.open(dir, opts);
  t.is(third.state.snapshot.meta.index, 125);
  t.deepEqual(plain(third.state.entries), plain(entries(126, 130, 1)));
  await third.log.close();
});

test('a snapshot that replaces a conflicting log drops the stale entries; later appends follow it', async (t) => {
  const dir = await tempDir(t, 'install');
  const { log } = await DiskLog.open(dir, opts);
  await fill(log, 1, 30); // term 1, of which only a prefix was ever committed
  // A leader sends a snapshot at 20 whose term (3) does not match our entry 20: the whole log is replaced.
  await log.saveSnapshot(snap(20, 3));
  await log.save(hs(3, 21), entries(21, 24, 3), true);
  await log.close();
  const { log: again, state } = await DiskLog.open(dir, opts);
  t.is(state.snapshot.meta.index, 20);
  t.deepEqual(plain(state.entries), plain(entries(21, 24, 3)));

  // And a snapshot ahead of the whole log: nothing after it survives, new entries continue from it.
  await again.saveSnapshot(snap(500, 4));
  await again.save(hs(4, 501), entries(501, 502, 4), true);
  await again.close();
  const third = await DiskLog.open(dir, opts);
  t.is(third.state.snapshot.meta.index, 500);
  t.deepEqual(plain(third.state.entries), plain(entries(501, 502, 4)));
  await third.log.close();
});

test('a snapshot file durable without its WAL marker (crash between the two) still wins over conflicting entries', async (t) => {
  const dir = await tempDir(t, 'nomarker');
  const { log } = await DiskLog.open(dir, opts);
  await fill(log, 1, 30);
  await log.close();
  await writeSnapshotFile(dir, snap(10, 2)); // entry 10 has term 1: the log after it is stale
  const a = await DiskLog.open(dir, opts);
  t.is(a.state.snapshot.meta.index, 10);
  t.deepEqual(a.state.entries, []);
  await a.log.close();

  const dir2 = await tempDir(t, 'nomarker-match');
  const b = await DiskLog.open(dir2, opts);
  await fill(b.log, 1, 30);
  await b.log.close();
  await writeSnapshotFile(dir2, snap(10, 1)); // matches entry 10: the entries after it are kept
  const c = await DiskLog.open(dir2, opts);
  t.deepEqual(plain(c.state.entries), plain(entries(11, 30, 1)));
  await c.log.close();
});

test('an older snapshot than the saved one is refused with snapshot_out_of_date', async (t) => {
  const dir = await tempDir(t, 'old');
  const { log } = await DiskLog.open(dir, opts);
  await fill(log, 1, 20);
  await log.saveSnapshot(snap(15, 1));
  await log.saveSnapshot(snap(15, 1)); // the same one again is a no-op
  const err = await t.throwsAsync(log.saveSnapshot(snap(10, 1)));
  t.true(err instanceof RaftError && err.code === 'snapshot_out_of_date');
  await log.close();
});
