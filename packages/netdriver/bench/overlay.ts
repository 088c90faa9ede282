// `scripts/bench overlay`: the overlay data plane against the underlay it rides on, side by side in one run. Two
// hosts (network namespaces on a bridge, like the lab's), each with its own OverlayDriver; a task namespace on each
// host on one overlay network. iperf3 TCP throughput and TCP request/response latency task-to-task over VXLAN vs
// host-to-host over the underlay, in alternating rounds; then the time to attach one more task to a network that
// is already there (and to make the network's namespace for its first task). Needs root and iperf3.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, connect } from 'node:net';
import type { NetworkAttachment } from '@swarm/store';
import { silentLogger, writeDocBlock } from '@swarm/wire';
import { EmbeddedDns, inNetns, ipBatch, NetnsDir, OverlayDriver, systemTool } from '../src/index.js';
import { benchEndpoints, measureDns, quantile, type DnsResult } from './dns-load.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const ATTACHES = Number(process.env['BENCH_ATTACHES'] ?? 50);
const PINGS = Number(process.env['BENCH_PINGS'] ?? 2000);
const DNS_QUERIES = Number(process.env['BENCH_DNS_QUERIES'] ?? 20000);
const DOC = process.env['BENCH_DOC'] ?? join(fileURLToPath(new URL('../../../../docs/benchmarks.md', import.meta.url)));
const UNDERLAY = ['10.252.88.1', '10.252.88.2'] as const;
const log = silentLogger();

function attachment(address: string): NetworkAttachment {
  return { networkId: 'benchnet', network: { name: 'bench', vni: 6001, subnet: '10.91.0.0/16', gateway: '10.91.0.1', internal: false, encrypted: false, ingress: false }, addresses: [address], aliases: [], virtualIp: '' };
}

async function iperf(clientNs: string, serverIp: string): Promise<number> {
  const res = await inNetns(log, clientNs, 'iperf3', ['-c', serverIp, '-t', String(SECONDS), '-J'], { timeoutMs: (SECONDS + 20) * 1000 });
  const out = JSON.parse(res.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return out.end.sum_received.bits_per_second;
}

/** TCP request/response round trips from a node process in one namespace to an echo server in another (ms). */
async function rtt(clientNs: string, serverNs: string, serverIp: string): Promise<number[]> {
  const script = fileURLToPath(import.meta.url);
  const server = spawn(systemTool('nsenter'), [`--net=${serverNs}`, process.execPath, script, 'echo-server'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      server.stdout.once('data', () => resolve());
      server.once('exit', (code) => reject(new Error(`echo server exited with ${code}`)));
    });
    const res = await inNetns(log, clientNs, process.execPath, [script, 'echo-client', serverIp, String(PINGS)], { timeoutMs: 120_000 });
    return (JSON.parse(res.stdout) as number[]).sort((a, b) => a - b);
  } finally {
    server.kill('SIGKILL');
  }
}

function echoServer(): void {
  const srv = createServer((sock) => {
    sock.setNoDelay(true);
    sock.on('data', (d) => sock.write(d));
  });
  srv.listen(7071, '0.0.0.0', () => process.stdout.write('ready\n'));
}

