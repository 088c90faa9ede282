// Cluster formation end to end on real network namespaces: `swarm lab up --nodes 5 --managers 3` (the CLI, real
// daemons, real init/join with tokens), node ls agreeing on every manager, a killed worker and leader noticed.

import test from 'ava';
import { pollUntil } from '@swarm/wire';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labSerial, missingPrerequisite, SWARM_BIN } from './prerequisites.js';

// Apart from the other lab tests' default subnet: ava runs test files at the same time.
const SUBNET = '10.251.37.0/24';

const missing = missingPrerequisite({ tools: [['ip', '-V']], needCli: true });
const serial = labSerial(missing);

const root = mkdtempSync(join(tmpdir(), 'swlab-cf-'));
const name = `cf${process.pid % 1000}`;

function swarm(args: readonly string[], timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SWARM_BIN, ...args], { env: { ...process.env, SWARM_LAB_ROOT: root }, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

test.after.always(async () => {
  if (missing === null) await swarm(['lab', 'down', name]);
  rmSync(root, { recursive: true, force: true });
});

interface Row {
  ID: string;
  Hostname: string;
  Status: string;
  ManagerStatus: string;
}

async function nodeLs(node: string): Promise<Row[]> {
  const res = await swarm(['lab', 'exec', `${name}/${node}`, '--', process.execPath, SWARM_BIN, 'node', 'ls', '--format', 'json'], 30_000);
  if (res.code !== 0) throw new Error(`node ls on ${node}: ${res.stderr}`);
  return res.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Row);
}

const eventually = <T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> =>
  pollUntil(what, check, { deadlineMs: timeoutMs, intervalMs: 250, retryErrors: true });

const summary = (rows: Row[]): string => JSON.stringify(rows.map((r) => [r.Hostname, r.Status, r.ManagerStatus]));

serial('lab up --nodes 5 --managers 3 forms one cluster; node ls agrees on every manager; a killed worker and leader are noticed', async (t) => {
  const up = await swarm(['lab', 'up', '--name', name, '--nodes', '5', '--managers', '3', '--subnet', SUBNET], 240_000);
  t.is(up.code, 0, up.stderr);

  const managers = ['node-1', 'node-2', 'node-3'];
  const agreed = await eventually('node ls agrees on every manager', 30_000, async () => {
    const views = await Promise.all(managers.map(async (m) => summary(await nodeLs(m))));
    return views.every((v) => v === views[0]) ? views[0] : undefined;
  });
  t.deepEqual(JSON.parse(agreed ?? '[]'), [
    ['node-1', 'Ready', 'Leader'],
    ['node-2', 'Ready', 'Reachable'],
    ['node-3', 'Ready', 'Reachable'],
    ['node-4', 'Ready', ''],
    ['node-5', 'Ready', ''],
  ]);
  const worker = await swarm(['lab', 'exec', `${name}/node-4`, '--', process.execPath, SWARM_BIN, 'node', 'ls']);
  t.not(worker.code, 0, 'a worker serves no node ls');
  t.regex(worker.stderr, /not a swarm manager/);

  // kill -9 a worker, then the leader: the two managers left agree on Down/Unreachable and elect a new leader.
  t.is((await swarm(['lab', 'kill', `${name}/node-5`])).code, 0);
  t.is((await swarm(['lab', 'kill', `${name}/node-1`])).code, 0);
  const after = await eventually('a new leader, and both dead nodes Down', 30_000, async () => {
    const views = await Promise.all(['node-2', 'node-3'].map(async (m) => summary(await nodeLs(m))));
    if (views[0] !== views[1]) return undefined;
    const rows = JSON.parse(views[0] ?? '[]') as string[][];
    const ok = rows[0]?.[1] === 'Down' && rows[0]?.[2] === 'Unreachable' && rows[4]?.[1] === 'Down' && rows.filter((r) => r[2] === 'Leader').length === 1;
    return ok ? rows : undefined;
  });
  t.true(after[1]?.[2] === 'Leader' || after[2]?.[2] === 'Leader');
  // Writes go on: a token rotation through node-2, whichever of the two leads.
  const rotate = await swarm(['lab', 'exec', `${name}/node-2`, '--', process.execPath, SWARM_BIN, 'join-token', '--rotate', '-q', 'worker']);
  t.is(rotate.code, 0, rotate.stderr);
  t.regex(rotate.stdout.trim(), /^SWMTKN-1-/);
});
