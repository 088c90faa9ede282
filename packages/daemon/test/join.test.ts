// Several daemons in one process on 127.0.0.1 with their own data dirs: `swarm join` through a manager's TLS join
// endpoint, the token pinning the CA, and refusals (bad, rotated, other-cluster tokens) that leave the node as it was.

import test from 'ava';
import { readdir } from 'node:fs/promises';
import { ApiError } from '@swarm/api';
import { cluster, eventually, freePort, joinAddr, local, type Host } from './local-cluster.js';

async function listFiles(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

test('a worker joins with the worker token: node ls on the manager lists both as Ready; the worker is active', async (t) => {
  const c = await cluster(t);
  const m = await c.start('mgr-1');
  const w = await c.start('wrk-1');
  const init = await m.client.initSwarm(local);
  const token = (await m.client.joinToken('worker')).Token;
  const res = await w.client.joinSwarm({ remoteAddr: joinAddr(m), token, ...local });
  t.is(res.Role, 'worker');
  t.is(res.ClusterID, init.ClusterID);
  t.is(w.daemon.nodeId, res.NodeID);

  const nodes = await m.client.listNodes();
  t.deepEqual(nodes.map((n) => [n.Description.Hostname, n.Spec.Role, n.Status.State]), [
    ['mgr-1', 'manager', 'ready'],
    ['wrk-1', 'worker', 'ready'],
  ]);
  const worker = nodes.find((n) => n.ID === res.NodeID);
  t.is(worker?.ManagerStatus, undefined);
  t.is(worker?.Status.Addr, '127.0.0.1');

  const info = await w.client.info();
  t.is(info.Swarm.LocalNodeState, 'active');
  t.is(info.Swarm.NodeID, res.NodeID);
  t.false(info.Swarm.ControlAvailable);
  // A worker holds no CA key and serves no manager requests.
  t.false((await listFiles(w.dataDir)).includes('certificates/swarm-root-ca.key'));
  const refused = await t.throwsAsync(w.client.listNodes(), { instanceOf: ApiError });
  t.is(refused?.code, 'not_in_swarm');
  // A second join on a node in a swarm is refused.
  const again = await t.throwsAsync(w.client.joinSwarm({ remoteAddr: joinAddr(m), token, ...local }), { instanceOf: ApiError });
  t.is(again?.code, 'already_in_swarm');
});

test('a joined worker restarts as the same node in the same cluster', async (t) => {
  const c = await cluster(t);
  const m = await c.start('mgr-1');
  const w = await c.start('wrk-1');
  await m.client.initSwarm(local);
  const res = await w.client.joinSwarm({ remoteAddr: joinAddr(m), token: (await m.client.joinToken('worker')).Token, ...local });
  await w.daemon.close();
  const again = await c.start('wrk-1');
  t.is(again.daemon.nodeId, res.NodeID);
  t.is((await again.client.info()).Swarm.LocalNodeState, 'active');
});

test('malformed, rotated-away and other-cluster tokens are refused with permission_denied; the joiner is unchanged', async (t) => {
  const c = await cluster(t);
  const m = await c.start('mgr-1');
  const other = await c.start('other-mgr');
  const joiner = await c.start('joiner');
  await m.client.initSwarm(local);
  await other.client.initSwarm(local);
  const before = await listFiles(joiner.dataDir);

  const old = (await m.client.joinToken('worker')).Token;
  await m.client.joinToken('worker', true);
  const otherToken = (await other.client.joinToken('worker')).Token;
  const cases: Array<[string, RegExp]> = [
    ['SWMTKN-1-garbage', /token/i],
    [old, /not valid for this cluster.*rotated/],
    // The other cluster's token pins its CA: the joiner refuses before the token leaves the node.
    [otherToken, /pins|not a manager of the cluster/],
  ];
  for (const [token, message] of cases) {
    const err = await t.throwsAsync(joiner.client.joinSwarm({ remoteAddr: joinAddr(m), token, ...local }), { instanceOf: ApiError });
    t.is(err?.code, 'permission_denied', token);
    t.regex(err?.message ?? '', message);
    t.deepEqual(await listFiles(joiner.dataDir), before);
    t.is((await joiner.client.info()).Swarm.LocalNodeState, 'inactive');
  }
  t.is((await m.client.listNodes()).length, 1);
  // Nothing listens: a clear unavailable, and still no change.
  const down = await t.throwsAsync(joiner.client.joinSwarm({ remoteAddr: '127.0.0.1:1', token: old, ...local }), { instanceOf: ApiError });
  t.is(down?.code, 'unavailable');
  t.deepEqual(await listFiles(joiner.dataDir), before);
});

test('a closed worker turns Down on the leader; restarted, it is the same node and Ready again', async (t) => {
  const c = await cluster(t);
  const m = await c.start('mgr-1');
  const w = await c.start('wrk-1');
  await m.client.initSwarm(local);
  const res = await w.client.joinSwarm({ remoteAddr: joinAddr(m), token: (await m.client.joinToken('worker')).Token, ...local });
  await w.daemon.close();
  const started = Date.now();
  await eventually('the worker is Down on the leader', 20_000, async () => {
    const node = (await m.client.listNodes()).find((n) => n.ID === res.NodeID);
    return node?.Status.State === 'down' ? node : undefined;
  });
  t.log(`Down after ${Date.now() - started} ms`);
  // The manager itself stays Ready.
  t.is((await m.client.listNodes()).find((n) => n.ID === m.daemon.nodeId)?.Status.State, 'ready');
  // The restart rejoins gossip through the managers it met at join, with an incarnation above its last life.
  const again = await c.start('wrk-1');
  t.is(again.daemon.nodeId, res.NodeID);
  await eventually('the restarted worker is Ready again', 20_000, async () => {
    const node = (await m.client.listNodes()).find((n) => n.ID === res.NodeID);
    return node?.Status.State === 'ready' ? node : undefined;
  });
  t.is((await m.client.listNodes()).length, 2);
});

test('managers join as voters; node ls agrees on every manager; writes through a follower; a new leader after the old one closes', async (t) => {
  const c = await cluster(t);
  const m1 = await c.start('mgr-1', await freePort());
  const m2 = await c.start('mgr-2', await freePort());
  const m3 = await c.start('mgr-3', await freePort());
  const w = await c.start('wrk-1');
  await m1.client.initSwarm(local);
  const managerToken = (await m1.client.joinToken('manager')).Token;
  t.is((await m2.client.joinSwarm({ remoteAddr: joinAddr(m1), token: managerToken, ...local })).Role, 'manager');
  // The third joins through the second, a follower: its Node write is forwarded to the leader.
  await eventually('mgr-2 serves joins', 10_000, async () => (m2.daemon.joinPort === null ? undefined : true));
  t.is((await m3.client.joinSwarm({ remoteAddr: joinAddr(m2), token: managerToken, ...local })).Role, 'manager');

  const ids = [m1, m2, m3].map((m) => m.daemon.nodeId).sort();
  await eventually('three voters', 20_000, async () => {
    const voters = [...(m1.daemon.raftStatus()?.confState.voters ?? [])].sort();
    return JSON.stringify(voters) === JSON.stringify(ids) ? true : undefined;
  });
  const workerToken = (await m3.client.joinToken('worker')).Token;
  await w.client.joinSwarm({ remoteAddr: joinAddr(m3), token: workerToken, ...local });

  const view = async (m: Host): Promise<string> =>
    JSON.stringify((await m.client.listNodes()).map((n) => [n.ID, n.Description.Hostname, n.Spec.Role, n.Status.State, n.ManagerStatus?.Leader ?? null]));
  const agreed = await eventually('node ls agrees on every manager', 20_000, async () => {
    const views = await Promise.all([m1, m2, m3].map(view));
    return views.every((v) => v === views[0]) && (JSON.parse(views[0] ?? '[]') as unknown[]).length === 4 ? views[0] : undefined;
  });
  t.deepEqual((JSON.parse(agreed) as unknown[][]).map((r) => [r[1], r[2], r[3], r[4]]), [
    ['mgr-1', 'manager', 'ready', true],
    ['mgr-2', 'manager', 'ready', false],
    ['mgr-3', 'manager', 'ready', false],
    ['wrk-1', 'worker', 'ready', null],
  ]);

  // Close the leader: the other two elect a new one, and writes (a token rotation) still work from either.
  const before = (await m2.client.joinToken('worker')).Token;
  const old = m1.daemon.nodeId;
  await m1.daemon.close();
  const leader = await eventually('a new leader', 20_000, async () => {
    const s = m2.daemon.raftStatus();
    return s !== null && s.leader !== null && s.leader !== old ? s.leader : undefined;
  });
  t.true(leader === m2.daemon.nodeId || leader === m3.daemon.nodeId);
  const follower = leader === m2.daemon.nodeId ? m3 : m2;
  const rotated = await eventually('rotation through the follower', 20_000, async () => (await follower.client.joinToken('worker', true)).Token);
  t.not(rotated, before);
  t.is((await (follower === m2 ? m3 : m2).client.joinToken('worker')).Token, rotated);
  await eventually('the old leader is Down and Unreachable', 20_000, async () => {
    const n = (await follower.client.listNodes()).find((x) => x.ID === old);
    return n?.Status.State === 'down' && n.ManagerStatus?.Reachability === 'unreachable' ? true : undefined;
  });
  t.pass();
});
