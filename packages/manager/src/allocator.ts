// The leader's allocator: gives each overlay network a VXLAN id and a subnet (its own or one cut from the cluster's
// default pools), and each new task an address on every network it attaches to, before it may be scheduled.

import { deepEqual, isTerminalTaskState, type AttachedNetwork, type PortConfig, type Service, type Network, type NetworkAllocation, type NetworkAttachment, type Node, type Op, type ReadTx, type Store, type Task, type Vni } from '@swarm/store';
import { checkSubnet, cutSubnet, ENCRYPTED_OPTION, HOST_NETWORK, formatCidr, formatIp, gatewayFor, IpamError, nextHost, nextVni, overlaps, parseCidr, parseIp, size, type Cidr } from '@swarm/netdriver';
import { isLive } from './orchestrator.js';
import { assert, type Reconciler } from './reconciler.js';

/** Docker's defaults when a cluster object carries none. */
const FALLBACK_POOLS = ['10.0.0.0/8'];
const FALLBACK_SUBNET_SIZE = 24;

/** What the allocator needs of the spec of a network; the rest does not change its addresses. */
export function attachedNetwork(n: Network): AttachedNetwork | null {
  if (n.allocation === null) return null;
  return {
    name: n.spec.name,
    vni: n.allocation.vni,
    subnet: n.allocation.subnet,
    gateway: n.allocation.gateway,
    internal: n.spec.internal,
    encrypted: Object.hasOwn(n.spec.driverOptions, ENCRYPTED_OPTION),
    ingress: n.spec.ingress,
  };
}

/**
 * The allocation a network gets, given the networks allocated before it: its own subnet must not overlap theirs
 * (an IpamError says which); without one, the first free cut of the default pools. Throws when nothing is left.
 */
export function allocateNetwork(network: Network, allocated: readonly Network[], pools: readonly string[], subnetSize: number): NetworkAllocation {
  const taken: Array<{ cidr: Cidr; name: string }> = [];
  const vnis = new Set<Vni>();
  for (const n of allocated) {
    if (n.allocation === null || n.id === network.id) continue;
    taken.push({ cidr: parseCidr(n.allocation.subnet), name: n.spec.name });
    vnis.add(n.allocation.vni);
  }
  const config = network.spec.ipam.configs[0];
  let subnet: Cidr;
  if (config !== undefined && config.subnet !== '') {
    subnet = checkSubnet(config.subnet);
    const clash = taken.find((t) => overlaps(t.cidr, subnet));
    if (clash !== undefined) throw new IpamError(`subnet ${config.subnet} overlaps network ${clash.name} (${formatCidr(clash.cidr)})`);
  } else {
    const cut = cutSubnet(pools.length > 0 ? pools : FALLBACK_POOLS, subnetSize > 0 ? subnetSize : FALLBACK_SUBNET_SIZE, taken.map((t) => t.cidr));
    if (cut === null) throw new IpamError(`the default address pools (${pools.join(', ')}) have no free /${subnetSize} left: remove a network or give --subnet`);
    subnet = cut;
  }
  const vni = network.spec.ingress && !vnis.has(4096) ? 4096 : nextVni(vnis);
  if (vni === null) throw new IpamError('every VXLAN id is in use');
  const gateway = gatewayFor(subnet, config?.gateway ?? '');
  return { vni, subnet: formatCidr(subnet), gateway, lastHost: parseIp(gateway) - subnet.base };
}

/** A task's addresses stay taken until it has ended (its container gone); live tasks not yet ended hold theirs. */
function holdsAddresses(t: Task): boolean {
  return t.networksAttachments.length > 0 && !isTerminalTaskState(t.status.state);
}

