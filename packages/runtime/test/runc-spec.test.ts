// The OCI spec of a runc container as a pure function of the task's ContainerConfig and its image's config:
// Docker's entrypoint/cmd, env, user and workdir rules, the namespaces, mounts, limits and security settings.

import test from 'ava';
import { buildSpec, defaultContainerConfig, hostsFile, INIT_PATH, processArgs, processEnv, resolveUser, RuntimeError, type ContainerConfig, type ImageConfig } from '../src/index.js';
import { capabilities, defaultSeccompProfile, MASKED_PATHS, READONLY_PATHS } from '../src/runc/security.js';

const image: ImageConfig = {
  entrypoint: ['/entry'],
  cmd: ['default'],
  env: ['PATH=/img/bin', 'A=img', 'B=img'],
  workingDir: '/srv',
  user: '',
  stopSignal: 'SIGQUIT',
  labels: {},
  exposedPorts: [],
};
const bare: ImageConfig = { ...image, entrypoint: [], cmd: [], env: [], workingDir: '' };

const files = {
  passwd: ['root:x:0:0:root:/root:/bin/sh', 'app:x:1000:1000:app:/home/app:/bin/sh', 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false', '# a comment', ''].join('\n'),
  group: ['root:x:0:', 'app:x:1000:', 'audio:x:29:app,other', 'video:x:44:app', 'staff:x:50:', 'nogroup:x:65534:', ''].join('\n'),
};
const paths = { hosts: '/c/etc/hosts', hostname: '/c/etc/hostname', resolvConf: '/c/etc/resolv.conf', volumes: new Map([['data', '/var/lib/swarm/volumes/data/_data']]), init: '/usr/bin/tini-static' };

function cfg(extra: Partial<ContainerConfig> = {}): ContainerConfig {
  return { ...defaultContainerConfig('task1abcdef0123', []), ...extra };
}

function invalid(t: import('ava').ExecutionContext, fn: () => unknown, message: RegExp): void {
  const err = t.throws(fn, { instanceOf: RuntimeError, message });
  t.is(err?.code, 'invalid_config');
}

test('args follow Docker: a command replaces ENTRYPOINT and drops CMD, args replace CMD', (t) => {
  t.deepEqual(processArgs({ command: [], args: [] }, image), ['/entry', 'default']);
  t.deepEqual(processArgs({ command: [], args: ['x', 'y'] }, image), ['/entry', 'x', 'y']);
  t.deepEqual(processArgs({ command: ['sh'], args: [] }, image), ['sh']);
  t.deepEqual(processArgs({ command: ['sh'], args: ['-c', 'true'] }, image), ['sh', '-c', 'true']);
  t.deepEqual(processArgs({ command: [], args: ['echo', 'hi'] }, bare), ['echo', 'hi']);
  t.deepEqual(buildSpec(cfg(), image, files, paths).process.args, ['/entry', 'default']);
});

test('a spec with nothing to run is invalid_config and says how to give a command', (t) => {
  invalid(t, () => buildSpec(cfg(), bare, files, paths), /has no command.*give one/);
});

test('env: the image\'s, then the service\'s over it; PATH by default, HOSTNAME, HOME of the user, the task id', (t) => {
  const env = processEnv({ env: ['B=svc', 'C=svc'], hostname: 'h1', id: 'task1' }, image, '/home/app');
  t.true(env.includes('PATH=/img/bin'));
  t.false(env.some((e) => e.startsWith('PATH=/usr/local/sbin')));
  t.true(env.includes('A=img') && env.includes('B=svc') && env.includes('C=svc') && !env.includes('B=img'));
  t.true(env.includes('HOSTNAME=h1') && env.includes('HOME=/home/app') && env.includes('SWARM_TASK_ID=task1'));
  const plain = processEnv({ env: ['HOME=/mine', 'PATH=/svc'], hostname: 'h', id: 't' }, bare, '/root');
  t.true(plain.includes('HOME=/mine') && plain.includes('PATH=/svc'));
  t.is(plain.filter((e) => e.startsWith('PATH=')).length, 1);
  t.true(processEnv({ env: [], hostname: 'h', id: 't' }, bare, '/').some((e) => e.startsWith('PATH=/usr/local/sbin:')));
  invalid(t, () => processEnv({ env: ['NOEQUALS'], hostname: 'h', id: 't' }, bare, '/'), /invalid environment entry "NOEQUALS"/);
  // HOME comes from the resolved user's passwd entry.
  t.true(buildSpec(cfg({ user: 'app' }), image, files, paths).process.env.includes('HOME=/home/app'));
});

test('user: name, uid, uid:gid and name:group resolved against the image\'s files; additional groups from /etc/group', (t) => {
  t.deepEqual(resolveUser('', files), { uid: 0, gid: 0, additionalGids: [], home: '/root' });
  t.deepEqual(resolveUser('app', files), { uid: 1000, gid: 1000, additionalGids: [29, 44], home: '/home/app' });
  t.deepEqual(resolveUser('1000', files), { uid: 1000, gid: 1000, additionalGids: [29, 44], home: '/home/app' });
  t.deepEqual(resolveUser('app:staff', files), { uid: 1000, gid: 50, additionalGids: [29, 44], home: '/home/app' });
  t.deepEqual(resolveUser('65534:65534', files), { uid: 65534, gid: 65534, additionalGids: [], home: '/nonexistent' });
  // A numeric user need not exist in the image (Docker runs it with gid 0).
  t.deepEqual(resolveUser('4242', files), { uid: 4242, gid: 0, additionalGids: [], home: '/' });
  t.deepEqual(resolveUser('4242:7', files), { uid: 4242, gid: 7, additionalGids: [], home: '/' });
  // An image without /etc/passwd still runs as root.
  t.deepEqual(resolveUser('root', { passwd: '', group: '' }), { uid: 0, gid: 0, additionalGids: [], home: '/root' });
  invalid(t, () => resolveUser('ghost', files), /unable to find user ghost/);
  invalid(t, () => resolveUser('app:ghosts', files), /unable to find group ghosts/);
  // The service's user wins over the image's; the image's applies when the service gives none.
  t.like(buildSpec(cfg(), { ...image, user: 'nobody' }, files, paths).process.user, { uid: 65534, gid: 65534 });
  t.deepEqual(buildSpec(cfg({ user: 'app' }), { ...image, user: 'nobody' }, files, paths).process.user, { uid: 1000, gid: 1000, additionalGids: [29, 44] });
  invalid(t, () => buildSpec(cfg({ user: 'ghost' }), image, files, paths), /unable to find user ghost/);
});

test('cwd: the service\'s dir, else the image\'s WorkingDir, else /', (t) => {
  t.is(buildSpec(cfg({ dir: '/work' }), image, files, paths).process.cwd, '/work');
  t.is(buildSpec(cfg(), image, files, paths).process.cwd, '/srv');
  t.is(buildSpec(cfg({ command: ['true'] }), bare, files, paths).process.cwd, '/');
});

test('namespaces: pid, ipc, uts and mount of its own; the host network unless a namespace path is given', (t) => {
  const host = buildSpec(cfg(), image, files, paths).linux.namespaces;
  t.deepEqual(host.map((n) => n.type).sort(), ['ipc', 'mount', 'pid', 'uts']);
  const joined = buildSpec(cfg({ networkNamespacePath: '/run/netns/ov-1' }), image, files, paths).linux.namespaces;
  t.deepEqual(joined.find((n) => n.type === 'network'), { type: 'network', path: '/run/netns/ov-1' });
});

test('security: Docker\'s capabilities in bounding, effective and permitted only; no new privileges; masked and read-only paths; seccomp when there is a profile', (t) => {
  const spec = buildSpec(cfg(), image, files, paths);
  const caps = capabilities([], []);
  t.deepEqual(spec.process.capabilities, { bounding: caps, effective: caps, permitted: caps });
  t.true(spec.process.noNewPrivileges);
  t.deepEqual(spec.linux.maskedPaths, [...MASKED_PATHS]);
  t.deepEqual(spec.linux.readonlyPaths, [...READONLY_PATHS]);
  const profile = defaultSeccompProfile(caps);
  if (profile === null) t.false('seccomp' in spec.linux);
  else t.deepEqual(spec.linux.seccomp, profile);
  const none = buildSpec(cfg({ capDrop: ['ALL'], capAdd: ['net_bind_service'] }), image, files, paths).process.capabilities;
  t.deepEqual(none, { bounding: ['CAP_NET_BIND_SERVICE'], effective: ['CAP_NET_BIND_SERVICE'], permitted: ['CAP_NET_BIND_SERVICE'] });
  invalid(t, () => buildSpec(cfg({ capAdd: ['NOT_A_CAP'] }), image, files, paths), /unknown capability/);
});

test('root: the overlay mountpoint, read-only with --read-only; hostname set', (t) => {
  const spec = buildSpec(cfg({ hostname: 'web-1' }), image, files, paths);
  t.deepEqual(spec.root, { path: 'rootfs', readonly: false });
  t.is(spec.hostname, 'web-1');
  t.true(buildSpec(cfg({ readOnly: true }), image, files, paths).root.readonly);
  t.is(spec.ociVersion, '1.0.2');
  t.false(spec.process.terminal);
});

test('mounts: Docker\'s /proc, /dev, /dev/pts, read-only /sys, 64 MiB /dev/shm, /dev/mqueue, then our hosts/hostname/resolv.conf, then the service\'s', (t) => {
  const spec = buildSpec(
    cfg({
      mounts: [
        { type: 'bind', source: '/host/dir', target: '/in', readOnly: true, tmpfsSizeBytes: 0 },
        { type: 'volume', source: 'data', target: '/data', readOnly: false, tmpfsSizeBytes: 0 },
        { type: 'tmpfs', source: '', target: '/scratch', readOnly: false, tmpfsSizeBytes: 1 << 20 },
        { type: 'tmpfs', source: '', target: '/big', readOnly: true, tmpfsSizeBytes: 0 },
      ],
    }),
    image,
    files,
    paths,
  );
  const by = new Map(spec.mounts.map((m) => [m.destination, m]));
  t.is(by.get('/proc')?.type, 'proc');
  t.is(by.get('/dev')?.type, 'tmpfs');
  t.is(by.get('/dev/pts')?.type, 'devpts');
  t.true(by.get('/sys')?.options.includes('ro'));
  t.is(by.get('/sys')?.type, 'sysfs');
  t.true(by.get('/dev/shm')?.options.includes(`size=${64 * 1024 * 1024}`));
  t.is(by.get('/dev/mqueue')?.type, 'mqueue');
  t.like(by.get('/etc/hosts'), { type: 'bind', source: paths.hosts });
  t.like(by.get('/etc/hostname'), { type: 'bind', source: paths.hostname });
  t.like(by.get('/etc/resolv.conf'), { type: 'bind', source: paths.resolvConf });
  t.like(by.get('/in'), { type: 'bind', source: '/host/dir' });
  t.true(by.get('/in')?.options.includes('ro'));
  t.like(by.get('/data'), { type: 'bind', source: '/var/lib/swarm/volumes/data/_data' });
  t.true(by.get('/data')?.options.includes('rw'));
  t.like(by.get('/scratch'), { type: 'tmpfs' });
  t.true(by.get('/scratch')?.options.includes(`size=${1 << 20}`));
  t.false(by.get('/big')?.options.some((o) => o.startsWith('size=')));
  t.true(by.get('/big')?.options.includes('ro'));
  // The service's mounts come after the defaults, so they can cover them.
  t.true(spec.mounts.findIndex((m) => m.destination === '/in') > spec.mounts.findIndex((m) => m.destination === '/etc/resolv.conf'));
  invalid(t, () => buildSpec(cfg({ mounts: [{ type: 'volume', source: 'unknown', target: '/x', readOnly: false, tmpfsSizeBytes: 0 }] }), image, files, paths), /volume unknown/);
  invalid(t, () => buildSpec(cfg({ mounts: [{ type: 'tmpfs', source: '', target: 'rel', readOnly: false, tmpfsSizeBytes: 0 }] }), image, files, paths), /not an absolute path/);
});

test('--init: tini bind-mounted read-only and run as pid 1 with -- and the args', (t) => {
  const spec = buildSpec(cfg({ init: true, command: ['sleep'], args: ['5'] }), image, files, paths);
  t.deepEqual(spec.process.args, [INIT_PATH, '--', 'sleep', '5']);
  const tini = spec.mounts.find((m) => m.destination === INIT_PATH);
  t.is(tini?.source, paths.init);
  t.true(tini?.options.includes('ro'));
  t.false(buildSpec(cfg(), image, files, paths).mounts.some((m) => m.destination === INIT_PATH));
});

test('cgroups: a path under /swarm; memory without swap, a cpu quota of a 100 ms period, shares from the reservation, pids', (t) => {
  const none = buildSpec(cfg(), image, files, paths).linux;
  t.is(none.cgroupsPath, '/swarm/task1abcdef0123');
  t.is(none.resources.memory, undefined);
  t.is(none.resources.cpu, undefined);
  t.is(none.resources.pids, undefined);
  const r = buildSpec(cfg({ limits: { nanoCpus: 1_500_000_000, memoryBytes: 64 << 20 }, reservedNanoCpus: 500_000_000, pidsLimit: 100 }), image, files, paths).linux.resources;
  t.deepEqual(r.memory, { limit: 64 << 20, swap: 64 << 20 });
  t.deepEqual(r.cpu, { period: 100_000, quota: 150_000, shares: 512 });
  t.deepEqual(r.pids, { limit: 100 });
  // Docker's floor: a tiny reservation still gets the kernel's minimum weight.
  t.deepEqual(buildSpec(cfg({ reservedNanoCpus: 1_000 }), image, files, paths).linux.resources.cpu, { shares: 2 });
});

test('/etc/hosts: the localhost lines, the container\'s hostname, then the extra hosts', (t) => {
  const lines = hostsFile('web-1', ['10.0.0.5 db', '10.0.0.6 cache']).split('\n');
  t.is(lines[0], '127.0.0.1\tlocalhost');
  t.true(lines.includes('::1\tlocalhost ip6-localhost ip6-loopback'));
  t.true(lines.includes('127.0.1.1\tweb-1'));
  t.deepEqual(lines.slice(-3), ['10.0.0.5 db', '10.0.0.6 cache', '']);
});
