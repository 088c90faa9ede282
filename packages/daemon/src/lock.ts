// The data dir's exclusive lock: a file created with O_EXCL that holds the owner's pid. Two daemons on one data
// dir would both write one Raft log; a lock left by a dead process is taken over with a warning.

import { open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@swarm/wire';
import { DaemonError } from './errors.js';

export const LOCK_FILE = 'swarm.lock';
/** A lock file with no pid yet may be one being written right now; younger than this it counts as held. */
const FRESH_EMPTY_LOCK_MS = 10_000;
/** Take-over attempts when racing another starter for a stale lock. */
const MAX_LOCK_ATTEMPTS = 3;

export interface DataDirLock {
  readonly path: string;
  release(): Promise<void>;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else; only ESRCH means it is gone.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

async function readOwner(path: string): Promise<{ pid: number | null; ageMs: number } | null> {
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    const pid = /^\d+$/.test(text.trim()) ? Number(text.trim()) : null;
    return { pid, ageMs: Date.now() - info.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export async function acquireDataDirLock(dataDir: string, logger: Logger): Promise<DataDirLock> {
  const path = join(dataDir, LOCK_FILE);
  const inUse = (pid: number | null): DaemonError =>
    new DaemonError(
      'locked',
      `the data dir ${dataDir} is in use by another swarm daemon${pid === null ? '' : ` (pid ${pid})`}: stop it first, or use another --data-dir`,
    );
  for (let attempt = 0; attempt < MAX_LOCK_ATTEMPTS; attempt++) {
    try {
      const fd = await open(path, 'wx', 0o600);
      try {
        await fd.writeFile(`${process.pid}\n`);
        await fd.sync();
      } finally {
        await fd.close();
      }
      return lockHandle(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = await readOwner(path);
    if (owner === null) continue; // released between our open and our read: try again
    if (owner.pid === null ? owner.ageMs < FRESH_EMPTY_LOCK_MS : processAlive(owner.pid)) throw inUse(owner.pid);
    logger.warn({ lock: path, pid: owner.pid }, 'taking over the data dir lock of a swarm daemon that is no longer running');
    await unlink(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }
  throw inUse(null);
}

function lockHandle(path: string): DataDirLock {
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      // Only remove the lock if it is still ours (never someone's who took over a lock we thought we held).
      const owner = await readOwner(path);
      if (owner?.pid === process.pid) await unlink(path).catch(() => {});
    },
  };
}
