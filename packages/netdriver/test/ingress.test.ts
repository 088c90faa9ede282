// The routing mesh's nft tables as text: backends by service and readiness, weights as ranges, strategies.

import test from 'ava';
import type { Endpoint } from '../src/endpoints.js';
import { capacityFromLoad, chooseExpression } from '../src/balance.js';
import { hostIngressRuleset, ingressBackends, INGRESS_SANDBOX, sandboxRuleset, type IngressService } from '../src/ingress.js';

const ep = (ip: string, service: string, ready = true, taskId = `t${ip}`): Endpoint => ({ ip, mac: '', taskId, service, task: '', aliases: [], vip: '', ready });
const web: IngressService = { name: 'web', ports: [{ protocol: 'tcp', publishedPort: 8080, targetPort: 80 }], strategy: 'round-robin' };

test('backends are the ready tasks of the service, in address order, never a sandbox, each address once', (t) => {
  const endpoints = [ep('10.0.0.12', 'web'), ep('10.0.0.9', 'web'), ep('10.0.0.5', 'web', false), ep('10.0.0.7', 'api'), ep('10.0.0.2', '', true, INGRESS_SANDBOX), ep('10.0.0.9', 'web')];
  const [got] = ingressBackends([web], endpoints);
  t.deepEqual(got?.backends, [{ ip: '10.0.0.9', weight: 10 }, { ip: '10.0.0.12', weight: 10 }]);
  const [open] = ingressBackends([web], [{ ...ep('10.0.0.9', 'web'), circuit: 'open' }, ep('10.0.0.12', 'web')]);
  t.deepEqual(open?.backends, [{ ip: '10.0.0.12', weight: 10 }], 'an open circuit takes a backend out');
});

test('the choice: one backend needs none; equal weights one slot each; weights become ranges; round robin counts, random draws', (t) => {
  t.is(chooseExpression([{ ip: '10.0.0.9', weight: 5 }], 'random'), '10.0.0.9');
  t.is(chooseExpression([{ ip: '10.0.0.9', weight: 1 }, { ip: '10.0.0.12', weight: 1 }], 'round-robin'), 'numgen inc mod 2 map { 0 : 10.0.0.9, 1 : 10.0.0.12 }');
  t.is(chooseExpression([{ ip: '10.0.0.9', weight: 1 }, { ip: '10.0.0.12', weight: 9 }], 'load-aware'), 'numgen random mod 10 map { 0 : 10.0.0.9, 1-9 : 10.0.0.12 }');
  t.is(chooseExpression([{ ip: '10.0.0.9', weight: 10 }, { ip: '10.0.0.12', weight: 10 }], 'round-robin'), 'numgen inc mod 2 map { 0 : 10.0.0.9, 1 : 10.0.0.12 }', 'equal weights: one slot each, no bursts');
  t.deepEqual([0, 0.25, 0.5, 0.9, 3, -1, Number.NaN].map(capacityFromLoad), [10, 8, 5, 1, 1, 10, 10]);
  t.throws(() => chooseExpression([], 'random'), { message: /positive weights/ });
  t.throws(() => chooseExpression([{ ip: '10.0.0.9; drop', weight: 1 }], 'random'), { message: /IPv4/ });
});

test('the sandbox NATs every port of a served service to its target port; a service without backends is left to be refused', (t) => {
  const api: IngressService = { name: 'api', ports: [{ protocol: 'udp', publishedPort: 53, targetPort: 5353 }], strategy: 'random' };
  const text = sandboxRuleset(ingressBackends([web, api], [ep('10.0.0.9', 'web')]), 'eth0');
  t.regex(text, /tcp dport 8080 dnat to 10\.0\.0\.9 : 80/);
  t.false(text.includes('dport 53'));
  t.regex(text, /oifname "eth0" ct status dnat masquerade/);
});

test("the host sends every ingress port of its own addresses (not loopback) to the sandbox's gateway leg", (t) => {
  const text = hostIngressRuleset([web], '172.18.0.2', 'swarm_gwbridge');
  t.regex(text, /fib daddr type local ip daddr != 127\.0\.0\.0\/8 tcp dport 8080 dnat to 172\.18\.0\.2/);
  t.regex(text, /ip daddr 172\.18\.0\.2 oifname "swarm_gwbridge" ct status dnat masquerade/);
  t.throws(() => hostIngressRuleset([{ ...web, ports: [{ protocol: 'tcp', publishedPort: 0, targetPort: 80 }] }], '172.18.0.2', 'x'), { message: /well formed/ });
});
