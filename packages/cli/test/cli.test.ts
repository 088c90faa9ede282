// The swarm command end to end: a real `swarm daemon` child process on a temp data dir and socket, driven by
// the CLI's own verbs; SIGTERM shuts it down cleanly and a restart on the same dir is the same node.

import test, { type ExecutionContext } from 'ava';
import { pollUntil } from '@swarm/wire';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient } from '@swarm/api';
import { startRegistry } from '@swarm/lab';
import { makeImages } from '@swarm/runtime';
import type { NodeRow } from '../src/node-commands.js';
import { mountsUnder } from './mounts.js';

function runWithInput(socketPath: string, args: string[], input: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SWARM_BIN, ...args], { env: { ...process.env, SWARM_SOCKET: socketPath }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const SWARM_BIN = fileURLToPath(new URL('../../bin/swarm.js', import.meta.url));
const START_DEADLINE_MS = 20_000;
const STOP_DEADLINE_MS = 20_000;
const MAX_CAPTURED_BYTES = 1024 * 1024;

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(socketPath: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SWARM_BIN, ...args], {
      env: { ...process.env, SWARM_SOCKET: socketPath, SWARM_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout = (stdout + b.toString('utf8')).slice(-MAX_CAPTURED_BYTES)));
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString('utf8')).slice(-MAX_CAPTURED_BYTES)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const until = <T>(what: string, probe: () => Promise<T | undefined>, deadlineMs: number): Promise<T> =>
  pollUntil(what, probe, { deadlineMs, intervalMs: 50, retryErrors: true });

interface DaemonProcess {
  child: ChildProcess;
  stderr(): string;
  /** SIGTERM, then the exit code once it exited. */
  stop(): Promise<number | null>;
}

interface Env {
  root: string;
  dataDir: string;
  socketPath: string;
  startDaemon(): Promise<DaemonProcess>;
}

async function env(t: ExecutionContext): Promise<Env> {
  const root = await mkdtemp(join(tmpdir(), 'swarm-cli-test-'));
  const dataDir = join(root, 'data');
  const socketPath = join(root, 's.sock');
  const children = new Set<ChildProcess>();
  t.teardown(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        const exited = new Promise((r) => child.once('exit', r));
        process.kill(child.pid, 'SIGKILL');
        await exited;
      }
    }
    // A daemon killed with tasks that hold secrets leaves their tmpfs mounted (a restart would clean them up).
    for (const mount of mountsUnder(root)) execFileSync('/bin/umount', ['-l', mount]);
    await rm(root, { recursive: true, force: true });
  });
  return {
    root,
    dataDir,
    socketPath,
    async startDaemon() {
      const child = spawn(
        process.execPath,
        [SWARM_BIN, 'daemon', '--data-dir', dataDir, '--socket', socketPath, '--hostname', 'cli-test-host', '--gossip-port', '0', '--runtime', 'process'],
        { env: { ...process.env, SWARM_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      children.add(child);
      let stderr = '';
      child.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString('utf8')).slice(-MAX_CAPTURED_BYTES)));
      const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const client = new ApiClient({ socketPath, timeoutMs: 2_000 });
      await until(
        'the daemon socket to answer',
        async () => {
          if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}: ${stderr}`);
          await client.ping();
          return true;
        },
        START_DEADLINE_MS,
      );
      return {
        child,
        stderr: () => stderr,
        async stop() {
          if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
          const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), STOP_DEADLINE_MS);
          const code = await exit;
          clearTimeout(timer);
          return code;
        },
      };
    },
  };
}

/** A line of `node ls --format json`; Pick keeps the test honest about the fields it reads. */
type NodeLine = Pick<NodeRow, 'ID' | 'Self' | 'Hostname' | 'Status' | 'Availability' | 'ManagerStatus' | 'EngineVersion'>;

function jsonLines(text: string): NodeLine[] {
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as NodeLine);
}

test('a client command without a running daemon says so in one line, exit 1, no stack trace', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'swarm-cli-test-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const socketPath = join(root, 'nobody.sock');
  const res = await run(socketPath, ['node', 'ls']);
  t.is(res.code, 1);
  t.is(res.stderr, `swarm: cannot reach the swarm daemon at ${socketPath}: is \`swarm daemon\` running?\n`);
  t.is(res.stdout, '');
});

