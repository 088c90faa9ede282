// The DNS load both benchmarks put on the embedded DNS: a table of 100 tasks in 10 services, and a client that asks
// for services, `tasks.` names and task names, one question at a time (latency) and then 64 in flight (throughput).

import { createSocket } from 'node:dgram';
import { decode, encode } from 'dns-packet';
import type { Endpoint } from '../src/index.js';

export interface DnsResult {
  /** Milliseconds. */
  p50: number;
  p99: number;
  perSecond: number;
}

/** 100 ready tasks in 10 services on one network. */
export function benchEndpoints(): Endpoint[] {
  return Array.from({ length: 100 }, (_, i) => ({
    ip: `10.92.0.${i + 2}`,
    mac: '02:42:00:00:00:00',
    taskId: `task${i}`,
    service: `svc${i % 10}`,
    task: `svc${i % 10}.${Math.floor(i / 10) + 1}.task${i}`,
    aliases: [],
    vip: '',
    ready: true,
  }));
}

export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** `queries` questions one at a time, then `queries` more with 64 in flight, to server:port. */
export async function measureDns(server: string, port: number, queries: number): Promise<DnsResult> {
  const client = createSocket('udp4');
  await new Promise<void>((r) => client.bind(0, () => r()));
  const waiting = new Map<number, () => void>();
  client.on('message', (m) => {
    const id = decode(m).id ?? -1;
    waiting.get(id)?.();
    waiting.delete(id);
  });
  const names = ['svc3', 'tasks.svc7', 'svc5.4.task45'];
  let nextId = 0;
  const ask = (): Promise<void> =>
    new Promise((resolve) => {
      const id = (nextId = (nextId + 1) % 65536);
      waiting.set(id, resolve);
      client.send(encode({ type: 'query', id, flags: 256, questions: [{ type: 'A', name: names[id % names.length] ?? 'svc3', class: 'IN' }] }), port, server);
    });
  const times: number[] = [];
  for (let i = 0; i < queries; i++) {
    const t0 = process.hrtime.bigint();
    await ask();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const t0 = performance.now();
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (sent < queries) {
      sent += 1;
      await ask();
    }
  };
  await Promise.all(Array.from({ length: 64 }, () => worker()));
  const perSecond = queries / ((performance.now() - t0) / 1000);
  client.close();
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), perSecond };
}
