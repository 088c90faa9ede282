// The membership benchmark (`scripts/bench membership`): on a 10-node lab of real daemons, the time from kill -9
// of a worker to Down (leader's gossip, leader's store, every node's gossip), and false suspicions and Downs over
// a soak with one worker's CPU saturated. Owns its lab (benchmem) from creation to removal, also on SIGINT.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { ApiClient, type MemberDocument, type NodeDocument } from '@swarm/api';
import { silentLogger } from '@swarm/wire';
import { createLab, destroyLab, hostAlive, killHost, loadLab, requireRoot, restartHost, swarmInitJoin, waitForSocket, type HostState } from '../src/index.js';
import { cleanup, cleanupOnSignals, daemonCommand, errText, intEnv, load1, max, median, ms, onCleanup, REPO_ROOT, say, sleep, SWARM_BIN, SWARM_MAIN, writeDocBlock } from './kit.js';

// ---- settings ----------------------------------------------------------------------------------

const LAB_NAME = 'benchmem';
/** Apart from the lab tests' subnets (10.250.K, 10.251.37): benchmarks may run beside them. */
const SUBNET = '10.251.40.0/24';
const NODES = 10;
const MANAGERS = 3;
const DETECT_POLL_MS = 50;
const SOAK_POLL_MS = 500;
const STORE_POLL_MS = 100;
/** A trial whose kill is not Down everywhere by then is recorded as not detected (and the run goes on). */
const DETECT_DEADLINE_MS = 30_000;
const STEADY_DEADLINE_MS = 180_000;
/** Short enough that one stuck daemon does not stall a 50 ms poll round for long. */
const API_TIMEOUT_MS = 5_000;
const DOC_START = '<!-- bench:membership:start -->';
const DOC_END = '<!-- bench:membership:end -->';
/** moby/swarmkit manager/dispatcher/dispatcher.go: DefaultHeartBeatPeriod 5 s, defaultGracePeriodMultiplier 3 (4 in early versions). */
const DOCKER_SENTENCE =
  "SwarmKit's dispatcher defaults to a 5 s heartbeat period and a grace multiplier of 3 to 4 " +
  '(`DefaultHeartBeatPeriod`, `defaultGracePeriodMultiplier` in moby/swarmkit `manager/dispatcher/dispatcher.go`), ' +
  'so Docker Swarm marks a dead node Down only after 15 to 20 s.';


interface BenchConfig {
  trials: number;
  soakSeconds: number;
  /** Busy loops pinned with the saturated daemon onto one CPU. */
  cpuHogs: number;
  /** The same soak without saturation first, so the saturated numbers have something to be compared with. */
  baselineSeconds: number;
  /** null: print only, do not write the doc. */
  docPath: string | null;
  command: string;
}

function readConfig(): BenchConfig {
  const doc = process.env['BENCH_DOC'] ?? `${REPO_ROOT}/docs/benchmarks.md`;
  // The command line as typed: the knobs that were set, then the script.
  const knobs = ['BENCH_TRIALS', 'BENCH_SOAK_SECONDS', 'BENCH_BASELINE_SECONDS', 'BENCH_CPU_HOGS', 'BENCH_DOC'].flatMap((k) => {
    const v = process.env[k];
    return v === undefined || v === '' ? [] : [`${k}=${v}`];
  });
  return {
    trials: intEnv('BENCH_TRIALS', 10, 1),
    soakSeconds: intEnv('BENCH_SOAK_SECONDS', 600, 0),
    cpuHogs: intEnv('BENCH_CPU_HOGS', 4, 1),
    baselineSeconds: intEnv('BENCH_BASELINE_SECONDS', 60, 0),
    docPath: doc === '-' ? null : doc,
    command: [...knobs, 'scripts/bench membership'].join(' '),
  };
}

