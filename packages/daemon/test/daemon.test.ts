// The daemon in-process on a temp data dir and a temp unix socket, driven through the real API client:
// init, info, node ls, join-token rotation through Raft, refusals, the data dir lock, and restart as the same node.

import test, { type ExecutionContext } from 'ava';
import { link, mkdir, mkdtemp, readdir, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient, ApiError } from '@swarm/api';
import { pollUntil, silentLogger } from '@swarm/wire';
import { startDaemon, type Daemon } from '../src/index.js';
import { FILES } from '../src/data-dir.js';
import { LOCK_FILE } from '../src/lock.js';

interface Env {
  dataDir: string;
  socketPath: string;
  start(extra?: { raftSnapshotEvery?: number }): Promise<Daemon>;
  client: ApiClient;
}

async function env(t: ExecutionContext): Promise<Env> {
  const root = await mkdtemp(join(tmpdir(), 'swarm-daemon-test-'));
  const dataDir = join(root, 'data');
  const socketPath = join(root, 's.sock');
  const running = new Set<Daemon>();
  t.teardown(async () => {
    for (const d of running) await d.close();
    await rm(root, { recursive: true, force: true });
  });
  return {
    dataDir,
    socketPath,
    client: new ApiClient({ socketPath, timeoutMs: 30_000 }),
    async start(extra = {}) {
      const d = await startDaemon({ dataDir, socketPath, hostname: 'test-host', logger: silentLogger(), gossipPort: 0, joinListenPort: 0, runtime: 'process', ...extra });
      running.add(d);
      const close = d.close.bind(d);
      (d as { close: () => Promise<void> }).close = async () => {
        running.delete(d);
        await close();
      };
      return d;
    },
  };
}

const init = { advertiseAddr: '127.0.0.1', listenAddr: '127.0.0.1:2377' };

test('init makes a one-node swarm: info, node ls and swarm inspect show this node as the leader manager', async (t) => {
  const e = await env(t);
  const daemon = await e.start();
  const before = await e.client.info();
  t.is(before.Swarm.LocalNodeState, 'inactive');
  const res = await e.client.initSwarm(init);
  t.is(daemon.nodeId, res.NodeID);
  t.is(res.ManagerAddr, '127.0.0.1:2377');

  const info = await e.client.info();
  t.is(info.Swarm.LocalNodeState, 'active');
  t.is(info.Swarm.NodeID, res.NodeID);
  t.is(info.Swarm.Cluster?.ID, res.ClusterID);
  t.is(info.Swarm.Nodes, 1);
  t.is(info.Swarm.Managers, 1);
  t.true(info.Swarm.ControlAvailable);

  // The gossip view: this node, alive since a moment ago (SinceMs is a duration, not a clock reading).
  const [self] = await e.client.listMembers();
  t.like(self, { NodeID: res.NodeID, State: 'alive', Hostname: 'test-host' });
  t.true(self !== undefined && self.SinceMs >= 0 && self.SinceMs < 60_000, `SinceMs ${self?.SinceMs}`);

  const nodes = await e.client.listNodes();
  t.is(nodes.length, 1);
  const node = nodes[0];
  if (node === undefined) throw new Error('no node');
  t.is(node.ID, res.NodeID);
  t.is(node.Description.Hostname, 'test-host');
  t.is(node.Spec.Role, 'manager');
  t.is(node.Spec.Availability, 'active');
  t.is(node.Status.State, 'ready');
  t.is(node.Status.Addr, '127.0.0.1');
  t.deepEqual(node.ManagerStatus, { Leader: true, Reachability: 'reachable', Addr: '127.0.0.1:2377' });
  t.true(node.Description.Resources.NanoCPUs >= 1e9);
  t.true(node.Description.Resources.MemoryBytes > 0);
  t.is(node.Description.Engine.EngineVersion, '0.1.0');
  t.true(node.Version.Index > 0);

  const swarm = await e.client.inspectSwarm();
  t.is(swarm.ID, res.ClusterID);
  t.regex(swarm.JoinTokens.Worker, /^SWMTKN-1-/);
  t.not(swarm.JoinTokens.Worker, swarm.JoinTokens.Manager);

  // by id prefix and by hostname
  t.is((await e.client.inspectNode(res.NodeID.slice(0, 5))).ID, res.NodeID);
  t.is((await e.client.inspectNode('test-host')).ID, res.NodeID);
  const missing = await t.throwsAsync(e.client.inspectNode('nope'), { instanceOf: ApiError });
  t.is(missing?.code, 'not_found');

  // key files are private
  for (const file of [FILES.caKey, FILES.nodeKey, FILES.pnetKey, FILES.libp2pKey]) {
    t.is((await stat(join(e.dataDir, file))).mode & 0o777, 0o600, file);
  }
  t.is((await stat(e.socketPath)).mode & 0o777, 0o600, 'socket is owner-only');
});

