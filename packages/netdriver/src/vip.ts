// Virtual IP load balancing in the kernel: in each task's own network namespace, an nft table that sends a
// connection to a service's VIP to one of the service's ready tasks (round robin, kept per connection by
// conntrack), and refuses at once (TCP reset, ICMP unreachable) when the service has none. Pure ruleset here.

import type { Endpoint } from './endpoints.js';
import { isIPv4, parseIp } from './ipam.js';

export const LB_TABLE = 'swarm_lb';

/** One service's virtual IP on a network, and the addresses of its ready tasks there. */
export interface VipBackends {
  vip: string;
  backends: string[];
}

/** Every VIP the task can see on its networks, with the ready tasks behind it; sorted, one entry per VIP. */
export function vipBackends(networks: ReadonlyArray<readonly Endpoint[]>): VipBackends[] {
  const byVip = new Map<string, Set<string>>();
  for (const endpoints of networks) {
    for (const e of endpoints) {
      if (e.vip === '') continue;
      let set = byVip.get(e.vip);
      if (set === undefined) byVip.set(e.vip, (set = new Set()));
      if (e.ready) set.add(e.ip);
    }
  }
  return [...byVip]
    .map(([vip, set]) => ({ vip, backends: [...set].sort(compareIp) }))
    .sort((a, b) => compareIp(a.vip, b.vip));
}

function compareIp(a: string, b: string): number {
  return parseIp(a) - parseIp(b);
}

/**
 * The task's whole load-balancing table, replaced in one nft transaction (the first two lines make sure there is a
 * table to delete). Addresses come from checked endpoint tables: dotted quads only.
 */
export function lbRuleset(vips: readonly VipBackends[]): string {
  const nat: string[] = [];
  const refuse: string[] = [];
  for (const { vip, backends } of vips) {
    if (!isIPv4(vip) || !backends.every(isIPv4)) throw new Error(`netdriver invariant: VIP ${vip} and its backends are IPv4 addresses`);
    if (backends.length === 0) {
      // Fail fast: a client learns at once that nobody serves, instead of waiting for a timeout.
      refuse.push(`    ip daddr ${vip} meta l4proto tcp reject with tcp reset`, `    ip daddr ${vip} reject`);
    } else if (backends.length === 1) {
      nat.push(`    ip daddr ${vip} dnat to ${backends[0]}`);
    } else {
      const map = backends.map((b, i) => `${i} : ${b}`).join(', ');
      nat.push(`    ip daddr ${vip} dnat to numgen inc mod ${backends.length} map { ${map} }`);
    }
  }
  return [
    `table ip ${LB_TABLE} {}`,
    `delete table ip ${LB_TABLE}`,
    `table ip ${LB_TABLE} {`,
    '  chain vip_nat {',
    '    type nat hook output priority -100; policy accept;',
    ...nat,
    '  }',
    '  chain vip_refuse {',
    '    type filter hook output priority filter; policy accept;',
    ...refuse,
    '  }',
    '}',
    '',
  ].join('\n');
}