async function echoClient(ip: string, n: number): Promise<void> {
  const sock = connect(7071, ip);
  sock.setNoDelay(true);
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const times: number[] = [];
  const payload = Buffer.alloc(64, 1);
  for (let i = 0; i < n + 100; i++) {
    const t0 = process.hrtime.bigint();
    await new Promise<void>((r) => {
      sock.once('data', () => r());
      sock.write(payload);
    });
    if (i >= 100) times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  sock.destroy();
  process.stdout.write(JSON.stringify(times));
}

/** The embedded DNS on loopback, answering from a table of 100 tasks in 10 services. */
async function dnsBench(): Promise<DnsResult> {
  const endpoints = benchEndpoints();
  const dns = new EmbeddedDns({ view: () => [endpoints], logger: log, upstream: [] });
  await dns.start('127.0.0.1', 0);
  try {
    return await measureDns('127.0.0.1', dns.address()?.port ?? 0, DNS_QUERIES);
  } finally {
    await dns.stop();
  }
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'swarm-bench-overlay-'));
  const hosts = new NetnsDir(join(root, 'hosts'), log);
  const drivers: OverlayDriver[] = [];
  const servers: ChildProcess[] = [];
  try {
    const sw = await hosts.create('switch');
    const h = [await hosts.create('h1'), await hosts.create('h2')];
    await ipBatch(log, sw, ['link set lo up', 'link add br0 type bridge', 'link set br0 up']);
    for (const [i, path] of h.entries()) {
      await ipBatch(log, sw, [`link add p${i} type veth peer name eth0 netns ${path}`, `link set p${i} master br0`, `link set p${i} up`]);
      await ipBatch(log, path, ['link set lo up', `addr add ${UNDERLAY[i]}/24 dev eth0`, 'link set eth0 up']);
      const d = new OverlayDriver({ stateDir: join(root, `d${i}`), underlayAddr: UNDERLAY[i] ?? '', logger: log, hostNetns: path });
      await d.recover(new Set());
      drivers.push(d);
    }
    const [d1, d2] = drivers as [OverlayDriver, OverlayDriver];
    const [h1, h2] = h as [string, string];
    let t0 = performance.now();
    const a = await d1.attach('benchtaska', [attachment('10.91.0.2/16')]);
    const firstAttachMs = performance.now() - t0;
    const b = await d2.attach('benchtaskb', [attachment('10.91.0.3/16')]);
    await d1.setPeers('benchnet', d2.localEndpoints('benchnet').map((e) => ({ ...e, host: UNDERLAY[1] })));
    await d2.setPeers('benchnet', d1.localEndpoints('benchnet').map((e) => ({ ...e, host: UNDERLAY[0] })));
    for (const ns of [h2, b.netnsPath]) servers.push(spawn(systemTool('nsenter'), [`--net=${ns}`, systemTool('iperf3'), '-s'], { stdio: 'ignore' }));
    await new Promise((r) => setTimeout(r, 500)); // iperf3 -s has no readiness signal; its first client would retry anyway
    const under: number[] = [];
    const over: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      under.push(await iperf(h1, UNDERLAY[1]));
      over.push(await iperf(a.netnsPath, '10.91.0.3'));
      process.stderr.write(`round ${round + 1}: underlay ${(under[round]! / 1e9).toFixed(2)} Gbit/s, overlay ${(over[round]! / 1e9).toFixed(2)} Gbit/s\n`);
    }
    for (const s of servers.splice(0)) s.kill('SIGKILL');
    const rttUnder = await rtt(h1, h2, UNDERLAY[1]);
    const rttOver = await rtt(a.netnsPath, b.netnsPath, '10.91.0.3');
    const attachMs: number[] = [];
    for (let i = 0; i < ATTACHES; i++) {
      t0 = performance.now();
      await d1.attach(`benchmore${String(i).padStart(3, '0')}`, [attachment(`10.91.1.${i + 2}/16`)]);
      attachMs.push(performance.now() - t0);
    }
    attachMs.sort((x, y) => x - y);
    const dnsResult = await dnsBench();
    const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? NaN;
    const mUnder = median(under);
    const mOver = median(over);
    const load = (await import('node:os')).loadavg()[0]?.toFixed(2) ?? '?';
    const body = [
      `Command: \`scripts/bench overlay\` (BENCH_SECONDS=${SECONDS}, BENCH_ROUNDS=${ROUNDS}, BENCH_PINGS=${PINGS}, BENCH_ATTACHES=${ATTACHES}); ${new Date().toISOString().slice(0, 10)}, 1-minute load ${load} at the end.`,
      '',
      'Two hosts (network namespaces on a bridge, MTU 1500, like the lab), one task namespace each on one overlay network (VXLAN, overlay MTU 1450). iperf3 runs in the task namespaces (overlay) and in the hosts (underlay), alternating rounds; the latency is a 64-byte TCP request/response from a Node process.',
      '',
      '| path | TCP throughput (median of rounds) | rounds | request/response p50 | p99 |',
      '| --- | --- | --- | --- | --- |',
      `| underlay, host to host | ${(mUnder / 1e9).toFixed(2)} Gbit/s | ${under.map((x) => (x / 1e9).toFixed(2)).join(', ')} | ${quantile(rttUnder, 0.5).toFixed(3)} ms | ${quantile(rttUnder, 0.99).toFixed(3)} ms |`,
      `| overlay, task to task | ${(mOver / 1e9).toFixed(2)} Gbit/s | ${over.map((x) => (x / 1e9).toFixed(2)).join(', ')} | ${quantile(rttOver, 0.5).toFixed(3)} ms | ${quantile(rttOver, 0.99).toFixed(3)} ms |`,
      '',
      `Overlay / underlay throughput: **${((mOver / mUnder) * 100).toFixed(0)}%** (goal: at least 90%).`,
      '',
      `Embedded DNS (a network of 100 tasks in 10 services, on loopback, answered from the tables): ${DNS_QUERIES} queries one at a time p50 ${(dnsResult.p50 * 1000).toFixed(0)} µs, p99 ${(dnsResult.p99 * 1000).toFixed(0)} µs (goal: under 1 ms); with 64 in flight ${Math.round(dnsResult.perSecond).toLocaleString('en-US')} answers/s.`,
      '',
      `Attaching a task: the network's first task on a host (namespace, bridge, VXLAN device, gateway bridge) ${firstAttachMs.toFixed(1)} ms; one more task on a network already there: p50 ${quantile(attachMs, 0.5).toFixed(1)} ms, p99 ${quantile(attachMs, 0.99).toFixed(1)} ms over ${ATTACHES}.`,
    ].join('\n');
    process.stdout.write(body + '\n');
    if (DOC !== '-') writeDocBlock(DOC, { start: '<!-- bench:overlay:start -->', end: '<!-- bench:overlay:end -->' }, '## Overlay networks (`scripts/bench overlay`)', body);
  } finally {
    for (const s of servers) s.kill('SIGKILL');
    for (const d of drivers) await d.destroyAll().catch(() => undefined);
    for (const n of ['h1', 'h2', 'switch']) await hosts.remove(n).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
}

const mode = process.argv[2];
if (mode === 'echo-server') echoServer();
else if (mode === 'echo-client') await echoClient(process.argv[3] ?? '', Number(process.argv[4] ?? 1000));
else await main();