test('swarm daemon + init + node ls/inspect; SIGTERM stops it cleanly; a restart is the same node in the same swarm', async (t) => {
  const e = await env(t);
  const first = await e.startDaemon();

  const init = await run(e.socketPath, ['init', '--advertise-addr', '127.0.0.1', '--listen-addr', '127.0.0.1:2377']);
  t.is(init.code, 0, init.stderr);
  const m = /^Swarm initialized: current node \(([0-9a-z]{25})\) is now a manager\.\n/.exec(init.stdout);
  t.truthy(m, init.stdout);
  const nodeId = m?.[1] ?? '';
  t.regex(init.stdout, /\n {4}swarm join --token SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25} 127\.0\.0\.1:2377\n/);
  t.regex(init.stdout, /To add a manager to this swarm, run 'swarm join-token manager' and follow the instructions\./);

  const again = await run(e.socketPath, ['init']);
  t.is(again.code, 1);
  t.is(again.stderr, 'swarm: this node is already part of a swarm: use `swarm leave` to leave it first\n');

  const ls = await run(e.socketPath, ['node', 'ls']);
  t.is(ls.code, 0, ls.stderr);
  const [header, row, ...rest] = ls.stdout.trimEnd().split('\n');
  t.is(header, 'ID                            HOSTNAME        STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION');
  t.is(row, `${nodeId} *   cli-test-host   Ready     Active         Leader           0.1.0`);
  t.deepEqual(rest, []);

  const json = await run(e.socketPath, ['node', 'ls', '--format', 'json']);
  t.is(json.code, 0, json.stderr);
  const lines = jsonLines(json.stdout);
  t.is(lines.length, 1);
  t.like(lines[0], { ID: nodeId, Self: true, Hostname: 'cli-test-host', Status: 'Ready', Availability: 'Active', ManagerStatus: 'Leader', EngineVersion: '0.1.0' });

  const inspect = await run(e.socketPath, ['node', 'inspect', 'cli-test-host']);
  t.is(inspect.code, 0, inspect.stderr);
  const docs = JSON.parse(inspect.stdout) as Array<Record<string, unknown>>;
  t.is(docs.length, 1);
  t.like(docs[0], {
    ID: nodeId,
    Spec: { Role: 'manager', Availability: 'active', Labels: {} },
    Description: { Hostname: 'cli-test-host', Engine: { EngineVersion: '0.1.0' } },
    Status: { State: 'ready', Addr: '127.0.0.1' },
    ManagerStatus: { Leader: true, Reachability: 'reachable', Addr: '127.0.0.1:2377' },
  });
  t.regex(String(docs[0]?.['CreatedAt']), /^\d{4}-\d\d-\d\dT/);
  const pretty = await run(e.socketPath, ['node', 'inspect', '--pretty', nodeId.slice(0, 6)]);
  t.regex(pretty.stdout, new RegExp(`^ID:\\s+${nodeId}\\n`));
  t.regex(pretty.stdout, /\n Leader:\s+Yes\n/);
  const missing = await run(e.socketPath, ['node', 'inspect', 'no-such-node']);
  t.is(missing.code, 1);
  t.is(missing.stderr, 'swarm: no such node: no-such-node\n');

  const token = await run(e.socketPath, ['join-token', '-q', 'worker']);
  t.regex(token.stdout, /^SWMTKN-1-\S+\n$/);
  const rotated = await run(e.socketPath, ['join-token', '--rotate', 'worker']);
  t.regex(rotated.stdout, /^Successfully rotated worker join token\.\n/);
  t.false(rotated.stdout.includes(token.stdout.trim()), 'the rotated token differs');

  t.is(await first.stop(), 0, `clean exit on SIGTERM; stderr: ${first.stderr().slice(-2000)}`);
  await t.throwsAsync(stat(e.socketPath), undefined, 'the socket file is gone');
  await t.throwsAsync(stat(join(e.dataDir, 'swarm.lock')), undefined, 'the data dir lock is released');

  const second = await e.startDaemon();
  const after = await run(e.socketPath, ['node', 'ls', '--format', 'json']);
  t.is(after.code, 0, after.stderr);
  t.deepEqual(
    jsonLines(after.stdout).map((l) => [l.ID, l.Self, l.Status, l.ManagerStatus]),
    [[nodeId, true, 'Ready', 'Leader']],
  );
  const info = await run(e.socketPath, ['info', '--format', 'json']);
  const doc = JSON.parse(info.stdout) as { Swarm: { NodeID: string; LocalNodeState: string } };
  t.is(doc.Swarm.NodeID, nodeId);
  t.is(doc.Swarm.LocalNodeState, 'active');
  t.is(await second.stop(), 0);
});

