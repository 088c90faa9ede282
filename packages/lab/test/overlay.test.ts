// Overlay networks on a real lab (3 hosts, real daemons, runc containers of the lab's swarm/httpd image): tasks of
// one network on three hosts ping and talk HTTP to each other over VXLAN, a task of another network cannot reach
// them, a killed host's endpoints leave every peer's FDB, a restarted host's tasks are reachable again, and removing
// the services and networks leaves no namespace, device, nft table or file behind on any host.

import test from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import http from 'node:http';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pollUntil } from '@swarm/wire';
import { isSwarmTask } from '../src/proc.js';
import { cliLab, labSerial, missingPrerequisite } from './prerequisites.js';

// Apart from the other lab tests' subnets: ava runs test files at the same time.
const SUBNET = '10.251.46.0/24';
const BUSYBOX = '/usr/bin/busybox';

const missing = missingPrerequisite({ tools: [['ip', '-V'], ['nft', '--version'], ['runc', '--version'], ['conmon', '--version'], ['docker-registry', '--version']], needCli: true });
const serial = labSerial(missing);
const { name, root, swarm, on } = cliLab('ov', missing);

interface Host {
  name: string;
  ip: string;
  netns: string;
  dataDir: string;
}

function hosts(): Host[] {
  return (JSON.parse(readFileSync(join(root, name, 'state.json'), 'utf8')) as { hosts: Host[] }).hosts;
}

function host(node: string): Host {
  const h = hosts().find((x) => x.name === node);
  if (h === undefined) throw new Error(`no host ${node}`);
  return h;
}

interface Endpoint {
  taskId: string;
  /** The task's name, `web.1.<task id>`. */
  name: string;
  ip: string;
  /** The host whose data dir holds the task's network namespace. */
  node: string;
}

function run(file: string, args: string[], timeoutMs = 10_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }));
  });
}

/** The network's endpoints as `network inspect` lists them (every task in the cluster), with where each runs. */
async function endpoints(network: string): Promise<Endpoint[]> {
  const res = await on('node-1', ['network', 'inspect', network]);
  if (res.code !== 0) throw new Error(`network inspect ${network}: ${res.stderr}`);
  const [doc] = JSON.parse(res.stdout) as Array<{ Containers: Record<string, { IPv4Address: string; Name: string }> }>;
  return Object.entries(doc?.Containers ?? {}).map(([taskId, c]) => {
    const where = hosts().find((h) => existsSync(join(h.dataDir, 'net', `t-${taskId}`)));
    return { taskId, name: c.Name, ip: c.IPv4Address.slice(0, c.IPv4Address.indexOf('/')), node: where?.name ?? '' };
  });
}

async function networkId(network: string): Promise<{ id: string; vni: number; subnet: string }> {
  const res = await on('node-1', ['network', 'inspect', network]);
  const [doc] = JSON.parse(res.stdout) as Array<{ Id: string; Options: Record<string, string>; IPAM: { Config: Array<{ Subnet: string }> } }>;
  return { id: doc?.Id ?? '', vni: Number(doc?.Options['com.docker.network.driver.overlay.vxlanid_list']), subnet: doc?.IPAM.Config[0]?.Subnet ?? '' };
}

function taskNs(e: Endpoint): string {
  return join(host(e.node).dataDir, 'net', `t-${e.taskId}`);
}

async function ping(from: Endpoint, ip: string): Promise<boolean> {
  return (await run('nsenter', [`--net=${taskNs(from)}`, BUSYBOX, 'ping', '-c', '1', '-W', '1', ip])).code === 0;
}

async function reaches(from: Endpoint, ip: string): Promise<boolean> {
  try {
    return await pollUntil(`${from.taskId} reaches ${ip}`, () => ping(from, ip), { deadlineMs: 10_000, intervalMs: 200 });
  } catch {
    return false;
  }
}

/**
 * GET /cgi-bin/host of the swarm/httpd task at `ip`, from inside `from`'s network namespace: its hostname. With
 * busybox nc: Debian's static busybox wget dies with SIGSEGV here, even for an address.
 */
