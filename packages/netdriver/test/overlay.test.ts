// The overlay data plane on the real kernel: two "hosts" (network namespaces joined by a veth underlay), each with
// its own OverlayDriver; tasks ping and talk TCP across hosts over VXLAN, other networks cannot reach them, the
// gateway bridge masquerades and isolates, removed peers stop working, and nothing is left behind.

import test, { type ExecutionContext } from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { pollUntil, silentLogger } from '@swarm/wire';
import type { NetworkAttachment } from '@swarm/store';
import { inNetns, ipBatch, NetnsDir, OverlayDriver, GATEWAY_BRIDGE, resolveName } from '../src/index.js';

const BUSYBOX = '/bin/busybox';
const missing = process.getuid?.() !== 0 ? 'not root' : (['/usr/bin/nsenter', '/usr/bin/unshare', '/usr/sbin/ip', '/usr/sbin/bridge', '/usr/sbin/nft', BUSYBOX].find((p) => !existsSync(p)) ?? null);
// Nothing may skip on CI: a missing part is a failure there (scripts/test installs them).
const serial = (title: string, fn: (t: ExecutionContext) => Promise<void>): void => {
  if (missing === null) test.serial(title, fn);
  else test.serial.skip(`${title} [skipped: ${missing === 'not root' ? 'needs root' : `${missing} is missing`}]`, fn);
};

const log = silentLogger();
const log0 = log;
const root = mkdtempSync(join(tmpdir(), 'swarm-overlay-'));
const hostsDir = new NetnsDir(join(root, 'hosts'), log);
const UNDERLAY = ['10.252.77.1', '10.252.77.2'] as const;
/** Circuits a little quicker than the defaults: 3 refusals in 500 ms open one, for 3 s, then 3 s of trickle. */
const CIRCUIT = { threshold: 3, cooldownMs: 3_000, probeMs: 3_000 };
let h1 = '';
let h2 = '';
let d1: OverlayDriver;
let d2: OverlayDriver;

function attachment(networkId: string, vni: number, subnet: string, address: string, internal = false): NetworkAttachment {
  return { networkId, network: { name: networkId, vni, subnet, gateway: '', internal, encrypted: false, ingress: false }, addresses: [address], aliases: [], virtualIp: '' };
}

async function ping(netns: string, ip: string): Promise<boolean> {
  const res = await inNetns(log, netns, BUSYBOX, ['ping', '-c', '1', '-W', '1', ip], { allowFailure: true, timeoutMs: 5_000 });
  return res.code === 0;
}

/** Reachable within a few seconds: a neighbour that failed to resolve before is asked again only after a second. */
async function reaches(netns: string, ip: string): Promise<boolean> {
  try {
    return await pollUntil(`ping ${ip}`, () => ping(netns, ip), { deadlineMs: 5_000 });
  } catch {
    return false;
  }
}

/** Exchanges the two drivers' local tables, as gossip would. */
async function gossip(networkId: string): Promise<void> {
  await d1.setPeers(networkId, d2.localEndpoints(networkId).map((e) => ({ ...e, host: UNDERLAY[1] })));
  await d2.setPeers(networkId, d1.localEndpoints(networkId).map((e) => ({ ...e, host: UNDERLAY[0] })));
}

test.before(async () => {
  if (missing !== null) return;
  h1 = await hostsDir.create('h1');
  h2 = await hostsDir.create('h2');
  await ipBatch(log, h1, ['link set lo up', `link add u0 type veth peer name u0 netns ${h2}`, `addr add ${UNDERLAY[0]}/24 dev u0`, 'link set u0 up']);
  await ipBatch(log, h2, ['link set lo up', `addr add ${UNDERLAY[1]}/24 dev u0`, 'link set u0 up']);
  d1 = new OverlayDriver({ stateDir: join(root, 'd1'), underlayAddr: UNDERLAY[0], logger: log, hostNetns: h1, circuit: CIRCUIT });
  d2 = new OverlayDriver({ stateDir: join(root, 'd2'), underlayAddr: UNDERLAY[1], logger: log, hostNetns: h2, circuit: CIRCUIT });
  await d1.recover(new Set());
  await d2.recover(new Set());
});

