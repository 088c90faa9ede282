// The runc runtime on the real parts, from an image of our own (Debian's busybox-static in one layer, with
// root, nobody and an `app` user) whose config the tests choose: Docker's command/env/user/workdir rules as
// the container sees them, hostname and the files we write, logs with partial lines, exits by signal, the
// stop signal, capabilities, errors, and adoption by a new runtime after the daemon's process really died.

import test, { type ExecutionContext } from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollUntil, silentLogger } from '@swarm/wire';
import {
  defaultContainerConfig,
  MAX_EXEC_OUTPUT_BYTES,
  readHostLimits,
  RuncRuntime,
  RuntimeError,
  type ContainerConfig,
  type ImageConfig,
  type ImageProvider,
  type LogLine,
  type VolumeProvider,
} from '../src/index.js';

const RUNC = '/usr/sbin/runc';
const BUSYBOX = '/usr/bin/busybox';
const missing =
  process.getuid?.() !== 0 ? 'needs root' : ([RUNC, '/usr/bin/conmon', '/usr/bin/tini-static', BUSYBOX].find((p) => !existsSync(p)) ?? null);
// Nothing may skip on CI (scripts/test installs runc, conmon, tini and busybox-static).
const serial = (title: string, fn: (t: ExecutionContext) => Promise<void>): void => {
  if (missing === null) test.serial(title, fn);
  else test.serial.skip(`${title} [skipped: ${missing === 'needs root' ? 'needs root' : `${missing} is missing`}]`, fn);
};

const root = mkdtempSync(join(tmpdir(), 'swarm-runcc-'));
const layer = join(root, 'layer');
const runcRoot = join(root, 'runc');

/** Images by reference: one layer, configs as the tests need them. */
const base: ImageConfig = { entrypoint: [], cmd: ['sh'], env: [], workingDir: '', user: '', stopSignal: '', labels: {}, exposedPorts: [] };
const imageConfigs: Record<string, ImageConfig> = {
  plain: base,
  app: {
    ...base,
    entrypoint: ['sh', '-c'],
    cmd: ['echo "cmd of the image as $(id -u):$(id -g) in $(pwd) with $APP_MODE/$APP_LEVEL home=$HOME path=$PATH"'],
    env: ['PATH=/bin:/opt/app/bin', 'APP_MODE=image', 'APP_LEVEL=image'],
    workingDir: '/opt/app',
    user: 'app',
  },
  usr1: { ...base, stopSignal: 'SIGUSR1' },
  nocmd: { ...base, cmd: [] },
};
const images: ImageProvider = {
  ensure: async (reference) => {
    const config = imageConfigs[reference];
    if (config === undefined) throw new RuntimeError('image_unavailable', `no such image: ${reference}`);
    return { reference, manifestDigest: `sha256:${'0'.repeat(64)}`, layerDirs: [layer], config };
  },
};
const volumes: VolumeProvider = {
  ensure: async (name) => {
    const d = join(root, 'volumes', name);
    mkdirSync(d, { recursive: true });
    return d;
  },
};

let rt: RuncRuntime;
const newRuntime = (): RuncRuntime => new RuncRuntime({ rootDir: runcRoot, images, volumes, logger: silentLogger() });

