// The process runtime with real short processes (sh, sleep, true): exit codes, missing executables, env and args,
// logs (tail, follow, rotation), stop with a grace period, remove, close and the container limit.

import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollUntil, silentLogger } from '@swarm/wire';
import { defaultContainerConfig, isMountPoint, ProcessRuntime, RuntimeError, type ContainerConfig, type LogLine, type ProcessRuntimeOptions } from '../src/index.js';

function setup(t: ExecutionContext, opts: Partial<Omit<ProcessRuntimeOptions, 'rootDir' | 'logger'>> = {}): { rt: ProcessRuntime; root: string } {
  const root = mkdtempSync(join(tmpdir(), 'swarm-runtime-'));
  const rt = new ProcessRuntime({ rootDir: root, logger: silentLogger(), ...opts });
  t.teardown(async () => {
    await rt.close();
    rmSync(root, { recursive: true, force: true });
  });
  return { rt, root };
}

let seq = 0;
function config(command: string[], extra: Partial<ContainerConfig> = {}): ContainerConfig {
  const id = `task${++seq}x${process.pid}`;
  return { ...defaultContainerConfig(id, command), ...extra };
}

async function run(rt: ProcessRuntime, c: ContainerConfig): Promise<number> {
  await rt.prepare(c);
  return (await rt.start(c.id)).pid;
}

async function collect(lines: AsyncIterable<LogLine>): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for await (const l of lines) out.push(l);
  return out;
}

/** Exited (a zombie waiting for its reaper counts as exited). */
function isGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

test('exit codes: 0, non-zero, and a wait after the process already ended', async (t) => {
  const { rt } = setup(t);
  const ok = config(['true']);
  const bad = config(['sh', '-c', 'exit 3']);
  await run(rt, ok);
  await run(rt, bad);
  t.deepEqual(await rt.wait(ok.id), { exitCode: 0, signal: null });
  t.deepEqual(await rt.wait(bad.id), { exitCode: 3, signal: null });
  t.deepEqual(await rt.wait(bad.id), { exitCode: 3, signal: null }, 'wait after the end resolves at once');
});

test('a missing executable fails start with Docker\'s wording; an empty command fails prepare with a hint', async (t) => {
  const { rt } = setup(t);
  const missing = config(['no-such-binary-here', 'x']);
  await rt.prepare(missing);
  const err = await t.throwsAsync(rt.start(missing.id), { instanceOf: RuntimeError });
  t.is(err?.code, 'start_failed');
  t.regex(err?.message ?? '', /exec: "no-such-binary-here": executable file not found in \$PATH/);
  const empty = await t.throwsAsync(rt.prepare(config([])), { instanceOf: RuntimeError });
  t.is(empty?.code, 'invalid_config');
  t.regex(empty?.message ?? '', /swarm service create busybox sleep 3600/);
  const badEnv = await t.throwsAsync(rt.prepare(config(['true'], { env: ['NOEQUALS'] })), { instanceOf: RuntimeError });
  t.is(badEnv?.code, 'invalid_config');
});

test('command ++ args run with the spec\'s env over a minimal PATH, the task id marker, and the spec\'s dir', async (t) => {
  const { rt, root } = setup(t);
  const c = config(['sh', '-c'], { args: ['echo "$FOO|$1|$SWARM_TASK_ID|$(pwd)|$PATH"', 'sh', 'second'], env: ['FOO=bar=baz'], dir: root });
  await run(rt, c);
  t.is((await rt.wait(c.id)).exitCode, 0);
  const lines = await collect(rt.logs(c.id, {}));
  t.deepEqual(
    lines.map((l) => l.line),
    [`bar=baz|second|${c.id}|${root}|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`],
  );
  const nodir = config(['pwd'], { dir: join(root, 'does-not-exist') });
  await run(rt, nodir);
  await rt.wait(nodir.id);
  const [cwd] = await collect(rt.logs(nodir.id, {}));
  t.is(cwd?.line, join(root, 'tasks', nodir.id), 'a missing dir falls back to the task\'s own dir');
});