test('swarm join with a malformed token: refused in one line on stderr, exit 1, and the node stays out of any swarm', async (t) => {
  const e = await env(t);
  await e.startDaemon();
  const res = await run(e.socketPath, ['join', '--token', 'SWMTKN-1-not-a-token', '127.0.0.1:9']);
  t.is(res.code, 1);
  t.regex(res.stderr, /^swarm: .*token.*\n$/);
  t.is(res.stdout, '');
  const info = await run(e.socketPath, ['info', '--format', 'json']);
  t.is((JSON.parse(info.stdout) as { Swarm: { LocalNodeState: string } }).Swarm.LocalNodeState, 'inactive');
});

test('node update/promote/demote/rm and leave on a one-manager swarm: Docker\'s messages, refusals in one line, leave --force', async (t) => {
  const e = await env(t);
  await e.startDaemon();
  // 127.0.0.2: the other tests of this file run at the same time and hold 127.0.0.1:2377.
  const init = ['init', '--advertise-addr', '127.0.0.2', '--listen-addr', '127.0.0.2:2377'];
  t.is((await run(e.socketPath, init)).code, 0);

  const update = await run(e.socketPath, ['node', 'update', '--availability', 'pause', '--label-add', 'zone=a', '--label-add', 'ssd', 'cli-test-host']);
  t.is(update.code, 0, update.stderr);
  t.regex(update.stdout, /^[0-9a-z]{25}\n$/);
  const doc = JSON.parse((await run(e.socketPath, ['node', 'inspect', 'self'])).stdout) as Array<{ Spec: { Availability: string; Labels: Record<string, string> } }>;
  t.deepEqual(doc[0]?.Spec, { ...doc[0]?.Spec, Availability: 'pause', Labels: { zone: 'a', ssd: '' } });

  const badFlag = await run(e.socketPath, ['node', 'update', '--availability', 'sleepy', 'cli-test-host']);
  t.is(badFlag.code, 1);
  t.is(badFlag.stderr, 'swarm: invalid --availability "sleepy": use active, pause or drain\n');
  const missingLabel = await run(e.socketPath, ['node', 'update', '--label-rm', 'rack', 'cli-test-host']);
  t.is(missingLabel.stderr, "swarm: key rack doesn't exist in node's labels\n");
  const nothing = await run(e.socketPath, ['node', 'update', 'cli-test-host']);
  t.regex(nothing.stderr, /^swarm: node update needs at least one of/);

  t.is((await run(e.socketPath, ['node', 'promote', 'cli-test-host'])).stdout, 'Node cli-test-host is already a manager.\n');
  const demote = await run(e.socketPath, ['node', 'demote', 'cli-test-host']);
  t.is(demote.code, 1);
  t.regex(demote.stderr, /^swarm: attempting to demote the last manager of the swarm/);
  const rm = await run(e.socketPath, ['node', 'rm', '--force', 'cli-test-host']);
  t.is(rm.code, 1);
  t.regex(rm.stderr, /is a cluster manager and is a member of the raft cluster\. It must be demoted to worker before removal\n$/);

  const leave = await run(e.socketPath, ['leave']);
  t.is(leave.code, 1);
  t.regex(leave.stderr, /^swarm: You are attempting to leave the swarm on a node that is participating as a manager\. Removing the last manager erases all current state of the swarm\. Use `--force` to ignore this message\.\n$/);
  const forced = await run(e.socketPath, ['leave', '--force']);
  t.is(forced.code, 0, forced.stderr);
  t.is(forced.stdout, 'Node left the swarm.\n');
  const info = await run(e.socketPath, ['info', '--format', 'json']);
  t.is((JSON.parse(info.stdout) as { Swarm: { LocalNodeState: string } }).Swarm.LocalNodeState, 'inactive');
  // Out of the swarm, the node can start a new one.
  t.is((await run(e.socketPath, init)).code, 0);
});

