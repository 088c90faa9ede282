// Process identity and lock files without namespaces: a recorded pid whose start time no longer matches is
// never signalled, and a lock left by a dead holder is taken over while a live holder's is respected.

import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, isSwarmTask, readStartTime, signalVerified, spawnDetached, stopVerified, waitExited } from '../src/proc.js';
import { withLock } from '../src/state.js';

const dir = mkdtempSync(join(tmpdir(), 'swlab-p-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('a pid whose start time differs from the recorded one (pid reuse) is not signalled', async (t) => {
  const id = await spawnDetached(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], process.env, join(dir, 'a.log'));
  t.teardown(() => void stopVerified(id, 500, false));
  t.true(isAlive(id));
  t.false(signalVerified({ pid: id.pid, startTime: id.startTime + 1 }, 'SIGKILL', false), 'a stranger with the same pid is left alone');
  t.true(isAlive(id));
  t.true(signalVerified(id, 'SIGKILL', false));
  t.true(await waitExited(id, 5_000));
  t.false(signalVerified(id, 'SIGKILL', false), 'an exited process is not signalled again');
});

test('a detached process leads its own group, so a group stop reaches the helpers it started', async (t) => {
  // The leader starts a child in its group and prints the child's pid.
  const script = `const c = require('child_process').spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' }); console.log(c.pid); setTimeout(() => {}, 60000);`;
  const log = join(dir, 'g.log');
  const id = await spawnDetached(process.execPath, ['-e', script], process.env, log);
  let childPid = 0;
  const end = Date.now() + 5_000;
  while (childPid === 0 && Date.now() < end) {
    childPid = Number(readFileSync(log, 'utf8').trim()) || 0;
    await new Promise((r) => setTimeout(r, 20));
  }
  t.true(childPid > 0);
  const child = { pid: childPid, startTime: readStartTime(childPid) ?? -1 };
  t.teardown(() => void stopVerified(child, 500, false));
  t.true(await stopVerified(id, 2_000, true));
  t.true(await waitExited(child, 5_000), 'the helper in the group is gone too');
});

test('a process with the task marker in its environment is a swarm task; one without is not', async (t) => {
  const keep = ['-e', 'setTimeout(() => {}, 60000)'];
  const task = await spawnDetached(process.execPath, keep, { PATH: process.env['PATH'] ?? '', SWARM_TASK_ID: 'abc' }, join(dir, 't.log'));
  const other = await spawnDetached(process.execPath, keep, { PATH: process.env['PATH'] ?? '', NOT_SWARM_TASK_ID: 'abc' }, join(dir, 'o.log'));
  t.teardown(() => void stopVerified(task, 500, false));
  t.teardown(() => void stopVerified(other, 500, false));
  t.true(isSwarmTask(task.pid));
  t.false(isSwarmTask(other.pid));
  t.false(isSwarmTask(999_999_999), 'no such process');
});

test('a lock held by a dead process is taken over; a live holder makes the second caller wait', async (t) => {
  const path = join(dir, '.x.lock');
  const dead = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => dead.once('exit', r));
  writeFileSync(path, `${dead.pid ?? 0} 12345`);
  t.is(await withLock(path, async () => 'ran'), 'ran');
  t.false(existsSync(path), 'released');

  const order: string[] = [];
  let release: () => void = () => {};
  const first = withLock(path, async () => {
    order.push('first in');
    await new Promise<void>((r) => (release = r));
    order.push('first out');
  });
  await new Promise((r) => setTimeout(r, 50));
  const second = withLock(path, async () => {
    order.push('second in');
  });
  await new Promise((r) => setTimeout(r, 150));
  t.deepEqual(order, ['first in'], 'the second caller waits while the first holds the lock');
  release();
  await Promise.all([first, second]);
  t.deepEqual(order, ['first in', 'first out', 'second in']);
});
