// Rolling updates and rollback on the harness: batches of `parallelism` with `delay`, stop-first and start-first,
// the failure action (pause, rollback) when new tasks fail, and completion only after the monitor period.

import test from 'ava';
import type { Service, UpdateConfig } from '@swarm/store';
import { isCurrent } from '../src/index.js';
import { Harness } from './harness.js';

function setup(replicas: number, config: Partial<UpdateConfig> = {}): { h: Harness; web: string } {
  const h = new Harness();
  h.addNodes(3);
  const web = h.addService('web', (s) => {
    s.spec.mode = { replicated: { replicas } };
    s.spec.updateConfig = { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 5_000, maxFailureRatio: 0, order: 'stop-first', ...config };
    s.spec.rollbackConfig = { parallelism: 0, delayMs: 0, failureAction: 'pause', monitorMs: 1_000, maxFailureRatio: 0, order: 'stop-first' };
  });
  h.settle();
  return { h, web };
}

const image = (name: string) => (s: Service): void => {
  s.spec.taskTemplate.containerSpec.image = name;
};

/** Runs passes one at a time (agents in between), recording the live tasks' images per slot after each. */
function trace(h: Harness, web: string, passes: number, stepMs = 0): Array<Array<{ slot: number; image: string; state: string }>> {
  const out: Array<Array<{ slot: number; image: string; state: string }>> = [];
  for (let i = 0; i < passes; i++) {
    h.pass();
    h.playAgents();
    h.nowMs += stepMs;
    out.push(h.live(web).map((t) => ({ slot: t.slot, image: t.spec.containerSpec.image, state: t.status.state })));
  }
  return out;
}

test('stop-first, parallelism 1: one slot at a time, never two tasks running in a slot, completed after the monitor period', (t) => {
  const { h, web } = setup(3);
  h.updateService(web, image('nginx:2'));
  const steps = trace(h, web, 30);
  for (const step of steps) {
    const changing = new Set(step.filter((x) => x.image === 'nginx:2' && x.state !== 'running').map((x) => x.slot));
    t.true(changing.size <= 1, JSON.stringify(step));
  }
  // Stop-first: a new task is placed only once the old one in its slot stopped.
  for (const task of h.tasks(web).filter((x) => x.spec.containerSpec.image === 'nginx:2')) {
    const old = h.tasks(web).find((x) => x.slot === task.slot && x.spec.containerSpec.image !== 'nginx:2');
    t.is(old?.status.state, 'shutdown');
  }
  t.true(h.live(web).every((x) => x.spec.containerSpec.image === 'nginx:2' && x.status.state === 'running'));
  t.is(h.service(web).updateStatus?.state, 'updating', 'still monitoring the last task');
  h.nowMs += 5_000;
  h.settle();
  t.like(h.service(web).updateStatus, { state: 'completed', message: 'update completed' });
  t.is(h.pass(), 0);
});

test('parallelism 2 with a delay: two slots at a time, the next batch only after the delay', (t) => {
  const { h, web } = setup(4, { parallelism: 2, delayMs: 10_000 });
  h.updateService(web, image('nginx:2'));
  h.settle();
  const updated = () => h.live(web).filter((x) => x.spec.containerSpec.image === 'nginx:2' && x.status.state === 'running').length;
  t.is(updated(), 2);
  h.nowMs += 9_000;
  h.settle();
  t.is(updated(), 2, 'the delay is not over');
  h.nowMs += 1_000;
  h.settle();
  t.is(updated(), 4);
});

test('start-first: the new task runs before the old one of its slot is stopped', (t) => {
  const { h, web } = setup(2, { order: 'start-first' });
  h.updateService(web, image('nginx:2'));
  const steps = trace(h, web, 30);
  t.true(
    steps.some((step) => step.filter((x) => x.slot === 1 && x.state === 'running').length === 2),
    'slot 1 had the old and the new task running at once',
  );
  t.true(steps.every((step) => step.filter((x) => x.state === 'running').length >= 2), 'never fewer than 2 running');
  t.true(h.live(web).every((x) => x.spec.containerSpec.image === 'nginx:2'));
  t.is(h.live(web).length, 2);
});

