// Turns the JSON lines scripts/bench collected into one comparison table (stdout) and rewrites the
// generated section of docs/benchmarks.md (between the bench:results markers), leaving the prose intact.
//
// usage: node bench-report.mjs RESULTS.jsonl DOC.md   (env: BENCH_COMMAND, BENCH_MACHINE, BENCH_ETCD_VERSION)
import { readFileSync, writeFileSync, existsSync } from 'node:fs';

const [, , resultsPath, docPath] = process.argv;
if (!resultsPath || !docPath) {
  process.stderr.write('usage: bench-report.mjs RESULTS.jsonl DOC.md\n');
  process.exit(2);
}
const rows = readFileSync(resultsPath, 'utf8')
  .split('\n')
  .filter((l) => l.trim().length > 0)
  .map((l) => JSON.parse(l));


const median = (xs) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const mean = (xs) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
const rounds = (system, c) => rows.filter((r) => r.kind === 'load' && r.system === system && r.concurrency === c);
/**
 * One level's result over its rounds: throughput = all ops / all measured seconds; latency percentiles = the
 * median of the rounds' percentiles; diagnostics = mean of the rounds.
 */
const load = (system, c) => {
  const rs = rounds(system, c);
  if (rs.length === 0) return undefined;
  const pick = (k) => rs.map((r) => r[k]).filter((x) => typeof x === 'number');
  const m = (k, digits) => (pick(k).length ? Number(mean(pick(k)).toFixed(digits)) : null);
  return {
    opsPerSec: rs.reduce((a, r) => a + r.ops, 0) / rs.reduce((a, r) => a + r.seconds, 0),
    perRound: rs.map((r) => r.opsPerSec),
    p50Ms: median(pick('p50Ms')),
    p99Ms: median(pick('p99Ms')),
    errors: rs.reduce((a, r) => a + (r.errors ?? 0), 0),
    leaderEntriesPerFsync: m('leaderEntriesPerFsync', 1),
    leaderDiskBusyPct: m('leaderDiskBusyPct', 0),
    leaderProposeToApplyMs: m('leaderProposeToApplyMs', 2),
    clientMeanMs: m('clientMeanMs', 2),
    clientCpuPct: m('clientCpuPct', 0),
    loadAvg1: m('loadAvg1', 1),
  };
};
const failovers = (system) => rows.filter((r) => r.kind === 'failover' && r.system === system).map((r) => r.ms);
const concurrencies = [...new Set(rows.filter((r) => r.kind === 'load').map((r) => r.concurrency))].sort((a, b) => a - b);

const fmt = (x, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? (a / b).toFixed(2) + 'x' : 'n/a');

const table = [['measure', 'raft-consensus-ts (kv-server)', 'etcd', 'ours / etcd']];
for (const c of concurrencies) {
  const ours = load('kv', c);
  const theirs = load('etcd', c);
  table.push([`writes/s, ${c} in flight`, fmt(ours?.opsPerSec), fmt(theirs?.opsPerSec), ratio(ours?.opsPerSec, theirs?.opsPerSec)]);
  table.push([`  writes/s per round`, ours?.perRound.join(' ') ?? 'n/a', theirs?.perRound.join(' ') ?? 'n/a', '']);
  table.push([`  p50 latency ms, ${c} in flight`, fmt(ours?.p50Ms, 2), fmt(theirs?.p50Ms, 2), ratio(ours?.p50Ms, theirs?.p50Ms)]);
  table.push([`  p99 latency ms, ${c} in flight`, fmt(ours?.p99Ms, 2), fmt(theirs?.p99Ms, 2), ratio(ours?.p99Ms, theirs?.p99Ms)]);
  const errs = (ours?.errors ?? 0) + (theirs?.errors ?? 0);
  if (errs > 0) table.push([`  errors, ${c} in flight`, String(ours?.errors ?? 'n/a'), String(theirs?.errors ?? 'n/a'), '']);
}
const fo = failovers('kv');
const foE = failovers('etcd');
table.push([`failover ms, median of ${fo.length} / ${foE.length}`, fmt(median(fo)), fmt(median(foE)), ratio(median(fo), median(foE))]);
table.push(['  failover ms, max', fmt(Math.max(...fo)), fmt(Math.max(...foE)), '']);

const widths = table[0].map((_, c) => Math.max(...table.map((r) => r[c].length)));
console.log(table.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n'));

const md = [
  `Run ${new Date().toISOString()} with \`${process.env.BENCH_COMMAND ?? 'scripts/bench raft'}\`.`,
  '',
  '| ' + table[0].join(' | ') + ' |',
  '| --- | ---: | ---: | ---: |',
  ...table.slice(1).map((r) => '| ' + r.map((c) => c.trim()).join(' | ') + ' |'),
  '',
  'Where the time goes (ours, measured on the leader; means over the rounds; load average = 1-minute load at the end of each run, mean):',
  '',
  '| in flight | entries per fsync | leader WAL busy % | propose -> applied, mean ms | client-observed mean ms | client CPU % | load avg (ours / etcd run) |',
  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...concurrencies.map((c) => {
    const o = load('kv', c) ?? {};
    const e = load('etcd', c) ?? {};
    const v = (x) => (x === undefined || x === null ? 'n/a' : String(x));
    return `| ${c} | ${v(o.leaderEntriesPerFsync)} | ${v(o.leaderDiskBusyPct)} | ${v(o.leaderProposeToApplyMs)} | ${v(o.clientMeanMs)} | ${v(o.clientCpuPct)} | ${v(o.loadAvg1)} / ${v(e.loadAvg1)} |`;
  }),
  '',
  `Failover trials (ms), ours: ${fo.map((x) => fmt(x)).join(', ') || 'none'}`,
  '',
  `Failover trials (ms), etcd: ${foE.map((x) => fmt(x)).join(', ') || 'none'}`,
  '',
  'Machine:',
  '',
  '```',
  (process.env.BENCH_MACHINE ?? 'unknown').trim(),
  '```',
].join('\n');

const START = '<!-- bench:results:start -->';
const END = '<!-- bench:results:end -->';
let doc = existsSync(docPath) ? readFileSync(docPath, 'utf8') : `# Benchmarks\n\n${START}\n${END}\n`;
if (!doc.includes(START) || !doc.includes(END)) doc += `\n${START}\n${END}\n`;
doc = doc.slice(0, doc.indexOf(START) + START.length) + '\n' + md + '\n' + doc.slice(doc.indexOf(END));
writeFileSync(docPath, doc);
