// Services on a real lab (3 managers + 2 workers, real daemons in namespaces, tasks as runc containers of the
// lab registry's busybox image): a replicated service spreads evenly, `service ps` and `service logs` see every
// task, a killed node's tasks come back on the others, a crashed daemon's containers are adopted or cleaned (never
// duplicated), drain moves tasks off a node, constraints and global mode place where they should, scale and rm.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pollUntil } from '@swarm/wire';
import { cliLab, labSerial, missingPrerequisite } from './prerequisites.js';

// Apart from the other lab tests' subnets: ava runs test files at the same time.
const SUBNET = '10.251.38.0/24';

const missing = missingPrerequisite({ tools: [['ip', '-V'], ['nft', '--version'], ['runc', '--version'], ['conmon', '--version'], ['docker-registry', '--version']], needCli: true });
const serial = labSerial(missing);

const { name, root, swarm, on } = cliLab('sv', missing);

interface TaskRow {
  ID: string;
  Name: string;
  Node: string;
  DesiredState: string;
  CurrentState: string;
  Error: string;
}

async function ps(service: string, node = 'node-1'): Promise<TaskRow[]> {
  const res = await on(node, ['service', 'ps', '--format', 'json', service], 30_000);
  if (res.code !== 0) throw new Error(`service ps ${service}: ${res.stderr}`);
  return res.stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as TaskRow);
}

/** Hostname -> number of running tasks that should run. */
async function placement(service: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const r of await ps(service)) {
    if (r.DesiredState === 'Running' && r.CurrentState.startsWith('Running')) counts[r.Node] = (counts[r.Node] ?? 0) + 1;
  }
  return counts;
}

const eventually = <T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> =>
  pollUntil(what, check, { deadlineMs: timeoutMs, intervalMs: 300, retryErrors: true });

const total = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0);

serial('a 6-replica service spreads 2,1,1,1,1 over 5 nodes; service ls, ps and logs see it', async (t) => {
  const up = await swarm(['lab', 'up', '--name', name, '--nodes', '5', '--managers', '3', '--subnet', SUBNET], 240_000);
  t.is(up.code, 0, up.stderr);
  const create = await on('node-2', ['service', 'create', '--name', 'web', '--replicas', '6', 'busybox', 'sh', '-c', 'echo hello from $SWARM_TASK_ID; exec sleep 600']);
  t.is(create.code, 0, create.stderr);
  t.regex(create.stdout, /^[0-9a-z]{25}\n/);
  t.regex(create.stdout, /verify: Service converged\n$/);
  const counts = await placement('web');
  t.is(total(counts), 6);
  t.deepEqual(Object.values(counts).sort(), [1, 1, 1, 1, 2], JSON.stringify(counts));

  const ls = await on('node-3', ['service', 'ls', '--format', 'json']);
  t.like(JSON.parse(ls.stdout.trim()), { Name: 'web', Mode: 'replicated', Replicas: '6/6', Image: 'busybox:latest' });
  const logs = await eventually('six tasks logged', 30_000, async () => {
    const res = await on('node-1', ['service', 'logs', 'web']);
    const lines = res.stdout.trim().split('\n').filter((l) => l.includes('hello from'));
    return lines.length === 6 ? lines : undefined;
  });
  t.regex(logs[0] ?? '', /^web\.\d\.[0-9a-z]{12}@node-\d\s+\| hello from [0-9a-z]{25}$/);
});

serial('kill -9 a worker: its tasks are replaced on the other nodes, 6 running again', async (t) => {
  const before = await placement('web');
  const victim = Object.keys(before).find((h) => h === 'node-4' || h === 'node-5') ?? 'node-5';
  t.is((await swarm(['lab', 'kill', `${name}/${victim}`])).code, 0);
  const after = await eventually('6 running without the killed node', 60_000, async () => {
    const c = await placement('web');
    return total(c) === 6 && c[victim] === undefined ? c : undefined;
  });
  t.is(total(after), 6);
  const orphaned = (await ps('web')).filter((r) => r.Node === victim && r.DesiredState !== 'Running');
  t.true(orphaned.length >= 1, 'the dead node\'s tasks stay in the history, no longer desired');
  t.is((await swarm(['lab', 'restart', `${name}/${victim}`])).code, 0);
  // Beyond Swarm: the node that came back gets its share again (the rebalancer), never with fewer than 6 running.
  const rebalanced = await eventually('the restarted node runs a task again', 60_000, async () => {
    const c = await placement('web');
    return c[victim] !== undefined && total(c) === 6 && Object.values(c).every((n) => n <= 2) ? c : undefined;
  });
  t.deepEqual(Object.values(rebalanced).sort(), [1, 1, 1, 1, 2]);
});

