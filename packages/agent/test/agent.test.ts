// The agent against a scripted in-memory runtime: the order of reported states, never a backwards move, full-set
// semantics, idempotent assignments, start failures, shutdown, statuses() and the bounds on batches and starts.

import test, { type ExecutionContext } from 'ava';
import { canTransitionTask, type Task, type TaskState } from '@swarm/store';
import { newTask } from '@swarm/store/testing';
import { containerConfigFor, RuntimeError } from '@swarm/runtime';
import { pollUntil, silentLogger } from '@swarm/wire';
import { Agent, type AgentOptions, type TaskStatusUpdate } from '../src/index.js';
import { FakeRuntime } from './fake-runtime.js';

const NODE = 'node-1';

function task(id: string, opts: { state?: TaskState; desired?: TaskState; nodeId?: string; graceMs?: number } = {}): Task {
  const t = newTask(id, 'svc', 1, { nodeId: opts.nodeId ?? NODE, state: opts.state ?? 'assigned', desired: opts.desired ?? 'running' });
  t.spec.containerSpec.command = ['sleep', '30'];
  t.spec.containerSpec.stopGracePeriodMs = opts.graceMs ?? 10_000;
  return { ...t, meta: { version: { index: 1 }, createdAtMs: 0, updatedAtMs: 0 } };
}

/** The same task as the manager would send it next: a new desired state and/or status. */
function withState(t: Task, desired: TaskState, state?: TaskState): Task {
  return { ...t, desiredState: desired, status: state === undefined ? t.status : { ...t.status, state } };
}

interface Harness {
  agent: Agent;
  rt: FakeRuntime;
  updates: TaskStatusUpdate[];
  batches: number[];
  states(id: string): TaskState[];
  last(id: string): TaskStatusUpdate | undefined;
  until(what: string, probe: () => boolean): Promise<void>;
}

function harness(t: ExecutionContext, opts: Partial<AgentOptions> = {}): Harness {
  const rt = new FakeRuntime();
  const updates: TaskStatusUpdate[] = [];
  const batches: number[] = [];
  let clock = 1_000;
  const agent = new Agent({
    nodeId: NODE,
    runtime: rt,
    logger: silentLogger(),
    nowMs: () => ++clock,
    report: (batch) => {
      batches.push(batch.length);
      updates.push(...batch);
    },
    ...opts,
  });
  t.teardown(() => agent.close());
  const states = (id: string): TaskState[] => updates.filter((u) => u.taskId === id).map((u) => u.status.state);
  return {
    agent,
    rt,
    updates,
    batches,
    states,
    last: (id) => updates.filter((u) => u.taskId === id).at(-1),
    until: (what, probe) => pollUntil(what, () => probe(), { deadlineMs: 5_000, intervalMs: 2 }).then(() => undefined),
  };
}

/** No task's reported states ever go backwards, and timestamps never decrease. */
function assertMonotonic(t: ExecutionContext, updates: readonly TaskStatusUpdate[]): void {
  const last = new Map<string, TaskStatusUpdate>();
  for (const u of updates) {
    const prev = last.get(u.taskId);
    if (prev !== undefined) {
      t.true(canTransitionTask(prev.status.state, u.status.state), `${u.taskId}: ${prev.status.state} -> ${u.status.state}`);
      t.true(u.status.timestampMs >= prev.status.timestampMs);
    }
    last.set(u.taskId, u);
  }
}

test('a new task is reported accepted, preparing, starting, running, then complete on exit 0, and removed', async (t) => {
  const h = harness(t);
  h.agent.setAssignments([task('t1')]);
  await h.until('running', () => h.states('t1').includes('running'));
  t.deepEqual(h.states('t1'), ['accepted', 'preparing', 'starting', 'running']);
  const running = h.last('t1');
  t.is(running?.status.containerStatus?.pid, 1000);
  t.is(running?.status.message, 'started');
  h.rt.exit('t1', 0);
  await h.until('complete and removed', () => h.states('t1').includes('complete') && h.rt.count('remove:t1') === 1);
  t.deepEqual(h.states('t1'), ['accepted', 'preparing', 'starting', 'running', 'complete']);
  t.is(h.last('t1')?.status.err, '');
  t.deepEqual(h.rt.calls, ['prepare:t1', 'start:t1', 'remove:t1']);
  assertMonotonic(t, h.updates);
});

