import test from 'ava';
import { AssertionError, encodeTransaction, Store, type Task } from '../src/index.js';
import { commit, edit, mustCommit, newNode, newService, newTask, requireObject } from './fixtures.js';

test('a create is stamped with the entry index and the proposer timestamp', (t) => {
  const store = new Store();
  mustCommit(store, 3, [{ op: 'create', kind: 'service', object: newService('s1', 'web') }]);
  const s = requireObject(store.get('service', 's1'), 'service');
  t.deepEqual(s.meta, { version: { index: 3 }, createdAtMs: 3000, updatedAtMs: 3000 });
  t.deepEqual(s.specVersion, { index: 3 });
  t.is(store.appliedIndex, 3);
});

test('a transaction with one bad op changes nothing, but the index advances', (t) => {
  const store = new Store();
  mustCommit(store, 1, [
    { op: 'create', kind: 'service', object: newService('s1', 'web') },
    { op: 'create', kind: 'task', object: newTask('t1', 's1', 1) },
    { op: 'create', kind: 'node', object: newNode('n9', 'node-9') },
  ]);
  const before = store.snapshot();
  const task = requireObject(store.get('task', 't1'), 'task');
  const r = commit(store, 2, [
    { op: 'create', kind: 'service', object: newService('s2', 'api') },
    { op: 'update', kind: 'task', object: edit(task, (c) => (c.nodeId = 'n1')) },
    { op: 'delete', kind: 'service', id: 's1' },
    { op: 'create', kind: 'node', object: newNode('n9', 'node-9') },
  ]);
  t.false(r.ok);
  if (r.ok) return;
  t.is(r.error.code, 'exists');
  t.is(r.error.opIndex, 3);
  t.is(r.index, 2);
  t.is(store.appliedIndex, 2);
  t.is(store.get('service', 's2'), undefined);
  t.is(store.getByName('service', 'api'), undefined);
  t.is(store.get('service', 's1')?.spec.name, 'web');
  t.is(store.getByName('service', 'web')?.id, 's1');
  t.deepEqual(store.tasksByNode('n1'), []);
  t.is(store.get('task', 't1')?.nodeId, '');
  // Same tables, same indexes: only the applied index differs.
  const after = new Store();
  after.restore(before);
  t.deepEqual(after.list('task'), store.list('task'));
  t.deepEqual(after.list('service'), store.list('service'));
});

test('an update must carry the version it read: a stale one is a version_conflict', (t) => {
  const store = new Store();
  mustCommit(store, 1, [{ op: 'create', kind: 'service', object: newService('s1', 'web') }]);
  const read = requireObject(store.get('service', 's1'), 'service');
  mustCommit(store, 2, [{ op: 'update', kind: 'service', object: edit(read, (c) => (c.spec.labels = { a: '1' })) }]);
  const stale = commit(store, 3, [{ op: 'update', kind: 'service', object: edit(read, (c) => (c.spec.labels = { b: '2' })) }]);
  t.false(stale.ok);
  if (!stale.ok) t.is(stale.error.code, 'version_conflict');
  t.deepEqual(store.get('service', 's1')?.spec.labels, { a: '1' });
  const staleDelete = commit(store, 4, [{ op: 'delete', kind: 'service', id: 's1', version: read.meta.version }]);
  t.false(staleDelete.ok);
  if (!staleDelete.ok) t.is(staleDelete.error.code, 'version_conflict');
  const fresh = requireObject(store.get('service', 's1'), 'service');
  t.is(fresh.meta.version.index, 2);
  t.is(fresh.meta.createdAtMs, 1000);
  t.is(fresh.meta.updatedAtMs, 2000);
  mustCommit(store, 5, [{ op: 'delete', kind: 'service', id: 's1', version: fresh.meta.version }]);
  t.is(store.count('service'), 0);
});

test('updating or deleting a missing object is not_found; an update without a version is invalid', (t) => {
  const store = new Store();
  const r1 = commit(store, 1, [{ op: 'delete', kind: 'node', id: 'n1' }]);
  t.true(!r1.ok && r1.error.code === 'not_found');
  mustCommit(store, 2, [{ op: 'create', kind: 'node', object: newNode('n1', 'node-1') }]);
  const node = requireObject(store.get('node', 'n1'), 'node');
  const r2 = commit(store, 3, [{ op: 'update', kind: 'node', object: edit(node, (c) => (c.id = 'n2')) }]);
  t.true(!r2.ok && r2.error.code === 'not_found');
  const noVersion = edit(node, (c) => {
    delete (c as { meta?: unknown }).meta;
  });
  const r3 = commit(store, 4, [{ op: 'update', kind: 'node', object: noVersion }]);
  t.true(!r3.ok && r3.error.code === 'invalid');
});