export function allocate(tx: ReadTx, nowMs: number): Op[] {
  const ops: Op[] = [];
  const cluster = tx.list('cluster')[0];
  const pools = cluster?.defaultAddrPool ?? FALLBACK_POOLS;
  const subnetSize = cluster?.subnetSize ?? FALLBACK_SUBNET_SIZE;
  // Networks first, oldest first, so names and ids never race for a subnet.
  const networks = new Map(tx.list('network').map((n) => [n.id, n]));
  const order = [...networks.values()].sort((a, b) => a.meta.createdAtMs - b.meta.createdAtMs || (a.id < b.id ? -1 : 1));
  // Networks written in this pass (allocated, or their address cursor moved): each goes out once, at the end.
  const touched = new Set<string>();
  for (const n of order) {
    if (n.allocation !== null) continue;
    try {
      const allocation = allocateNetwork(n, [...networks.values()], pools, subnetSize);
      networks.set(n.id, { ...n, allocation });
      touched.add(n.id);
    } catch (err) {
      // Left unallocated: tasks on it wait (PENDING with the reason), and the API refused what it could foresee.
      if (!(err instanceof IpamError)) throw err;
    }
  }
  const used = new Map<string, Set<number>>();
  const markUsed = (networkId: string, addr: string): void => {
    const n = networks.get(networkId);
    if (n?.allocation == null) return;
    const base = parseCidr(n.allocation.subnet).base;
    let set = used.get(networkId);
    if (set === undefined) used.set(networkId, (set = new Set()));
    set.add(parseIp(addr.slice(0, addr.indexOf('/'))) - base);
  };
  for (const t of tx.list('task')) {
    if (!holdsAddresses(t)) continue;
    for (const a of t.networksAttachments) for (const addr of a.addresses) markUsed(a.networkId, addr);
  }
  const nodes = tx.list('node').sort((a, b) => (a.id < b.id ? -1 : 1));
  for (const n of nodes) for (const a of n.attachments) for (const addr of a.addresses) markUsed(a.networkId, addr);
  const services = tx.list('service').sort((a, b) => (a.id < b.id ? -1 : 1));
  for (const s of services) for (const v of s.endpoint.virtualIps) markUsed(v.networkId, v.addr);
  // Services' virtual IPs first, so the tasks made in this pass carry them.
  const vips = new Map<string, Service['endpoint']['virtualIps']>();
  const endpoints = new Map<string, Service['endpoint']>();
  // Published ports in the same write as the virtual IPs: one update per service and pass.
  const ports = allocatePorts(services);
  for (const s of services) {
    const next = virtualIpsFor(s, networks, used);
    vips.set(s.id, next);
    if (!deepEqual(next, s.endpoint.virtualIps)) for (const v of next) touched.add(v.networkId);
    const endpoint: Service['endpoint'] = { spec: s.spec.endpointSpec, ports: ports.get(s.id) ?? [], virtualIps: next };
    endpoints.set(s.id, endpoint);
    if (!deepEqual(endpoint, s.endpoint)) ops.push({ op: 'update', kind: 'service', object: { ...s, endpoint } });
  }
  // The routing mesh: every node gets an address on the ingress network (its ingress sandbox answers from it).
  const ingress = [...networks.values()].find((n) => n.spec.ingress && n.allocation !== null) ?? null;
  for (const node of nodes) {
    const attachments = nodeAttachments(node, ingress, networks, used);
    if (attachments === null) continue;
    ops.push({ op: 'update', kind: 'node', object: { ...node, attachments } });
    for (const a of attachments) touched.add(a.networkId);
  }
  const newTasks = tx
    .list('task')
    .filter((t) => t.status.state === 'new' && isLive(t))
    .sort((a, b) => a.meta.createdAtMs - b.meta.createdAtMs || (a.id < b.id ? -1 : 1));
  for (const t of newTasks) {
    // A task of a service with ingress-mode ports gets a leg on the ingress network too, so the mesh reaches it.
    const meshed = (endpoints.get(t.serviceId)?.ports ?? t.endpoint?.ports ?? []).some((p) => p.publishMode === 'ingress');
    const result = attachmentsFor(t, networks, used, vips.get(t.serviceId) ?? [], meshed ? ingress : null);
    if (typeof result === 'string') {
      if (t.status.message !== result) ops.push(taskOp({ ...t, status: { ...t.status, timestampMs: nowMs, message: result } }));
      continue;
    }
    for (const a of result) touched.add(a.networkId);
    // The task's copy of its service's ports as allocated now (the orchestrator made it from the service as it was).
    const ep = endpoints.get(t.serviceId);
    const endpoint = ep === undefined ? t.endpoint : { spec: ep.spec, ports: ep.ports };
    ops.push(taskOp({ ...t, networksAttachments: result, endpoint, status: { ...t.status, state: 'pending', timestampMs: nowMs, message: 'pending task scheduling' } }));
  }
  for (const id of touched) {
    const n = networks.get(id);
    assert(n?.allocation != null, 'a network written by the allocator is allocated');
    ops.push({ op: 'update', kind: 'network', object: n });
  }
  return ops;
}

/** Docker's dynamic range for ingress ports published without a number (SwarmKit's portallocator). */
export const DYNAMIC_PORT_RANGE = { first: 30000, last: 32767 } as const;

const portKey = (port: number, protocol: PortConfig['protocol']): string => `${port}/${protocol}`;
/** What makes a dynamic port "the same" from one spec to the next (SwarmKit's key: all but the published port). */
const dynamicKey = (p: PortConfig): string => `${p.name}\u0000${p.protocol}\u0000${p.targetPort}`;

/**
 * Every service's published ports as allocated (Service.endpoint.ports), by service id, in its spec's order:
 * host-mode ports as given; ingress ports with the number asked for, or, when the spec leaves it 0, the one the
 * service already holds for the same name/protocol/target, else the lowest free one of 30000-32767. An ingress port
 * (number and protocol) belongs to one service in the cluster: the services holding it keep it, then the oldest
 * asking. One that cannot be had (two services asked at once past the API's check, or the range is full) is left
 * out until it is free.
 */
