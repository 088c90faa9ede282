// Services on daemons in one process, end to end with real task processes (the process runtime): create spreads
// the replicas, logs come from every node, a killed task process is restarted in its slot, rm stops every process.

import test from 'ava';
import { ApiError, type ServiceSpecDocument, type TaskDocument } from '@swarm/api';
import { readHostLimits } from '@swarm/runtime';
import { cluster, eventually, form, freePort, joinAddr, local } from './local-cluster.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const running = (tasks: readonly TaskDocument[]): TaskDocument[] => tasks.filter((x) => x.DesiredState === 'running' && x.Status.State === 'running');

test('a replicated service runs its tasks as processes on every node, restarts a killed one, and rm stops them all', async (t) => {
  const { managers, workers } = await form(t, 1, 2);
  const [leader] = managers;
  if (leader === undefined) throw new Error('no manager');
  await eventually('3 ready nodes', 30_000, async () => ((await leader.client.listNodes()).filter((n) => n.Status.State === 'ready').length === 3 ? true : undefined));

  const { ID } = await leader.client.createService({
    Name: 'web',
    Mode: { Replicated: { Replicas: 4 } },
    TaskTemplate: {
      ContainerSpec: { Image: 'busybox', Command: ['sh', '-c', 'echo hello from $SWARM_TASK_ID; exec sleep 600'] },
      RestartPolicy: { Condition: 'any', Delay: 100_000_000 },
    },
  });
  const tasks = await eventually('4 running tasks', 30_000, async () => {
    const r = running(await leader.client.listTasks({ service: 'web' }));
    return r.length === 4 ? r : undefined;
  });
  const perNode = new Map<string, number>();
  for (const x of tasks) perNode.set(x.NodeID ?? '', (perNode.get(x.NodeID ?? '') ?? 0) + 1);
  t.deepEqual([...perNode.values()].sort(), [1, 1, 2]);
  t.deepEqual(tasks.map((x) => x.Slot).sort(), [1, 2, 3, 4]);
  for (const x of tasks) t.true(alive(x.Status.ContainerStatus?.PID ?? 0), `task ${x.Name} has a live process`);

  // Logs come from the worker that runs the task, through the manager.
  const lines: string[] = [];
  await eventually('a hello from each task', 15_000, async () => {
    lines.length = 0;
    await leader.client.serviceLogs('web', {}, (l) => lines.push(l.Line));
    return lines.filter((l) => l.startsWith('hello from')).length === 4 ? true : undefined;
  });
  t.deepEqual(lines.map((l) => l.replace(/[0-9a-z]{25}/, 'ID')).sort(), Array<string>(4).fill('hello from ID'));
  // One task's log by its id prefix (Docker's `service logs TASK`; `swarm task logs`).
  const one = tasks[0];
  if (one === undefined) throw new Error('no task');
  const own: string[] = [];
  await leader.client.serviceLogs(one.ID.slice(0, 12), {}, (l) => own.push(`${l.TaskID} ${l.Line}`));
  t.deepEqual(own, [`${one.ID} hello from ${one.ID}`]);

  // A task's process killed from outside: FAILED with the exit, then a new task in the same slot.
  const victim = tasks.find((x) => workers.some((w) => w.daemon.nodeId === x.NodeID));
  if (victim === undefined) throw new Error('no task on a worker');
  process.kill(victim.Status.ContainerStatus?.PID ?? 0, 'SIGKILL');
  const replaced = await eventually('the slot runs a new task', 30_000, async () => {
    const all = await leader.client.listTasks({ service: 'web' });
    const old = all.find((x) => x.ID === victim.ID);
    const now = running(all).find((x) => x.Slot === victim.Slot);
    return old?.Status.State === 'failed' && now !== undefined && now.ID !== victim.ID ? { old, now } : undefined;
  });
  t.regex(replaced.old.Status.Err ?? '', /137/);
  t.is(replaced.old.DesiredState, 'shutdown');

  // rm: every task process ends, and the tasks go.
  const pids = running(await leader.client.listTasks({ service: ID })).map((x) => x.Status.ContainerStatus?.PID ?? 0);
  await leader.client.removeService('web');
  await eventually('every task process gone', 30_000, async () => (pids.every((p) => !alive(p)) ? true : undefined));
  await eventually('no tasks left', 30_000, async () => ((await leader.client.listTasks({})).length === 0 ? true : undefined));
  t.pass();
});