/** busybox with its applets, /etc/passwd and /etc/group (root, nobody, app in two extra groups), /tmp, /opt/app. */
function makeLayer(): void {
  for (const d of ['bin', 'etc', 'tmp', 'root', 'home/app', 'opt/app/bin', 'proc', 'sys', 'dev']) mkdirSync(join(layer, d), { recursive: true });
  chmodSync(join(layer, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(layer, 'bin', 'busybox'));
  chmodSync(join(layer, 'bin', 'busybox'), 0o755);
  for (const applet of execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n')) {
    if (applet !== '' && applet !== 'busybox') symlinkSync('busybox', join(layer, 'bin', applet));
  }
  writeFileSync(join(layer, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  writeFileSync(join(layer, 'etc', 'group'), 'root:x:0:\napp:x:1000:\naudio:x:29:app\nvideo:x:44:app\nstaff:x:50:\nnogroup:x:65534:\n');
}

test.before(async () => {
  if (missing !== null) return;
  makeLayer();
  rt = newRuntime();
  await rt.recover();
});

test.after.always(async () => {
  if (missing === null && rt !== undefined) {
    await rt.destroyAll().catch(() => undefined);
    await rt.close();
  }
  rmSync(root, { recursive: true, force: true });
});

let seq = 0;
function config(command: string[], extra: Partial<ContainerConfig> = {}): ContainerConfig {
  return { ...defaultContainerConfig(`rc${process.pid}x${++seq}`, command, 'plain'), ...extra };
}

/** Stops and removes the container when the test ends, also when it fails (via whichever runtime is current). */
function cleanup(t: ExecutionContext, id: string): void {
  t.teardown(async () => {
    await rt.stop(id, 0).catch(() => undefined);
    await rt.remove(id).catch(() => undefined);
  });
}

async function lines(id: string, opts: { tail?: number } = {}): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for await (const l of rt.logs(id, opts)) out.push(l);
  return out;
}

async function runToEnd(t: ExecutionContext, c: ContainerConfig): Promise<{ exitCode: number; signal: string | null; out: string }> {
  cleanup(t, c.id);
  await rt.prepare(c);
  await rt.start(c.id);
  const exit = await rt.wait(c.id);
  return { exitCode: exit.exitCode, signal: exit.signal, out: (await lines(c.id)).map((l) => l.line).join('\n') };
}

async function startRunning(t: ExecutionContext, c: ContainerConfig): Promise<number> {
  cleanup(t, c.id);
  await rt.prepare(c);
  return (await rt.start(c.id)).pid;
}

/** Waits for a line in the container's log (the container says it is ready; no fixed sleeps). */
async function logSays(id: string, line: string): Promise<void> {
  await pollUntil(`"${line}" in the log of ${id}`, async () => (await lines(id)).some((l) => l.line === line) || undefined, { deadlineMs: 10_000, intervalMs: 20 });
}

serial('the image\'s entrypoint, cmd, env, user and workdir apply; the service\'s replace them', async (t) => {
  const fromImage = await runToEnd(t, config([], { image: 'app' }));
  t.is(fromImage.exitCode, 0, fromImage.out);
  t.is(fromImage.out, 'cmd of the image as 1000:1000 in /opt/app with image/image home=/home/app path=/bin:/opt/app/bin');
  // Service args replace CMD (the ENTRYPOINT `sh -c` stays); the service's env, user and dir win.
  const svc = await runToEnd(
    t,
    config([], { image: 'app', args: ['echo "$(id -u):$(id -g) groups=$(id -G) in $(pwd) $APP_MODE/$APP_LEVEL home=$HOME"'], env: ['APP_MODE=service'], user: 'nobody', dir: '/tmp' }),
  );
  t.is(svc.out, '65534:65534 groups=65534 in /tmp service/image home=/nonexistent');
  // A command replaces ENTRYPOINT and drops CMD; name:group and the user's other groups from /etc/group.
  const cmd = await runToEnd(t, config(['id'], { image: 'app', user: 'app:staff' }));
  t.regex(cmd.out, /^uid=1000\(app\) gid=50\(staff\) groups=/);
  t.regex(cmd.out, /29\(audio\)/);
  t.regex(cmd.out, /44\(video\)/);
  // uid:gid that the image does not know.
  t.is((await runToEnd(t, config(['sh', '-c', 'echo $(id -u):$(id -g) $HOME'], { user: '4242:4343' }))).out, '4242:4343 /');
});

serial('hostname, /etc/hostname, /etc/hosts with the extra hosts, and the resolv.conf given', async (t) => {
  const r = await runToEnd(
    t,
    config(['sh', '-c', 'hostname; echo "$HOSTNAME"; cat /etc/hostname; grep -v "^#" /etc/hosts; cat /etc/resolv.conf'], {
      hostname: 'web-7',
      extraHosts: ['10.0.9.5 db db.local'],
      resolvConf: 'nameserver 10.0.9.1\nsearch example.test\n',
    }),
  );
  const out = r.out.split('\n');
  t.deepEqual(out.slice(0, 3), ['web-7', 'web-7', 'web-7']);
  t.true(out.includes('127.0.0.1\tlocalhost'));
  t.true(out.includes('127.0.1.1\tweb-7'));
  t.true(out.includes('10.0.9.5 db db.local'));
  t.deepEqual(out.slice(-2), ['nameserver 10.0.9.1', 'search example.test']);
  // Without a resolv.conf of its own the container gets the host's.
  const host = readFileSync('/etc/resolv.conf', 'utf8').trim();
  t.is((await runToEnd(t, config(['cat', '/etc/resolv.conf']))).out, host.split('\n').filter((l) => l !== '').join('\n'));
});

serial('logs: stdout and stderr in order, partial lines joined, an unfinished last line kept, tail', async (t) => {
  const c = config(['sh', '-c', 'echo one; echo two >&2; printf "thr"; sleep 0.2; printf "ee\\nfo"; sleep 0.2; echo ur; printf "no newline"']);
  const r = await runToEnd(t, c);
  t.is(r.exitCode, 0);
  const got = await lines(c.id);
  t.deepEqual(got.map((l) => `${l.stream}:${l.line}`), ['stdout:one', 'stderr:two', 'stdout:three', 'stdout:four', 'stdout:no newline']);
  t.true(got.every((l) => Math.abs(l.timestampMs - Date.now()) < 60_000));
  t.deepEqual((await lines(c.id, { tail: 2 })).map((l) => l.line), ['four', 'no newline']);
  // The log stays readable after remove (service logs of a dead task).
  await rt.remove(c.id);
  t.false((await rt.list()).includes(c.id));
  t.deepEqual((await lines(c.id, { tail: 1 })).map((l) => l.line), ['no newline']);
});

serial('follow yields lines as they come and ends with the container', async (t) => {
  const c = config(['sh', '-c', 'echo a; sleep 0.3; echo b; sleep 0.3; echo c']);
  await startRunning(t, c);
  const seen: string[] = [];
  for await (const l of rt.logs(c.id, { follow: true })) seen.push(l.line);
  t.deepEqual(seen, ['a', 'b', 'c']);
  t.like(await rt.wait(c.id), { exitCode: 0 });
});

serial('exit codes and deaths by signal: 128+N with the signal\'s name', async (t) => {
  t.like(await runToEnd(t, config(['sh', '-c', 'exit 42'])), { exitCode: 42, signal: null });
  // tini as pid 1 passes the stop signal on and exits as its child did.
  const init = config(['sleep', '600'], { init: true });
  await startRunning(t, init);
  await rt.stop(init.id, 10_000);
  t.deepEqual(await rt.wait(init.id), { exitCode: 143, signal: 'SIGTERM' });
  // A process that is not pid 1 kills its own shell by a signal: tini reports the signal.
  t.like(await runToEnd(t, config(['sh', '-c', 'kill -USR2 $$'], { init: true })), { exitCode: 140, signal: 'SIGUSR2' });
});

serial('stop sends the image\'s stop signal when the service names none, and the service\'s when it does', async (t) => {
  const trapAll = 'trap "echo got USR1; exit 11" USR1; trap "echo got HUP; exit 12" HUP; trap "echo got TERM; exit 13" TERM; echo ready; while true; do sleep 0.05; done';
  const fromImage = config(['sh', '-c', trapAll], { image: 'usr1' });
  const fromService = config(['sh', '-c', trapAll], { image: 'usr1', stopSignal: 'SIGHUP' });
  const byDefault = config(['sh', '-c', trapAll]);
  for (const c of [fromImage, fromService, byDefault]) await startRunning(t, c);
  for (const c of [fromImage, fromService, byDefault]) await logSays(c.id, 'ready');
  for (const c of [fromImage, fromService, byDefault]) await rt.stop(c.id, 10_000);
  t.like(await rt.wait(fromImage.id), { exitCode: 11 });
  t.like(await rt.wait(fromService.id), { exitCode: 12 });
  t.like(await rt.wait(byDefault.id), { exitCode: 13 });
  // Stopping what has ended is a no-op.
  await rt.stop(byDefault.id, 0);
});

serial('capabilities as the kernel sees them: Docker\'s default set, --cap-add, --cap-drop', async (t) => {
  const capEff = async (extra: Partial<ContainerConfig>): Promise<bigint> => {
    const r = await runToEnd(t, config(['sh', '-c', 'grep CapEff /proc/self/status'], extra));
    return BigInt(`0x${r.out.split(/\s+/)[1] ?? ''}`);
  };
  // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
  t.is(await capEff({}), 0xa80425fbn);
  const NET_ADMIN = 1n << 12n;
  const CHOWN = 1n;
  t.is(await capEff({ capAdd: ['NET_ADMIN'] }), 0xa80425fbn | NET_ADMIN);
  t.is(await capEff({ capDrop: ['chown'] }), 0xa80425fbn & ~CHOWN);
  t.is(await capEff({ capDrop: ['ALL'] }), 0n);
  // And no setuid binary can raise them again.
  t.regex((await runToEnd(t, config(['grep', 'NoNewPrivs', '/proc/self/status']))).out, /NoNewPrivs:\s+1/);
});

serial('exec runs as the container\'s user in its dir with its env; output is capped', async (t) => {
  const c = config(['sleep', '600'], { image: 'app', env: ['APP_MODE=svc'] });
  await startRunning(t, c);
  t.deepEqual(await rt.exec(c.id, ['sh', '-c', 'echo $(id -u) $(pwd) $APP_MODE'], { timeoutMs: 10_000 }), { exitCode: 0, output: '1000 /opt/app svc\n', timedOut: false });
  const big = await rt.exec(c.id, ['sh', '-c', 'yes 0123456789 | head -c 100000; exit 3'], { timeoutMs: 10_000 });
  t.is(big.exitCode, 3);
  t.is(big.output.length, MAX_EXEC_OUTPUT_BYTES);
  t.true(big.output.startsWith('0123456789\n'));
  const absent = await rt.exec(c.id, ['/no/such/binary'], { timeoutMs: 10_000 });
  t.not(absent.exitCode, 0);
  t.regex(absent.output, /no such file or directory/);
});

serial('the pids limit is enforced and the memory limit is what the kernel charges against', async (t) => {
  // Not tiny: runc's init (a Go program, its threads counted) runs in the cgroup while it sets the container up.
  // The sleeps die with pid 1 (the shell) when it ends.
  const r = await runToEnd(t, config(['sh', '-c', 'cat /sys/fs/cgroup/pids/pids.max; for i in $(seq 40); do sleep 5 & done 2>&1; true'], { pidsLimit: 16 }));
  t.regex(r.out, /^16\n/);
  t.regex(r.out, /can't fork|Resource temporarily unavailable/);
  const mem = await runToEnd(t, config(['sh', '-c', 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes; cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null; true'], { limits: { nanoCpus: 0, memoryBytes: 48 << 20 } }));
  // With swap accounting on, memory+swap is limited to the same amount: no swap.
  t.true(mem.out.split('\n').every((l) => l === String(48 << 20)), mem.out);
});

serial('ulimits are the container\'s rlimits (busybox `ulimit` and /proc/self/limits show them, -1 as unlimited); a hard limit above the daemon\'s own is refused by name before runc runs', async (t) => {
  const ulimits = [
    { name: 'nofile' as const, soft: 1024, hard: 2048 },
    { name: 'nproc' as const, soft: 300, hard: 400 },
    { name: 'core' as const, soft: -1, hard: -1 },
  ];
  const r = await runToEnd(t, config(['sh', '-c', 'ulimit -Sn; ulimit -Hn; grep -E "^Max (processes|core file size) " /proc/self/limits'], { ulimits }));
  t.is(r.exitCode, 0, r.out);
  const [soft, hard, ...rows] = r.out.trim().split('\n');
  t.is(soft, '1024');
  t.is(hard, '2048');
  t.deepEqual(rows.map((l) => l.split(/\s{2,}/).slice(1, 3)), [['unlimited', 'unlimited'], ['300', '400']]);
  // Without ulimits the container has the daemon's own (Docker's behaviour without --ulimit).
  const own = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))?.split(/\s{2,}/)[1];
  t.is((await runToEnd(t, config(['sh', '-c', 'ulimit -Sn']))).out.trim(), own ?? 'the daemon\'s own');
  // A daemon without CAP_SYS_RESOURCE (whatever this one holds): a hard limit above its own is refused up front.
  const daemonHard = 4096;
  const limited = new RuncRuntime({ rootDir: runcRoot, images, volumes, logger: silentLogger(), hostLimits: () => ({ ...readHostLimits(), hard: new Map([['nofile', daemonHard]]), canRaise: false }) });
  t.teardown(() => limited.close());
  const tooHigh = config(['true'], { ulimits: [{ name: 'nofile', soft: 1024, hard: daemonHard + 1 }] });
  cleanup(t, tooHigh.id);
  const err = await t.throwsAsync(limited.prepare(tooHigh), { instanceOf: RuntimeError });
  t.is(err?.code, 'invalid_config');
  t.regex(err?.message ?? '', new RegExp(`^ulimit nofile: the hard limit ${daemonHard + 1} is above the daemon's own hard limit on this node \\(${daemonHard}\\)`));
  t.false(existsSync(join(runcRoot, 'containers', tooHigh.id)), 'refused before anything was made');
});

serial('errors: an image that cannot be had, a user the image lacks, nothing to run, the lifecycle; nothing left behind', async (t) => {
  const noImage = config(['true'], { image: 'no/such:image' });
  await t.throwsAsync(rt.prepare(noImage), { instanceOf: RuntimeError, message: /no such image/ });
  t.is(((await rt.prepare(noImage).catch((e: unknown) => e)) as RuntimeError).code, 'image_unavailable');
  const noUser = config(['true'], { user: 'ghost' });
  t.is(((await rt.prepare(noUser).catch((e: unknown) => e)) as RuntimeError).code, 'invalid_config');
  // The overlay mounted to read the image's /etc/passwd is gone again with the container dir.
  t.false(existsSync(join(runcRoot, 'containers', noUser.id)));
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(noUser.id));
  const noCmd = config([], { image: 'nocmd' });
  await t.throwsAsync(rt.prepare(noCmd), { instanceOf: RuntimeError, message: /has no command/ });
  t.false((await rt.list()).some((id) => [noImage.id, noUser.id, noCmd.id].includes(id)));

  const c = config(['true']);
  cleanup(t, c.id);
  await rt.prepare(c);
  await rt.prepare(c); // idempotent
  t.is(((await rt.wait(c.id).catch((e: unknown) => e)) as RuntimeError).code, 'invalid_state');
  await rt.start(c.id);
  t.is(((await rt.start(c.id).catch((e: unknown) => e)) as RuntimeError).code, 'invalid_state');
  t.like(await rt.wait(c.id), { exitCode: 0 });
  t.is(((await rt.stats(c.id).catch((e: unknown) => e)) as RuntimeError).code, 'invalid_state');
  t.is(((await rt.start('rc-unknown').catch((e: unknown) => e)) as RuntimeError).code, 'not_found');
  t.is(((await rt.exec('rc-unknown', ['true'], { timeoutMs: 1_000 }).catch((e: unknown) => e)) as RuntimeError).code, 'not_found');
  // A prepared container that never ran can be removed, and leaves nothing.
  const never = config(['true']);
  await rt.prepare(never);
  await rt.remove(never.id);
  t.false(existsSync(join(runcRoot, 'containers', never.id)));
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(never.id));
});

/** A daemon in a process of its own that starts containers and then dies by SIGKILL (its pipes closed, no close()). */
const CHILD = `
const [runtimeUrl, rootDir, layer, ...specs] = process.argv.slice(2);
const { RuncRuntime, defaultContainerConfig } = await import(runtimeUrl);
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const config = { entrypoint: [], cmd: [], env: [], workingDir: '', user: '', stopSignal: '', labels: {}, exposedPorts: [] };
const images = { ensure: async (reference) => ({ reference, manifestDigest: 'sha256:' + '0'.repeat(64), layerDirs: [layer], config }) };
const rt = new RuncRuntime({ rootDir, images, volumes: { ensure: async () => { throw new Error('no volumes'); } }, logger: quiet, ...(process.env.TEST_RUNC ? { runcPath: process.env.TEST_RUNC } : {}) });
await rt.recover();
const pids = {};
for (const spec of specs) {
  const [id, script, extra] = JSON.parse(spec);
  await rt.prepare({ ...defaultContainerConfig(id, ['sh', '-c', script], 'plain'), ...extra });
  pids[id] = (await rt.start(id)).pid;
}
process.stdout.write(JSON.stringify(pids) + '\\n', () => process.kill(process.pid, 'SIGKILL'));
`;

serial('the daemon\'s process dies: containers run on, their exits and logs are kept, a new runtime adopts them once', async (t) => {
  const running = config([]);
  const endsWhileDown = config([]);
  const ended = config([]);
  for (const c of [running, endsWhileDown, ended]) cleanup(t, c.id);
  const childFile = join(root, 'daemon-child.mjs');
  writeFileSync(childFile, CHILD);
  const runtimeUrl = new URL('../src/index.js', import.meta.url).href;
  // The test tells the second container when to end through a bind-mounted dir.
  const signals = mkdtempSync(join(root, 'signals-'));
  const signalMount = { mounts: [{ type: 'bind', source: signals, target: '/signals', readOnly: true, tmpfsSizeBytes: 0 }] };
  const specs = [
    [running.id, 'trap "echo bye; exit 0" TERM; echo up; while true; do sleep 0.05; done', {}],
    [endsWhileDown.id, 'echo started; while [ ! -e /signals/go ]; do sleep 0.05; done; echo ending; exit 9', signalMount],
    [ended.id, 'echo quick; exit 5', {}],
  ].map((s) => JSON.stringify(s));
  // The test's own runtime lets go of the dir first, as a daemon restart would find it; whatever happens, a new
  // one takes over after, so that teardown finds every container.
  await rt.close();
  try {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [childFile, runtimeUrl, runcRoot, layer, ...specs], (err, stdout, stderr) => {
        if (err !== null && err.signal !== 'SIGKILL') reject(new Error(`the daemon child failed: ${stderr}`));
        else resolve(stdout);
      });
    });
    const pids = JSON.parse(out) as Record<string, number>;
    t.true(existsSync(`/proc/${pids[running.id] ?? 0}`), 'the container outlived its daemon');
    // While no daemon runs, one container ends on its own: conmon records its exit and its last words.
    await pollUntil('the container up', () => readFileSync(join(runcRoot, 'logs', `${endsWhileDown.id}.log`), 'utf8').includes('started') || undefined, { deadlineMs: 10_000, intervalMs: 20, retryErrors: true });
    writeFileSync(join(signals, 'go'), '');
    await pollUntil('its exit file', () => existsSync(join(runcRoot, 'exits', endsWhileDown.id)) || undefined, { deadlineMs: 10_000, intervalMs: 20 });
    await pollUntil('the quick one ended', () => existsSync(join(runcRoot, 'exits', ended.id)) || undefined, { deadlineMs: 10_000, intervalMs: 20 });
  } finally {
    rt = newRuntime();
    await rt.recover();
  }
  const mine = [running.id, endsWhileDown.id, ended.id];
  t.deepEqual((await rt.list()).filter((id) => mine.includes(id)).sort(), [...mine].sort());
  t.deepEqual(await rt.wait(endsWhileDown.id), { exitCode: 9, signal: null });
  t.deepEqual(await rt.wait(ended.id), { exitCode: 5, signal: null });
  t.deepEqual((await lines(endsWhileDown.id)).map((l) => l.line), ['started', 'ending']);
  // The adopted one: exec, logs, stats and stop work on it, and nothing was started twice.
  t.is((await rt.exec(running.id, ['sh', '-c', 'ps -o args | grep -c "^sh -c trap"'], { timeoutMs: 5_000 })).output, '1\n');
  t.true((await rt.stats(running.id)).memoryBytes > 0);
  t.deepEqual((await lines(running.id)).map((l) => l.line), ['up']);
  await rt.stop(running.id, 10_000);
  t.deepEqual(await rt.wait(running.id), { exitCode: 0, signal: null });
  t.deepEqual((await lines(running.id)).map((l) => l.line), ['up', 'bye']);
  for (const id of mine) await rt.remove(id);
  const state = execFileSync(RUNC, ['--root', join(runcRoot, 'state'), 'list', '-q'], { encoding: 'utf8' }).split('\n');
  t.false(mine.some((id) => state.includes(id)));
  t.false(mine.some((id) => readFileSync('/proc/self/mountinfo', 'utf8').includes(id)));
  t.false(mine.some((id) => ['memory', 'pids', 'cpu'].some((ctl) => existsSync(`/sys/fs/cgroup/${ctl}/swarm/${id}`))));
  t.false(mine.some((id) => existsSync(join(runcRoot, 'containers', id))));
});

