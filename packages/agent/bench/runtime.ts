// `scripts/bench runtime`: the node side of a task's start on the real runc runtime, with the image already
// on the node (a warm node). Latency: the agent gets an assignment, and we time until it reports RUNNING, one
// task at a time, against the floor of plain `runc run --detach` of a bundle made the same way, alternating the
// two. Density: N sleeping tasks started on one node at once: time to all RUNNING, the daemon-side memory per
// running task (this process's RSS and JS heap growth), and what conmon, the per-container monitor, costs.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { newTask } from '@swarm/store/testing';
import type { Task, TaskStatusUpdate } from '@swarm/store';
import { buildLabImages, ImageStore, LocalVolumes, RuncRuntime, containerConfigFor } from '@swarm/runtime';
import { silentLogger, writeDocBlock } from '@swarm/wire';
import { Agent } from '../src/index.js';

const NODE = 'benchnode';
const intEnv = (name: string, dflt: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  if (!/^\d+$/.test(raw)) throw new Error(`${name}=${raw}: a whole number`);
  return Number(raw);
};
const LATENCY_TASKS = intEnv('BENCH_TASKS', 100);
const DENSITY_TASKS = intEnv('BENCH_DENSITY', 500);
const DOC = process.env['BENCH_DOC'] ?? 'docs/benchmarks.md';

const say = (s: string): void => void process.stderr.write(`\u001b[1m${s}\u001b[0m\n`);
const pct = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
};
const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const rssKiB = (pid: number | 'self'): number => {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
};