test('service update rolls the new template out; a crashing update rolls itself back; rollback puts the previous spec back', async (t) => {
  const { managers } = await form(t, 1, 1);
  const [leader] = managers;
  if (leader === undefined) throw new Error('no manager');
  const c = leader.client;
  await eventually('2 ready nodes', 30_000, async () => ((await c.listNodes()).filter((n) => n.Status.State === 'ready').length === 2 ? true : undefined));
  const ms = 1_000_000;
  const spec = {
    Name: 'api',
    Mode: { Replicated: { Replicas: 3 } },
    TaskTemplate: {
      ContainerSpec: { Image: 'busybox', Command: ['sh', '-c', 'exec sleep 600'], Env: ['VERSION=1'] },
      RestartPolicy: { Condition: 'any' as const, Delay: 100 * ms },
    },
    UpdateConfig: { Parallelism: 2, Monitor: 300 * ms, FailureAction: 'rollback' as const },
    RollbackConfig: { Parallelism: 0, Monitor: 300 * ms },
  };
  await c.createService(spec);
  await eventually('3 running', 30_000, async () => (running(await c.listTasks({ service: 'api' })).length === 3 ? true : undefined));

  const v2 = { ...spec, TaskTemplate: { ...spec.TaskTemplate, ContainerSpec: { ...spec.TaskTemplate.ContainerSpec, Env: ['VERSION=2'] } } };
  await c.updateService('api', v2);
  const done = await eventually('update completed', 30_000, async () => {
    const s = await c.inspectService('api');
    return s.UpdateStatus?.State === 'completed' ? s : undefined;
  });
  t.is(done.UpdateStatus?.Message, 'update completed');
  const afterUpdate = running(await c.listTasks({ service: 'api' }));
  t.is(afterUpdate.length, 3);
  t.true(afterUpdate.every((x) => x.Spec.ContainerSpec.Env?.[0] === 'VERSION=2'));

  // v3 exits at once: the first new task fails, and the manager rolls back to v2 by itself.
  const v3 = { ...v2, TaskTemplate: { ...v2.TaskTemplate, ContainerSpec: { ...v2.TaskTemplate.ContainerSpec, Command: ['sh', '-c', 'exit 3'], Env: ['VERSION=3'] } } };
  await c.updateService('api', v3);
  const rolledBack = await eventually('rolled back', 60_000, async () => {
    const s = await c.inspectService('api');
    return s.UpdateStatus?.State === 'rollback_completed' ? s : undefined;
  });
  t.regex(rolledBack.UpdateStatus?.Message ?? '', /rollback completed/);
  t.deepEqual(rolledBack.Spec.TaskTemplate.ContainerSpec.Env, ['VERSION=2']);
  const failed = (await c.listTasks({ service: 'api' })).filter((x) => x.Status.State === 'failed');
  t.true(failed.length >= 1);
  t.regex(failed[0]?.Status.Err ?? '', /exit \(3\)|non-zero exit/);
  await eventually('3 running v2 tasks', 30_000, async () => {
    const r = running(await c.listTasks({ service: 'api' }));
    return r.length === 3 && r.every((x) => x.Spec.ContainerSpec.Env?.[0] === 'VERSION=2') ? true : undefined;
  });

  // A manual rollback: back to the spec before the last update (v3's failed update left v2 current, v3 previous).
  const before = await c.inspectService('api');
  await c.rollbackService('api', before.Spec, before.Version.Index);
  const manual = await c.inspectService('api');
  t.is(manual.UpdateStatus?.State, 'rollback_started');
  t.is(manual.UpdateStatus?.Message, 'manually requested rollback');
  t.deepEqual(manual.Spec.TaskTemplate.ContainerSpec.Env, ['VERSION=3']);
  await t.throwsAsync(c.rollbackService('api', manual.Spec, before.Version.Index), { message: /out of sequence/ });
});

