// Real lab tests: namespaces, bridge, veths, processes and nft rules on this machine (root + iproute2).
// The host command is a tiny TCP server standing in for the daemon; every lab is removed in teardown.

import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger, pollUntil } from '@swarm/wire';
import { createLab, destroyLab, waitForSocket, hostAlive, listLabs, loadLab, parseTarget, swarmInitJoin, LabError, type HostInfo, type HostState, type Lab } from '../src/index.js';
import { labSerial, missingPrerequisite } from './prerequisites.js';
import { netnsIpv4Addrs, netnsList, rootLinkNames } from '../src/ip.js';
import { isAlive } from '../src/proc.js';
import { listTables } from '../src/nft.js';

const PORT = 7000;

const missing = missingPrerequisite({ tools: [['ip', '-V'], ['nft', '--version']], needCli: false });
const serial = labSerial(missing);

const root = mkdtempSync(join(tmpdir(), 'swlab-t-'));
const logger = silentLogger();
// A lab whose teardown failed keeps its state file: remove it from there before the directory goes.
test.after.always(async () => {
  for (const l of listLabs({ root })) await destroyLab(l.name, { root, logger }).catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
});

// The stand-in daemon: greets each connection with its node name, echoes, and counts its starts in its data dir.
const SERVER = `
const net = require('net'); const fs = require('fs');
fs.appendFileSync(process.env.SWARM_DATA_DIR + '/starts', 'start\\n');
net.createServer((s) => { s.on('error', () => {}); s.write(process.env.SWARM_LAB_NODE + '\\n'); s.pipe(s); })
  .listen(Number(process.argv[2]), process.argv[1]);
setTimeout(() => net.createServer((s) => s.end()).listen(process.env.SWARM_SOCKET), 200);
`;
// Connects to IP:PORT and prints the greeting; exit 1 if nothing answers within 1500 ms (slack for a loaded machine; a dropped SYN never answers).
const PROBE = `
const s = require('net').connect(Number(process.argv[2]), process.argv[1]);
const t = setTimeout(() => { process.stdout.write('timeout'); process.exit(1); }, 1500);
s.on('data', (d) => { process.stdout.write(String(d).split('\\n')[0]); clearTimeout(t); s.destroy(); process.exit(0); });
s.on('error', (e) => { process.stdout.write(e.code); process.exit(1); });
`;

function serverCommand(h: HostInfo): { argv: string[] } {
  return { argv: [process.execPath, '-e', SERVER, h.ip, String(PORT)] };
}

const until = <T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, deadlineMs = 10_000): Promise<T> =>
  pollUntil(what, fn, { deadlineMs, intervalMs: 25 });