let lastHttp = '';
async function hostnameAt(from: Endpoint, ip: string): Promise<string> {
  const res = await new Promise<string>((resolve) => {
    const child = execFile('nsenter', [`--net=${taskNs(from)}`, BUSYBOX, 'nc', '-w', '3', ip, '80'], { timeout: 10_000 }, (err, stdout, stderr) => {
      lastHttp = `${err?.message ?? 'ok'} | ${stdout} | ${stderr}`;
      resolve(stdout);
    });
    // nc may be gone before it reads (connection refused): its exit says so, not a broken pipe here.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end('GET /cgi-bin/host HTTP/1.0\r\n\r\n');
  });
  // The CGI script ends its headers with a bare newline.
  const body = res.split(/\r?\n\r?\n/)[1] ?? '';
  return res.startsWith('HTTP/1.') ? body.trim() : '';
}

/** Asks the embedded DNS (the nameserver of the task's resolv.conf) for A records, from inside the task's namespace. */
async function lookup(from: Endpoint, name: string): Promise<string[]> {
  const script = `const r = new (require('node:dns').promises.Resolver)(); r.setServers(['172.18.0.1']); r.resolve4(${JSON.stringify(name)}).then((a) => console.log(JSON.stringify(a.sort())), (e) => console.log(JSON.stringify(e.code)))`;
  const res = await run('nsenter', [`--net=${taskNs(from)}`, process.execPath, '-e', script]);
  return JSON.parse(res.stdout.trim() || '[]') as string[];
}

/** The underlay addresses the host's VXLAN device for a network sends to (its static FDB entries). */
async function fdbPeers(node: string, net: { id: string; vni: number }): Promise<string[]> {
  const sandbox = join(host(node).dataDir, 'net', `n-${net.id}`);
  if (!existsSync(sandbox)) return [];
  const res = await run('nsenter', [`--net=${sandbox}`, 'bridge', '-j', 'fdb', 'show', 'dev', `vx-${net.vni}`]);
  const entries = JSON.parse(res.stdout || '[]') as Array<{ dst?: string }>;
  return [...new Set(entries.flatMap((e) => (e.dst === undefined ? [] : [e.dst])))].sort();
}

const eventually = <T>(what: string, timeoutMs: number, check: () => Promise<T | undefined | false>): Promise<T> =>
  pollUntil(what, check, { deadlineMs: timeoutMs, intervalMs: 300, retryErrors: true });

async function running(service: string): Promise<number> {
  const res = await on('node-1', ['service', 'ps', '--format', 'json', service]);
  return res.stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { DesiredState: string; CurrentState: string })
    .filter((r) => r.DesiredState === 'Running' && r.CurrentState.startsWith('Running')).length;
}