serial('a timed-out exec is killed with everything it started; the container runs on', async (t) => {
  const c = config(['sleep', '600']);
  await startRunning(t, c);
  const r = await rt.exec(c.id, ['sh', '-c', 'sleep 601 & sleep 602 & wait'], { timeoutMs: 300 });
  t.deepEqual(r, { exitCode: -1, output: '', timedOut: true });
  const left = async (): Promise<string[]> =>
    (await rt.exec(c.id, ['ps', '-o', 'stat,args'], { timeoutMs: 5_000 })).output.split('\n').filter((l) => /sleep 60[12]|sh -c sleep/.test(l) && !l.startsWith('Z'));
  await pollUntil('the command and its children gone', async () => ((await left()).length === 0 ? true : undefined), { deadlineMs: 5_000, intervalMs: 50 });
  t.like(await rt.exec(c.id, ['true'], { timeoutMs: 5_000 }), { exitCode: 0 });
});

serial('following the log of a container that has not started ends at once', async (t) => {
  const c = config(['true']);
  cleanup(t, c.id);
  await rt.prepare(c);
  const seen: LogLine[] = [];
  for await (const l of rt.logs(c.id, { follow: true })) seen.push(l);
  t.deepEqual(seen, []);
});

/** conmon is the parent of the container's first process. */
function conmonOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  if (readFileSync(`/proc/${ppid}/comm`, 'utf8').trim() !== 'conmon') throw new Error(`the parent of ${pid} is not conmon`);
  return ppid;
}