/** Runs a tool by argv (no shell), returns stdout; throws with its stderr on a non-zero exit. */
function tool(file: string, args: readonly string[]): string {
  return execFileSync(file, [...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

cleanupOnSignals('removing the lab and the busy loops');

// ---- the lab -----------------------------------------------------------------------------------

interface Cluster {
  hosts: HostState[];
  api: Map<string, ApiClient>;
}


async function upLab(): Promise<Cluster> {
  const logger = silentLogger();
  const stale = (() => {
    try {
      return loadLab(LAB_NAME);
    } catch {
      return null;
    }
  })();
  if (stale !== null) {
    say(`== removing lab ${LAB_NAME} left by an earlier run`);
    await destroyLab(LAB_NAME, { logger });
  }
  onCleanup(`remove lab ${LAB_NAME}`, async () => {
    say(`== removing lab ${LAB_NAME}`);
    const r = await destroyLab(LAB_NAME, { logger });
    if (r.strangers.length > 0) say(`   processes the lab did not start remain in its namespaces: ${r.strangers.join(' ')}`);
  });
  // Runs before the lab's removal (cleanups run last-in first-out): the daemon logs outlive the lab.
  const keep = `/var/tmp/bench-membership-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  onCleanup('keep the daemon logs', () => {
    const s = loadLab(LAB_NAME);
    mkdirSync(keep, { recursive: true });
    for (const h of s.hosts) if (existsSync(h.logPath)) copyFileSync(h.logPath, `${keep}/${h.name}.log`);
    say(`   daemon logs kept in ${keep}`);
  });
  await createLab({
    name: LAB_NAME,
    nodes: NODES,
    managers: MANAGERS,
    subnet: SUBNET,
    logger,
    command: daemonCommand,
    waitReady: (h) => waitForSocket(h),
    cluster: swarmInitJoin({ swarmArgv: [process.execPath, SWARM_BIN] }),
  });
  const hosts = loadLab(LAB_NAME).hosts;
  const api = new Map(hosts.map((h) => [h.name, new ApiClient({ socketPath: h.socketPath, timeoutMs: API_TIMEOUT_MS })]));
  return { hosts, api };
}

function client(c: Cluster, host: string): ApiClient {
  const a = c.api.get(host);
  if (a === undefined) throw new Error(`no API client for ${host}`);
  return a;
}

/** The Raft leader's hostname, as the first manager that answers sees it. */
async function findLeader(c: Cluster): Promise<string> {
  let last: unknown = null;
  for (const m of c.hosts.filter((h) => h.role === 'manager')) {
    try {
      const nodes = await client(c, m.name).listNodes();
      const leader = nodes.find((n) => n.ManagerStatus?.Leader === true);
      if (leader !== undefined) return leader.Description.Hostname;
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`no manager names a leader${last === null ? '' : ` (last error: ${errText(last)})`}`);
}

/** Every node's gossip shows every other node alive, and the leader's store shows all Ready. Returns the leader. */
async function waitSteady(c: Cluster, what: string): Promise<string> {
  const end = Date.now() + STEADY_DEADLINE_MS;
  let why = 'not checked yet';
  for (;;) {
    try {
      why = await steadyProblem(c);
      if (why === '') return await findLeader(c);
    } catch (e) {
      why = errText(e);
    }
    if (Date.now() > end) throw new Error(`${what}: not steady after ${STEADY_DEADLINE_MS} ms: ${why}`);
    await sleep(250);
  }
}

async function steadyProblem(c: Cluster): Promise<string> {
  const names = c.hosts.map((h) => h.name);
  const gone = loadLab(LAB_NAME).hosts.filter((h) => !hostAlive(h));
  if (gone.length > 0) return `the daemon of ${gone.map((h) => h.name).join(', ')} is not running (see ${gone[0]?.logPath ?? 'its log'})`;
  for (const h of c.hosts) {
    const members = await client(c, h.name).listMembers();
    for (const other of names) {
      if (other === h.name) continue;
      if (!members.some((m) => m.Hostname === other && m.State === 'alive')) return `${h.name} does not see ${other} alive`;
    }
  }
  const leader = await findLeader(c);
  const nodes = await client(c, leader).listNodes();
  for (const name of names) {
    const n = nodes.find((x) => x.Description.Hostname === name);
    if (n?.Status.State !== 'ready') return `the store has ${name} ${n?.Status.State ?? 'missing'}`;
  }
  return '';
}

// ---- daemon logs: the exact time each daemon changed its view of a member ----------------------

interface MemberLogEvent {
  observer: string;
  timeMs: number;
  event: string;
  member: string;
  hostname: string;
  incarnation: number;
}

function logSize(path: string): number {
  if (!existsSync(path)) return 0;
  const fd = openSync(path, 'r');
  try {
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}

/** The pino JSON lines the host's daemon logged after byte `from` of its log whose msg is `msg`. */
function logRecords(h: HostState, from: number, msg: string): Array<Record<string, unknown>> {
  if (!existsSync(h.logPath)) return [];
  const fd = openSync(h.logPath, 'r');
  let text: string;
  try {
    const size = fstatSync(fd).size;
    if (size <= from) return [];
    const buf = Buffer.alloc(size - from);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, from + got);
      if (n === 0) break;
      got += n;
    }
    text = buf.subarray(0, got).toString('utf8');
  } finally {
    closeSync(fd);
  }
  const out: Array<Record<string, unknown>> = [];
  const needle = JSON.stringify(msg);
  for (const line of text.split('\n')) {
    if (!line.includes(needle)) continue;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      continue; // a line cut at the end of the file, or not pino's
    }
    if (typeof o !== 'object' || o === null) continue;
    const r = o as Record<string, unknown>;
    if (r['msg'] === msg && typeof r['time'] === 'number') out.push(r);
  }
  return out;
}

/** The "membership change" lines (gossip's every state change of a member) after byte `from` of the host's log. */
function memberEvents(h: HostState, from: number): MemberLogEvent[] {
  const out: MemberLogEvent[] = [];
  for (const r of logRecords(h, from, 'membership change')) {
    if (typeof r['time'] !== 'number' || typeof r['event'] !== 'string' || typeof r['member'] !== 'string') continue;
    out.push({
      observer: h.name,
      timeMs: r['time'],
      event: r['event'],
      member: r['member'],
      hostname: typeof r['hostname'] === 'string' ? r['hostname'] : '?',
      incarnation: typeof r['incarnation'] === 'number' ? r['incarnation'] : -1,
    });
  }
  return out;
}

// ---- detection trials --------------------------------------------------------------------------

type TimeSource = 'SinceMs' | 'log' | 'poll';

/** When one survivor first showed the victim in a state, from the best source available. */
interface Seen {
  atMs: number;
  source: TimeSource;
}

interface TrialResult {
  trial: number;
  victim: string;
  leader: string;
  loadAvg1: number;
  /** ms after the kill; null = not seen before the deadline. */
  firstSuspectMs: number | null;
  leaderGossipDownMs: number | null;
  leaderStoreDownMs: number | null;
  everyNodeDownMs: number | null;
  /** Survivor -> ms to gossip dead on it. */
  perNodeDownMs: Record<string, number | null>;
  sources: Record<TimeSource, number>;
  /** Why a dead observation fell back to the poll time (no log line, or a log line later than the poll). */
  pollReasons: string[];
  /** SinceMs values that put the change outside [kill, answer]: unusable as a change time. */
  sinceMsRejected: number;
  /** One SinceMs the daemons served for the dead victim, as served (for the report). */
  sinceMsSample: number | null;
  /** Restart of the victim until every node sees it alive and the store has it Ready again. */
  rejoinMs: number;
}

/** The change time SinceMs implies, if it lies between the kill and the answer (the daemon serves SinceMs = now - change). */
function sinceTime(m: MemberDocument, t0: number, answeredMs: number): number | null {
  const at = answeredMs - m.SinceMs;
  return Number.isFinite(at) && at >= t0 - 5 && at <= answeredMs ? at : null;
}

interface Observation {
  pollMs: number;
  sinceAt: number | null;
  sinceMs: number;
}

async function detectionTrial(c: Cluster, trial: number, victim: string): Promise<TrialResult> {
  const leader = await findLeader(c);
  const survivors = c.hosts.filter((h) => h.name !== victim);
  const leaderView = await client(c, leader).listMembers();
  const victimPeer = leaderView.find((m) => m.Hostname === victim && m.State === 'alive')?.PeerID;
  if (victimPeer === undefined) throw new Error(`trial ${trial}: the leader ${leader} does not see ${victim} alive`);
  const offsets = new Map(survivors.map((h) => [h.name, logSize(h.logPath)]));
  const loadAvg1 = load1();

  const suspectObs = new Map<string, Observation>();
  const deadObs = new Map<string, Observation>();
  const store: { downPollMs: number | null } = { downPollMs: null };

  const t0 = Date.now();
  await killHost(LAB_NAME, victim, { logger: silentLogger() });
  const end = t0 + DETECT_DEADLINE_MS;
  for (;;) {
    const roundStart = Date.now();
    await Promise.all([
      ...survivors
        .filter((h) => !deadObs.has(h.name))
        .map(async (h) => {
          let members: MemberDocument[];
          try {
            members = await client(c, h.name).listMembers();
          } catch {
            return; // counted as not seen yet; the next round asks again
          }
          const answered = Date.now();
          const m = members.find((x) => x.PeerID === victimPeer);
          if (m === undefined) return;
          const obs = { pollMs: answered, sinceAt: sinceTime(m, t0, answered), sinceMs: m.SinceMs };
          if (m.State === 'suspect' && !suspectObs.has(h.name)) suspectObs.set(h.name, obs);
          if (m.State === 'dead' || m.State === 'left') deadObs.set(h.name, obs);
        }),
      (async () => {
        if (store.downPollMs !== null) return;
        try {
          const nodes = await client(c, leader).listNodes();
          if (nodes.find((n) => n.Description.Hostname === victim)?.Status.State === 'down') store.downPollMs = Date.now();
        } catch {
          // a slow or changing leader: asked again next round
        }
      })(),
    ]);
    if (deadObs.size === survivors.length && store.downPollMs !== null) break;
    if (Date.now() > end) break;
    await sleep(Math.max(0, roundStart + DETECT_POLL_MS - Date.now()));
  }

  // The daemons' own log lines give the change time to the millisecond where SinceMs does not.
  const events = survivors.flatMap((h) => memberEvents(h, offsets.get(h.name) ?? 0)).filter((e) => e.member === victimPeer && e.timeMs >= t0);
  const firstEvent = (observer: string, kinds: readonly string[]): number | null => {
    const times = events.filter((e) => e.observer === observer && kinds.includes(e.event)).map((e) => e.timeMs);
    return times.length === 0 ? null : Math.min(...times);
  };
  const sources: Record<TimeSource, number> = { SinceMs: 0, log: 0, poll: 0 };
  const pollReasons: string[] = [];
  let sinceMsRejected = 0;
  const resolve = (observer: string, obs: Observation | undefined, kinds: readonly string[]): Seen | null => {
    const logged = firstEvent(observer, kinds);
    if (obs === undefined) return logged === null ? null : { atMs: logged, source: 'log' };
    if (obs.sinceAt !== null) return { atMs: obs.sinceAt, source: 'SinceMs' };
    if (logged !== null && logged <= obs.pollMs) return { atMs: logged, source: 'log' };
    if (kinds.includes('member-dead')) {
      pollReasons.push(`${observer}: ${logged === null ? 'no log line' : `log line ${logged - obs.pollMs} ms after the poll`} (poll at ${obs.pollMs - t0} ms)`);
    }
    return { atMs: obs.pollMs, source: 'poll' };
  };

  const perNodeDownMs: Record<string, number | null> = {};
  const suspectTimes: number[] = [];
  for (const h of survivors) {
    const obs = deadObs.get(h.name);
    if (obs !== undefined && obs.sinceAt === null) sinceMsRejected++;
    const dead = resolve(h.name, obs, ['member-dead', 'member-left']);
    if (dead !== null) sources[dead.source]++;
    perNodeDownMs[h.name] = dead === null ? null : dead.atMs - t0;
    // A survivor may go from alive to dead between two polls; its log still has the suspect line.
    const sus = resolve(h.name, suspectObs.get(h.name), ['member-suspect']);
    if (sus !== null) suspectTimes.push(sus.atMs - t0);
  }
  const downs = Object.values(perNodeDownMs);
  const everyNodeDownMs = downs.every((d): d is number => d !== null) ? Math.max(...downs) : null;

  const restartAt = Date.now();
  await restartHost(LAB_NAME, victim, { logger: silentLogger(), waitReady: (h) => waitForSocket(h) });
  await waitSteady(c, `${victim} back after trial ${trial}`);
  return {
    trial,
    victim,
    leader,
    loadAvg1,
    firstSuspectMs: suspectTimes.length === 0 ? null : Math.min(...suspectTimes),
    leaderGossipDownMs: perNodeDownMs[leader] ?? null,
    leaderStoreDownMs: store.downPollMs === null ? null : store.downPollMs - t0,
    everyNodeDownMs,
    perNodeDownMs,
    sources,
    pollReasons,
    sinceMsRejected,
    sinceMsSample: [...deadObs.values()][0]?.sinceMs ?? null,
    rejoinMs: Date.now() - restartAt,
  };
}

// ---- soak with one CPU saturated ---------------------------------------------------------------

/** All CPUs' jiffies from /proc/stat: total and idle (idle + iowait). */
function cpuJiffies(): { total: number; idle: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith('cpu ')) ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  return { total, idle: (f[3] ?? 0) + (f[4] ?? 0) };
}

/** Sum over the process's threads of /proc/PID/task/TID/schedstat: ns on a CPU, ns waiting for one. */
function schedstat(pid: number): { runNs: number; waitNs: number } {
  let runNs = 0;
  let waitNs = 0;
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return { runNs, waitNs };
  }
  for (const tid of tids) {
    try {
      const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
      runNs += run ?? 0;
      waitNs += wait ?? 0;
    } catch {
      // the thread exited between readdir and read
    }
  }
  return { runNs, waitNs };
}

interface CpuShare {
  host: string;
  /** % of one core the daemon used. */
  cpuPct: number;
  /** ms per second its threads spent runnable but waiting for a CPU. */
  waitMsPerS: number;
}

function cpuShare(host: HostState, pid: number, before: { runNs: number; waitNs: number }, wallMs: number): CpuShare | null {
  if (!hostAlive(host)) return null; // its threads' counters went with it
  const after = schedstat(pid);
  return {
    host: host.name,
    cpuPct: Math.round(((after.runNs - before.runNs) / 1e6 / wallMs) * 1000) / 10,
    waitMsPerS: Math.round(((after.waitNs - before.waitNs) / 1e6 / (wallMs / 1000)) * 10) / 10,
  };
}

interface DaemonExit {
  host: string;
  /** Seconds into the soak: last seen running, first seen gone (polled each round). */
  lastAliveS: number;
  goneS: number;
  logTail: string[];
}

interface Transition {
  atS: number;
  observer: string;
  subject: string;
  from: string;
  to: string;
}

interface SoakResult {
  seconds: number;
  /** The daemon pinned with the busy loops onto `cpu`; null for the baseline. */
  saturated: string | null;
  cpu: number;
  hogs: number;
  rounds: number;
  storeDowns: number;
  polledSuspects: number;
  polledDeads: number;
  transitions: Transition[];
  /** From the daemons' logs: every suspect/dead event (observer x subject), and distinct suspicions (subject, incarnation). */
  loggedSuspectEvents: number;
  loggedDeadEvents: number;
  distinctSuspicions: number;
  suspicionsBySubject: Record<string, number>;
  /** The node that logged each distinct suspicion first: the one that raised it, give or take a gossip hop. */
  suspicionsByFirstLogger: Record<string, number>;
  /** Sum of the members' incarnation rises: a member raises its incarnation by one per suspicion it refutes. */
  refutations: number;
  leaderChanges: number;
  apiErrors: Record<string, number>;
  slowestAnswerMs: Record<string, number>;
  saturatedShare: CpuShare | null;
  referenceShare: CpuShare | null;
  /** Daemons whose process exited during the soak: Downs of them are not false. */
  exits: DaemonExit[];
  /** Store Downs and gossip dead events of a node whose daemon had exited (true, not false). */
  trueStoreDowns: number;
  trueDeadEvents: number;
  /** False dead declarations: distinct (subject, incarnation) among the false dead events. */
  falseDeadDeclarations: number;
  /** Node status writes the leader loop logged ("node status from gossip written", summed updates), any manager. */
  statusWrites: number;
  referenceHost: string;
  loadAvg1Mean: number;
  loadAvg1Max: number;
  /** Share of all CPUs' time not idle during the soak (/proc/stat), everything on the machine included. */
  machineBusyPct: number;
}

function runningPid(h: HostState): number {
  if (h.process.state !== 'running') throw new Error(`${h.name} is not running (state ${h.process.state})`);
  const argv = readFileSync(`/proc/${h.process.pid}/cmdline`, 'utf8').split('\0');
  if (!argv.includes('daemon')) throw new Error(`pid ${h.process.pid} of ${h.name} is not a swarm daemon: ${argv.join(' ')}`);
  return h.process.pid;
}

interface Saturation {
  hogs: ChildProcess[];
  /** Stops the busy loops (by their own pids) and lets the daemon use every CPU again; idempotent. */
  release: () => void;
}

/** Pins the daemon (all its threads) and `n` busy loops onto one CPU, so the daemon really waits for it. */
function saturate(pid: number, cpu: number, n: number): Saturation {
  const all = `0-${availableParallelism() - 1}`;
  const hogs: ChildProcess[] = [];
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    for (const h of hogs) if (h.exitCode === null && h.signalCode === null) h.kill('SIGKILL');
    try {
      tool('taskset', ['-a', '-p', '-c', all, String(pid)]);
    } catch {
      // the daemon is gone: nothing to unpin
    }
  };
  // Registered before anything is started, so an interrupt in between still undoes what was done.
  const forget = onCleanup('stop the busy loops and unpin the daemon', release);
  tool('taskset', ['-a', '-p', '-c', String(cpu), String(pid)]);
  for (let i = 0; i < n; i++) {
    const h = spawn('taskset', ['-c', String(cpu), 'sh', '-c', 'while :; do :; done'], { stdio: 'ignore' });
    h.once('error', (e) => say(`busy loop ${i} failed: ${e.message}`));
    hogs.push(h);
  }
  return {
    hogs,
    release: () => {
      release();
      forget();
    },
  };
}

interface SoakPlan {
  seconds: number;
  /** The worker whose daemon is pinned with the busy loops; null: nothing is saturated (baseline). */
  saturated: string | null;
  hogs: number;
  /** An unpinned worker whose CPU share is reported beside the saturated one's. */
  reference: string;
}

/** Polls every node's gossip view and the leader's store for `plan.seconds`, counting every move away from alive/ready. */
async function soak(c: Cluster, plan: SoakPlan): Promise<SoakResult> {
  const hosts = loadLab(LAB_NAME).hosts; // pids as of now: the trials restarted some daemons
  const byName = (name: string): HostState => {
    const h = hosts.find((x) => x.name === name);
    if (h === undefined) throw new Error(`lab ${LAB_NAME} has no host ${name}`);
    return h;
  };
  const refPid = runningPid(byName(plan.reference));
  const pid = plan.saturated === null ? null : runningPid(byName(plan.saturated));
  const cpu = availableParallelism() - 1;
  let leader = await waitSteady(c, 'before the soak');
  const offsets = new Map(c.hosts.map((h) => [h.name, logSize(h.logPath)]));

  let sat: Saturation | null = null;
  if (pid !== null) {
    sat = saturate(pid, cpu, plan.hogs);
    say(`   ${plan.saturated} (pid ${pid}) and ${plan.hogs} busy loops (pids ${sat.hogs.map((h) => h.pid ?? '?').join(' ')}) pinned to CPU ${cpu}`);
  }
  const start = Date.now();
  const satBefore = pid === null ? null : schedstat(pid);
  const refBefore = schedstat(refPid);
  const jiffiesBefore = cpuJiffies();

  const gossip = new Map<string, Map<string, string>>(); // observer -> peer -> state
  const incarnations = new Map<string, { first: number; last: number }>(); // peer -> incarnation seen
  const store = new Map<string, string>(); // hostname -> Status.State
  const transitions: Transition[] = [];
  const apiErrors: Record<string, number> = {};
  const slowest: Record<string, number> = {};
  const loads: number[] = [];
  let storeDowns = 0;
  let polledSuspects = 0;
  let polledDeads = 0;
  let leaderChanges = 0;
  let rounds = 0;
  const end = start + plan.seconds * 1000;
  const fail = (host: string): void => {
    apiErrors[host] = (apiErrors[host] ?? 0) + 1;
  };
  const timed = async <T>(host: string, f: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    const v = await f();
    slowest[host] = Math.max(slowest[host] ?? 0, Date.now() - t);
    return v;
  };
  const note = (observer: string, subject: string, from: string, to: string): void => {
    transitions.push({ atS: Math.round((Date.now() - start) / 100) / 10, observer, subject, from, to });
  };
  // A daemon that exits is really down: its Downs are true ones, and its log says why it went.
  const lastAlive = new Map(hosts.map((h) => [h.name, start]));
  const exits: DaemonExit[] = [];
  const checkAlive = (): void => {
    const now = Date.now();
    for (const h of hosts) {
      if (exits.some((e) => e.host === h.name)) continue;
      if (hostAlive(h)) {
        lastAlive.set(h.name, now);
        continue;
      }
      const tail = existsSync(h.logPath) ? readFileSync(h.logPath, 'utf8').trimEnd().split('\n').slice(-30) : [];
      const e = { host: h.name, lastAliveS: Math.round(((lastAlive.get(h.name) ?? start) - start) / 100) / 10, goneS: Math.round((now - start) / 100) / 10, logTail: tail };
      exits.push(e);
      say(`   ${h.name}'s daemon (pid ${h.process.state === 'running' ? h.process.pid : '?'}) exited ${e.goneS} s into the soak; the end of its log:`);
      const errAt = tail.findIndex((l) => /^\w*Error\b/.test(l));
      for (const line of errAt >= 0 ? tail.slice(errAt, errAt + 3) : tail.slice(-5)) say(`     ${line.slice(0, 400)}`);
    }
  };
  /** Whether `subject`'s daemon had already exited at `atMs` (it was not seen alive after). */
  const exitedBy = (subject: string, atMs: number): boolean => exits.some((e) => e.host === subject) && atMs > (lastAlive.get(subject) ?? start);
  let trueStoreDowns = 0;

  const membersRound = async (): Promise<void> => {
    await Promise.all(
      c.hosts.map(async (h) => {
        let members: MemberDocument[];
        try {
          members = await timed(h.name, () => client(c, h.name).listMembers());
        } catch {
          fail(h.name);
          return;
        }
        let view = gossip.get(h.name);
        if (view === undefined) {
          view = new Map();
          gossip.set(h.name, view);
        }
        for (const m of members) {
          const inc = incarnations.get(m.PeerID);
          if (inc === undefined) incarnations.set(m.PeerID, { first: m.Incarnation, last: m.Incarnation });
          else inc.last = Math.max(inc.last, m.Incarnation);
          const prev = view.get(m.PeerID);
          view.set(m.PeerID, m.State);
          if (prev === undefined || prev === m.State) continue;
          note(h.name, m.Hostname, prev, m.State);
          if (m.State === 'suspect') polledSuspects++;
          if (m.State === 'dead' || m.State === 'left') polledDeads++;
        }
      }),
    );
  };
  const storeRound = async (): Promise<void> => {
    let nodes: NodeDocument[];
    try {
      nodes = await timed(leader, () => client(c, leader).listNodes());
    } catch {
      fail(leader);
      try {
        const now = await findLeader(c);
        if (now !== leader) leaderChanges++;
        leader = now;
      } catch {
        // no leader right now: asked again next round
      }
      return;
    }
    const named = nodes.find((n) => n.ManagerStatus?.Leader === true)?.Description.Hostname;
    if (named !== undefined && named !== leader) {
      leaderChanges++;
      leader = named;
    }
    for (const n of nodes) {
      const prev = store.get(n.Description.Hostname);
      store.set(n.Description.Hostname, n.Status.State);
      if (prev === undefined || prev === n.Status.State) continue;
      note('store', n.Description.Hostname, prev, n.Status.State);
      if (n.Status.State === 'down' && exitedBy(n.Description.Hostname, Date.now())) trueStoreDowns++;
      else if (n.Status.State === 'down') storeDowns++;
    }
  };
  // Two loops: the store is polled faster, since a false Down the leader writes is undone one leader-loop pass
  // (100 ms) after the refutation, and a 500 ms poll would miss most of them.
  const every = async (periodMs: number, body: () => Promise<void>): Promise<void> => {
    while (Date.now() < end) {
      const roundStart = Date.now();
      await body();
      await sleep(Math.max(0, roundStart + periodMs - Date.now()));
    }
  };

  try {
    await Promise.all([
      every(SOAK_POLL_MS, async () => {
        rounds++;
        if (rounds % 20 === 1) loads.push(load1());
        checkAlive();
        await membersRound();
        if (rounds % 120 === 0) {
          say(`   soak: ${Math.round((end - Date.now()) / 1000)} s left; so far ${storeDowns} false store Downs, ${polledSuspects} suspects and ${polledDeads} deads seen by polling, ${exits.length} daemons exited`);
        }
      }),
      every(STORE_POLL_MS, storeRound),
    ]);
  } finally {
    sat?.release();
  }
  checkAlive();
  const wallMs = Date.now() - start;
  const saturatedShare = pid === null || satBefore === null || plan.saturated === null ? null : cpuShare(byName(plan.saturated), pid, satBefore, wallMs);
  const referenceShare = cpuShare(byName(plan.reference), refPid, refBefore, wallMs);
  const jiffiesAfter = cpuJiffies();
  const dTotal = jiffiesAfter.total - jiffiesBefore.total;
  const machineBusyPct = dTotal <= 0 ? 0 : Math.round((1 - (jiffiesAfter.idle - jiffiesBefore.idle) / dTotal) * 1000) / 10;

  const events = c.hosts.flatMap((h) => memberEvents(h, offsets.get(h.name) ?? 0)).filter((e) => e.timeMs >= start && e.timeMs <= start + wallMs);
  const suspects = events.filter((e) => e.event === 'member-suspect');
  const distinct = new Map<string, MemberLogEvent>(); // subject/incarnation -> its earliest log event
  for (const e of suspects) {
    const key = `${e.member}/${e.incarnation}`;
    const seen = distinct.get(key);
    if (seen === undefined || e.timeMs < seen.timeMs) distinct.set(key, e);
  }
  const bySubject: Record<string, number> = {};
  const byFirst: Record<string, number> = {};
  for (const e of distinct.values()) {
    bySubject[e.hostname] = (bySubject[e.hostname] ?? 0) + 1;
    byFirst[e.observer] = (byFirst[e.observer] ?? 0) + 1;
  }
  const refutations = [...incarnations.values()].reduce((acc, i) => acc + (i.last - i.first), 0);
  const deads = events.filter((e) => e.event === 'member-dead');
  const falseDeads = deads.filter((e) => !exitedBy(e.hostname, e.timeMs));
  const falseDeadDeclarations = new Set(falseDeads.map((e) => `${e.member}/${e.incarnation}`)).size;
  const statusWrites = c.hosts
    .filter((h) => h.role === 'manager')
    .flatMap((h) => logRecords(h, offsets.get(h.name) ?? 0, 'node status from gossip written'))
    .filter((r) => typeof r['time'] === 'number' && r['time'] >= start && r['time'] <= start + wallMs)
    .reduce((acc, r) => acc + (typeof r['updates'] === 'number' ? r['updates'] : 0), 0);
  return {
    seconds: Math.round(wallMs / 1000),
    saturated: plan.saturated,
    cpu,
    hogs: plan.hogs,
    rounds,
    storeDowns,
    polledSuspects,
    polledDeads,
    transitions,
    loggedSuspectEvents: suspects.length,
    loggedDeadEvents: falseDeads.length,
    trueDeadEvents: deads.length - falseDeads.length,
    falseDeadDeclarations,
    statusWrites,
    referenceHost: plan.reference,
    trueStoreDowns,
    exits,
    distinctSuspicions: distinct.size,
    suspicionsBySubject: bySubject,
    suspicionsByFirstLogger: byFirst,
    refutations,
    leaderChanges,
    apiErrors,
    slowestAnswerMs: slowest,
    saturatedShare,
    referenceShare,
    loadAvg1Mean: loads.length === 0 ? load1() : Math.round((loads.reduce((a, b) => a + b, 0) / loads.length) * 100) / 100,
    loadAvg1Max: loads.length === 0 ? load1() : Math.max(...loads),
    machineBusyPct,
  };
}

// ---- report ------------------------------------------------------------------------------------

function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown';
  return [
    `cpu: ${cpu} x ${availableParallelism()}`,
    `memory: ${Math.round(totalmem() / 2 ** 30)} GiB`,
    `kernel: ${release()}`,
    `node: ${process.version}`,
  ].join('\n');
}

