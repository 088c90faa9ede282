// The lab's verbs: create (namespaces on a bridge, one process each), list, exec, kill, restart,
// partition, heal, destroy. Every change is recorded in the state file before it is made.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { destroyNetState } from '@swarm/netdriver';
import { destroyRuncRoot } from '@swarm/runtime';
import { componentLogger, type Logger } from '@swarm/wire';
import { LabError, assert } from './errors.js';
import * as ip from './ip.js';
import * as nft from './nft.js';
import { cmdline, isAlive, isSwarmTask, readStat, signalVerified, spawnDetached, stopVerified, waitExited, type ProcessIdentity } from './proc.js';
import { run, type RunResult } from './run.js';
import { REGISTRY_BIN, REGISTRY_PORT, registryPaths, startRegistry } from './registry.js';
import {
  ensureDir,
  labDir,
  labRoot,
  listLabNames,
  readState,
  STATE_VERSION,
  withLock,
  writeState,
  type HostRole,
  type HostState,
  type LabState,
} from './state.js';

export const MAX_NODES = 253; // .2 … .254 of the lab's /24; .1 is the bridge
/** Serializes lab id and subnet allocation across every lab root and process on this machine. */
const MACHINE_ALLOC_LOCK = '/run/swarm-lab.alloc.lock';
const MAX_LAB_ID = 9999; // keeps swlb-<id>-<index> within 15 characters
const DEFAULT_SUBNET_PREFIX = '10.250';
const STOP_GRACE_MS = 2_000;
const DEFAULT_READY_TIMEOUT_MS = 30_000;
/** Hosts whose namespace and veth are built at the same time (bounded: each runs several `ip` processes). */
const BUILD_CONCURRENCY = 8;
const NAME_RE = /^[a-z0-9][a-z0-9-]{0,19}$/;

/** What a host's command function is told about the host. */
export interface HostInfo {
  lab: string;
  name: string;
  index: number;
  role: HostRole;
  ip: string;
  netns: string;
  dataDir: string;
  socketPath: string;
  logPath: string;
  /** The lab registry's host:port on the underlay, or null when the lab has none. */
  registry: string | null;
}

export interface HostCommand {
  argv: string[];
  env?: Record<string, string>;
}

/** Makes the lab's hosts into a cluster once their processes run (e.g. swarm init + join). */
export type ClusterStep = (lab: Lab) => Promise<void>;

export interface CreateLabOptions {
  name?: string;
  nodes: number;
  managers: number;
  /** "A.B.C.0/24"; default 10.250.<k>.0/24 with k the first that no lab or root-namespace route uses. */
  subnet?: string;
  /** State directory; default $SWARM_LAB_ROOT or /var/lib/swarm-lab. */
  root?: string;
  command: (host: HostInfo) => HostCommand;
  /** Resolves when the host's process serves; default: the process is still alive right after spawn. */
  waitReady?: (host: HostState, lab: Lab) => Promise<void>;
  cluster?: ClusterStep;
  logger?: Logger;
  /** Run an image registry on the bridge address (port 5000) for the hosts; HostInfo.registry names it. */
  registry?: boolean;
  /** After the registry answers and before any host starts: fill it (push the lab's images). */
  seedRegistry?: (addr: string) => Promise<void>;
}

export interface LabOptions {
  root?: string;
  logger?: Logger;
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new LabError('not_root', 'the lab creates network namespaces and links: run it as root (sudo swarm lab …)');
  }
}

function defaultLogger(opts: { logger?: Logger | undefined }): Logger {
  return opts.logger ?? componentLogger('lab', 'lab');
}

function lockPath(root: string, name: string): string {
  return join(root, `.${name}.lock`);
}

// ---- addresses ---------------------------------------------------------------------------------

function ipv4ToInt(text: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (m === null) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return parts.reduce((acc, p) => acc * 256 + p, 0);
}

