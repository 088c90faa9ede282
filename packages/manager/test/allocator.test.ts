// The leader's allocator: VXLAN ids and subnets for networks, an address per network for each new task, through
// the store like every reconciler; and the IPAM arithmetic under it.

import test from 'ava';
import type { Network, Op, PortConfig, Service } from '@swarm/store';
import { cutSubnet, formatCidr, IpamError, nextHost, parseCidr, parseIp, checkSubnet, gatewayFor } from '@swarm/netdriver';
import { allocateNetwork, allocatePorts, DYNAMIC_PORT_RANGE } from '../src/index.js';
import { Harness } from './harness.js';

function network(id: string, name: string, subnet = '', extra: Partial<Network['spec']> = {}): Omit<Network, 'meta'> {
  return {
    id,
    spec: { name, labels: {}, driver: 'overlay', driverOptions: {}, ipam: { driver: 'default', configs: subnet === '' ? [] : [{ subnet, range: '', gateway: '' }] }, internal: false, attachable: false, ingress: false, ...extra },
    allocation: null,
  };
}

function addNetwork(h: Harness, n: Omit<Network, 'meta'>): void {
  h.commit([{ op: 'create', kind: 'network', object: n } as Op]);
  h.nowMs += 1;
}

function net(h: Harness, id: string): Network {
  const n = h.store.view((tx) => tx.get('network', id));
  if (n === undefined) throw new Error(`no network ${id}`);
  return n;
}

test('CIDRs are parsed strictly, and a subnet with host bits set is refused with the one meant', (t) => {
  t.deepEqual(parseCidr('10.0.1.0/24'), { base: parseIp('10.0.1.0'), prefix: 24 });
  t.throws(() => parseCidr('10.0.1.5/24'), { instanceOf: IpamError, message: /did you mean 10\.0\.1\.0\/24/ });
  t.throws(() => parseCidr('10.0.1.0'), { message: /not a CIDR/ });
  t.throws(() => parseCidr('10.0.300.0/24'), { message: /not an IPv4 address/ });
  t.throws(() => checkSubnet('10.0.0.0/30'), { message: /between \/8 and \/29/ });
  t.throws(() => gatewayFor(parseCidr('10.0.1.0/24'), '10.0.2.1'), { message: /not a host address of subnet 10\.0\.1\.0\/24/ });
  t.is(gatewayFor(parseCidr('10.0.1.0/24'), ''), '10.0.1.1');
});

test('subnets are cut from the pools around the ones in use, and null when the pools are full', (t) => {
  const used = [parseCidr('10.0.0.0/24'), parseCidr('10.0.2.0/23')];
  t.is(formatCidr(cutSubnet(['10.0.0.0/8'], 24, used) ?? { base: 0, prefix: 0 }), '10.0.1.0/24');
  t.is(formatCidr(cutSubnet(['10.0.0.0/8'], 24, [...used, parseCidr('10.0.1.0/24')]) ?? { base: 0, prefix: 0 }), '10.0.4.0/24', 'jumps past the /23');
  t.is(cutSubnet(['192.168.0.0/24'], 24, [parseCidr('192.168.0.0/16')]), null);
  t.is(formatCidr(cutSubnet(['192.168.0.0/24', '172.30.0.0/16'], 24, [parseCidr('192.168.0.0/24')]) ?? { base: 0, prefix: 0 }), '172.30.0.0/24', 'the next pool');
});

test('the next task address follows the cursor, skips the network, gateway, broadcast and used ones, and wraps', (t) => {
  const s = parseCidr('10.0.9.0/29'); // hosts .1-.6; .1 is the gateway
  const gw = parseIp('10.0.9.1');
  t.is(nextHost(s, gw, 1, new Set()), 2);
  t.is(nextHost(s, gw, 2, new Set([3])), 4);
  t.is(nextHost(s, gw, 6, new Set()), 2, 'wraps past broadcast, network and gateway');
  t.is(nextHost(s, gw, 4, new Set([5, 6, 2, 3, 4])), null, 'full');
});