function task(i: number, argv: string[]): Task {
  const t = newTask(`bench${process.pid}x${i}`, 'bench', i, { nodeId: NODE, state: 'assigned', desired: 'running' });
  t.spec.containerSpec.image = 'busybox';
  t.spec.containerSpec.command = argv;
  t.spec.containerSpec.stopGracePeriodMs = 0;
  return { ...t, meta: { version: { index: 1 }, createdAtMs: 0, updatedAtMs: 0 } };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the runtime benchmark runs containers: run it as root');
  const root = mkdtempSync('/var/tmp/swarm-bench-runtime-');
  const images = new ImageStore({ rootDir: join(root, 'images') });
  await buildLabImages(images);
  await images.ensure('busybox'); // warm: layers unpacked before anything is timed
  const runtime = new RuncRuntime({ rootDir: join(root, 'runc'), images, volumes: new LocalVolumes({ rootDir: join(root, 'volumes') }), logger: silentLogger() });
  await runtime.recover();
  const waiters = new Map<string, (atMs: number) => void>();
  const agent = new Agent({
    nodeId: NODE,
    runtime,
    logger: silentLogger(),
    maxConcurrentStarts: 8,
    report: (batch: TaskStatusUpdate[]) => {
      const now = performance.now();
      for (const u of batch) if (u.status.state === 'running') waiters.get(u.taskId)?.(now);
    },
  });
  const floorRoot = join(root, 'floor-state');
  try {
    // ---- latency: assignment -> RUNNING, alternating with the floor, one at a time
    say(`latency: ${LATENCY_TASKS} tasks, each against a plain runc run of the same bundle`);
    const ours: number[] = [];
    const floor: number[] = [];
    const assigned: Task[] = [];
    // A bundle to copy for the floor: config.json and an overlay like ours, made by our runtime once.
    const template = task(0, ['sleep', '3600']);
    await runtime.prepare(containerConfigFor(template));
    const templateDir = join(root, 'runc', 'containers', template.id);
    for (let i = 1; i <= LATENCY_TASKS; i++) {
      const t = task(i, ['sleep', '3600']);
      const running = new Promise<number>((resolve) => waiters.set(t.id, resolve));
      assigned.push(t);
      const t0 = performance.now();
      agent.setAssignments([...assigned]);
      ours.push((await running) - t0);
      waiters.delete(t.id);
      // The floor: runc run --detach of a copy of the bundle on the same overlay (no monitor, no image check).
      const dir = join(root, `floor-${i}`);
      mkdirSync(dir);
      const spec = JSON.parse(readFileSync(join(templateDir, 'config.json'), 'utf8')) as { root: { path: string }; linux: { cgroupsPath: string } };
      spec.root.path = join(templateDir, 'rootfs');
      spec.linux.cgroupsPath = `/swarm/floor-${process.pid}-${i}`;
      writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
      const f0 = performance.now();
      const r = spawnSync('/usr/sbin/runc', ['--root', floorRoot, 'run', '--detach', '--bundle', dir, `floor-${process.pid}-${i}`], { stdio: 'ignore' });
      floor.push(performance.now() - f0);
      if (r.status !== 0) throw new Error(`runc run of the floor bundle failed (${r.status})`);
      spawnSync('/usr/sbin/runc', ['--root', floorRoot, 'delete', '--force', `floor-${process.pid}-${i}`], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    }
    await runtime.remove(template.id);
    agent.setAssignments([]);
    await waitEmpty(runtime);

    // ---- density: N tasks at once
    say(`density: ${DENSITY_TASKS} tasks started at once`);
    global.gc?.();
    const rss0 = rssKiB('self');
    const heap0 = process.memoryUsage().heapUsed;
    const many = Array.from({ length: DENSITY_TASKS }, (_, i) => task(100_000 + i, ['sleep', '3600']));
    const all = Promise.all(many.map((t) => new Promise<number>((resolve) => waiters.set(t.id, resolve))));
    const d0 = performance.now();
    agent.setAssignments(many);
    const done = await all;
    const allRunningMs = Math.max(...done) - d0;
    global.gc?.();
    const rss1 = rssKiB('self');
    const heap1 = process.memoryUsage().heapUsed;
    const conmons = execFileSync('pgrep', ['-f', '--', `--exit-dir ${join(root, 'runc', 'exits')}`], { encoding: 'utf8' }).trim().split('\n').filter((l) => l !== '');
    const conmonKiB = conmons.reduce((a, pid) => a + rssKiB(Number(pid)), 0);
    agent.setAssignments([]);
    await waitEmpty(runtime);

    const body = [
      `Run ${new Date().toISOString()} with \`scripts/bench runtime\`; 1-minute load average ${loadavg()[0]?.toFixed(2)} at the end.`,
      '',
      '| | p50 | p99 |',
      '|---|---|---|',
      `| assignment -> RUNNING, agent + runc runtime (ms, ${LATENCY_TASKS} tasks) | ${f1(pct(ours, 50))} | ${f1(pct(ours, 99))} |`,
      `| plain \`runc run --detach\` of the same bundle (ms, the floor) | ${f1(pct(floor, 50))} | ${f1(pct(floor, 99))} |`,
      '',
      `| ${DENSITY_TASKS} sleeping tasks on one node | |`,
      '|---|---|',
      `| all RUNNING after | ${(allRunningMs / 1000).toFixed(1)} s (${f1(allRunningMs / DENSITY_TASKS)} ms per task, 8 starts at a time) |`,
      `| daemon-side memory per running task: process RSS / JS heap growth | ${f1((rss1 - rss0) / DENSITY_TASKS)} KiB / ${f1((heap1 - heap0) / 1024 / DENSITY_TASKS)} KiB |`,
      `| conmon per container (a process of its own, RSS) | ${f1(conmonKiB / Math.max(1, conmons.length))} KiB (${conmons.length} monitors) |`,
      '',
      `Goal: under 100 ms p50 from assignment to RUNNING (${pct(ours, 50) < 100 ? 'met' : 'missed'}), under 100 KiB of daemon memory per running task (${(rss1 - rss0) / DENSITY_TASKS < 100 ? 'met' : 'missed'}).`,
      '',
      'Machine:',
      '',
      '```',
      `cpu: ${cpus()[0]?.model ?? 'unknown'} x ${cpus().length}`,
      `memory: ${Math.round(totalmem() / 2 ** 30)} GiB`,
      `node: ${process.version}`,
      `settings: BENCH_TASKS=${LATENCY_TASKS} BENCH_DENSITY=${DENSITY_TASKS}`,
      '```',
    ].join('\n');
    console.log(body);
    if (DOC !== '-') {
      writeDocBlock(
        DOC,
        { start: '<!-- bench:runtime:start -->', end: '<!-- bench:runtime:end -->' },
        '## Runtime: assignment to RUNNING, and tasks per node\n\n' +
          '`scripts/bench runtime` runs the agent on the runc runtime in one process, with the busybox image already on the node. ' +
          'Latency: one assignment at a time, timed from the agent getting it to the agent reporting RUNNING (prepare: overlay mount, ' +
          'bundle; start: conmon, runc create, runc start), alternating with the floor, a plain `runc run --detach` of a copy of the same ' +
          'bundle (no monitor, no image lookup). Density: N sleeping tasks assigned at once. Quick run: `BENCH_TASKS=20 BENCH_DENSITY=50 ' +
          'BENCH_DOC=- scripts/bench runtime`. The section between the markers is rewritten by every run.\n',
        body,
      );
      say(`wrote ${DOC}`);
    }
  } finally {
    await agent.close();
    await runtime.destroyAll();
    await runtime.close();
    spawnSync('sh', ['-c', `for c in $(/usr/sbin/runc --root ${floorRoot} list -q 2>/dev/null); do /usr/sbin/runc --root ${floorRoot} delete --force $c; done`], { stdio: 'ignore' });
    rmSync(root, { recursive: true, force: true });
  }
}

async function waitEmpty(runtime: RuncRuntime): Promise<void> {
  const end = Date.now() + 120_000;
  while ((await runtime.list()).length > 0) {
    if (Date.now() > end) throw new Error('containers did not go away within 120 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