function cidrRange(cidr: string): [number, number] | null {
  const [addr, lenText] = cidr.split('/');
  const base = addr === undefined ? null : ipv4ToInt(addr);
  const len = Number(lenText ?? '32');
  if (base === null || !Number.isInteger(len) || len < 0 || len > 32) return null;
  const size = 2 ** (32 - len);
  const start = Math.floor(base / size) * size;
  return [start, start + size - 1];
}

function overlaps(a: string, b: string): boolean {
  const ra = cidrRange(a);
  const rb = cidrRange(b);
  if (ra === null || rb === null) return false;
  return ra[0] <= rb[1] && rb[0] <= ra[1];
}

function parseSubnet(subnet: string): string {
  const m = /^(\d{1,3}\.\d{1,3}\.\d{1,3})\.0\/24$/.exec(subnet);
  if (m === null || m[1] === undefined || ipv4ToInt(`${m[1]}.0`) === null) {
    throw new LabError('invalid_argument', `subnet ${subnet}: the lab takes an IPv4 /24 written A.B.C.0/24`);
  }
  return m[1];
}

// ---- lookup ------------------------------------------------------------------------------------

export function loadLab(name: string, opts: LabOptions = {}): LabState {
  const root = labRoot(opts.root);
  const s = readState(labDir(root, name));
  if (s === null) throw new LabError('not_found', `no lab named ${name} under ${root} (see \`swarm lab ls\`)`);
  return s;
}

/** "NAME/NODE" where NODE is node-3 or 3. */
export function parseTarget(target: string): { lab: string; node: string } {
  const slash = target.indexOf('/');
  if (slash <= 0 || slash === target.length - 1) {
    throw new LabError('invalid_argument', `${target}: expected LAB/NODE, e.g. lab/node-1`);
  }
  return { lab: target.slice(0, slash), node: target.slice(slash + 1) };
}

export function findHost(s: LabState, node: string): HostState {
  const wanted = /^\d+$/.test(node) ? `node-${node}` : node;
  const h = s.hosts.find((x) => x.name === wanted);
  if (h === undefined) {
    throw new LabError('not_found', `lab ${s.name} has no host ${node} (hosts: ${s.hosts.map((x) => x.name).join(', ')})`);
  }
  return h;
}

export function hostInfo(s: LabState, h: HostState): HostInfo {
  const registry = s.registry?.addr ?? null;
  return { lab: s.name, name: h.name, index: h.index, role: h.role, ip: h.ip, netns: h.netns, dataDir: h.dataDir, socketPath: h.socketPath, logPath: h.logPath, registry };
}

export function hostAlive(h: HostState): boolean {
  return h.process.state === 'running' && isAlive({ pid: h.process.pid, startTime: h.process.startTime });
}

// ---- create ------------------------------------------------------------------------------------

/** A handle on a lab by name; every method reads the state file, so a handle never goes stale. */
export class Lab {
  readonly name: string;
  readonly root: string;
  private readonly opts: LabOptions;

  constructor(name: string, opts: LabOptions = {}) {
    this.name = name;
    this.root = labRoot(opts.root);
    this.opts = { ...opts, root: this.root };
  }

  state(): LabState {
    return loadLab(this.name, this.opts);
  }
  host(node: string): HostState {
    return findHost(this.state(), node);
  }
  async exec(node: string, argv: readonly string[], o: ExecOptions = {}): Promise<ExecResult> {
    return await execInHost(this.name, node, argv, { ...this.opts, ...o });
  }
  async kill(node: string): Promise<void> {
    await killHost(this.name, node, this.opts);
  }
  async restart(node: string, waitReady?: (h: HostState, lab: Lab) => Promise<void>): Promise<void> {
    await restartHost(this.name, node, { ...this.opts, waitReady });
  }
  async partition(groupA: readonly string[], groupB?: readonly string[]): Promise<void> {
    await partitionLab(this.name, groupA, groupB, this.opts);
  }
  async heal(): Promise<void> {
    await healLab(this.name, this.opts);
  }
  async down(): Promise<DownReport> {
    return await destroyLab(this.name, this.opts);
  }
}

