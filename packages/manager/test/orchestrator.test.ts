// The reconcilers on a store, played by the harness: replicated spreading, scaling, node death and return, drain
// and pause, restart policies, global mode, and that a settled cluster makes no writes.

import test from 'ava';
import { isTerminalTaskState } from '@swarm/store';
import { counts, Harness, sum } from './harness.js';

function replicas(n: number) {
  return (s: { spec: { mode: unknown } }): void => {
    s.spec.mode = { replicated: { replicas: n } };
  };
}

test('a 6-replica service spreads 2,1,1,1,1 over 5 nodes, one task per slot 1..6', (t) => {
  const h = new Harness();
  h.addNodes(5);
  const web = h.addService('web', replicas(6));
  h.settle();
  t.deepEqual(counts(h.placement(web)), [1, 1, 1, 1, 2]);
  t.deepEqual(
    h.live(web).map((x) => x.slot),
    [1, 2, 3, 4, 5, 6],
  );
  t.is(h.pass(), 0, 'a settled cluster writes nothing');
});

test('two services share the nodes: the second fills the least loaded nodes first', (t) => {
  const h = new Harness();
  h.addNodes(4);
  const a = h.addService('a', replicas(2));
  h.settle();
  const b = h.addService('b', replicas(2));
  h.settle();
  const busy = new Set(h.live(a).map((x) => x.nodeId));
  t.true(
    h.live(b).every((x) => !busy.has(x.nodeId)),
    'b avoids the nodes a runs on',
  );
});

test('scale up takes the lowest free slots; scale down removes the highest, tasks not yet running first', (t) => {
  const h = new Harness();
  h.addNodes(3);
  const web = h.addService('web', replicas(3));
  h.settle();
  h.editService(web, replicas(5));
  h.settle();
  t.deepEqual(
    h.live(web).map((x) => x.slot),
    [1, 2, 3, 4, 5],
  );
  h.editService(web, replicas(2));
  h.settle();
  t.deepEqual(
    h.live(web).map((x) => x.slot),
    [1, 2],
  );
  t.is(sum(h.placement(web)), 2);
  const stopped = h.tasks(web).filter((x) => x.desiredState === 'shutdown');
  t.is(stopped.length, 3);
  t.true(stopped.every((x) => x.status.state === 'shutdown'));
});

test('a node that goes down: its tasks become ORPHANED and are replaced on the others; when it returns nothing is duplicated', (t) => {
  const h = new Harness();
  const [n1] = h.addNodes(3) as [string];
  const web = h.addService('web', replicas(6));
  h.settle();
  const onN1 = h.live(web).filter((x) => x.nodeId === n1);
  t.is(onN1.length, 2);
  h.editNode(n1, (n) => {
    n.status.state = 'down';
  });
  h.settle();
  t.is(sum(h.placement(web)), 6);
  t.true(h.live(web).every((x) => x.nodeId !== n1));
  for (const old of onN1) {
    const now = h.tasks(web).find((x) => x.id === old.id);
    t.is(now?.status.state, 'orphaned');
    t.is(now?.desiredState, 'shutdown');
  }
  // Same slots, new tasks: slot numbers stay 1..6.
  t.deepEqual(
    h.live(web).map((x) => x.slot),
    [1, 2, 3, 4, 5, 6],
  );
  h.editNode(n1, (n) => {
    n.status.state = 'ready';
  });
  h.settle();
  t.is(h.live(web).length, 6, 'the returning node does not bring its old tasks back');
  t.is(sum(h.placement(web)), 6);
});

test('a removed node: its tasks are orphaned and replaced', (t) => {
  const h = new Harness();
  const [n1] = h.addNodes(2) as [string];
  const web = h.addService('web', replicas(2));
  h.settle();
  h.commit([{ op: 'delete', kind: 'node', id: n1 }]);
  h.settle();
  t.is(sum(h.placement(web)), 2);
  t.true(h.tasks(web).some((x) => x.status.state === 'orphaned' && x.status.message === 'node was removed from the swarm'));
});