test('names are unique per kind, case-insensitively, and free again after rename or delete', (t) => {
  const store = new Store();
  mustCommit(store, 1, [{ op: 'create', kind: 'service', object: newService('s1', 'web') }]);
  const dup = commit(store, 2, [{ op: 'create', kind: 'service', object: newService('s2', 'WEB') }]);
  t.true(!dup.ok && dup.error.code === 'name_conflict');
  // Another kind may use the same name.
  mustCommit(store, 3, [{ op: 'create', kind: 'network', object: netObject('net1', 'web') }]);
  const s1 = requireObject(store.get('service', 's1'), 'service');
  mustCommit(store, 4, [{ op: 'update', kind: 'service', object: edit(s1, (c) => (c.spec.name = 'web-old')) }]);
  mustCommit(store, 5, [{ op: 'create', kind: 'service', object: newService('s2', 'Web') }]);
  t.is(store.getByName('service', 'WEB')?.id, 's2');
  t.is(store.getByName('service', 'web-old')?.id, 's1');
  const renameOnto = commit(store, 6, [
    { op: 'update', kind: 'service', object: edit(requireObject(store.get('service', 's1'), 's1'), (c) => (c.spec.name = 'web')) },
  ]);
  t.true(!renameOnto.ok && renameOnto.error.code === 'name_conflict');
  mustCommit(store, 7, [{ op: 'delete', kind: 'service', id: 's2' }]);
  mustCommit(store, 8, [{ op: 'create', kind: 'service', object: newService('s3', 'web') }]);
  t.is(store.getByName('service', 'web')?.id, 's3');
});

function netObject(id: string, name: string) {
  return {
    id,
    spec: {
      name,
      labels: {},
      driver: 'overlay',
      driverOptions: {},
      ipam: { driver: 'default', configs: [] },
      internal: false,
      attachable: false,
      ingress: false,
    },
    allocation: null,
  };
}

function ids(tasks: Task[]): string[] {
  return tasks.map((x) => x.id).sort();
}

test('indexes follow creates, updates and deletes', (t) => {
  const store = new Store();
  mustCommit(store, 1, [
    { op: 'create', kind: 'node', object: newNode('n1', 'node-1') },
    { op: 'create', kind: 'node', object: newNode('n2', 'node-1') },
    { op: 'create', kind: 'service', object: newService('s1', 'web') },
    { op: 'create', kind: 'service', object: newService('s2', 'api') },
    { op: 'create', kind: 'task', object: newTask('t1', 's1', 1) },
    { op: 'create', kind: 'task', object: newTask('t2', 's1', 2, { nodeId: 'n1', state: 'assigned' }) },
    { op: 'create', kind: 'task', object: newTask('t3', 's2', 1, { nodeId: 'n1', state: 'assigned' }) },
  ]);
  t.deepEqual(store.nodesByHostname('node-1').map((n) => n.id).sort(), ['n1', 'n2']);
  t.deepEqual(ids(store.tasksByService('s1')), ['t1', 't2']);
  t.deepEqual(ids(store.tasksByNode('n1')), ['t2', 't3']);
  t.deepEqual(ids(store.tasksBySlot('s1', 1)), ['t1']);
  const t1 = requireObject(store.get('task', 't1'), 't1');
  const n2 = requireObject(store.get('node', 'n2'), 'n2');
  mustCommit(store, 2, [
    { op: 'update', kind: 'task', object: edit(t1, (c) => ((c.nodeId = 'n2'), (c.status.state = 'assigned'))) },
    { op: 'update', kind: 'node', object: edit(n2, (c) => (c.description.hostname = 'node-2')) },
    { op: 'create', kind: 'task', object: newTask('t4', 's1', 1, { nodeId: 'n2', state: 'assigned' }) },
    { op: 'delete', kind: 'task', id: 't3' },
  ]);
  t.deepEqual(ids(store.tasksByNode('n1')), ['t2']);
  t.deepEqual(ids(store.tasksByNode('n2')), ['t1', 't4']);
  t.deepEqual(ids(store.tasksBySlot('s1', 1)), ['t1', 't4']);
  t.deepEqual(ids(store.tasksByService('s2')), []);
  t.deepEqual(store.nodesByHostname('node-1').map((n) => n.id), ['n1']);
  t.deepEqual(store.nodesByHostname('node-2').map((n) => n.id), ['n2']);
  t.is(store.count('task'), 3);
});

test('a task status never moves backwards, and an assigned task never changes node', (t) => {
  const store = new Store();
  mustCommit(store, 1, [{ op: 'create', kind: 'task', object: newTask('t1', 's1', 1, { nodeId: 'n1', state: 'running' }) }]);
  const running = requireObject(store.get('task', 't1'), 't1');
  const back = commit(store, 2, [{ op: 'update', kind: 'task', object: edit(running, (c) => (c.status.state = 'starting')) }]);
  t.false(back.ok);
  if (!back.ok) {
    t.is(back.error.code, 'invalid');
    t.regex(back.error.message, /backwards from running to starting/);
  }
  const moved = commit(store, 3, [{ op: 'update', kind: 'task', object: edit(running, (c) => (c.nodeId = 'n2')) }]);
  t.true(!moved.ok && moved.error.code === 'invalid');
  const reslot = commit(store, 4, [{ op: 'update', kind: 'task', object: edit(running, (c) => (c.slot = 2)) }]);
  t.true(!reslot.ok && reslot.error.code === 'invalid');
  mustCommit(store, 5, [{ op: 'update', kind: 'task', object: edit(running, (c) => (c.status.message = 'still running')) }]);
  const same = requireObject(store.get('task', 't1'), 't1');
  mustCommit(store, 6, [{ op: 'update', kind: 'task', object: edit(same, (c) => (c.status.state = 'failed')) }]);
  t.is(store.get('task', 't1')?.status.state, 'failed');
  const badState = commit(store, 7, [
    { op: 'create', kind: 'task', object: edit(newTask('t2', 's1', 2), (c) => ((c.status as { state: string }).state = 'READY')) },
  ]);
  t.true(!badState.ok && badState.error.code === 'invalid');
});

