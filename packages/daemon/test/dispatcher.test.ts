// The dispatcher's pure parts on a real Store: which tasks a node is told about, and which reported status
// changes become writes (own tasks only, never backwards, no rewrites of an unchanged status).

import test from 'ava';
import type { GossipHost } from '@swarm/gossip';
import { generateDataKey } from '@swarm/pki';
import type { TaskFiles } from '@swarm/runtime';
import { Store, type NewObject, type Op, type Secret, type TaskStatus } from '@swarm/store';
import { edit, mustCommit, newNode, newService, newTask, requireObject } from '@swarm/store/testing';
import { silentLogger } from '@swarm/wire';
import { statusOps as statusOpsIn } from '@swarm/manager';
import { assignmentsFor, assignmentsSignature, batchOps, Dispatcher, filesFor, parseUpdates, type TaskStatusUpdate } from '../src/dispatcher.js';
import { parseTaskFiles } from '../src/agent-session.js';
import { openSecret, sealSecret } from '../src/secret-store.js';

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
  // The ports a task holds: well-formed entries kept, the rest dropped, none when absent.
  const held = { name: '', protocol: 'tcp' as const, targetPort: 80, publishedPort: 8080, publishMode: 'host' as const };
  const [withPorts] = parseUpdates([{ taskId: 't3', status: { ...status('running'), portStatus: [held, { protocol: 'icmp' }, 7] } }]);
  t.deepEqual(withPorts?.status.portStatus, [held]);
  const [without] = parseUpdates([{ taskId: 't4', status: { ...status('running'), portStatus: undefined } }]);
  t.deepEqual(without?.status.portStatus, []);
});

// ---------------------------------------------------------------- secrets and configs with the assignments

const KEY = generateDataKey();

function withFiles(task: NewObject<'task'>, secrets: Array<[string, string]>, configs: Array<[string, string]> = []): NewObject<'task'> {
  return edit(task, (c) => {
    c.spec.containerSpec.secrets = secrets.map(([secretId, secretName]) => ({ secretId, secretName, target: secretName, uid: '0', gid: '0', mode: 0o444 }));
    c.spec.containerSpec.configs = configs.map(([configId, configName]) => ({ configId, configName, target: `/${configName}`, uid: '0', gid: '0', mode: 0o444 }));
  });
}

function filesFixture(): Store {
  const store = new Store();
  const secret = (id: string, name: string, text: string): Op => ({ op: 'create', kind: 'secret', object: { id, spec: { name, labels: {}, data: sealSecret(KEY, id, Buffer.from(text)) } } });
  mustCommit(store, 1, [
    { op: 'create', kind: 'node', object: newNode('n1', 'one') },
    { op: 'create', kind: 'node', object: newNode('n2', 'two') },
    { op: 'create', kind: 'node', object: newNode('n3', 'three') },
    { op: 'create', kind: 'service', object: newService('s1', 'web', 3) },
    secret('sa', 'db-password', 'hunter2'),
    secret('sb', 'api-key', 'abc123'),
    secret('sc', 'old-key', 'retired'),
    { op: 'create', kind: 'config', object: { id: 'ca', spec: { name: 'nginx.conf', labels: {}, data: Buffer.from('server {}') } } },
  ]);
  mustCommit(store, 2, [
    { op: 'create', kind: 'task', object: withFiles(newTask('t1', 's1', 1, { nodeId: 'n1', state: 'assigned' }), [['sa', 'db-password']], [['ca', 'nginx.conf']]) },
    // Being stopped: it needs nothing any more.
    { op: 'create', kind: 'task', object: withFiles(newTask('t2', 's1', 2, { nodeId: 'n1', state: 'running', desired: 'shutdown' }), [['sc', 'old-key']]) },
    { op: 'create', kind: 'task', object: withFiles(newTask('t3', 's1', 3, { nodeId: 'n2', state: 'running' }), [['sb', 'api-key']]) },
    { op: 'create', kind: 'task', object: newTask('t4', 's1', 4, { nodeId: 'n3', state: 'running' }) },
  ]);
  return store;
}