export function allocatePorts(services: readonly Service[]): Map<string, PortConfig[]> {
  const order = [...services].sort((a, b) => a.meta.createdAtMs - b.meta.createdAtMs || (a.id < b.id ? -1 : 1));
  const owner = new Map<string, string>();
  const claim = (s: Service, port: number, protocol: PortConfig['protocol']): boolean => {
    const key = portKey(port, protocol);
    const held = owner.get(key);
    if (held !== undefined && held !== s.id) return false;
    owner.set(key, s.id);
    return true;
  };
  // Per service, the published port chosen for each spec port index (ingress only).
  const chosen = new Map<string, Map<number, number>>();
  for (const s of order) chosen.set(s.id, new Map());
  // 1. What services hold and still ask for: explicit ports they have, dynamic ones kept for the same target.
  for (const s of order) {
    const mine = chosen.get(s.id);
    assert(mine !== undefined, 'every service has a choice map');
    const held = s.endpoint.ports.filter((p) => p.publishMode === 'ingress' && p.publishedPort !== 0);
    const explicit = new Set(s.spec.endpointSpec.ports.filter((p) => p.publishMode === 'ingress' && p.publishedPort !== 0).map((p) => portKey(p.publishedPort, p.protocol)));
    const kept = new Set<number>();
    s.spec.endpointSpec.ports.forEach((p, i) => {
      if (p.publishMode !== 'ingress') return;
      if (p.publishedPort !== 0) {
        if (held.some((h) => h.publishedPort === p.publishedPort && h.protocol === p.protocol) && claim(s, p.publishedPort, p.protocol)) mine.set(i, p.publishedPort);
        return;
      }
      const j = held.findIndex((h, k) => !kept.has(k) && dynamicKey(h) === dynamicKey(p) && !explicit.has(portKey(h.publishedPort, h.protocol)));
      const h = held[j];
      if (h === undefined || !claim(s, h.publishedPort, h.protocol)) return;
      kept.add(j);
      mine.set(i, h.publishedPort);
    });
  }
  // 2. Explicit ports not held yet, oldest service first.
  for (const s of order) {
    const mine = chosen.get(s.id);
    assert(mine !== undefined, 'every service has a choice map');
    s.spec.endpointSpec.ports.forEach((p, i) => {
      if (p.publishMode === 'ingress' && p.publishedPort !== 0 && !mine.has(i) && claim(s, p.publishedPort, p.protocol)) mine.set(i, p.publishedPort);
    });
  }
  // 3. Dynamic ports not kept: the lowest free number of the range, for their protocol.
  for (const s of order) {
    const mine = chosen.get(s.id);
    assert(mine !== undefined, 'every service has a choice map');
    s.spec.endpointSpec.ports.forEach((p, i) => {
      if (p.publishMode !== 'ingress' || p.publishedPort !== 0 || mine.has(i)) return;
      for (let port: number = DYNAMIC_PORT_RANGE.first; port <= DYNAMIC_PORT_RANGE.last; port++) {
        if (owner.has(portKey(port, p.protocol))) continue;
        claim(s, port, p.protocol);
        mine.set(i, port);
        return;
      }
    });
  }
  const out = new Map<string, PortConfig[]>();
  for (const s of order) {
    const mine = chosen.get(s.id);
    assert(mine !== undefined, 'every service has a choice map');
    const ports: PortConfig[] = [];
    s.spec.endpointSpec.ports.forEach((p, i) => {
      if (p.publishMode === 'host') ports.push({ ...p });
      else {
        const port = mine.get(i);
        if (port === undefined) return;
        assert(port >= 1 && port <= 65535 && owner.get(portKey(port, p.protocol)) === s.id, `ingress port ${port}/${p.protocol} is ${s.id}'s alone`);
        ports.push({ ...p, publishedPort: port });
      }
    });
    out.set(s.id, ports);
  }
  return out;
}

/** The network a spec target names (an id, or a name from before names were resolved to ids). */
function targetNetwork(target: string, networks: Map<string, Network>): Network | undefined {
  return networks.get(target) ?? [...networks.values()].find((x) => x.spec.name === target);
}

