// Shared helpers for the WAL tests: fresh temp dirs removed in teardown, and deterministic entries whose bytes
// identify them (so a recovered entry can be compared with exactly what was written).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { Entry, HardState, RaftLogger } from '../src/types.js';

export async function tempDir(t: ExecutionContext, tag: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `raft-wal-${tag}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Entry `index` of `term`, with 5..17 data bytes that spell out who it is. */
export function entry(index: number, term: number, salt = ''): Entry {
  const text = `${salt}e${index}t${term}-`.repeat(4).slice(0, 5 + (index % 13));
  return { index, term, type: index % 7 === 0 ? 'conf-change' : 'normal', data: new Uint8Array(Buffer.from(text)) };
}

export function entries(from: number, to: number, term: number, salt = ''): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term, salt));
  return out;
}

export function hs(term: number, commit: number, vote: string | null = 'n1'): HardState {
  return { term, vote, commit };
}

/** One compact string per entry, so deepEqual compares values (not Buffer vs Uint8Array) and diffs stay short. */
export function plain(es: readonly Entry[]): string[] {
  return es.map((e) => `${e.index}/${e.term}/${e.type}/${Buffer.from(e.data).toString('hex')}`);
}

export class RecordingLogger implements RaftLogger {
  readonly warnings: { obj: object; msg: string | undefined }[] = [];
  debug(): void {}
  info(): void {}
  warn(obj: object, msg?: string): void {
    this.warnings.push({ obj, msg });
  }
  error(obj: object, msg?: string): void {
    this.warnings.push({ obj, msg });
  }
}
