// A node's life after join, on daemons in one process: `node update` (availability, labels), promote and demote as
// Raft membership changes with new certificates, `node rm` and its refusals, and `swarm leave` of workers and managers.

import test from 'ava';
import { readdir } from 'node:fs/promises';
import { ApiError, type ApiClient } from '@swarm/api';
import { eventually, form, joinAddr, local, votersAre, type Host } from './local-cluster.js';

async function roles(client: ApiClient): Promise<string[][]> {
  return (await client.listNodes()).map((n) => [n.Description.Hostname, n.Spec.Role, n.ManagerStatus === undefined ? '-' : 'manager-status']);
}

async function hasCAKey(host: Host): Promise<boolean> {
  return (await readdir(host.dataDir, { recursive: true })).map(String).includes('certificates/swarm-root-ca.key');
}

function leaderOf(managers: readonly Host[]): Host {
  const leader = managers.find((m) => m.daemon.raftStatus()?.role === 'leader');
  if (leader === undefined) throw new Error('no leader among the managers');
  return leader;
}

test('node update sets availability and labels through a follower; removing a missing label is refused and changes nothing', async (t) => {
  const { managers, workers } = await form(t, 2, 1);
  const [, follower] = managers;
  const [worker] = workers;
  if (follower === undefined || worker === undefined) throw new Error('unreachable');
  const id = worker.daemon.nodeId ?? '';
  const updated = await follower.client.updateNode('wrk-1', { availability: 'drain', labelAdd: { zone: 'a', ssd: '' } });
  t.is(updated.ID, id);
  t.is(updated.Spec.Availability, 'drain');
  t.deepEqual(updated.Spec.Labels, { zone: 'a', ssd: '' });
  // Read back on the other manager: the change went through Raft.
  const [first] = managers;
  t.deepEqual((await first?.client.inspectNode(id))?.Spec.Labels, { zone: 'a', ssd: '' });

  const err = await t.throwsAsync(follower.client.updateNode(id, { labelRm: ['ssd', 'rack'] }), { instanceOf: ApiError });
  t.is(err?.code, 'invalid_argument');
  t.is(err?.message, "key rack doesn't exist in node's labels");
  t.deepEqual((await follower.client.inspectNode(id)).Spec.Labels, { zone: 'a', ssd: '' }, 'nothing half-applied');

  const back = await follower.client.updateNode(id, { availability: 'active', labelRm: ['ssd'] });
  t.is(back.Spec.Availability, 'active');
  t.deepEqual(back.Spec.Labels, { zone: 'a' });
  const missing = await t.throwsAsync(follower.client.updateNode('nobody', { availability: 'pause' }), { instanceOf: ApiError });
  t.is(missing?.code, 'not_found');
});

test('promote makes a worker a Raft voter with the CA key; demote takes it out again; the last manager cannot be demoted', async (t) => {
  const { managers, workers } = await form(t, 1, 1);
  const [m] = managers;
  const [w] = workers;
  if (m === undefined || w === undefined) throw new Error('unreachable');
  t.false(await hasCAKey(w));

  await m.client.updateNode('wrk-1', { role: 'manager' });
  await votersAre(m, [m, w]);
  await eventually('the promoted node serves manager requests', 30_000, async () => ((await w.client.listNodes()).length === 2 ? true : undefined));
  t.deepEqual(await roles(w.client), [
    ['mgr-1', 'manager', 'manager-status'],
    ['wrk-1', 'manager', 'manager-status'],
  ]);
  t.true(await hasCAKey(w), 'a manager certifies joiners: it holds the CA key');
  t.true((await w.client.info()).Swarm.ControlAvailable);

  // Demote the original manager, the leader: leadership moves to the promoted node first.
  await m.client.updateNode('mgr-1', { role: 'worker' });
  await votersAre(w, [w]);
  await eventually('the demoted node runs as a worker', 30_000, async () => ((await m.client.info()).Swarm.ControlAvailable ? undefined : true));
  t.deepEqual(await roles(w.client), [
    ['mgr-1', 'worker', '-'],
    ['wrk-1', 'manager', 'manager-status'],
  ]);
  t.false(await hasCAKey(m), 'a demoted node drops the CA key');
  const refused = await t.throwsAsync(m.client.listNodes(), { instanceOf: ApiError });
  t.is(refused?.code, 'not_in_swarm');

  const last = await t.throwsAsync(w.client.updateNode('wrk-1', { role: 'worker' }), { instanceOf: ApiError });
  t.is(last?.code, 'conflict');
  t.regex(last?.message ?? '', /last manager/);
  t.is((await w.client.inspectNode('wrk-1')).Spec.Role, 'manager');
});