test('a health-checked task is STARTING until its check passes, and an unhealthy one is FAILED and replaced', async (t) => {
  const { managers } = await form(t, 1, 0);
  const [leader] = managers;
  if (leader === undefined) throw new Error('no manager');
  const c = leader.client;
  const ms = 1_000_000;
  // Healthy once the task has written its marker file (after 1 s); a second service is never healthy.
  await c.createService({
    Name: 'slow',
    TaskTemplate: {
      ContainerSpec: {
        Image: 'busybox',
        Command: ['sh', '-c', 'sleep 1; touch ready; exec sleep 600'],
        Healthcheck: { Test: ['CMD-SHELL', 'test -f ready'], Interval: 100 * ms, Retries: 100 },
      },
    },
  });
  await eventually('starting', 10_000, async () => ((await c.listTasks({ service: 'slow' }))[0]?.Status.State === 'starting' ? true : undefined));
  await eventually('running once healthy', 10_000, async () => ((await c.listTasks({ service: 'slow' }))[0]?.Status.State === 'running' ? true : undefined));
  await c.createService({
    Name: 'sick',
    TaskTemplate: {
      ContainerSpec: { Image: 'busybox', Command: ['sleep', '600'], Healthcheck: { Test: ['CMD', 'false'], Interval: 100 * ms, Retries: 2 } },
      RestartPolicy: { Delay: 100 * ms },
    },
  });
  const failed = await eventually('an unhealthy task failed and a new one made', 15_000, async () => {
    const tasks = await c.listTasks({ service: 'sick' });
    const f = tasks.find((x) => x.Status.State === 'failed');
    return f !== undefined && tasks.some((x) => x.DesiredState === 'running' && x.ID !== f.ID) ? f : undefined;
  });
  t.is(failed.Status.Err, 'task: unhealthy container: health check failed 2 times in a row (last: exit 1)');
  await t.throwsAsync(
    c.createService({ Name: 'bad', TaskTemplate: { ContainerSpec: { Image: 'busybox', Healthcheck: { Test: ['CMD-SHELL'] } } } }),
    { message: /Healthcheck.Test: \["CMD-SHELL"\] is not/ },
  );
});

test('an agent that stops heartbeating is Down although gossip says alive, and its tasks run elsewhere', async (t) => {
  const c = await cluster(t);
  const manager = await c.start('mgr-1', await freePort(), { heartbeatGraceMs: 3_000 });
  const healthy = await c.start('wrk-1', await freePort(), { heartbeatPeriodMs: 300 });
  // Sends its hello, then nothing: a hung agent on a node whose gossip still answers.
  const hung = await c.start('wrk-2', await freePort(), { heartbeatPeriodMs: 3_600_000 });
  await manager.client.initSwarm(local);
  const token = (await manager.client.joinToken('worker')).Token;
  for (const w of [healthy, hung]) await w.client.joinSwarm({ remoteAddr: joinAddr(manager), token, ...local });
  await manager.client.createService({
    Name: 'web',
    Mode: { Replicated: { Replicas: 3 } },
    TaskTemplate: { ContainerSpec: { Image: 'busybox', Command: ['sleep', '600'] }, Placement: { Constraints: ['node.role==worker'] } },
  });
  const down = await eventually('the hung node Down', 30_000, async () => {
    const n = (await manager.client.listNodes()).find((x) => x.Description.Hostname === 'wrk-2');
    return n?.Status.State === 'down' ? n : undefined;
  });
  t.is(down.Status.Message, 'heartbeat failure');
  const seen = (await manager.client.listMembers()).find((m) => m.Hostname === 'wrk-2');
  t.is(seen?.State, 'alive', 'gossip still sees it alive: the verdict is the heartbeat\'s');
  await eventually('3 tasks running on wrk-1', 30_000, async () => {
    const tasks = running(await manager.client.listTasks({ service: 'web' }));
    return tasks.length === 3 && tasks.every((x) => x.NodeID === healthy.daemon.nodeId) ? true : undefined;
  });
  const healthyNode = (await manager.client.listNodes()).find((x) => x.Description.Hostname === 'wrk-1');
  t.is(healthyNode?.Status.State, 'ready', 'a node that heartbeats stays Ready');
});