async function allocate(root: string, name: string, subnet: string | undefined): Promise<{ id: number; subnetBase: string }> {
  const others = listLabNames(root)
    .filter((n) => n !== name)
    .map((n) => readState(labDir(root, n)))
    .filter((s): s is LabState => s !== null);
  const usedIds = new Set(others.map((s) => s.id));
  for (const link of await ip.rootLinkNames()) {
    const m = /^swlb-(\d+)(?:-|$)/.exec(link);
    if (m?.[1] !== undefined) usedIds.add(Number(m[1]));
  }
  let id = 1;
  while (usedIds.has(id)) id++;
  if (id > MAX_LAB_ID) throw new LabError('no_subnet', `more than ${MAX_LAB_ID} labs: remove some with \`swarm lab down\``);

  const usedPrefixes = [...(await ip.rootIpv4Prefixes()), ...others.map((s) => `${s.subnetBase}.0/24`)];
  const free = (base: string): boolean => !usedPrefixes.some((p) => overlaps(p, `${base}.0/24`));
  if (subnet !== undefined) {
    const base = parseSubnet(subnet);
    if (!free(base)) throw new LabError('no_subnet', `subnet ${subnet} overlaps an address or route on this machine or another lab: choose another`);
    return { id, subnetBase: base };
  }
  for (let k = 0; k < 256; k++) {
    const base = `${DEFAULT_SUBNET_PREFIX}.${k}`;
    if (free(base)) return { id, subnetBase: base };
  }
  throw new LabError('no_subnet', `every ${DEFAULT_SUBNET_PREFIX}.K.0/24 is in use: pass --subnet`);
}

/**
 * Builds the lab: a bridge swlb-<id> holding .1, and per host a namespace swlab-<name>-<i> whose eth0
 * holds .(i+1)/24, with ip_forward on inside it; then starts each host's command in its namespace.
 * On a failure before the hosts run, everything made so far is removed again.
 */
