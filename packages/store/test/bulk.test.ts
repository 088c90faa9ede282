import test from 'ava';
import { Store, type Op } from '../src/index.js';
import { commit, edit, mustCommit, newNode, newService, newTask } from './fixtures.js';

test('a 10,000-task placement batch applies as one transaction with every index and event right', (t) => {
  const store = new Store();
  const nodes = 50;
  const tasks = 10_000;
  mustCommit(store, 1, [
    { op: 'create', kind: 'service', object: newService('s1', 'web', tasks) },
    ...Array.from({ length: nodes }, (_, i): Op => ({ op: 'create', kind: 'node', object: newNode(`n${i}`, `node-${i}`) })),
  ]);
  // The orchestrator's batch: every slot gets a pending task.
  const creates: Op[] = Array.from({ length: tasks }, (_, i) => ({
    op: 'create',
    kind: 'task',
    object: newTask(`t${i}`, 's1', i + 1, { state: 'pending' }),
  }));
  let startedMs = performance.now();
  t.true(commit(store, 2, creates).ok);
  t.log(`encode + apply of ${tasks} task creates: ${Math.round(performance.now() - startedMs)} ms`);
  t.is(store.count('task'), tasks);
  t.is(store.tasksByService('s1').length, tasks);

  // The scheduler's batch: every task placed on a node in one entry.
  const w = store.watch({ kinds: ['task'] });
  const placements: Op[] = store.tasksByService('s1').map((task) => ({
    op: 'update',
    kind: 'task',
    object: edit(task, (c) => {
      c.nodeId = `n${(c.slot - 1) % nodes}`;
      c.status.state = 'assigned';
    }),
  }));
  startedMs = performance.now();
  const r = commit(store, 3, placements);
  t.log(`encode + apply of ${tasks} task placements: ${Math.round(performance.now() - startedMs)} ms`);
  t.true(r.ok);
  for (let n = 0; n < nodes; n++) t.is(store.tasksByNode(`n${n}`).length, tasks / nodes);
  t.deepEqual(store.tasksBySlot('s1', 777).map((x) => [x.id, x.nodeId, x.status.state, x.meta.version.index]), [['t776', 'n26', 'assigned', 3]]);
  const events = w.poll();
  t.is(events.length, tasks);
  t.true(events.every((e) => e.action === 'update' && e.index === 3));

  // The same placements again are stale (versions moved to 3) and change nothing.
  const again = commit(store, 4, placements);
  t.true(!again.ok && again.error.code === 'version_conflict' && again.error.opIndex === 0);
  t.is(store.get('task', 't0')?.meta.version.index, 3);
});
