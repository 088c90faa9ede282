// The runc runtime on the real parts (root, runc, conmon, overlayfs, cgroup v1): containers from the lab's
// busybox image, their isolation and limits as the container itself sees them, logs, exits and OOM kills,
// stop with grace, exec, volumes, adoption by a new runtime after a "crash", and nothing left after remove.

import test, { type ExecutionContext } from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollUntil, silentLogger } from '@swarm/wire';
import { buildLabImages, BUSYBOX_BIN, defaultContainerConfig, ImageStore, LocalVolumes, RuncRuntime, type ContainerConfig, type LogLine } from '../src/index.js';
import { capabilities, defaultSeccompProfile } from '../src/runc/security.js';

const missing =
  process.getuid?.() !== 0
    ? 'not root'
    : (['/usr/sbin/runc', '/usr/bin/conmon', '/usr/bin/tini-static', BUSYBOX_BIN].find((p) => !existsSync(p)) ?? null);
// Nothing may skip on CI: a missing part is a failure there (scripts/test installs them).
const serial = (title: string, fn: (t: ExecutionContext) => Promise<void>): void => {
  if (missing === null) test.serial(title, fn);
  else test.serial.skip(`${title} [skipped: ${missing === 'not root' ? 'needs root' : `${missing} is missing`}]`, fn);
};

const root = mkdtempSync(join(tmpdir(), 'swarm-runc-'));
let images: ImageStore;
let volumes: LocalVolumes;
let rt: RuncRuntime;

test.before(async () => {
  if (missing !== null) return;
  images = new ImageStore({ rootDir: join(root, 'images') });
  await buildLabImages(images);
  volumes = new LocalVolumes({ rootDir: join(root, 'volumes') });
  rt = new RuncRuntime({ rootDir: join(root, 'runc'), images, volumes, logger: silentLogger() });
  await rt.recover();
});

test.after.always(async () => {
  if (missing === null) {
    await rt.destroyAll().catch(() => undefined);
    await rt.close();
  }
  rmSync(root, { recursive: true, force: true });
});

let seq = 0;
function config(command: string[], extra: Partial<ContainerConfig> = {}): ContainerConfig {
  const id = `rt${process.pid}x${++seq}`;
  return { ...defaultContainerConfig(id, command), ...extra };
}

async function collect(id: string): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for await (const l of rt.logs(id, {})) out.push(l);
  return out;
}

/** Runs a container to its end; its exit and its output (stdout and stderr in order, one string). */
async function runToEnd(t: ExecutionContext, c: ContainerConfig): Promise<{ exitCode: number; oomKilled: boolean; out: string }> {
  t.teardown(() => rt.remove(c.id).catch(() => undefined));
  await rt.prepare(c);
  await rt.start(c.id);
  const exit = await rt.wait(c.id);
  const lines = await collect(c.id);
  return { exitCode: exit.exitCode, oomKilled: exit.oomKilled === true, out: lines.map((l) => l.line).join('\n') };
}

serial('a container runs its command in its own pid namespace with its hostname; stdout and stderr are logged, each in order', async (t) => {
  // stdout and stderr are two pipes (conmon polls both): the order within a stream is kept, not across the two.
  const c = config(['sh', '-c', 'echo out; echo err >&2; echo "pid=$$ host=$(hostname) task=$SWARM_TASK_ID"; ps -o pid | wc -l; exit 3']);
  const r = await runToEnd(t, c);
  t.is(r.exitCode, 3);
  const logged = await collect(c.id);
  const stdout = logged.filter((l) => l.stream === 'stdout').map((l) => l.line);
  t.deepEqual(stdout.slice(0, 2), ['out', `pid=1 host=${c.hostname} task=${c.id}`]);
  t.deepEqual(logged.filter((l) => l.stream === 'stderr').map((l) => l.line), ['err']);
  // The header line, sh, ps and wc: the host's processes are invisible.
  t.true(Number(stdout[2]) <= 5, `processes seen: ${stdout[2]}`);
});

