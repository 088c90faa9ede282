// The rebalancer on the harness: a node that comes back (or joins) gets its share of a service again, a few tasks
// at a time and never below the running count; spread preferences, updates and the opt-out label are left alone.

import test from 'ava';
import { counts, Harness, sum } from './harness.js';

function piledUp(replicas: number, extra: (h: Harness, web: string) => void = () => undefined): { h: Harness; web: string; n1: string } {
  const h = new Harness();
  const [n1] = h.addNodes(3) as [string];
  h.editNode(n1, (n) => {
    n.status.state = 'down';
  });
  const web = h.addService('web', (s) => {
    s.spec.mode = { replicated: { replicas } };
  });
  extra(h, web);
  h.settle();
  return { h, web, n1 };
}

test('a node that comes back gets its share again, parallelism tasks at a time, never fewer running than replicas', (t) => {
  const { h, web, n1 } = piledUp(6);
  t.deepEqual(counts(h.placement(web)), [3, 3]);
  h.editNode(n1, (n) => {
    n.status.state = 'ready';
  });
  for (let i = 0; i < 40; i++) {
    h.pass();
    h.playAgents();
    const live = h.live(web);
    t.true(sum(h.placement(web)) >= 6, 'never below the replica count');
    t.true(new Set(live.map((x) => x.slot)).size === 6);
    t.true(live.length <= 7, 'one move at a time (parallelism 1)');
  }
  t.deepEqual(counts(h.placement(web)), [2, 2, 2]);
  t.is(h.pass() + h.playAgents(), 0, 'balanced: nothing more moves');
});

test('a new node joining takes tasks too; a service labelled swarm.rebalance=false is left alone', (t) => {
  const h = new Harness();
  h.addNodes(2);
  const web = h.addService('web', (s) => {
    s.spec.mode = { replicated: { replicas: 4 } };
  });
  const pinned = h.addService('pinned', (s) => {
    s.spec.mode = { replicated: { replicas: 4 } };
    s.spec.labels['swarm.rebalance'] = 'false';
  });
  h.settle();
  h.addNodes(2);
  h.settle();
  t.deepEqual(counts(h.placement(web)), [1, 1, 1, 1]);
  t.deepEqual(counts(h.placement(pinned)), [2, 2]);
});

test('no rebalancing onto a node without room, and none for spread preferences', (t) => {
  const { h, web, n1 } = piledUp(4, (hh, id) =>
    hh.editService(id, (s) => {
      s.spec.taskTemplate.resources.reservations.memoryBytes = 2 ** 30;
    }),
  );
  h.editNode(n1, (n) => {
    n.status.state = 'ready';
    n.description.resources.memoryBytes = 2 ** 29; // too small for one task
  });
  h.settle();
  t.deepEqual(counts(h.placement(web)), [2, 2]);
  t.is(h.pass(), 0, 'no move is started only to be cancelled');
});