test.after.always(async () => {
  if (missing === null) {
    await d1?.destroyAll().catch(() => undefined);
    await d2?.destroyAll().catch(() => undefined);
    await hostsDir.remove('h1');
    await hostsDir.remove('h2');
  }
  rmSync(root, { recursive: true, force: true });
});

serial('tasks of one network reach each other across hosts over VXLAN; another network cannot reach them', async (t) => {
  const a1 = await d1.attach('taskone0001', [attachment('neta', 5001, '10.90.1.0/24', '10.90.1.2/24')]);
  const a2 = await d2.attach('tasktwo0002', [attachment('neta', 5001, '10.90.1.0/24', '10.90.1.3/24')]);
  const b3 = await d2.attach('taskthree03', [attachment('netb', 5002, '10.90.2.0/24', '10.90.2.2/24')]);
  t.false(await ping(a1.netnsPath, '10.90.1.3'), 'no peers programmed yet: no path');
  await gossip('neta');
  await gossip('netb');
  t.true(await reaches(a1.netnsPath, '10.90.1.3'));
  t.true(await reaches(a2.netnsPath, '10.90.1.2'));
  t.false(await ping(b3.netnsPath, '10.90.1.2'), 'another network has no route to it');
  t.false(await ping(a1.netnsPath, '10.90.2.2'));

  // TCP across hosts: a busybox nc server in one task, a client in the other.
  const server = spawn('nsenter', [`--net=${a2.netnsPath}`, BUSYBOX, 'nc', '-l', '-p', '7070'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => server.kill('SIGKILL'));
  let received = '';
  server.stdout.on('data', (d: Buffer) => (received += d.toString()));
  await pollUntil('nc listening', async () => (await inNetns(log, a2.netnsPath, BUSYBOX, ['netstat', '-ltn'])).stdout.includes(':7070'), { deadlineMs: 5_000 });
  // The client tries again until the one-shot server has the bytes: on a loaded machine a first attempt may time out.
  await pollUntil(
    'bytes over TCP',
    async () => {
      if (received.includes('hello-over-vxlan')) return true;
      await inNetns(log, a1.netnsPath, BUSYBOX, ['sh', '-c', 'echo hello-over-vxlan | nc -w 2 10.90.1.3 7070'], { timeoutMs: 5_000, allowFailure: true });
      return received.includes('hello-over-vxlan');
    },
    { deadlineMs: 20_000 },
  );
  t.pass();
});

serial('the task side of a leg has the VXLAN-reduced MTU, the MAC made from its address, and the address', async (t) => {
  const path = join(root, 'd1', 't-taskone0001');
  const res = await inNetns(log, path, 'ip', ['-j', 'addr', 'show', 'eth0']);
  const [link] = JSON.parse(res.stdout) as Array<{ mtu: number; address: string; addr_info: Array<{ local: string; family: string }> }>;
  t.is(link?.mtu, 1500 - 50);
  t.is(link?.address, '02:42:0a:5a:01:02');
  t.deepEqual(link?.addr_info.filter((a) => a.family === 'inet').map((a) => a.local), ['10.90.1.2']);
});

serial('the gateway bridge masquerades a task out to the underlay; an internal network has no way out, only DNS questions to the bridge', async (t) => {
  const a1 = join(root, 'd1', 't-taskone0001');
  const b3 = join(root, 'd2', 't-taskthree03');
  t.true(await reaches(a1, UNDERLAY[1]), 'out through swarm_gwbridge, masqueraded as host 1');
  t.true(await reaches(b3, UNDERLAY[0]), 'netb is not internal: it has a way out too');
  const c4 = await d2.attach('taskfour004', [attachment('netc', 5003, '10.90.3.0/24', '10.90.3.2/24', true)]);
  t.false(await ping(c4.netnsPath, UNDERLAY[0]), 'internal: no default route');
  const routes = await inNetns(log, c4.netnsPath, 'ip', ['route', 'show', 'default']);
  t.is(routes.stdout.trim(), '');
  // Its leg on the gateway bridge is for DNS questions only: the host itself drops anything else from it, and
  // does not forward for it even if the task gave itself a route.
  const reachesBridge = await reaches(b3, '172.18.0.1');
  // What the host and the task hold when it does not (a rare failure seen under load): for the next look.
  if (!reachesBridge) {
    for (const [what, ns, args] of [
      ['host ruleset', h2, ['nft', 'list', 'ruleset']],
      ['host addresses', h2, ['ip', '-br', 'addr']],
      ['host bridge ports', h2, ['bridge', '-d', 'link', 'show']],
      ['host neighbours', h2, ['ip', 'neigh']],
      ['task addresses', b3, ['ip', '-br', 'addr']],
      ['task routes', b3, ['ip', 'route']],
      ['task neighbours', b3, ['ip', 'neigh']],
    ] as const) {
      const res = await inNetns(log, ns, args[0], [...args.slice(1)], { allowFailure: true });
      t.log(`${what}:\n${res.stdout}${res.stderr}`);
    }
  }
  t.true(reachesBridge, 'a task with a way out reaches the bridge');
  t.false(await ping(c4.netnsPath, '172.18.0.1'), 'the internal task does not');
  await inNetns(log, c4.netnsPath, 'ip', ['route', 'add', 'default', 'via', '172.18.0.1']);
  t.false(await ping(c4.netnsPath, UNDERLAY[0]), 'not forwarded, even with a route');
  const set = await inNetns(log, h2, 'nft', ['list', 'set', 'ip', 'swarm_gwbridge', 'internal']);
  const gwOf = async (ns: string): Promise<string> => /inet (\S+)\//.exec((await inNetns(log, ns, 'ip', ['-4', '-o', 'addr', 'show', 'eth1'])).stdout)?.[1] ?? '?';
  t.true(set.stdout.includes(await gwOf(c4.netnsPath)));
  await d2.detach('taskfour004');
  t.false((await inNetns(log, h2, 'nft', ['list', 'set', 'ip', 'swarm_gwbridge', 'internal'])).stdout.includes('elements'), 'its address left the set');
});

serial("tasks of different networks on one host cannot meet on the gateway bridge (isolated ports)", async (t) => {
  const a2 = join(root, 'd2', 't-tasktwo0002');
  const addrs = await inNetns(log, join(root, 'd2', 't-taskthree03'), 'ip', ['-j', 'addr', 'show', 'eth1']);
  const gwIp = (JSON.parse(addrs.stdout) as Array<{ addr_info: Array<{ local: string }> }>)[0]?.addr_info[0]?.local;
  t.truthy(gwIp);
  t.false(await ping(a2, gwIp ?? ''), 'neta task cannot reach the netb task through the gateway bridge');
  const bridge = await inNetns(log, h2, 'ip', ['-d', '-j', 'link', 'show', 'master', GATEWAY_BRIDGE]);
  const ports = JSON.parse(bridge.stdout) as Array<{ linkinfo?: { info_slave_data?: { isolated?: boolean } } }>;
  t.true(ports.length >= 2 && ports.every((p) => p.linkinfo?.info_slave_data?.isolated === true));
});

serial('a withdrawn peer is removed from the FDB and neighbour table, and the path with it', async (t) => {
  const a1 = join(root, 'd1', 't-taskone0001');
  t.is(d1.programmedPeers('neta').length, 1);
  const fdbBefore = await inNetns(log, join(root, 'd1', 'n-neta'), 'bridge', ['fdb', 'show', 'dev', 'vx-5001']);
  t.regex(fdbBefore.stdout, /02:42:0a:5a:01:03 dst 10\.252\.77\.2 .*self permanent/);
  await d1.setPeers('neta', []);
  const fdbAfter = await inNetns(log, join(root, 'd1', 'n-neta'), 'bridge', ['fdb', 'show', 'dev', 'vx-5001']);
  t.notRegex(fdbAfter.stdout, /02:42:0a:5a:01:03/);
  const neigh = await inNetns(log, join(root, 'd1', 'n-neta'), 'ip', ['neigh', 'show', 'dev', 'vx-5001']);
  t.notRegex(neigh.stdout, /10\.90\.1\.3/);
  t.false(await ping(a1, '10.90.1.3'));
  await gossip('neta');
  t.true(await reaches(a1, '10.90.1.3'), 'programmed again');
});

serial('a restarted driver keeps the namespaces of tasks still running and removes the rest', async (t) => {
  const again = new OverlayDriver({ stateDir: join(root, 'd2'), underlayAddr: UNDERLAY[1], logger: log, hostNetns: h2, circuit: CIRCUIT });
  const { kept, removed } = await again.recover(new Set(['tasktwo0002']));
  // The new driver is the host's from here on, whatever the checks below say (the later tests use it).
  d2.close();
  d2 = again;
  t.deepEqual(kept, ['tasktwo0002']);
  t.deepEqual(removed, ['taskthree03']);
  t.deepEqual(again.localNetworks(), ['neta']);
  t.deepEqual(again.programmedPeers('neta').map((p) => [p.ip, p.host]), [['10.90.1.2', UNDERLAY[0]]], 'programmed peers read back from the kernel');
  t.true(await reaches(join(root, 'd2', 't-tasktwo0002'), '10.90.1.2'), 'the kept task still reaches its peer');
  t.false(readdirSync(join(root, 'd2')).some((f) => f.includes('netb') || f.includes('taskthree03')));
});

serial("a task's endpoint carries its names, VIP and readiness; the DNS view of a task is its networks' local and remote endpoints", async (t) => {
  const vipd = { ...attachment('neta', 5001, '10.90.1.0/24', '10.90.1.20/24'), aliases: ['www'], virtualIp: '10.90.1.9/24' };
  await d1.attach('tasknames01', [vipd], { service: 'web', task: 'web.3.tasknames01' });
  t.teardown(() => d1.detach('tasknames01'));
  const mine = (): unknown => d1.localEndpoints('neta').find((e) => e.taskId === 'tasknames01');
  t.like(mine(), { ip: '10.90.1.20', service: 'web', task: 'web.3.tasknames01', aliases: ['www'], vip: '10.90.1.9', ready: false });
  const changed: string[] = [];
  const off = d1.onLocalChange((n) => changed.push(n));
  d1.setReady('tasknames01', true);
  off();
  t.like(mine(), { ready: true });
  t.deepEqual(changed, ['neta'], 'readiness is a local change: gossip republishes');
  const gw = await inNetns(log, join(root, 'd1', 't-tasknames01'), 'ip', ['-4', '-o', 'addr', 'show', 'eth1']);
  const gwIp = /inet (\S+)\//.exec(gw.stdout)?.[1] ?? '';
  const view = d1.dnsView(gwIp);
  t.is(view?.length, 1);
  t.deepEqual(view?.[0]?.map((e) => e.ip).sort(), ['10.90.1.2', '10.90.1.20', '10.90.1.3'], 'this host\'s two and the peer\'s one');
  t.is(d1.dnsView('172.18.255.254'), null, 'no task has that address');
});

/** GET / on ip:port from inside a namespace, with busybox nc: the body, or '' when the connection failed. */
async function httpGet(netns: string, ip: string, port: number): Promise<string> {
  const res = await inNetns(log, netns, BUSYBOX, ['nc', '-w', '2', ip, String(port)], { input: 'GET / HTTP/1.0\r\n\r\n', allowFailure: true, timeoutMs: 5_000 });
  return res.stdout.split(/\r?\n\r?\n/)[1]?.trim() ?? '';
}

serial("a service's VIP spreads connections over its ready tasks on both hosts; none ready: refused at once", async (t) => {
  const www = join(root, 'www');
  const backends = [
    { d: d2, id: 'vipback0001', ip: '10.90.1.30' },
    { d: d1, id: 'vipback0002', ip: '10.90.1.31' },
  ];
  const servers: Array<ReturnType<typeof spawn>> = [];
  t.teardown(() => servers.forEach((s) => s.kill('SIGKILL')));
  for (const b of backends) {
    const dir = join(www, b.id);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'index.html'), `${b.id}\n`);
    const a = await b.d.attach(b.id, [{ ...attachment('neta', 5001, '10.90.1.0/24', `${b.ip}/24`), virtualIp: '10.90.1.9/24' }], { service: 'api', task: `api.1.${b.id}` });
    t.teardown(() => b.d.detach(b.id));
    servers.push(spawn('nsenter', [`--net=${a.netnsPath}`, BUSYBOX, 'httpd', '-f', '-p', '7070', '-h', dir], { stdio: 'ignore' }));
    b.d.setReady(b.id, true);
  }
  await gossip('neta');
  await d1.lbSettled();
  const client = join(root, 'd1', 't-taskone0001');
  const table = await inNetns(log, client, 'nft', ['list', 'table', 'ip', 'swarm_lb']);
  t.regex(table.stdout, /ip daddr 10\.90\.1\.9 dnat to numgen inc mod 2 map \{ 0 : 10\.90\.1\.30, 1 : 10\.90\.1\.31 \}/);
  const first = await pollUntil('the VIP answers', async () => (await httpGet(client, '10.90.1.9', 7070)) || undefined, { deadlineMs: 10_000 });
  const seen = new Map<string, number>([[first, 1]]);
  for (let i = 0; i < 9; i++) {
    const body = await httpGet(client, '10.90.1.9', 7070);
    seen.set(body, (seen.get(body) ?? 0) + 1);
  }
  t.deepEqual([...seen.keys()].sort(), ['vipback0001', 'vipback0002'], 'both tasks, on both hosts, get connections');
  t.true([...seen.values()].every((n) => n === 5), `round robin: ${JSON.stringify([...seen])}`);

  // One task stops being ready (its host republishes): every connection goes to the other.
  d2.setReady('vipback0001', false);
  await gossip('neta');
  await d1.lbSettled();
  for (let i = 0; i < 4; i++) t.is(await httpGet(client, '10.90.1.9', 7070), 'vipback0002');

  // None ready: refused with a reset at once, not a hang.
  d1.setReady('vipback0002', false);
  await d1.lbSettled();
  const refused = await inNetns(log, client, BUSYBOX, ['nc', '-w', '5', '10.90.1.9', '7070'], { input: '', allowFailure: true, timeoutMs: 10_000 });
  t.not(refused.code, 0);
  // A reset (nc: "Connection refused"), not a connection left to time out.
  t.regex(refused.stderr, /Connection refused/);
});

