// The scheduler and constraints: filters with the pending reason Docker users read in `service ps`, placement
// as soon as a node fits, spread preferences, max replicas, and one plan for 10,000 pending tasks.

import test from 'ava';
import { ConstraintError, constraintHolds, parseConstraint } from '../src/index.js';
import { newNode } from '@swarm/store/testing';
import type { Node } from '@swarm/store';
import { counts, Harness, sum } from './harness.js';

const node = (change: (n: ReturnType<typeof newNode>) => void = () => undefined): Node => {
  const n = newNode('abc123', 'Host-1');
  n.spec.labels = { zone: 'east', ssd: 'true' };
  change(n);
  return { ...n, meta: { version: { index: 1 }, createdAtMs: 0, updatedAtMs: 0 } };
};

test('constraints: Docker keys, == and !=, values compared without case, missing labels never equal', (t) => {
  const n = node();
  t.true(constraintHolds(n, parseConstraint('node.hostname==host-1')));
  t.true(constraintHolds(n, parseConstraint('node.id == abc123')));
  t.true(constraintHolds(n, parseConstraint('node.role!=manager')));
  t.true(constraintHolds(n, parseConstraint('node.labels.zone==EAST')));
  t.false(constraintHolds(n, parseConstraint('node.labels.zone!=east')));
  t.false(constraintHolds(n, parseConstraint('node.labels.rack==r1')));
  t.true(constraintHolds(n, parseConstraint('node.labels.rack!=r1')));
  t.true(constraintHolds(n, parseConstraint('node.platform.os==linux')));
  t.true(constraintHolds(n, parseConstraint('node.platform.arch==amd64')), 'amd64 and x86_64 are one architecture');
  t.true(constraintHolds(n, parseConstraint('engine.labels.x!=y')));
});

test('constraints: a bad expression is refused with a message naming it', (t) => {
  for (const [expr, why] of [
    ['node.role=manager', /expected KEY==VALUE or KEY!=VALUE/],
    ['node.colour==red', /unknown key "node.colour"/],
    ['==x', /key before == is empty/],
    ['node.labels.zone==', /value after == is empty/],
    ['node.role==boss', /node.role is manager or worker/],
    ['node.labels.a b==c', /invalid label name/],
  ] as const) {
    const err = t.throws(() => parseConstraint(expr), { instanceOf: ConstraintError });
    t.true(err.message.includes(JSON.stringify(expr)), err.message);
    t.regex(err.message, why);
  }
});

test('an unsatisfiable constraint leaves the task PENDING with the reason, written once; a node that comes to fit takes it', (t) => {
  const h = new Harness();
  const [n1] = h.addNodes(5) as [string];
  const svc = h.addService('nowhere', (s) => {
    s.spec.taskTemplate.placement.constraints = ['node.labels.zone==mars'];
  });
  h.settle();
  const [task] = h.tasks(svc);
  t.is(task?.status.state, 'pending');
  t.is(task?.status.err, 'no suitable node (scheduling constraints not satisfied on 5 nodes)');
  const writes = h.written.get('scheduler');
  h.pass();
  h.pass();
  t.is(h.written.get('scheduler'), writes, 'the same reason is not written again');
  h.editNode(n1, (n) => {
    n.spec.labels['zone'] = 'mars';
  });
  h.settle();
  t.deepEqual(h.placement(svc), { 'host-01': 1 });
  t.is(h.tasks(svc)[0]?.status.err, '');
});

test('the reason counts each filter: unavailable, constraints and memory on different nodes', (t) => {
  const h = new Harness();
  const [n1, n2] = h.addNodes(4) as [string, string];
  h.editNode(n1, (n) => {
    n.spec.availability = 'drain';
  });
  h.editNode(n2, (n) => {
    n.spec.role = 'manager';
  });
  const big = h.addService('big', (s) => {
    s.spec.taskTemplate.placement.constraints = ['node.role==worker'];
    s.spec.taskTemplate.resources.reservations.memoryBytes = 64 * 2 ** 30;
  });
  h.settle();
  t.is(h.tasks(big)[0]?.status.err, 'no suitable node (1 node not available for new tasks; scheduling constraints not satisfied on 1 node; insufficient memory on 2 nodes)');
});

