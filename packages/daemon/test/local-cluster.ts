// Several daemons in one process on 127.0.0.1, each with its own data dir and socket: the harness of the daemon's
// multi-node tests (join, node lifecycle). Every daemon and directory goes in the test's teardown.

import type { ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '@swarm/api';
import { componentLogger, silentLogger, pollUntil } from '@swarm/wire';
import { startDaemon, type Daemon } from '../src/index.js';

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

export async function cluster(t: ExecutionContext): Promise<{ start(name: string, gossipPort?: number): Promise<Host> }> {
  const root = await mkdtemp(join(tmpdir(), 'swarm-join-test-'));
  const running: Daemon[] = [];
  t.teardown(async () => {
    for (const d of running.reverse()) await d.close();
    await rm(root, { recursive: true, force: true });
  });
  return {
    async start(name, gossipPort = 0) {
      const dataDir = join(root, name);
      const socketPath = join(root, `${name}.sock`);
      // SWARM_TEST_LOG=1 shows every daemon's log on stderr (level from SWARM_LOG_LEVEL), to debug a failing test.
      const logger = process.env['SWARM_TEST_LOG'] === '1' ? componentLogger(name, 'daemon') : silentLogger();
      const daemon = await startDaemon({ dataDir, socketPath, hostname: name, logger, gossipPort, joinListenPort: 0, raftTickMs: 50 });
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