serial('the daemon alone crashes: its containers run on, and the restarted daemon adopts or removes them, never a duplicate', async (t) => {
  const victim = 'node-4';
  const state = JSON.parse(readFileSync(join(root, name, 'state.json'), 'utf8')) as { hosts: Array<{ name: string; dataDir: string; process: { pid?: number } }> };
  const host = state.hosts.find((h) => h.name === victim);
  if (host?.process.pid === undefined) throw new Error(`no daemon pid for ${victim}`);
  const containers = (): string[] => {
    const out = execFileSync('runc', ['--root', join(host.dataDir, 'runc', 'state'), 'list', '--format', 'json'], { encoding: 'utf8' }).trim();
    const list = (out === '' || out === 'null' ? [] : JSON.parse(out)) as Array<{ id: string; status: string }>;
    return list.filter((c) => c.status === 'running').map((c) => c.id);
  };
  const before = containers();
  t.true(before.length >= 1, `${victim} runs a container`);
  process.kill(host.process.pid, 'SIGKILL'); // the daemon only: conmon keeps its containers
  await new Promise((r) => setTimeout(r, 500));
  t.deepEqual(containers().sort(), before.sort(), 'the containers outlive their daemon');
  const restart = await swarm(['lab', 'restart', `${name}/${victim}`]);
  t.is(restart.code, 0, restart.stderr);
  // Adopted (the manager still counts them) or, if the node was declared down meanwhile, stopped and replaced:
  // either way the node runs exactly the containers of the tasks it is given, and the service has 6.
  const settled = await eventually('6 running and the node runs exactly its tasks', 60_000, async () => {
    const mine = (await ps('web')).filter((r) => r.Node === victim && r.DesiredState === 'Running' && r.CurrentState.startsWith('Running'));
    const c = await placement('web');
    const running = containers();
    return total(c) === 6 && running.length === mine.length && mine.every((r) => running.some((id) => id.startsWith(r.ID))) ? { mine, running } : undefined;
  });
  t.is(settled.running.length, settled.mine.length);
});

serial('drain moves every task off a node; active takes new ones again', async (t) => {
  t.is((await on('node-1', ['node', 'update', '--availability', 'drain', 'node-3'])).code, 0);
  const drained = await eventually('no task on node-3', 60_000, async () => {
    const c = await placement('web');
    return total(c) === 6 && c['node-3'] === undefined ? c : undefined;
  });
  t.is(total(drained), 6);
  t.is((await on('node-1', ['node', 'update', '--availability', 'active', 'node-3'])).code, 0);
});

serial('constraints place only where they hold; an unsatisfiable one stays pending with the reason', async (t) => {
  const workers = await on('node-1', ['service', 'create', '--name', 'on-workers', '--replicas', '4', '--constraint', 'node.role==worker', 'busybox', 'sleep', '600']);
  t.is(workers.code, 0, workers.stderr);
  const c = await placement('on-workers');
  t.deepEqual(Object.keys(c).sort(), ['node-4', 'node-5']);

  const none = await on('node-1', ['service', 'create', '--detach', '--name', 'nowhere', '--constraint', 'node.labels.zone==mars', 'busybox', 'sleep', '600']);
  t.is(none.code, 0, none.stderr);
  const pending = await eventually('a pending task with a reason', 30_000, async () => {
    const rows = await ps('nowhere');
    return rows.find((r) => r.CurrentState.startsWith('Pending') && r.Error.includes('no suitable node'));
  });
  t.regex(pending.Error, /scheduling constraints not satisfied on 5 nodes/);
  // A node that gets the label takes the task.
  t.is((await on('node-1', ['node', 'update', '--label-add', 'zone=mars', 'node-2'])).code, 0);
  const placed = await eventually('placed on node-2', 30_000, async () => ((await placement('nowhere'))['node-2'] === 1 ? true : undefined));
  t.true(placed);
  t.is((await on('node-1', ['service', 'rm', 'on-workers', 'nowhere'])).code, 0);
});