test('reservations add up: a node takes tasks until its memory is reserved', (t) => {
  const h = new Harness();
  h.addNodes(2); // 8 GiB each
  const svc = h.addService('mem', (s) => {
    s.spec.mode = { replicated: { replicas: 5 } };
    s.spec.taskTemplate.resources.reservations.memoryBytes = 3 * 2 ** 30;
  });
  h.settle();
  t.is(sum(h.placement(svc)), 4);
  const pending = h.tasks(svc).filter((x) => x.status.state === 'pending');
  t.is(pending.length, 1);
  t.is(pending[0]?.status.err, 'no suitable node (insufficient memory on 2 nodes)');
});

test('max replicas per node', (t) => {
  const h = new Harness();
  h.addNodes(2);
  const svc = h.addService('capped', (s) => {
    s.spec.mode = { replicated: { replicas: 3 } };
    s.spec.taskTemplate.placement.maxReplicas = 1;
  });
  h.settle();
  t.deepEqual(counts(h.placement(svc)), [1, 1]);
  t.regex(h.tasks(svc).find((x) => x.status.state === 'pending')?.status.err ?? '', /max replicas per node limit exceed on 2 nodes/);
});

test('a host-mode published port: one task per port and node, across services; another protocol or ingress mode is no clash', (t) => {
  const h = new Harness();
  h.addNodes(2);
  const port = (publishedPort: number, protocol: 'tcp' | 'udp' = 'tcp', publishMode: 'host' | 'ingress' = 'host') => ({ name: '', protocol, targetPort: 80, publishedPort, publishMode });
  const web = h.addService('web', (s) => {
    s.spec.mode = { replicated: { replicas: 3 } };
    s.spec.endpointSpec = { mode: 'vip', ports: [port(8080)] };
  });
  h.settle();
  t.deepEqual(counts(h.placement(web)), [1, 1], 'the third has no node with 8080/tcp free');
  t.regex(h.tasks(web).find((x) => x.status.state === 'pending')?.status.err ?? '', /host-mode port already in use on 2 nodes/);
  const other = h.addService('other', (s) => (s.spec.endpointSpec = { mode: 'vip', ports: [port(8080)] }));
  const udp = h.addService('udp', (s) => (s.spec.endpointSpec = { mode: 'vip', ports: [port(8080, 'udp')] }));
  h.settle();
  t.is(sum(h.placement(other)), 0, 'another service wanting 8080/tcp in host mode waits too');
  t.is(sum(h.placement(udp)), 1, '8080/udp is another port');
});

test('spread preference: replicas split evenly over a label\'s values before nodes', (t) => {
  const h = new Harness();
  // Three nodes in zone a, one in zone b: by nodes alone zone a would get 3 of 4; spread gives each zone 2.
  h.addNodes(4, (n, i) => {
    n.spec.labels['zone'] = i === 4 ? 'b' : 'a';
  });
  const svc = h.addService('spread', (s) => {
    s.spec.mode = { replicated: { replicas: 4 } };
    s.spec.taskTemplate.placement.preferences = [{ spread: 'node.labels.zone' }];
  });
  h.settle();
  t.is(h.placement(svc)['host-04'], 2);
});

test('tasks are placed only on ready nodes', (t) => {
  const h = new Harness();
  const [n1] = h.addNodes(2) as [string];
  h.editNode(n1, (n) => {
    n.status.state = 'unknown';
  });
  const svc = h.addService('web', (s) => {
    s.spec.mode = { replicated: { replicas: 2 } };
  });
  h.settle();
  t.deepEqual(h.placement(svc), { 'host-02': 2 });
});

test('10,000 pending tasks are placed in one plan, evenly over 100 nodes', (t) => {
  const h = new Harness();
  h.addNodes(100);
  const svc = h.addService('big', (s) => {
    s.spec.mode = { replicated: { replicas: 10_000 } };
  });
  h.pass();
  t.is(h.writingPasses.get('scheduler'), 1);
  t.is(h.written.get('scheduler'), 10_000);
  const perNode = new Map<string, number>();
  for (const x of h.tasks(svc)) {
    t.is(x.status.state, 'assigned');
    perNode.set(x.nodeId, (perNode.get(x.nodeId) ?? 0) + 1);
  }
  t.deepEqual(new Set(perNode.values()), new Set([100]));
});