serial('limits are what the container sees in its cgroup; a memory hog is OOM-killed and reported as such', async (t) => {
  const c = config(['sh', '-c', 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares'], {
    limits: { nanoCpus: 500_000_000, memoryBytes: 32 * 1024 * 1024 },
    pidsLimit: 50,
    reservedNanoCpus: 250_000_000,
  });
  const r = await runToEnd(t, c);
  t.is(r.exitCode, 0, r.out);
  t.deepEqual(r.out.split('\n'), [String(32 * 1024 * 1024), '50', '50000', '256']);
  const hog = await runToEnd(t, config(['sh', '-c', 'x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done'], { limits: { nanoCpus: 0, memoryBytes: 16 * 1024 * 1024 } }));
  t.is(hog.exitCode, 137);
  t.true(hog.oomKilled);
});

serial('capabilities, read-only root, tmpfs and --init', async (t) => {
  const chown = await runToEnd(t, config(['sh', '-c', 'touch /tmp/f && chown 65534 /tmp/f && echo chowned']));
  t.is(chown.out, 'chowned');
  const dropped = await runToEnd(t, config(['sh', '-c', 'touch /tmp/f && chown 65534 /tmp/f'], { capDrop: ['ALL'] }));
  t.not(dropped.exitCode, 0);
  t.regex(dropped.out, /Operation not permitted/);
  const ro = await runToEnd(t, config(['sh', '-c', 'touch /x 2>&1; echo ok > /scratch/y && cat /scratch/y'], { readOnly: true, mounts: [{ type: 'tmpfs', source: '', target: '/scratch', readOnly: false, tmpfsSizeBytes: 1 << 20 }] }));
  t.regex(ro.out, /Read-only file system/);
  t.regex(ro.out, /\nok$/);
  const init = await runToEnd(t, config(['sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "'], { init: true }));
  t.regex(init.out, /^\/sbin\/docker-init -- sh -c/);
});

serial('a named volume outlives its container and the next one sees its data; a bind mount shows the host dir', async (t) => {
  const vol = { type: 'volume' as const, source: `data${process.pid}`, target: '/data', readOnly: false, tmpfsSizeBytes: 0 };
  const first = await runToEnd(t, config(['sh', '-c', 'echo kept > /data/file'], { mounts: [vol] }));
  t.is(first.exitCode, 0, first.out);
  const hostDir = mkdtempSync(join(root, 'bind-'));
  writeFileSync(join(hostDir, 'hello'), 'from the host');
  const second = await runToEnd(t, config(['sh', '-c', 'cat /data/file /srv/hello'], { mounts: [vol, { type: 'bind', source: hostDir, target: '/srv', readOnly: true, tmpfsSizeBytes: 0 }] }));
  t.is(second.out, 'kept\nfrom the host');
  await t.throwsAsync(rt.prepare(config(['true'], { mounts: [{ type: 'bind', source: '/nonexistent/x', target: '/x', readOnly: false, tmpfsSizeBytes: 0 }] })), { message: /does not exist/ });
});

serial('stop: a container that handles TERM exits by itself; one that ignores it is killed after the grace', async (t) => {
  const polite = config(['sh', '-c', 'trap "echo bye; exit 0" TERM; while true; do sleep 0.1; done']);
  const stubborn = config(['sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done']);
  for (const c of [polite, stubborn]) {
    t.teardown(() => rt.remove(c.id).catch(() => undefined));
    await rt.prepare(c);
    await rt.start(c.id);
  }
  await new Promise((r) => setTimeout(r, 300)); // let the shells install their traps
  await rt.stop(polite.id, 10_000);
  t.deepEqual(await rt.wait(polite.id), { exitCode: 0, signal: null });
  await rt.stop(stubborn.id, 500);
  t.like(await rt.wait(stubborn.id), { exitCode: 137, signal: 'SIGKILL' });
});

