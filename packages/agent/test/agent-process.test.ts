// The agent over the real process runtime: a task that exits 3 is FAILED with Docker's error text, and a
// long-running one is RUNNING until its desired state becomes shutdown, then SHUTDOWN with its process gone.

import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Task } from '@swarm/store';
import { newTask } from '@swarm/store/testing';
import { ProcessRuntime } from '@swarm/runtime';
import { pollUntil, silentLogger } from '@swarm/wire';
import { Agent, type TaskStatusUpdate } from '../src/index.js';

function task(id: string, argv: string[]): Task {
  const t = newTask(id, 'svc', 1, { nodeId: 'node-1', state: 'assigned' });
  t.spec.containerSpec.command = argv;
  t.spec.containerSpec.stopGracePeriodMs = 2_000;
  return { ...t, meta: { version: { index: 1 }, createdAtMs: 0, updatedAtMs: 0 } };
}

test('real processes: exit 3 fails the task; sleep runs until shut down', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'swarm-agent-'));
  const runtime = new ProcessRuntime({ rootDir: root, logger: silentLogger() });
  const updates: TaskStatusUpdate[] = [];
  const agent = new Agent({ nodeId: 'node-1', runtime, report: (u) => updates.push(...u), logger: silentLogger() });
  t.teardown(async () => {
    await agent.close();
    await runtime.close();
    rmSync(root, { recursive: true, force: true });
  });
  const last = (id: string): TaskStatusUpdate | undefined => updates.filter((u) => u.taskId === id).at(-1);
  const until = (what: string, probe: () => boolean): Promise<unknown> => pollUntil(what, probe, { deadlineMs: 10_000 });

  const crasher = task('crasher', ['sh', '-c', 'exit 3']);
  const sleeper = task('sleeper', ['sleep', '30']);
  agent.setAssignments([crasher, sleeper]);
  await until('crasher failed', () => last('crasher')?.status.state === 'failed');
  t.is(last('crasher')?.status.err, 'task: non-zero exit (3)');
  await until('sleeper running', () => last('sleeper')?.status.state === 'running');
  const pid = last('sleeper')?.status.containerStatus?.pid ?? 0;
  t.true(pid > 1);

  agent.setAssignments([{ ...sleeper, desiredState: 'shutdown', status: { ...sleeper.status, state: 'running' } }]);
  await until('sleeper shut down', () => last('sleeper')?.status.state === 'shutdown');
  t.is(last('sleeper')?.status.containerStatus?.exitCode, 143);
  t.throws(() => process.kill(pid, 0), undefined, 'the process is gone');
  await pollUntil('runtime empty', async () => (await runtime.list()).length === 0, { deadlineMs: 5_000 });
  t.deepEqual(
    updates.filter((u) => u.taskId === 'sleeper').map((u) => u.status.state),
    ['accepted', 'preparing', 'starting', 'running', 'shutdown'],
  );
});