export async function createLab(opts: CreateLabOptions): Promise<Lab> {
  requireRoot();
  const log = defaultLogger(opts);
  const name = opts.name ?? 'lab';
  if (!NAME_RE.test(name)) throw new LabError('invalid_argument', `lab name ${name}: use 1-20 of a-z, 0-9 and -, starting with a letter or digit`);
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > MAX_NODES) {
    throw new LabError('invalid_argument', `--nodes ${opts.nodes}: a lab has 1 to ${MAX_NODES} nodes`);
  }
  if (!Number.isInteger(opts.managers) || opts.managers < 1 || opts.managers > opts.nodes) {
    throw new LabError('invalid_argument', `--managers ${opts.managers}: between 1 and the number of nodes (${opts.nodes})`);
  }
  const root = labRoot(opts.root);
  ensureDir(root);
  const dir = labDir(root, name);
  const lab = new Lab(name, { root, logger: log });

  // One allocation lock for the whole machine, not per lab root: labs under different roots (tests use
  // their own) share the root namespace's link names and addresses. The bridge and its address are made
  // inside the lock, so the next allocator sees them as taken.
  const state = await withLock(MACHINE_ALLOC_LOCK, async () => {
    if (readState(dir) !== null) throw new LabError('exists', `lab ${name} exists: \`swarm lab down ${name}\` first, or pick another --name`);
    const existing = new Set(await ip.netnsList());
    for (let i = 1; i <= opts.nodes; i++) {
      const ns = `${ip.NETNS_PREFIX}${name}-${i}`;
      if (existing.has(ns)) throw new LabError('exists', `network namespace ${ns} exists but belongs to no lab under ${root}: remove it (ip netns delete ${ns}) or pick another --name`);
    }
    const { id, subnetBase } = await allocate(root, name, opts.subnet);
    ensureDir(dir);
    const s: LabState = {
      version: STATE_VERSION,
      name,
      id,
      subnetBase,
      bridge: `${ip.LINK_PREFIX}${id}`,
      bridgeIp: `${subnetBase}.1`,
      dir,
      nodes: opts.nodes,
      managers: opts.managers,
      phase: 'creating',
      cluster: { state: 'none' },
      createdAtMs: Date.now(),
      made: { namespaces: [], links: [], paths: [dir] },
      hosts: [],
    };
    writeState(s);
    s.made.links.push(s.bridge);
    writeState(s);
    if (opts.registry === true) {
      s.registry = { addr: `${s.bridgeIp}:${REGISTRY_PORT}`, process: { state: 'starting' } };
      writeState(s);
    }
    try {
      await ip.bridgeAdd(s.bridge);
      await ip.addrAdd(s.bridge, `${s.bridgeIp}/24`);
    } catch (e) {
      await destroyLab(name, { root, logger: log }).catch(() => undefined);
      throw e;
    }
    return s;
  });
  log.info({ lab: name, id: state.id, subnet: `${state.subnetBase}.0/24`, nodes: opts.nodes }, 'creating lab');

  try {
    await withLock(lockPath(root, name), async () => {
      if (state.registry !== undefined) {
        await ip.linkUp(state.bridge);
        const id = await startRegistry(state.dir, state.registry.addr);
        state.registry.process = { state: 'running', pid: id.pid, startTime: id.startTime };
        writeState(state);
        log.info({ lab: name, registry: state.registry.addr }, 'lab registry up');
        await opts.seedRegistry?.(state.registry.addr);
      }
      await buildNetwork(state, opts);
      for (const h of state.hosts) await startHost(state, h);
    });
    await Promise.all(state.hosts.map((h) => (opts.waitReady ?? defaultReady)(h, lab)));
    await withLock(lockPath(root, name), async () => {
      const s = loadLab(name, { root });
      s.phase = 'up';
      writeState(s);
    });
  } catch (e) {
    log.warn({ lab: name, err: e instanceof Error ? e.message : String(e) }, 'lab creation failed: removing what was made');
    await destroyLab(name, { root, logger: log }).catch((e2: unknown) => {
      log.error({ lab: name, err: e2 instanceof Error ? e2.message : String(e2) }, 'cleanup after failed creation failed');
    });
    throw e;
  }

  if (opts.cluster !== undefined) {
    try {
      await opts.cluster(lab);
      await setCluster(lab, { state: 'formed', atMs: Date.now() });
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      await setCluster(lab, { state: 'failed', error: msg });
      throw new LabError('cluster_failed', `lab ${name}: hosts and daemons are up but the cluster did not form: ${msg}\n` +
        `inspect with \`swarm lab exec ${name}/node-1 -- …\` and the logs under ${dir}; remove with \`swarm lab down ${name}\``);
    }
  }
  return lab;
}

async function setCluster(lab: Lab, cluster: LabState['cluster']): Promise<void> {
  await withLock(lockPath(lab.root, lab.name), async () => {
    const s = lab.state();
    s.cluster = cluster;
    writeState(s);
  });
}

async function defaultReady(h: HostState): Promise<void> {
  if (!hostAlive(h)) throw new LabError('command_failed', `${h.name}: its process exited at once; see ${h.logPath}:\n${tail(h.logPath)}`);
}