test('failure action pause: the first failing new task pauses the update with its id; the other slots keep the old spec', (t) => {
  const { h, web } = setup(3);
  h.failingImages.add('broken:1');
  h.updateService(web, image('broken:1'));
  h.settle();
  const status = h.service(web).updateStatus;
  t.is(status?.state, 'paused');
  t.regex(status?.message ?? '', /^update paused due to failure or early termination of task task\d+$/);
  t.is(h.live(web).filter((x) => x.spec.containerSpec.image === 'nginx:1.27').length, 2);
});

test('failure action rollback: the previous spec comes back, rolled out with the rollback config, and the update ends rolled back', (t) => {
  const { h, web } = setup(3, { failureAction: 'rollback' });
  h.failingImages.add('broken:1');
  h.updateService(web, image('broken:1'));
  h.settle();
  t.is(h.service(web).updateStatus?.state, 'rollback_started');
  t.regex(h.service(web).updateStatus?.message ?? '', /^update rolled back due to failure or early termination of task/);
  t.is(h.service(web).spec.taskTemplate.containerSpec.image, 'nginx:1.27');
  t.is(h.service(web).previousSpec?.taskTemplate.containerSpec.image, 'broken:1');
  h.nowMs += 10_000; // past the failed task's restart delay and the rollback monitor
  h.settle();
  t.like(h.service(web).updateStatus, { state: 'rollback_completed', message: 'rollback completed' });
  const s = h.service(web);
  t.true(h.live(web).every((x) => isCurrent(x, s) && x.status.state === 'running'));
  t.is(h.live(web).length, 3);
});

test('a max failure ratio tolerates that share of failures', (t) => {
  const { h, web } = setup(4, { maxFailureRatio: 0.5, parallelism: 0, order: 'start-first' });
  h.updateService(web, image('nginx:2'));
  h.pass(); // all four new tasks made and assigned in one pass
  const fresh = h.live(web).filter((x) => x.spec.containerSpec.image === 'nginx:2');
  t.is(fresh.length, 4);
  h.end(fresh[0]?.id ?? '', 'failed'); // 1 of 4 fails: 0.25 <= 0.5
  h.settle();
  h.nowMs += 5_000; // the failed task's restart delay
  h.settle();
  t.is(h.service(web).updateStatus?.state, 'updating', 'its replacement is being monitored');
  h.nowMs += 5_000;
  h.settle();
  t.is(h.service(web).updateStatus?.state, 'completed');
  t.true(h.live(web).every((x) => x.spec.containerSpec.image === 'nginx:2' && x.status.state === 'running'));
});

test('an update that only scales does not roll anything out', (t) => {
  const { h, web } = setup(2);
  const before = h.live(web).map((x) => x.id);
  h.editService(web, (s) => {
    s.spec.mode = { replicated: { replicas: 3 } };
  });
  h.settle();
  t.deepEqual(h.live(web).map((x) => x.id).slice(0, 2), before);
  t.is(h.service(web).updateStatus, null);
});


test('a new endpoint spec alone (a published port added) rolls the tasks out again: their attachments come from it', (t) => {
  const { h, web } = setup(2);
  const before = h.live(web).map((x) => x.id);
  t.true(h.live(web).every((x) => isCurrent(x, h.service(web))));
  h.updateService(web, (s) => {
    s.spec.endpointSpec = { mode: 'vip', ports: [{ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' }] };
  });
  t.true(h.live(web).every((x) => !isCurrent(x, h.service(web))), 'outdated by the endpoint spec');
  h.nowMs += 10_000;
  for (let i = 0; i < 20; i++) {
    h.pass();
    h.playAgents();
    h.nowMs += 6_000;
  }
  const after = h.live(web);
  t.is(after.length, 2);
  t.true(after.every((x) => !before.includes(x.id) && isCurrent(x, h.service(web))), 'every task replaced');
});
