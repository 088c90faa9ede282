import test from 'ava';
import { isDeadTask, Store, tasksToReap, type Task } from '../src/index.js';
import { mustCommit, newTask } from './fixtures.js';

function tasks(specs: Array<[string, string, number, Parameters<typeof newTask>[3]]>): Task[] {
  const store = new Store();
  mustCommit(
    store,
    1,
    specs.map(([id, svc, slot, opts]) => ({ op: 'create' as const, kind: 'task' as const, object: newTask(id, svc, slot, opts) })),
  );
  return store.list('task');
}

const dead = (ts: number, nodeId = 'n1') => ({ state: 'failed' as const, desired: 'shutdown' as const, timestampMs: ts, nodeId });

test('the reaper picks the oldest dead tasks of a slot beyond the retention limit', (t) => {
  const all = tasks([
    ['a1', 's1', 1, dead(10)],
    ['a2', 's1', 1, dead(30)],
    ['a3', 's1', 1, dead(20)],
    ['a4', 's1', 1, dead(40)],
    ['a5', 's1', 1, { state: 'running', desired: 'running', nodeId: 'n1' }],
    ['b1', 's1', 2, dead(5)],
    ['b2', 's1', 2, dead(6)],
    ['c1', 's2', 1, dead(1)],
  ]);
  t.deepEqual(tasksToReap(all, { retentionLimit: 2 }), ['a1', 'a3']);
  t.deepEqual(tasksToReap(all, { retentionLimit: 0 }), ['a1', 'a2', 'a3', 'a4', 'b1', 'b2', 'c1']);
  t.deepEqual(tasksToReap(all), [], 'default limit is 5 per slot');
});

test('tasks still wanted running or not yet stopped are never reaped', (t) => {
  const all = tasks([
    ['x1', 's1', 1, { state: 'failed', desired: 'running', timestampMs: 1 }],
    ['x2', 's1', 1, { state: 'running', desired: 'shutdown', timestampMs: 2 }],
    ['x3', 's1', 1, dead(3)],
  ]);
  t.false(isDeadTask(all.find((x) => x.id === 'x1') as Task));
  t.deepEqual(tasksToReap(all, { retentionLimit: 0 }), ['x3']);
});

test('global tasks keep their history per node; a removed service loses all its dead tasks', (t) => {
  const all = tasks([
    ['g1', 'glob', 0, dead(1, 'n1')],
    ['g2', 'glob', 0, dead(2, 'n1')],
    ['g3', 'glob', 0, dead(3, 'n2')],
    ['r1', 'gone', 1, dead(1)],
    ['r2', 'gone', 1, { state: 'running', desired: 'running', nodeId: 'n1' }],
  ]);
  t.deepEqual(tasksToReap(all, { retentionLimit: 1, liveServiceIds: new Set(['glob']) }), ['g1', 'r1']);
  t.deepEqual(tasksToReap(all, { retentionLimit: 0, maxTasks: 2 }).length, 2);
});