/** From the root namespace (over the lab bridge): the greeting of the server at ip, or null. */
async function probeFromRoot(ip: string): Promise<string | null> {
  return await new Promise((resolve) => {
    const s = connect(PORT, ip);
    const timer = setTimeout(() => {
      s.destroy();
      resolve(null);
    }, 1500);
    s.once('data', (d) => {
      clearTimeout(timer);
      s.destroy();
      resolve(String(d).split('\n')[0] ?? '');
    });
    s.once('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}

async function serving(h: HostState): Promise<void> {
  await until(`${h.name} serving on ${h.ip}:${PORT}`, async () => (await probeFromRoot(h.ip)) === h.name);
}

/** From inside `from`'s namespace: does `to`'s server answer with its name? */
async function reaches(lab: Lab, from: string, to: string): Promise<boolean> {
  const target = lab.host(to);
  const res = await lab.exec(from, [process.execPath, '-e', PROBE, target.ip, String(PORT)], { stdio: 'pipe' });
  return res.code === 0 && res.stdout === target.name;
}

let labSeq = 0;
async function newLab(t: ExecutionContext, nodes: number, extra: { name?: string } = {}): Promise<Lab> {
  const name = extra.name ?? `t${process.pid % 1000}-${++labSeq}`;
  t.teardown(async () => {
    await destroyLab(name, { root, logger });
  });
  return await createLab({ name, nodes, managers: 1, root, logger, command: serverCommand, waitReady: serving });
}

async function socketAccepts(path: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

function rootIpForward(): string {
  return readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
}

serial('up: N namespaces with .(i+1)/24 on eth0, the bridge holds .1, ip_forward is on inside only', async (t) => {
  const before = rootIpForward();
  const lab = await newLab(t, 3);
  const s = lab.state();
  t.is(s.phase, 'up');
  const nss = await netnsList();
  for (const h of s.hosts) {
    t.true(nss.includes(`swlab-${lab.name}-${h.index}`));
    t.is(h.ip, `${s.subnetBase}.${h.index + 1}`);
    const addrs = await netnsIpv4Addrs(h.netns);
    t.true(addrs.includes(`${h.ip}/24`), `${h.name} has ${h.ip}/24: ${addrs.join(' ')}`);
    t.true(addrs.includes('127.0.0.1/8'), 'lo is up');
    const fwd = await lab.exec(h.name, ['cat', '/proc/sys/net/ipv4/ip_forward'], { stdio: 'pipe' });
    t.is(fwd.stdout.trim(), '1');
    t.true(hostAlive(h));
  }
  t.true((await rootLinkNames()).includes(s.bridge));
  t.true(s.bridge.length <= 15 && s.hosts.every((h) => h.vethRoot.length <= 15));
  t.is(rootIpForward(), before, 'the root namespace ip_forward is untouched');
  t.deepEqual(s.hosts.map((h) => h.role), ['manager', 'worker', 'worker']);
  const listed = listLabs({ root }).find((l) => l.name === lab.name);
  t.like(listed, { nodes: 3, managers: 1, status: 'up' });
});

serial('registry: a lab made with one serves the distribution API on the bridge to every host; down stops it', async (t) => {
  if (!existsSync('/usr/bin/docker-registry')) return t.fail('docker-registry is not installed (apt-get install docker-registry; scripts/test installs it)');
  const name = `t${process.pid % 1000}-reg`;
  t.teardown(async () => {
    await destroyLab(name, { root, logger });
  });
  let seeded = '';
  const lab = await createLab({ name, nodes: 2, managers: 1, root, logger, command: serverCommand, waitReady: serving, registry: true, seedRegistry: async (addr) => void (seeded = addr) });
  const s = lab.state();
  const addr = `${s.bridgeIp}:5000`;
  t.is(seeded, addr, 'the seed step got the registry before the hosts started');
  t.is(s.registry?.addr, addr);
  const answer = await lab.exec('node-2', [process.execPath, '-e', `fetch('http://${addr}/v2/').then((r) => process.stdout.write(String(r.status)))`], { stdio: 'pipe' });
  t.is(answer.stdout, '200');
  const reg = s.registry?.process;
  if (reg?.state !== 'running') return t.fail(`registry process ${JSON.stringify(reg)}`);
  await lab.down();
  t.false(isAlive({ pid: reg.pid, startTime: reg.startTime }), 'the registry is stopped with the lab');
});

serial('underlay: host 1 reaches host 3 over the bridge, and the root namespace reaches every host', async (t) => {
  const lab = await newLab(t, 3);
  t.true(await reaches(lab, 'node-1', 'node-3'));
  t.true(await reaches(lab, 'node-3', 'node-1'));
  for (const h of lab.state().hosts) t.is(await probeFromRoot(h.ip), h.name);
});

serial('exec runs inside the host namespace with SWARM_SOCKET set, and passes the exit code through', async (t) => {
  const lab = await newLab(t, 2);
  const [h1, h2] = lab.state().hosts;
  if (h1 === undefined || h2 === undefined) throw new Error('two hosts');
  const addr = await lab.exec('node-2', ['ip', '-o', '-4', 'addr'], { stdio: 'pipe' });
  t.regex(addr.stdout, new RegExp(`eth0\\s+inet ${h2.ip.replaceAll('.', '\\.')}/24`));
  t.false(addr.stdout.includes(`${h1.ip}/`), 'no other host address is visible');
  const env = await lab.exec('2', [process.execPath, '-e', 'process.stdout.write(process.env.SWARM_SOCKET ?? "unset")'], { stdio: 'pipe' });
  t.is(env.stdout, h2.socketPath);
  t.not(h1.socketPath, h2.socketPath);
  const code = await lab.exec('node-1', [process.execPath, '-e', 'process.exit(7)'], { stdio: 'pipe' });
  t.is(code.code, 7);
  t.deepEqual(parseTarget(`${lab.name}/node-2`), { lab: lab.name, node: 'node-2' });
});

serial('kill stops only that host\'s process; restart starts it again on the same data dir', async (t) => {
  const lab = await newLab(t, 3);
  const before = lab.state().hosts;
  await until('node-2 to open its socket', () => socketAccepts(lab.host('node-2').socketPath));
  await lab.kill('node-2');
  const after = lab.state();
  for (const h of before) {
    if (h.process.state !== 'running') throw new Error('all running before kill');
    t.is(isAlive({ pid: h.process.pid, startTime: h.process.startTime }), h.name !== 'node-2', `${h.name} alive iff not killed`);
  }
  t.is(after.hosts[1]?.process.state, 'killed');
  t.true(listLabs({ root }).find((l) => l.name === lab.name)?.status.startsWith('degraded'));
  t.false(await reaches(lab, 'node-1', 'node-2'));
  t.true(await reaches(lab, 'node-1', 'node-3'));
  await t.throwsAsync(lab.kill('node-2'), { instanceOf: LabError, message: /not running/ });

  t.true(existsSync(lab.host('node-2').socketPath), 'kill -9 leaves the socket file behind');
  await lab.restart('node-2', (h) => waitForSocket(h, 10_000));
  const h2 = lab.host('node-2');
  t.true(hostAlive(h2));
  t.true(await socketAccepts(h2.socketPath), 'restart waited for the new daemon\'s socket, not the stale file');
  t.true(await reaches(lab, 'node-1', 'node-2'));
  t.is(readFileSync(join(h2.dataDir, 'starts'), 'utf8'), 'start\nstart\n', 'the restarted process uses the same data dir');
});

serial('partition drops traffic between the groups both ways; heal restores it', async (t) => {
  const lab = await newLab(t, 3);
  await lab.partition(['node-1']); // node-1 against everyone else
  for (const h of lab.state().hosts) t.deepEqual(await listTables(h.netns), ['inet swlab_part'], `${h.name} has the partition table`);
  t.false(await reaches(lab, 'node-1', 'node-2'));
  t.false(await reaches(lab, 'node-2', 'node-1'));
  t.false(await reaches(lab, 'node-3', 'node-1'));
  t.true(await reaches(lab, 'node-2', 'node-3'), 'inside a group traffic flows');
  await lab.heal();
  t.true(await reaches(lab, 'node-1', 'node-2'));
  t.true(await reaches(lab, 'node-3', 'node-1'));

  await lab.partition(['node-1'], ['node-3']);
  t.false(await reaches(lab, 'node-1', 'node-3'));
  t.false(await reaches(lab, 'node-3', 'node-1'));
  t.true(await reaches(lab, 'node-1', 'node-2'), 'a host in neither group is not cut off');
  t.true(await reaches(lab, 'node-2', 'node-3'));
  await t.throwsAsync(lab.partition(['node-1'], ['node-1']), { instanceOf: LabError, message: /both sides/ });
  await lab.heal();
  t.true(await reaches(lab, 'node-1', 'node-3'));
  t.true(lab.state().hosts.every((h) => h.blockedIps.length === 0));
  for (const h of lab.state().hosts) t.deepEqual(await listTables(h.netns), [], `${h.name} has no table after heal`);
});

async function labResources(name: string): Promise<{ namespaces: string[]; links: string[] }> {
  const s = loadLab(name, { root });
  const nss = await netnsList();
  const links = await rootLinkNames();
  return { namespaces: s.made.namespaces.filter((n) => nss.includes(n)), links: s.made.links.filter((l) => links.includes(l)) };
}

async function assertGone(t: ExecutionContext, name: string, made: { namespaces: string[]; links: string[] }, pids: { pid: number; startTime: number }[], dir: string): Promise<void> {
  const nss = await netnsList();
  const links = await rootLinkNames();
  for (const n of made.namespaces) t.false(nss.includes(n), `namespace ${n} removed`);
  for (const l of made.links) t.false(links.includes(l), `link ${l} removed`);
  for (const p of pids) t.false(isAlive(p), `pid ${p.pid} stopped`);
  t.false(existsSync(dir), 'state dir removed');
  t.false(listLabs({ root }).some((l) => l.name === name));
}

serial('down removes every namespace, link, process and the state dir, from the state file alone; twice is fine', async (t) => {
  let lab: Lab | null = await newLab(t, 3);
  const name = lab.name;
  const s = lab.state();
  const made = await labResources(name);
  t.is(made.namespaces.length, 3);
  t.is(made.links.length, 4, 'bridge + 3 veths');
  const pids = s.hosts.map((h) => (h.process.state === 'running' ? { pid: h.process.pid, startTime: h.process.startTime } : { pid: 0, startTime: 0 }));
  // Something else already removed one of the lab's links: down must still remove the rest.
  execFileSync('/usr/sbin/ip', ['link', 'delete', 'dev', s.hosts[2]?.vethRoot ?? 'missing']);
  lab = null; // the lab's creator "crashes": nothing in memory survives
  t.is(lab, null);
  const report = await destroyLab(name, { root, logger });
  t.true(report.found);
  t.is(report.namespaces.length, 3);
  t.is(report.killedPids.length, 3);
  t.false(report.links.includes(s.hosts[2]?.vethRoot ?? ''), 'the link removed by someone else is not reported as removed');
  await assertGone(t, name, made, pids, s.dir);
  const again = await destroyLab(name, { root, logger });
  t.false(again.found);
});

serial('down after the creating process was kill -9ed mid-creation removes everything', async (t) => {
  const name = `cr${process.pid % 1000}`;
  t.teardown(async () => {
    await destroyLab(name, { root, logger });
  });
  const index = fileURLToPath(new URL('../src/index.js', import.meta.url));
  // The child builds a 2-host lab whose readiness never comes, so it is killed while phase is 'creating'.
  const script = `
    const { createLab } = await import(${JSON.stringify(index)});
    await createLab({ name: ${JSON.stringify(name)}, nodes: 2, managers: 1, root: ${JSON.stringify(root)},
      command: (h) => ({ argv: [process.execPath, '-e', ${JSON.stringify(SERVER)}, h.ip, '${PORT}'] }),
      waitReady: () => new Promise(() => {}) });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore', env: { ...process.env, SWARM_LOG_LEVEL: 'silent' } });
  const dir = join(root, name);
  const s = await until('the child lab to run both hosts', () => {
    try {
      const st = loadLab(name, { root });
      return st.hosts.length === 2 && st.hosts.every((h) => h.process.state === 'running') ? st : undefined;
    } catch {
      return undefined;
    }
  }, 20_000);
  child.kill('SIGKILL');
  await until('the creator to die', () => child.exitCode !== null || child.signalCode !== null);
  t.is(s.phase, 'creating');
  const made = await labResources(name);
  const pids = s.hosts.map((h) => (h.process.state === 'running' ? { pid: h.process.pid, startTime: h.process.startTime } : { pid: 0, startTime: 0 }));
  t.true(pids.every(isAlive), 'the orphaned hosts still run after the crash');
  writeFileSync(join(dir, 'state.json.tmp'), 'garbage from a torn write');
  const report = await destroyLab(name, { root, logger });
  t.true(report.found);
  await assertGone(t, name, made, pids, dir);
});

serial('two labs at once get different bridges and subnets and do not disturb each other', async (t) => {
  const [a, b] = await Promise.all([newLab(t, 2), newLab(t, 2)]);
  const sa = a.state();
  const sb = b.state();
  t.not(sa.id, sb.id);
  t.not(sa.subnetBase, sb.subnetBase);
  t.not(sa.bridge, sb.bridge);
  t.true(await reaches(a, 'node-1', 'node-2'));
  t.true(await reaches(b, 'node-1', 'node-2'));
  await destroyLab(a.name, { root, logger });
  t.true(await reaches(b, 'node-2', 'node-1'), 'removing one lab leaves the other working');
  t.true(b.state().hosts.every(hostAlive));
});

serial('a host command that exits at once fails up and leaves nothing behind', async (t) => {
  const name = `bad${process.pid % 1000}`;
  t.teardown(async () => {
    await destroyLab(name, { root, logger });
  });
  const nssBefore = (await netnsList()).filter((n) => n.startsWith(`swlab-${name}-`));
  t.deepEqual(nssBefore, []);
  await t.throwsAsync(
    createLab({ name, nodes: 2, managers: 1, root, logger, command: () => ({ argv: [process.execPath, '-e', 'process.exit(3)'] }), waitReady: async (h) => {
      await until(`${h.name} to exit`, () => h.process.state === 'running' && !isAlive({ pid: h.process.pid, startTime: h.process.startTime }));
      throw new LabError('command_failed', `${h.name} exited`);
    } }),
    { message: /exited/ },
  );
  t.deepEqual((await netnsList()).filter((n) => n.startsWith(`swlab-${name}-`)), []);
  t.false(existsSync(join(root, name)));
});

serial('cluster step: init on node-1, tokens from node-1, joins in order with each host\'s socket; a failed join is reported', async (t) => {
  const calls = join(root, 'calls.log');
  // A fake `swarm` CLI that records where it ran and with what, prints tokens, and fails `join` on node-3.
  const FAKE = `
    const fs = require('fs'); const a = process.argv.slice(1);
    fs.appendFileSync(${JSON.stringify(calls)}, [process.env.SWARM_LAB_NODE, process.env.SWARM_SOCKET, ...a].join(' ') + '\\n');
    if (a[0] === 'join-token') process.stdout.write('TOK-' + a[2] + '\\n');
    if (a[0] === 'join' && process.env.SWARM_LAB_NODE === 'node-3') { process.stderr.write('join is not implemented yet'); process.exit(2); }
  `;
  const name = `cl${process.pid % 1000}`;
  t.teardown(async () => {
    await destroyLab(name, { root, logger });
  });
  const err = await t.throwsAsync(
    createLab({ name, nodes: 3, managers: 2, root, logger, command: serverCommand, waitReady: serving, cluster: swarmInitJoin({ swarmArgv: [process.execPath, '-e', FAKE] }) }),
    { instanceOf: LabError },
  );
  t.is(err?.code, 'cluster_failed');
  t.regex(err?.message ?? '', /node-3: `swarm join --token TOK-worker .*` exited with 2: join is not implemented yet/);
  const s = loadLab(name, { root });
  t.is(s.cluster.state, 'failed');
  t.true(s.hosts.every(hostAlive), 'the hosts stay up for inspection');
  const [h1, h2, h3] = s.hosts;
  if (h1 === undefined || h2 === undefined || h3 === undefined) throw new Error('three hosts');
  t.deepEqual(readFileSync(calls, 'utf8').trim().split('\n'), [
    `node-1 ${h1.socketPath} init --advertise-addr ${h1.ip}`,
    `node-1 ${h1.socketPath} join-token -q manager`,
    `node-1 ${h1.socketPath} join-token -q worker`,
    `node-2 ${h2.socketPath} join --token TOK-manager ${h1.ip}:2377`,
    `node-3 ${h3.socketPath} join --token TOK-worker ${h1.ip}:2377`,
  ]);
});

test('target and name checks: LAB/NODE is required, bad names and counts are refused before anything is made', async (t) => {
  t.throws(() => parseTarget('lab'), { instanceOf: LabError });
  t.throws(() => parseTarget('/node-1'), { instanceOf: LabError });
  if (missing !== null) return; // createLab checks root first
  await t.throwsAsync(createLab({ name: 'Bad_Name', nodes: 1, managers: 1, root, command: serverCommand }), { message: /lab name/ });
  await t.throwsAsync(createLab({ name: 'ok', nodes: 2, managers: 3, root, command: serverCommand }), { message: /--managers/ });
  await t.throwsAsync(createLab({ name: 'ok', nodes: 0, managers: 1, root, command: serverCommand }), { message: /--nodes/ });
  await t.throwsAsync(createLab({ name: 'ok', nodes: 1, managers: 1, root, subnet: '10.1.2.0/16', command: serverCommand }), { message: /subnet/ });
});
