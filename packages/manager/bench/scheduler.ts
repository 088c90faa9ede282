// `scripts/bench scheduler`: the manager's pipeline in one process on a store of 1,000 simulated nodes and 100,000
// tasks: how fast the scheduler plans placements, how fast the store commits them, and the memory it takes.

import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { encodeTransaction, Store, type NewObject, type Op } from '@swarm/store';
import { newNode, newService } from '@swarm/store/testing';
import { writeDocBlock } from '@swarm/wire';
import { allocate, orchestrate, schedule } from '../src/index.js';

const NODES = Number(process.env['BENCH_NODES'] ?? 1000);
const TASKS = Number(process.env['BENCH_TASKS'] ?? 100_000);
const SERVICES = Number(process.env['BENCH_SERVICES'] ?? 100);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const DOC = process.env['BENCH_DOC'] ?? 'docs/benchmarks.md';
const COMMIT_OPS = 5_000; // the reconcile loop's proposal size

interface Round {
  orchestrateMs: number;
  scheduleMs: number;
  placed: number;
  commitMs: number;
  heapMiB: number;
  rssMiB: number;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function commitAll(store: Store, next: () => number, ops: readonly Op[]): void {
  for (let i = 0; i < ops.length; i += COMMIT_OPS) {
    const r = store.apply(next(), encodeTransaction({ timestampMs: 1_000, ops: ops.slice(i, i + COMMIT_OPS) }));
    if (!r.ok) throw new Error(`commit failed: ${r.error.code}: ${r.error.message}`);
  }
}

/**
 * A cluster like a real one: nodes in 4 zones with a label, a tenth of them managers; services of equal size, a
 * quarter constrained to workers, a quarter to one zone, a quarter reserving memory, a quarter unconstrained.
 */
function world(): { store: Store; next: () => number } {
  const store = new Store();
  let index = 0;
  const next = (): number => ++index;
  const nodes: Op[] = [];
  for (let i = 0; i < NODES; i++) {
    const n = newNode(`node${String(i).padStart(5, '0')}`, `host-${i}`);
    n.spec.labels['zone'] = `z${i % 4}`;
    if (i % 10 === 0) n.spec.role = 'manager';
    nodes.push({ op: 'create', kind: 'node', object: n });
  }
  commitAll(store, next, nodes);
  const services: Op[] = [];
  const per = Math.ceil(TASKS / SERVICES);
  for (let i = 0; i < SERVICES; i++) {
    const s: NewObject<'service'> = newService(`svc${String(i).padStart(4, '0')}`, `service-${i}`, per);
    const kind = i % 4;
    if (kind === 1) s.spec.taskTemplate.placement.constraints = ['node.role==worker'];
    if (kind === 2) s.spec.taskTemplate.placement.constraints = [`node.labels.zone==z${i % 3}`];
    if (kind === 3) s.spec.taskTemplate.resources.reservations.memoryBytes = 16 * 2 ** 20;
    services.push({ op: 'create', kind: 'service', object: s });
  }
  commitAll(store, next, services);
  return { store, next };
}

function round(): Round {
  gc();
  const { store, next } = world();
  let ids = 0;
  let t0 = performance.now();
  const created = store.view((tx) => orchestrate(tx, 1_000, { newId: () => `task${String(++ids).padStart(8, '0')}` }));
  const orchestrateMs = performance.now() - t0;
  commitAll(store, next, created);
  commitAll(store, next, store.view((tx) => allocate(tx, 1_000)));
  gc();
  t0 = performance.now();
  const plan = store.view((tx) => schedule(tx, 1_000, { maxTasksPerPass: TASKS }));
  const scheduleMs = performance.now() - t0;
  const placed = plan.filter((o) => o.op === 'update' && o.kind === 'task' && o.object.status.state === 'assigned').length;
  t0 = performance.now();
  commitAll(store, next, plan);
  const commitMs = performance.now() - t0;
  const mem = process.memoryUsage();
  return { orchestrateMs, scheduleMs, placed, commitMs, heapMiB: mem.heapUsed / 2 ** 20, rssMiB: mem.rss / 2 ** 20 };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

function main(): void {
  const rounds: Round[] = [];
  for (let i = 1; i <= ROUNDS; i++) {
    const r = round();
    rounds.push(r);
    console.error(
      `round ${i}: ${fmt(r.placed)} placed; plan ${fmt(r.scheduleMs)} ms (${fmt((r.placed / r.scheduleMs) * 1000)}/s); commit ${fmt(r.commitMs)} ms; ` +
        `orchestrate ${fmt(r.orchestrateMs)} ms; heap ${fmt(r.heapMiB)} MiB, rss ${fmt(r.rssMiB)} MiB`,
    );
  }
  const placed = median(rounds.map((r) => r.placed));
  const planMs = median(rounds.map((r) => r.scheduleMs));
  const commitMs = median(rounds.map((r) => r.commitMs));
  const rate = (placed / planMs) * 1000;
  const endToEnd = (placed / (planMs + commitMs)) * 1000;
  const body = [
    `Run ${new Date().toISOString()} with \`scripts/bench scheduler\`; ${ROUNDS} rounds, medians; 1-minute load average ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]} at the end.`,
    '',
    `**Goal:** over 50,000 placements/s. Nomad placed 2 million containers on 6,100 hosts in 22 minutes, about 1,500 a second (its C2M challenge, with real hosts and real starts).`,
    '',
    `${fmt(NODES)} nodes (4 zones, a tenth managers), ${fmt(SERVICES)} services, ${fmt(TASKS)} pending tasks (a quarter constrained to workers, a quarter to one zone, a quarter reserving 16 MiB, a quarter free).`,
    '',
    '| measure | median |',
    '| --- | ---: |',
    `| tasks placed in one pass | ${fmt(placed)} |`,
    `| **scheduler plan** (filters, spread, all placements) | ${fmt(planMs)} ms: **${fmt(rate)} placements/s** |`,
    `| store commit of the plan (encode, apply, index; ${fmt(COMMIT_OPS)} ops a transaction) | ${fmt(commitMs)} ms |`,
    `| plan + commit | ${fmt(endToEnd)} placements/s |`,
    `| orchestrator: ${fmt(TASKS)} tasks made from their services | ${fmt(median(rounds.map((r) => r.orchestrateMs)))} ms |`,
    `| JS heap after the round / process RSS | ${fmt(median(rounds.map((r) => r.heapMiB)))} MiB / ${fmt(median(rounds.map((r) => r.rssMiB)))} MiB |`,
    '',
    `${rate >= 50_000 ? 'The scheduler meets the goal' : 'The scheduler misses the goal'}; the store's commit, not the scheduler, bounds the end-to-end rate (Raft replication, not measured here, adds to it).`,
    '',
    'Machine:',
    '',
    '```',
    `cpu: ${cpus()[0]?.model ?? 'unknown'} x ${cpus().length}`,
    `memory: ${Math.round(totalmem() / 2 ** 30)} GiB`,
    `node: ${process.version}`,
    `settings: BENCH_NODES=${NODES} BENCH_TASKS=${TASKS} BENCH_SERVICES=${SERVICES} BENCH_ROUNDS=${ROUNDS}`,
    '```',
  ].join('\n');
  console.log(body);
  if (DOC === '-') return;
  writeDocBlock(
    DOC,
    { start: '<!-- bench:scheduler:start -->', end: '<!-- bench:scheduler:end -->' },
    '## Scheduler: placements per second\n\n' +
      '`scripts/bench scheduler` runs the manager in one process, no Raft and no nodes: a store with 1,000 nodes and ' +
      '100 services of 1,000 replicas, the orchestrator makes the 100,000 tasks, the allocator moves them to PENDING, ' +
      'and the timed part is one scheduler pass over all of them (the plan), then the store applying the plan. ' +
      'Quick run: `BENCH_ROUNDS=1 BENCH_DOC=- scripts/bench scheduler`. The section between the markers is rewritten by every run.\n',
    body,
  );
  console.error(`wrote ${DOC}`);
}

main();
