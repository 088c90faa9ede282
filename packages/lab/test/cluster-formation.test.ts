// Cluster formation end to end on real network namespaces, one lab for the whole file (serial steps in order):
// `swarm lab up --nodes 5 --managers 3` (the CLI, real daemons, real init/join with tokens), node ls agreeing on
// every manager, leave and refused tokens, a partitioned leader, a restart, promote/demote, killed nodes noticed.

import test from 'ava';
import { pollUntil } from '@swarm/wire';
import { cliLab, labSerial, missingPrerequisite } from './prerequisites.js';

// Apart from the other lab tests' default subnet: ava runs test files at the same time.
const SUBNET = '10.251.37.0/24';

const missing = missingPrerequisite({ tools: [['ip', '-V'], ['nft', '--version']], needCli: true });
const serial = labSerial(missing);

const { name, swarm, on } = cliLab('cf', missing);

interface Row {
  ID: string;
  Hostname: string;
  Status: string;
  ManagerStatus: string;
}

async function nodeLs(node: string): Promise<Row[]> {
  const res = await on(node, ['node', 'ls', '--format', 'json'], 30_000);
  if (res.code !== 0) throw new Error(`node ls on ${node}: ${res.stderr}`);
  return res.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Row);
}

const eventually = <T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> =>
  pollUntil(what, check, { deadlineMs: timeoutMs, intervalMs: 250, retryErrors: true });

const summary = (rows: Row[]): string => JSON.stringify(rows.map((r) => [r.Hostname, r.Status, r.ManagerStatus]));

/** The rows every listed manager agrees on, once they agree and `ok` holds. */
function agreedView(what: string, managers: readonly string[], ok: (rows: string[][]) => boolean, timeoutMs = 45_000): Promise<string[][]> {
  return eventually(what, timeoutMs, async () => {
    const views = await Promise.all(managers.map(async (m) => summary(await nodeLs(m))));
    if (!views.every((v) => v === views[0])) return undefined;
    const rows = JSON.parse(views[0] ?? '[]') as string[][];
    return ok(rows) ? rows : undefined;
  });
}

async function nodeId(node: string): Promise<string> {
  const res = await on(node, ['info', '--format', 'json']);
  return (JSON.parse(res.stdout) as { Swarm: { NodeID: string } }).Swarm.NodeID;
}

const leaders = (rows: string[][]): string[] => rows.filter((r) => r[2] === 'Leader').map((r) => r[0] ?? '');

serial('lab up --nodes 5 --managers 3 forms one cluster; node ls agrees on every manager; a worker serves no node ls', async (t) => {
  const up = await swarm(['lab', 'up', '--name', name, '--nodes', '5', '--managers', '3', '--subnet', SUBNET], 240_000);
  t.is(up.code, 0, up.stderr);
  const rows = await agreedView('node ls agrees on every manager', ['node-1', 'node-2', 'node-3'], (r) => r.length === 5 && r.every((x) => x[1] === 'Ready'));
  t.deepEqual(rows, [
    ['node-1', 'Ready', 'Leader'],
    ['node-2', 'Ready', 'Reachable'],
    ['node-3', 'Ready', 'Reachable'],
    ['node-4', 'Ready', ''],
    ['node-5', 'Ready', ''],
  ]);
  const worker = await on('node-4', ['node', 'ls']);
  t.not(worker.code, 0, 'a worker serves no node ls');
  t.regex(worker.stderr, /not a swarm manager/);
});

serial('a worker leaves and is forgotten; malformed, rotated and other-cluster tokens are refused and change nothing; the right one rejoins', async (t) => {
  const managers = ['node-1', 'node-2', 'node-3'];
  const left = await on('node-5', ['leave']);
  t.is(left.code, 0, left.stderr);
  t.is(left.stdout, 'Node left the swarm.\n');
  const rows = await agreedView('the cluster forgot node-5', managers, (r) => r.length === 4);
  t.deepEqual(rows.map((r) => r[0]), ['node-1', 'node-2', 'node-3', 'node-4']);

  // A token of another real cluster: node-5 makes its own one-node swarm, keeps its token, and leaves it.
  const addr = '10.251.37.6'; // node-5's underlay address (hosts are .2 .. .6 of SUBNET)
  t.is((await on('node-5', ['init', '--advertise-addr', addr])).code, 0);
  const foreign = (await on('node-5', ['join-token', '-q', 'worker'])).stdout.trim();
  t.is((await on('node-5', ['leave', '--force'])).code, 0);

  const old = (await on('node-1', ['join-token', '-q', 'worker'])).stdout.trim();
  const rotate = await on('node-2', ['join-token', '--rotate', '-q', 'worker']);
  t.is(rotate.code, 0, rotate.stderr);
  const current = rotate.stdout.trim();
  t.not(current, old);
  const leader = '10.251.37.2:2377';
  const cases: Array<[string, RegExp]> = [
    ['SWMTKN-1-garbage', /token/],
    [old, /not valid for this cluster.*rotated/],
    [foreign, /pins .* not a manager of the cluster the token is for/],
  ];
  for (const [token, message] of cases) {
    const res = await on('node-5', ['join', '--token', token, leader]);
    t.is(res.code, 1, token);
    t.regex(res.stderr, message);
    const info = JSON.parse((await on('node-5', ['info', '--format', 'json'])).stdout) as { Swarm: { LocalNodeState: string } };
    t.is(info.Swarm.LocalNodeState, 'inactive', 'the refused node is left as it was');
  }
  t.is((await nodeLs('node-1')).length, 4, 'nothing changed in the cluster');
  const join = await on('node-5', ['join', '--token', current, leader]);
  t.is(join.code, 0, join.stderr);
  t.is(join.stdout, 'This node joined a swarm as a worker.\n');
  await agreedView('node-5 is back', managers, (r) => r.length === 5 && r.every((x) => x[1] === 'Ready'));
});