test('network verbs end to end: create prints the id, ls shows Docker\'s columns with ingress, inspect the JSON array, service --network, rm refused while used then removes several', async (t) => {
  const e = await env(t);
  await e.startDaemon();
  // 127.0.0.3: the other tests of this file run at the same time and hold 127.0.0.1 and 127.0.0.2.
  t.is((await run(e.socketPath, ['init', '--advertise-addr', '127.0.0.3', '--listen-addr', '127.0.0.3:2377'])).code, 0);

  const created = await run(e.socketPath, ['network', 'create', '--subnet', '10.70.0.0/24', '--label', 'tier=db', 'backend']);
  t.is(created.code, 0, created.stderr);
  t.regex(created.stdout, /^[0-9a-z]{25}\n$/);
  const id = created.stdout.trim();
  t.is((await run(e.socketPath, ['network', 'create', 'spare'])).code, 0);

  const ls = await run(e.socketPath, ['network', 'ls']);
  const lines = ls.stdout.trimEnd().split('\n');
  t.regex(lines[0] ?? '', /^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/);
  t.deepEqual(lines.slice(1).map((l) => l.split(/\s+/).slice(1)), [['backend', 'overlay', 'swarm'], ['ingress', 'overlay', 'swarm'], ['spare', 'overlay', 'swarm']]);
  t.is(lines[1]?.slice(0, 12), id.slice(0, 12));
  t.is((await run(e.socketPath, ['network', 'ls', '-q', '--filter', 'label=tier=db'])).stdout, `${id.slice(0, 12)}\n`);

  const inspect = JSON.parse((await run(e.socketPath, ['network', 'inspect', 'backend'])).stdout) as Array<{ Id: string; IPAM: { Config: Array<{ Subnet: string; Gateway: string }> } }>;
  t.is(inspect[0]?.Id, id);
  t.deepEqual(inspect[0]?.IPAM.Config, [{ Subnet: '10.70.0.0/24', Gateway: '10.70.0.1' }]);

  const bridge = await run(e.socketPath, ['network', 'create', '-d', 'bridge', 'local']);
  t.is(bridge.code, 1);
  t.regex(bridge.stderr, /^swarm: invalid --driver "bridge": swarm makes overlay networks only/);
  const overlap = await run(e.socketPath, ['network', 'create', '--subnet', '10.70.0.0/16', 'other']);
  t.is(overlap.stderr, 'swarm: IPAM.Config[0].Subnet: subnet 10.70.0.0/16 overlaps network backend (10.70.0.0/24)\n');

  const svc = await run(e.socketPath, ['service', 'create', '--detach', '--name', 'db', '--network', 'name=backend,alias=store', 'busybox', 'sleep', '600']);
  t.is(svc.code, 0, svc.stderr);
  const spec = JSON.parse((await run(e.socketPath, ['service', 'inspect', 'db'])).stdout) as Array<{ Spec: { TaskTemplate: { Networks?: unknown } } }>;
  t.deepEqual(spec[0]?.Spec.TaskTemplate.Networks, [{ Target: id, Aliases: ['store'] }]);

  const refused = await run(e.socketPath, ['network', 'rm', 'spare', 'backend']);
  t.is(refused.code, 1);
  t.is(refused.stdout, 'spare\n');
  t.regex(refused.stderr, /^swarm: network backend is in use by service db/);

  const detached = await run(e.socketPath, ['service', 'update', '--detach', '--network-rm', 'backend', 'db']);
  t.is(detached.code, 0, detached.stderr);
  t.is((JSON.parse((await run(e.socketPath, ['service', 'inspect', 'db'])).stdout) as typeof spec)[0]?.Spec.TaskTemplate.Networks, undefined);
  t.is((await run(e.socketPath, ['service', 'rm', 'db'])).code, 0);
  // The old tasks give their addresses back as they stop; then the network goes.
  const removed = await until('network backend removed', async () => {
    const r = await run(e.socketPath, ['network', 'rm', 'backend']);
    return r.code === 0 ? r : undefined;
  }, 30_000);
  t.is(removed.stdout, 'backend\n');
  const missing = await run(e.socketPath, ['network', 'inspect', 'backend']);
  t.is(missing.code, 1);
  t.is(missing.stderr, 'swarm: network backend not found\n');
});