serial('exec runs in the container with its env; output, exit code, and a timeout kills the command', async (t) => {
  const c = config(['sleep', '600'], { env: ['GREETING=hi'] });
  t.teardown(async () => {
    await rt.stop(c.id, 0).catch(() => undefined);
    await rt.remove(c.id).catch(() => undefined);
  });
  await rt.prepare(c);
  await rt.start(c.id);
  t.deepEqual(await rt.exec(c.id, ['sh', '-c', 'echo $GREETING; exit 4'], { timeoutMs: 10_000 }), { exitCode: 4, output: 'hi\n', timedOut: false });
  const slow = await rt.exec(c.id, ['sh', '-c', 'echo started; exec sleep 600'], { timeoutMs: 300 });
  t.true(slow.timedOut);
  // Only the container's own `sleep 600` is left: the timed-out command was killed inside the container.
  const sleeps = async (): Promise<number> => (await rt.exec(c.id, ['ps', '-o', 'args'], { timeoutMs: 5_000 })).output.split('\n').filter((l) => l === 'sleep 600').length;
  await pollUntil('the timed-out command is gone', async () => ((await sleeps()) === 1 ? true : undefined), { deadlineMs: 5_000, intervalMs: 50 });
  t.true((await rt.stats(c.id)).memoryBytes > 0);
});

serial('a new runtime on the same dir (the daemon crashed) adopts a running container and reports an ended one', async (t) => {
  const running = config(['sh', '-c', 'echo before; while true; do sleep 0.1; done']);
  const ending = config(['sh', '-c', 'sleep 0.3; exit 7']);
  for (const c of [running, ending]) {
    await rt.prepare(c);
    await rt.start(c.id);
  }
  const pending = config(['true']);
  await rt.prepare(pending); // made but never started: a new runtime tears it down
  await rt.close();
  await new Promise((r) => setTimeout(r, 600));
  rt = new RuncRuntime({ rootDir: join(root, 'runc'), images, volumes, logger: silentLogger() });
  await rt.recover();
  t.deepEqual((await rt.list()).filter((id) => [running.id, ending.id, pending.id].includes(id)).sort(), [running.id, ending.id].sort());
  t.like(await rt.wait(ending.id), { exitCode: 7 });
  t.is((await rt.exec(running.id, ['echo', 'adopted'], { timeoutMs: 5_000 })).output, 'adopted\n');
  t.is((await collect(running.id))[0]?.line, 'before');
  await rt.stop(running.id, 1_000);
  for (const c of [running, ending]) await rt.remove(c.id);
  t.false(existsSync(join(root, 'runc', 'containers', pending.id)));
});

serial('remove leaves nothing: no runc container, no mount, no cgroup, no container dir', async (t) => {
  const c = config(['sleep', '60'], { limits: { nanoCpus: 0, memoryBytes: 64 * 1024 * 1024 } });
  await rt.prepare(c);
  await rt.start(c.id);
  t.true(existsSync(`/sys/fs/cgroup/memory/swarm/${c.id}`));
  await t.throwsAsync(rt.remove(c.id), { message: /running/ });
  await rt.stop(c.id, 0);
  await rt.remove(c.id);
  const state = execFileSync('/usr/sbin/runc', ['--root', join(root, 'runc', 'state'), 'list', '-q'], { encoding: 'utf8' });
  t.false(state.split('\n').includes(c.id));
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(c.id));
  t.false(existsSync(`/sys/fs/cgroup/memory/swarm/${c.id}`));
  t.false(existsSync(join(root, 'runc', 'containers', c.id)));
  await rt.remove(c.id); // unknown now: a no-op
});

serial('seccomp: a new namespace is refused without CAP_SYS_ADMIN even where the kernel would allow it; with the capability mount works', async (t) => {
  const denied = await runToEnd(t, config(['sh', '-c', 'unshare -U true 2>&1; echo "exit=$?"']));
  t.regex(denied.out, /Operation not permitted[\s\S]*exit=1$/);
  const admin = await runToEnd(t, config(['sh', '-c', 'mkdir -p /mnt/x && mount -t tmpfs tmpfs /mnt/x && echo mounted'], { capAdd: ['SYS_ADMIN'] }));
  t.is(admin.out, 'mounted');
});