serial('tasks of one network on three hosts ping and talk HTTP to each other over VXLAN; another network cannot reach them', async (t) => {
  const up = await swarm(['lab', 'up', '--name', name, '--nodes', '3', '--managers', '1', '--subnet', SUBNET], 240_000);
  t.is(up.code, 0, up.stderr);
  const ls = await on('node-1', ['network', 'ls']);
  t.regex(ls.stdout, /ingress\s+overlay\s+swarm/);
  t.is((await on('node-1', ['network', 'create', '-d', 'overlay', '--subnet', '10.77.1.0/24', 'front'])).code, 0);
  const back = await on('node-1', ['network', 'create', '-d', 'overlay', '--internal', 'back']);
  t.is(back.code, 0, back.stderr);
  const backNet = await networkId('back');
  t.regex(backNet.subnet, /^10\.0\.\d+\.0\/24$/, 'cut from the default pool');
  t.true(backNet.vni > 4096);

  const web = await on('node-1', ['service', 'create', '--name', 'web', '--replicas', '3', '--network', 'front', 'swarm/httpd'], 180_000);
  t.is(web.code, 0, web.stderr);
  const other = await on('node-1', ['service', 'create', '--name', 'other', '--network', 'back', 'swarm/httpd'], 180_000);
  t.is(other.code, 0, other.stderr);

  const eps = await eventually('three web endpoints on three hosts', 30_000, async () => {
    const e = await endpoints('front');
    return e.length === 3 && new Set(e.map((x) => x.node)).size === 3 && e.every((x) => x.node !== '') ? e : undefined;
  });
  t.true(eps.every((e) => e.ip.startsWith('10.77.1.')));
  for (const a of eps) {
    for (const b of eps) {
      if (a === b) continue;
      t.true(await reaches(a, b.ip), `${a.node} -> ${b.node} ping`);
      // Running means started, not yet listening: the server gets a moment to bind its port.
      const name = await eventually(`${a.node} -> ${b.node} HTTP`, 10_000, async () => (await hostnameAt(a, b.ip)) || undefined).catch(() => '');
      t.is(name, b.taskId.slice(0, 12), `${a.node} -> ${b.node} HTTP (${a.taskId} -> ${b.taskId} ${b.ip}): ${lastHttp}`);
    }
  }
  // The embedded DNS, asked from inside a task: its service's ready tasks by name, each task by its own name.
  const first = eps[0];
  if (first === undefined) throw new Error('no endpoint');
  const resolvConf = readFileSync(join(host(first.node).dataDir, 'runc', 'containers', first.taskId, 'etc', 'resolv.conf'), 'utf8');
  t.regex(resolvConf, /^nameserver 172\.18\.0\.1$/m);
  const all = eps.map((e) => e.ip).sort();
  t.deepEqual(await lookup(first, 'tasks.web'), all);
  t.deepEqual(await lookup(first, eps[1]?.name ?? ''), [eps[1]?.ip]);
  // The service name gives its virtual IP, and connections to it spread over every replica, on every host.
  const vip = (JSON.parse((await on('node-1', ['service', 'inspect', 'web'])).stdout) as Array<{ Endpoint: { VirtualIPs?: Array<{ Addr: string }> } }>)[0]?.Endpoint.VirtualIPs?.[0]?.Addr ?? '';
  t.regex(vip, /^10\.77\.1\.\d+\/24$/);
  const vipIp = vip.slice(0, vip.indexOf('/'));
  t.deepEqual(await lookup(first, 'web'), [vipIp]);
  const served = new Map<string, number>();
  for (const from of eps) {
    for (let i = 0; i < 6; i++) {
      const name = await hostnameAt(from, vipIp);
      served.set(name, (served.get(name) ?? 0) + 1);
    }
  }
  t.deepEqual([...served.keys()].sort(), eps.map((e) => e.taskId.slice(0, 12)).sort(), `every replica served through the VIP: ${JSON.stringify([...served])}`);

  const [stranger] = await endpoints('back');
  if (stranger === undefined) throw new Error('no task on back');
  for (const e of eps) {
    t.false(await ping(stranger, e.ip), `back cannot reach front's ${e.ip}`);
    t.false(await ping(e, stranger.ip), `front cannot reach back's ${stranger.ip}`);
  }
  t.is(await hostnameAt(stranger, eps[0]?.ip ?? ''), '');
  // `back` is internal: no way out (not even to its own host's underlay address), but the embedded DNS answers.
  t.false(await ping(stranger, host(stranger.node).ip));
  const otherVip = (JSON.parse((await on('node-1', ['service', 'inspect', 'other'])).stdout) as Array<{ Endpoint: { VirtualIPs?: Array<{ Addr: string }> } }>)[0]?.Endpoint.VirtualIPs?.[0]?.Addr ?? '';
  t.deepEqual(await lookup(stranger, 'other'), [otherVip.slice(0, otherVip.indexOf('/'))]);
  t.deepEqual(await lookup(stranger, 'tasks.other'), [stranger.ip]);
});

serial("a killed host's endpoints leave every peer's FDB; the tasks come back elsewhere, reachable", async (t) => {
  const front = await networkId('front');
  const victim = host('node-3');
  t.deepEqual(await fdbPeers('node-1', front), [host('node-2').ip, victim.ip].sort());
  t.is((await swarm(['lab', 'kill', `${name}/node-3`])).code, 0);
  for (const peer of ['node-1', 'node-2']) {
    const left = await eventually(`${peer} drops node-3's endpoints`, 30_000, async () => {
      const p = await fdbPeers(peer, front);
      return p.includes(victim.ip) ? undefined : p;
    });
    t.false(left.includes(victim.ip));
  }
  const eps = await eventually('three web endpoints again, none on node-3', 60_000, async () => {
    const e = (await endpoints('front')).filter((x) => x.node !== '');
    return (await running('web')) === 3 && e.length === 3 && e.every((x) => x.node !== 'node-3') ? e : undefined;
  });
  for (const a of eps) for (const b of eps) if (a !== b) t.true(await reaches(a, b.ip), `${a.node} -> ${b.ip}`);
});