test('published ports end to end: create -p in both syntaxes, ls PORTS with the picked port, update --publish-rm/--publish-add, a port in use refused naming its service', async (t) => {
  const e = await env(t);
  await e.startDaemon();
  // 127.0.0.4: the other tests of this file run at the same time and hold 127.0.0.1 to 127.0.0.3.
  t.is((await run(e.socketPath, ['init', '--advertise-addr', '127.0.0.4', '--listen-addr', '127.0.0.4:2377'])).code, 0);
  const created = await run(e.socketPath, ['service', 'create', '--detach', '--name', 'web', '--replicas', '0', '-p', '8080:80', '--publish', 'target=9090,protocol=udp', 'busybox', 'sleep', '600']);
  t.is(created.code, 0, created.stderr);
  const ports = await until('the udp port picked', async () => {
    const ls = await run(e.socketPath, ['service', 'ls']);
    const m = /\*:8080->80\/tcp, \*:(\d+)->9090\/udp/.exec(ls.stdout);
    return m === null ? undefined : Number(m[1]);
  }, 15_000);
  t.true(ports >= 30000 && ports <= 32767, `${ports} in the dynamic range`);

  const taken = await run(e.socketPath, ['service', 'create', '--detach', '--name', 'other', '-p', '8080:1', 'busybox']);
  t.is(taken.code, 1);
  t.regex(taken.stderr, /^swarm: EndpointSpec\.Ports\[0\]\.PublishedPort: port 8080\/tcp is already in use by service web/);
  const bad = await run(e.socketPath, ['service', 'create', '--detach', '-p', '8080:http', 'busybox']);
  t.is(bad.stderr, 'swarm: invalid --publish "8080:http": target "http" is not a port (1-65535)\n');

  const updated = await run(e.socketPath, ['service', 'update', '--detach', '--publish-rm', '80', '--publish-add', 'published=8081,target=81,mode=host', 'web']);
  t.is(updated.code, 0, updated.stderr);
  const [inspected] = JSON.parse((await run(e.socketPath, ['service', 'inspect', 'web'])).stdout) as Array<{ Spec: { EndpointSpec: unknown } }>;
  t.deepEqual(inspected?.Spec.EndpointSpec, {
    Mode: 'vip',
    Ports: [
      { Protocol: 'udp', TargetPort: 9090, PublishMode: 'ingress' },
      { Protocol: 'tcp', TargetPort: 81, PublishedPort: 8081, PublishMode: 'host' },
    ],
  });
  const after = await until('8080 gone from ls', async () => {
    const ls = await run(e.socketPath, ['service', 'ls']);
    return ls.stdout.includes('8080') ? undefined : ls.stdout;
  }, 15_000);
  t.regex(after, new RegExp(`\\*:${ports}->9090/udp\\s*\\n`), 'the picked port is kept; the host-mode port is not listed');
});