test('logs keep stdout and stderr apart, with timestamps; tail gives the last lines', async (t) => {
  const { rt } = setup(t);
  const c = config(['sh', '-c', 'echo out1; echo err1 >&2; for i in 1 2 3 4 5; do echo n$i; done']);
  const before = Date.now();
  await run(rt, c);
  await rt.wait(c.id);
  const all = await collect(rt.logs(c.id, {}));
  t.deepEqual(all.filter((l) => l.stream === 'stderr').map((l) => l.line), ['err1']);
  t.deepEqual(all.filter((l) => l.stream === 'stdout').map((l) => l.line), ['out1', 'n1', 'n2', 'n3', 'n4', 'n5']);
  t.true(all.every((l) => l.timestampMs >= before && l.timestampMs <= Date.now()));
  const numbers = config(['sh', '-c', 'for i in 1 2 3 4 5; do echo n$i; done']);
  await run(rt, numbers);
  await rt.wait(numbers.id);
  const tail = await collect(rt.logs(numbers.id, { tail: 2 }));
  t.deepEqual(tail.map((l) => l.line), ['n4', 'n5']);
  t.deepEqual(await collect(rt.logs(numbers.id, { tail: 0 })), []);
  await t.throwsAsync(collect(rt.logs('unknown', {})), { instanceOf: RuntimeError, message: /no such task/ });
});

test('follow yields new lines until the process ends, and stops at once when aborted', async (t) => {
  const { rt } = setup(t);
  const c = config(['sh', '-c', 'echo one; sleep 0.3; echo two']);
  await run(rt, c);
  t.deepEqual((await collect(rt.logs(c.id, { follow: true }))).map((l) => l.line), ['one', 'two']);

  const long = config(['sh', '-c', 'echo first; exec sleep 30']);
  await run(rt, long);
  const ac = new AbortController();
  const seen: string[] = [];
  const started = Date.now();
  for await (const l of rt.logs(long.id, { follow: true, signal: ac.signal })) {
    seen.push(l.line);
    ac.abort();
  }
  t.deepEqual(seen, ['first']);
  t.true(Date.now() - started < 5_000, 'the abort ended the follow, not the process');
});

test('stop: SIGTERM ends a normal task at once; one that ignores it is killed after the grace period', async (t) => {
  const { rt } = setup(t);
  const polite = config(['sleep', '30']);
  await run(rt, polite);
  const t0 = Date.now();
  await rt.stop(polite.id, 5_000);
  t.true(Date.now() - t0 < 2_000);
  t.deepEqual(await rt.wait(polite.id), { exitCode: 143, signal: 'SIGTERM' });

  const stubborn = config(['sh', '-c', 'trap "" TERM; echo ready; while true; do sleep 0.05; done']);
  await run(rt, stubborn);
  await pollUntil('the trap is set', async () => (await collect(rt.logs(stubborn.id, {}))).some((l) => l.line === 'ready'), { deadlineMs: 5_000 });
  const t1 = Date.now();
  await rt.stop(stubborn.id, 400);
  const tookMs = Date.now() - t1;
  t.true(tookMs >= 380, `stopped after ${tookMs} ms, before the grace period`);
  t.deepEqual(await rt.wait(stubborn.id), { exitCode: 137, signal: 'SIGKILL' });
});

test('stop honours the stop signal; background children end with the task, stopped or not', async (t) => {
  const { rt } = setup(t);
  const c = config(['sh', '-c', 'trap "exit 9" INT; sleep 30 & echo $!; while true; do sleep 0.05; done'], { stopSignal: 'INT' });
  await run(rt, c);
  const line = await pollUntil('the background pid', async () => (await collect(rt.logs(c.id, {})))[0], { deadlineMs: 5_000 });
  const bg = Number(line.line);
  t.true(Number.isInteger(bg) && bg > 1);
  await rt.stop(c.id, 5_000);
  t.deepEqual(await rt.wait(c.id), { exitCode: 9, signal: null });
  await pollUntil('the background child is gone', () => isGone(bg), { deadlineMs: 5_000 });

  const quitter = config(['sh', '-c', 'sleep 30 & echo $!']);
  await run(rt, quitter);
  t.deepEqual(await rt.wait(quitter.id), { exitCode: 0, signal: null });
  const [left] = await collect(rt.logs(quitter.id, {}));
  await pollUntil('what the main process left running is gone', () => isGone(Number(left?.line)), { deadlineMs: 5_000 });
  t.pass();
});

test('stop of an exited or never started task is a no-op; lifecycle misuse is refused', async (t) => {
  const { rt } = setup(t);
  const c = config(['true']);
  await rt.prepare(c);
  await rt.prepare(c); // idempotent
  await t.throwsAsync(rt.wait(c.id), { instanceOf: RuntimeError, message: /has not been started/ });
  await rt.stop(c.id, 100);
  await rt.start(c.id);
  await t.throwsAsync(rt.start(c.id), { instanceOf: RuntimeError, message: /already started/ });
  await rt.wait(c.id);
  await rt.stop(c.id, 100);
  await t.throwsAsync(rt.stop('unknown', 100), { instanceOf: RuntimeError, message: /no such task/ });
});