test('networks get VXLAN ids from 4096 (ingress first) and /24s from the default pool; a given subnet is kept', (t) => {
  const h = new Harness();
  addNetwork(h, network('n-ing', 'ingress', '10.0.0.0/24', { ingress: true }));
  addNetwork(h, network('n-a', 'a'));
  addNetwork(h, network('n-b', 'b', '192.168.50.0/24'));
  addNetwork(h, network('n-c', 'c'));
  h.settle();
  t.like(net(h, 'n-ing').allocation, { vni: 4096, subnet: '10.0.0.0/24', gateway: '10.0.0.1' });
  t.like(net(h, 'n-a').allocation, { vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1' });
  t.like(net(h, 'n-b').allocation, { vni: 4098, subnet: '192.168.50.0/24' });
  t.like(net(h, 'n-c').allocation, { vni: 4099, subnet: '10.0.2.0/24' });
});

test('an overlapping subnet is refused with the network it overlaps named, and left unallocated by the reconciler', (t) => {
  const h = new Harness();
  addNetwork(h, network('n-a', 'a', '10.10.0.0/16'));
  h.settle();
  const clash = { ...network('n-x', 'x', '10.10.5.0/24'), meta: net(h, 'n-a').meta };
  t.throws(() => allocateNetwork(clash, [net(h, 'n-a')], ['10.0.0.0/8'], 24), { instanceOf: IpamError, message: 'subnet 10.10.5.0/24 overlaps network a (10.10.0.0/16)' });
  addNetwork(h, network('n-x', 'x', '10.10.5.0/24'));
  h.settle();
  t.is(net(h, 'n-x').allocation, null);
});

test('each new task gets a distinct address on each of its networks before it is scheduled, and waits for a missing network', (t) => {
  const h = new Harness();
  h.addNodes(2);
  addNetwork(h, network('n-a', 'a', '10.20.0.0/24'));
  addNetwork(h, network('n-b', 'b', '10.21.0.0/24', { internal: true }));
  const web = h.addService('web', (s) => {
    s.spec.mode = { replicated: { replicas: 4 } };
    s.spec.taskTemplate.networks = [{ target: 'n-a', aliases: ['w'] }, { target: 'b', aliases: [] }];
  });
  h.settle();
  const tasks = h.live(web);
  t.is(tasks.length, 4);
  t.true(tasks.every((x) => x.status.state === 'running'));
  const onA = tasks.map((x) => x.networksAttachments.find((a) => a.networkId === 'n-a')?.addresses[0]).sort();
  // .2 is the service's virtual IP (vip mode, Docker's default).
  t.is(h.service(web).endpoint.virtualIps[0]?.addr, '10.20.0.2/24');
  t.deepEqual(onA, ['10.20.0.3/24', '10.20.0.4/24', '10.20.0.5/24', '10.20.0.6/24']);
  const onB = tasks.map((x) => x.networksAttachments[1]);
  t.true(onB.every((a) => a?.networkId === 'n-b' && a.network.internal && a.network.vni === net(h, 'n-b').allocation?.vni));
  t.deepEqual(tasks[0]?.networksAttachments[0]?.aliases, ['w']);
  t.is(net(h, 'n-a').allocation?.lastHost, 6, 'the cursor moved');

  const orphan = h.addService('orphan', (s) => (s.spec.taskTemplate.networks = [{ target: 'nope', aliases: [] }]));
  h.settle();
  const [waiting] = h.live(orphan);
  t.is(waiting?.status.state, 'new');
  t.is(waiting?.status.message, 'network nope not found');
});

test("a replaced task's address is not handed out again until the subnet wraps", (t) => {
  const h = new Harness();
  h.addNodes(1);
  addNetwork(h, network('n-a', 'a', '10.30.0.0/24'));
  const web = h.addService('web', (s) => (s.spec.taskTemplate.networks = [{ target: 'n-a', aliases: [] }]));
  h.settle();
  const first = h.live(web)[0];
  t.is(first?.networksAttachments[0]?.addresses[0], '10.30.0.3/24', '.2 is the virtual IP');
  h.nowMs += 10_000;
  h.end(first?.id ?? '', 'failed');
  h.nowMs += 10_000;
  h.settle();
  const second = h.live(web).find((x) => x.id !== first?.id);
  t.is(second?.networksAttachments[0]?.addresses[0], '10.30.0.4/24');
});

test('a vip-mode service gets a virtual IP on each of its networks, its tasks carry it, and it never collides with a task address', (t) => {
  const h = new Harness();
  h.addNodes(2);
  addNetwork(h, network('n-a', 'a', '10.40.0.0/24'));
  addNetwork(h, network('n-b', 'b', '10.41.0.0/24'));
  const web = h.addService('web', (s) => {
    s.spec.mode = { replicated: { replicas: 2 } };
    s.spec.taskTemplate.networks = [{ target: 'n-a', aliases: [] }, { target: 'n-b', aliases: [] }];
  });
  const rr = h.addService('rr', (s) => {
    s.spec.endpointSpec = { mode: 'dnsrr', ports: [] };
    s.spec.taskTemplate.networks = [{ target: 'n-a', aliases: [] }];
  });
  h.settle();
  const vips = h.service(web).endpoint.virtualIps;
  t.deepEqual(vips.map((v) => v.networkId), ['n-a', 'n-b']);
  t.deepEqual(h.service(rr).endpoint.virtualIps, [], 'dnsrr: no virtual IP');
  const onA = [...h.live(web), ...h.live(rr)].map((x) => x.networksAttachments[0]?.addresses[0]);
  t.is(new Set([...onA, vips[0]?.addr]).size, onA.length + 1, 'the VIP is not a task address');
  for (const task of h.live(web)) {
    t.deepEqual(task.networksAttachments.map((a) => a.virtualIp), vips.map((v) => v.addr));
  }
  t.true(h.live(rr).every((x) => x.networksAttachments[0]?.virtualIp === ''));

  // Leaving a network gives its VIP back; the other is kept as it was.
  h.updateService(web, (s) => (s.spec.taskTemplate.networks = [{ target: 'n-b', aliases: [] }]));
  h.settle();
  t.deepEqual(h.service(web).endpoint.virtualIps, [vips[1]]);
});

// ---------------------------------------------------------------- published ports

function port(targetPort: number, publishedPort = 0, extra: Partial<PortConfig> = {}): PortConfig {
  return { name: '', protocol: 'tcp', targetPort, publishedPort, publishMode: 'ingress', ...extra };
}

function publish(h: Harness, name: string, ports: PortConfig[]): string {
  const id = h.addService(name, (s) => {
    s.spec.endpointSpec = { mode: 'vip', ports };
  });
  h.nowMs += 1;
  return id;
}

const published = (h: Harness, id: string): number[] => h.service(id).endpoint.ports.map((p) => p.publishedPort);

test('an ingress port published as 0 gets one from 30000-32767, kept across passes, an unrelated update and a change of other ports', (t) => {
  const h = new Harness();
  h.addNodes(1);
  const web = publish(h, 'web', [port(80)]);
  h.settle();
  const [picked] = published(h, web);
  t.true(picked !== undefined && picked >= DYNAMIC_PORT_RANGE.first && picked <= DYNAMIC_PORT_RANGE.last, `${picked} in the dynamic range`);
  t.deepEqual(h.service(web).endpoint.ports, [port(80, picked)]);
  t.deepEqual(h.service(web).endpoint.spec, h.service(web).spec.endpointSpec, 'the endpoint records the spec it was allocated from');
  const before = h.written.get('allocator') ?? 0;
  h.settle();
  h.settle();
  t.is(h.written.get('allocator') ?? 0, before, 'passes over an allocated service write nothing');

  // Another service takes the next port; then web's image changes and a second port is added: 80 keeps its number.
  const api = publish(h, 'api', [port(80)]);
  h.settle();
  h.updateService(web, (s) => {
    s.spec.taskTemplate.containerSpec.image = 'nginx:2';
    s.spec.endpointSpec = { mode: 'vip', ports: [port(443), port(80)] };
  });
  h.settle();
  const [https, http] = published(h, web);
  t.is(http, picked, 'the same target keeps its port');
  t.not(https, picked);
  t.not(https, published(h, api)[0]);
  t.deepEqual(h.service(web).endpoint.spec.ports.map((p) => p.targetPort), [443, 80], 'endpoint.spec follows the spec');
});

test('two services never get the same ingress port; an explicit one is kept as asked, and the range skips it', (t) => {
  const h = new Harness();
  h.addNodes(1);
  const fixed = publish(h, 'fixed', [port(80, DYNAMIC_PORT_RANGE.first), port(81, 8080)]);
  const a = publish(h, 'a', [port(80), port(81)]);
  const b = publish(h, 'b', [port(80), port(53, 0, { protocol: 'udp' })]);
  h.settle();
  t.deepEqual(published(h, fixed), [DYNAMIC_PORT_RANGE.first, 8080]);
  const tcp = [...published(h, fixed), ...published(h, a), published(h, b)[0]];
  t.is(new Set(tcp).size, tcp.length, `no tcp port twice: ${tcp.join(' ')}`);
  t.false(published(h, a).includes(DYNAMIC_PORT_RANGE.first), 'a port asked for explicitly is not handed out');
  t.is(published(h, b)[1], DYNAMIC_PORT_RANGE.first, 'udp numbers are counted apart from tcp ones');

  // Two services asking for one port at once (past the API's check): the one created first has it, the other waits.
  const late = publish(h, 'late', [port(8000, 8080)]);
  h.settle();
  t.deepEqual(h.service(late).endpoint.ports, []);
  t.deepEqual(published(h, fixed), [DYNAMIC_PORT_RANGE.first, 8080]);
});

test('host-mode ports are copied as given (0 stays 0); ingress ports are freed when their service goes or stops publishing', (t) => {
  const h = new Harness();
  h.addNodes(1);
  const hosted = publish(h, 'hosted', [port(80, 0, { publishMode: 'host' }), port(81, 9000, { publishMode: 'host' })]);
  const first = publish(h, 'first', [port(80)]);
  h.settle();
  t.deepEqual(h.service(hosted).endpoint.ports, [port(80, 0, { publishMode: 'host' }), port(81, 9000, { publishMode: 'host' })]);
  t.deepEqual(published(h, first), [DYNAMIC_PORT_RANGE.first], 'host-mode ports take nothing from the range');

  h.commit([{ op: 'delete', kind: 'service', id: first, version: h.service(first).meta.version }]);
  const second = publish(h, 'second', [port(8000)]);
  h.settle();
  t.deepEqual(published(h, second), [DYNAMIC_PORT_RANGE.first], 'the removed service gave its port back');

  h.updateService(second, (s) => (s.spec.endpointSpec = { mode: 'vip', ports: [] }));
  const third = publish(h, 'third', [port(9)]);
  h.settle();
  t.deepEqual(h.service(second).endpoint.ports, []);
  t.deepEqual(published(h, third), [DYNAMIC_PORT_RANGE.first], 'a port no longer published is free again');
});

test('allocatePorts alone: a held port stays with its holder even when an older service asks for it', (t) => {
  const h = new Harness();
  const holder = publish(h, 'holder', [port(80)]);
  h.settle();
  const [held] = published(h, holder);
  t.is(held, DYNAMIC_PORT_RANGE.first);
  // An older service (created earlier) that asks for the held number explicitly does not take it away.
  const older: Service = { ...h.service(holder), id: 'svc-older', meta: { ...h.service(holder).meta, createdAtMs: 0 }, spec: { ...h.service(holder).spec, name: 'older', endpointSpec: { mode: 'vip', ports: [port(81, held)] } }, endpoint: { spec: { mode: 'vip', ports: [] }, ports: [], virtualIps: [] } };
  const ports = allocatePorts([older, h.service(holder)]);
  t.deepEqual(ports.get(holder), [port(80, held)]);
  t.deepEqual(ports.get('svc-older'), []);
});

test("a new task carries its service's ports as allocated, not as they were when the orchestrator made it", (t) => {
  const h = new Harness();
  h.addNodes(1);
  const web = h.addService('web', (s) => {
    s.spec.endpointSpec = { mode: 'vip', ports: [{ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 0, publishMode: 'ingress' }, { name: '', protocol: 'tcp', targetPort: 81, publishedPort: 8081, publishMode: 'host' }] };
  });
  h.settle();
  const allocated = h.service(web).endpoint.ports;
  t.true((allocated[0]?.publishedPort ?? 0) >= 30000, 'an ingress port was picked');
  const [task] = h.live(web);
  t.deepEqual(task?.endpoint?.ports, allocated);
});

// ---------------------------------------------------------------- the routing mesh

test('with an ingress network every node gets an address on it, and tasks of a service with ingress ports get a leg there too (last)', (t) => {
  const h = new Harness();
  const nodes = h.addNodes(3);
  addNetwork(h, network('n-ingress', 'ingress', '10.0.0.0/24', { ingress: true }));
  addNetwork(h, network('n-front', 'front', '10.40.0.0/24'));
  const web = h.addService('web', (s) => {
    s.spec.mode = { replicated: { replicas: 2 } };
    s.spec.taskTemplate.networks = [{ target: 'n-front', aliases: [] }];
    s.spec.endpointSpec = { mode: 'vip', ports: [port(80, 8080)] };
  });
  const host = h.addService('hostmode', (s) => {
    s.spec.taskTemplate.networks = [{ target: 'n-front', aliases: [] }];
    s.spec.endpointSpec = { mode: 'vip', ports: [port(80, 9090, { publishMode: 'host' })] };
  });
  const plain = h.addService('plain', () => undefined);
  h.settle();
  const nodeAddrs = nodes.map((id) => {
    const a = h.node(id).attachments;
    t.is(a.length, 1);
    t.is(a[0]?.networkId, 'n-ingress');
    t.true(a[0]?.network.ingress);
    return a[0]?.addresses[0] ?? '';
  });
  t.is(new Set(nodeAddrs).size, 3, 'distinct node addresses');
  for (const task of h.live(web)) {
    t.deepEqual(task.networksAttachments.map((a) => a.networkId), ['n-front', 'n-ingress'], 'the ingress leg comes last');
    t.is(task.networksAttachments[1]?.virtualIp, '', 'no virtual IP on ingress');
    t.false(nodeAddrs.includes(task.networksAttachments[1]?.addresses[0] ?? ''), 'not a node address');
  }
  t.deepEqual(h.live(host).map((x) => x.networksAttachments.map((a) => a.networkId)), [['n-front']], 'host mode needs no mesh');
  t.deepEqual(h.live(plain).map((x) => x.networksAttachments), [[]]);
  const before = h.written.get('allocator') ?? 0;
  h.settle();
  t.is(h.written.get('allocator') ?? 0, before, 'a settled cluster writes nothing');
  t.deepEqual(nodes.map((id) => h.node(id).attachments[0]?.addresses[0]), nodeAddrs, 'node addresses are kept');
});

test('a node whose ingress network was removed and made again gets a fresh address on the new one', (t) => {
  const h = new Harness();
  const [node] = h.addNodes(1);
  addNetwork(h, network('n-old', 'ingress', '10.0.0.0/24', { ingress: true }));
  h.settle();
  t.is(h.node(node ?? '').attachments[0]?.networkId, 'n-old');
  h.commit([{ op: 'delete', kind: 'network', id: 'n-old' }]);
  h.settle();
  t.deepEqual(h.node(node ?? '').attachments, [], 'gone with its network');
  addNetwork(h, network('n-new', 'ingress', '10.9.0.0/24', { ingress: true }));
  h.settle();
  t.regex(h.node(node ?? '').attachments[0]?.addresses[0] ?? '', /^10\.9\.0\.\d+\/24$/);
});
