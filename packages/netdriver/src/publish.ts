// Host-mode published ports: on the node that runs a task, connections to the node's own addresses on the
// published port go to the task's leg on the gateway bridge, without source NAT (the client's address is kept;
// replies go back through the host, whose conntrack undoes the DNAT). One nft table for the node, rebuilt whole.

import { isIPv4 } from './ipam.js';
import { isRulePort, localDnatChains, replaceTable } from './nft.js';

export const PUBLISH_TABLE = 'swarm_publish';

/** One host-mode port of one local task. */
export interface HostPort {
  protocol: 'tcp' | 'udp' | 'sctp';
  publishedPort: number;
  targetPort: number;
  /** The task's address on the gateway bridge. */
  taskIp: string;
  taskId: string;
}

/** A published port taken twice on one node: the later task cannot have it. */
export function portClash(held: readonly HostPort[], wanted: readonly HostPort[]): HostPort | null {
  for (const w of wanted) {
    const other = held.find((h) => h.protocol === w.protocol && h.publishedPort === w.publishedPort && h.taskId !== w.taskId);
    if (other !== undefined) return other;
  }
  return null;
}

/**
 * The node's whole table. Only traffic to the node's own addresses is taken (`fib daddr type local`), not what
 * merely passes through it; loopback is left alone (a DNAT of 127.0.0.1 would need route_localnet).
 */
export function publishRuleset(ports: readonly HostPort[]): string {
  const rules: string[] = [];
  for (const p of [...ports].sort((a, b) => a.publishedPort - b.publishedPort || a.protocol.localeCompare(b.protocol))) {
    if (!isIPv4(p.taskIp) || !isRulePort(p)) throw new Error(`netdriver invariant: host port ${JSON.stringify(p)} is well formed`);
    rules.push(`fib daddr type local ip daddr != 127.0.0.0/8 ${p.protocol} dport ${p.publishedPort} dnat to ${p.taskIp}:${p.targetPort}`);
  }
  return replaceTable('ip', PUBLISH_TABLE, localDnatChains(rules));
}
