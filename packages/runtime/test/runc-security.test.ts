// Our security defaults (src/runc/security.ts) on the real runc: ordinary busybox, Python and Node workloads run
// under the default seccomp profile; what it refuses fails with EPERM or ENOSYS where the kernel alone would
// have let it through; each capability-gated call works once the capability is added; and the pure parts
// (capability names, the profile's shape, every name a real system call).

import test, { type ExecutionContext } from 'ava';
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { RuntimeError } from '../src/index.js';
import { ALL_CAPABILITIES, capabilities, DEFAULT_CAPABILITIES, defaultSeccompProfile, MASKED_PATHS, READONLY_PATHS, type OciSeccomp } from '../src/runc/security.js';

const RUNC = '/usr/sbin/runc';
const BUSYBOX = '/usr/bin/busybox';
const PYTHON = '/usr/bin/python3'; // Debian's, run from the host's /usr bind-mounted into the container
const IP = '/usr/sbin/ip';

const missing =
  process.getuid?.() !== 0
    ? 'needs root'
    : process.arch !== 'x64'
      ? 'the probes use x86_64 system call numbers'
      : ([RUNC, BUSYBOX, PYTHON, IP].map((p) => (existsSync(p) ? null : `${p} is missing`)).find((m) => m !== null) ?? null);
// Nothing may skip on CI (root, x86_64, scripts/test installs runc, busybox-static and iproute2; python3 is on the machine).
const serial = (title: string, fn: (t: ExecutionContext) => Promise<void>): void => {
  if (missing === null) test.serial(title, fn);
  else test.serial.skip(`${title} [skipped: ${missing}]`, fn);
};

const root = mkdtempSync(join(tmpdir(), 'swarm-sec-'));
const rootfs = join(root, 'rootfs');
const netns = `swarmsec${process.pid}`;
let template: Record<string, unknown> = {};

/**
 * Runs each `name:nr:arg...` system call in a forked child (so a call that changes the process, such as
 * unshare or personality, cannot touch the next one) and prints `name ok` or `name <errno name>`.
 */
const PROBE = `
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def probe(nr, args):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        me = os.getpid()
        ctypes.set_errno(0)
        ret = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
        e = ctypes.get_errno()
        if os.getpid() != me:
            os._exit(0)  # the new process of a clone probe: only the caller answers
        os.write(w, ('ok' if ret >= 0 else errno.errorcode.get(e, str(e))).encode())
        os._exit(0)
    os.close(w)
    out = os.read(r, 64).decode()
    os.close(r)
    os.waitpid(pid, 0)
    return out or 'died'
for spec in sys.argv[1:]:
    name, *nums = spec.split(':')
    nums = [int(x, 0) for x in nums]
    print(name, probe(nums[0], nums[1:]), flush=True)
`;