test('an OOM kill is FAILED with the exit code and says so', async (t) => {
  const h = harness(t);
  h.agent.setAssignments([task('t1')]);
  await h.until('running', () => h.states('t1').includes('running'));
  h.rt.exit('t1', 137, 'SIGKILL', true);
  await h.until('failed', () => h.states('t1').includes('failed'));
  t.is(h.last('t1')?.status.err, 'task: non-zero exit (137): OOM killed');
});

test('a non-zero exit is FAILED with Docker\'s error text and the exit code', async (t) => {
  const h = harness(t);
  h.agent.setAssignments([task('t1')]);
  await h.until('running', () => h.states('t1').includes('running'));
  h.rt.exit('t1', 2);
  await h.until('failed', () => h.states('t1').includes('failed'));
  t.is(h.last('t1')?.status.err, 'task: non-zero exit (2)');
  t.is(h.last('t1')?.status.containerStatus?.exitCode, 2);
  assertMonotonic(t, h.updates);
});

test('setAssignments is idempotent: the same set again, even during a slow start, starts a task once', async (t) => {
  const h = harness(t);
  let open: () => void = () => undefined;
  h.rt.scripts.set('t1', { startGate: new Promise((r) => (open = r)) });
  const tk = task('t1');
  for (let i = 0; i < 5; i++) h.agent.setAssignments([tk]);
  await h.until('starting', () => h.states('t1').includes('starting'));
  for (let i = 0; i < 5; i++) h.agent.setAssignments([withState(tk, 'running', 'starting')]);
  open();
  await h.until('running', () => h.states('t1').includes('running'));
  for (let i = 0; i < 5; i++) h.agent.setAssignments([withState(tk, 'running', 'running')]);
  await new Promise((r) => setImmediate(r));
  t.is(h.rt.count('prepare:t1'), 1);
  t.is(h.rt.count('start:t1'), 1);
  t.deepEqual(h.states('t1'), ['accepted', 'preparing', 'starting', 'running']);
});

test('a prepare failure REJECTS the task and a start failure FAILS it, each with the runtime\'s message', async (t) => {
  const h = harness(t);
  h.rt.scripts.set('bad-config', { prepareError: new RuntimeError('invalid_config', 'the process runtime runs the service\'s command; give one') });
  h.rt.scripts.set('no-exe', { startError: new RuntimeError('start_failed', 'starting container failed: exec: "nope": executable file not found in $PATH') });
  h.agent.setAssignments([task('bad-config'), task('no-exe')]);
  await h.until('both ended', () => h.states('bad-config').includes('rejected') && h.states('no-exe').includes('failed'));
  t.deepEqual(h.states('bad-config'), ['accepted', 'preparing', 'rejected']);
  t.regex(h.last('bad-config')?.status.err ?? '', /give one/);
  t.deepEqual(h.states('no-exe'), ['accepted', 'preparing', 'starting', 'failed']);
  t.regex(h.last('no-exe')?.status.err ?? '', /executable file not found in \$PATH/);
  await h.until('both removed', () => h.rt.count('remove:bad-config') === 1 && h.rt.count('remove:no-exe') === 1);
  // the manager's view catches up; nothing restarts them
  h.agent.setAssignments([withState(task('bad-config'), 'running', 'rejected'), withState(task('no-exe'), 'running', 'failed')]);
  await new Promise((r) => setImmediate(r));
  t.is(h.rt.count('prepare:no-exe'), 1);
  assertMonotonic(t, h.updates);
});