serial('a container whose conmon is killed is killed too and reported ended, whether started by this runtime or adopted', async (t) => {
  const own = config(['sleep', '600']);
  const pid = await startRunning(t, own);
  process.kill(conmonOf(pid), 'SIGKILL');
  t.deepEqual(await rt.wait(own.id), { exitCode: 255, signal: null });
  await pollUntil('the container process gone', () => !existsSync(`/proc/${pid}`) || undefined, { deadlineMs: 5_000, intervalMs: 20 });

  const adopted = config(['sleep', '600']);
  const pid2 = await startRunning(t, adopted);
  await rt.close();
  rt = newRuntime();
  await rt.recover();
  process.kill(conmonOf(pid2), 'SIGKILL');
  t.deepEqual(await rt.wait(adopted.id), { exitCode: 255, signal: null });
  await pollUntil('the adopted container process gone', () => !existsSync(`/proc/${pid2}`) || undefined, { deadlineMs: 5_000, intervalMs: 20 });
});

serial('a daemon that dies between creating a container and starting it: the next one starts it', async (t) => {
  const c = config([]);
  cleanup(t, c.id);
  // A runc that lets the daemon die when it is asked to start a container (create and everything else pass).
  const wrapper = join(root, 'runc-dies-at-start');
  writeFileSync(wrapper, `#!/bin/sh\nif [ "$3" = start ]; then kill -9 $PPID; exit 1; fi\nexec ${RUNC} "$@"\n`, { mode: 0o755 });
  const childFile = join(root, 'daemon-child.mjs');
  writeFileSync(childFile, CHILD);
  await rt.close();
  try {
    await new Promise<void>((resolve, reject) => {
      execFile(process.execPath, [childFile, new URL('../src/index.js', import.meta.url).href, runcRoot, layer, JSON.stringify([c.id, 'echo started; while true; do sleep 0.05; done', {}])], { env: { ...process.env, TEST_RUNC: wrapper } }, (err, _out, stderr) => {
        if (err?.signal === 'SIGKILL') resolve();
        else reject(new Error(`the daemon child should have died at start: ${err?.message ?? 'it did not'} ${stderr}`));
      });
    });
    const state = execFileSync(RUNC, ['--root', join(runcRoot, 'state'), 'state', c.id], { encoding: 'utf8' });
    t.is((JSON.parse(state) as { status: string }).status, 'created');
  } finally {
    rt = newRuntime();
    await rt.recover();
  }
  await logSays(c.id, 'started');
  await rt.stop(c.id, 0);
  t.like(await rt.wait(c.id), { exitCode: 137, signal: 'SIGKILL' });
});

