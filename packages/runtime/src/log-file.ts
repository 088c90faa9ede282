// A task's log on disk: JSON lines {stream, timestampMs, line}, rotated by size into one previous file, and the
// readers behind `logs` (tail over both files, follow through in-memory subscribers so no line is missed or doubled).

import { closeSync, existsSync, fstatSync, openSync, read, renameSync, rmSync, writeSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { assert, type LogLine } from './runtime.js';

/** A log file is rotated when the next write would pass this; one rotated file is kept, so 2x per task on disk. */
export const DEFAULT_MAX_LOG_FILE_BYTES = 10 * 1024 * 1024;
/** Docker splits longer lines at 16 KiB; so do we (the rest comes as the next line). */
export const MAX_LINE_CHARS = 16 * 1024;
/** Lines a follower may lag behind before the oldest are dropped (a reader that stopped reading). */
export const MAX_FOLLOW_BUFFER_LINES = 10_000;

export function rotatedPath(path: string): string {
  return `${path}.1`;
}

export function removeLogFiles(path: string): void {
  rmSync(path, { force: true });
  rmSync(rotatedPath(path), { force: true });
}

/** What a follower receives: lines as they are written, then the end of the output. */
export interface LogSubscriber {
  line(l: LogLine): void;
  end(): void;
}

/** Files as they were when a reader subscribed: read these up to these sizes, then the subscriber has the rest. */
export interface LogSnapshot {
  files: Array<{ fd: number; sizeBytes: number }>;
}

/**
 * Appends with synchronous writes: a line is in the file when write() returns, which is what lets a follower take
 * "file up to here, then the subscription" without a race. Output chunks are small, so the event loop barely waits.
 */
export class LogWriter {
  private fd: number;
  private sizeBytes: number;
  private readonly subscribers = new Set<LogSubscriber>();
  private ended = false;

  constructor(
    readonly path: string,
    private readonly maxFileBytes: number,
  ) {
    assert(maxFileBytes >= 1024, `maxFileBytes ${maxFileBytes} too small`);
    this.fd = openSync(path, 'a');
    this.sizeBytes = fstatSync(this.fd).size;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  write(lines: readonly LogLine[]): void {
    if (this.ended || lines.length === 0) return;
    // Rotate between lines, so a file only passes the bound when one line alone does.
    let chunk: Buffer[] = [];
    let chunkBytes = 0;
    for (const l of lines) {
      const b = Buffer.from(`${JSON.stringify(l)}\n`, 'utf8');
      if (this.sizeBytes + chunkBytes > 0 && this.sizeBytes + chunkBytes + b.length > this.maxFileBytes) {
        this.append(chunk, chunkBytes);
        chunk = [];
        chunkBytes = 0;
        this.rotate();
      }
      chunk.push(b);
      chunkBytes += b.length;
    }
    this.append(chunk, chunkBytes);
    for (const s of this.subscribers) for (const l of lines) s.line(l);
  }

  private append(chunk: Buffer[], bytes: number): void {
    if (bytes === 0) return;
    writeSync(this.fd, Buffer.concat(chunk, bytes));
    this.sizeBytes += bytes;
  }

  /** The output has ended (or the container is removed): followers finish, the file is closed. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    closeSync(this.fd);
    for (const s of this.subscribers) s.end();
    this.subscribers.clear();
  }

  /** Opens the current files (fds keep them readable across a rotation) and registers the follower, atomically. */
  subscribe(s: LogSubscriber): { snapshot: LogSnapshot; unsubscribe: () => void } {
    assert(!this.ended, 'subscribe after end');
    const snapshot = snapshotFiles(this.path);
    this.subscribers.add(s);
    return { snapshot, unsubscribe: () => this.subscribers.delete(s) };
  }

  private rotate(): void {
    closeSync(this.fd);
    renameSync(this.path, rotatedPath(this.path));
    this.fd = openSync(this.path, 'a');
    this.sizeBytes = 0;
  }
}

/** Opens the rotated file (if any) and the current one, in that order. The caller closes the fds. */
export function snapshotFiles(path: string): LogSnapshot {
  const files: LogSnapshot['files'] = [];
  for (const p of [rotatedPath(path), path]) {
    if (!existsSync(p)) continue;
    const fd = openSync(p, 'r');
    files.push({ fd, sizeBytes: fstatSync(fd).size });
  }
  return { files };
}

function readRange(fd: number, sizeBytes: number): Promise<Buffer> {
  const buf = Buffer.alloc(sizeBytes);
  return new Promise((resolve, reject) => {
    const step = (offset: number): void => {
      if (offset >= sizeBytes) return resolve(buf);
      read(fd, buf, offset, sizeBytes - offset, offset, (err, n) => {
        if (err !== null) return reject(err);
        if (n === 0) return resolve(buf.subarray(0, offset)); // truncated underneath us
        step(offset + n);
      });
    };
    step(0);
  });
}

function parseLine(text: string): LogLine | null {
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null) return null;
    const r = v as Record<string, unknown>;
    const stream = r['stream'];
    if ((stream !== 'stdout' && stream !== 'stderr') || typeof r['timestampMs'] !== 'number' || typeof r['line'] !== 'string') return null;
    return { stream, timestampMs: r['timestampMs'], line: r['line'] };
  } catch {
    return null; // a line cut by a crash mid-write: skip it
  }
}