test('desired state shutdown stops a running task with the spec\'s grace period: SHUTDOWN, then removed', async (t) => {
  const h = harness(t);
  const tk = task('t1', { graceMs: 1_234 });
  h.agent.setAssignments([tk]);
  await h.until('running', () => h.states('t1').includes('running'));
  h.agent.setAssignments([withState(tk, 'shutdown', 'running')]);
  await h.until('shut down and removed', () => h.states('t1').includes('shutdown') && h.rt.count('remove:t1') === 1);
  t.is(h.rt.stopGraces.get('t1'), 1_234);
  t.deepEqual(h.states('t1'), ['accepted', 'preparing', 'starting', 'running', 'shutdown']);
  t.is(h.last('t1')?.status.err, '', 'a stop the agent asked for is no failure');
  t.is(h.last('t1')?.status.containerStatus?.exitCode, 143);
  h.agent.setAssignments([withState(tk, 'shutdown', 'shutdown')]);
  await new Promise((r) => setImmediate(r));
  t.is(h.rt.count('stop:t1'), 1);
  t.is(h.rt.count('start:t1'), 1);
});

test('full-set semantics: a task missing from the next set is stopped, reported SHUTDOWN and forgotten', async (t) => {
  const h = harness(t);
  h.agent.setAssignments([task('t1'), task('t2')]);
  await h.until('both running', () => h.states('t1').includes('running') && h.states('t2').includes('running'));
  h.agent.setAssignments([withState(task('t2'), 'running', 'running')]);
  await h.until('t1 stopped, removed and forgotten', () => h.rt.count('remove:t1') === 1 && h.agent.statuses().length === 1);
  t.is(h.states('t1').at(-1), 'shutdown');
  t.is(h.rt.count('stop:t2'), 0);
  t.deepEqual(
    h.agent.statuses().map((s) => s.taskId),
    ['t2'],
    'a forgotten task is no longer in statuses()',
  );
});

test('a task whose desired state is shutdown before it started is reported SHUTDOWN and never prepared', async (t) => {
  const h = harness(t);
  h.agent.setAssignments([task('t1', { desired: 'shutdown' })]);
  await h.until('shutdown', () => h.states('t1').includes('shutdown'));
  t.deepEqual(h.states('t1'), ['shutdown']);
  t.deepEqual(h.rt.calls, []);
});

test('desired shutdown while the task waits for or is in its start still ends it SHUTDOWN, never left running', async (t) => {
  const h = harness(t);
  let open: () => void = () => undefined;
  h.rt.scripts.set('t1', { startGate: new Promise((r) => (open = r)) });
  h.agent.setAssignments([task('t1')]);
  await h.until('starting', () => h.states('t1').includes('starting'));
  h.agent.setAssignments([withState(task('t1'), 'shutdown', 'starting')]);
  open();
  await h.until('shut down and removed', () => h.states('t1').includes('shutdown') && h.rt.count('remove:t1') === 1);
  t.is(h.rt.count('stop:t1'), 1);
  t.is(h.states('t1').at(-1), 'shutdown');
  assertMonotonic(t, h.updates);
});

test('a task terminal on the manager side is never (re)started; one the agent does not know past ACCEPTED fails as lost', async (t) => {
  const h = harness(t);
  h.agent.setAssignments([task('dead', { state: 'failed' }), task('done', { state: 'complete' }), task('ghost', { state: 'running' })]);
  await h.until('ghost reported', () => h.states('ghost').length > 0);
  await new Promise((r) => setImmediate(r));
  t.deepEqual(h.states('dead'), []);
  t.deepEqual(h.states('done'), []);
  t.deepEqual(h.states('ghost'), ['failed']);
  t.regex(h.last('ghost')?.status.err ?? '', /agent restarted/);
  t.deepEqual(h.rt.calls, []);
});

test('a task the manager ORPHANED while it ran is stopped without reporting a backwards SHUTDOWN', async (t) => {
  const h = harness(t);
  h.agent.setAssignments([task('t1')]);
  await h.until('running', () => h.states('t1').includes('running'));
  h.agent.setAssignments([withState(task('t1'), 'shutdown', 'orphaned')]);
  await h.until('stopped and removed', () => h.rt.count('remove:t1') === 1);
  t.is(h.rt.count('stop:t1'), 1);
  t.deepEqual(h.states('t1'), ['accepted', 'preparing', 'starting', 'running']);
  t.is(h.agent.statuses().find((s) => s.taskId === 't1')?.status.state, 'orphaned');
});