serial("a restarted host's tasks are reachable again, and it learns the whole table", async (t) => {
  t.is((await swarm(['lab', 'restart', `${name}/node-3`])).code, 0);
  await eventually('node-3 ready', 30_000, async () => (await on('node-1', ['node', 'ls'])).stdout.split('\n').some((l) => l.includes('node-3') && l.includes('Ready')) || undefined);
  // A forced rolling update places the tasks anew, spread: node-3 gets one; it must reach, and be reached by, the others.
  const update = await on('node-1', ['service', 'update', '--force', 'web'], 180_000);
  t.is(update.code, 0, update.stderr);
  const eps = await eventually('a web task on node-3 again', 90_000, async () => {
    const e = (await endpoints('front')).filter((x) => x.node !== '');
    return (await running('web')) === 3 && e.length === 3 && e.some((x) => x.node === 'node-3') ? e : undefined;
  });
  const back = eps.find((e) => e.node === 'node-3');
  if (back === undefined) throw new Error('no task on node-3');
  for (const e of eps) {
    if (e === back) continue;
    t.true(await reaches(back, e.ip), `node-3 -> ${e.node}`);
    t.true(await reaches(e, back.ip), `${e.node} -> node-3`);
  }
  const front = await networkId('front');
  t.deepEqual(await fdbPeers('node-3', front), [host('node-1').ip, host('node-2').ip].sort().filter((ip) => eps.some((e) => host(e.node).ip === ip)));
});

serial("a host-mode published port answers on the node that runs the task, with the task's own hostname, and only there", async (t) => {
  const pub = await on('node-1', ['service', 'create', '--name', 'pub', '--network', 'front', '--publish', 'mode=host,published=8080,target=80', 'swarm/httpd'], 180_000);
  t.is(pub.code, 0, pub.stderr);
  const [ep] = await eventually('the pub task', 30_000, async () => {
    const e = (await endpoints('front')).filter((x) => x.name.startsWith('pub.') && x.node !== '');
    return e.length === 1 ? e : undefined;
  });
  if (ep === undefined) throw new Error('no pub task');
  const get = async (ip: string): Promise<string> => {
    const res = await new Promise<string>((resolve) => {
      const child = execFile(BUSYBOX, ['nc', '-w', '3', ip, '8080'], { timeout: 10_000 }, (_err, stdout) => resolve(stdout));
      // nc may be gone before it reads (connection refused): its exit says so, not a broken pipe here.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end('GET /cgi-bin/host HTTP/1.0\r\n\r\n');
    });
    return res.startsWith('HTTP/1.') ? (res.split(/\r?\n\r?\n/)[1] ?? '').trim() : '';
  };
  // From this machine's root namespace over the lab bridge, as a client outside the cluster.
  const answered = await eventually('the published port answers', 15_000, async () => (await get(host(ep.node).ip)) || undefined).catch(() => '');
  t.is(answered, ep.taskId.slice(0, 12));
  for (const other of hosts().filter((h) => h.name !== ep.node)) t.is(await get(other.ip), '', `${other.name} does not publish it`);
  // `service ps` shows the port the task holds, as Docker's PORTS column.
  const ps = await on('node-1', ['service', 'ps', '--format', 'json', 'pub']);
  t.true(ps.stdout.includes('"Ports":"*:8080->80/tcp"'), ps.stdout);
});

serial('tasks.web follows the tasks: scaled down and up again, the answers inside a task change within seconds', async (t) => {
  const [asker] = (await endpoints('front')).filter((x) => x.name.startsWith('pub.') && x.node !== '');
  if (asker === undefined) throw new Error('no pub task');
  t.is((await lookup(asker, 'tasks.web')).length, 3);
  for (const replicas of [2, 3]) {
    t.is((await on('node-1', ['service', 'scale', `web=${replicas}`], 180_000)).code, 0);
    const t0 = Date.now();
    const answer = await eventually(`tasks.web with ${replicas} addresses`, 30_000, async () => {
      const a = await lookup(asker, 'tasks.web');
      return a.length === replicas ? a : undefined;
    });
    t.log(`${replicas} replicas: tasks.web had ${replicas} addresses ${Date.now() - t0} ms after scale returned`);
    const live = (await endpoints('front')).filter((x) => x.name.startsWith('web.')).map((x) => x.ip).sort();
    t.true(answer.every((ip) => live.includes(ip)), `addresses of web tasks: ${answer.join(' ')} of ${live.join(' ')}`);
  }
});

/** GET /cgi-bin/host at ip:port from this machine's root namespace (a client outside the cluster): the hostname, or '' on failure. */
function meshGet(ip: string, port: number, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve) => {
    // The CGI script ends its headers with a bare newline: Node's strict parser would refuse the answer.
    const req = http.get({ host: ip, port, path: '/cgi-bin/host', agent: false, timeout: timeoutMs, insecureHTTPParser: true }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : ''));
      res.on('error', () => resolve(''));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(''));
  });
}

