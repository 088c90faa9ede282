// The routing mesh: every node accepts a service's ingress-mode published ports and forwards each connection over
// the ingress overlay to one of the service's ready tasks, wherever it runs. Two nft tables, built whole here:
//  - in the host's namespace, connections to the node's own addresses on an ingress port go to the node's ingress
//    sandbox (its leg on the gateway bridge), source-NATed so the answers come back the same way;
//  - in the ingress sandbox (a namespace with a leg on `ingress`, the node's address there), each connection is
//    sent to a task's ingress address and target port by the service's strategy, and source-NATed to the
//    sandbox's ingress address, so the task answers the node that took the connection.
// A port whose service has no ready task is not NATed: the sandbox itself refuses it (TCP reset, ICMP unreachable).

import type { LbStrategy, NetworkAttachment } from '@swarm/store';
import { chooseExpression, endpointWeight, type WeightedBackend } from './balance.js';
import type { Endpoint } from './endpoints.js';
import { isIPv4, parseIp } from './ipam.js';
import { isRulePort, localDnatChains, replaceTable } from './nft.js';

export const INGRESS_TABLE = 'swarm_ingress';
/** The ingress sandbox's id among the driver's task records, and its name in `network inspect`. */
export const INGRESS_SANDBOX = 'ingress-sbox';
export const INGRESS_ENDPOINT_NAME = 'ingress-endpoint';

export interface IngressPort {
  protocol: 'tcp' | 'udp' | 'sctp';
  publishedPort: number;
  targetPort: number;
}

/** One service with ingress-mode published ports, as every node must serve them. */
export interface IngressService {
  /** The service's name: its tasks' endpoints carry it. */
  name: string;
  ports: IngressPort[];
  strategy: LbStrategy;
}

/** What a node needs for the routing mesh: its own address on `ingress`, and every service publishing through it. */
export interface IngressConfig {
  attachment: NetworkAttachment;
  services: IngressService[];
}

export interface IngressBackends {
  service: IngressService;
  backends: WeightedBackend[];
}

/**
 * Each service's tasks on the ingress network with their weights by its strategy (the sandboxes' own endpoints are
 * never backends; a weight of 0 leaves a task out), in address order.
 */
export function ingressBackends(services: readonly IngressService[], endpoints: readonly Endpoint[]): IngressBackends[] {
  return [...services]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((service) => {
      const seen = new Set<string>();
      const backends: WeightedBackend[] = [];
      for (const e of endpoints) {
        if (e.service !== service.name || e.taskId === INGRESS_SANDBOX || seen.has(e.ip)) continue;
        seen.add(e.ip);
        const weight = endpointWeight(e, service.strategy);
        if (weight > 0) backends.push({ ip: e.ip, weight });
      }
      backends.sort((a, b) => parseIp(a.ip) - parseIp(b.ip));
      return { service, backends };
    });
}

/** The ingress sandbox's table: connections to a published port go to a task's target port, source-NATed. */
export function sandboxRuleset(services: readonly IngressBackends[], ingressIfname: string): string {
  const nat: string[] = [];
  for (const { service, backends } of services) {
    if (backends.length === 0) continue;
    const to = chooseExpression(backends, service.strategy);
    for (const p of service.ports) {
      assertPort(p);
      nat.push(`${p.protocol} dport ${p.publishedPort} dnat to ${to} : ${p.targetPort}`);
    }
  }
  return replaceTable('ip', INGRESS_TABLE, [
    { name: 'prerouting', type: 'nat', hook: 'prerouting', priority: 'dstnat', rules: nat },
    { name: 'postrouting', type: 'nat', hook: 'postrouting', priority: 'srcnat', rules: [`oifname "${ingressIfname}" ct status dnat masquerade`] },
  ]);
}

/**
 * The host's table: the node's own addresses (not loopback, which would need route_localnet) on every ingress port
 * go to the sandbox's gateway-bridge address, the port kept, source-NATed to the bridge's address so the sandbox
 * answers through the host even a client that is itself a task on the gateway bridge (its ports are isolated).
 */
export function hostIngressRuleset(services: readonly IngressService[], sandboxIp: string, gatewayBridge: string): string {
  if (!isIPv4(sandboxIp)) throw new Error(`netdriver invariant: sandbox address ${sandboxIp} is IPv4`);
  const rules: string[] = [];
  for (const s of services) {
    for (const p of s.ports) {
      assertPort(p);
      rules.push(`fib daddr type local ip daddr != 127.0.0.0/8 ${p.protocol} dport ${p.publishedPort} dnat to ${sandboxIp}`);
    }
  }
  return replaceTable('ip', INGRESS_TABLE, [
    ...localDnatChains(rules),
    { name: 'postrouting', type: 'nat', hook: 'postrouting', priority: 'srcnat', rules: [`ip daddr ${sandboxIp} oifname "${gatewayBridge}" ct status dnat masquerade`] },
  ]);
}

function assertPort(p: IngressPort): void {
  if (!isRulePort(p)) throw new Error(`netdriver invariant: ingress port ${JSON.stringify(p)} is well formed`);
}
