// `scripts/bench mesh`: the routing mesh against going straight at a task, side by side in one run. Two hosts and a
// client (network namespaces on one bridge, like the lab's), an OverlayDriver on each host, one HTTP task (a Node
// server) on host 1 attached to `ingress`, and the mesh serving its published port on both hosts. wrk measures, in
// alternating rounds:
//   direct: from a client task on host 2, straight at the task's overlay address (VXLAN, no NAT);
//   mesh:   from the client namespace to host 2's published port (host DNAT, ingress sandbox DNAT + SNAT, VXLAN);
//   mesh, local: the same through host 1, whose sandbox reaches the task on its own bridge.
// Then DNS from inside a task: the embedded DNS on the gateway bridge address of host 1, asked from a task's
// namespace through its gateway leg, one question at a time (latency) and 64 in flight (throughput).
// Needs root and wrk.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NetworkAttachment } from '@swarm/store';
import { silentLogger, writeDocBlock } from '@swarm/wire';
import { EmbeddedDns, inNetns, ipBatch, NetnsDir, OverlayDriver, systemTool } from '../src/index.js';
import { benchEndpoints, measureDns, type DnsResult } from './dns-load.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 32);
const DNS_QUERIES = Number(process.env['BENCH_DNS_QUERIES'] ?? 10000);
const DOC = process.env['BENCH_DOC'] ?? join(fileURLToPath(new URL('../../../../docs/benchmarks.md', import.meta.url)));
const UNDERLAY = ['10.252.89.1', '10.252.89.2', '10.252.89.3'] as const;
const PORT = 8080;
const TARGET = 7080;
const log = silentLogger();

function ingress(address: string): NetworkAttachment {
  return { networkId: 'benchingress', network: { name: 'ingress', vni: 4096, subnet: '10.93.0.0/24', gateway: '10.93.0.1', internal: false, encrypted: false, ingress: true }, addresses: [address], aliases: [], virtualIp: '' };
}

interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

/** wrk's duration text (`812.00us`, `1.20ms`, `2.01s`) in ms. */
function wrkMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (m === null) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

async function wrk(clientNs: string, url: string): Promise<WrkResult> {
  const res = await inNetns(log, clientNs, systemTool('wrk'), ['-t', '1', '-c', String(CONNECTIONS), '-d', `${SECONDS}s`, '--latency', url], { timeoutMs: (SECONDS + 30) * 1000 });
  const out = res.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const p50 = wrkMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? '');
  const p99 = wrkMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? '');
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)?.slice(1).reduce((s, x) => s + Number(x), 0) ?? 0;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  if (!Number.isFinite(rps)) throw new Error(`wrk said: ${out} ${res.stderr}`);
  return { rps, p50Ms: p50, p99Ms: p99, errors: errors + non2xx };
}

function httpServer(): void {
  createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok\n');
  }).listen(TARGET, '0.0.0.0', () => process.stdout.write('ready\n'));
}

/** The embedded DNS on `address` (in the namespace this process runs in), answering from a fixed table. */
async function dnsServer(address: string): Promise<void> {
  const endpoints = benchEndpoints();
  const dns = new EmbeddedDns({ view: () => [endpoints], logger: log, upstream: [] });
  await dns.start(address);
  process.stdout.write('ready\n');
}

/** From inside a task: the questions, as JSON on stdout. */
async function dnsClient(server: string): Promise<void> {
  process.stdout.write(JSON.stringify(await measureDns(server, 53, DNS_QUERIES)));
}