serial('service update rolls out in batches, rollback puts the previous spec back, a crashing update rolls itself back', async (t) => {
  const create = await on('node-1', [
    'service', 'create', '--name', 'api', '--replicas', '4', '--update-parallelism', '2', '--update-monitor', '1s',
    '--update-failure-action', 'rollback', '--rollback-monitor', '1s', '--restart-delay', '1s', 'busybox', 'sleep', '600',
  ]);
  t.is(create.code, 0, create.stderr);
  const update = await on('node-2', ['service', 'update', '--env-add', 'VERSION=2', 'api']);
  t.is(update.code, 0, update.stderr);
  t.regex(update.stdout, /^api\n/);
  t.regex(update.stdout, /update: update completed; 4 out of 4 tasks\n/);
  t.regex(update.stdout, /verify: Service converged\n$/);
  const inspect = JSON.parse((await on('node-1', ['service', 'inspect', 'api'])).stdout) as Array<{ Spec: { TaskTemplate: { ContainerSpec: { Env?: string[] } } } }>;
  t.deepEqual(inspect[0]?.Spec.TaskTemplate.ContainerSpec.Env, ['VERSION=2']);
  t.is((await ps('api')).filter((r) => r.DesiredState === 'Shutdown').length, 4, 'every old task replaced');

  const rollback = await on('node-3', ['service', 'rollback', 'api']);
  t.is(rollback.code, 0, rollback.stderr);
  t.regex(rollback.stdout, /rollback: manually requested rollback/);
  t.regex(rollback.stdout, /rollback: rollback completed; 4 out of 4 tasks\n/);
  const back = JSON.parse((await on('node-1', ['service', 'inspect', 'api'])).stdout) as Array<{ Spec: { TaskTemplate: { ContainerSpec: { Env?: string[] } } } }>;
  t.is(back[0]?.Spec.TaskTemplate.ContainerSpec.Env, undefined);

  // `false` exits 1 at once: the first batch fails, the manager rolls back by itself, and the CLI says so.
  const crash = await on('node-1', ['service', 'update', '--args', 'false', 'api']);
  t.is(crash.code, 1);
  t.regex(crash.stdout, /update rolled back due to failure or early termination of task [0-9a-z]{25}/);
  t.regex(crash.stderr, /^swarm: service api rolled back: rollback completed\n$/);
  const rows = await ps('api');
  t.is(rows.filter((r) => r.DesiredState === 'Running' && r.CurrentState.startsWith('Running')).length, 4);
  t.true(rows.some((r) => r.CurrentState.startsWith('Failed') && r.Error.includes('non-zero exit')), JSON.stringify(rows));
  t.is((await on('node-1', ['service', 'rm', 'api'])).code, 0);
});

serial('health checks: a task is RUNNING once healthy; an update whose check fails rolls back by itself', async (t) => {
  const create = await on('node-1', [
    'service', 'create', '--name', 'hc', '--replicas', '2', '--health-cmd', 'test -n "$SWARM_TASK_ID"', '--health-interval', '300ms',
    '--health-retries', '2', '--update-failure-action', 'rollback', '--update-monitor', '2s', '--rollback-monitor', '1s', 'busybox', 'sleep', '600',
  ]);
  t.is(create.code, 0, create.stderr);
  t.regex(create.stdout, /verify: Service converged\n$/);
  const broken = await on('node-2', ['service', 'update', '--health-cmd', 'echo no database; exit 1', 'hc']);
  t.is(broken.code, 1, broken.stdout);
  t.regex(broken.stderr, /service hc rolled back/);
  const rows = await ps('hc');
  t.true(
    rows.some((r) => r.CurrentState.startsWith('Failed') && r.Error.includes('unhealthy container: health check failed 2 times in a row (last: exit 1: no database)')),
    JSON.stringify(rows),
  );
  t.is(rows.filter((r) => r.DesiredState === 'Running' && r.CurrentState.startsWith('Running')).length, 2);
  t.is((await on('node-1', ['service', 'rm', 'hc'])).code, 0);
});

