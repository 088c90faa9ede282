// Several daemons in one process on 127.0.0.1, each with its own data dir and socket: the harness of the daemon's
// multi-node tests (join, node lifecycle). Every daemon and directory goes in the test's teardown.

import type { ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '@swarm/api';
import { componentLogger, silentLogger, pollUntil } from '@swarm/wire';
import { startDaemon, type Daemon, type DaemonOptions } from '../src/index.js';

export interface Host {
  name: string;
  dataDir: string;
  daemon: Daemon;
  client: ApiClient;
}

/** A free TCP port on 127.0.0.1: a manager's Raft address carries its libp2p port, so it must be known up front. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address !== 'object') throw new Error('no port');
  return address.port;
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
export const eventually = <T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> =>
  pollUntil(what, check, { deadlineMs: timeoutMs, intervalMs: 50, retryErrors: true });

export async function cluster(t: ExecutionContext): Promise<{ start(name: string, gossipPort?: number, extra?: Partial<DaemonOptions>): Promise<Host> }> {
  const root = await mkdtemp(join(tmpdir(), 'swarm-join-test-'));
  const running: Daemon[] = [];
  t.teardown(async () => {
    for (const d of running.reverse()) await d.close();
    await rm(root, { recursive: true, force: true });
  });
  return {
    async start(name, gossipPort = 0, extra = {}) {
      const dataDir = join(root, name);
      const socketPath = join(root, `${name}.sock`);
      // SWARM_TEST_LOG=1 shows every daemon's log on stderr (level from SWARM_LOG_LEVEL), to debug a failing test.
      const logger = process.env['SWARM_TEST_LOG'] === '1' ? componentLogger(name, 'daemon') : silentLogger();
      const daemon = await startDaemon({ dataDir, socketPath, hostname: name, logger, gossipPort, joinListenPort: 0, raftTickMs: 50, runtime: 'process', ...extra });
      running.push(daemon);
      return { name, dataDir, daemon, client: new ApiClient({ socketPath, timeoutMs: 30_000 }) };
    },
  };
}

export const local = { advertiseAddr: '127.0.0.1', listenAddr: '127.0.0.1:2377' };

export function joinAddr(manager: Host): string {
  const port = manager.daemon.joinPort;
  if (port === null) throw new Error(`${manager.name} has no join endpoint`);
  return `127.0.0.1:${port}`;
}

export interface Formed {
  managers: Host[];
  workers: Host[];
  start: (name: string, gossipPort?: number) => Promise<Host>;
}

/** Every node gets a known gossip port: a promoted worker's Raft address is its libp2p address. */
export async function form(t: ExecutionContext, managers: number, workers: number): Promise<Formed> {
  const c = await cluster(t);
  const ms: Host[] = [];
  const ws: Host[] = [];
  for (let i = 1; i <= managers; i++) ms.push(await c.start(`mgr-${i}`, await freePort()));
  for (let i = 1; i <= workers; i++) ws.push(await c.start(`wrk-${i}`, await freePort()));
  const first = ms[0];
  if (first === undefined) throw new Error('a cluster needs a manager');
  await first.client.initSwarm(local);
  const managerToken = (await first.client.joinToken('manager')).Token;
  const workerToken = (await first.client.joinToken('worker')).Token;
  for (const m of ms.slice(1)) await m.client.joinSwarm({ remoteAddr: joinAddr(first), token: managerToken, ...local });
  for (const w of ws) await w.client.joinSwarm({ remoteAddr: joinAddr(first), token: workerToken, ...local });
  await votersAre(first, ms);
  return { managers: ms, workers: ws, start: c.start };
}

export async function votersAre(observer: Host, managers: readonly Host[]): Promise<void> {
  const want = JSON.stringify(managers.map((m) => m.daemon.nodeId).sort());
  await eventually(`voters ${managers.map((m) => m.name).join(', ')}`, 30_000, async () => {
    const s = observer.daemon.raftStatus();
    return s !== null && JSON.stringify([...s.confState.voters].sort()) === want && s.confState.learners.length === 0 ? true : undefined;
  });
}