serial('a partitioned leader loses leadership and serves no writes; healed, it comes back Ready and Reachable under one leader', async (t) => {
  const part = await swarm(['lab', 'partition', name, 'node-1']);
  t.is(part.code, 0, part.stderr);
  const during = await agreedView('node-2 and node-3 elect a leader and see node-1 Down', ['node-2', 'node-3'], (r) =>
    r[0]?.[1] === 'Down' && r[0]?.[2] === 'Unreachable' && leaders(r).length === 1,
  );
  t.notDeepEqual(leaders(during), ['node-1']);
  // Cut off from the quorum, node-1 answers neither reads nor writes (CheckQuorum made it step down).
  const isolated = await on('node-1', ['join-token', '--rotate', '-q', 'manager'], 90_000);
  t.not(isolated.code, 0, 'no write on the minority side');
  t.regex(isolated.stderr, /quorum|leader|could not complete/i);
  // Writes go on on the majority side.
  t.is((await on('node-3', ['join-token', '--rotate', '-q', 'manager'])).code, 0);

  t.is((await swarm(['lab', 'heal', name])).code, 0);
  const after = await agreedView('healed: every manager agrees, all Ready and Reachable', ['node-1', 'node-2', 'node-3'], (r) =>
    r.length === 5 && r.every((x) => x[1] === 'Ready') && r.slice(0, 3).every((x) => x[2] === 'Leader' || x[2] === 'Reachable') && leaders(r).length === 1,
  );
  t.is(leaders(after).length, 1);
});

serial('a restarted worker is the same node, Ready again', async (t) => {
  const before = await nodeId('node-4');
  t.is((await swarm(['lab', 'restart', `${name}/node-4`])).code, 0);
  t.is(await nodeId('node-4'), before);
  await agreedView('node-4 Ready after its restart', ['node-1', 'node-2', 'node-3'], (r) => r.length === 5 && r[3]?.[1] === 'Ready');
  t.pass();
});

serial('promote a worker and demote a manager: Raft membership follows, every manager agrees; node update and rm', async (t) => {
  const promote = await on('node-2', ['node', 'promote', 'node-4']);
  t.is(promote.code, 0, promote.stderr);
  t.is(promote.stdout, 'Node node-4 promoted to a manager in the swarm.\n');
  await agreedView('node-4 is a manager on every manager', ['node-1', 'node-2', 'node-3', 'node-4'], (r) => r[3]?.[2] === 'Reachable' || r[3]?.[2] === 'Leader');
  const demote = await on('node-4', ['node', 'demote', 'node-3']);
  t.is(demote.code, 0, demote.stderr);
  t.is(demote.stdout, 'Manager node-3 demoted in the swarm.\n');
  const rows = await agreedView('node-3 is a worker', ['node-1', 'node-2', 'node-4'], (r) => r[2]?.[2] === '' && leaders(r).length === 1);
  t.deepEqual(rows.map((r) => [r[0], r[2] === '' ? 'worker' : 'manager']), [
    ['node-1', 'manager'],
    ['node-2', 'manager'],
    ['node-3', 'worker'],
    ['node-4', 'manager'],
    ['node-5', 'worker'],
  ]);
  const refused = await on('node-3', ['node', 'ls']);
  t.regex(refused.stderr, /not a swarm manager/, 'the demoted node no longer serves manager requests');

  const update = await on('node-1', ['node', 'update', '--availability', 'drain', '--label-add', 'zone=b', 'node-5']);
  t.is(update.code, 0, update.stderr);
  const inspect = JSON.parse((await on('node-4', ['node', 'inspect', 'node-5'])).stdout) as Array<{ Spec: { Availability: string; Labels: Record<string, string> } }>;
  t.is(inspect[0]?.Spec.Availability, 'drain');
  t.deepEqual(inspect[0]?.Spec.Labels, { zone: 'b' });
  const rm = await on('node-1', ['node', 'rm', 'node-5']);
  t.is(rm.code, 1);
  t.regex(rm.stderr, /is not down and can't be removed/);
});

serial('kill -9 a worker, then the leader: Down on every manager left, a new leader, and writes go on', async (t) => {
  const rows = await agreedView('a leader', ['node-1', 'node-2', 'node-4'], (r) => leaders(r).length === 1);
  const leader = leaders(rows)[0] ?? '';
  const others = ['node-1', 'node-2', 'node-4'].filter((m) => m !== leader);
  t.is((await swarm(['lab', 'kill', `${name}/node-5`])).code, 0);
  t.is((await swarm(['lab', 'kill', `${name}/${leader}`])).code, 0);
  const after = await agreedView('a new leader, and both dead nodes Down', others, (r) => {
    const row = (h: string): string[] | undefined => r.find((x) => x[0] === h);
    return row(leader)?.[1] === 'Down' && row(leader)?.[2] === 'Unreachable' && row('node-5')?.[1] === 'Down' && leaders(r).length === 1;
  });
  t.true(others.includes(leaders(after)[0] ?? ''));
  const rotate = await on(others[0] ?? '', ['join-token', '--rotate', '-q', 'worker']);
  t.is(rotate.code, 0, rotate.stderr);
  t.regex(rotate.stdout.trim(), /^SWMTKN-1-/);
  // The dead worker can now be removed without --force.
  t.is((await on(others[1] ?? '', ['node', 'rm', 'node-5'])).code, 0);
});