async function buildNetwork(s: LabState, opts: CreateLabOptions): Promise<void> {
  // The bridge and its address were made under the allocation lock (createLab).
  await ip.linkUp(s.bridge);

  // Hosts are recorded in index order first, then built a few at a time (each is a dozen `ip` calls).
  const hosts: HostState[] = [];
  for (let i = 1; i <= s.nodes; i++) {
    const name = `node-${i}`;
    const netns = `${ip.NETNS_PREFIX}${s.name}-${i}`;
    const vethRoot = `${s.bridge}-${i}`;
    assert(vethRoot.length <= ip.MAX_IFNAME_CHARS, `veth name ${vethRoot} fits IFNAMSIZ`);
    const dir = join(s.dir, name);
    const h: HostState = {
      name,
      index: i,
      role: i <= s.managers ? 'manager' : 'worker',
      netns,
      vethRoot,
      ip: `${s.subnetBase}.${i + 1}`,
      dir,
      dataDir: join(dir, 'data'),
      socketPath: join(dir, 'swarm.sock'),
      logPath: join(dir, 'daemon.log'),
      command: { argv: [], env: {} },
      process: { state: 'none' },
      blockedIps: [],
    };
    const cmd = opts.command(hostInfo(s, h));
    if (cmd.argv.length === 0) throw new LabError('invalid_argument', `the host command for ${name} is empty`);
    h.command = { argv: [...cmd.argv], env: { ...(cmd.env ?? {}) } };
    hosts.push(h);
  }
  s.hosts.push(...hosts);
  for (let from = 0; from < hosts.length; from += BUILD_CONCURRENCY) {
    await Promise.all(hosts.slice(from, from + BUILD_CONCURRENCY).map((h) => buildHost(s, h)));
  }
}

/** One host's namespace and veth; each thing is recorded (writeState is synchronous) before it is made. */
async function buildHost(s: LabState, h: HostState): Promise<void> {
  s.made.namespaces.push(h.netns);
  writeState(s);
  await ip.netnsAdd(h.netns);
  await ip.linkUp('lo', h.netns);
  await ip.netnsSysctl(h.netns, 'net.ipv4.ip_forward', '1');

  s.made.links.push(h.vethRoot);
  writeState(s);
  await ip.vethAdd(h.vethRoot, h.netns, 'eth0');
  await ip.linkSetMaster(h.vethRoot, s.bridge);
  await ip.linkUp(h.vethRoot);
  await ip.addrAdd('eth0', `${h.ip}/24`, h.netns);
  await ip.linkUp('eth0', h.netns);

  ensureDir(h.dataDir);
}

function hostEnv(s: LabState, h: HostState): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...h.command.env,
    SWARM_SOCKET: h.socketPath,
    SWARM_DATA_DIR: h.dataDir,
    SWARM_HOSTNAME: h.name,
    SWARM_LAB: s.name,
    SWARM_LAB_NODE: h.name,
    SWARM_LAB_IP: h.ip,
  };
}

/** Starts the host's recorded command in its namespace; the caller holds the lab lock and `s` is current. */
async function startHost(s: LabState, h: HostState): Promise<void> {
  assert(!hostAlive(h), `${h.name} is not running when started`);
  // The socket of a process that died is stale: removed so readiness waits for the new one.
  rmSync(h.socketPath, { force: true });
  h.process = { state: 'starting', argv: h.command.argv };
  writeState(s);
  const { file, args } = ip.netnsExecArgv(h.netns, h.command.argv);
  // cwd is the host's dir: a daemon must not pin (or depend on) the directory `lab up` ran in.
  const id = await spawnDetached(file, args, hostEnv(s, h), h.logPath, h.dir);
  h.process = { state: 'running', pid: id.pid, startTime: id.startTime, startedAtMs: Date.now(), argv: h.command.argv };
  writeState(s);
}

function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines - 1).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---- list --------------------------------------------------------------------------------------

export interface LabSummary {
  name: string;
  nodes: number;
  managers: number;
  subnet: string;
  /** up (all hosts run), degraded (some do not), creating, destroying. */
  status: string;
  running: number;
  cluster: LabState['cluster']['state'];
}

export function listLabs(opts: LabOptions = {}): LabSummary[] {
  const root = labRoot(opts.root);
  const out: LabSummary[] = [];
  for (const name of listLabNames(root)) {
    const s = readState(labDir(root, name));
    if (s === null) continue;
    const running = s.hosts.filter(hostAlive).length;
    let status: string = s.phase;
    if (s.phase === 'up') status = running === s.nodes ? 'up' : `degraded (${running}/${s.nodes} running)`;
    if (s.cluster.state === 'failed') status += ', cluster failed';
    out.push({ name, nodes: s.nodes, managers: s.managers, subnet: `${s.subnetBase}.0/24`, status, running, cluster: s.cluster.state });
  }
  return out;
}

