// nft tables as text, each replaced whole in one transaction: the driver never edits a rule in place, it writes the
// table it wants (`nft -f -`), so a table is always exactly what the code that built it says.

/** A base chain: where it hooks in, and its rules (accept is the policy: the rules only NAT, count or drop). */
export interface NftChain {
  name: string;
  type: 'nat' | 'filter';
  hook: 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
  /** `dstnat`, `srcnat`, `filter`, or a number. */
  priority: string;
  rules: readonly string[];
}

/**
 * The whole table: the first two lines make sure there is one to delete, so the table is replaced, never merged
 * with what was there. `sets` are set declarations, one per entry (their own braces included).
 */
export function replaceTable(family: 'ip' | 'bridge', name: string, chains: readonly NftChain[], sets: readonly string[] = []): string {
  const lines = [`table ${family} ${name} {}`, `delete table ${family} ${name}`, `table ${family} ${name} {`];
  for (const set of sets) lines.push(...set.split('\n').map((l) => `  ${l}`));
  for (const c of chains) {
    lines.push(`  chain ${c.name} {`, `    type ${c.type} hook ${c.hook} priority ${c.priority}; policy accept;`, ...c.rules.map((r) => `    ${r}`), '  }');
  }
  lines.push('}', '');
  return lines.join('\n');
}

/**
 * The chains that take connections to the node's own addresses: prerouting (from elsewhere) and output (from the
 * node itself), the same rules in both.
 */
export function localDnatChains(rules: readonly string[]): NftChain[] {
  return [
    { name: 'prerouting', type: 'nat', hook: 'prerouting', priority: 'dstnat', rules },
    { name: 'output', type: 'nat', hook: 'output', priority: '-100', rules },
  ];
}

/** A port number a rule may carry (1-65535), and a protocol nft knows by name. */
export function isRulePort(p: { protocol: string; publishedPort: number; targetPort: number }): boolean {
  const ok = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 65535;
  return ok(p.publishedPort) && ok(p.targetPort) && ['tcp', 'udp', 'sctp'].includes(p.protocol);
}
