// Overlay networks in Docker's Engine API shapes: the create request's schema, the network document (with every
// endpoint in the cluster, which Docker's own inspect cannot list), and resolving a user's network reference.

import { createHash } from 'node:crypto';
import { VXLANID_OPTION } from '@swarm/netdriver';
import { macForIp } from '@swarm/netdriver';
import { isTerminalTaskState, type Network, type Node, type Task } from '@swarm/store';
import { ApiError, assert } from './errors.js';
import type { NetworkDocument, NetworkEndpointDocument } from './types.js';

/** Docker's network name rule (the daemon checks it, to say so in words rather than as a regex). */
export const NETWORK_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** Bound on ids listed in an "ambiguous" message. */
const MAX_IDS_IN_MESSAGE = 5;

const stringMap = { type: 'object', maxProperties: 256, propertyNames: { type: 'string', minLength: 1, maxLength: 1024 }, additionalProperties: { type: 'string', maxLength: 4096 } } as const;
const address = { type: 'string', maxLength: 64 } as const;

/** `POST /networks/create`: shapes only; names, drivers, subnets and overlaps are the backend's to judge. */
export const networkCreateSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['Name'],
  properties: {
    Name: { type: 'string', maxLength: 255 },
    Driver: { type: 'string', maxLength: 64 },
    Internal: { type: 'boolean' },
    Attachable: { type: 'boolean' },
    Ingress: { type: 'boolean' },
    Labels: stringMap,
    Options: stringMap,
    IPAM: {
      type: 'object',
      additionalProperties: false,
      properties: {
        Driver: { type: 'string', maxLength: 64 },
        Config: {
          type: 'array',
          maxItems: 16,
          items: { type: 'object', additionalProperties: false, properties: { Subnet: address, Gateway: address, IPRange: address } },
        },
      },
    },
  },
} as const;

export const networkParamsSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;

/** Docker's container name of a task: service.slot.taskid, or service.nodeid.taskid for a global service. */
export function taskContainerName(task: Task): string {
  return `${task.serviceName}.${task.slot > 0 ? String(task.slot) : task.nodeId}.${task.id}`;
}

/** A stable 64-hex endpoint id (Docker's length): we keep no endpoint object, so it is derived from what it joins. */
function endpointId(networkId: string, taskId: string): string {
  return createHash('sha256').update(`${networkId}/${taskId}`).digest('hex');
}

/** The tasks that hold an address on `networkId` now: not ended, with an attachment to it. */
export function attachedTasks(networkId: string, tasks: readonly Task[]): Array<{ task: Task; address: string }> {
  const out: Array<{ task: Task; address: string }> = [];
  for (const task of tasks) {
    if (isTerminalTaskState(task.status.state)) continue;
    const a = task.networksAttachments.find((x) => x.networkId === networkId);
    const addr = a?.addresses[0];
    if (addr !== undefined) out.push({ task, address: addr });
  }
  return out;
}

export function networkDocument(network: Network, tasks: readonly Task[], nodes: readonly Node[]): NetworkDocument {
  const spec = network.spec;
  const alloc = network.allocation;
  const config = alloc !== null
    ? [{ Subnet: alloc.subnet, Gateway: alloc.gateway }]
    : spec.ipam.configs.map((c) => ({ Subnet: c.subnet, Gateway: c.gateway }));
  const containers: Record<string, NetworkEndpointDocument> = {};
  const peerIds = new Set<string>();
  for (const { task, address } of attachedTasks(network.id, tasks)) {
    const slash = address.indexOf('/');
    assert(slash > 0, `task address ${address} is a CIDR`);
    containers[task.id] = {
      Name: taskContainerName(task),
      EndpointID: endpointId(network.id, task.id),
      MacAddress: macForIp(address.slice(0, slash)),
      IPv4Address: address,
      IPv6Address: '',
    };
    if (task.nodeId !== '') peerIds.add(task.nodeId);
  }
  const peers = nodes
    .filter((n) => peerIds.has(n.id))
    .map((n) => ({ Name: n.description.hostname, IP: n.status.addr }))
    .sort((a, b) => a.Name.localeCompare(b.Name) || a.IP.localeCompare(b.IP));
  const options = { ...spec.driverOptions };
  if (alloc !== null) options[VXLANID_OPTION] = String(alloc.vni);
  return {
    Name: spec.name,
    Id: network.id,
    Created: new Date(network.meta.createdAtMs).toISOString(),
    Scope: 'swarm',
    Driver: spec.driver,
    EnableIPv6: false,
    IPAM: { Driver: spec.ipam.driver === '' ? 'default' : spec.ipam.driver, Options: null, Config: config },
    Internal: spec.internal,
    Attachable: spec.attachable,
    Ingress: spec.ingress,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: options,
    Labels: { ...spec.labels },
    Peers: peers,
  };
}

/** `network ls` order: by name (names are unique). */
export function sortNetworks(networks: readonly Network[]): Network[] {
  return [...networks].sort((a, b) => a.spec.name.localeCompare(b.spec.name) || (a.id < b.id ? -1 : 1));
}

/**
 * Docker's order: an exact id, then an exact name, then a unique id prefix. A prefix of several ids is an error
 * naming them rather than a guess; nothing at all is `network REF not found`, as Docker says it.
 */
export function resolveNetwork(networks: readonly Network[], ref: string): Network {
  if (ref === '') throw new ApiError('invalid_argument', 'a network id, id prefix or name is needed');
  const exact = networks.find((n) => n.id === ref) ?? networks.find((n) => n.spec.name === ref);
  if (exact !== undefined) return exact;
  const prefixed = networks.filter((n) => n.id.startsWith(ref));
  if (prefixed.length === 1 && prefixed[0] !== undefined) return prefixed[0];
  if (prefixed.length > 1) {
    const ids = prefixed.slice(0, MAX_IDS_IN_MESSAGE).map((n) => `${n.id} (${n.spec.name})`);
    throw new ApiError('ambiguous', `network id prefix ${ref} is ambiguous: it matches ${prefixed.length} networks (${ids.join(', ')}${prefixed.length > MAX_IDS_IN_MESSAGE ? ', ...' : ''}); give more characters or the name`);
  }
  throw new ApiError('not_found', `network ${ref} not found`);
}