/** The processes of a task's container on this machine (the runtime marks them with the task's id). */
function taskPids(taskId: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => isSwarmTask(pid, taskId));
}

/** A UDP echo (Node) inside the namespace at `netns`, answering each datagram with `name`; killed by the caller. */
function udpEcho(netns: string, port: number, name: string): ChildProcess {
  const script = `const s = require('node:dgram').createSocket('udp4'); s.on('message', (m, r) => s.send(${JSON.stringify(name)}, r.port, r.address)); s.bind(${port});`;
  return spawn('nsenter', [`--net=${netns}`, process.execPath, '-e', script], { stdio: 'ignore' });
}

function udpAsk(ip: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => (s.close(), resolve('')), 1_000);
    s.on('message', (m) => (clearTimeout(timer), s.close(), resolve(m.toString())));
    s.send('hi', port, ip);
  });
}

serial('the routing mesh: 300 requests to the published port on each host, one without a task, reach every replica evenly; UDP too', async (t) => {
  const mesh = await on('node-1', ['service', 'create', '--name', 'mesh', '--replicas', '2', '--constraint', 'node.hostname!=node-3', '--publish', 'published=8081,target=80', '--publish', 'published=8053,target=5353,protocol=udp', 'swarm/httpd'], 180_000);
  t.is(mesh.code, 0, mesh.stderr);
  const tasks = await eventually('two mesh tasks with an ingress address', 60_000, async () => {
    const e = (await endpoints('ingress')).filter((x) => x.name.startsWith('mesh.') && x.node !== '');
    return (await running('mesh')) === 2 && e.length === 2 ? e : undefined;
  });
  t.false(tasks.some((e) => e.node === 'node-3'), 'node-3 runs no task of the service');
  const names = tasks.map((e) => e.taskId.slice(0, 12)).sort();
  for (const h of hosts()) {
    await eventually(`${h.name} serves 8081`, 30_000, async () => (await meshGet(h.ip, 8081)) || undefined);
    const served = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const got = await meshGet(h.ip, 8081);
      served.set(got, (served.get(got) ?? 0) + 1);
    }
    t.deepEqual([...served.keys()].sort(), names, `${h.name}: every replica, no failure: ${JSON.stringify([...served])}`);
    for (const n of names) t.true((served.get(n) ?? 0) >= 120, `${h.name}: ${n} got ${served.get(n)} of 300`);
  }
  // UDP: an echo in each task's namespace (the image has no UDP server) answers through the mesh on every host.
  const echoes = tasks.map((e) => udpEcho(taskNs(e), 5353, e.taskId.slice(0, 12)));
  t.teardown(() => echoes.forEach((c) => c.kill('SIGKILL')));
  for (const h of hosts()) {
    const got = await eventually(`${h.name} answers UDP 8053`, 15_000, async () => (await udpAsk(h.ip, 8053)) || undefined);
    t.true(names.includes(got), `${h.name}: ${got}`);
  }
});

serial("a replica's container killed: requests through the mesh fail only until its node takes it out, then none", async (t) => {
  const tasks = (await endpoints('ingress')).filter((x) => x.name.startsWith('mesh.') && x.node !== '');
  const victim = tasks[0];
  if (victim === undefined) throw new Error('no mesh task');
  const pids = taskPids(victim.taskId);
  t.true(pids.length > 0, 'the container runs');
  const entry = host('node-3').ip;
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  const t0 = Date.now();
  let failed = 0;
  let lastFailureMs = 0;
  const results: boolean[] = [];
  while (Date.now() - t0 < 8_000) {
    const ok = (await meshGet(entry, 8081, 1_000)) !== '';
    results.push(ok);
    if (!ok) {
      failed++;
      lastFailureMs = Date.now() - t0;
    }
  }
  t.log(`${failed} of ${results.length} requests failed, the last ${lastFailureMs} ms after the kill`);
  // Once the dead replica is out (its circuit open, then its task gone) nothing fails again: the failures are a
  // prefix of the run, and the run ends with a long streak of successes.
  t.true(results.length >= 50, 'enough requests to judge');
  t.true(results.slice(-50).every(Boolean), 'the last 50 requests all succeeded');
});