/** Runs this script in `mode` inside a namespace and waits for its "ready" line. */
async function helper(ns: string, mode: string, ...args: string[]): Promise<ChildProcess> {
  const child = spawn(systemTool('nsenter'), [`--net=${ns}`, process.execPath, fileURLToPath(import.meta.url), mode, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`${mode} exited with ${code}`)));
  });
  return child;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'swarm-bench-mesh-'));
  const hosts = new NetnsDir(join(root, 'hosts'), log);
  const drivers: OverlayDriver[] = [];
  const children: ChildProcess[] = [];
  try {
    const sw = await hosts.create('switch');
    const ns = [await hosts.create('h1'), await hosts.create('h2'), await hosts.create('client')];
    await ipBatch(log, sw, ['link set lo up', 'link add br0 type bridge', 'link set br0 up']);
    for (const [i, path] of ns.entries()) {
      await ipBatch(log, sw, [`link add p${i} type veth peer name eth0 netns ${path}`, `link set p${i} master br0`, `link set p${i} up`]);
      await ipBatch(log, path, ['link set lo up', `addr add ${UNDERLAY[i]}/24 dev eth0`, 'link set eth0 up']);
    }
    const [h1, h2, clientNs] = ns as [string, string, string];
    for (const [i, path] of [h1, h2].entries()) {
      const d = new OverlayDriver({ stateDir: join(root, `d${i}`), underlayAddr: UNDERLAY[i] ?? '', logger: log, hostNetns: path, ...(process.env['BENCH_NO_CIRCUIT'] === '1' ? { circuit: false as const } : {}) });
      await d.recover(new Set());
      drivers.push(d);
    }
    const [d1, d2] = drivers as [OverlayDriver, OverlayDriver];
    const mesh = { services: [{ name: 'web', ports: [{ protocol: 'tcp' as const, publishedPort: PORT, targetPort: TARGET }], strategy: 'round-robin' as const }] };
    await d1.setIngress({ attachment: ingress('10.93.0.2/24'), ...mesh });
    await d2.setIngress({ attachment: ingress('10.93.0.3/24'), ...mesh });
    const web = await d1.attach('benchweb01', [ingress('10.93.0.10/24')], { service: 'web', task: 'web.1.benchweb01' });
    const clientTask = await d2.attach('benchcli01', [ingress('10.93.0.11/24')], { service: 'cli', task: 'cli.1.benchcli01' });
    d1.setReady('benchweb01', true);
    const exchange = async (): Promise<void> => {
      await d1.setPeers('benchingress', d2.localEndpoints('benchingress').map((e) => ({ ...e, host: UNDERLAY[1] })));
      await d2.setPeers('benchingress', d1.localEndpoints('benchingress').map((e) => ({ ...e, host: UNDERLAY[0] })));
      await Promise.all([d1.lbSettled(), d2.lbSettled()]);
    };
    await exchange();
    children.push(await helper(web.netnsPath, 'http-server'));
    const direct: WrkResult[] = [];
    const meshed: WrkResult[] = [];
    const local: WrkResult[] = [];
    // A short warm-up of every path (ARP, conntrack, JIT), not measured.
    for (const [from, url] of [[clientTask.netnsPath, `http://10.93.0.10:${TARGET}/`], [clientNs, `http://${UNDERLAY[1]}:${PORT}/`], [clientNs, `http://${UNDERLAY[0]}:${PORT}/`]] as const) {
      await inNetns(log, from, systemTool('wrk'), ['-t', '1', '-c', '4', '-d', '1s', url], { timeoutMs: 30_000 });
    }
    for (let round = 0; round < ROUNDS; round++) {
      direct.push(await wrk(clientTask.netnsPath, `http://10.93.0.10:${TARGET}/`));
      meshed.push(await wrk(clientNs, `http://${UNDERLAY[1]}:${PORT}/`));
      local.push(await wrk(clientNs, `http://${UNDERLAY[0]}:${PORT}/`));
      process.stderr.write(`round ${round + 1}: direct ${direct[round]?.rps.toFixed(0)} req/s, mesh ${meshed[round]?.rps.toFixed(0)} req/s, mesh local ${local[round]?.rps.toFixed(0)} req/s\n`);
    }
    for (const c of children.splice(0)) c.kill('SIGKILL');
    // DNS from inside a task: the server on host 1's gateway bridge address, the client in the web task.
    children.push(await helper(h1, 'dns-server', '172.18.0.1'));
    const dnsRes = await inNetns(log, web.netnsPath, process.execPath, [fileURLToPath(import.meta.url), 'dns-client', '172.18.0.1'], { timeoutMs: 300_000 });
    const dns = JSON.parse(dnsRes.stdout) as DnsResult;

    const row = (name: string, rs: WrkResult[]): string =>
      `| ${name} | ${median(rs.map((r) => r.rps)).toFixed(0)} | ${rs.map((r) => r.rps.toFixed(0)).join(', ')} | ${median(rs.map((r) => r.p50Ms)).toFixed(2)} ms | ${median(rs.map((r) => r.p99Ms)).toFixed(2)} ms | ${rs.reduce((s, r) => s + r.errors, 0)} |`;
    const rpsRatio = median(meshed.map((r) => r.rps)) / median(direct.map((r) => r.rps));
    const p99Ratio = median(meshed.map((r) => r.p99Ms)) / median(direct.map((r) => r.p99Ms));
    const body = [
      `Command: \`scripts/bench mesh\` (BENCH_SECONDS=${SECONDS}, BENCH_ROUNDS=${ROUNDS}, BENCH_CONNECTIONS=${CONNECTIONS}, BENCH_DNS_QUERIES=${DNS_QUERIES}${process.env['BENCH_NO_CIRCUIT'] === '1' ? ', BENCH_NO_CIRCUIT=1' : ''}); ${new Date().toISOString().slice(0, 10)}, 1-minute load ${loadavg()[0]?.toFixed(2) ?? '?'} at the end.`,
      '',
      `Two hosts and a client (network namespaces on a bridge, like the lab), one HTTP task (a Node server answering \`ok\`) on host 1 on \`ingress\`, its port published through the mesh on both hosts. wrk (1 thread, ${CONNECTIONS} connections, keep-alive) in alternating rounds: *direct* from a task on host 2 straight at the task's overlay address (VXLAN, no NAT); *mesh* from outside to host 2's published port (host DNAT, ingress sandbox DNAT + SNAT, VXLAN to host 1); *mesh, local* through host 1 itself.`,
      '',
      '| path | requests/s (median) | rounds | p50 | p99 | errors |',
      '| --- | --- | --- | --- | --- | --- |',
      row('direct, task to task', direct),
      row('mesh, via the node without the task', meshed),
      row('mesh, via the node with the task', local),
      '',
      `Mesh / direct: **${(rpsRatio * 100).toFixed(0)}%** of the requests per second (goal: at least 90%), p99 latency ×${p99Ratio.toFixed(2)}.`,
      '',
      `Embedded DNS asked from inside a task (through its gateway leg to the bridge address, a table of 100 tasks in 10 services): ${DNS_QUERIES} questions one at a time p50 ${(dns.p50 * 1000).toFixed(0)} µs, p99 ${(dns.p99 * 1000).toFixed(0)} µs (goal: under 1 ms); with 64 in flight ${Math.round(dns.perSecond).toLocaleString('en-US')} answers/s.`,
    ].join('\n');
    process.stdout.write(body + '\n');
    if (DOC !== '-') writeDocBlock(DOC, { start: '<!-- bench:mesh:start -->', end: '<!-- bench:mesh:end -->' }, '## Routing mesh (`scripts/bench mesh`)', body);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    for (const d of drivers) await d.destroyAll().catch(() => undefined);
    for (const n of ['h1', 'h2', 'client', 'switch']) await hosts.remove(n).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
}

const mode = process.argv[2];
if (mode === 'http-server') httpServer();
else if (mode === 'dns-server') await dnsServer(process.argv[3] ?? '');
else if (mode === 'dns-client') await dnsClient(process.argv[3] ?? '');
else await main();
