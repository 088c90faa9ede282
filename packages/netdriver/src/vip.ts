// Virtual IP load balancing in the kernel: in each task's own network namespace, an nft table that sends a
// connection to a service's VIP to one of the service's ready tasks (by its strategy and the tasks' weights, kept
// per connection by conntrack), and refuses at once (TCP reset, ICMP unreachable) when the service has none.
// Pure ruleset here.

import type { LbStrategy } from '@swarm/store';
import { chooseExpression, endpointWeight, type WeightedBackend } from './balance.js';
import type { Endpoint } from './endpoints.js';
import { isIPv4, parseIp } from './ipam.js';
import { replaceTable } from './nft.js';

export const LB_TABLE = 'swarm_lb';

/** One service's virtual IP on a network, its strategy, and its tasks there that get connections, with their weights. */
export interface VipBackends {
  vip: string;
  strategy: LbStrategy;
  backends: WeightedBackend[];
}

/** Every VIP the task can see on its networks, with the tasks behind it (weight > 0); sorted, one entry per VIP. */
export function vipBackends(networks: ReadonlyArray<readonly Endpoint[]>): VipBackends[] {
  const byVip = new Map<string, { strategy: LbStrategy; backends: Map<string, number> }>();
  for (const endpoints of networks) {
    for (const e of endpoints) {
      if (e.vip === '') continue;
      let entry = byVip.get(e.vip);
      if (entry === undefined) byVip.set(e.vip, (entry = { strategy: e.lb ?? 'round-robin', backends: new Map() }));
      const weight = endpointWeight(e, entry.strategy);
      if (weight > 0 && !entry.backends.has(e.ip)) entry.backends.set(e.ip, weight);
    }
  }
  return [...byVip]
    .map(([vip, { strategy, backends }]) => ({
      vip,
      strategy,
      backends: [...backends].map(([ip, weight]) => ({ ip, weight })).sort((a, b) => compareIp(a.ip, b.ip)),
    }))
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
  for (const { vip, strategy, backends } of vips) {
    if (!isIPv4(vip)) throw new Error(`netdriver invariant: VIP ${vip} is an IPv4 address`);
    if (backends.length === 0) {
      // Fail fast: a client learns at once that nobody serves, instead of waiting for a timeout.
      refuse.push(`ip daddr ${vip} meta l4proto tcp reject with tcp reset`, `ip daddr ${vip} reject`);
    } else {
      nat.push(`ip daddr ${vip} dnat to ${chooseExpression(backends, strategy)}`);
    }
  }
  return replaceTable('ip', LB_TABLE, [
    { name: 'vip_nat', type: 'nat', hook: 'output', priority: '-100', rules: nat },
    { name: 'vip_refuse', type: 'filter', hook: 'output', priority: 'filter', rules: refuse },
  ]);
}