serial("a host-mode published port: the task's node forwards its own address's port to the task, keeping the client's address; one task per port and node", async (t) => {
  const dir = join(root, 'www', 'published');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'index.html'), 'published\n');
  const a = await d1.attach('taskpub0001', [attachment('neta', 5001, '10.90.1.0/24', '10.90.1.40/24')], { service: 'pub', task: 'pub.1.taskpub0001' }, [{ protocol: 'tcp', publishedPort: 8080, targetPort: 7070 }]);
  t.teardown(() => d1.detach('taskpub0001'));
  // nc in the task logs the client's address: the underlay address of host 2, not a gateway address.
  const server = spawn('nsenter', [`--net=${a.netnsPath}`, BUSYBOX, 'httpd', '-f', '-v', '-p', '7070', '-h', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr.on('data', (d: Buffer) => (log += d.toString()));
  t.teardown(() => server.kill('SIGKILL'));
  const body = await pollUntil('the published port answers', async () => (await httpGet(h2, UNDERLAY[0], 8080)) || undefined, { deadlineMs: 10_000 });
  t.is(body, 'published');
  await pollUntil('httpd logged the client', () => log.includes(UNDERLAY[1]) || undefined, { deadlineMs: 5_000 });
  t.true(log.includes(UNDERLAY[1]), `the client's own address reached the task: ${log}`);
  t.is(await httpGet(h1, UNDERLAY[1], 8080), '', 'the other node does not publish it');
  const clash = await t.throwsAsync(d1.attach('taskpub0002', [attachment('neta', 5001, '10.90.1.0/24', '10.90.1.41/24')], { service: 'pub', task: 'pub.2.taskpub0002' }, [{ protocol: 'tcp', publishedPort: 8080, targetPort: 80 }]));
  t.regex(clash?.message ?? '', /port 8080\/tcp is already published on this node by task taskpub0001/);
  await d1.detach('taskpub0001');
  const table = await inNetns(log0, h1, 'nft', ['list', 'table', 'ip', 'swarm_publish'], { allowFailure: true });
  t.false(table.stdout.includes('dport 8080'), 'the rule went with the task');
});

