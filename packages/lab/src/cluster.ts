// The pluggable step that turns a lab's running daemons into one cluster: `swarm init` on node-1,
// then `swarm join` with the real manager or worker token on every other host, one at a time.

import { LabError } from './errors.js';
import type { ClusterStep, Lab } from './lab.js';

export interface SwarmInitJoinOptions {
  /** How to run the swarm CLI, e.g. [process.execPath, '/path/to/bin/swarm.js']. */
  swarmArgv: readonly string[];
  /** The manager's cluster port the joiners dial (Swarm's 2377). */
  port?: number;
  timeoutMs?: number;
}

const DEFAULT_PORT = 2377;
const DEFAULT_STEP_TIMEOUT_MS = 60_000;

async function swarmIn(lab: Lab, node: string, o: SwarmInitJoinOptions, args: string[]): Promise<string> {
  const res = await lab.exec(node, [...o.swarmArgv, ...args], { stdio: 'pipe', timeoutMs: o.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS });
  if (res.code !== 0) {
    throw new LabError('cluster_failed', `${node}: \`swarm ${args.join(' ')}\` exited with ${res.code}: ${(res.stderr.trim() || res.stdout.trim()).slice(0, 2000)}`);
  }
  return res.stdout.trim();
}

export function swarmInitJoin(o: SwarmInitJoinOptions): ClusterStep {
  return async (lab: Lab) => {
    const s = lab.state();
    const [first, ...rest] = s.hosts;
    if (first === undefined) throw new LabError('cluster_failed', `lab ${s.name} has no hosts`);
    await swarmIn(lab, first.name, o, ['init', '--advertise-addr', first.ip]);
    if (rest.length === 0) return;
    const managerToken = await swarmIn(lab, first.name, o, ['join-token', '-q', 'manager']);
    const workerToken = rest.some((h) => h.role === 'worker') ? await swarmIn(lab, first.name, o, ['join-token', '-q', 'worker']) : '';
    const addr = `${first.ip}:${o.port ?? DEFAULT_PORT}`;
    // One at a time: each manager that joins changes the Raft membership the next one joins into.
    for (const h of rest) {
      const token = h.role === 'manager' ? managerToken : workerToken;
      if (token === '') throw new LabError('cluster_failed', `node-1 printed an empty ${h.role} join token`);
      await swarmIn(lab, h.name, o, ['join', '--token', token, addr]);
    }
  };
}
