// What the lab benchmarks share: where the CLI is, progress lines, small statistics, polling, the cleanup that
// removes a lab on every exit path (signals included), the daemon command line, and the doc block writer.

import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { registryDaemonFlags, type HostInfo } from '../src/index.js';

export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url)).replace(/\/$/, '');
// dist/bench/ -> packages/lab -> packages/cli
export const SWARM_BIN = fileURLToPath(new URL('../../../cli/bin/swarm.js', import.meta.url));
export const SWARM_MAIN = fileURLToPath(new URL('../../../cli/dist/src/main.js', import.meta.url));

export function say(text: string): void {
  process.stderr.write(`\u001b[1m${text}\u001b[0m\n`);
}

export const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const load1 = (): number => Math.round((loadavg()[0] ?? 0) * 100) / 100;

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? null) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

export const max = (xs: readonly number[]): number | null => (xs.length === 0 ? null : Math.max(...xs));
export const ms = (x: number | null): string => (x === null ? 'n/a' : String(Math.round(x)));

export function intEnv(name: string, dflt: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  if (!/^\d+$/.test(raw) || Number(raw) < min) throw new Error(`${name}=${raw}: expected a whole number >= ${min}`);
  return Number(raw);
}

/** Polls `check` until it returns a value; errors count as "not yet" (a daemon restarting, a slow answer). */
export async function waitFor<T>(what: string, deadlineMs: number, check: () => Promise<T | undefined>, intervalMs = 200): Promise<T> {
  const end = Date.now() + deadlineMs;
  let why = 'not checked yet';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
      why = 'condition not met';
    } catch (e) {
      why = errText(e);
    }
    if (Date.now() > end) throw new Error(`${what}: not after ${deadlineMs} ms (${why})`);
    await sleep(intervalMs);
  }
}

// ---- cleanup: what a benchmark made goes away on every exit path ---------------------------------

type Cleanup = { what: string; fn: () => Promise<void> | void };
const cleanups: Cleanup[] = [];
let cleaning: Promise<void> | null = null;

/** Registers an undo step (run last-in first-out); returns a function that drops it again. */
export function onCleanup(what: string, fn: () => Promise<void> | void): () => void {
  const entry = { what, fn };
  cleanups.push(entry);
  return () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (let c = cleanups.pop(); c !== undefined; c = cleanups.pop()) {
      try {
        await c.fn();
      } catch (e) {
        say(`cleanup: ${c.what} failed: ${errText(e)}`);
      }
    }
  })();
  return cleaning;
}

/** SIGINT, SIGTERM and SIGHUP run the cleanup, then exit with the signal's status. */
export function cleanupOnSignals(what: string): void {
  for (const [sig, num] of [
    ['SIGINT', 2],
    ['SIGTERM', 15],
    ['SIGHUP', 1],
  ] as const) {
    process.on(sig, () => {
      say(`${sig}: ${what}`);
      void cleanup().finally(() => process.exit(128 + num));
    });
  }
}

/** The lab's daemons log at info: every gossip state change ("membership change") is a timed line. */
/** A host's daemon; with the lab registry as its Docker Hub mirror when the lab has one (images by short name). */
export function daemonCommand(h: HostInfo): { argv: string[]; env: Record<string, string> } {
  return { argv: [process.execPath, SWARM_BIN, 'daemon', '--data-dir', h.dataDir, '--hostname', h.name, ...registryDaemonFlags(h.registry)], env: { SWARM_LOG_LEVEL: 'info' } };
}

/** Replaces the block between `start` and `end` markers in the doc, or appends `intro` and the block. */
export { writeDocBlock } from '@swarm/wire';