function ingressAttachment(address: string): NetworkAttachment {
  const a = attachment('ning', 4096, '10.90.0.0/24', address);
  return { ...a, network: { ...a.network, name: 'ingress', ingress: true } };
}

/** A UDP echo server (Node, inside the namespace) answering each datagram with its name. */
function udpEcho(netns: string, port: number, name: string): ReturnType<typeof spawn> {
  const script = `const s = require('node:dgram').createSocket('udp4'); s.on('message', (m, r) => s.send(${JSON.stringify(name)}, r.port, r.address)); s.bind(${port});`;
  return spawn('nsenter', [`--net=${netns}`, process.execPath, '-e', script], { stdio: 'ignore' });
}

/** One datagram to ip:port from inside a namespace: the answer, or '' after a second. */
async function udpAsk(netns: string, ip: string, port: number): Promise<string> {
  const script = `const s = require('node:dgram').createSocket('udp4'); const t = setTimeout(() => { console.log(''); process.exit(0); }, 1000); s.on('message', (m) => { console.log(m.toString()); clearTimeout(t); process.exit(0); }); s.send('hi', ${port}, ${JSON.stringify(ip)});`;
  const res = await inNetns(log, netns, process.execPath, ['-e', script], { allowFailure: true, timeoutMs: 5_000 });
  return res.stdout.trim();
}

