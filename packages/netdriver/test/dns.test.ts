// The embedded DNS: which addresses a swarm name stands for, seen from a task's networks; and the server over
// real UDP on loopback: swarm names answered from the tables, other names passed to an upstream resolver.

import test from 'ava';
import { createSocket } from 'node:dgram';
import { decode, encode, type Packet } from 'dns-packet';
import { silentLogger } from '@swarm/wire';
import { EmbeddedDns, resolveName, type Endpoint } from '../src/index.js';

function ep(ip: string, service: string, n: number, extra: Partial<Endpoint> = {}): Endpoint {
  return { ip, mac: '02:42:00:00:00:00', taskId: `${service}task${n}`, service, task: `${service}.${n}.${service}task${n}`, aliases: [], vip: '', ready: true, ...extra };
}

const front = [ep('10.0.1.3', 'web', 1, { vip: '10.0.1.2', aliases: ['www'] }), ep('10.0.1.4', 'web', 2, { vip: '10.0.1.2' }), ep('10.0.1.5', 'web', 3, { vip: '10.0.1.2', ready: false }), ep('10.0.1.6', 'db', 1)];
const back = [ep('10.0.2.3', 'web', 9, { vip: '10.0.2.2' }), ep('10.0.2.4', 'cache', 1)];

test('a service name gives its virtual IP once VIPs are routed, and its ready tasks until then; tasks.NAME its ready tasks', (t) => {
  t.deepEqual(resolveName('web', [front], true), ['10.0.1.2']);
  t.deepEqual(resolveName('web', [front], false), ['10.0.1.3', '10.0.1.4'], 'not the task that is not ready');
  t.deepEqual(resolveName('tasks.web', [front], true), ['10.0.1.3', '10.0.1.4']);
  t.deepEqual(resolveName('WEB.', [front], true), ['10.0.1.2'], 'case and the root dot do not matter');
  t.deepEqual(resolveName('db', [front], true), ['10.0.1.6'], 'dnsrr (no VIP): the tasks');
});

test('aliases and task names resolve; the first network the asker shares with a name answers; unknown names are null', (t) => {
  t.deepEqual(resolveName('www', [front], true), ['10.0.1.2']);
  t.deepEqual(resolveName('web.2.webtask2', [front], true), ['10.0.1.4']);
  t.deepEqual(resolveName('web', [back, front], true), ['10.0.2.2'], 'the asker\'s first network');
  t.deepEqual(resolveName('cache', [front], true), null, 'a network the asker is not on is not seen');
  t.is(resolveName('example.org', [front, back], true), null);
  const down = front.map((e) => ({ ...e, ready: false }));
  t.deepEqual(resolveName('tasks.web', [down], true), [], 'known, none ready: an empty answer, not a lookup elsewhere');
});

async function query(port: number, name: string, type: 'A' | 'AAAA' = 'A', from = '127.0.0.1'): Promise<Packet> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, from, () => r()));
  try {
    return await new Promise<Packet>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer for ${name}`)), 5_000);
      s.once('message', (m) => {
        clearTimeout(timer);
        resolve(decode(m));
      });
      s.send(encode({ type: 'query', id: 7, flags: 256, questions: [{ type, name, class: 'IN' }] }), port, '127.0.0.1');
    });
  } finally {
    s.close();
  }
}

/** dns-packet decodes the response code as a name; its types leave it out. */
const rcode = (p: Packet): string => (p as { rcode?: string }).rcode ?? '';
const ips = (p: Packet): string[] => (p.answers ?? []).map((a) => String((a as { data: unknown }).data));

test('the server answers swarm names from the asker\'s view and passes other names to the upstream resolver', async (t) => {
  // A stand-in upstream on loopback: it answers every A question with 192.0.2.1.
  const upstream = createSocket('udp4');
  await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', () => r()));
  t.teardown(() => upstream.close());
  let upstreamAsked = 0;
  upstream.on('message', (m, rinfo) => {
    upstreamAsked += 1;
    const q = decode(m);
    upstream.send(encode({ type: 'response', id: q.id ?? 0, flags: 384, questions: q.questions ?? [], answers: [{ type: 'A', name: q.questions?.[0]?.name ?? '', ttl: 60, class: 'IN', data: '192.0.2.1' }] }), rinfo.port, rinfo.address);
  });
  const dns = new EmbeddedDns({ view: (ip) => (ip === '127.0.0.1' ? [front] : null), logger: silentLogger(), upstream: ['127.0.0.1'], upstreamPort: upstream.address().port, vipRouted: true });
  await dns.start('127.0.0.1', 0);
  t.teardown(() => dns.stop());
  const port = dns.address()?.port ?? 0;

  const web = await query(port, 'web');
  t.is(web.id, 7);
  t.is(rcode(web), 'NOERROR');
  t.deepEqual(ips(web), ['10.0.1.2']);
  t.is((web.answers?.[0] as { ttl?: number }).ttl, 0, 'no caching: changes are seen at once');
  t.deepEqual(ips(await query(port, 'tasks.web')), ['10.0.1.3', '10.0.1.4']);
  const v6 = await query(port, 'web', 'AAAA');
  t.is(rcode(v6), 'NOERROR');
  t.deepEqual(v6.answers, [], 'no IPv6 in the swarm: an empty answer');
  t.is(upstreamAsked, 0);

  t.deepEqual(ips(await query(port, 'example.org')), ['192.0.2.1'], 'passed on');
  t.is(upstreamAsked, 1);
  t.deepEqual(ips(await query(port, 'web', 'A', '127.0.0.2')), ['192.0.2.1'], 'an address that is no task\'s sees no swarm names');
  t.is(dns.stats.answered, 3);
  t.is(dns.stats.forwarded, 2);

  upstream.removeAllListeners('message'); // the upstream goes silent: SERVFAIL after the timeout, not a hang
  const failed = await query(port, 'example.net');
  t.is(rcode(failed), 'SERVFAIL');
});

test('a datagram that is not DNS gets no answer and does not stop the server', async (t) => {
  const dns = new EmbeddedDns({ view: () => [front], logger: silentLogger(), upstream: [], vipRouted: true });
  await dns.start('127.0.0.1', 0);
  t.teardown(() => dns.stop());
  const port = dns.address()?.port ?? 0;
  const s = createSocket('udp4');
  s.send(Buffer.from('not dns at all'), port, '127.0.0.1', () => s.close());
  t.deepEqual(ips(await query(port, 'web')), ['10.0.1.2']);
  t.is(dns.stats.refused, 1);
  t.is(rcode(await query(port, 'unknown.example')), 'SERVFAIL', 'no upstream: SERVFAIL');
});