// ---- exec --------------------------------------------------------------------------------------

export interface ExecOptions extends LabOptions {
  /** inherit: the command uses this terminal (CLI); pipe: output is captured and returned. */
  stdio?: 'inherit' | 'pipe';
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `argv` inside the host's namespace with SWARM_SOCKET pointing at that host's daemon, so `swarm`
 * there talks to that node. Returns the command's exit code (128 + signal number if it was killed).
 */
export async function execInHost(labName: string, node: string, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  requireRoot();
  if (argv.length === 0) throw new LabError('invalid_argument', 'lab exec needs a command after --');
  const s = loadLab(labName, opts);
  const h = findHost(s, node);
  const env = { ...hostEnv(s, h), ...(opts.env ?? {}) };
  const { file, args } = ip.netnsExecArgv(h.netns, argv);
  if (opts.stdio === 'inherit') {
    return await new Promise<ExecResult>((resolve, reject) => {
      const child = spawn(file, args, { stdio: 'inherit', env });
      child.once('error', reject);
      child.once('close', (code, signal) => {
        const signo = signal === null ? 0 : (signalNumbers[signal] ?? 1);
        resolve({ code: code ?? 128 + signo, stdout: '', stderr: '' });
      });
    });
  }
  const res: RunResult = await run(file, args, { env, allowFailure: true, timeoutMs: opts.timeoutMs ?? 60_000 });
  return res;
}

const signalNumbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };

// ---- kill / restart ----------------------------------------------------------------------------

/** kill -9 of the host's process (only the one the lab recorded, checked by start time). */
export async function killHost(labName: string, node: string, opts: LabOptions = {}): Promise<void> {
  requireRoot();
  const log = defaultLogger(opts);
  const root = labRoot(opts.root);
  await withLock(lockPath(root, labName), async () => {
    const s = loadLab(labName, { root });
    const h = findHost(s, node);
    if (h.process.state !== 'running' || !hostAlive(h)) {
      throw new LabError('not_found', `${labName}/${h.name} is not running (restart it with \`swarm lab restart ${labName}/${h.name}\`)`);
    }
    const id: ProcessIdentity = { pid: h.process.pid, startTime: h.process.startTime };
    signalVerified(id, 'SIGKILL', false);
    if (!(await waitExited(id, 5_000))) throw new LabError('timeout', `${labName}/${h.name}: pid ${id.pid} survived SIGKILL for 5 s`);
    // A machine that dies takes its tasks with it: the daemon's task processes in this host's namespace too.
    for (const pid of await ip.netnsPids(h.netns)) {
      const st = readStat(pid);
      if (st !== null && isSwarmTask(pid)) signalVerified({ pid, startTime: st.startTime }, 'SIGKILL', false);
    }
    h.process = { state: 'killed', pid: id.pid, startTime: id.startTime, killedAtMs: Date.now(), argv: h.process.argv };
    writeState(s);
    log.info({ lab: labName, host: h.name, pid: id.pid }, 'killed');
  });
}

export interface RestartOptions extends LabOptions {
  waitReady?: ((h: HostState, lab: Lab) => Promise<void>) | undefined;
}

/** Starts the host's command again on the same data dir (stopping it first if it still runs). */
export async function restartHost(labName: string, node: string, opts: RestartOptions = {}): Promise<void> {
  requireRoot();
  const root = labRoot(opts.root);
  const h = await withLock(lockPath(root, labName), async () => {
    const s = loadLab(labName, { root });
    const host = findHost(s, node);
    if (host.process.state === 'running' && hostAlive(host)) {
      const id = { pid: host.process.pid, startTime: host.process.startTime };
      if (!(await stopVerified(id, STOP_GRACE_MS, false))) throw new LabError('timeout', `${labName}/${host.name}: pid ${id.pid} would not stop`);
    }
    await startHost(s, host);
    return host;
  });
  await (opts.waitReady ?? defaultReady)(h, new Lab(labName, { ...opts, root }));
}