serial('the routing mesh: both nodes serve an ingress port (TCP and UDP) from the ready tasks on either node, by strategy; without ports nothing is left', async (t) => {
  const www = join(root, 'www');
  const servers: Array<ReturnType<typeof spawn>> = [];
  t.teardown(() => servers.forEach((s) => s.kill('SIGKILL')));
  const backends = [
    { d: d2, id: 'meshback001', ip: '10.90.0.10' },
    { d: d1, id: 'meshback002', ip: '10.90.0.11' },
  ];
  const mesh = (strategy: 'round-robin' | 'random') => ({
    services: [{ name: 'mesh', ports: [{ protocol: 'tcp' as const, publishedPort: 8080, targetPort: 7070 }, { protocol: 'udp' as const, publishedPort: 8053, targetPort: 5353 }], strategy }],
  });
  await d1.setIngress({ attachment: ingressAttachment('10.90.0.2/24'), ...mesh('round-robin') });
  await d2.setIngress({ attachment: ingressAttachment('10.90.0.3/24'), ...mesh('round-robin') });
  // Only the task on host 2 at first: host 1 has no task of the service and must serve the port all the same.
  for (const b of backends) {
    const dir = join(www, b.id);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'index.html'), `${b.id}\n`);
    const a = await b.d.attach(b.id, [ingressAttachment(`${b.ip}/24`)], { service: 'mesh', task: `mesh.1.${b.id}` });
    t.teardown(() => b.d.detach(b.id));
    servers.push(spawn('nsenter', [`--net=${a.netnsPath}`, BUSYBOX, 'httpd', '-f', '-p', '7070', '-h', dir], { stdio: 'ignore' }));
    servers.push(udpEcho(a.netnsPath, 5353, b.id));
  }
  d2.setReady('meshback001', true);
  await gossip('ning');
  await Promise.all([d1.lbSettled(), d2.lbSettled()]);
  const first = await pollUntil('node 1 (no ready task) serves the port', async () => (await httpGet(h2, UNDERLAY[0], 8080)) || undefined, { deadlineMs: 10_000 });
  t.is(first, 'meshback001');
  t.is(await httpGet(h1, UNDERLAY[1], 8080), 'meshback001', 'node 2 too');
  t.is(await httpGet(h1, UNDERLAY[0], 8080), 'meshback001', "a node's own address, from the node itself");
  t.is(await pollUntil('udp through the mesh', async () => (await udpAsk(h2, UNDERLAY[0], 8053)) || undefined, { deadlineMs: 5_000 }), 'meshback001');

  // Both ready: round robin from either node.
  d1.setReady('meshback002', true);
  await gossip('ning');
  await Promise.all([d1.lbSettled(), d2.lbSettled()]);
  for (const [client, node] of [[h2, UNDERLAY[0]], [h1, UNDERLAY[1]]] as const) {
    const seen = new Map<string, number>();
    for (let i = 0; i < 10; i++) {
      const body = await httpGet(client, node, 8080);
      seen.set(body, (seen.get(body) ?? 0) + 1);
    }
    t.deepEqual([...seen].sort(), [['meshback001', 5], ['meshback002', 5]], `round robin through ${node}`);
  }
  const sandboxTable = await inNetns(log, join(root, 'd1', 't-ingress-sbox'), 'nft', ['list', 'table', 'ip', 'swarm_ingress']);
  t.regex(sandboxTable.stdout, /tcp dport 8080 dnat to numgen inc mod 2 map \{ 0 : 10\.90\.0\.10, 1 : 10\.90\.0\.11 \}:7070/);

  // Random: still both, chosen by the kernel's random numbers.
  await d1.setIngress({ attachment: ingressAttachment('10.90.0.2/24'), ...mesh('random') });
  await d1.lbSettled();
  t.regex((await inNetns(log, join(root, 'd1', 't-ingress-sbox'), 'nft', ['list', 'table', 'ip', 'swarm_ingress'])).stdout, /numgen random mod 2/);
  const seen = new Set<string>();
  for (let i = 0; i < 20; i++) seen.add(await httpGet(h2, UNDERLAY[0], 8080));
  t.deepEqual([...seen].sort(), ['meshback001', 'meshback002']);

  // A task that stops being ready gets nothing; none ready: refused at once.
  d2.setReady('meshback001', false);
  await gossip('ning');
  await Promise.all([d1.lbSettled(), d2.lbSettled()]);
  for (let i = 0; i < 4; i++) t.is(await httpGet(h2, UNDERLAY[0], 8080), 'meshback002');
  d1.setReady('meshback002', false);
  await gossip('ning');
  await Promise.all([d1.lbSettled(), d2.lbSettled()]);
  const refused = await inNetns(log, h2, BUSYBOX, ['nc', '-w', '5', UNDERLAY[0], '8080'], { input: '', allowFailure: true, timeoutMs: 10_000 });
  t.not(refused.code, 0);
  // A reset (nc: "Connection refused"), not a connection left to time out.
  t.regex(refused.stderr, /Connection refused/);

  // No port left to serve: the sandbox and both tables go.
  await d1.setIngress(null);
  await d2.setIngress(null);
  for (const [d, h] of [['d1', h1], ['d2', h2]] as const) {
    t.false(existsSync(join(root, d, 't-ingress-sbox')), `${d}: no sandbox`);
    t.false((await inNetns(log, h, 'nft', ['list', 'tables'])).stdout.includes('swarm_ingress'), `${d}: no host table`);
  }
});

