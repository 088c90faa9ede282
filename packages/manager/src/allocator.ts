// The leader's allocator: gives each overlay network a VXLAN id and a subnet (its own or one cut from the cluster's
// default pools), and each new task an address on every network it attaches to, before it may be scheduled.

import { deepEqual, isTerminalTaskState, type AttachedNetwork, type Service, type Network, type NetworkAllocation, type NetworkAttachment, type Op, type ReadTx, type Store, type Task, type Vni } from '@swarm/store';
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
  const services = tx.list('service').sort((a, b) => (a.id < b.id ? -1 : 1));
  for (const s of services) for (const v of s.endpoint.virtualIps) markUsed(v.networkId, v.addr);
  // Services' virtual IPs first, so the tasks made in this pass carry them.
  const vips = new Map<string, Service['endpoint']['virtualIps']>();
  for (const s of services) {
    const next = virtualIpsFor(s, networks, used);
    vips.set(s.id, next);
    if (!deepEqual(next, s.endpoint.virtualIps)) {
      for (const v of next) touched.add(v.networkId);
      ops.push({ op: 'update', kind: 'service', object: { ...s, endpoint: { ...s.endpoint, virtualIps: next } } });
    }
  }
  const newTasks = tx
    .list('task')
    .filter((t) => t.status.state === 'new' && isLive(t))
    .sort((a, b) => a.meta.createdAtMs - b.meta.createdAtMs || (a.id < b.id ? -1 : 1));
  for (const t of newTasks) {
    const result = attachmentsFor(t, networks, used, vips.get(t.serviceId) ?? []);
    if (typeof result === 'string') {
      if (t.status.message !== result) ops.push(taskOp({ ...t, status: { ...t.status, timestampMs: nowMs, message: result } }));
      continue;
    }
    for (const a of result) touched.add(a.networkId);
    ops.push(taskOp({ ...t, networksAttachments: result, status: { ...t.status, state: 'pending', timestampMs: nowMs, message: 'pending task scheduling' } }));
  }
  for (const id of touched) {
    const n = networks.get(id);
    assert(n?.allocation != null, 'a network written by the allocator is allocated');
    ops.push({ op: 'update', kind: 'network', object: n });
  }
  return ops;
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

/** The task's attachments, or why it must wait. Takes the addresses from `used` and moves the networks' cursors. */
function attachmentsFor(t: Task, networks: Map<string, Network>, used: Map<string, Set<number>>, vips: Service['endpoint']['virtualIps']): NetworkAttachment[] | string {
  const out: NetworkAttachment[] = [];
  const seen = new Set<string>();
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
  return out;
}

function taskOp(t: Task): Op {
  return { op: 'update', kind: 'task', object: t };
}

export function allocator(): Reconciler {
  return { name: 'allocator', run: (store: Store, nowMs: number) => store.view((tx) => allocate(tx, nowMs)) };
}