test('statuses() holds the latest status of every task the agent reported on', async (t) => {
  const h = harness(t);
  h.agent.setAssignments([task('a'), task('b'), task('c', { state: 'complete' })]);
  await h.until('a and b running', () => h.states('a').includes('running') && h.states('b').includes('running'));
  h.rt.exit('b', 1);
  await h.until('b failed', () => h.states('b').includes('failed'));
  const byId = new Map(h.agent.statuses().map((s) => [s.taskId, s.status]));
  t.is(byId.get('a')?.state, 'running');
  t.is(byId.get('b')?.state, 'failed');
  t.is(byId.get('b')?.err, 'task: non-zero exit (1)');
  t.false(byId.has('c'), 'a task the agent never touched has nothing to re-send');
});

test('reports come in bounded batches and starts are bounded by maxConcurrentStarts', async (t) => {
  const h = harness(t, { maxConcurrentStarts: 3, maxReportBatch: 50 });
  let open: () => void = () => undefined;
  const gate = new Promise<void>((r) => (open = r));
  const tasks = Array.from({ length: 120 }, (_, i) => task(`t${String(i).padStart(3, '0')}`));
  for (const tk of tasks) h.rt.scripts.set(tk.id, { startGate: gate });
  h.agent.setAssignments(tasks);
  await h.until('3 starts in flight', () => h.rt.startsInFlight === 3);
  open();
  await h.until('all running', () => tasks.every((tk) => h.states(tk.id).includes('running')));
  t.is(h.rt.maxStartsInFlight, 3);
  t.true(h.batches.every((n) => n > 0 && n <= 50), JSON.stringify(h.batches));
  t.true(h.batches.some((n) => n > 1), 'transitions of one turn travel together');
  t.is(h.updates.length, 120 * 4);
  assertMonotonic(t, h.updates);
});

test('assignments for another node are ignored; close stops reporting but leaves tasks running', async (t) => {
  const h = harness(t);
  h.agent.setAssignments([task('mine'), task('theirs', { nodeId: 'node-2' })]);
  await h.until('running', () => h.states('mine').includes('running'));
  t.deepEqual(h.states('theirs'), []);
  await h.agent.close();
  const before = h.updates.length;
  h.rt.exit('mine', 0);
  h.agent.setAssignments([task('later')]);
  await new Promise((r) => setImmediate(r));
  t.is(h.updates.length, before);
  t.is(h.rt.count('stop:mine'), 0);
  t.is(h.rt.count('prepare:later'), 0);
});

test('logs pass through to the runtime', async (t) => {
  const h = harness(t);
  h.agent.setAssignments([task('t1')]);
  await h.until('running', () => h.states('t1').includes('running'));
  const lines: string[] = [];
  for await (const l of h.agent.logs('t1', { tail: 10 })) lines.push(l.line);
  t.deepEqual(lines, ['log of t1']);
});

test('a runtime call that keeps failing is retried with the next assignment set, not in a loop', async (t) => {
  const h = harness(t);
  h.rt.scripts.set('t1', { removeError: new RuntimeError('invalid_state', 'disk trouble') });
  h.agent.setAssignments([task('t1')]);
  await h.until('running', () => h.states('t1').includes('running'));
  h.rt.exit('t1', 0);
  await h.until('remove tried', () => h.rt.count('remove:t1') === 1);
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  t.is(h.rt.count('remove:t1'), 1);
  h.agent.setAssignments([withState(task('t1'), 'running', 'complete')]);
  await h.until('remove tried again', () => h.rt.count('remove:t1') === 2);
  t.deepEqual(h.states('t1'), ['accepted', 'preparing', 'starting', 'running', 'complete']);
});

function withHealth(t: Task, retries = 3, startPeriodMs = 0): Task {
  const c = structuredClone(t);
  c.spec.containerSpec.healthcheck = { test: ['CMD-SHELL', 'check'], intervalMs: 5, timeoutMs: 1_000, startPeriodMs, retries };
  return c;
}

test('a health-checked task stays STARTING until its check first passes, then RUNNING', async (t) => {
  const h = harness(t);
  h.rt.execResults.set('t1', [{ exitCode: 1, output: 'not yet', timedOut: false }]);
  h.agent.setAssignments([withHealth(task('t1'))]);
  await h.until('running', () => h.last('t1')?.status.state === 'running');
  t.deepEqual(h.states('t1'), ['accepted', 'preparing', 'starting', 'running']);
  t.true(h.rt.calls.filter((c) => c === 'exec:t1:/bin/sh -c check').length >= 2, 'one failed check, then a pass');
});