test('published ports: an ingress port left 0 is picked from 30000-32767; a port in use by another service is a conflict naming it; dnsrr refuses ingress ports', async (t) => {
  const { managers } = await form(t, 1, 0);
  const c = managers[0]?.client;
  if (c === undefined) throw new Error('no manager');
  const spec = (name: string, ports: NonNullable<ServiceSpecDocument['EndpointSpec']>['Ports'], mode?: 'vip' | 'dnsrr'): ServiceSpecDocument => ({
    Name: name,
    Mode: { Replicated: { Replicas: 0 } },
    TaskTemplate: { ContainerSpec: { Image: 'busybox', Command: ['sleep', '600'] } },
    EndpointSpec: { ...(mode === undefined ? {} : { Mode: mode }), Ports: ports ?? [] },
  });
  const allocated = (name: string): Promise<NonNullable<Awaited<ReturnType<typeof c.inspectService>>['Endpoint']['Ports']>> =>
    eventually(`${name}'s ports allocated`, 15_000, async () => (await c.inspectService(name)).Endpoint.Ports);

  await c.createService(spec('web', [{ TargetPort: 80, PublishedPort: 8080 }]));
  await c.createService(spec('api', [{ TargetPort: 80 }]));
  t.deepEqual(await allocated('web'), [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' }]);
  const [picked] = await allocated('api');
  const dynamic = picked?.PublishedPort ?? 0;
  t.true(dynamic >= 30000 && dynamic <= 32767, `${dynamic} is in the dynamic range`);

  const conflict = async (doc: Promise<unknown>, message: RegExp): Promise<void> => {
    const err = await t.throwsAsync(doc, { instanceOf: ApiError });
    t.is(err?.code, 'conflict', err?.message);
    t.regex(err?.message ?? '', message);
  };
  await conflict(c.createService(spec('other', [{ TargetPort: 9000, PublishedPort: 8080 }])), /^EndpointSpec\.Ports\[0\]\.PublishedPort: port 8080\/tcp is already in use by service web/);
  await conflict(c.createService(spec('other', [{ TargetPort: 9000, PublishedPort: dynamic }])), new RegExp(`port ${dynamic}/tcp is already in use by service api`));
  await conflict(c.createService(spec('other', [{ TargetPort: 9000, PublishedPort: 8080, PublishMode: 'host' }])), /port 8080\/tcp is already in use by service web/);
  const api = await c.inspectService('api');
  await conflict(c.updateService(api.ID, { ...api.Spec, EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8080 }] } }, api.Version.Index), /in use by service web/);
  // The same number over udp, and host mode beside host mode, are no conflict.
  await c.createService(spec('dns', [{ TargetPort: 53, PublishedPort: 8080, Protocol: 'udp' }]));

  // An update that leaves the ports alone keeps them, the picked one too.
  await c.updateService(api.ID, { ...api.Spec, Labels: { tier: 'back' } }, api.Version.Index);
  await eventually('api updated', 15_000, async () => ((await c.inspectService('api')).Spec.Labels['tier'] === 'back' ? true : undefined));
  t.deepEqual(await allocated('api'), [picked]);

  const rr = await t.throwsAsync(c.createService(spec('rr', [{ TargetPort: 80 }], 'dnsrr')), { instanceOf: ApiError });
  t.is(rr?.code, 'invalid_argument');
  t.regex(rr?.message ?? '', /port published with ingress mode can't be used with dnsrr mode/);
  await c.createService(spec('rr', [{ TargetPort: 80, PublishedPort: 8081, PublishMode: 'host' }], 'dnsrr'));

  // Removing web frees 8080.
  await c.removeService('web');
  await c.createService(spec('web2', [{ TargetPort: 80, PublishedPort: 8080 }]));
  t.deepEqual((await allocated('web2')).map((p) => p.PublishedPort), [8080]);

  // A new port alone is rolled out (the tasks' attachments come from the endpoint spec), as Docker's; labels alone are not.
  const api2 = await c.inspectService('api');
  t.is(api2.UpdateStatus, undefined, 'the label change rolled nothing out');
  await c.updateService(api2.ID, { ...api2.Spec, EndpointSpec: { Ports: [{ TargetPort: 80 }, { TargetPort: 443, PublishedPort: 8443 }] } }, api2.Version.Index);
  t.regex((await c.inspectService('api')).UpdateStatus?.State ?? '', /^(updating|completed)$/, 'an update was started');
});