test.before(() => {
  if (missing !== null) return;
  // One rootfs for the whole file: busybox and its applets, mount points, and the probe script. It stays
  // read-only in every container; each gets its own tmpfs on /tmp.
  for (const d of ['bin', 'dev', 'etc', 'opt/node', 'proc', 'sys', 'tmp', 'usr']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(BUSYBOX, join(rootfs, 'bin/busybox'));
  for (const applet of execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n')) {
    if (applet !== '' && applet !== 'busybox') symlinkSync('busybox', join(rootfs, 'bin', applet));
  }
  // Debian's merged /usr: the host's libraries for python3 and node once /usr is bind-mounted.
  symlinkSync('usr/lib', join(rootfs, 'lib'));
  symlinkSync('usr/lib64', join(rootfs, 'lib64'));
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  writeFileSync(join(rootfs, 'probe.py'), PROBE);
  // A network namespace with only a loopback that is up, shared by the containers (they run one at a time).
  execFileSync(IP, ['netns', 'add', netns]);
  execFileSync(IP, ['netns', 'exec', netns, IP, 'link', 'set', 'lo', 'up']);
  mkdirSync(join(root, 'spec'));
  execFileSync(RUNC, ['spec', '--bundle', join(root, 'spec')]);
  template = JSON.parse(readFileSync(join(root, 'spec', 'config.json'), 'utf8')) as Record<string, unknown>;
});

test.after.always(() => {
  if (missing === null) {
    try {
      execFileSync(IP, ['netns', 'del', netns], { stdio: 'ignore' });
    } catch {
      // not created
    }
  }
  rmSync(root, { recursive: true, force: true });
});

interface RunOptions {
  capAdd?: string[];
  capDrop?: string[];
  /** false: no seccomp at all, to show what the kernel alone says. */
  seccomp?: boolean;
  /** Bind the host's /usr read-only (python3, node's libraries) and node's own directory at /opt/node. */
  hostUsr?: boolean;
}

type SpecJson = {
  process: { terminal: boolean; args: string[]; env: string[]; capabilities: Record<string, string[]>; noNewPrivileges: boolean };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: Array<{ destination: string; type: string; source: string; options?: string[] }>;
  linux: { namespaces: Array<{ type: string; path?: string }>; maskedPaths: string[]; readonlyPaths: string[]; seccomp?: OciSeccomp };
};

let seq = 0;

/** Runs `args` in a fresh runc container from `runc spec` edited to our defaults; its exit code and output. */
async function run(t: ExecutionContext, args: string[], opts: RunOptions = {}): Promise<{ code: number; out: string; err: string }> {
  const id = `swarmsec${process.pid}x${++seq}`;
  const state = join(root, 'state');
  const bundle = join(root, 'bundles', id);
  t.teardown(() => {
    try {
      execFileSync(RUNC, ['--root', state, 'delete', '-f', id], { stdio: 'ignore' });
    } catch {
      // `runc run` already deleted it
    }
    rmSync(bundle, { recursive: true, force: true });
  });
  const caps = capabilities(opts.capAdd ?? [], opts.capDrop ?? []);
  const spec = structuredClone(template) as SpecJson;
  spec.process.terminal = false;
  spec.process.args = args;
  spec.process.env = ['PATH=/bin', 'HOME=/tmp'];
  spec.process.capabilities = { bounding: caps, effective: caps, permitted: caps };
  spec.process.noNewPrivileges = true;
  spec.root = { path: rootfs, readonly: true };
  spec.hostname = id;
  spec.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', 'size=16m'] });
  if (opts.hostUsr === true) {
    spec.mounts.push({ destination: '/usr', type: 'bind', source: '/usr', options: ['rbind', 'ro'] });
    spec.mounts.push({ destination: '/opt/node', type: 'bind', source: dirname(process.execPath), options: ['rbind', 'ro'] });
  }
  spec.linux.namespaces = spec.linux.namespaces.map((ns) => (ns.type === 'network' ? { type: 'network', path: `/var/run/netns/${netns}` } : ns));
  spec.linux.maskedPaths = [...MASKED_PATHS];
  spec.linux.readonlyPaths = [...READONLY_PATHS];
  const profile = opts.seccomp === false ? null : defaultSeccompProfile(caps);
  if (profile !== null) spec.linux.seccomp = profile;
  else delete spec.linux.seccomp;
  mkdirSync(bundle, { recursive: true });
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
  return new Promise((resolve, reject) => {
    // A bound, not a timing assertion: a container that hangs is killed and `runc delete -f` cleans up.
    const child = spawn(RUNC, ['--root', state, 'run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000, killSignal: 'SIGKILL' });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out: out.trimEnd(), err: err.trimEnd() }));
  });
}

/** One system call with arguments the kernel rejects harmlessly (or no-ops), so "allowed" is never destructive. */
interface Probe {
  name: string;
  call: number[];
}
const P = (name: string, ...call: number[]): Probe => ({ name, call });

async function probe(t: ExecutionContext, probes: readonly Probe[], opts: RunOptions = {}): Promise<Record<string, string>> {
  const r = await run(t, [PYTHON, '/probe.py', ...probes.map((p) => [p.name, ...p.call].join(':'))], { ...opts, hostUsr: true });
  t.is(r.code, 0, `${r.out}\n${r.err}`);
  return Object.fromEntries(r.out.split('\n').map((l) => l.split(' ') as [string, string]));
}

// x86_64 numbers and constants.
const CLONE_NEWUSER = 0x10000000;
const SIGCHLD = 17;

// ---------------------------------------------------------------- workloads under the profile

serial('busybox: files, processes, time, an httpd fetched with wget, nc, ping and ps all work under the default profile', async (t) => {
  const script = [
    'set -e',
    'cd /tmp && mkdir -p d/e && echo hello > d/e/f && chmod 600 d/e/f && ln -s e/f d/l && cat d/l && ls -l d/e/f | cut -c1-10',
    'mv d/e/f d/e/g && cp d/e/g d/e/h && sha256sum d/e/h | cut -c1-8 && tar czf d.tgz d && rm -r d && tar xzf d.tgz && find d -type f | sort | tr "\\n" " " && echo',
    'touch /tmp/o && chown nobody:nogroup /tmp/o && stat -c %U /tmp/o',
    'date +%Y | grep -q "^20" && sleep 0.1 && id -u && uname -s && echo "$(( 6 * 7 ))" && seq 3 | awk "{ s += \\$1 } END { print s }"',
    'mkdir -p /tmp/www && echo served > /tmp/www/index.html && httpd -p 127.0.0.1:8080 -h /tmp/www',
    'for i in $(seq 50); do wget -q -O - http://127.0.0.1:8080/index.html 2>/dev/null && break; sleep 0.1; done',
    'nc -l -p 9000 -e echo pong &',
    'for i in $(seq 50); do nc 127.0.0.1 9000 </dev/null 2>/dev/null | grep pong && break; sleep 0.1; done',
    'ping -c 1 -W 5 127.0.0.1 | grep -c "bytes from"',
    'ps -o comm | grep -q httpd && echo ps-sees-httpd',
    'sh -c "exit 3" || echo "child exit $?"',
  ].join('\n');
  const r = await run(t, ['sh', '-c', script]);
  t.is(r.code, 0, `${r.out}\n${r.err}`);
  t.deepEqual(r.out.split('\n'), ['hello', '-rw-------', '5891b5b5', 'd/e/g d/e/h ', 'nobody', '0', 'Linux', '42', '6', 'served', 'pong', '1', 'ps-sees-httpd', 'child exit 3']);
});

serial('python3: threads (glibc tries clone3, gets ENOSYS, falls back to clone), subprocess, sockets, sqlite and asyncio work', async (t) => {
  const script = `
import asyncio, json, socket, sqlite3, subprocess, threading
out = []
th = threading.Thread(target=lambda: out.append(sum(range(10)))); th.start(); th.join()
spawned = subprocess.run(['/bin/echo', 'spawned'], capture_output=True, text=True).stdout.strip()
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)
c = socket.create_connection(srv.getsockname()); a, _ = srv.accept(); c.sendall(b'ping'); got = a.recv(4).decode()
db = sqlite3.connect('/tmp/db.sqlite'); db.execute('create table t(x)'); db.execute('insert into t values (1)')
async def main():
    await asyncio.sleep(0.01)
    return 'async'
print(json.dumps([out[0], spawned, got, db.execute('select count(*) from t').fetchone()[0], asyncio.run(main())]))
`;
  const r = await run(t, [PYTHON, '-c', script], { hostUsr: true });
  t.is(r.code, 0, `${r.out}\n${r.err}`);
  t.deepEqual(JSON.parse(r.out), [45, 'spawned', 'ping', 1, 'async']);
});

serial('node: worker threads, an http server fetched over loopback, child processes, fs, crypto and network interfaces work', async (t) => {
  const script = `
const { Worker } = require('node:worker_threads');
(async () => {
  const w = await new Promise((res, rej) => { const x = new Worker('require("node:worker_threads").parentPort.postMessage(6 * 7)', { eval: true }); x.once('message', res); x.once('error', rej); });
  const server = require('node:http').createServer((req, res) => res.end('hi ' + req.url));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const body = await (await fetch('http://127.0.0.1:' + server.address().port + '/x')).text();
  server.close();
  const child = require('node:child_process').execFileSync('/bin/echo', ['spawned']).toString().trim();
  require('node:fs').writeFileSync('/tmp/n', 'data');
  const read = await require('node:fs/promises').readFile('/tmp/n', 'utf8');
  const crypto = require('node:crypto');
  const hash = crypto.createHash('sha256').update(crypto.randomBytes(16)).digest('hex').length;
  console.log(JSON.stringify([w, body, child, read, hash, Object.keys(require('node:os').networkInterfaces())]));
})().catch((e) => { console.error(e); process.exit(1); });
`;
  const r = await run(t, ['/opt/node/node', '-e', script], { hostUsr: true });
  t.is(r.code, 0, `${r.out}\n${r.err}`);
  t.deepEqual(JSON.parse(r.out), [42, 'hi /x', 'spawned', 'data', 64, ['lo']]);
});

// ---------------------------------------------------------------- what the profile refuses

/** Refused to every container although the kernel would let a container's root do it. */
const REFUSED: ReadonlyArray<Probe & { answer: 'EPERM' | 'ENOSYS' }> = [
  { ...P('clone3', 435, 0, 0), answer: 'ENOSYS' },
  { ...P('io_uring_setup', 425, 0, 0), answer: 'ENOSYS' },
  { ...P('clone_newuser', 56, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0), answer: 'EPERM' },
  { ...P('unshare_newuser', 272, CLONE_NEWUSER), answer: 'EPERM' },
  { ...P('keyctl_get_session', 250, 0, -3, 0), answer: 'EPERM' },
  { ...P('socket_vsock', 41, 40, 1, 0), answer: 'EPERM' },
  { ...P('socket_alg', 41, 38, 5, 0), answer: 'EPERM' },
  { ...P('personality_no_aslr', 135, 0x40000), answer: 'EPERM' },
];

serial('refused calls fail with EPERM (ENOSYS for clone3 and io_uring) where the kernel alone would have let them through', async (t) => {
  const profile = await probe(t, REFUSED);
  const kernel = await probe(t, REFUSED, { seccomp: false });
  for (const p of REFUSED) {
    t.is(profile[p.name], p.answer, p.name);
    t.not(kernel[p.name], p.answer, `without seccomp ${p.name} should get past the filter (the kernel said ${kernel[p.name]})`);
  }
});

serial('allowed by default: namespace-free unshare and clone, ptrace (Linux 4.8+), the safe personalities, ordinary socket families; newer calls get ENOSYS, never EPERM', async (t) => {
  const r = await probe(t, [
    P('unshare_files', 272, 0x400), // CLONE_FILES
    P('clone_plain', 56, SIGCHLD, 0, 0, 0, 0),
    P('ptrace_no_such_pid', 101, 12, 0x7ffffff0), // PTRACE_GETREGS on no process
    P('personality_query', 135, 0xffffffff),
    P('personality_linux32', 135, 0x8),
    P('socket_inet', 41, 2, 1, 0),
    P('socket_inet6', 41, 10, 2, 0),
    P('socket_unix', 41, 1, 1, 0),
    P('socket_netlink', 41, 16, 3, 0),
    P('socket_packet', 41, 17, 3, 0), // CAP_NET_RAW is in Docker's default set
    P('statmount', 457, 0, 0, 0, 0), // Linux 6.8: newer than libseccomp 2.5.4's tables
    P('number_999', 999),
  ]);
  t.is(r['unshare_files'], 'ok');
  t.is(r['clone_plain'], 'ok');
  t.is(r['ptrace_no_such_pid'], 'ESRCH');
  t.is(r['personality_query'], 'ok');
  t.is(r['personality_linux32'], 'ok');
  for (const s of ['socket_inet', 'socket_inet6', 'socket_unix', 'socket_netlink', 'socket_packet']) t.is(r[s], 'ok', s);
  t.not(r['statmount'], 'EPERM');
  t.is(r['number_999'], 'ENOSYS');
  const noRaw = await probe(t, [P('socket_packet', 41, 17, 3, 0)], { capDrop: ['NET_RAW'] });
  t.is(noRaw['socket_packet'], 'EPERM');
});

/**
 * Calls allowed only with a capability: refused by default, and with the capability alone added the kernel's own
 * answer to the harmless arguments comes back (`not EPERM` where that answer depends on how the kernel was built).
 */
const GATED: ReadonlyArray<{ cap: string; probes: ReadonlyArray<Probe & { granted: string; denied?: string }> }> = [
  {
    cap: 'SYS_ADMIN',
    probes: [
      { ...P('mount_null', 165, 0, 0, 0, 0, 0), granted: 'EFAULT' },
      { ...P('setns_bad_fd', 308, -1, 0), granted: 'EBADF' },
      { ...P('fsopen_null', 430, 0, 0), granted: 'EFAULT' },
      { ...P('clone3_null', 435, 0, 0), granted: 'EINVAL', denied: 'ENOSYS' },
      { ...P('unshare_newuser', 272, CLONE_NEWUSER), granted: 'ok' },
      { ...P('bpf_bad_cmd', 321, 999, 0, 0), granted: 'EINVAL' },
    ],
  },
  { cap: 'SYS_TIME', probes: [{ ...P('clock_settime_null', 227, 0, 0), granted: 'EFAULT' }] },
  { cap: 'SYS_BOOT', probes: [{ ...P('reboot_bad_magic', 169, 0, 0, 0, 0), granted: 'EINVAL' }] },
  { cap: 'SYS_PTRACE', probes: [{ ...P('kcmp_no_such_pid', 312, 0x7ffffff0, 0x7ffffff0, 0, 0, 0), granted: 'ESRCH' }, { ...P('userfaultfd', 323, 0), granted: 'ok' }] },
  { cap: 'DAC_READ_SEARCH', probes: [{ ...P('open_by_handle_null', 304, -1, 0, 0), granted: 'EFAULT' }] },
  { cap: 'BPF', probes: [{ ...P('bpf_bad_cmd', 321, 999, 0, 0), granted: 'EINVAL' }] },
  { cap: 'PERFMON', probes: [{ ...P('perf_event_open_null', 298, 0, 0, 0, 0, 0), granted: 'EFAULT' }] },
  { cap: 'SYS_NICE', probes: [{ ...P('move_pages_none', 279, 0, 0, 0, 0, 0, 0), granted: 'ok' }] },
  { cap: 'SYS_MODULE', probes: [{ ...P('finit_module_bad_fd', 313, -1, 0, 0), granted: 'not EPERM' }] },
  { cap: 'SYS_RAWIO', probes: [{ ...P('iopl_bad_level', 172, 99), granted: 'not EPERM' }] },
  { cap: 'NET_ADMIN', probes: [{ ...P('socket_alg', 41, 38, 5, 0), granted: 'not EPERM' }] },
];

serial('each capability-gated call is refused by default and reaches the kernel once that capability is added', async (t) => {
  const all = GATED.flatMap((g) => g.probes);
  const byDefault = await probe(t, all);
  for (const p of all) t.is(byDefault[p.name], p.denied ?? 'EPERM', `${p.name} by default`);
  for (const g of GATED) {
    const r = await probe(t, g.probes, { capAdd: [g.cap] });
    for (const p of g.probes) {
      if (p.granted === 'not EPERM') t.not(r[p.name], 'EPERM', `${p.name} with ${g.cap}`);
      else t.is(r[p.name], p.granted, `${p.name} with ${g.cap}`);
    }
  }
  // NET_ADMIN opens every socket family but vsock, which is not network-namespaced.
  t.is((await probe(t, [P('socket_vsock', 41, 40, 1, 0)], { capAdd: ['NET_ADMIN'] }))['socket_vsock'], 'EPERM');
});

serial('busybox: unshare, mount, hostname and swapon are refused by default; with CAP_SYS_ADMIN unshare, mount and hostname work', async (t) => {
  const script = [
    'unshare -n true 2>&1; echo "unshare=$?"',
    'mkdir /tmp/m; mount -t tmpfs tmpfs /tmp/m 2>&1; echo "mount=$?"',
    'hostname renamed 2>&1; echo "hostname=$?"',
    'touch /tmp/s; swapon /tmp/s 2>&1; echo "swapon=$?"', // no swap signature: even an allowed swapon would fail
  ].join('\n');
  const denied = await run(t, ['sh', '-c', script]);
  t.is(denied.code, 0, denied.err);
  t.regex(denied.out, /unshare\(0x40000000\): Operation not permitted\nunshare=1/);
  t.regex(denied.out, /mount: permission denied \(are you root\?\)\nmount=1/);
  t.regex(denied.out, /sethostname: Operation not permitted\nhostname=1/);
  t.regex(denied.out, /swapon: \/tmp\/s: Operation not permitted\nswapon=1/);
  const admin = await run(t, ['sh', '-c', 'unshare -n true && mkdir /tmp/m && mount -t tmpfs tmpfs /tmp/m && grep -c " /tmp/m tmpfs" /proc/mounts && hostname renamed && hostname'], { capAdd: ['SYS_ADMIN'] });
  t.is(admin.code, 0, `${admin.out}\n${admin.err}`);
  t.is(admin.out, '1\nrenamed');
});

serial('capabilities in the container: Docker\'s default lets root chown; --cap-drop ALL or CHOWN makes chown fail', async (t) => {
  const chown = ['sh', '-c', 'touch /tmp/f && chown nobody /tmp/f 2>&1; echo "exit=$?"; grep CapEff /proc/self/status'];
  const byDefault = await run(t, chown);
  t.regex(byDefault.out, /^exit=0\nCapEff:\t00000000a80425fb$/);
  const none = await run(t, chown, { capDrop: ['ALL'] });
  t.regex(none.out, /Operation not permitted\nexit=1\nCapEff:\t0000000000000000$/);
  const noChown = await run(t, chown, { capDrop: ['chown'] });
  t.regex(noChown.out, /Operation not permitted\nexit=1/);
});

// ---------------------------------------------------------------- pure: capability names

test('capabilities: Docker\'s rules for --cap-add/--cap-drop, names with or without CAP_ in any case, ALL both ways', (t) => {
  const cases: Array<[string[], string[], string[]]> = [
    [[], [], [...DEFAULT_CAPABILITIES].sort()],
    [['NET_ADMIN'], [], [...DEFAULT_CAPABILITIES, 'CAP_NET_ADMIN'].sort()],
    [['cap_net_admin'], [], [...DEFAULT_CAPABILITIES, 'CAP_NET_ADMIN'].sort()],
    [['Sys_Time'], ['chown', 'CAP_KILL'], [...DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_CHOWN' && c !== 'CAP_KILL'), 'CAP_SYS_TIME'].sort()],
    [[], ['ALL'], []],
    [['net_bind_service'], ['all'], ['CAP_NET_BIND_SERVICE']],
    [['ALL'], [], [...ALL_CAPABILITIES].sort()],
    [['ALL'], ['SYS_ADMIN', 'net_raw'], ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_ADMIN' && c !== 'CAP_NET_RAW').sort()],
    [['all'], ['all'], [...ALL_CAPABILITIES].sort()], // Docker: an ALL in add wins
    [['CHOWN'], ['CHOWN'], [...DEFAULT_CAPABILITIES].sort()], // drop first, then add back
    [[' chown '], [], [...DEFAULT_CAPABILITIES].sort()],
  ];
  for (const [add, drop, want] of cases) t.deepEqual(capabilities(add, drop), want, `add ${JSON.stringify(add)} drop ${JSON.stringify(drop)}`);
  t.is(ALL_CAPABILITIES.length, 41);
  t.is(ALL_CAPABILITIES.at(-1), 'CAP_CHECKPOINT_RESTORE');
  t.is(new Set(ALL_CAPABILITIES).size, 41);
  t.true(DEFAULT_CAPABILITIES.every((c) => ALL_CAPABILITIES.includes(c)));
});

test('capabilities: an unknown name is invalid_config, names the flag and the name, suggests a near one and lists the valid ones', (t) => {
  const typo = t.throws(() => capabilities(['NET_ADMINN'], []), { instanceOf: RuntimeError });
  t.is(typo?.code, 'invalid_config');
  t.regex(typo?.message ?? '', /unknown capability "NET_ADMINN" in --cap-add \(did you mean NET_ADMIN\?\)/);
  t.regex(typo?.message ?? '', /CHOWN, DAC_OVERRIDE, .*CHECKPOINT_RESTORE\), or ALL$/);
  const dropped = t.throws(() => capabilities([], ['CAP_BOGUS']), { instanceOf: RuntimeError });
  t.regex(dropped?.message ?? '', /unknown capability "CAP_BOGUS" in --cap-drop: give a Linux capability name/);
  t.throws(() => capabilities([''], []), { instanceOf: RuntimeError, message: /unknown capability ""/ });
});

// ---------------------------------------------------------------- pure: the profile's shape

const allow = (p: OciSeccomp): Set<string> => new Set(p.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW' && r.args === undefined).flatMap((r) => r.names));
const rulesFor = (p: OciSeccomp, name: string): OciSeccomp['syscalls'] => p.syscalls.filter((r) => r.names.includes(name));
const profileOf = (add: string[] = [], drop: string[] = []): OciSeccomp => {
  const p = defaultSeccompProfile(capabilities(add, drop));
  if (p === null) throw new Error('no profile on this architecture');
  return p;
};

test('profile: EPERM by default, x86_64 with its 32-bit ABIs, no name twice in a rule, no name both allowed outright and refused', (t) => {
  if (process.arch !== 'x64') return t.pass('the architecture list is checked on x86_64');
  for (const p of [profileOf(), profileOf(['ALL']), profileOf([], ['ALL'])]) {
    t.is(p.defaultAction, 'SCMP_ACT_ERRNO');
    t.is(p.defaultErrnoRet, 1);
    t.deepEqual(p.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    for (const r of p.syscalls) {
      t.is(new Set(r.names).size, r.names.length, `a name twice in ${JSON.stringify(r.names.slice(0, 3))}`);
      t.true(['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO'].includes(r.action));
    }
    const outright = allow(p);
    const refused = p.syscalls.filter((r) => r.action === 'SCMP_ACT_ERRNO').flatMap((r) => r.names);
    t.deepEqual(refused.filter((n) => outright.has(n)), []);
    // A name allowed outright is not also restricted by arguments (libseccomp would keep only one of the two).
    const conditional = p.syscalls.filter((r) => r.args !== undefined).flatMap((r) => r.names);
    t.deepEqual(conditional.filter((n) => outright.has(n)), []);
  }
});

test('profile: the calls every service makes are allowed; clone3 and io_uring answer ENOSYS; never kexec or the keyring', (t) => {
  const p = profileOf();
  const names = allow(p);
  for (const n of ['read', 'write', 'openat', 'openat2', 'statx', 'faccessat2', 'close_range', 'epoll_pwait2', 'pidfd_open', 'pidfd_send_signal', 'memfd_create', 'copy_file_range', 'getrandom', 'membarrier', 'rseq', 'futex', 'futex_waitv', 'execve', 'wait4', 'ptrace', 'chroot', 'landlock_restrict_self', 'seccomp', 'adjtimex', 'mbind', 'fchmodat2', 'accept4', 'sendmmsg', 'io_submit', 'semtimedop']) {
    t.true(names.has(n), `${n} is allowed by default`);
  }
  t.deepEqual(rulesFor(p, 'clone3'), [{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
  t.like(rulesFor(p, 'io_uring_setup'), [{ action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
  for (const everything of [profileOf(), profileOf(['ALL'])]) {
    for (const n of ['kexec_load', 'kexec_file_load', 'keyctl', 'add_key', 'request_key', 'io_uring_enter', 'modify_ldt', 'uselib', 'nfsservctl']) {
      t.false(allow(everything).has(n), `${n} is never allowed`);
    }
  }
});

test('profile: clone and unshare may not create namespaces without CAP_SYS_ADMIN; with it clone, clone3 and unshare are free', (t) => {
  const p = profileOf();
  t.deepEqual(rulesFor(p, 'clone'), [{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] }]);
  t.deepEqual(rulesFor(p, 'unshare'), [{ names: ['unshare'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020080, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] }]);
  const admin = profileOf(['SYS_ADMIN']);
  for (const n of ['clone', 'clone3', 'unshare', 'setns', 'mount', 'umount2', 'pivot_root', 'swapon']) {
    t.true(allow(admin).has(n), n);
    t.deepEqual(rulesFor(admin, n).length, 1, `${n} has one rule`);
  }
});

test('profile: socket families and personality are restricted by argument', (t) => {
  const families = (p: OciSeccomp): string[] => rulesFor(p, 'socket').map((r) => `${r.args?.[0]?.op} ${r.args?.[0]?.value}`);
  t.deepEqual(families(profileOf()), ['SCMP_CMP_EQ 1', 'SCMP_CMP_EQ 2', 'SCMP_CMP_EQ 10', 'SCMP_CMP_EQ 16', 'SCMP_CMP_EQ 17']);
  t.deepEqual(families(profileOf([], ['NET_RAW'])), ['SCMP_CMP_EQ 1', 'SCMP_CMP_EQ 2', 'SCMP_CMP_EQ 10', 'SCMP_CMP_EQ 16']);
  t.deepEqual(families(profileOf(['NET_ADMIN'])), ['SCMP_CMP_NE 40']);
  t.deepEqual(rulesFor(profileOf(), 'socketcall').map((r) => r.args), [[{ index: 0, value: 1, op: 'SCMP_CMP_NE' }]]);
  t.deepEqual(rulesFor(profileOf(), 'personality').map((r) => r.args?.[0]?.value), [0, 8, 0x20000, 0x20008, 0xffffffff]);
});

test('profile: each capability-gated call is allowed exactly when the container holds (one of) its capabilities', (t) => {
  const gated: Array<[string, string[]]> = [
    ['mount', ['SYS_ADMIN']], ['setns', ['SYS_ADMIN']], ['sethostname', ['SYS_ADMIN']], ['swapon', ['SYS_ADMIN']],
    ['bpf', ['SYS_ADMIN', 'BPF']], ['perf_event_open', ['SYS_ADMIN', 'PERFMON']], ['syslog', ['SYS_ADMIN', 'SYSLOG']],
    ['name_to_handle_at', ['SYS_ADMIN', 'DAC_READ_SEARCH']], ['open_by_handle_at', ['DAC_READ_SEARCH']],
    ['reboot', ['SYS_BOOT']], ['init_module', ['SYS_MODULE']], ['finit_module', ['SYS_MODULE']], ['acct', ['SYS_PACCT']],
    ['kcmp', ['SYS_PTRACE']], ['userfaultfd', ['SYS_PTRACE']], ['iopl', ['SYS_RAWIO']], ['clock_settime', ['SYS_TIME']],
    ['settimeofday', ['SYS_TIME']], ['vhangup', ['SYS_TTY_CONFIG']], ['move_pages', ['SYS_NICE']],
  ];
  const none = allow(profileOf([], ['ALL']));
  const byDefault = allow(profileOf());
  for (const [call, caps] of gated) {
    t.false(byDefault.has(call), `${call} is not in the default profile`);
    t.false(none.has(call), `${call} without any capability`);
    for (const cap of caps) t.true(allow(profileOf([cap], ['ALL'])).has(call), `${call} with only ${cap}`);
  }
  // CAP_SYS_CHROOT is in Docker's set: chroot is allowed by default, and goes with the capability.
  t.true(byDefault.has('chroot'));
  t.false(allow(profileOf([], ['SYS_CHROOT'])).has('chroot'));
});

// ---------------------------------------------------------------- pure: every name is a real system call

/** System calls newer than Debian 12's kernel headers (Linux 6.1), with the release that added them. */
const NEWER_THAN_HEADERS: Readonly<Record<string, string>> = {
  cachestat: '6.5', fchmodat2: '6.6', map_shadow_stack: '6.6', futex_wake: '6.7', futex_wait: '6.7', futex_requeue: '6.7',
  statmount: '6.8', listmount: '6.8', mseal: '6.10', uretprobe: '6.11', setxattrat: '6.13', getxattrat: '6.13',
  listxattrat: '6.13', removexattrat: '6.13', open_tree_attr: '6.15',
};
/** The 32-bit arm ABI's own calls (arch/arm/tools/syscall.tbl), which no x86 header lists. */
const ARM32_ONLY = ['arm_fadvise64_64', 'arm_sync_file_range', 'breakpoint', 'cacheflush', 'recv', 'send', 'set_tls'];

test('profile: every name is a Linux system call (x86_64, i386, x32 or generic headers from linux-libc-dev, or a documented newer or arm one)', (t) => {
  const headers = ['x86_64-linux-gnu/asm/unistd_64.h', 'x86_64-linux-gnu/asm/unistd_32.h', 'x86_64-linux-gnu/asm/unistd_x32.h', 'asm-generic/unistd.h'].map((h) => join('/usr/include', h));
  const absent = headers.filter((h) => !existsSync(h));
  if (absent.length > 0) return t.fail(`${absent.join(', ')} missing: apt-get install linux-libc-dev`);
  const known = new Set(ARM32_ONLY.concat(Object.keys(NEWER_THAN_HEADERS)));
  for (const h of headers) for (const m of readFileSync(h, 'utf8').matchAll(/#define __NR3?2?6?4?_(\w+)/g)) known.add(m[1]!);
  t.true(known.has('openat2') && known.has('futex_waitv'), 'the headers were read');
  const every = new Set([profileOf(['ALL']), profileOf(), profileOf([], ['ALL'])].flatMap((p) => p.syscalls.flatMap((r) => r.names)));
  t.deepEqual([...every].filter((n) => !known.has(n)), []);
});