// ---- partition / heal --------------------------------------------------------------------------

/**
 * Drops underlay traffic between two groups of hosts, both ways, with nft rules inside each host's
 * namespace. Without `groupB` the other group is every host not in `groupA`. Adds to earlier partitions.
 */
export async function partitionLab(labName: string, groupA: readonly string[], groupB: readonly string[] | undefined, opts: LabOptions = {}): Promise<void> {
  requireRoot();
  await nft.requireNft();
  const root = labRoot(opts.root);
  await withLock(lockPath(root, labName), async () => {
    const s = loadLab(labName, { root });
    const a = groupA.map((n) => findHost(s, n));
    const b = groupB === undefined || groupB.length === 0 ? s.hosts.filter((h) => !a.includes(h)) : groupB.map((n) => findHost(s, n));
    if (a.length === 0 || b.length === 0) throw new LabError('invalid_argument', 'a partition needs two non-empty groups of hosts');
    const both = a.filter((h) => b.includes(h));
    if (both.length > 0) throw new LabError('invalid_argument', `${both.map((h) => h.name).join(', ')} cannot be on both sides of a partition`);
    for (const h of a) h.blockedIps = [...new Set([...h.blockedIps, ...b.map((x) => x.ip)])].sort();
    for (const h of b) h.blockedIps = [...new Set([...h.blockedIps, ...a.map((x) => x.ip)])].sort();
    writeState(s);
    for (const h of [...a, ...b]) await nft.setBlockedPeers(h.netns, h.blockedIps);
    defaultLogger(opts).info({ lab: labName, a: a.map((h) => h.name), b: b.map((h) => h.name) }, 'partitioned');
  });
}

/** Removes every partition rule the lab added. */
export async function healLab(labName: string, opts: LabOptions = {}): Promise<void> {
  requireRoot();
  const root = labRoot(opts.root);
  await withLock(lockPath(root, labName), async () => {
    const s = loadLab(labName, { root });
    for (const h of s.hosts) h.blockedIps = [];
    writeState(s);
    for (const h of s.hosts) {
      if (await ip.netnsExists(h.netns)) await nft.deletePartitionTable(h.netns);
    }
  });
}

// ---- destroy -----------------------------------------------------------------------------------

export interface DownReport {
  found: boolean;
  killedPids: number[];
  namespaces: string[];
  links: string[];
  /** Processes still in a lab namespace that the lab did not start (left alone, and reported). */
  strangers: number[];
}

/**
 * Removes every process, namespace, link and path the state file records, and nothing else. Works from
 * the state file alone (after the lab's creator crashed) and is idempotent.
 */