serial('kill -9 the leader during a rolling update: a new leader finishes the update', async (t) => {
  const create = await on('node-2', ['service', 'create', '--name', 'roll', '--replicas', '4', '--update-delay', '1s', '--update-monitor', '500ms', 'busybox', 'sleep', '600']);
  t.is(create.code, 0, create.stderr);
  const nodes = (await on('node-2', ['node', 'ls', '--format', 'json'])).stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { Hostname: string; ManagerStatus: string });
  const leader = nodes.find((n) => n.ManagerStatus === 'Leader')?.Hostname ?? '';
  t.regex(leader, /^node-[123]$/);
  const other = ['node-1', 'node-2', 'node-3'].find((h) => h !== leader) ?? 'node-2';
  t.is((await on(other, ['service', 'update', '--detach', '--env-add', 'VERSION=2', 'roll'])).code, 0);
  type Inspected = Array<{ UpdateStatus?: { State: string }; Spec: { TaskTemplate: { ContainerSpec: { Env?: string[] } } } }>;
  // One slot updated (parallelism 1, a 1 s delay between slots): the update is under way when the leader dies.
  await eventually('a first task updated', 60_000, async () => ((await ps('roll', other)).filter((r) => r.DesiredState === 'Shutdown').length >= 1 ? true : undefined));
  t.is((await swarm(['lab', 'kill', `${name}/${leader}`])).code, 0);
  const done = await eventually('the update completed under a new leader', 120_000, async () => {
    const res = await on(other, ['service', 'inspect', 'roll'], 20_000);
    if (res.code !== 0) return undefined;
    const s = (JSON.parse(res.stdout) as Inspected)[0];
    return s?.UpdateStatus?.State === 'completed' ? s : undefined;
  });
  t.deepEqual(done.Spec.TaskTemplate.ContainerSpec.Env, ['VERSION=2']);
  await eventually('4 running', 60_000, async () => {
    const rows = (await ps('roll', other)).filter((r) => r.DesiredState === 'Running' && r.CurrentState.startsWith('Running') && r.Node !== leader);
    return rows.length === 4 ? true : undefined;
  });
  t.is((await swarm(['lab', 'restart', `${name}/${leader}`])).code, 0);
  t.is((await on(other, ['service', 'rm', 'roll'])).code, 0);
  await eventually('every node ready again', 60_000, async () => {
    const res = await on(leader, ['node', 'ls', '--format', 'json'], 20_000);
    const rows = res.stdout.trim().split('\n').filter((l) => l !== '');
    return res.code === 0 && rows.length === 5 && rows.every((l) => (JSON.parse(l) as { Status: string }).Status === 'Ready') ? true : undefined;
  });
});

serial('global mode runs one task per node; scale and rm', async (t) => {
  const global = await on('node-2', ['service', 'create', '--name', 'agent', '--mode', 'global', 'busybox', 'sleep', '600']);
  t.is(global.code, 0, global.stderr);
  // A node that came back moments ago (the leader restarted in the step before) may get its task a little later.
  const c = await eventually('a global task running on every node', 30_000, async () => {
    const p = await placement('agent');
    return Object.keys(p).length === 5 ? p : undefined;
  });
  t.deepEqual(Object.keys(c).sort(), ['node-1', 'node-2', 'node-3', 'node-4', 'node-5']);
  t.true(Object.values(c).every((n) => n === 1));

  const scale = await on('node-3', ['service', 'scale', 'web=2']);
  t.is(scale.code, 0, scale.stderr);
  t.regex(scale.stdout, /^web scaled to 2\n/);
  t.is(total(await placement('web')), 2);
  const rm = await on('node-1', ['service', 'rm', 'web', 'agent']);
  t.is(rm.code, 0, rm.stderr);
  const ls = await on('node-1', ['service', 'ls', '-q']);
  t.is(ls.stdout.trim(), '');
});
