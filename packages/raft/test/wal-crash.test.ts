// Crash recovery: for every cut and every flipped byte in the tail of the last segment, open() recovers exactly
// the records wholly before the damage (never garbage) and cuts the rest; damage in a sealed segment is an error.

import test, { type ExecutionContext } from 'ava';
import { cp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DiskLog } from '../src/wal/index.js';
import { decodeEntry, decodeHardState, RecordType, scanRecords, type RawRecord } from '../src/wal/format.js';
import { emptyHardState, RaftError, type Entry, type HardState } from '../src/types.js';
import { entries, hs, plain, RecordingLogger, tempDir } from './wal-fixtures.js';

const opts = { segmentBytes: 600 };
/** How many records at the end of the last segment get the every-byte treatment. */
const TAIL_RECORDS = 6;

interface Template {
  dir: string;
  written: Entry[];
  segments: string[];
  lastSegment: string;
  lastBytes: Buffer;
  records: RawRecord[];
  /** Offset just past the last record (a preallocated zero tail may follow). */
  validEnd: number;
}

/** A small log over several segments; its last batches are single entries so the tail has many record kinds. */
async function makeTemplate(t: ExecutionContext): Promise<Template> {
  const dir = await tempDir(t, 'template');
  const { log } = await DiskLog.open(dir, opts);
  const written: Entry[] = [];
  let index = 1;
  while (index <= 36) {
    const batch = entries(index, index + (index < 24 ? 2 : 0), 1 + Math.floor(index / 20));
    await log.save(hs(batch[0]?.term ?? 1, index - 1), batch, true);
    written.push(...batch);
    index += batch.length;
  }
  await log.close();
  const segments = (await readdir(dir)).filter((n) => n.startsWith('wal-')).sort();
  t.true(segments.length >= 3, 'the template spans several segments');
  const lastSegment = segments.at(-1) ?? '';
  const lastBytes = await readFile(join(dir, lastSegment));
  const scan = scanRecords(lastBytes);
  t.true(scan.records.length > TAIL_RECORDS + 1, 'the last segment holds enough records');
  return { dir, written, segments, lastSegment, lastBytes, records: scan.records, validEnd: scan.validBytes };
}

function recordEnd(r: RawRecord): number {
  return r.offset + 9 + r.payload.length;
}

/** What recovery must return when exactly the last-segment records ending at or before `cut` survive. */
function expectedAt(tpl: Template, cut: number): { count: number; hardState: HardState; boundary: number } {
  let count = 0;
  let hardState: HardState = emptyHardState;
  let boundary = 0;
  // Earlier segments are intact: everything before the last segment's first entry survives.
  for (const r of tpl.records) {
    if (r.type === RecordType.entry) {
      const e = decodeEntry(r.payload);
      if (count === 0) count = e.index - 1;
      if (recordEnd(r) <= cut) count = e.index;
    }
    if (recordEnd(r) > cut) continue;
    if (r.type === RecordType.hardState) hardState = decodeHardState(r.payload);
    boundary = recordEnd(r);
  }
  return { count, hardState, boundary };
}

async function copyOf(t: ExecutionContext, tpl: Template, tag: string): Promise<string> {
  const dir = await tempDir(t, tag);
  await cp(tpl.dir, dir, { recursive: true });
  return dir;
}

test('a cut at every byte offset in the last records recovers exactly the records before the cut', async (t) => {
  const tpl = await makeTemplate(t);
  const from = tpl.records.at(-TAIL_RECORDS)?.offset ?? 0;
  const work = await copyOf(t, tpl, 'cut');
  const path = join(work, tpl.lastSegment);
  let repairs = 0;
  for (let cut = from; cut <= tpl.validEnd; cut++) {
    await writeFile(path, tpl.lastBytes.subarray(0, cut));
    const want = expectedAt(tpl, cut);
    const { log, state, repaired } = await DiskLog.open(work, opts);
    await log.close();
    const ctx = `cut at ${cut}`;
    t.deepEqual(plain(state.entries), plain(tpl.written.slice(0, want.count)), ctx);
    t.deepEqual(state.hardState, want.hardState, ctx);
    if (cut === want.boundary) {
      t.is(repaired, null, ctx);
    } else {
      repairs++;
      t.is(repaired?.offset, want.boundary, ctx);
      t.is(repaired?.droppedBytes, cut - want.boundary, ctx);
      t.is(repaired?.file, path, ctx);
    }
    t.is((await stat(path)).size, want.boundary, `${ctx}: the torn bytes are gone from the file`);
  }
  t.true(repairs > 60, `exercised many torn cuts (${repairs})`);
});