test('ulimits end to end: create --ulimit (repeatable), inspect shows Docker\'s Ulimits, update --ulimit-rm/--ulimit-add, a bad one refused in one line naming the flag', async (t) => {
  const e = await env(t);
  await e.startDaemon();
  // 127.0.0.6: the other tests of this file hold 127.0.0.1 to 127.0.0.5.
  t.is((await run(e.socketPath, ['init', '--advertise-addr', '127.0.0.6', '--listen-addr', '127.0.0.6:2377'])).code, 0);
  const created = await run(e.socketPath, ['service', 'create', '--detach', '--name', 'lim', '--replicas', '0', '--ulimit', 'nofile=1024:2048', '--ulimit', 'nproc=500', 'busybox', 'sleep', '600']);
  t.is(created.code, 0, created.stderr);
  const ulimits = async (): Promise<unknown> => (JSON.parse((await run(e.socketPath, ['service', 'inspect', 'lim'])).stdout) as Array<{ Spec: { TaskTemplate: { ContainerSpec: { Ulimits?: unknown } } } }>)[0]?.Spec.TaskTemplate.ContainerSpec.Ulimits;
  t.deepEqual(await ulimits(), [{ Name: 'nofile', Soft: 1024, Hard: 2048 }, { Name: 'nproc', Soft: 500, Hard: 500 }]);
  const updated = await run(e.socketPath, ['service', 'update', '--detach', '--ulimit-rm', 'nproc', '--ulimit-add', 'core=-1', 'lim']);
  t.is(updated.code, 0, updated.stderr);
  t.deepEqual(await ulimits(), [{ Name: 'core', Soft: -1, Hard: -1 }, { Name: 'nofile', Soft: 1024, Hard: 2048 }]);
  const bad = await run(e.socketPath, ['service', 'create', '--detach', '--ulimit', 'nofile=2048:1024', 'busybox']);
  t.is(bad.code, 1);
  t.is(bad.stderr, 'swarm: invalid --ulimit "nofile=2048:1024": the soft limit 2048 is above the hard limit 1024\n');
});