const text = (files: TaskFiles): string[] => [
  ...files.secrets.map((f) => `secret ${f.id}=${Buffer.from(f.data).toString()}`),
  ...files.configs.map((f) => `config ${f.id}=${Buffer.from(f.data).toString()}`),
];

test('filesFor: a node gets, opened, the secrets and configs of its tasks that may still start, and nothing else', (t) => {
  const store = filesFixture();
  const open = (s: Secret): Uint8Array => openSecret(KEY, s);
  t.deepEqual(text(filesFor(store, assignmentsFor(store, 'n1'), open, silentLogger())), ['secret sa=hunter2', 'config ca=server {}']);
  t.deepEqual(text(filesFor(store, assignmentsFor(store, 'n2'), open, silentLogger())), ['secret sb=abc123']);
  t.deepEqual(text(filesFor(store, assignmentsFor(store, 'n3'), open, silentLogger())), []);
  // A secret that does not open (another key) is left out, not sent half-made; the task then fails naming it.
  const wrong = generateDataKey();
  t.deepEqual(text(filesFor(store, assignmentsFor(store, 'n1'), (s) => openSecret(wrong, s), silentLogger())), ['config ca=server {}']);
});

test('the dispatcher pushes each node its own secrets only, with its assignments (local sessions on a real store)', (t) => {
  const store = filesFixture();
  const unusedHost = {} as GossipHost;
  const dispatcher = new Dispatcher({
    host: unusedHost,
    store,
    isLeader: () => true,
    leaderAddress: () => null,
    nodeOfPeer: () => null,
    propose: async () => 0,
    openSecret: (s) => openSecret(KEY, s),
    logger: silentLogger(),
  });
  const got = new Map<string, string[]>();
  const sets: Array<{ node: string; files: boolean }> = [];
  for (const nodeId of ['n1', 'n2', 'n3']) {
    const setAssignments = (_tasks: unknown, files?: TaskFiles): void => {
      sets.push({ node: nodeId, files: files !== undefined });
      if (files !== undefined) got.set(nodeId, text(files));
    };
    dispatcher.attachLocal(nodeId, { setAssignments, setIngress: () => undefined, statuses: () => [] }, () => undefined);
  }
  t.deepEqual(got.get('n1'), ['secret sa=hunter2', 'config ca=server {}']);
  t.deepEqual(got.get('n2'), ['secret sb=abc123']);
  t.deepEqual(got.get('n3'), []);
  // A task's status moving on is a new assignment set with the same files: they are not opened and sent again.
  const t3 = store.view((tx) => tx.get('task', 't3'));
  if (t3 === undefined) throw new Error('no t3');
  mustCommit(store, 3, [{ op: 'update', kind: 'task', object: { ...t3, status: { ...t3.status, message: 'still running' } } }]);
  dispatcher.sync();
  t.deepEqual(sets.filter((x) => x.node === 'n2'), [{ node: 'n2', files: true }, { node: 'n2', files: false }]);
  // The stored bytes are the sealed ones: the plaintext is nowhere in the store.
  const stored = store.view((tx) => tx.list('secret')).map((s) => Buffer.from(s.spec.data).toString('latin1')).join('');
  t.false(stored.includes('hunter2') || stored.includes('abc123'));
});

test('parseTaskFiles keeps well-formed entries and drops the rest', (t) => {
  const files = parseTaskFiles({ secrets: [{ id: 'a', data: new Uint8Array([1]) }, { id: 5, data: new Uint8Array([1]) }, { id: 'b', data: 'text' }], configs: 'nope' });
  t.deepEqual(files.secrets.map((f) => f.id), ['a']);
  t.deepEqual(files.configs, []);
  t.deepEqual(parseTaskFiles(undefined), { secrets: [], configs: [] });
});
