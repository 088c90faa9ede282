// The lab's image registry: Debian's docker-registry (CNCF distribution) serving the OCI distribution API on the
// lab's bridge address, port 5000, so every host reaches it over the underlay. Its storage lives in the lab dir
// and goes with the lab.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from './errors.js';
import { isAlive, spawnDetached, type ProcessIdentity } from './proc.js';
import { ensureDir } from './state.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';
export const REGISTRY_PORT = 5000;
const READY_TIMEOUT_MS = 15_000;

export interface RegistryPaths {
  config: string;
  storage: string;
  log: string;
}

export function registryPaths(labDirPath: string): RegistryPaths {
  return { config: join(labDirPath, 'registry.yml'), storage: join(labDirPath, 'registry'), log: join(labDirPath, 'registry.log') };
}

/** The daemon flags that make the lab registry a host's Docker Hub mirror (plain HTTP); none without a registry. */
export function registryDaemonFlags(registry: string | null): string[] {
  return registry === null ? [] : ['--registry-mirror', `http://${registry}`, '--insecure-registry', registry];
}

/** Writes the registry's config and starts it detached; resolves once /v2/ answers. */
export async function startRegistry(labDirPath: string, addr: string): Promise<ProcessIdentity> {
  const paths = registryPaths(labDirPath);
  ensureDir(paths.storage);
  // Deletes are allowed so `image rm` tests can clean up; no auth: the underlay is the lab's own bridge.
  writeFileSync(
    paths.config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${paths.storage}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${addr}`,
      '',
    ].join('\n'),
  );
  const id = await spawnDetached(REGISTRY_BIN, ['serve', paths.config], { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, paths.log, labDirPath);
  const end = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    try {
      const res = await fetch(`http://${addr}/v2/`, { signal: AbortSignal.timeout(1_000) });
      if (res.ok) return id;
    } catch {
      // not listening yet
    }
    if (!isAlive(id)) throw new LabError('command_failed', `the lab registry exited at once; see ${paths.log}`);
    if (Date.now() > end) throw new LabError('timeout', `the lab registry did not answer on http://${addr}/v2/ within ${READY_TIMEOUT_MS} ms; see ${paths.log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
