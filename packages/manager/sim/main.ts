// Command line for the manager simulator: runs every seed of a range (over worker threads with --jobs), prints one
// line per failing seed and a summary, and exits 1 when any seed broke an invariant. --verbose prints transcripts.

import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { KNOWN_BUG_SKIPS, KNOWN_BUGS } from './known-bugs.js';
import { DEFAULT_NODES, DEFAULT_STEPS, FAULT_KINDS, isFaultKind, runSimulation, type FaultKind, type SimViolation } from './simulation.js';

interface CliOptions {
  from: number;
  to: number;
  steps: number;
  nodes: number;
  jobs: number;
  verbose: boolean;
  skip: FaultKind[];
}

class UsageError extends Error {}

const USAGE = `usage: node packages/manager/dist/sim/main.js --seeds FROM..TO [--steps N] [--nodes N] [--jobs N] [--skip KIND,...] [--skip-known-bugs] [--verbose]
  --seeds FROM..TO  inclusive seed range, or one seed
  --steps N         steps with faults before the calm phase (default ${DEFAULT_STEPS})
  --nodes N         nodes the cluster starts with (default ${DEFAULT_NODES})
  --jobs N          worker threads (default 1)
  --skip KIND,...   fault kinds to leave out (to look past a known bug): ${FAULT_KINDS.join(', ')}
  --skip-known-bugs also skip the kinds that trigger the known, unfixed bugs (sim/known-bugs.ts): ${KNOWN_BUGS.map((b) => b.id).join(', ')}
  --verbose         print each seed's transcript (use with one seed)`;

/** Failure lines stay one line; --verbose prints the whole description. */
const MAX_DETAIL_CHARS = 400;

function parseCount(name: string, value: string | undefined, min: number): number {
  if (value === undefined || !/^\d+$/.test(value)) throw new UsageError(`${name} needs a non-negative integer, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, got ${value}`);
  return n;
}

export function parseArgs(argv: readonly string[]): CliOptions {
  const o: CliOptions = { from: 0, to: -1, steps: DEFAULT_STEPS, nodes: DEFAULT_NODES, jobs: 1, verbose: false, skip: [] };
  let seeds = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    switch (arg) {
      case '--seeds': {
        const v = argv[++i] ?? '';
        const m = /^(\d+)(?:\.\.(\d+))?$/.exec(v);
        if (m === null) throw new UsageError(`--seeds wants FROM..TO or one seed, got ${JSON.stringify(v)}`);
        o.from = parseCount('--seeds', m[1], 0);
        o.to = m[2] === undefined ? o.from : parseCount('--seeds', m[2], 0);
        if (o.to < o.from) throw new UsageError(`--seeds ${v}: TO is below FROM`);
        seeds = true;
        break;
      }
      case '--steps':
        o.steps = parseCount('--steps', argv[++i], 0);
        break;
      case '--nodes':
        o.nodes = parseCount('--nodes', argv[++i], 1);
        break;
      case '--jobs':
        o.jobs = parseCount('--jobs', argv[++i], 1);
        if (o.jobs > 4 * availableParallelism()) throw new UsageError(`--jobs must be at most ${4 * availableParallelism()}`);
        break;
      case '--skip':
        for (const kind of (argv[++i] ?? '').split(',').filter((k) => k !== '')) {
          if (!isFaultKind(kind)) throw new UsageError(`--skip: unknown fault kind ${JSON.stringify(kind)} (one of ${FAULT_KINDS.join(', ')})`);
          o.skip.push(kind);
        }
        break;
      case '--skip-known-bugs':
        for (const kind of KNOWN_BUG_SKIPS) if (!o.skip.includes(kind)) o.skip.push(kind);
        break;
      case '--verbose':
        o.verbose = true;
        break;
      default:
        throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  if (!seeds) throw new UsageError('--seeds is required');
  return o;
}

type WorkerRequest = { from: number; to: number } | null;
interface WorkerReply {
  done: number;
  failures: SimViolation[];
}

function runRange(from: number, to: number, o: CliOptions, out: ((line: string) => void) | null): WorkerReply {
  const failures: SimViolation[] = [];
  for (let seed = from; seed <= to; seed++) {
    const trace = o.verbose && out !== null ? out : null;
    const r = runSimulation({ seed, steps: o.steps, nodes: o.nodes, skip: new Set(o.skip), trace });
    if (trace !== null) trace(`seed ${seed}: ${r.ok ? 'ok' : 'VIOLATION'} after ${r.steps} steps (${(r.simulatedMs / 1000).toFixed(1)} s simulated) ${JSON.stringify(r.stats)}`);
    if (r.violation !== null) failures.push(r.violation);
  }
  return { done: to - from + 1, failures };
}

function report(o: CliOptions, done: number, failures: readonly SimViolation[], startedMs: number): number {
  const sorted = [...failures].sort((a, b) => a.seed - b.seed);
  const skip = o.skip.length > 0 ? ` --skip ${o.skip.join(',')}` : '';
  for (const f of sorted) {
    const detail = o.verbose || f.detail.length <= MAX_DETAIL_CHARS ? f.detail : `${f.detail.slice(0, MAX_DETAIL_CHARS)}...`;
    process.stdout.write(`seed ${f.seed} step ${f.step}: ${f.invariant}: ${detail}\n`);
  }
  if (sorted.length > 0) {
    const first = (sorted[0] as SimViolation).seed;
    process.stdout.write(`replay: node packages/manager/dist/sim/main.js --seeds ${first} --steps ${o.steps} --nodes ${o.nodes}${skip} --verbose\n`);
  }
  const seconds = ((performance.now() - startedMs) / 1000).toFixed(1);
  process.stdout.write(`manager sim: ${done} seeds (${o.from}..${o.to}), ${sorted.length} failed, ${seconds} s with ${o.jobs} job(s)\n`);
  return sorted.length === 0 ? 0 : 1;
}

async function runParallel(o: CliOptions, startedMs: number): Promise<number> {
  const total = o.to - o.from + 1;
  const chunk = Math.max(1, Math.min(20, Math.ceil(total / (o.jobs * 8))));
  let next = o.from;
  let done = 0;
  const failures: SimViolation[] = [];
  const workers: Array<Promise<void>> = [];
  for (let j = 0; j < Math.min(o.jobs, total); j++) {
    workers.push(
      new Promise<void>((resolve, reject) => {
        const w = new Worker(new URL(import.meta.url), { workerData: o });
        const feed = (): void => {
          if (next > o.to) {
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
          failures.push(...reply.failures);
          feed();
        });
        w.on('error', reject);
        w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sim worker exited with ${code}`))));
        feed();
      }),
    );
  }
  await Promise.all(workers);
  return report(o, done, failures, startedMs);
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
    port.postMessage(runRange(req.from, req.to, o, null) satisfies WorkerReply);
  });
}

async function main(): Promise<number> {
  // `sim ... | head` closes stdout early: stop quietly instead of crashing on EPIPE.
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
  const startedMs = performance.now();
  if (o.jobs > 1 && !o.verbose) return runParallel(o, startedMs);
  const r = runRange(o.from, o.to, o, (line) => process.stdout.write(`${line}\n`));
  return report(o, r.done, r.failures, startedMs);
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