/** The next free address of an allocated network, taken from `used`, the network's cursor moved; or why not. */
function takeAddress(n: Network, networks: Map<string, Network>, used: Map<string, Set<number>>): string | { error: string } {
  assert(n.allocation !== null, 'addresses come from an allocated network');
  const subnet = parseCidr(n.allocation.subnet);
  let set = used.get(n.id);
  if (set === undefined) used.set(n.id, (set = new Set()));
  const host = nextHost(subnet, parseIp(n.allocation.gateway), n.allocation.lastHost, set);
  if (host === null) return { error: `network ${n.spec.name} has no free address left in ${n.allocation.subnet}` };
  assert(host > 0 && host < size(subnet) - 1, `host ${host} inside ${n.allocation.subnet}`);
  set.add(host);
  networks.set(n.id, { ...n, allocation: { ...n.allocation, lastHost: host } });
  return `${formatIp(subnet.base + host)}/${subnet.prefix}`;
}

/**
 * A service's virtual IPs: one on each allocated network it attaches to, in endpoint mode vip (Docker's default);
 * the ones it has are kept, new networks get one, networks it left give theirs back.
 */
function virtualIpsFor(s: Service, networks: Map<string, Network>, used: Map<string, Set<number>>): Service['endpoint']['virtualIps'] {
  if (s.spec.endpointSpec.mode !== 'vip') return [];
  const out: Service['endpoint']['virtualIps'] = [];
  for (const target of s.spec.taskTemplate.networks) {
    if (target.target === HOST_NETWORK) continue;
    const n = targetNetwork(target.target, networks);
    if (n?.allocation == null || out.some((v) => v.networkId === n.id)) continue;
    const have = s.endpoint.virtualIps.find((v) => v.networkId === n.id);
    if (have !== undefined) {
      out.push(have);
      continue;
    }
    const addr = takeAddress(n, networks, used);
    if (typeof addr === 'string') out.push({ networkId: n.id, addr });
  }
  return out;
}

/**
 * A node's attachments as they should be: one on the ingress network (kept while that network stays, renewed when it
 * is made again), or none without one; null when they already are.
 */
function nodeAttachments(node: Node, ingress: Network | null, networks: Map<string, Network>, used: Map<string, Set<number>>): NetworkAttachment[] | null {
  const keep = node.attachments.filter((a) => ingress !== null && a.networkId === ingress.id);
  if (ingress !== null && keep.length === 0) {
    const addr = takeAddress(networks.get(ingress.id) ?? ingress, networks, used);
    // A full ingress subnet: the node waits for an address (its tasks' ports are served by the other nodes).
    if (typeof addr !== 'string') return keep.length === node.attachments.length ? null : keep;
    const fresh = networks.get(ingress.id);
    assert(fresh !== undefined, 'the ingress network is known');
    const attached = attachedNetwork(fresh);
    assert(attached !== null, 'an allocated network has an attachment form');
    keep.push({ networkId: ingress.id, network: attached, addresses: [addr], aliases: [], virtualIp: '' });
  }
  return deepEqual(keep, node.attachments) ? null : keep;
}

/**
 * The task's attachments, or why it must wait. Takes the addresses from `used` and moves the networks' cursors.
 * `ingress`: the ingress network, when the task's service publishes ports through the routing mesh.
 */
function attachmentsFor(t: Task, networks: Map<string, Network>, used: Map<string, Set<number>>, vips: Service['endpoint']['virtualIps'], ingress: Network | null): NetworkAttachment[] | string {
  const out: NetworkAttachment[] = [];
  const seen = new Set<string>();
  if (ingress !== null) seen.add(ingress.id);
  for (const target of t.spec.networks) {
    if (target.target === HOST_NETWORK) continue; // the node's own stack: nothing to allocate
    const n = targetNetwork(target.target, networks);
    if (n === undefined) return `network ${target.target} not found`;
    if (seen.has(n.id)) continue;
    seen.add(n.id);
    if (n.allocation === null) return `network ${n.spec.name} has no addresses yet`;
    const addr = takeAddress(n, networks, used);
    if (typeof addr !== 'string') return addr.error;
    const attached = attachedNetwork(n);
    assert(attached !== null, 'an allocated network has an attachment form');
    out.push({ networkId: n.id, network: attached, addresses: [addr], aliases: [...target.aliases], virtualIp: vips.find((v) => v.networkId === n.id)?.addr ?? '' });
  }
  if (ingress !== null) {
    // Last, so the task's own networks keep eth0…; the network object is read again for its moved cursor.
    const n = networks.get(ingress.id) ?? ingress;
    const addr = takeAddress(n, networks, used);
    if (typeof addr !== 'string') return addr.error;
    const attached = attachedNetwork(n);
    assert(attached !== null, 'an allocated network has an attachment form');
    out.push({ networkId: n.id, network: attached, addresses: [addr], aliases: [], virtualIp: '' });
  }
  return out;
}

function taskOp(t: Task): Op {
  return { op: 'update', kind: 'task', object: t };
}

export function allocator(): Reconciler {
  return { name: 'allocator', run: (store: Store, nowMs: number) => store.view((tx) => allocate(tx, nowMs)) };
}
