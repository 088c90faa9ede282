// The nftables rules the lab puts inside a host's namespace to cut it off from some peers (partition).
// One table per host namespace, `inet swlab_part`, rewritten atomically; nothing in the root namespace.

import { assert } from './errors.js';
import { netnsExec } from './ip.js';
import { run, systemTool } from './run.js';

export const PARTITION_TABLE = 'swlab_part';
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * Makes the namespace drop every IPv4 packet to or from `blockedIps` (both hooks, so a partition holds
 * in both directions even if only one side had rules). An empty list removes the table.
 */
export async function setBlockedPeers(ns: string, blockedIps: readonly string[]): Promise<void> {
  for (const ip of blockedIps) assert(IPV4.test(ip), `blocked peer ${ip} is not an IPv4 address`);
  if (blockedIps.length === 0) {
    await deletePartitionTable(ns);
    return;
  }
  const set = `{ ${[...new Set(blockedIps)].sort().join(', ')} }`;
  // Create-then-delete makes the script valid whether or not the table exists; nft -f applies it as one transaction.
  const script = [
    `table inet ${PARTITION_TABLE} {}`,
    `delete table inet ${PARTITION_TABLE}`,
    `table inet ${PARTITION_TABLE} {`,
    `  chain input { type filter hook input priority -10; policy accept; ip saddr ${set} drop; }`,
    `  chain output { type filter hook output priority -10; policy accept; ip daddr ${set} drop; }`,
    `}`,
    '',
  ].join('\n');
  await netnsExec(ns, [systemTool('nft'), '-f', '-'], { input: script });
}

export async function deletePartitionTable(ns: string): Promise<void> {
  const script = [`table inet ${PARTITION_TABLE} {}`, `delete table inet ${PARTITION_TABLE}`, ''].join('\n');
  await netnsExec(ns, [systemTool('nft'), '-f', '-'], { input: script });
}

/** Fails with tool_missing when nftables is not installed. */
export async function requireNft(): Promise<void> {
  await run(systemTool('nft'), ['--version']);
}

/** Tables present in the namespace, as "family name". */
export async function listTables(ns: string): Promise<string[]> {
  const res = await netnsExec(ns, [systemTool('nft'), 'list', 'tables']);
  return res.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('table '))
    .map((l) => l.slice('table '.length));
}