export async function destroyLab(labName: string, opts: LabOptions = {}): Promise<DownReport> {
  requireRoot();
  const log = defaultLogger(opts);
  const root = labRoot(opts.root);
  const report: DownReport = { found: false, killedPids: [], namespaces: [], links: [], strangers: [] };
  await withLock(lockPath(root, labName), async () => {
    const s = readState(labDir(root, labName));
    if (s === null) return;
    report.found = true;
    s.phase = 'destroying';
    writeState(s);

    const present = new Set(await ip.netnsList());
    for (const h of s.hosts) {
      const p = h.process;
      if ((p.state === 'running' || p.state === 'killed') && (await stopVerified({ pid: p.pid, startTime: p.startTime }, STOP_GRACE_MS, true))) {
        if (p.state === 'running') report.killedPids.push(p.pid);
      }
      if (!present.has(h.netns)) continue;
      // Processes left in the namespace: a daemon spawned just before a crash (state 'starting'), or
      // helpers of a killed daemon still in its process group. Anything else is not ours.
      const ownGroups = p.state === 'running' || p.state === 'killed' ? [p.pid] : [];
      for (const pid of await ip.netnsPids(h.netns)) {
        const st = readStat(pid);
        const argv = cmdline(pid);
        // A container's monitor (conmon) runs in a session of its own; its arguments name the host's data dir.
        const monitor = argv !== null && argv.some((a) => a.startsWith(`${h.dataDir}/`));
        const ours =
          (st !== null && ownGroups.includes(st.pgrp)) || (p.state === 'starting' && argv !== null && sameArgv(argv, p.argv)) || isSwarmTask(pid) || monitor;
        if (ours && st !== null && (await stopVerified({ pid, startTime: st.startTime }, STOP_GRACE_MS, false))) report.killedPids.push(pid);
        else if (!ours) report.strangers.push(pid);
      }
    }
    for (const id of registryProcesses(s)) if (await stopVerified(id, STOP_GRACE_MS, true)) report.killedPids.push(id.pid);
    if (report.strangers.length > 0) {
      log.warn({ lab: labName, pids: report.strangers }, 'processes the lab did not start remain in its namespaces; they keep those namespaces alive until they exit');
    }
    // Every removal is tried even when one fails; the state file stays until all succeeded, so a later
    // `down` can finish the job.
    const failures: string[] = [];
    const attempt = async (what: string, fn: () => Promise<void>): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        failures.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    // Containers the hosts' daemons ran (runc keeps them under the data dir): gone before their files are.
    for (const h of s.hosts) {
      await attempt(`containers of ${h.name}`, () => destroyRuncRoot(join(h.dataDir, 'runc'), log));
      // Their network namespaces are files bind-mounted under the data dir: let go of them before it is removed.
      await attempt(`network namespaces of ${h.name}`, () => destroyNetState(join(h.dataDir, 'net'), log));
    }
    for (const ns of [...s.made.namespaces].reverse()) {
      await attempt(`namespace ${ns}`, async () => {
        if (await ip.netnsDelete(ns)) report.namespaces.push(ns);
      });
    }
    for (const link of [...s.made.links].reverse()) {
      await attempt(`link ${link}`, async () => {
        if (await ip.linkDelete(link)) report.links.push(link);
      });
    }
    if (failures.length > 0) {
      throw new LabError('command_failed', `lab ${labName}: could not remove everything (state kept in ${s.dir}; run \`swarm lab down ${labName}\` again):\n${failures.join('\n')}`);
    }
    for (const path of [...s.made.paths].reverse()) {
      assert(path.startsWith(root + '/'), `lab path ${path} lies under the lab root ${root}`);
      rmSync(path, { recursive: true, force: true });
    }
  });
  log.info({ lab: labName, ...report }, report.found ? 'lab removed' : 'no such lab: nothing to remove');
  return report;
}

/** The lab registry's process: recorded, or (a creator that died right after spawning it) found by its argv. */
function registryProcesses(s: LabState): ProcessIdentity[] {
  const reg = s.registry?.process;
  if (reg === undefined) return [];
  if (reg.state === 'running') return [{ pid: reg.pid, startTime: reg.startTime }];
  const argv = [REGISTRY_BIN, 'serve', registryPaths(s.dir).config];
  const found: ProcessIdentity[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const st = readStat(pid);
    const args = cmdline(pid);
    if (st !== null && args !== null && sameArgv(args, argv)) found.push({ pid, startTime: st.startTime });
  }
  return found;
}

function sameArgv(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function socketAccepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Polls until the host's unix socket accepts a connection while its process lives: the readiness of a daemon. */
export async function waitForSocket(h: HostState, timeoutMs = DEFAULT_READY_TIMEOUT_MS): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (existsSync(h.socketPath) && (await socketAccepts(h.socketPath))) return;
    if (h.process.state === 'running' && !isAlive({ pid: h.process.pid, startTime: h.process.startTime })) {
      throw new LabError('command_failed', `${h.name}: its daemon exited before opening ${h.socketPath}; log ${h.logPath}:\n${tail(h.logPath)}`);
    }
    if (Date.now() > end) throw new LabError('timeout', `${h.name}: no socket at ${h.socketPath} after ${timeoutMs} ms; log ${h.logPath}:\n${tail(h.logPath)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
