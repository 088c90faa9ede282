// The manager simulator as a test: a fixed seed range keeps every invariant and converges (with the known bugs'
// triggers left out), a run replays from its seed, and the checker fails on stores planted with each violation.

import test from 'ava';
import { Store, type Op } from '@swarm/store';
import { edit, mustCommit, newNode, newService, newTask } from '@swarm/store/testing';
import { KNOWN_BUG_SKIPS } from '../sim/known-bugs.js';
import { InvariantChecker, InvariantViolation, type InvariantName } from '../sim/invariants.js';
import { runSimulation } from '../sim/simulation.js';

/** Seeds of the ava run; scripts/test runs a range of its own through the CLI. */
const SEEDS = { from: 1, to: 30 };

test(`seeds ${SEEDS.from}..${SEEDS.to}: every invariant holds after every step and the cluster converges`, (t) => {
  const failures: string[] = [];
  for (let seed = SEEDS.from; seed <= SEEDS.to; seed++) {
    const r = runSimulation({ seed, skip: KNOWN_BUG_SKIPS });
    if (r.violation !== null) failures.push(`seed ${seed} step ${r.violation.step}: ${r.violation.invariant}: ${r.violation.detail}`);
  }
  t.deepEqual(failures, []);
});

/** Seeds that found a bug (now fixed), run with every fault kind: each must keep passing. */
const REGRESSION_SEEDS = [15601];

test(`regression seeds ${REGRESSION_SEEDS.join(', ')} pass with every fault kind on`, (t) => {
  for (const seed of REGRESSION_SEEDS) {
    const r = runSimulation({ seed });
    t.is(r.violation, null, r.violation === null ? '' : `seed ${seed} step ${r.violation.step}: ${r.violation.invariant}: ${r.violation.detail}`);
  }
});

test('a run replays from its seed: same steps, same stats', (t) => {
  const a = runSimulation({ seed: 7, steps: 60 });
  const b = runSimulation({ seed: 7, steps: 60 });
  t.deepEqual(a, b);
  t.true(a.steps > 60, 'the calm phase ran after the fault phase');
});

// ---------------------------------------------------------------- the checker on planted stores

function plantedStore(ops: Op[][]): Store {
  const store = new Store();
  ops.forEach((batch, i) => mustCommit(store, i + 1, batch));
  return store;
}

function violationOf(store: Store, checker = new InvariantChecker()): InvariantViolation | null {
  try {
    store.view((tx) => checker.check(tx, { step: 7, orchestratorPasses: 0 }));
    return null;
  } catch (err) {
    if (err instanceof InvariantViolation) return err;
    throw err;
  }
}

function running(id: string, slot: number, nodeId: string): Op {
  return { op: 'create', kind: 'task', object: newTask(id, 'svc-web', slot, { nodeId, state: 'running', desired: 'running' }) };
}

test('the checker catches a replicated slot running two tasks outside a start-first update', (t) => {
  const store = plantedStore([
    [
      { op: 'create', kind: 'node', object: newNode('node1', 'host-1') },
      { op: 'create', kind: 'node', object: newNode('node2', 'host-2') },
      { op: 'create', kind: 'service', object: newService('svc-web', 'web', 1) },
    ],
    [running('task-a', 1, 'node1'), running('task-b', 1, 'node2')],
  ]);
  const v = violationOf(store);
  t.is(v?.invariant, 'slot-overlap' satisfies InvariantName);
  t.is(v?.step, 7);
  t.regex(v?.message ?? '', /step 7: slot-overlap: slot svc-web\.1 runs 2 live tasks .*task-a .*task-b/);
});

test('the same two tasks are allowed while a start-first update governs the slot', (t) => {
  const service = edit(newService('svc-web', 'web', 1), (s) => {
    s.spec.updateConfig = { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 0, maxFailureRatio: 0, order: 'start-first' };
    s.updateStatus = { state: 'updating', startedAtMs: 0, completedAtMs: null, message: 'update in progress' };
  });
  const store = plantedStore([
    [{ op: 'create', kind: 'node', object: newNode('node1', 'host-1') }, { op: 'create', kind: 'service', object: service }],
    [running('task-a', 1, 'node1'), running('task-b', 1, 'node1')],
  ]);
  t.is(violationOf(store), null);
});

test('the checker catches a desired state moving backwards between two steps', (t) => {
  const store = plantedStore([
    [{ op: 'create', kind: 'node', object: newNode('node1', 'host-1') }, { op: 'create', kind: 'service', object: newService('svc-web', 'web', 1) }],
    [{ op: 'create', kind: 'task', object: newTask('task-a', 'svc-web', 1, { nodeId: 'node1', state: 'running', desired: 'shutdown' }) }],
  ]);
  const checker = new InvariantChecker();
  t.is(violationOf(store, checker), null);
  const task = store.view((tx) => tx.get('task', 'task-a'));
  if (task === undefined) throw new Error('planted task missing');
  mustCommit(store, 3, [{ op: 'update', kind: 'task', object: { ...task, desiredState: 'running' } }]);
  t.is(violationOf(store, checker)?.invariant, 'desired-state-backwards' satisfies InvariantName);
});

test('the checker catches a live task left on a removed node once the orchestrator had its pass', (t) => {
  const store = plantedStore([
    [{ op: 'create', kind: 'service', object: newService('svc-web', 'web', 1) }],
    [running('task-a', 1, 'node-gone')],
  ]);
  const checker = new InvariantChecker();
  const at = (passes: number): InvariantName | undefined => {
    try {
      store.view((tx) => checker.check(tx, { step: passes, orchestratorPasses: passes }));
      return undefined;
    } catch (err) {
      if (err instanceof InvariantViolation) return err.invariant;
      throw err;
    }
  };
  t.is(at(0), undefined, 'first seen: the next orchestrator pass may still fix it');
  t.is(at(1), undefined);
  t.is(at(2), 'task-on-missing-node');
});