test('drain moves tasks off a node; pause keeps them but takes no new ones', (t) => {
  const h = new Harness();
  const [n1, n2] = h.addNodes(3) as [string, string];
  const web = h.addService('web', replicas(6));
  h.settle();
  h.editNode(n1, (n) => {
    n.spec.availability = 'drain';
  });
  h.settle();
  t.is(sum(h.placement(web)), 6);
  t.true(h.live(web).every((x) => x.nodeId !== n1));
  h.editNode(n1, (n) => {
    n.spec.availability = 'active';
  });
  h.editNode(n2, (n) => {
    n.spec.availability = 'pause';
  });
  h.settle();
  const onN2 = h.live(web).filter((x) => x.nodeId === n2).length;
  t.is(onN2, 3, 'pause keeps what runs');
  h.editService(web, replicas(9));
  h.settle();
  t.is(h.live(web).filter((x) => x.nodeId === n2).length, 3, 'but places nothing new');
});

test('restart condition any: a failed task is replaced only after the restart delay', (t) => {
  const h = new Harness();
  h.addNodes(1);
  const web = h.addService('web', (s) => {
    s.spec.taskTemplate.restartPolicy = { condition: 'any', delayMs: 5_000, maxAttempts: 0, windowMs: 0 };
  });
  h.settle();
  const [first] = h.live(web);
  h.end(first?.id ?? '', 'failed');
  h.settle();
  t.is(h.live(web).length, 1);
  t.is(h.live(web)[0]?.id, first?.id, 'still the failed task before the delay');
  h.nowMs += 5_000;
  h.settle();
  const [second] = h.live(web);
  t.not(second?.id, first?.id);
  t.is(second?.slot, 1);
  t.is(second?.status.state, 'running');
});

test('restart conditions none and on-failure: nothing is restarted that should not be', (t) => {
  const h = new Harness();
  h.addNodes(1);
  const none = h.addService('none', (s) => {
    s.spec.taskTemplate.restartPolicy = { condition: 'none', delayMs: 0, maxAttempts: 0, windowMs: 0 };
  });
  const onFailure = h.addService('onfail', (s) => {
    s.spec.mode = { replicated: { replicas: 2 } };
    s.spec.taskTemplate.restartPolicy = { condition: 'on-failure', delayMs: 0, maxAttempts: 0, windowMs: 0 };
  });
  h.settle();
  h.end(h.live(none)[0]?.id ?? '', 'failed');
  const [ok, bad] = h.live(onFailure);
  h.end(ok?.id ?? '', 'complete');
  h.end(bad?.id ?? '', 'failed');
  h.settle();
  t.is(h.tasks(none).length, 1, 'condition none: the failed task stays, no new one');
  t.is(h.tasks(onFailure).length, 3, 'on-failure: only the failed one is restarted');
  t.is(h.live(onFailure).find((x) => x.slot === ok?.slot)?.status.state, 'complete');
});

test('restart max attempts: a crashing task is restarted that many times, then left FAILED', (t) => {
  const h = new Harness();
  h.addNodes(1);
  const web = h.addService('web', (s) => {
    s.spec.taskTemplate.restartPolicy = { condition: 'any', delayMs: 0, maxAttempts: 2, windowMs: 0 };
  });
  h.settle();
  for (let i = 0; i < 4; i++) {
    const current = h.live(web)[0];
    if (current?.status.state === 'running') h.end(current.id, 'failed');
    h.nowMs += 1_000;
    h.settle();
  }
  t.is(h.tasks(web).length, 3, 'the first run and two restarts');
  t.is(h.live(web)[0]?.status.state, 'failed');
});

