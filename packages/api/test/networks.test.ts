// Networks in Docker's shapes: the network document (IPAM from the allocation or the spec, every live endpoint in
// the cluster with Docker's MAC and container name, the peers, the VXLAN id option), resolving a reference, and
// networks in the service spec and task documents.

import test from 'ava';
import type { Network, Node, Task } from '@swarm/store';
import { ApiError } from '../src/errors.js';
import { networkDocument, resolveNetwork } from '../src/networks.js';
import { serviceDocument, taskDocument, toServiceSpec } from '../src/services.js';

const meta = { version: { index: 9 }, createdAtMs: 1_700_000_000_000, updatedAtMs: 1_700_000_000_000 };

function network(id: string, name: string, allocated: boolean): Network {
  return {
    id,
    meta,
    spec: {
      name,
      labels: { tier: 'db' },
      driver: 'overlay',
      driverOptions: { encrypted: '' },
      ipam: { driver: 'default', configs: [{ subnet: '10.0.1.0/24', range: '', gateway: '' }] },
      internal: false,
      attachable: true,
      ingress: false,
    },
    allocation: allocated ? { vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1', lastHost: 6 } : null,
  };
}

function node(id: string, hostname: string, addr: string): Node {
  return {
    id,
    meta,
    spec: { name: '', labels: {}, role: 'worker', availability: 'active' },
    description: { hostname, platform: { os: 'linux', arch: 'x86_64' }, resources: { nanoCpus: 1e9, memoryBytes: 1 << 30 }, engineVersion: '0.1.0', engineLabels: {} },
    status: { state: 'ready', addr, message: '' },
    managerStatus: null,
    attachments: [],
  };
}

function task(id: string, slot: number, nodeId: string, state: Task['status']['state'], address: string | null): Task {
  const spec = toServiceSpec({ Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Networks: [{ Target: 'net1' }] } }, 'web');
  return {
    id,
    meta,
    serviceId: 's1',
    slot,
    nodeId,
    spec: spec.taskTemplate,
    specVersion: { index: 1 },
    serviceName: 'web',
    desiredState: 'running',
    status: { state, timestampMs: 0, message: '', err: '', containerStatus: null, portStatus: [] },
    networksAttachments:
      address === null
        ? []
        : [{ networkId: 'net1', network: { name: 'backend', vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1', internal: false, encrypted: true, ingress: false }, addresses: [address], aliases: ['db'], virtualIp: '' }],
    endpoint: null,
  };
}

test('a network document: Docker fields, the allocation as IPAM config, the VXLAN id in Options, every live endpoint and its node', (t) => {
  const nodes = [node('n1', 'alpha', '192.168.1.1'), node('n2', 'beta', '192.168.1.2'), node('n3', 'gamma', '192.168.1.3')];
  const tasks = [
    task('t1', 1, 'n2', 'running', '10.0.1.5/24'),
    task('t2', 2, 'n1', 'pending', '10.0.1.6/24'),
    // Ended: its address is free again, and it is not an endpoint.
    task('t3', 3, 'n3', 'failed', '10.0.1.7/24'),
    task('t4', 4, 'n3', 'new', null),
  ];
  const doc = networkDocument(network('net1', 'backend', true), tasks, nodes);
  t.like(doc, {
    Name: 'backend',
    Id: 'net1',
    Created: '2023-11-14T22:13:20.000Z',
    Scope: 'swarm',
    Driver: 'overlay',
    EnableIPv6: false,
    Internal: false,
    Attachable: true,
    Ingress: false,
    ConfigOnly: false,
  });
  t.deepEqual(doc.IPAM, { Driver: 'default', Options: null, Config: [{ Subnet: '10.0.1.0/24', Gateway: '10.0.1.1' }] });
  t.deepEqual(doc.Options, { encrypted: '', 'com.docker.network.driver.overlay.vxlanid_list': '4097' });
  t.deepEqual(doc.Labels, { tier: 'db' });
  t.deepEqual(Object.keys(doc.Containers).sort(), ['t1', 't2']);
  t.like(doc.Containers['t1'], { Name: 'web.1.t1', MacAddress: '02:42:0a:00:01:05', IPv4Address: '10.0.1.5/24', IPv6Address: '' });
  t.regex(doc.Containers['t1']?.EndpointID ?? '', /^[0-9a-f]{64}$/);
  t.not(doc.Containers['t1']?.EndpointID, doc.Containers['t2']?.EndpointID);
  t.deepEqual(doc.Peers, [{ Name: 'alpha', IP: '192.168.1.1' }, { Name: 'beta', IP: '192.168.1.2' }]);

  // Not yet allocated: the spec's subnet, no VXLAN id.
  const pending = networkDocument(network('net1', 'backend', false), [], nodes);
  t.deepEqual(pending.IPAM.Config, [{ Subnet: '10.0.1.0/24', Gateway: '' }]);
  t.deepEqual(pending.Options, { encrypted: '' });
  t.deepEqual(pending.Peers, []);
});

test('resolveNetwork: an exact id, then a name, then a unique id prefix; ambiguous and unknown are errors in Docker\'s words', (t) => {
  const all = [network('abc123', 'web', true), network('abd456', 'db', true)];
  t.is(resolveNetwork(all, 'db').id, 'abd456');
  t.is(resolveNetwork(all, 'abc123').spec.name, 'web');
  t.is(resolveNetwork(all, 'abc').spec.name, 'web');
  const ambiguous = t.throws(() => resolveNetwork(all, 'ab'), { instanceOf: ApiError });
  t.is(ambiguous?.code, 'ambiguous');
  t.regex(ambiguous?.message ?? '', /abc123 \(web\), abd456 \(db\)/);
  const unknown = t.throws(() => resolveNetwork(all, 'cache'), { instanceOf: ApiError });
  t.is(unknown?.code, 'not_found');
  t.is(unknown?.message, 'network cache not found');
});

test('service specs carry TaskTemplate.Networks (or the deprecated top-level Networks); documents show them; tasks show their attachments', (t) => {
  const spec = toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'x' }, Networks: [{ Target: 'front' }, { Target: 'back', Aliases: ['db'] }] } }, 'n');
  t.deepEqual(spec.taskTemplate.networks, [{ target: 'front', aliases: [] }, { target: 'back', aliases: ['db'] }]);
  t.deepEqual(toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'x' } }, Networks: [{ Target: 'old' }] }, 'n').taskTemplate.networks, [{ target: 'old', aliases: [] }]);
  const both = t.throws(() => toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'x' }, Networks: [{ Target: 'a' }] }, Networks: [{ Target: 'b' }] }, 'n'), { instanceOf: ApiError });
  t.regex(both?.message ?? '', /^Networks: give the networks in TaskTemplate\.Networks only/);

  const doc = serviceDocument({ id: 's1', meta, spec, previousSpec: null, specVersion: { index: 1 }, endpoint: { spec: spec.endpointSpec, ports: [], virtualIps: [] }, updateStatus: null });
  t.deepEqual(doc.Spec.TaskTemplate.Networks, [{ Target: 'front' }, { Target: 'back', Aliases: ['db'] }]);
  const none = toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'x' } } }, 'n');
  t.is(serviceDocument({ id: 's2', meta, spec: none, previousSpec: null, specVersion: { index: 1 }, endpoint: { spec: none.endpointSpec, ports: [], virtualIps: [] }, updateStatus: null }).Spec.TaskTemplate.Networks, undefined);

  t.deepEqual(taskDocument(task('t1', 1, 'n1', 'running', '10.0.1.5/24')).NetworksAttachments, [
    { Network: { ID: 'net1', Spec: { Name: 'backend', Internal: false, Ingress: false } }, Addresses: ['10.0.1.5/24'], Aliases: ['db'] },
  ]);
  t.is(taskDocument(task('t4', 4, 'n1', 'new', null)).NetworksAttachments, undefined);
});