test('a flipped byte anywhere in the last records recovers the prefix before that record, never its content', async (t) => {
  const tpl = await makeTemplate(t);
  const tail = tpl.records.slice(-TAIL_RECORDS);
  const work = await copyOf(t, tpl, 'flip');
  const path = join(work, tpl.lastSegment);
  const logger = new RecordingLogger();
  for (const rec of tail) {
    for (let at = rec.offset; at < recordEnd(rec); at++) {
      const bytes = Buffer.from(tpl.lastBytes);
      bytes.writeUInt8(bytes.readUInt8(at) ^ (1 << (at % 8)), at);
      await writeFile(path, bytes);
      const want = expectedAt(tpl, rec.offset);
      const { log, state, repaired } = await DiskLog.open(work, { ...opts, logger });
      await log.close();
      const ctx = `flip at ${at} in record at ${rec.offset}`;
      t.deepEqual(plain(state.entries), plain(tpl.written.slice(0, want.count)), ctx);
      t.deepEqual(state.hardState, want.hardState, ctx);
      t.is(repaired?.offset, rec.offset, ctx);
    }
  }
  t.true(logger.warnings.length > 0 && logger.warnings.every((w) => /cut a torn or corrupt tail/.test(w.msg ?? '')));
});

test('a flipped byte in a sealed segment makes open() throw RaftError corrupt naming the file and offset', async (t) => {
  const tpl = await makeTemplate(t);
  const sealed = tpl.segments[1] ?? '';
  const original = await readFile(join(tpl.dir, sealed));
  const records = scanRecords(original).records;
  const work = await copyOf(t, tpl, 'sealed');
  const path = join(work, sealed);
  // The header, the restated hard state, and the last records (the ones a lenient reader would be tempted to drop).
  const targets = [...records.slice(0, 2), ...records.slice(-4)];
  for (const rec of targets) {
    for (let at = rec.offset; at < recordEnd(rec); at++) {
      const bytes = Buffer.from(original);
      bytes.writeUInt8(bytes.readUInt8(at) ^ (1 << (at % 8)), at);
      await writeFile(path, bytes);
      const err = await t.throwsAsync(DiskLog.open(work, opts), undefined, `flip at ${at}`);
      t.true(err instanceof RaftError && err.code === 'corrupt', `flip at ${at}: ${err?.message}`);
      t.true(err?.message.includes(path) && err.message.includes(`byte offset ${rec.offset}`), err?.message);
    }
  }
  // A sealed segment cut short is corruption too (only the last segment may end in a torn record).
  await writeFile(path, original.subarray(0, original.length - 3));
  const err = await t.throwsAsync(DiskLog.open(work, opts));
  t.true(err instanceof RaftError && err.code === 'corrupt');
});

test('an absurd length field ends the log in the last segment and is corruption in a sealed one', async (t) => {
  const tpl = await makeTemplate(t);
  const victim = tpl.records.at(-3);
  if (victim === undefined) return t.fail('template too small');
  const work = await copyOf(t, tpl, 'length');
  const bytes = Buffer.from(tpl.lastBytes);
  bytes.writeUInt32LE(0xfffffff0, victim.offset + 4);
  await writeFile(join(work, tpl.lastSegment), bytes);
  const { log, state, repaired } = await DiskLog.open(work, opts);
  await log.close();
  t.regex(repaired?.reason ?? '', /exceeds the bound/);
  t.is(state.entries.length, expectedAt(tpl, victim.offset).count);

  const sealedWork = await copyOf(t, tpl, 'length-sealed');
  const sealed = join(sealedWork, tpl.segments[0] ?? '');
  const sealedBytes = await readFile(sealed);
  const rec = scanRecords(sealedBytes).records.at(-1);
  if (rec === undefined) return t.fail('empty sealed segment');
  sealedBytes.writeUInt32LE(0x7fffffff, rec.offset + 4);
  await writeFile(sealed, sealedBytes);
  const err = await t.throwsAsync(DiskLog.open(sealedWork, opts));
  t.true(err instanceof RaftError && err.code === 'corrupt');
});

