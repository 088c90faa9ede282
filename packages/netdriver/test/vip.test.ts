// The VIP table of a task: which tasks stand behind each VIP it can see, and the nft ruleset made of them.

import test from 'ava';
import { lbRuleset, vipBackends, type Endpoint } from '../src/index.js';

function ep(ip: string, vip: string, ready = true, extra: Partial<Endpoint> = {}): Endpoint {
  return { ip, mac: '02:42:00:00:00:00', taskId: ip, service: 's', task: 's.1.x', aliases: [], vip, ready, ...extra };
}
const w = (...ips: string[]) => ips.map((ip) => ({ ip, weight: 10 }));

test("each VIP the task sees gets its ready tasks, from every network of the task, once each; dnsrr services have none", (t) => {
  const net1 = [ep('10.0.1.4', '10.0.1.2'), ep('10.0.1.3', '10.0.1.2'), ep('10.0.1.5', '10.0.1.2', false), ep('10.0.1.6', '')];
  const net2 = [ep('10.0.2.3', '10.0.2.2', false)];
  t.deepEqual(vipBackends([net1, net2, net1]), [
    { vip: '10.0.1.2', strategy: 'round-robin', backends: w('10.0.1.3', '10.0.1.4') },
    { vip: '10.0.2.2', strategy: 'round-robin', backends: [] },
  ]);
});

test("a VIP's strategy comes from its endpoints; an open circuit takes a task out, a half-open one gets a trickle; load-aware weighs by spare capacity", (t) => {
  const net = [ep('10.0.1.3', '10.0.1.2', true, { lb: 'random', circuit: 'open' }), ep('10.0.1.4', '10.0.1.2', true, { lb: 'random', circuit: 'half-open' }), ep('10.0.1.5', '10.0.1.2', true, { lb: 'random' })];
  t.deepEqual(vipBackends([net]), [{ vip: '10.0.1.2', strategy: 'random', backends: [{ ip: '10.0.1.4', weight: 1 }, { ip: '10.0.1.5', weight: 10 }] }]);
  t.regex(lbRuleset(vipBackends([net])), /ip daddr 10\.0\.1\.2 dnat to numgen random mod 11 map \{ 0 : 10\.0\.1\.4, 1-10 : 10\.0\.1\.5 \}/);
  const loaded = [ep('10.0.1.3', '10.0.1.2', true, { lb: 'load-aware', capacity: 2 }), ep('10.0.1.4', '10.0.1.2', true, { lb: 'load-aware', capacity: 8 })];
  t.regex(lbRuleset(vipBackends([loaded])), /numgen random mod 5 map \{ 0 : 10\.0\.1\.3, 1-4 : 10\.0\.1\.4 \}/, 'weights 2:8, divided by their common divisor');
});

test('the ruleset replaces the whole table at once: DNAT by round robin, one backend straight, none refused at once', (t) => {
  const rules = lbRuleset([
    { vip: '10.0.1.2', strategy: 'round-robin', backends: w('10.0.1.3', '10.0.1.4', '10.0.1.10') },
    { vip: '10.0.2.2', strategy: 'round-robin', backends: w('10.0.2.3') },
    { vip: '10.0.3.2', strategy: 'round-robin', backends: [] },
  ]);
  const lines = rules.split('\n').map((l) => l.trim());
  t.deepEqual(lines.slice(0, 3), ['table ip swarm_lb {}', 'delete table ip swarm_lb', 'table ip swarm_lb {']);
  t.true(lines.includes('ip daddr 10.0.1.2 dnat to numgen inc mod 3 map { 0 : 10.0.1.3, 1 : 10.0.1.4, 2 : 10.0.1.10 }'));
  t.true(lines.includes('ip daddr 10.0.2.2 dnat to 10.0.2.3'));
  t.true(lines.includes('ip daddr 10.0.3.2 meta l4proto tcp reject with tcp reset'));
  t.true(lines.includes('ip daddr 10.0.3.2 reject'));
  t.throws(() => lbRuleset([{ vip: '10.0.1.2; flush ruleset', strategy: 'random', backends: [] }]), { message: /IPv4/ }, 'nothing but addresses reaches nft');
  t.throws(() => lbRuleset([{ vip: '10.0.1.2', strategy: 'random', backends: w('10.0.1.3; flush ruleset') }]), { message: /IPv4/ });
});

test('host-mode ports: one DNAT per port to the task, only for the node\'s own addresses; a port twice on one node is a clash', async (t) => {
  const { publishRuleset, portClash } = await import('../src/index.js');
  const held = [{ protocol: 'tcp' as const, publishedPort: 8080, targetPort: 80, taskIp: '172.18.0.5', taskId: 'a' }];
  const rules = publishRuleset([...held, { protocol: 'udp', publishedPort: 53, targetPort: 5353, taskIp: '172.18.0.6', taskId: 'b' }]).split('\n').map((l) => l.trim());
  t.is(rules.filter((l) => l === 'fib daddr type local ip daddr != 127.0.0.0/8 tcp dport 8080 dnat to 172.18.0.5:80').length, 2, 'from outside and from the node itself');
  t.true(rules.includes('fib daddr type local ip daddr != 127.0.0.0/8 udp dport 53 dnat to 172.18.0.6:5353'));
  t.is(portClash(held, [{ protocol: 'tcp', publishedPort: 8080, targetPort: 81, taskIp: '172.18.0.7', taskId: 'c' }])?.taskId, 'a');
  t.is(portClash(held, [{ protocol: 'udp', publishedPort: 8080, targetPort: 81, taskIp: '172.18.0.7', taskId: 'c' }]), null, 'another protocol');
  t.throws(() => publishRuleset([{ protocol: 'tcp', publishedPort: 70000, targetPort: 80, taskIp: '172.18.0.5', taskId: 'a' }]), { message: /well formed/ });
});