/** The lines of a snapshot, oldest first, only the last `tail` if given; closes the snapshot's fds. */
export async function readSnapshot(snapshot: LogSnapshot, tail: number | undefined): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  try {
    for (const f of snapshot.files) {
      const buf = await readRange(f.fd, f.sizeBytes);
      for (const text of buf.toString('utf8').split('\n')) {
        if (text === '') continue;
        const l = parseLine(text);
        if (l !== null) lines.push(l);
      }
    }
  } finally {
    for (const f of snapshot.files) closeSync(f.fd);
  }
  return tail === undefined ? lines : tail <= 0 ? [] : lines.slice(-tail);
}

/** Turns one output pipe's chunks into lines (utf-8 safe across chunk borders, long lines split). */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';

  constructor(
    private readonly stream: LogLine['stream'],
    private readonly nowMs: () => number,
    private readonly emit: (lines: LogLine[]) => void,
  ) {}

  push(chunk: Buffer): void {
    this.take(this.decoder.write(chunk), false);
  }

  /** End of the pipe: what is left becomes a last line. */
  flush(): void {
    this.take(this.decoder.end(), true);
  }

  private take(text: string, final: boolean): void {
    const all = this.partial + text;
    const parts = all.split('\n');
    this.partial = parts.pop() ?? '';
    if (final && this.partial !== '') {
      parts.push(this.partial);
      this.partial = '';
    }
    while (this.partial.length > MAX_LINE_CHARS) {
      parts.push(this.partial.slice(0, MAX_LINE_CHARS));
      this.partial = this.partial.slice(MAX_LINE_CHARS);
    }
    if (parts.length === 0) return;
    const timestampMs = this.nowMs();
    const lines: LogLine[] = [];
    for (const p of parts) {
      for (let i = 0; i < p.length || i === 0; i += MAX_LINE_CHARS) {
        lines.push({ stream: this.stream, timestampMs, line: p.slice(i, i + MAX_LINE_CHARS) });
      }
    }
    this.emit(lines);
  }
}

/**
 * Reads a live log: first what the files held when it subscribed (only the last `tail`), then each new line until
 * the output ends or the signal aborts. A follower that falls MAX_FOLLOW_BUFFER_LINES behind loses the oldest lines.
 */
export async function* followLog(writer: LogWriter, tail: number | undefined, signal: AbortSignal | undefined): AsyncGenerator<LogLine> {
  const queue: LogLine[] = [];
  let ended = false;
  let wake: (() => void) | null = null;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const { snapshot, unsubscribe } = writer.subscribe({
    line: (l) => {
      if (queue.length >= MAX_FOLLOW_BUFFER_LINES) queue.shift();
      queue.push(l);
      notify();
    },
    end: () => {
      ended = true;
      notify();
    },
  });
  const onAbort = (): void => notify();
  signal?.addEventListener('abort', onAbort);
  try {
    for (const l of await readSnapshot(snapshot, tail)) {
      if (signal?.aborted === true) return;
      yield l;
    }
    for (;;) {
      if (signal?.aborted === true) return;
      const l = queue.shift();
      if (l !== undefined) {
        yield l;
        continue;
      }
      if (ended) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    unsubscribe();
  }
}