test('a missing middle segment is corruption, not a silently shorter log', async (t) => {
  const tpl = await makeTemplate(t);
  const work = await copyOf(t, tpl, 'missing');
  await rm(join(work, tpl.segments[1] ?? ''));
  const err = await t.throwsAsync(DiskLog.open(work, opts));
  t.true(err instanceof RaftError && err.code === 'corrupt');
});

test('after a repair, new appends land right after the cut and the log reopens cleanly', async (t) => {
  const tpl = await makeTemplate(t);
  const victim = tpl.records.at(-4);
  if (victim === undefined) return t.fail('template too small');
  for (const damage of ['cut', 'flip'] as const) {
    for (const preallocate of [true, false]) {
      // 2 entries stay inside the repaired segment (stale bytes after them would be read back); 40 rotate.
      for (const appended of [2, 40]) {
        const ctx = `${damage}, preallocate=${preallocate}, ${appended} appended`;
        const work = await copyOf(t, tpl, 'append');
        const path = join(work, tpl.lastSegment);
        if (damage === 'cut') {
          await truncate(path, victim.offset + 5);
        } else {
          const bytes = Buffer.from(tpl.lastBytes);
          bytes.writeUInt8(bytes.readUInt8(victim.offset + 12) ^ 0x10, victim.offset + 12);
          await writeFile(path, bytes);
        }
        const first = await DiskLog.open(work, { ...opts, preallocate });
        t.not(first.repaired, null, ctx);
        const kept = first.state.entries.length;
        t.deepEqual(plain(first.state.entries), plain(tpl.written.slice(0, kept)), ctx);
        const more = entries(kept + 1, kept + appended, 9, 'new');
        for (let i = 0; i < more.length; i += 2) await first.log.save(hs(9, kept + i), more.slice(i, i + 2), true);
        await first.log.close();
        const again = await DiskLog.open(work, { ...opts, preallocate });
        t.is(again.repaired, null, `${ctx}: nothing to repair after appending`);
        t.deepEqual(plain(again.state.entries), plain([...tpl.written.slice(0, kept), ...more]), ctx);
        t.deepEqual(again.state.hardState, hs(9, kept + appended - 2), ctx);
        await again.log.close();
      }
    }
  }
});

test('a flipped byte in the preallocated zero tail is cut without losing any record', async (t) => {
  const tpl = await makeTemplate(t);
  t.true(tpl.lastBytes.length > tpl.validEnd, 'the last segment has a preallocated tail');
  const work = await copyOf(t, tpl, 'zerotail');
  const bytes = Buffer.from(tpl.lastBytes);
  bytes.writeUInt8(0x20, tpl.validEnd + 100);
  await writeFile(join(work, tpl.lastSegment), bytes);
  const { log, state, repaired } = await DiskLog.open(work, opts);
  await log.close();
  t.is(repaired?.offset, tpl.validEnd);
  t.deepEqual(plain(state.entries), plain(tpl.written));
});

test('a last segment whose header is torn is dropped and the previous segment takes the appends', async (t) => {
  const tpl = await makeTemplate(t);
  const work = await copyOf(t, tpl, 'header');
  await truncate(join(work, tpl.lastSegment), 7);
  const first = await DiskLog.open(work, opts);
  t.is(first.repaired?.offset, 0);
  const kept = first.state.entries.length;
  t.deepEqual(plain(first.state.entries), plain(tpl.written.slice(0, kept)));
  await first.log.save(hs(5, kept), entries(kept + 1, kept + 3, 5), true);
  await first.log.close();
  const again = await DiskLog.open(work, opts);
  t.is(again.repaired, null);
  t.deepEqual(plain(again.state.entries), plain([...tpl.written.slice(0, kept), ...entries(kept + 1, kept + 3, 5)]));
  await again.log.close();
});

test('half-created files from a crash during rotation or snapshotting (*.tmp) are ignored and removed', async (t) => {
  const tpl = await makeTemplate(t);
  const work = await copyOf(t, tpl, 'tmpfiles');
  await writeFile(join(work, 'wal-00000000000000ff-0000000000000099.log.tmp'), Buffer.from('garbage'));
  await writeFile(join(work, 'snap-0000000000000009-0000000000000099.snap.tmp'), Buffer.from('garbage'));
  const { log, state, repaired } = await DiskLog.open(work, opts);
  await log.close();
  t.is(repaired, null);
  t.deepEqual(plain(state.entries), plain(tpl.written));
  t.false((await readdir(work)).some((n) => n.endsWith('.tmp')));
});
