// The lab with the real `swarm daemon` (spawned from packages/cli/bin/swarm.js, not imported): a one-manager
// cluster forms through the lab's init step, and `swarm` inside `lab exec` talks to that host's daemon.

import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@swarm/wire';
import { createLab, destroyLab, listLabs, waitForSocket, type HostInfo, type Lab } from '../src/index.js';
import { labSerial, missingPrerequisite, SWARM_BIN } from './prerequisites.js';


const missing = missingPrerequisite({ tools: [['ip', '-V']], needCli: true });
const serial = labSerial(missing);

const root = mkdtempSync(join(tmpdir(), 'swlab-d-'));
const logger = silentLogger();
test.after.always(async () => {
  for (const l of listLabs({ root })) await destroyLab(l.name, { root, logger }).catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
});
const swarmArgv = [process.execPath, SWARM_BIN];

function daemon(h: HostInfo): { argv: string[] } {
  return { argv: [...swarmArgv, 'daemon', '--data-dir', h.dataDir, '--hostname', h.name] };
}

serial('real daemons in a lab: node-1 inits a cluster through the cluster step, and lab exec reaches that host\'s daemon', async (t) => {
  const name = `rd${process.pid % 1000}`;
  t.teardown(async () => {
    await destroyLab(name, { root, logger });
  });
  // Only node-1 inits; node-2 stays a standalone daemon (swarmInitJoin's joins: once the daemon has `join`).
  const lab = await createLab({ name, nodes: 2, managers: 1, root, logger, command: daemon, waitReady: (h) => waitForSocket(h), cluster: initOnly });
  t.is(lab.state().cluster.state, 'formed');
  const ls = await lab.exec('node-1', [...swarmArgv, 'node', 'ls'], { stdio: 'pipe' });
  t.is(ls.code, 0, ls.stderr);
  t.regex(ls.stdout, /node-1\s.*Ready.*Leader/);
  const other = await lab.exec('node-2', [...swarmArgv, 'node', 'ls'], { stdio: 'pipe' });
  t.not(other.code, 0, 'node-2\'s own daemon is not in a swarm: the socket is per host');
});

async function initOnly(l: Lab): Promise<void> {
  const res = await l.exec('node-1', [...swarmArgv, 'init', '--advertise-addr', l.host('node-1').ip], { stdio: 'pipe' });
  if (res.code !== 0) throw new Error(`swarm init failed: ${res.stderr}`);
}