test('init on a node already in a swarm is refused and changes nothing', async (t) => {
  const e = await env(t);
  await e.start();
  const first = await e.client.initSwarm(init);
  const err = await t.throwsAsync(e.client.initSwarm(init), { instanceOf: ApiError });
  t.is(err?.code, 'already_in_swarm');
  t.regex(err?.message ?? '', /already part of a swarm/);
  const nodes = await e.client.listNodes();
  t.deepEqual(nodes.map((n) => n.ID), [first.NodeID]);
});

test('requests that need a swarm are refused before init with not_in_swarm', async (t) => {
  const e = await env(t);
  await e.start();
  const err = await t.throwsAsync(e.client.listNodes(), { instanceOf: ApiError });
  t.is(err?.code, 'not_in_swarm');
});

test('join-token --rotate replaces only that role token through Raft; the old one is gone', async (t) => {
  const e = await env(t);
  await e.start();
  await e.client.initSwarm(init);
  const worker = await e.client.joinToken('worker');
  const manager = await e.client.joinToken('manager');
  t.is(worker.ManagerAddr, '127.0.0.1:2377');
  const versionBefore = (await e.client.inspectSwarm()).Version.Index;
  const rotated = await e.client.joinToken('worker', true);
  t.true(rotated.Rotated);
  t.not(rotated.Token, worker.Token);
  t.is((await e.client.joinToken('worker')).Token, rotated.Token);
  t.is((await e.client.joinToken('manager')).Token, manager.Token);
  const swarm = await e.client.inspectSwarm();
  t.true(swarm.Version.Index > versionBefore, 'the rotation was a Raft write');
  // The token's CA pin stays: only the secret part changes.
  t.is(rotated.Token.split('-')[2], worker.Token.split('-')[2]);
});

test('a second daemon on the same data dir is refused by the lock; a stale lock of a dead pid is taken over', async (t) => {
  const e = await env(t);
  const first = await e.start();
  const err = await t.throwsAsync(
    startDaemon({ dataDir: e.dataDir, socketPath: join(e.dataDir, '..', 'other.sock'), logger: silentLogger(), gossipPort: 0, runtime: 'process' }),
  );
  t.regex(err?.message ?? '', /in use by another swarm daemon \(pid \d+\)/);
  t.is((await readFile(join(e.dataDir, LOCK_FILE), 'utf8')).trim(), String(process.pid), 'the refused start left the lock alone');
  await first.close();
  await t.throwsAsync(stat(join(e.dataDir, LOCK_FILE)), undefined, 'close released the lock');
  // A pid that cannot be alive (above the kernel's pid_max ceiling).
  await writeFile(join(e.dataDir, LOCK_FILE), '4194305\n');
  const second = await e.start();
  t.is((await readFile(join(e.dataDir, LOCK_FILE), 'utf8')).trim(), String(process.pid));
  await second.close();
});

test('a daemon restarted on the same data dir is the same node in the same cluster, and node ls still lists it', async (t) => {
  const e = await env(t);
  const first = await e.start();
  const res = await e.client.initSwarm(init);
  await e.client.joinToken('manager', true);
  const tokenBefore = (await e.client.joinToken('manager')).Token;
  const peerId = first.peerId;
  await first.close();
  await t.throwsAsync(e.client.info(), { message: /cannot reach the swarm daemon/ });

  const second = await e.start();
  t.is(second.nodeId, res.NodeID);
  t.is(second.peerId, peerId, 'the libp2p identity survives');
  const info = await e.client.info();
  t.is(info.Swarm.LocalNodeState, 'active');
  t.is(info.Swarm.NodeID, res.NodeID);
  const nodes = await e.client.listNodes();
  t.deepEqual(nodes.map((n) => n.ID), [res.NodeID]);
  t.is(nodes[0]?.ManagerStatus?.Leader, true);
  t.is((await e.client.inspectSwarm()).ID, res.ClusterID);
  t.is((await e.client.joinToken('manager')).Token, tokenBefore, 'the rotated token was replayed from the Raft log');
  const again = await t.throwsAsync(e.client.initSwarm(init), { instanceOf: ApiError });
  t.is(again?.code, 'already_in_swarm');
});

test('a stale socket file from a dead daemon is replaced; a live one is refused', async (t) => {
  const e = await env(t);
  // A socket nobody listens on: a hard link outlives the listener that created (and on close removed) the original.
  await mkdir(e.dataDir, { recursive: true });
  const origin = join(e.dataDir, 'origin.sock');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(origin, resolve));
  await link(origin, e.socketPath);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  t.true((await stat(e.socketPath)).isSocket());
  const d = await e.start();
  t.is((await e.client.info()).Swarm.LocalNodeState, 'inactive', 'the stale socket was replaced by a live one');
  const err = await t.throwsAsync(
    startDaemon({ dataDir: join(e.dataDir, '..', 'data2'), socketPath: e.socketPath, logger: silentLogger(), gossipPort: 0, runtime: 'process' }),
  );
  t.regex(err?.message ?? '', /another swarm daemon is serving/);
  t.is((await e.client.info()).Swarm.LocalNodeState, 'inactive', 'the first daemon still serves its socket');
  await d.close();
});