test('node rm refuses managers and live nodes, removes a down worker, and with --force removes a live one, which leaves', async (t) => {
  const { managers, workers } = await form(t, 1, 2);
  const [m] = managers;
  const [w1, w2] = workers;
  if (m === undefined || w1 === undefined || w2 === undefined) throw new Error('unreachable');

  const manager = await t.throwsAsync(m.client.removeNode('mgr-1', true), { instanceOf: ApiError });
  t.is(manager?.code, 'conflict');
  t.regex(manager?.message ?? '', /must be demoted to worker before removal/);
  const live = await t.throwsAsync(m.client.removeNode('wrk-1'), { instanceOf: ApiError });
  t.is(live?.code, 'conflict');
  t.regex(live?.message ?? '', /is not down and can't be removed/);

  const downId = w1.daemon.nodeId ?? '';
  await w1.daemon.close();
  await eventually('wrk-1 is Down', 20_000, async () => ((await m.client.inspectNode(downId)).Status.State === 'down' ? true : undefined));
  await m.client.removeNode(downId);
  t.deepEqual((await m.client.listNodes()).map((n) => n.Description.Hostname), ['mgr-1', 'wrk-2']);

  await m.client.removeNode('wrk-2', true);
  t.deepEqual((await m.client.listNodes()).map((n) => n.Description.Hostname), ['mgr-1']);
  await eventually('the force-removed node left the swarm', 20_000, async () => ((await w2.client.info()).Swarm.LocalNodeState === 'inactive' ? true : undefined));
});

test('swarm leave: a worker is forgotten by the cluster; a manager is refused without --force and leaves Raft with it', async (t) => {
  const { managers, workers } = await form(t, 3, 1);
  const [w] = workers;
  if (w === undefined) throw new Error('unreachable');
  const left = await w.client.leaveSwarm();
  t.true(left.ClusterForgot);
  t.is((await w.client.info()).Swarm.LocalNodeState, 'inactive');
  const leader = leaderOf(managers);
  t.deepEqual((await leader.client.listNodes()).map((n) => n.Description.Hostname), ['mgr-1', 'mgr-2', 'mgr-3']);

  // The leader itself leaves: refused without --force; with it, leadership moves and the two others keep a quorum.
  const refused = await t.throwsAsync(leader.client.leaveSwarm(), { instanceOf: ApiError });
  t.is(refused?.code, 'conflict');
  t.regex(refused?.message ?? '', /participating as a manager.*leaves 2 managers out of 3/);
  t.is((await leader.client.info()).Swarm.LocalNodeState, 'active');
  await leader.client.leaveSwarm(true);
  t.is((await leader.client.info()).Swarm.LocalNodeState, 'inactive');
  const rest = managers.filter((m) => m !== leader);
  const [survivor] = rest;
  if (survivor === undefined) throw new Error('unreachable');
  await votersAre(survivor, rest);
  t.deepEqual((await survivor.client.listNodes()).map((n) => n.Description.Hostname), rest.map((m) => m.name));
  // Writes go on with the two.
  t.regex((await survivor.client.joinToken('worker', true)).Token, /^SWMTKN-1-/);
  // The worker that left can join again, as a new node.
  const again = await w.client.joinSwarm({ remoteAddr: joinAddr(survivor), token: (await survivor.client.joinToken('worker')).Token, ...local });
  t.not(again.NodeID, left.NodeID);
});