test('an object written twice in one transaction is refused', (t) => {
  const store = new Store();
  const r = commit(store, 1, [
    { op: 'create', kind: 'service', object: newService('s1', 'web') },
    { op: 'delete', kind: 'service', id: 's1' },
  ]);
  t.true(!r.ok && r.error.code === 'invalid' && r.error.opIndex === 1);
  t.is(store.count('service'), 0);
});

test('undecodable or malformed entries are refused as invalid; empty entries only advance the index', (t) => {
  const store = new Store();
  const garbage = store.apply(1, new Uint8Array([0xc1, 0xff, 0x00]));
  t.true(!garbage.ok && garbage.error.code === 'invalid');
  const empty = store.apply(2, new Uint8Array(0));
  t.true(empty.ok);
  const unknownKind = store.apply(3, encodeTransaction({ timestampMs: 1, ops: [{ op: 'create', kind: 'pod', object: { id: 'x' } } as never] }));
  t.true(!unknownKind.ok && unknownKind.error.code === 'invalid');
  const noName = commit(store, 4, [{ op: 'create', kind: 'service', object: edit(newService('s1', 'x'), (c) => (c.spec.name = '')) }]);
  t.true(!noName.ok && noName.error.code === 'invalid');
  t.is(store.appliedIndex, 4);
});

test('the applied index strictly increases: re-applying an index is a host bug', (t) => {
  const store = new Store();
  mustCommit(store, 5, [{ op: 'create', kind: 'service', object: newService('s1', 'web') }]);
  t.throws(() => commit(store, 5, [{ op: 'create', kind: 'service', object: newService('s2', 'api') }]), { instanceOf: AssertionError });
  t.throws(() => store.apply(4, new Uint8Array(0)), { instanceOf: AssertionError });
  t.is(store.appliedIndex, 5);
  t.is(store.count('service'), 1);
});

test('objects read from the store are frozen, so a reader cannot change state behind Raft', (t) => {
  const store = new Store();
  mustCommit(store, 1, [{ op: 'create', kind: 'service', object: newService('s1', 'web') }]);
  const s = requireObject(store.get('service', 's1'), 's1');
  t.throws(() => {
    (s.spec.labels as Record<string, string>)['x'] = 'y';
  }, { instanceOf: TypeError });
  t.deepEqual(store.get('service', 's1')?.spec.labels, {});
});

test('specVersion moves only when the spec changes, whatever the key order', (t) => {
  const store = new Store();
  mustCommit(store, 1, [{ op: 'create', kind: 'service', object: newService('s1', 'web') }]);
  const s = requireObject(store.get('service', 's1'), 's1');
  const reordered = edit(s, (c) => {
    const { name, ...rest } = c.spec;
    c.spec = { ...rest, name };
    c.updateStatus = { state: 'completed', startedAtMs: 1, completedAtMs: 2, message: '' };
  });
  mustCommit(store, 2, [{ op: 'update', kind: 'service', object: reordered }]);
  const s2 = requireObject(store.get('service', 's1'), 's1');
  t.deepEqual(s2.specVersion, { index: 1 });
  mustCommit(store, 3, [{ op: 'update', kind: 'service', object: edit(s2, (c) => (c.spec.taskTemplate.containerSpec.image = 'nginx:2')) }]);
  t.deepEqual(store.get('service', 's1')?.specVersion, { index: 3 });
});

test('check() reports the verdict without changing the store', (t) => {
  const store = new Store();
  mustCommit(store, 1, [{ op: 'create', kind: 'service', object: newService('s1', 'web') }]);
  const snap = store.snapshot();
  t.is(store.check(encodeTransaction({ timestampMs: 5, ops: [{ op: 'create', kind: 'service', object: newService('s2', 'api') }] })), null);
  const err = store.check(encodeTransaction({ timestampMs: 5, ops: [{ op: 'create', kind: 'service', object: newService('s2', 'web') }] }));
  t.is(err?.code, 'name_conflict');
  t.deepEqual(store.snapshot(), snap);
  t.is(store.appliedIndex, 1);
});

test('view() gives a consistent read and refuses async callbacks', (t) => {
  const store = new Store();
  mustCommit(store, 1, [{ op: 'create', kind: 'service', object: newService('s1', 'web') }]);
  t.deepEqual(
    store.view((tx) => [tx.index, tx.list('service').length]),
    [1, 1],
  );
  t.throws(() => store.view(async () => 1), { instanceOf: AssertionError });
});