serial('a task whose health check starts failing stops getting traffic through the mesh', async (t) => {
  const sick = await on('node-1', ['service', 'create', '--name', 'sick', '--replicas', '2', '--constraint', 'node.hostname!=node-3', '--publish', 'published=8082,target=80', '--health-cmd', 'test ! -e /tmp/sick', '--health-interval', '1s', '--health-retries', '1', 'swarm/httpd'], 180_000);
  t.is(sick.code, 0, sick.stderr);
  const tasks = await eventually('two healthy sick tasks', 60_000, async () => {
    const e = (await endpoints('ingress')).filter((x) => x.name.startsWith('sick.') && x.node !== '');
    return (await running('sick')) === 2 && e.length === 2 ? e : undefined;
  });
  const entry = host('node-3').ip;
  const names = tasks.map((e) => e.taskId.slice(0, 12)).sort();
  await eventually('both answer through the mesh', 30_000, async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) seen.add(await meshGet(entry, 8082));
    return names.every((n) => seen.has(n)) || undefined;
  });
  const victim = tasks[0];
  if (victim === undefined) throw new Error('no sick task');
  // The health command looks for this file; the container's root is an overlay mount on its host.
  writeFileSync(join(host(victim.node).dataDir, 'runc', 'containers', victim.taskId, 'rootfs', 'tmp', 'sick'), '');
  const t0 = Date.now();
  let lastVictimMs = 0;
  let failed = 0;
  const answers: string[] = [];
  while (Date.now() - t0 < 8_000) {
    const got = await meshGet(entry, 8082, 1_000);
    answers.push(got);
    if (got === victim.taskId.slice(0, 12)) lastVictimMs = Date.now() - t0;
    if (got === '') failed++;
  }
  t.log(`the unhealthy task answered last ${lastVictimMs} ms after its check started failing; ${failed} requests failed`);
  const tail = answers.slice(-50);
  t.is(tail.length, 50, 'enough requests to judge');
  t.true(tail.every((a) => a !== '' && a !== victim.taskId.slice(0, 12)), `the last 50 all served, none by the unhealthy task: ${JSON.stringify([...new Set(tail)])}`);
  t.is((await on('node-1', ['service', 'rm', 'sick'])).code, 0);
});

serial('service rm of a published service leaves no ingress sandbox or ingress nft table on any host', async (t) => {
  t.is((await on('node-1', ['service', 'rm', 'mesh'])).code, 0);
  for (const h of hosts()) {
    await eventually(`${h.name} has no mesh left`, 60_000, async () => {
      const tables = (await run('ip', ['netns', 'exec', h.netns, '/usr/sbin/nft', 'list', 'tables'])).stdout;
      return !tables.includes('swarm_ingress') && !existsSync(join(h.dataDir, 'net', 't-ingress-sbox')) ? true : undefined;
    });
    t.is(await meshGet(h.ip, 8081, 1_000), '', `${h.name}: the port is closed`);
  }
});

serial('service rm and network rm leave no namespace, device, nft table or file behind on any host', async (t) => {
  t.is((await on('node-1', ['network', 'rm', 'front'])).code, 1, 'refused while web uses it');
  for (const s of ['web', 'other', 'pub']) t.is((await on('node-1', ['service', 'rm', s])).code, 0);
  for (const net of ['front', 'back']) {
    let last = '';
    // The services' tasks take a moment to stop (httpd as pid 1 ignores SIGTERM: the 10 s grace runs out first).
    await eventually(`network rm ${net}`, 60_000, async () => {
      const rm = await on('node-1', ['network', 'rm', net]);
      last = rm.stderr;
      return rm.code === 0 || undefined;
    }).catch((err: unknown) => t.fail(`${(err as Error).message}: ${last}`));
  }
  const ls = await on('node-1', ['network', 'ls', '--format', 'json']);
  t.deepEqual(
    ls.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { Name: string }).Name),
    ['ingress'],
  );
  for (const h of hosts()) {
    const clean = await eventually(`${h.name} clean`, 30_000, async () => {
      const files = existsSync(join(h.dataDir, 'net')) ? readdirSync(join(h.dataDir, 'net')) : [];
      const links = JSON.parse((await run('ip', ['-n', h.netns, '-j', 'link', 'show'])).stdout) as Array<{ ifname: string }>;
      const names = links.map((l) => l.ifname).sort();
      const tables = (await run('ip', ['netns', 'exec', h.netns, '/usr/sbin/nft', 'list', 'tables'])).stdout;
      return files.length === 0 && !names.some((n) => n.startsWith('vx-') || n.startsWith('gw') || n === 'swarm_gwbridge') && !tables.includes('swarm_gwbridge') ? names : undefined;
    });
    t.deepEqual(clean, ['eth0', 'lo']);
  }
});