function report(cfg: BenchConfig, startedAt: Date, loadAtStart: number, trials: TrialResult[], baseline: SoakResult | null, saturated: SoakResult | null): string {
  const col = (f: (t: TrialResult) => number | null): { med: number | null; mx: number | null; n: number } => {
    const xs = trials.map(f).filter((x): x is number => x !== null);
    return { med: median(xs), mx: max(xs), n: xs.length };
  };
  const rows: Array<[string, (t: TrialResult) => number | null]> = [
    ['first suspicion on any survivor (gossip)', (t) => t.firstSuspectMs],
    ['**leader: gossip dead**', (t) => t.leaderGossipDownMs],
    ['**leader: store Status.State down** (`node ls`)', (t) => t.leaderStoreDownMs],
    ['**every node: gossip dead** (slowest of the 9 survivors)', (t) => t.everyNodeDownMs],
    ['restart -> alive on every node and Ready (not a goal)', (t) => t.rejoinMs],
  ];
  const sources = trials.reduce((acc, t) => ({ SinceMs: acc.SinceMs + t.sources.SinceMs, log: acc.log + t.sources.log, poll: acc.poll + t.sources.poll }), { SinceMs: 0, log: 0, poll: 0 });
  const rejected = trials.reduce((a, t) => a + t.sinceMsRejected, 0);
  const sample = trials.find((t) => t.sinceMsSample !== null)?.sinceMsSample ?? null;
  const store = col((t) => t.leaderStoreDownMs);
  const every = col((t) => t.everyNodeDownMs);
  const loads = trials.map((t) => t.loadAvg1);
  const out: string[] = [];
  out.push(`Run ${startedAt.toISOString()} with \`${cfg.command}\`; 1-minute load average ${loadAtStart} at the start.`);
  out.push('');
  out.push('**Goal:** a killed node is Down in under 2 s (median), and no false Down while one node\'s CPU is saturated.');
  out.push('');
  out.push(`Detection: kill -9 of a worker (never a manager), ${trials.length} trial${trials.length === 1 ? '' : 's'}, lab of ${NODES} nodes (${MANAGERS} managers); ms after the kill.`);
  out.push('');
  out.push('| measure | median ms | max ms | trials detected |');
  out.push('| --- | ---: | ---: | ---: |');
  for (const [label, f] of rows) {
    const r = col(f);
    out.push(`| ${label} | ${ms(r.med)} | ${ms(r.mx)} | ${r.n} / ${trials.length} |`);
  }
  out.push('');
  const verdict = (x: number | null): string => (x === null ? 'not measured' : x < 2000 ? 'meets the goal' : 'misses the goal');
  out.push(`Store Down median ${ms(store.med)} ms (${verdict(store.med)}); every node ${ms(every.med)} ms (${verdict(every.med)}). ${DOCKER_SENTENCE}` +
    (store.med === null ? '' : ` Here the store's Down comes ${(17_500 / store.med).toFixed(0)}x sooner than the middle of that range.`));
  out.push('');
  out.push('Trials (victim, leader, load average; ms to: first suspicion / leader gossip dead / leader store down / every node dead):');
  out.push('');
  for (const t of trials) {
    out.push(`- ${t.trial}: ${t.victim}, leader ${t.leader}, load ${t.loadAvg1}: ${ms(t.firstSuspectMs)} / ${ms(t.leaderGossipDownMs)} / ${ms(t.leaderStoreDownMs)} / ${ms(t.everyNodeDownMs)}`);
  }
  out.push('');
  const med = median(loads);
  out.push(`Load average (1 min) at the start of each trial: median ${med === null ? 'n/a' : med.toFixed(2)}, max ${max(loads) ?? 'n/a'}.`);
  out.push('');
  out.push(`Time sources: a gossip time is the change time the member's \`SinceMs\` gives (answer time - SinceMs) when that falls between the kill and the answer ` +
    `(${sources.SinceMs} of ${sources.SinceMs + sources.log + sources.poll} dead observations; ${rejected} SinceMs values fell outside and were not used` +
    `${sample === null || rejected === 0 ? '' : `, e.g. SinceMs = ${sample} for a node dead for about a second`}); ` +
    `otherwise the \`time\` of the daemon's own "membership change" log line (${sources.log}); otherwise the 50 ms poll that first saw it (${sources.poll}). ` +
    'Store Down is polled on the leader every 50 ms, so it is up to ~50 ms plus one API round trip late. The daemons run on this machine, so one clock serves all.');
  out.push('');
  out.push(...soakReport(baseline, saturated));
  out.push('Machine:');
  out.push('');
  out.push('```');
  out.push(machine());
  out.push(`settings: BENCH_TRIALS=${cfg.trials} BENCH_SOAK_SECONDS=${cfg.soakSeconds} BENCH_BASELINE_SECONDS=${cfg.baselineSeconds} BENCH_CPU_HOGS=${cfg.cpuHogs}`);
  out.push('```');
  return out.join('\n');
}