test('retries failed checks in a row make the task unhealthy: stopped and reported FAILED with the reason', async (t) => {
  const h = harness(t);
  const fail = { exitCode: 1, output: 'db down', timedOut: false };
  h.rt.execResults.set('t1', [{ exitCode: 0, output: '', timedOut: false }, fail, fail, { exitCode: 0, output: '', timedOut: false }, fail, fail, fail]);
  h.agent.setAssignments([withHealth(task('t1'), 3)]);
  await h.until('failed', () => h.last('t1')?.status.state === 'failed');
  t.deepEqual(h.states('t1'), ['accepted', 'preparing', 'starting', 'running', 'failed']);
  t.is(h.last('t1')?.status.err, 'task: unhealthy container: health check failed 3 times in a row (last: exit 1: db down)');
  t.true(h.rt.calls.includes('stop:t1'));
  assertMonotonic(t, h.updates);
});

test('failed checks within the start period do not count', async (t) => {
  const h = harness(t);
  // The clock advances 1 ms per read: a start period of 1 hour covers every check here.
  const fail = { exitCode: 1, output: '', timedOut: false };
  // More failures scripted than the test waits for: every check it sees fails (the fake passes once they run out).
  h.rt.execResults.set('t1', Array<typeof fail>(1_000).fill(fail));
  h.agent.setAssignments([withHealth(task('t1'), 1, 3_600_000)]);
  await h.until('six checks', () => h.rt.calls.filter((c) => c.startsWith('exec:t1')).length >= 6);
  // With retries 1 the first counted failure would make it unhealthy: none counted, so it is still STARTING.
  t.deepEqual(h.states('t1'), ['accepted', 'preparing', 'starting']);
  t.false(h.rt.calls.includes('stop:t1'));
});

test('adopt: containers an earlier run left carry on (never started twice), ones meant to stop stop, strays are removed', async (t) => {
  const h = harness(t);
  const running = withState(task('t1'), 'running', 'running');
  const stopping = withState(task('t2'), 'shutdown', 'running');
  for (const id of ['t1', 't2', 't3']) {
    await h.rt.prepare({ ...containerConfigFor(task(id)) });
    await h.rt.start(id);
  }
  h.rt.calls.length = 0;
  h.agent.adopt(await h.rt.list());
  h.agent.setAssignments([running, stopping]);
  await h.until('t2 shut down and t3 removed', () => h.states('t2').includes('shutdown') && h.rt.count('remove:t3') === 1 && h.rt.count('remove:t2') === 1);
  t.deepEqual(h.states('t1'), [], 'nothing to report for a task that just carries on');
  t.is(h.rt.count('prepare:t1') + h.rt.count('start:t1'), 0);
  h.agent.setAssignments([running]);
  h.rt.exit('t1', 3);
  await h.until('t1 failed', () => h.states('t1').includes('failed'));
  t.is(h.last('t1')?.status.err, 'task: non-zero exit (3)');
  t.is(h.rt.count('prepare:t1') + h.rt.count('start:t1'), 0);
  assertMonotonic(t, h.updates);
});

test('volumesInUse names the volumes of the containers held; stopAll after close stops and removes each with its grace', async (t) => {
  const h = harness(t);
  const a = task('t1', { graceMs: 1_234 });
  a.spec.containerSpec.mounts = [{ type: 'volume', source: 'data', target: '/data', readOnly: false, tmpfsSizeBytes: 0 }, { type: 'tmpfs', source: '', target: '/tmp', readOnly: false, tmpfsSizeBytes: 0 }];
  h.agent.setAssignments([a]);
  await h.until('running', () => h.states('t1').includes('running'));
  t.deepEqual([...h.agent.volumesInUse()], ['data']);
  await h.agent.close();
  await h.agent.stopAll();
  t.is(h.rt.stopGraces.get('t1'), 1_234);
  t.is(h.rt.count('remove:t1'), 1);
  t.deepEqual([...h.agent.volumesInUse()], []);
});