serial('circuit breaking: a ready task that refuses connections is taken out of the mesh and DNS within a second, gets a trickle after its cooldown, and its full share once it answers', async (t) => {
  const www = join(root, 'www');
  const dir = join(www, 'cbgood0001');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'index.html'), 'cbgood0001\n');
  // The bad task on host 1, the good one on host 2; the drivers' circuits are the quick ones (CIRCUIT).
  const good = await d2.attach('cbgood0001', [ingressAttachment('10.90.0.20/24')], { service: 'cb', task: 'cb.1.cbgood0001' });
  const bad = await d1.attach('cbbad00001', [ingressAttachment('10.90.0.21/24')], { service: 'cb', task: 'cb.2.cbbad00001' });
  t.teardown(() => d2.detach('cbgood0001'));
  t.teardown(() => d1.detach('cbbad00001'));
  const servers = [spawn('nsenter', [`--net=${good.netnsPath}`, BUSYBOX, 'httpd', '-f', '-p', '7070', '-h', dir], { stdio: 'ignore' })];
  t.teardown(() => servers.forEach((s) => s.kill('SIGKILL')));
  d2.setReady('cbgood0001', true);
  d1.setReady('cbbad00001', true); // running, but nothing listens: every connection it gets is refused
  const config = { services: [{ name: 'cb', ports: [{ protocol: 'tcp' as const, publishedPort: 8090, targetPort: 7070 }], strategy: 'round-robin' as const }] };
  await d1.setIngress({ attachment: ingressAttachment('10.90.0.2/24'), ...config });
  await d2.setIngress({ attachment: ingressAttachment('10.90.0.3/24'), ...config });
  await gossip('ning');
  await Promise.all([d1.lbSettled(), d2.lbSettled()]);
  await pollUntil('the good task answers through the mesh', async () => (await httpGet(h2, UNDERLAY[0], 8090)) || undefined, { deadlineMs: 10_000 });
  // Half the connections are refused until the bad task's host sees it (CIRCUIT.threshold refusals in 500 ms).
  let failed = 0;
  for (let i = 0; i < 12; i++) if ((await httpGet(h2, UNDERLAY[0], 8090)) === '') failed++;
  t.true(failed >= CIRCUIT.threshold, `refused while its circuit was closed: ${failed}`);
  const opened = await pollUntil('the circuit opens', () => (d1.circuitOf('cbbad00001') === 'open' ? true : undefined), { deadlineMs: 2_000, intervalMs: 50 });
  t.true(opened);
  t.is(d1.localEndpoints('ning').find((e) => e.taskId === 'cbbad00001')?.circuit, 'open', 'published as open');
  await gossip('ning');
  await Promise.all([d1.lbSettled(), d2.lbSettled()]);
  for (let i = 0; i < 10; i++) t.is(await httpGet(h2, UNDERLAY[0], 8090), 'cbgood0001', 'no request fails once the circuit is open');
  t.false(resolveName('tasks.cb', [[...d1.localEndpoints('ning'), ...d2.localEndpoints('ning')]], false)?.includes('10.90.0.21') ?? true, 'out of DNS answers');

  // After its cooldown a trickle: weight 1 against 10 (the table shows the ranges); it answers now, and after the
  // probe time without a refusal it has its full share again.
  const dir2 = join(www, 'cbbad00001');
  mkdirSync(dir2, { recursive: true });
  writeFileSync(join(dir2, 'index.html'), 'cbbad00001\n');
  servers.push(spawn('nsenter', [`--net=${bad.netnsPath}`, BUSYBOX, 'httpd', '-f', '-p', '7070', '-h', dir2], { stdio: 'ignore' }));
  await pollUntil('half-open', () => (d1.circuitOf('cbbad00001') === 'half-open' ? true : undefined), { deadlineMs: 8_000, intervalMs: 100 });
  await gossip('ning');
  await Promise.all([d1.lbSettled(), d2.lbSettled()]);
  const table = await inNetns(log, join(root, 'd1', 't-ingress-sbox'), 'nft', ['list', 'table', 'ip', 'swarm_ingress']);
  t.regex(table.stdout, /tcp dport 8090 dnat to numgen inc mod 11 map \{ 0-9 : 10\.90\.0\.20, 10 : 10\.90\.0\.21 \}:7070/);
  await pollUntil('closed again', () => (d1.circuitOf('cbbad00001') === 'closed' ? true : undefined), { deadlineMs: 8_000, intervalMs: 100 });
  await gossip('ning');
  await Promise.all([d1.lbSettled(), d2.lbSettled()]);
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) seen.add(await httpGet(h2, UNDERLAY[0], 8090));
  t.deepEqual([...seen].sort(), ['cbbad00001', 'cbgood0001'], 'its full share again');
  await d1.setIngress(null);
  await d2.setIngress(null);
});