/** The soak's part of the report: baseline and saturated side by side, then what the saturated run saw. */
function soakReport(baseline: SoakResult | null, saturated: SoakResult | null): string[] {
  if (saturated === null) return ['False Downs: not measured (BENCH_SOAK_SECONDS=0).', ''];
  const s = saturated;
  const out: string[] = [];
  out.push(`False Downs: ${s.seconds} s with ${s.saturated ?? '?'}'s daemon (all threads) and ${s.hogs} busy loops pinned to CPU ${s.cpu}` +
    (baseline === null ? '' : `, after ${baseline.seconds} s of the same without pinning (baseline)`) +
    `; every node's \`/members\` polled every ${SOAK_POLL_MS} ms, the leader's \`/nodes\` every ${STORE_POLL_MS} ms, the daemons' logs read afterwards.`);
  out.push('');
  const runs = baseline === null ? [s] : [baseline, s];
  out.push(`| soak | ${runs.map((r) => (r.saturated === null ? 'baseline' : `${r.saturated} saturated`)).join(' | ')} |`);
  out.push(`| --- | ${runs.map(() => '---:').join(' | ')} |`);
  const row = (label: string, f: (r: SoakResult) => string | number): void => {
    out.push(`| ${label} | ${runs.map((r) => String(f(r))).join(' | ')} |`);
  };
  row('seconds (poll rounds)', (r) => `${r.seconds} (${r.rounds})`);
  row(`**false Downs in the store** (ready -> down on the leader, polled every ${STORE_POLL_MS} ms, daemon running)`, (r) => r.storeDowns);
  row('node status writes by the leader loop (managers\' logs; a false Down costs two, down then ready; an exited daemon one)', (r) => r.statusWrites);
  row('**false dead in gossip** (daemon running): declarations (subject x incarnation) / log events (observer x subject)', (r) => `${r.falseDeadDeclarations} / ${r.loggedDeadEvents}`);
  row('daemons that exited during the soak', (r) => (r.exits.length === 0 ? 0 : `${r.exits.length}: ${r.exits.map((e) => e.host).join(', ')}`));
  row('Downs in the store / dead log events of daemons that had exited (true ones)', (r) => `${r.trueStoreDowns} / ${r.trueDeadEvents}`);
  row('dead seen by polling (observer x subject, any)', (r) => r.polledDeads);
  row('suspicions raised (distinct subject x incarnation in the logs)', (r) => r.distinctSuspicions);
  row('suspect log events (observer x subject)', (r) => r.loggedSuspectEvents);
  row('suspect seen by polling (observer x subject)', (r) => r.polledSuspects);
  row('refutations (sum of incarnation rises)', (r) => r.refutations);
  row('Raft leader changes', (r) => r.leaderChanges);
  row('load average (1 min), mean / max', (r) => `${r.loadAvg1Mean} / ${r.loadAvg1Max}`);
  row(`machine CPU busy, all ${availableParallelism()} CPUs, everything on it (%)`, (r) => r.machineBusyPct);
  const share = (x: CpuShare | null): string => (x === null ? 'exited' : `${x.cpuPct} / ${x.waitMsPerS}`);
  row(`${s.referenceHost} (unpinned worker): % of a core / ms per s waiting for a CPU`, (r) => share(r.referenceShare));
  if (s.saturated !== null) {
    const sh = { host: s.saturated };
    row(`${sh.host} (pinned): % of a core / ms per s waiting for a CPU`, (r) => (r.saturated === null ? '-' : share(r.saturatedShare)));
  }
  out.push('');
  for (const r of runs) {
    const counts = (o: Record<string, number>): string => Object.entries(o).sort((a, b) => b[1] - a[1]).map(([h, n]) => `${h} ${n}`).join(', ') || 'none';
    const subj = counts(r.suspicionsBySubject);
    const first = counts(r.suspicionsByFirstLogger);
    const errs = Object.entries(r.apiErrors).map(([h, n]) => `${h} ${n}`).join(', ');
    const slow = Object.entries(r.slowestAnswerMs).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([h, n]) => `${h} ${n} ms`).join(', ');
    out.push(`${r.saturated === null ? 'Baseline' : 'Saturated'}: suspicions by suspected node: ${subj}; by the node that logged them first: ${first}. ` +
      `API calls failed or timed out (${API_TIMEOUT_MS} ms): ${errs === '' ? 'none' : errs}; slowest answers: ${slow === '' ? 'n/a' : slow}.`);
    out.push('');
  }
  for (const r of runs) {
    for (const e of r.exits) {
      const at = e.logTail.findIndex((l) => /^\w*Error\b/.test(l));
      const lines = at >= 0 ? e.logTail.slice(at, at + 4) : e.logTail.slice(-6);
      out.push(`${r.saturated === null ? 'Baseline' : 'Saturated'}: ${e.host}'s daemon exited between ${e.lastAliveS} s and ${e.goneS} s into the soak; its log ends:`);
      out.push('');
      out.push('```');
      for (const line of lines) out.push(line.length > 600 ? `${line.slice(0, 600)} …` : line);
      out.push('```');
      out.push('');
    }
  }
  out.push('CPU shares are from /proc/PID/task/*/schedstat (time on a CPU, time runnable but waiting). With the busy loops on one of ' +
    `${availableParallelism()} CPUs, the other daemons crowd onto the rest, so on a small machine the whole lab is short of CPU, not only the pinned node.`);
  const notable = s.transitions.filter((t) => t.to !== 'alive' && t.to !== 'ready');
  if (notable.length > 0) {
    out.push('');
    const which = notable.length > 20 ? `first 20 of ${notable.length}` : `all ${notable.length}`;
    out.push(`Saturated run, moves away from alive/ready seen by polling (${which}; seconds into the soak):`);
    out.push('');
    for (const t of notable.slice(0, 20)) out.push(`- ${t.atS} s: ${t.observer} sees ${t.subject} ${t.from} -> ${t.to}`);
  }
  out.push('');
  return out;
}

