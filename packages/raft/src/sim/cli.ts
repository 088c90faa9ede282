// Command line for the Raft simulator: runs a seed range (optionally over worker threads) and reports the
// first violating seed with how to replay it; `--verbose` prints the event transcript of each seed run.

import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { runSimulation, type SimResult } from './cluster.js';

interface CliOptions {
  from: number;
  to: number;
  verbose: boolean;
  traceMessages: boolean;
  jobs: number;
  keepGoing: boolean;
  chaosTicks: number | undefined;
}

class UsageError extends Error {}

const USAGE = `usage: sim --seeds FROM..TO [--jobs N] [--verbose] [--trace-messages] [--keep-going] [--chaos-ticks N]
  --seeds FROM..TO   inclusive seed range (or a single seed)
  --jobs N           worker threads (default 1)
  --verbose          print the event transcript of every seed (use with one seed)
  --trace-messages   with --verbose, also every message delivered or lost
  --keep-going       do not stop at the first violating seed
  --chaos-ticks N    override the number of faulty ticks per seed`;

function parseIntArg(name: string, v: string | undefined): number {
  if (v === undefined || !/^\d+$/.test(v)) throw new UsageError(`${name} needs a non-negative integer, got ${JSON.stringify(v)}`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new UsageError(`${name} is too large: ${v}`);
  return n;
}

export function parseArgs(argv: readonly string[]): CliOptions {
  const o: CliOptions = { from: 0, to: -1, verbose: false, traceMessages: false, jobs: 1, keepGoing: false, chaosTicks: undefined };
  let seeds = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--seeds': {
        const v = argv[++i] ?? '';
        const m = /^(\d+)(?:\.\.(\d+))?$/.exec(v);
        if (m === null) throw new UsageError(`--seeds wants FROM..TO, got ${JSON.stringify(v)}`);
        o.from = parseIntArg('--seeds', m[1]);
        o.to = m[2] === undefined ? o.from : parseIntArg('--seeds', m[2]);
        if (o.to < o.from) throw new UsageError(`--seeds ${v}: TO is below FROM`);
        seeds = true;
        break;
      }
      case '--jobs':
        o.jobs = parseIntArg('--jobs', argv[++i]);
        if (o.jobs < 1 || o.jobs > 4 * availableParallelism()) throw new UsageError(`--jobs must be 1..${4 * availableParallelism()}`);
        break;
      case '--verbose':
        o.verbose = true;
        break;
      case '--trace-messages':
        o.traceMessages = true;
        break;
      case '--keep-going':
        o.keepGoing = true;
        break;
      case '--chaos-ticks':
        o.chaosTicks = parseIntArg('--chaos-ticks', argv[++i]);
        break;
      default:
        throw new UsageError(`unknown argument ${JSON.stringify(a)}`);
    }
  }
  if (!seeds) throw new UsageError('--seeds is required');
  return o;
}

interface Failure {
  readonly seed: number;
  readonly property: string;
  readonly detail: string;
}

type WorkerRequest = { readonly from: number; readonly to: number } | null;
type WorkerReply = { readonly done: number; readonly failures: Failure[]; readonly stopped: boolean };

function runRange(from: number, to: number, o: CliOptions, stopAtFirst: boolean, out: (line: string) => void): { done: number; failures: Failure[] } {
  const failures: Failure[] = [];
  let done = 0;
  for (let seed = from; seed <= to; seed++) {
    const trace = o.verbose ? out : null;
    const r: SimResult = runSimulation({ seed, trace, traceMessages: o.traceMessages, chaosTicks: o.chaosTicks });
    done++;
    if (o.verbose) out(`seed ${seed}: ${r.ok ? 'ok' : 'VIOLATION'} ${r.summary}`);
    if (r.violation !== null) {
      failures.push({ seed, property: r.violation.property, detail: r.violation.detail });
      if (stopAtFirst) break;
    }
  }
  return { done, failures };
}

function report(o: CliOptions, done: number, failures: readonly Failure[], started: number): number {
  const sorted = [...failures].sort((a, b) => a.seed - b.seed);
  for (const f of sorted) {
    process.stdout.write(`seed ${f.seed}: ${f.property}: ${f.detail}\n`);
    process.stdout.write(`  replay: npm run sim -w raft-consensus-ts -- --seeds ${f.seed}..${f.seed} --verbose\n`);
  }
  process.stderr.write(`sim: ${done} seeds in ${((performance.now() - started) / 1000).toFixed(1)} s with ${o.jobs} job(s)\n`);
  process.stdout.write(`${done} seeds, ${sorted.length} violations\n`);
  return sorted.length === 0 ? 0 : 1;
}

async function runParallel(o: CliOptions, started: number): Promise<number> {
  const total = o.to - o.from + 1;
  const chunk = Math.max(1, Math.min(50, Math.ceil(total / (o.jobs * 8))));
  let next = o.from;
  let done = 0;
  const failures: Failure[] = [];
  let lowestFailure = Number.POSITIVE_INFINITY;
  const workers: Promise<void>[] = [];
  for (let j = 0; j < Math.min(o.jobs, total); j++) {
    workers.push(
      new Promise<void>((resolve, reject) => {
        const w = new Worker(new URL(import.meta.url), { workerData: o });
        const feed = (): void => {
          // Without --keep-going, seeds above a known failure are not started: the lowest failing seed is the answer.
          if (next > o.to || (!o.keepGoing && next > lowestFailure)) {
            w.postMessage(null satisfies WorkerRequest);
            return;
          }
          const from = next;
          const to = Math.min(o.to, from + chunk - 1);
          next = to + 1;
          w.postMessage({ from, to } satisfies WorkerRequest);
        };
        w.on('message', (reply: WorkerReply) => {
          done += reply.done;
          for (const f of reply.failures) {
            failures.push(f);
            lowestFailure = Math.min(lowestFailure, f.seed);
          }
          feed();
        });
        w.on('error', reject);
        w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sim worker exited with ${code}`))));
        feed();
      }),
    );
  }
  await Promise.all(workers);
  return report(o, done, failures, started);
}

function workerMain(): void {
  const o = workerData as CliOptions;
  const port = parentPort;
  if (port === null) throw new Error('sim worker without a parent port');
  port.on('message', (req: WorkerRequest) => {
    if (req === null) {
      port.close();
      return;
    }
    const r = runRange(req.from, req.to, o, !o.keepGoing, () => {});
    port.postMessage({ done: r.done, failures: r.failures, stopped: r.failures.length > 0 } satisfies WorkerReply);
  });
}

async function main(): Promise<number> {
  // `sim ... | head` closes our stdout early: stop quietly instead of crashing on EPIPE.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  let o: CliOptions;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`sim: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  const started = performance.now();
  if (o.jobs > 1 && !o.verbose) return runParallel(o, started);
  const r = runRange(o.from, o.to, o, !o.keepGoing, (line) => process.stdout.write(`${line}\n`));
  return report(o, r.done, r.failures, started);
}

if (isMainThread && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`sim: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 2;
    },
  );
} else if (!isMainThread) {
  workerMain();
}
