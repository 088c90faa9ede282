// Services on daemons in one process, end to end with real task processes (the process runtime): create spreads
// the replicas, logs come from every node, a killed task process is restarted in its slot, rm stops every process.

import test from 'ava';
import type { TaskDocument } from '@swarm/api';
import { eventually, form } from './local-cluster.js';

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