test('a restart window counts only recent failures', (t) => {
  const h = new Harness();
  h.addNodes(1);
  const web = h.addService('web', (s) => {
    s.spec.taskTemplate.restartPolicy = { condition: 'any', delayMs: 0, maxAttempts: 1, windowMs: 10_000 };
  });
  h.settle();
  h.end(h.live(web)[0]?.id ?? '', 'failed');
  h.settle();
  t.is(h.tasks(web).length, 2);
  h.nowMs += 60_000; // the first failure is out of the window
  h.end(h.live(web)[0]?.id ?? '', 'failed');
  h.settle();
  t.is(h.tasks(web).length, 3);
  h.end(h.live(web)[0]?.id ?? '', 'failed');
  h.settle();
  t.is(h.tasks(web).length, 3, 'the second failure within the window is one too many');
});

test('global mode: one task per ready, active, matching node; new nodes get one; drain and down take it away', (t) => {
  const h = new Harness();
  const [n1, n2] = h.addNodes(3, (n, i) => {
    if (i === 3) n.spec.role = 'manager';
  }) as [string, string, string];
  const agent = h.addService('agent', (s) => {
    s.spec.mode = { global: {} };
    s.spec.taskTemplate.placement.constraints = ['node.role==worker'];
  });
  h.settle();
  t.deepEqual(Object.keys(h.placement(agent)).sort(), ['host-01', 'host-02']);
  t.true(h.live(agent).every((x) => x.slot === 0));
  h.addNodes(1);
  h.settle();
  t.deepEqual(Object.keys(h.placement(agent)).sort(), ['host-01', 'host-02', 'host-04']);
  h.editNode(n1, (n) => {
    n.spec.availability = 'drain';
  });
  h.editNode(n2, (n) => {
    n.status.state = 'down';
  });
  h.settle();
  t.deepEqual(Object.keys(h.placement(agent)).sort(), ['host-04']);
  t.true(h.tasks(agent).some((x) => x.nodeId === n2 && x.status.state === 'orphaned'));
  h.editNode(n2, (n) => {
    n.status.state = 'ready';
  });
  h.settle();
  t.deepEqual(Object.keys(h.placement(agent)).sort(), ['host-02', 'host-04']);
  t.is(h.live(agent).filter((x) => x.nodeId === n2).length, 1);
});

test('a removed service: its tasks are told to stop, and once dead the reaper deletes them', (t) => {
  const h = new Harness();
  h.addNodes(2);
  const web = h.addService('web', replicas(3));
  h.settle();
  h.commit([{ op: 'delete', kind: 'service', id: web }]);
  h.settle();
  t.is(h.tasks(web).length, 0);
});

test('the task history per slot is bounded by the retention limit', (t) => {
  const h = new Harness();
  h.addNodes(1);
  const web = h.addService('web', (s) => {
    s.spec.taskTemplate.restartPolicy = { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 };
  });
  h.settle();
  for (let i = 0; i < 12; i++) {
    h.end(h.live(web)[0]?.id ?? '', 'failed');
    h.settle();
  }
  const dead = h.tasks(web).filter((x) => isTerminalTaskState(x.status.state));
  t.is(dead.length, 5);
  t.is(h.live(web).length, 1);
});

test('constraint enforcement: a node relabelled so that a task\'s constraints fail loses the task to a matching node', (t) => {
  const h = new Harness();
  const [n1, n2] = h.addNodes(2, (n) => {
    n.spec.labels['zone'] = 'a';
  }) as [string, string];
  const web = h.addService('web', (s) => {
    s.spec.mode = { replicated: { replicas: 2 } };
    s.spec.taskTemplate.placement.constraints = ['node.labels.zone==a'];
  });
  h.settle();
  t.deepEqual(counts(h.placement(web)), [1, 1]);
  h.editNode(n1, (n) => {
    n.spec.labels['zone'] = 'b';
  });
  h.settle();
  t.deepEqual(h.live(web).map((x) => x.nodeId), [n2, n2]);
  t.true(h.tasks(web).some((x) => x.nodeId === n1 && x.desiredState === 'shutdown'));
});