test('a restart after Raft snapshots and log compaction restores the store from the snapshot and the log tail', async (t) => {
  const e = await env(t);
  const first = await e.start({ raftSnapshotEvery: 2 });
  const res = await e.client.initSwarm(init);
  for (let i = 0; i < 5; i++) await e.client.joinToken(i % 2 === 0 ? 'worker' : 'manager', true);
  const before = await e.client.inspectSwarm();
  await first.close();
  const raftFiles = await readdir(join(e.dataDir, FILES.raftDir), { recursive: true });
  t.true(raftFiles.some((f) => /snap/i.test(String(f))), `a snapshot was written (${raftFiles.join(', ')})`);

  await e.start({ raftSnapshotEvery: 2 });
  const after = await e.client.inspectSwarm();
  t.deepEqual(after.JoinTokens, before.JoinTokens);
  t.is(after.Version.Index, before.Version.Index);
  t.deepEqual((await e.client.listNodes()).map((n) => n.ID), [res.NodeID]);
});

test('two concurrent inits: exactly one wins, the other is refused, and the swarm has one node', async (t) => {
  const e = await env(t);
  await e.start();
  const results = await Promise.allSettled([e.client.initSwarm(init), e.client.initSwarm(init)]);
  const won = results.filter((r) => r.status === 'fulfilled');
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  t.is(won.length, 1);
  t.is(lost.length, 1);
  t.is((lost[0]?.reason as ApiError).code, 'already_in_swarm');
  t.is((await e.client.listNodes()).length, 1);
});

test('leftovers of an interrupted init (a Raft dir without node state) are removed at start; init then works', async (t) => {
  const e = await env(t);
  await mkdir(join(e.dataDir, FILES.raftDir), { recursive: true });
  await writeFile(join(e.dataDir, FILES.raftDir, 'garbage'), 'not a wal');
  await e.start();
  await t.throwsAsync(stat(join(e.dataDir, FILES.raftDir)), undefined, 'the stale raft dir is gone');
  t.is((await e.client.info()).Swarm.LocalNodeState, 'inactive');
  const res = await e.client.initSwarm(init);
  t.deepEqual((await e.client.listNodes()).map((n) => n.ID), [res.NodeID]);
});

test('volumes are node-local and need no swarm: create, ls, inspect, rm; a restart keeps them; bad names name the rule', async (t) => {
  const e = await env(t);
  const daemon = await e.start();
  const v = await e.client.createVolume({ Name: 'data', Labels: { app: 'kv' } });
  t.is(v.Mountpoint, join(e.dataDir, 'volumes', 'data', '_data'));
  t.is(v.Scope, 'local');
  await daemon.close();
  await e.start();
  t.deepEqual((await e.client.listVolumes()).map((x) => [x.Name, x.Labels]), [['data', { app: 'kv' }]]);
  const bad = await t.throwsAsync(e.client.createVolume({ Name: '../x' }), { instanceOf: ApiError });
  t.is(bad?.code, 'invalid_argument');
  t.regex(bad?.message ?? '', /invalid volume name/);
  await e.client.removeVolume('data');
  t.deepEqual(await e.client.listVolumes(), []);
  t.is((await t.throwsAsync(e.client.inspectVolume('data'), { instanceOf: ApiError }))?.code, 'not_found');
});

test('--with-registry-auth: refused without a login for the image\'s registry; with one it goes with the service and is never shown', async (t) => {
  if (!existsSync('/usr/bin/docker-registry')) return t.fail('docker-registry is not installed (scripts/test installs it)');
  const e = await env(t);
  // A registry without auth: any login is accepted by it, which is all this test needs of it.
  const dir = await mkdtemp(join(tmpdir(), 'swarm-daemon-reg-'));
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
  await writeFile(join(dir, 'config.yml'), `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const registry = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
  t.teardown(async () => {
    registry.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  await pollUntil('the registry answers', async () => ((await fetch(`http://127.0.0.1:${port}/v2/`).catch(() => null))?.ok === true ? true : undefined), { deadlineMs: 15_000, intervalMs: 50 });
  await e.start();
  await e.client.initSwarm(init);
  const spec = { Name: 'private', TaskTemplate: { ContainerSpec: { Image: `127.0.0.1:${port}/team/app:v1`, Command: ['sleep', '60'] } } };
  const refused = await t.throwsAsync(e.client.createService(spec, { withRegistryAuth: true, resolveImage: false }), { instanceOf: ApiError });
  t.is(refused?.code, 'invalid_argument');
  t.regex(refused?.message ?? '', new RegExp(`no login for 127\\.0\\.0\\.1:${port}: run \`swarm login 127\\.0\\.0\\.1:${port}\``));
  await e.client.login(`127.0.0.1:${port}`, 'alice', 'the-secret-password');
  await e.client.createService(spec, { withRegistryAuth: true, resolveImage: false });
  const shown = JSON.stringify([await e.client.inspectService('private'), await e.client.listTasks({ service: 'private' })]);
  t.false(shown.includes('the-secret-password'));
  t.false(shown.includes('alice'));
});