test('capabilities: Docker\'s default set, drop ALL then add back, names with or without CAP_, unknown names refused', (t) => {
  t.true(capabilities([], []).includes('CAP_CHOWN'));
  t.false(capabilities([], []).includes('CAP_SYS_ADMIN'));
  t.deepEqual(capabilities(['net_admin'], ['ALL']), ['CAP_NET_ADMIN']);
  t.deepEqual(capabilities(['CAP_SYS_TIME'], ['chown']).filter((c) => c === 'CAP_SYS_TIME' || c === 'CAP_CHOWN'), ['CAP_SYS_TIME']);
  t.is(capabilities(['ALL'], []).length, 41);
  t.throws(() => capabilities(['NET_ADMINN'], []), { message: /unknown capability "NET_ADMINN"/ });
  const profile = defaultSeccompProfile(capabilities([], []));
  const allowed = new Set(profile?.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW' && r.args === undefined).flatMap((r) => r.names));
  t.true(allowed.has('read') && allowed.has('epoll_wait') && !allowed.has('mount') && !allowed.has('unshare'));
  const admin = defaultSeccompProfile(capabilities(['SYS_ADMIN'], []));
  t.true(admin?.syscalls.some((r) => r.names.includes('mount') && r.action === 'SCMP_ACT_ALLOW'));
});

serial('after a reboot (every process gone, mounts gone, no exit file) a new runtime reports the container ended and remove cleans up', async (t) => {
  const c = config(['sleep', '600']);
  await rt.prepare(c);
  const { pid } = await rt.start(c.id);
  await rt.close();
  // What a reboot leaves: the files on disk, nothing running, nothing mounted.
  const dir = join(root, 'runc', 'containers', c.id);
  // conmon --sync writes no pid file: it is the process whose arguments name this container's persist dir.
  const conmonPid = Number(execFileSync('pgrep', ['-f', '--', `--persist-dir ${join(dir, 'persist')}`], { encoding: 'utf8' }).trim());
  process.kill(conmonPid, 'SIGKILL');
  process.kill(pid, 'SIGKILL');
  await pollUntil('the container process gone', () => !existsSync(`/proc/${pid}`) || undefined, { deadlineMs: 5_000, intervalMs: 20 });
  rmSync(join(root, 'runc', 'exits', c.id), { force: true });
  execFileSync('umount', ['-l', join(dir, 'rootfs')]);
  rt = new RuncRuntime({ rootDir: join(root, 'runc'), images, volumes, logger: silentLogger() });
  await rt.recover();
  t.like(await rt.wait(c.id), { exitCode: 255 });
  await rt.remove(c.id);
  t.false(existsSync(dir));
  t.false(execFileSync('/usr/sbin/runc', ['--root', join(root, 'runc', 'state'), 'list', '-q'], { encoding: 'utf8' }).split('\n').includes(c.id));
});

serial('a service\'s registry login reaches the image provider with the pull, and stays out of the container\'s files', async (t) => {
  const seen: Array<{ username: string; password: string } | null | undefined> = [];
  const spy = new RuncRuntime({
    rootDir: join(root, 'runc-spy'),
    images: { ensure: (ref, o) => (seen.push(o?.credentials), images.ensure(ref)) },
    volumes,
    logger: silentLogger(),
  });
  await spy.recover();
  t.teardown(async () => {
    await spy.destroyAll();
    await spy.close();
  });
  const c = config(['true'], { registryAuth: { username: 'alice', password: 's3cret' } });
  await spy.prepare(c);
  t.deepEqual(seen, [{ username: 'alice', password: 's3cret' }]);
  t.false(readFileSync(join(root, 'runc-spy', 'containers', c.id, 'meta.json'), 'utf8').includes('s3cret'));
});
