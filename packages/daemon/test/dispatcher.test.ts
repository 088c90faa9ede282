// The dispatcher's pure parts on a real Store: which tasks a node is told about, and which reported status
// changes become writes (own tasks only, never backwards, no rewrites of an unchanged status).

import test from 'ava';
import { Store, type Op, type TaskStatus } from '@swarm/store';
import { edit, mustCommit, newNode, newService, newTask, requireObject } from '@swarm/store/testing';
import { statusOps as statusOpsIn } from '@swarm/manager';
import { assignmentsFor, assignmentsSignature, batchOps, parseUpdates, type TaskStatusUpdate } from '../src/dispatcher.js';

/** The rule the dispatcher applies to one node's reports (the manager's statusOps), on the store as it is now. */
const statusOps = (store: Store, nodeId: string, updates: TaskStatusUpdate[]): Op[] => store.view((tx) => statusOpsIn(tx, nodeId, updates));

function status(state: TaskStatus['state'], err = ''): TaskStatus {
  return { state, timestampMs: 5_000, message: state, err, containerStatus: null, portStatus: [] };
}

function fixture(): Store {
  const store = new Store();
  mustCommit(store, 1, [
    { op: 'create', kind: 'node', object: newNode('n1', 'one') },
    { op: 'create', kind: 'node', object: newNode('n2', 'two') },
    { op: 'create', kind: 'service', object: newService('s1', 'web', 4) },
  ]);
  mustCommit(store, 2, [
    { op: 'create', kind: 'task', object: newTask('t1', 's1', 1, { nodeId: 'n1', state: 'assigned' }) },
    { op: 'create', kind: 'task', object: newTask('t2', 's1', 2, { nodeId: 'n1', state: 'running', desired: 'shutdown' }) },
    { op: 'create', kind: 'task', object: newTask('t3', 's1', 3, { nodeId: 'n1', state: 'failed', desired: 'shutdown' }) },
    { op: 'create', kind: 'task', object: newTask('t4', 's1', 4, { nodeId: 'n2', state: 'running' }) },
  ]);
  return store;
}

test('a node is told about tasks to run and live tasks to stop, not about dead tasks meant to stay dead', (t) => {
  const store = fixture();
  t.deepEqual(assignmentsFor(store, 'n1').map((x) => x.id), ['t1', 't2']);
  t.deepEqual(assignmentsFor(store, 'n2').map((x) => x.id), ['t4']);
  t.deepEqual(assignmentsFor(store, 'n3'), []);
  const before = assignmentsSignature(assignmentsFor(store, 'n1'));
  const t1 = requireObject(store.view((tx) => tx.get('task', 't1')), 't1');
  mustCommit(store, 3, [{ op: 'update', kind: 'task', object: edit(t1, (c) => (c.desiredState = 'shutdown')) }]);
  t.not(assignmentsSignature(assignmentsFor(store, 'n1')), before, 'a write to an assigned task changes the signature');
});

test("status reports become writes only for the reporting node's tasks, forwards, and when something changed", (t) => {
  const store = fixture();
  const ops = statusOps(store, 'n1', [
    { taskId: 't1', status: status('preparing') },
    { taskId: 't1', status: status('running') }, // the last report of a task in a batch wins
    { taskId: 't2', status: status('starting') }, // backwards from running: ignored
    { taskId: 't4', status: status('failed', 'boom') }, // n2's task: ignored
    { taskId: 'gone', status: status('running') },
  ]);
  t.deepEqual(
    ops.map((o: Op) => (o.op === 'update' && o.kind === 'task' ? [o.object.id, o.object.status.state] : null)),
    [['t1', 'running']],
  );
  mustCommit(store, 3, ops);
  t.deepEqual(statusOps(store, 'n1', [{ taskId: 't1', status: status('running') }]), [], 'an unchanged status is not rewritten');
  t.is(statusOps(store, 'n1', [{ taskId: 't2', status: status('shutdown') }]).length, 1);
});

test('a batch with several reports of one node writes each task once, with its latest status (one valid transaction)', (t) => {
  const store = fixture();
  const ops = batchOps(store, [
    { nodeId: 'n1', updates: [{ taskId: 't1', status: status('starting') }] },
    { nodeId: 'n2', updates: [{ taskId: 't4', status: status('failed', 'boom') }] },
    { nodeId: 'n1', updates: [{ taskId: 't1', status: status('failed', 'task: non-zero exit (3)') }] },
  ]);
  t.deepEqual(
    ops.map((o: Op) => (o.op === 'update' && o.kind === 'task' ? [o.object.id, o.object.status.state] : null)),
    [
      ['t1', 'failed'],
      ['t4', 'failed'],
    ],
  );
  mustCommit(store, 3, ops);
});

test('parseUpdates keeps well-formed updates and drops the rest', (t) => {
  const good = { taskId: 't1', status: status('running') };
  t.deepEqual(parseUpdates([good, { taskId: 1 }, { taskId: 't2', status: { state: 'dancing' } }, null]), [good]);
  t.deepEqual(parseUpdates('nope'), []);
});