test('image verbs end to end: load, ls, tag, push to a real registry, rm, pull back, inspect, save; login to an htpasswd registry; a bad pull is one line', async (t) => {
  if (process.getuid?.() !== 0) return t.fail('needs root: layers keep their owners (CI runs as root)');
  const e = await env(t);
  await makeImages(join(e.root, 'imgs'));
  const registryDir = join(e.root, 'registry');
  await mkdir(registryDir);
  const port = await freePort();
  const registry = await startRegistry(registryDir, `127.0.0.1:${port}`);
  t.teardown(() => {
    try {
      process.kill(registry.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  await e.startDaemon();
  const swarm = (args: string[]): Promise<RunResult> => run(e.socketPath, args);

  const load = await swarm(['image', 'load', '-i', join(e.root, 'imgs', 'images.tar')]);
  t.is(load.code, 0, load.stderr);
  t.deepEqual(load.stdout.trim().split('\n').sort(), ['Loaded image: busybox:latest', 'Loaded image: swarm/crasher:latest', 'Loaded image: swarm/httpd:latest']);
  const ls = await swarm(['image', 'ls']);
  t.regex(ls.stdout, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\n/);
  t.regex(ls.stdout, /\nbusybox\s+latest\s+[0-9a-f]{12}\s+/);

  const remote = `127.0.0.1:${port}/team/busybox:v1`;
  t.is((await swarm(['image', 'tag', 'busybox', remote])).code, 0);
  const push = await swarm(['image', 'push', remote]);
  t.is(push.code, 0, push.stderr);
  t.regex(push.stdout, /v1: digest: sha256:[0-9a-f]{64}/);
  const rm1 = await swarm(['image', 'rm', remote]);
  t.is(rm1.stdout.trim(), `Untagged: ${remote}`);
  const pull = await swarm(['image', 'pull', remote]);
  t.is(pull.code, 0, pull.stderr);
  t.regex(pull.stdout, /v1: Pulling from team\/busybox/);
  t.regex(pull.stdout, /Status: (Downloaded newer image|Image is up to date) for /);
  const inspect = JSON.parse((await swarm(['image', 'inspect', remote])).stdout) as Array<{ RepoTags: string[]; Config: { Cmd: string[] } }>;
  t.true(inspect[0]?.RepoTags.includes(remote));
  t.deepEqual(inspect[0]?.Config.Cmd, ['sh']);
  const out = join(e.root, 'saved.tar');
  t.is((await swarm(['image', 'save', '-o', out, 'swarm/httpd'])).code, 0);
  t.true((await stat(out)).size > 100_000, 'the archive holds the busybox layer');

  // A registry that wants a login (htpasswd, bcrypt): refused without one, refused with a wrong password, then
  // `swarm login --password-stdin` and the push goes through; `logout` forgets it.
  const authDir = join(e.root, 'auth-registry');
  await mkdir(authDir);
  const authPort = await freePort();
  execFileSync('sh', ['-c', `htpasswd -Bbn alice s3cret > ${join(authDir, 'htpasswd')}`]);
  await writeFile(
    join(authDir, 'config.yml'),
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(authDir, 'data')}\nhttp:\n  addr: 127.0.0.1:${authPort}\nauth:\n  htpasswd:\n    realm: test\n    path: ${join(authDir, 'htpasswd')}\n`,
  );
  const authRegistry = spawn('/usr/bin/docker-registry', ['serve', join(authDir, 'config.yml')], { stdio: 'ignore' });
  t.teardown(() => void authRegistry.kill('SIGKILL'));
  await until('the auth registry answers', async () => ((await fetch(`http://127.0.0.1:${authPort}/v2/`)).status === 401 ? true : undefined), 15_000);
  const secured = `127.0.0.1:${authPort}/team/busybox:v1`;
  t.is((await swarm(['image', 'tag', 'busybox', secured])).code, 0);
  const anonymous = await swarm(['image', 'push', secured]);
  t.is(anonymous.code, 1);
  t.regex(anonymous.stderr, /requires a login/);
  const wrong = await swarm(['login', `127.0.0.1:${authPort}`, '-u', 'alice', '-p', 'nope']);
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /refused the credentials of alice/);
  const login = await runWithInput(e.socketPath, ['login', `127.0.0.1:${authPort}`, '-u', 'alice', '--password-stdin'], 's3cret\n');
  t.is(login.code, 0, login.stderr);
  t.is(login.stdout.trim(), 'Login Succeeded');
  const pushed = await swarm(['image', 'push', secured]);
  t.is(pushed.code, 0, pushed.stderr);
  t.is((await swarm(['logout', `127.0.0.1:${authPort}`])).stdout.trim(), `Removing login credentials for 127.0.0.1:${authPort}`);
  t.is((await swarm(['image', 'push', secured])).code, 1);

  const bad = await swarm(['image', 'pull', `127.0.0.1:${port}/no/such:image`]);
  t.is(bad.code, 1);
  t.is(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  t.notRegex(bad.stderr, /\n\s+at /, 'no stack trace');
});

test('secret and config verbs end to end: create from a file and from stdin, ls columns and filters, inspect without data (config: Data in base64), service --secret/--config and inspect, rm refused while used naming the service, update --secret-rm then rm', async (t) => {
  const e = await env(t);
  await e.startDaemon();
  // 127.0.0.5: the other tests of this file run at the same time and hold 127.0.0.1 to 127.0.0.4.
  t.is((await run(e.socketPath, ['init', '--advertise-addr', '127.0.0.5', '--listen-addr', '127.0.0.5:2377'])).code, 0);
  const file = join(e.root, 'pw.txt');
  await writeFile(file, 'hunter2-cli');

  const created = await run(e.socketPath, ['secret', 'create', '--label', 'env=prod', 'db-password', file]);
  t.is(created.code, 0, created.stderr);
  t.regex(created.stdout, /^[0-9a-z]{25}\n$/);
  const id = created.stdout.trim();
  const fromStdin = await runWithInput(e.socketPath, ['secret', 'create', 'api-key', '-'], 'from-stdin');
  t.is(fromStdin.code, 0, fromStdin.stderr);
  const cfg = await runWithInput(e.socketPath, ['config', 'create', 'app.conf', '-'], 'listen 80\n');
  t.is(cfg.code, 0, cfg.stderr);

  const ls = await run(e.socketPath, ['secret', 'ls']);
  const lines = ls.stdout.trimEnd().split('\n');
  t.regex(lines[0] ?? '', /^ID\s+NAME\s+CREATED\s+UPDATED$/);
  t.deepEqual(lines.slice(1).map((l) => l.split(/\s{3,}/)[1]), ['api-key', 'db-password']);
  t.regex(lines[2] ?? '', new RegExp(`^${id}\\s+db-password\\s+(Less than a second|\\d+ seconds?) ago\\s+`));
  t.is((await run(e.socketPath, ['secret', 'ls', '-q', '--filter', 'label=env=prod'])).stdout, `${id}\n`);
  t.is((await run(e.socketPath, ['secret', 'ls', '-q', '--filter', 'name=api'])).stdout.trim().length, 25);
  t.regex((await run(e.socketPath, ['secret', 'ls', '--filter', 'driver=x'])).stderr, /^swarm: invalid filter "driver=x"/);

  const inspect = await run(e.socketPath, ['secret', 'inspect', 'db-password']);
  t.false(inspect.stdout.includes('hunter2') || inspect.stdout.includes(Buffer.from('hunter2-cli').toString('base64')));
  t.deepEqual((JSON.parse(inspect.stdout) as Array<{ ID: string; Spec: unknown }>).map((s) => [s.ID, s.Spec]), [[id, { Name: 'db-password', Labels: { env: 'prod' } }]]);
  const cfgDoc = JSON.parse((await run(e.socketPath, ['config', 'inspect', 'app.conf'])).stdout) as Array<{ Spec: { Data: string } }>;
  t.is(Buffer.from(cfgDoc[0]?.Spec.Data ?? '', 'base64').toString(), 'listen 80\n');

  const badName = await runWithInput(e.socketPath, ['secret', 'create', '_bad', '-'], 'x');
  t.is(badName.code, 1);
  t.regex(badName.stderr, /^swarm: Name: invalid secret name "_bad"/);
  const missingFile = await run(e.socketPath, ['secret', 'create', 'x', join(e.root, 'nope')]);
  t.regex(missingFile.stderr, /^swarm: cannot read .*nope: no such file\n$/);
  const unknown = await run(e.socketPath, ['service', 'create', '--detach', '--secret', 'nope', 'busybox', 'sleep', '600']);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /^swarm: TaskTemplate\.ContainerSpec\.Secrets\[0\]\.SecretName: secret not found: nope/);

  const svc = await run(e.socketPath, ['service', 'create', '--detach', '--name', 'api', '--secret', 'source=db-password,target=db,mode=0400', '--config', 'source=app.conf,target=/etc/app.conf', 'busybox', 'sleep', '600']);
  t.is(svc.code, 0, svc.stderr);
  const spec = JSON.parse((await run(e.socketPath, ['service', 'inspect', 'api'])).stdout) as Array<{ Spec: { TaskTemplate: { ContainerSpec: { Secrets?: unknown; Configs?: Array<{ ConfigName: string; File: unknown }> } } } }>;
  t.deepEqual(spec[0]?.Spec.TaskTemplate.ContainerSpec.Secrets, [{ File: { Name: 'db', UID: '0', GID: '0', Mode: 0o400 }, SecretID: id, SecretName: 'db-password' }]);
  t.deepEqual(spec[0]?.Spec.TaskTemplate.ContainerSpec.Configs?.map((c) => [c.ConfigName, c.File]), [['app.conf', { Name: '/etc/app.conf', UID: '0', GID: '0', Mode: 0o444 }]]);

  const refused = await run(e.socketPath, ['secret', 'rm', 'api-key', 'db-password']);
  t.is(refused.code, 1);
  t.is(refused.stdout, 'api-key\n');
  t.is(refused.stderr, "swarm: secret 'db-password' is in use by the following service: api\n");
  const updated = await run(e.socketPath, ['service', 'update', '--detach', '--secret-rm', 'db-password', 'api']);
  t.is(updated.code, 0, updated.stderr);
  t.is((await run(e.socketPath, ['secret', 'rm', 'db-password'])).stdout, 'db-password\n');
  t.is((await run(e.socketPath, ['secret', 'inspect', 'db-password'])).stderr, 'swarm: secret db-password not found\n');
  t.is((await run(e.socketPath, ['service', 'rm', 'api'])).code, 0);
  await until('the tasks\' files unmounted', async () => (mountsUnder(e.root).length === 0 ? true : undefined), 30_000);
});