serial('detaching every task leaves no namespace, device, record, gateway bridge or nft table behind', async (t) => {
  await d1.detach('taskone0001');
  await d2.detach('tasktwo0002');
  await d2.detach('tasktwo0002'); // idempotent
  t.deepEqual(readdirSync(join(root, 'd1')), []);
  t.deepEqual(readdirSync(join(root, 'd2')), []);
  for (const h of [h1, h2]) {
    const links = await inNetns(log, h, 'ip', ['-j', 'link', 'show']);
    t.deepEqual((JSON.parse(links.stdout) as Array<{ ifname: string }>).map((l) => l.ifname).sort(), ['lo', 'u0']);
    const tables = await inNetns(log, h, 'nft', ['list', 'tables']);
    t.is(tables.stdout.trim(), '');
  }
});

serial('a task on an encrypted network is refused rather than sent in the clear, and nothing is left of it', async (t) => {
  const enc = attachment('netenc', 5009, '10.90.9.0/24', '10.90.9.2/24');
  const err = await t.throwsAsync(d1.attach('taskenc0001', [{ ...enc, network: { ...enc.network, encrypted: true } }]));
  t.regex(err?.message ?? '', /network netenc is encrypted, and this node cannot encrypt overlay traffic yet/);
  t.deepEqual(readdirSync(join(root, 'd1')), []);
});