test('remove deletes the working dir and forgets the task but keeps its log; a running task is not removed', async (t) => {
  const { rt, root } = setup(t);
  const done = config(['sh', '-c', 'echo bye']);
  const live = config(['sleep', '30']);
  await run(rt, done);
  await run(rt, live);
  await rt.wait(done.id);
  t.deepEqual((await rt.list()).sort(), [done.id, live.id].sort());
  await rt.remove(done.id);
  t.false(existsSync(join(root, 'tasks', done.id)));
  t.deepEqual(await rt.list(), [live.id]);
  t.deepEqual((await collect(rt.logs(done.id, {}))).map((l) => l.line), ['bye']);
  await t.throwsAsync(rt.remove(live.id), { instanceOf: RuntimeError, message: /stop it before removing it/ });
  await rt.remove('unknown');
});

test('close stops every task it started and refuses new work', async (t) => {
  const { rt } = setup(t);
  const a = config(['sleep', '30']);
  const b = config(['sh', '-c', 'trap "" TERM; echo ready; while true; do sleep 0.05; done'], { stopGracePeriodMs: 200 });
  const pids = [await run(rt, a), await run(rt, b)];
  await pollUntil('the trap is set', async () => (await collect(rt.logs(b.id, {}))).some((l) => l.line === 'ready'), { deadlineMs: 5_000 });
  await rt.close();
  t.is((await rt.wait(a.id)).signal, 'SIGTERM');
  t.is((await rt.wait(b.id)).signal, 'SIGKILL');
  t.true(pids.every(isGone));
  await t.throwsAsync(rt.prepare(config(['true'])), { instanceOf: RuntimeError, message: /shut down/ });
});

test('the number of tasks is bounded with a clear error', async (t) => {
  const { rt } = setup(t, { maxContainers: 2 });
  await rt.prepare(config(['true']));
  await rt.prepare(config(['true']));
  const err = await t.throwsAsync(rt.prepare(config(['true'])), { instanceOf: RuntimeError });
  t.is(err?.code, 'too_many_containers');
});

test('the log rotates at its size bound, keeping the newest lines', async (t) => {
  const { rt, root } = setup(t, { maxLogFileBytes: 4_096 });
  const c = config(['sh', '-c', 'i=1; while [ $i -le 500 ]; do echo "line $i"; i=$((i+1)); done']);
  await run(rt, c);
  await rt.wait(c.id);
  const lines = await collect(rt.logs(c.id, {}));
  t.true(lines.length < 500 && lines.length > 50, `${lines.length} lines kept`);
  t.is(lines.at(-1)?.line, 'line 500');
  for (const f of [`${c.id}.log`, `${c.id}.log.1`]) t.true(statSync(join(root, 'logs', f)).size <= 4_096, f);
});

test('a runtime opened on the rootDir of one that died kills the task processes it left, and only those', async (t) => {
  const { rt: first, root } = setup(t);
  const left = config(['sleep', '30']);
  const pid = await run(first, left);
  const bystander = spawn('sleep', ['30'], { detached: true, stdio: 'ignore', env: { PATH: process.env['PATH'] ?? '', SWARM_TASK_ID: left.id } });
  t.teardown(() => {
    bystander.kill('SIGKILL');
  });
  // `first` is never closed before the second opens: as if its daemon had been killed
  const second = new ProcessRuntime({ rootDir: root, logger: silentLogger() });
  t.teardown(() => second.close());
  await pollUntil('the leftover process is gone', () => isGone(pid), { deadlineMs: 5_000 });
  t.false(isGone(bystander.pid ?? 0), 'a process it did not start, even with the marker, is left alone');
  t.deepEqual(await second.list(), []);
  t.is((await first.wait(left.id)).signal, 'SIGKILL');
});

test('exec runs a command in a running task\'s environment and directory; a slow one is killed at its timeout', async (t) => {
  const { rt } = setup(t);
  const c = config(['sleep', '30'], { env: ['GREETING=hi'] });
  await run(rt, c);
  const ok = await rt.exec(c.id, ['sh', '-c', 'echo $GREETING $SWARM_TASK_ID; exit 3'], { timeoutMs: 5_000 });
  t.deepEqual(ok, { exitCode: 3, output: `hi ${c.id}\n`, timedOut: false });
  const missing = await rt.exec(c.id, ['no-such-health-tool'], { timeoutMs: 5_000 });
  t.is(missing.exitCode, 127);
  // The command prints its pid, then hangs: at the timeout it is killed, not left running.
  const slow = await rt.exec(c.id, ['sh', '-c', 'echo $$; exec sleep 30'], { timeoutMs: 200 });
  t.true(slow.timedOut);
  t.is(slow.exitCode, -1);
  const hung = Number(slow.output.trim());
  t.true(Number.isInteger(hung) && hung > 1, slow.output);
  t.true(isGone(hung), 'the timed-out command was killed');
  const stats = await rt.stats(c.id);
  t.true(stats.memoryBytes > 0);
  t.true(stats.cpuNanos >= 0);
  await rt.stop(c.id, 1_000);
  await t.throwsAsync(rt.exec(c.id, ['true'], { timeoutMs: 1_000 }), { instanceOf: RuntimeError, message: /is not running/ });
});