serial('secrets and configs: files on a tmpfs of the task\'s own, read-only at their targets with their owner and mode; not in the bundle\'s files; unmounted and gone after remove', async (t) => {
  const secret = `s3cret-${process.pid}-${Date.now()}`;
  const c = config(
    ['sh', '-c', 'cat /run/secrets/db; echo; stat -c "%a %u:%g" /run/secrets/db; cat /etc/app.conf; echo; (echo x > /run/secrets/db) 2>/dev/null && echo writable || echo read-only; sleep 30'],
    {
      readOnly: true,
      files: [
        { kind: 'secret', name: 'db-password', target: '/run/secrets/db', uid: 1000, gid: 1000, mode: 0o400, data: Buffer.from(secret) },
        { kind: 'config', name: 'app.conf', target: '/etc/app.conf', uid: 0, gid: 0, mode: 0o444, data: Buffer.from('listen 80') },
      ],
    },
  );
  await startRunning(t, c);
  await logSays(c.id, 'read-only');
  t.deepEqual((await lines(c.id)).map((l) => l.line), [secret, '400 1000:1000', 'listen 80', 'read-only']);
  const tmpfs = join(runcRoot, 'secrets', c.id);
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === tmpfs) ?? '';
  t.regex(mountinfo, / - tmpfs tmpfs .*mode=700/);
  t.regex(mountinfo, /nosuid,nodev,noexec/);
  // The bundle (config.json, meta.json, the overlay's upper dir) never holds the bytes.
  const holders = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const p = join(dir, e.name);
      if (e.isDirectory()) return p === join(runcRoot, 'containers', c.id, 'rootfs') ? [] : holders(p);
      return e.isFile() && readFileSync(p).includes(secret) ? [p] : [];
    });
  t.deepEqual(holders(join(runcRoot, 'containers', c.id)), []);
  await rt.stop(c.id, 0);
  await rt.remove(c.id);
  t.false(existsSync(tmpfs));
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(c.id), 'nothing of the container is mounted any more');
});
