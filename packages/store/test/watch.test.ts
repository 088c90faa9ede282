import test from 'ava';
import { Store, WatchClosedError, type StoreEvent } from '../src/index.js';
import { commit, edit, mustCommit, newNode, newService, newTask, requireObject } from './fixtures.js';

function describe(events: StoreEvent[]): string[] {
  return events.map((e) => `${e.index}:${e.action}:${e.kind}:${e.object.id}`);
}

test('watchers get every applied op as an event, in log order, filtered by kind', (t) => {
  const store = new Store();
  const all = store.watch();
  const tasksOnly = store.watch({ kinds: ['task'] });
  mustCommit(store, 1, [
    { op: 'create', kind: 'service', object: newService('s1', 'web') },
    { op: 'create', kind: 'task', object: newTask('t1', 's1', 1) },
  ]);
  const t1 = requireObject(store.get('task', 't1'), 't1');
  mustCommit(store, 2, [{ op: 'update', kind: 'task', object: edit(t1, (c) => (c.status.state = 'pending')) }]);
  mustCommit(store, 4, [{ op: 'delete', kind: 'task', id: 't1' }]);
  t.deepEqual(describe(all.poll()), ['1:create:service:s1', '1:create:task:t1', '2:update:task:t1', '4:delete:task:t1']);
  const taskEvents = tasksOnly.poll();
  t.deepEqual(describe(taskEvents), ['1:create:task:t1', '2:update:task:t1', '4:delete:task:t1']);
  const update = taskEvents[1];
  if (update?.action !== 'update' || update.kind !== 'task') return t.fail('second event is not a task update');
  t.is(update.previous.status.state, 'new');
  t.is(update.object.status.state, 'pending');
  t.is(taskEvents[2]?.object.meta.version.index, 2, 'a delete event carries the last version');
});

test('a refused transaction produces no events', (t) => {
  const store = new Store();
  const w = store.watch();
  mustCommit(store, 1, [{ op: 'create', kind: 'service', object: newService('s1', 'web') }]);
  const r = commit(store, 2, [
    { op: 'create', kind: 'service', object: newService('s2', 'api') },
    { op: 'create', kind: 'service', object: newService('s3', 'web') },
  ]);
  t.false(r.ok);
  t.deepEqual(describe(w.poll()), ['1:create:service:s1']);
});

test('async iteration yields events as they are applied and ends when the consumer closes', async (t) => {
  const store = new Store();
  const w = store.watch({ where: (e) => e.kind === 'node' });
  const seen: string[] = [];
  const consumer = (async () => {
    for await (const e of w) {
      seen.push(`${e.index}:${e.object.id}`);
      if (seen.length === 3) break;
    }
  })();
  for (let i = 1; i <= 5; i++) {
    mustCommit(store, i, [
      { op: 'create', kind: 'node', object: newNode(`n${i}`, `node-${i}`) },
      { op: 'create', kind: 'service', object: newService(`s${i}`, `svc-${i}`) },
    ]);
    await Promise.resolve();
  }
  await consumer;
  t.deepEqual(seen, ['1:n1', '2:n2', '3:n3']);
  t.true(w.closed);
  t.is(w.closeReason, null);
  t.is(store.watcherCount, 0);
});

test('a watcher that falls behind its bounded queue is closed with reason overflow, and the store goes on', async (t) => {
  const store = new Store();
  const slow = store.watch({}, { maxQueuedEvents: 3 });
  const fine = store.watch({}, { maxQueuedEvents: 100 });
  for (let i = 1; i <= 4; i++) mustCommit(store, i, [{ op: 'create', kind: 'node', object: newNode(`n${i}`, `h${i}`) }]);
  t.is(slow.closeReason, 'overflow');
  const err = t.throws(() => slow.poll(), { instanceOf: WatchClosedError });
  t.regex(err?.message ?? '', /re-list/);
  await t.throwsAsync(async () => {
    for await (const _ of slow) t.fail('a closed watcher yields nothing');
  }, { instanceOf: WatchClosedError });
  t.is(fine.poll().length, 4);
  t.is(store.watcherCount, 1);
  t.is(store.count('node'), 4);
});

test('an overflow also rejects a consumer already waiting', async (t) => {
  const store = new Store();
  const w = store.watch({ where: () => false }, { maxQueuedEvents: 1 });
  const pending = w.next();
  w.terminate(new WatchClosedError('overflow', 'test'));
  await t.throwsAsync(pending, { instanceOf: WatchClosedError });
});

test('sinceIndex replays retained history, and a too-old index is closed as compacted', (t) => {
  const store = new Store({ maxHistoryEvents: 3 });
  for (let i = 1; i <= 5; i++) mustCommit(store, i, [{ op: 'create', kind: 'node', object: newNode(`n${i}`, `h${i}`) }]);
  const resumed = store.watch({}, { sinceIndex: 3 });
  mustCommit(store, 6, [{ op: 'create', kind: 'node', object: newNode('n6', 'h6') }]);
  t.deepEqual(describe(resumed.poll()), ['4:create:node:n4', '5:create:node:n5', '6:create:node:n6']);
  const tooOld = store.watch({}, { sinceIndex: 1 });
  t.is(tooOld.closeReason, 'compacted');
  t.throws(() => store.watch({}, { sinceIndex: 99 }), { message: /sinceIndex/ });
});

test('a watch filter that throws closes only that watcher', (t) => {
  const store = new Store();
  const broken = store.watch({
    where: () => {
      throw new Error('boom');
    },
  });
  const ok = store.watch();
  mustCommit(store, 1, [{ op: 'create', kind: 'node', object: newNode('n1', 'h1') }]);
  t.is(broken.closeReason, 'filter_failed');
  t.is(ok.poll().length, 1);
});
