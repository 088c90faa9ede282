// The runc runtime's log reader over conmon's CRI "k8s-file" lines: partial (P) pieces joined per stream,
// tail, follow until the container has ended, and following on after conmon starts the file afresh.

import test from 'ava';
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { getEventListeners } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollUntil } from '@swarm/wire';
import { CriLogParser, type LogLine } from '../src/index.js';
import { readCriLog } from '../src/cri-log.js';

const dir = mkdtempSync(join(tmpdir(), 'swarm-crilog-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const file = (): string => join(dir, `c${++seq}.log`);

const T0 = '2026-11-25T03:30:51.558340778+00:00';
const T1 = '2026-11-25T03:30:52.000000001+00:00';
const ms = (t: string): number => Date.parse(t);

async function all(it: AsyncIterable<LogLine>): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for await (const l of it) out.push(l);
  return out;
}

test('parser: full lines, partial pieces joined per stream with the time of the piece that ends them', (t) => {
  const p = new CriLogParser();
  t.deepEqual(p.line(`${T0} stdout F hello world`), { stream: 'stdout', timestampMs: ms(T0), line: 'hello world' });
  t.is(p.line(`${T0} stdout P abc`), null);
  // stderr in between does not break stdout's line.
  t.deepEqual(p.line(`${T0} stderr F oops`), { stream: 'stderr', timestampMs: ms(T0), line: 'oops' });
  t.is(p.line(`${T0} stdout P def`), null);
  t.deepEqual(p.line(`${T1} stdout F ghi`), { stream: 'stdout', timestampMs: ms(T1), line: 'abcdefghi' });
  // An empty line is `F` with no text after the tag's space (or without it).
  t.deepEqual(p.line(`${T0} stdout F `), { stream: 'stdout', timestampMs: ms(T0), line: '' });
  t.deepEqual(p.line(`${T0} stdout F`), { stream: 'stdout', timestampMs: ms(T0), line: '' });
  // Text keeps its own spaces.
  t.deepEqual(p.line(`${T0} stdout F  two  spaces `)?.line, ' two  spaces ');
  t.is(p.line('not a log line'), null);
  t.is(p.line(`${T0} stdin F x`), null);
  t.is(p.line(`${T0} stderr P last words`), null);
  t.deepEqual(p.flush(), [{ stream: 'stderr', timestampMs: ms(T0), line: 'last words' }]);
  t.deepEqual(p.flush(), []);
});

test('read: every line in order, or the last `tail`; an unfinished last line is shown as it is', async (t) => {
  const f = file();
  writeFileSync(f, [`${T0} stdout F one`, `${T0} stderr F two`, `${T0} stdout P thr`, `${T0} stdout F ee`, `${T0} stdout P fo`, ''].join('\n'));
  t.deepEqual((await all(readCriLog(f, {}, () => true))).map((l) => `${l.stream}:${l.line}`), ['stdout:one', 'stderr:two', 'stdout:three', 'stdout:fo']);
  t.deepEqual((await all(readCriLog(f, { tail: 2 }, () => true))).map((l) => l.line), ['three', 'fo']);
  t.deepEqual(await all(readCriLog(f, { tail: 0 }, () => true)), []);
  t.deepEqual(await all(readCriLog(join(dir, 'absent.log'), {}, () => true)), []);
});

test('follow: new lines as they come, a line split over writes joined, the end once the container has ended', async (t) => {
  const f = file();
  writeFileSync(f, `${T0} stdout F first\n`);
  let ended = false;
  const seen: string[] = [];
  const done = (async () => {
    for await (const l of readCriLog(f, { follow: true }, () => ended)) seen.push(l.line);
  })();
  await pollUntil('the first line', () => (seen.length === 1 ? true : undefined), { deadlineMs: 5_000, intervalMs: 10 });
  // A line conmon has not finished writing (no newline yet) waits for its end.
  appendFileSync(f, `${T0} stdout P sec`);
  appendFileSync(f, `ond-\n${T0} stdout F more\n${T0} stdout F third\n`);
  await pollUntil('the joined line', () => (seen.length === 3 ? true : undefined), { deadlineMs: 5_000, intervalMs: 10 });
  appendFileSync(f, `${T0} stdout P no newline at the end\n`);
  ended = true;
  await done;
  t.deepEqual(seen, ['first', 'second-more', 'third', 'no newline at the end']);
});

test('follow: ends at once when aborted, with the container still running', async (t) => {
  const f = file();
  writeFileSync(f, `${T0} stdout F x\n`);
  const ac = new AbortController();
  const seen: string[] = [];
  const done = (async () => {
    for await (const l of readCriLog(f, { follow: true, signal: ac.signal }, () => false)) seen.push(l.line);
  })();
  await pollUntil('the line', () => (seen.length === 1 ? true : undefined), { deadlineMs: 5_000, intervalMs: 10 });
  ac.abort();
  await done;
  t.deepEqual(seen, ['x']);
});

test('follow: a file started afresh (conmon at its size bound) is read again from its start', async (t) => {
  const f = file();
  writeFileSync(f, `${T0} stdout F a-rather-long-first-line-so-the-new-file-is-shorter\n`);
  let ended = false;
  const seen: string[] = [];
  const done = (async () => {
    for await (const l of readCriLog(f, { follow: true }, () => ended)) seen.push(l.line);
  })();
  await pollUntil('the first line', () => (seen.length === 1 ? true : undefined), { deadlineMs: 5_000, intervalMs: 10 });
  writeFileSync(f, `${T1} stdout F b\n`);
  await pollUntil('the line of the new file', () => (seen.length === 2 ? true : undefined), { deadlineMs: 5_000, intervalMs: 10 });
  ended = true;
  await done;
  t.deepEqual(seen, ['a-rather-long-first-line-so-the-new-file-is-shorter', 'b']);
});

test('follow: when conmon renames a new file over the old one, the rest of the old file is read first, then the new one from its start', async (t) => {
  const f = file();
  const line = (n: number): string => `${T0} stdout F line-${n}\n`;
  writeFileSync(f, line(1));
  let ended = false;
  const seen: string[] = [];
  const done = (async () => {
    for await (const l of readCriLog(f, { follow: true }, () => ended)) seen.push(l.line);
  })();
  await pollUntil('the first line', () => (seen.length === 1 ? true : undefined), { deadlineMs: 5_000, intervalMs: 10 });
  // Between two reads: the old file gets one more line, then a new file, already longer than the old one, takes its place.
  appendFileSync(f, line(2));
  writeFileSync(`${f}.tmp`, [3, 4, 5, 6, 7].map(line).join(''));
  renameSync(`${f}.tmp`, f);
  await pollUntil('the new file\'s lines', () => (seen.length === 7 ? true : undefined), { deadlineMs: 5_000, intervalMs: 10 });
  // And once more, to a shorter file.
  appendFileSync(f, line(8));
  writeFileSync(`${f}.tmp`, line(9));
  renameSync(`${f}.tmp`, f);
  await pollUntil('the third file\'s line', () => (seen.length === 9 ? true : undefined), { deadlineMs: 5_000, intervalMs: 10 });
  ended = true;
  await done;
  t.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => `line-${n}`));
});

test('follow: a long follow leaves no listeners piling up on its abort signal', async (t) => {
  const f = file();
  writeFileSync(f, `${T0} stdout F x\n`);
  const ac = new AbortController();
  let polls = 0;
  const done = (async () => {
    for await (const _ of readCriLog(f, { follow: true, signal: ac.signal }, () => (++polls, false))) void _;
  })();
  await pollUntil('a dozen polls', () => (polls >= 12 ? true : undefined), { deadlineMs: 10_000, intervalMs: 20 });
  t.true(getEventListeners(ac.signal, 'abort').length <= 1);
  ac.abort();
  await done;
});