test('ulimits: the task\'s processes carry them and inspect shows them; a bad one is refused naming the field', async (t) => {
  const { managers } = await form(t, 1, 0);
  const [leader] = managers;
  if (leader === undefined) throw new Error('no manager');
  const c = leader.client;
  const Ulimits = [{ Name: 'nofile', Soft: 100, Hard: 200 }];
  await c.createService({ Name: 'limited', TaskTemplate: { ContainerSpec: { Image: 'busybox', Command: ['sh', '-c', 'echo limits $(ulimit -Sn):$(ulimit -Hn); exec sleep 600'], Ulimits } } });
  t.deepEqual((await c.inspectService('limited')).Spec.TaskTemplate.ContainerSpec.Ulimits, Ulimits);
  await eventually('the limits in the log', 15_000, async () => {
    const lines: string[] = [];
    await c.serviceLogs('limited', {}, (l) => lines.push(l.Line));
    return lines.includes('limits 100:200') ? true : undefined;
  });
  await t.throwsAsync(c.createService({ Name: 'bad', TaskTemplate: { ContainerSpec: { Image: 'busybox', Ulimits: [{ Name: 'nofile', Soft: 300, Hard: 200 }] } } }), {
    instanceOf: ApiError,
    message: 'TaskTemplate.ContainerSpec.Ulimits[0].Soft: the soft limit 300 is above the hard limit 200',
  });
});

// Only a daemon that cannot raise its own nofile hard limit refuses a task above it: elsewhere a skip says so
// (the runtime's tests check the refusal on any machine, with the limits given to the runtime).
const host = readHostLimits();
const own = host.hard.get('nofile') ?? -1;
const refusable = !host.canRaise && own !== -1;
(refusable ? test : test.skip)(`ulimits: a hard limit above the daemon's own fails the task naming the ulimit${refusable ? '' : ' [skipped: this daemon may raise its nofile limit]'}`, async (t) => {
  const { managers } = await form(t, 1, 0);
  const c = managers[0]?.client;
  if (c === undefined) throw new Error('no manager');
  await c.createService({ Name: 'greedy', TaskTemplate: { ContainerSpec: { Image: 'busybox', Command: ['sleep', '600'], Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: own + 1 }] }, RestartPolicy: { Condition: 'none' } } });
  const refused = await eventually('the task refused', 15_000, async () => (await c.listTasks({ service: 'greedy' })).find((x) => x.Status.Err !== undefined));
  t.is(refused.Status.State, 'rejected');
  t.regex(refused.Status.Err ?? '', new RegExp(`^ulimit nofile: the hard limit ${own + 1} is above the daemon's own hard limit on this node \\(${own}\\)`));
});