const DOC_INTRO = `## Membership: failure detection

\`scripts/bench membership\` builds a lab (\`@swarm/lab\`) of ${NODES} network namespaces on one bridge, each running
a real \`swarm daemon\`, ${MANAGERS} managers and ${NODES - MANAGERS} workers joined with real tokens, and measures:

- **detection**: kill -9 of a worker (rotating over node-4 … node-10; never a manager, so Raft does not
  confound it), then, every 50 ms, the leader's \`/nodes\` (the store's \`Status.State\`, what \`node ls\`
  shows) and every survivor's \`/members\` (its own SWIM view) until the node is \`down\` in the store and
  \`dead\` on every survivor. Times run from just before the kill. The node is restarted and the run waits
  until every node sees it alive again before the next trial. Median and max over \`BENCH_TRIALS\` (10).
- **false Downs**: one worker's daemon (all its threads) and \`BENCH_CPU_HOGS\` (4) busy loops are pinned onto
  one CPU with \`taskset\`, so the daemon really waits for a CPU, for \`BENCH_SOAK_SECONDS\` (600); every
  node's \`/members\` is polled every 500 ms and the leader's \`/nodes\` every 100 ms, and the daemons' logs
  ("membership change", "node status from gossip written") give every suspicion, dead declaration and store
  status write, also those undone between two polls. A daemon that exits is reported with the end of its
  log, and Downs of it are counted as true ones. A baseline of
  \`BENCH_BASELINE_SECONDS\` (60) with nothing pinned runs first, for comparison.

Run it (as root):

\`\`\`
scripts/bench membership                                             # full run, about 15 minutes
BENCH_TRIALS=2 BENCH_SOAK_SECONDS=30 BENCH_DOC=- scripts/bench membership   # quick run, do not touch this file
\`\`\`

The section between the markers below is rewritten by every run.
`;

