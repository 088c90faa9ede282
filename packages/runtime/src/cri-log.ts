// The container log conmon writes (the CRI "k8s-file" format): one line per chunk of output,
// `<RFC 3339 nano time> <stdout|stderr> <F|P> <text>`, P marking a partial line that the next one continues.
// conmon starts the file afresh at its size bound (--log-size-max), so a follower handles truncation.

import { open, stat } from 'node:fs/promises';
import type { LogLine, LogOptions } from './runtime.js';

/** A reader never buffers more than this of one file at once (conmon keeps the file below its bound). */
const MAX_READ_BYTES = 64 * 1024 * 1024;
const FOLLOW_POLL_MS = 100;

/** Parses complete lines of the file; partial (P) pieces are joined onto the line that ends them. */
export class CriLogParser {
  private partial = new Map<'stdout' | 'stderr', { text: string; timestampMs: number }>();

  /** Output that ended without a newline (the container's last words, or a reader that stops now). */
  flush(): LogLine[] {
    const out = [...this.partial].map(([stream, p]) => ({ stream, timestampMs: p.timestampMs, line: p.text }));
    this.partial.clear();
    return out;
  }

  /** One line of the file (without its newline); null when it only continues a line or is not a log line. */
  line(text: string): LogLine | null {
    const s1 = text.indexOf(' ');
    const s2 = s1 < 0 ? -1 : text.indexOf(' ', s1 + 1);
    const s3 = s2 < 0 ? -1 : text.indexOf(' ', s2 + 1);
    if (s3 < 0 && s2 < 0) return null;
    const stream = text.slice(s1 + 1, s2);
    if (stream !== 'stdout' && stream !== 'stderr') return null;
    const tag = s3 < 0 ? text.slice(s2 + 1) : text.slice(s2 + 1, s3);
    const body = s3 < 0 ? '' : text.slice(s3 + 1);
    const joined = (this.partial.get(stream)?.text ?? '') + body;
    const parsed = Date.parse(text.slice(0, s1));
    const timestampMs = Number.isNaN(parsed) ? 0 : parsed;
    if (tag.startsWith('P')) {
      this.partial.set(stream, { text: joined, timestampMs });
      return null;
    }
    this.partial.delete(stream);
    return { stream, timestampMs, line: joined };
  }
}

/** The file from `offset` to its end (bounded), and the offset after the last complete line read. */
async function readFrom(path: string, offset: number): Promise<{ text: string; next: number; size: number }> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', next: offset, size: 0 };
    throw err;
  }
  try {
    const { size } = await fh.stat();
    if (size <= offset) return { text: '', next: offset, size };
    const length = Math.min(size - offset, MAX_READ_BYTES);
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    const end = buf.lastIndexOf(0x0a, bytesRead - 1);
    if (end < 0) return { text: '', next: offset, size };
    return { text: buf.subarray(0, end).toString('utf8'), next: offset + end + 1, size };
  } finally {
    await fh.close();
  }
}

/**
 * A container's log lines: the last `tail` (all when absent), then with `follow` each new line until `ended()`
 * says the container is gone and the file is read to its end, or the signal aborts.
 */
export async function* readCriLog(path: string, opts: LogOptions, ended: () => boolean): AsyncGenerator<LogLine> {
  const parser = new CriLogParser();
  let { text, next } = await readFrom(path, 0);
  const first: LogLine[] = [];
  for (const t of text === '' ? [] : text.split('\n')) {
    const l = parser.line(t);
    if (l !== null) first.push(l);
  }
  // Not following: an unfinished last line is shown as it is (Docker shows it too).
  if (opts.follow !== true) first.push(...parser.flush());
  yield* opts.tail === undefined ? first : first.slice(Math.max(0, first.length - opts.tail));
  if (opts.follow !== true) return;
  for (;;) {
    if (opts.signal?.aborted === true) return;
    const wasEnded = ended();
    const size = await stat(path).then((s) => s.size, () => 0);
    // conmon began the file afresh at its size bound: read it from the start.
    if (size < next) next = 0;
    ({ text, next } = await readFrom(path, next));
    for (const t of text === '' ? [] : text.split('\n')) {
      const l = parser.line(t);
      if (l !== null) yield l;
    }
    if (wasEnded && text === '') {
      yield* parser.flush();
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, FOLLOW_POLL_MS);
      opts.signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  }
}