// Mounting the tmpfs needs root (a non-root daemon rejects such tasks, naming the reason): a skip says so.
(process.getuid?.() === 0 ? test : test.skip)(`secrets and configs: on a tmpfs of the task's own, at their container paths below $SWARM_FILES_ROOT; unmounted on remove; a new runtime on the dir unmounts what a dead one left${process.getuid?.() === 0 ? '' : ' [skipped: needs root]'}`, async (t) => {
  const { rt, root } = setup(t);
  const c = config(['sh', '-c', 'cat "$SWARM_SECRETS_DIR/db"; echo; cat "$SWARM_FILES_ROOT/etc/app.conf"'], {
    files: [
      { kind: 'secret', name: 'db-password', target: '/run/secrets/db', uid: 0, gid: 0, mode: 0o400, data: Buffer.from('hunter2') },
      { kind: 'config', name: 'app.conf', target: '/etc/app.conf', uid: 0, gid: 0, mode: 0o444, data: Buffer.from('listen 80') },
    ],
  });
  await run(rt, c);
  t.like(await rt.wait(c.id), { exitCode: 0 });
  t.deepEqual((await collect(rt.logs(c.id, {}))).map((l) => l.line), ['hunter2', 'listen 80']);
  const dir = join(root, 'secrets', c.id);
  const mounted = (): boolean => isMountPoint(dir);
  t.true(mounted());
  t.is(statSync(join(dir, 'run/secrets/db')).mode & 0o777, 0o400);
  await rt.remove(c.id);
  t.false(mounted());
  t.false(existsSync(dir));

  // A runtime that died holding one: the next on the same dir unmounts it.
  const left = config(['true'], { files: [{ kind: 'secret', name: 's', target: '/run/secrets/s', uid: 0, gid: 0, mode: 0o444, data: Buffer.from('x') }] });
  await rt.prepare(left);
  const leftDir = join(root, 'secrets', left.id);
  t.true(existsSync(join(leftDir, 'run/secrets/s')));
  const next = new ProcessRuntime({ rootDir: root, logger: silentLogger() });
  t.teardown(() => next.close());
  t.false(existsSync(leftDir));
});

test("ulimits: the task and its health checks start through prlimit with them; without prlimit, or above the daemon's own hard limit, prepare refuses naming why", async (t) => {
  const { rt } = setup(t);
  const logs = async (id: string): Promise<string> => (await collect(rt.logs(id, {}))).map((l) => l.line).join(',');
  const c = config(['sh', '-c', 'ulimit -Sn; ulimit -Hn; exec sleep 30'], { ulimits: [{ name: 'nofile', soft: 100, hard: 200 }] });
  const pid = await run(rt, c);
  await pollUntil('the limits in the log', async () => (await logs(c.id)) === '100,200', { deadlineMs: 5_000 });
  t.true(readFileSync(`/proc/${pid}/environ`, 'latin1').includes(`SWARM_TASK_ID=${c.id}`), 'the pid is the task\'s (prlimit execs it)');
  t.is((await rt.exec(c.id, ['sh', '-c', 'ulimit -Sn'], { timeoutMs: 5_000 })).output, '100\n');
  await rt.stop(c.id, 1_000);

  const none = config(['true'], { ulimits: [{ name: 'nofile', soft: 1, hard: 1 }] });
  await t.throwsAsync(setup(t, { prlimitPath: null }).rt.prepare(none), { instanceOf: RuntimeError, message: /sets a task's ulimits with prlimit \(util-linux\), which this node does not have/ });
  const low = setup(t, { hostLimits: () => ({ hard: new Map([['nofile', 50]]), canRaise: false, nrOpen: 1_048_576 }) });
  const err = await t.throwsAsync(low.rt.prepare({ ...none, ulimits: [{ name: 'nofile', soft: 10, hard: 60 }] }), { instanceOf: RuntimeError });
  t.is(err?.code, 'invalid_config');
  t.regex(err?.message ?? '', /^ulimit nofile: the hard limit 60 is above the daemon's own hard limit on this node \(50\)/);
});
