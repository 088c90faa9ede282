// The container log conmon writes (the CRI "k8s-file" format): one line per chunk of output,
// `<RFC 3339 nano time> <stdout|stderr> <F|P> <text>`, P marking a partial line that the next one continues.
// conmon starts a new file at its size bound (--log-size-max), so a follower moves on to it.

import { open, stat, type FileHandle } from 'node:fs/promises';
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

/**
 * One log path read on as conmon writes it. conmon starts afresh at its size bound by renaming a new file over
 * the old one, so the cursor keeps the old file open and reads it to its end before it moves to the new one:
 * only output that came and went between two reads (more than a whole file's worth) is lost.
 */
class LogCursor {
  private fh: FileHandle | null = null;
  private ino = -1;
  private offset = 0;

  constructor(private readonly path: string) {}

  /** The complete lines (without newlines) written since the last call. */
  async read(): Promise<string[]> {
    // Looked at before reading: once a new file is in place, conmon writes no more to the old one.
    const current = await stat(this.path).catch(() => null);
    if (this.fh === null) return current !== null && (await this.open()) ? this.drain() : [];
    const lines = await this.drain();
    if (current !== null && current.ino !== this.ino) {
      await this.close();
      if (await this.open()) lines.push(...(await this.drain()));
    }
    return lines;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }

  private async open(): Promise<boolean> {
    try {
      this.fh = await open(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    this.ino = (await this.fh.stat()).ino;
    this.offset = 0;
    return true;
  }

  /** From the offset to the last newline of the open file (bounded); a file cut short is read from its start. */
  private async drain(): Promise<string[]> {
    const fh = this.fh;
    if (fh === null) return [];
    const { size } = await fh.stat();
    if (size < this.offset) this.offset = 0;
    if (size === this.offset) return [];
    const length = Math.min(size - this.offset, MAX_READ_BYTES);
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, this.offset);
    const end = buf.lastIndexOf(0x0a, bytesRead - 1);
    if (end < 0) return [];
    this.offset += end + 1;
    return buf.subarray(0, end).toString('utf8').split('\n');
  }
}

/** Resolves after ms, or at once when the signal aborts; leaves no listener behind on the signal. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * A container's log lines: the last `tail` (all when absent), then with `follow` each new line until `ended()`
 * says the container is gone and the file is read to its end, or the signal aborts.
 */
export async function* readCriLog(path: string, opts: LogOptions, ended: () => boolean): AsyncGenerator<LogLine> {
  const parser = new CriLogParser();
  const cursor = new LogCursor(path);
  try {
    const first: LogLine[] = [];
    for (const t of await cursor.read()) {
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
      const text = await cursor.read();
      for (const t of text) {
        const l = parser.line(t);
        if (l !== null) yield l;
      }
      if (wasEnded && text.length === 0) {
        yield* parser.flush();
        return;
      }
      await pause(FOLLOW_POLL_MS, opts.signal);
    }
  } finally {
    await cursor.close();
  }
}