function writeDoc(path: string, body: string): void {
  writeDocBlock(path, { start: DOC_START, end: DOC_END }, DOC_INTRO, body);
}

// ---- main --------------------------------------------------------------------------------------

function soakLine(r: SoakResult): string {
  return `false store Downs ${r.storeDowns}, false gossip dead events ${r.loggedDeadEvents}, daemons exited ${r.exits.length}, suspicions ${r.distinctSuspicions} ` +
    `(${r.loggedSuspectEvents} log events, ${r.polledSuspects} polled), refutations ${r.refutations}, leader changes ${r.leaderChanges}, ` +
    `load ${r.loadAvg1Mean}, machine ${r.machineBusyPct}% busy`;
}

async function main(): Promise<void> {
  requireRoot();
  const cfg = readConfig();
  if (!existsSync(SWARM_MAIN)) throw new Error(`the swarm CLI is not built (${SWARM_MAIN}): run npx tsc -b`);
  const startedAt = new Date();
  const loadAtStart = load1();
  say(`== membership benchmark: ${NODES} nodes (${MANAGERS} managers), ${cfg.trials} kills, ${cfg.soakSeconds} s soak; load average ${loadAtStart}`);

  say(`== lab ${LAB_NAME} on ${SUBNET}`);
  const c = await upLab();
  const leader0 = await waitSteady(c, 'the new lab');
  say(`   all ${NODES} alive on every node and Ready; leader ${leader0}`);

  const workers = c.hosts.filter((h) => h.role === 'worker').map((h) => h.name);
  if (workers.length < 2) throw new Error('the lab needs at least two workers');
  const trials: TrialResult[] = [];
  for (let i = 1; i <= cfg.trials; i++) {
    const victim = workers[(i - 1) % workers.length] ?? '';
    const t = await detectionTrial(c, i, victim);
    trials.push(t);
    say(`   trial ${i}/${cfg.trials}: killed ${victim} (leader ${t.leader}, load ${t.loadAvg1}): first suspicion ${ms(t.firstSuspectMs)} ms, ` +
      `leader gossip dead ${ms(t.leaderGossipDownMs)} ms, store down ${ms(t.leaderStoreDownMs)} ms, every node ${ms(t.everyNodeDownMs)} ms ` +
      `[sources ${JSON.stringify(t.sources)}${t.pollReasons.length === 0 ? '' : ` (poll: ${t.pollReasons.join('; ')})`}; rejoin ${t.rejoinMs} ms]`);
  }

  let baseline: SoakResult | null = null;
  let saturated: SoakResult | null = null;
  if (cfg.soakSeconds > 0) {
    const pinned = workers[workers.length - 1] ?? '';
    const reference = workers[workers.length - 2] ?? '';
    if (cfg.baselineSeconds > 0) {
      say(`== baseline soak: ${cfg.baselineSeconds} s, nothing pinned`);
      baseline = await soak(c, { seconds: cfg.baselineSeconds, saturated: null, hogs: 0, reference });
      say(`   ${soakLine(baseline)}`);
    }
    say(`== soak: ${cfg.soakSeconds} s with ${pinned}'s CPU saturated`);
    saturated = await soak(c, { seconds: cfg.soakSeconds, saturated: pinned, hogs: cfg.cpuHogs, reference });
    say(`   ${soakLine(saturated)}`);
  }

  const body = report(cfg, startedAt, loadAtStart, trials, baseline, saturated);
  process.stdout.write(`${body}\n`);
  if (cfg.docPath !== null) {
    writeDoc(cfg.docPath, body);
    say(`wrote ${cfg.docPath}`);
  }
}

try {
  await main();
} catch (e) {
  say(`membership benchmark failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
