// The recovery benchmark (`scripts/bench recovery`): on a 5-node lab of real daemons, kill -9 of a worker running
// all 10 replicas of a service, then the time until all 10 run elsewhere. Owns its lab (benchrec), also on SIGINT.

import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { ApiClient, type NodeDocument, type ServiceSpecDocument, type TaskDocument } from '@swarm/api';
import { silentLogger } from '@swarm/wire';
import { createLab, destroyLab, killHost, loadLab, requireRoot, restartHost, seedLabImages, swarmInitJoin, waitForSocket } from '../src/index.js';
import { cleanup, cleanupOnSignals, daemonCommand, load1, max, median, ms, onCleanup, REPO_ROOT, say, sleep, SWARM_BIN, SWARM_MAIN, waitFor, writeDocBlock } from './kit.js';

// ---- settings ----------------------------------------------------------------------------------

const LAB_NAME = 'benchrec';
/** Apart from the lab tests' subnets and the membership benchmark's (10.251.40). */
const SUBNET = '10.251.41.0/24';
const NODES = 5;
const MANAGERS = 3;
const VICTIM = 'node-5';
const SERVICE = 'victim';
const REPLICAS = 10;
const POLL_MS = 25;
const TRIAL_DEADLINE_MS = 60_000;
const SETTLE_DEADLINE_MS = 180_000;
const API_TIMEOUT_MS = 5_000;
const GOAL_MS = 3_000;
const DOC_START = '<!-- bench:recovery:start -->';
const DOC_END = '<!-- bench:recovery:end -->';
/** moby/swarmkit manager/dispatcher/dispatcher.go: DefaultHeartBeatPeriod 5 s, defaultGracePeriodMultiplier 3 (4 in early versions). */
const DOCKER_SENTENCE =
  'Docker Swarm notices a dead node only after its heartbeat grace of 15 to 20 s (5 s `DefaultHeartBeatPeriod` x 3 to 4, ' +
  'moby/swarmkit `manager/dispatcher/dispatcher.go`), so its rescheduling starts only after that.';


interface BenchConfig {
  trials: number;
  /** null: print only, do not write the doc. */
  docPath: string | null;
  command: string;
}

function readConfig(): BenchConfig {
  const raw = process.env['BENCH_TRIALS'] ?? '';
  if (raw !== '' && (!/^\d+$/.test(raw) || Number(raw) < 1)) throw new Error(`BENCH_TRIALS=${raw}: expected a whole number >= 1`);
  const doc = process.env['BENCH_DOC'] ?? `${REPO_ROOT}/docs/benchmarks.md`;
  const knobs = ['BENCH_TRIALS', 'BENCH_DOC'].flatMap((k) => (process.env[k] === undefined || process.env[k] === '' ? [] : [`${k}=${process.env[k]}`]));
  return { trials: raw === '' ? 10 : Number(raw), docPath: doc === '-' ? null : doc, command: [...knobs, 'scripts/bench recovery'].join(' ') };
}

cleanupOnSignals('removing the lab');

// ---- the lab and the service -------------------------------------------------------------------

interface Cluster {
  api: Map<string, ApiClient>;
  managers: string[];
  leader: ApiClient;
  /** Hostname -> node id, from the leader's store. */
  idOf: Map<string, string>;
}

async function upLab(): Promise<Cluster> {
  const logger = silentLogger();
  let stale = false;
  try {
    loadLab(LAB_NAME);
    stale = true;
  } catch {
    // no such lab: the usual case
  }
  if (stale) {
    say(`== removing lab ${LAB_NAME} left by an earlier run`);
    await destroyLab(LAB_NAME, { logger });
  }
  onCleanup(`remove lab ${LAB_NAME}`, async () => {
    say(`== removing lab ${LAB_NAME}`);
    await destroyLab(LAB_NAME, { logger });
  });
  // Runs before the lab's removal (last in, first out): the daemon logs outlive the lab.
  const keep = `/var/tmp/bench-recovery-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  onCleanup('keep the daemon logs', () => {
    mkdirSync(keep, { recursive: true });
    for (const h of loadLab(LAB_NAME).hosts) if (existsSync(h.logPath)) copyFileSync(h.logPath, `${keep}/${h.name}.log`);
    say(`   daemon logs kept in ${keep}`);
  });
  await createLab({
    name: LAB_NAME,
    nodes: NODES,
    managers: MANAGERS,
    subnet: SUBNET,
    logger,
    command: daemonCommand,
    // The tasks are containers of the lab's busybox image, served by the lab registry.
    registry: true,
    seedRegistry: async (addr) => void (await seedLabImages(addr, tmpdir())),
    waitReady: (h) => waitForSocket(h),
    cluster: swarmInitJoin({ swarmArgv: [process.execPath, SWARM_BIN] }),
  });
  const hosts = loadLab(LAB_NAME).hosts;
  const api = new Map(hosts.map((h) => [h.name, new ApiClient({ socketPath: h.socketPath, timeoutMs: API_TIMEOUT_MS })]));
  const managers = hosts.filter((h) => h.role === 'manager').map((h) => h.name);
  const first = api.get(managers[0] ?? '');
  if (first === undefined) throw new Error(`lab ${LAB_NAME} has no manager`);
  const c: Cluster = { api, managers, leader: first, idOf: new Map() };
  await findLeader(c);
  return c;
}

/** Points c.leader at the Raft leader once every node is Ready in its store. No manager is ever killed here. */
async function findLeader(c: Cluster): Promise<string> {
  return waitFor('a leader with every node Ready', SETTLE_DEADLINE_MS, async () => {
    for (const m of c.managers) {
      const a = c.api.get(m);
      if (a === undefined) continue;
      const nodes = await a.listNodes().catch(() => null);
      const leader = nodes?.find((n) => n.ManagerStatus?.Leader === true);
      if (nodes === null || nodes === undefined || leader === undefined) continue;
      if (nodes.length !== NODES || nodes.some((n) => n.Status.State !== 'ready')) return undefined;
      const name = leader.Description.Hostname;
      const la = c.api.get(name);
      if (la === undefined) throw new Error(`the leader ${name} is not a host of the lab`);
      c.leader = la;
      c.idOf = new Map(nodes.map((n) => [n.Description.Hostname, n.ID]));
      return name;
    }
    return undefined;
  });
}

function victimId(c: Cluster): string {
  const id = c.idOf.get(VICTIM);
  if (id === undefined) throw new Error(`the store has no node ${VICTIM}`);
  return id;
}

const running = (t: TaskDocument): boolean => t.DesiredState === 'running' && t.Status.State === 'running';

/** Every node but the victim gets `availability` (pause: keeps its tasks, gets no new ones). */
async function setOthers(c: Cluster, availability: 'pause' | 'active'): Promise<void> {
  for (const [name, id] of c.idOf) if (name !== VICTIM) await c.leader.updateNode(id, { availability });
}

/** Waits until all replicas run on the victim and the service's update (if any) is over. */
async function waitAllOnVictim(c: Cluster, what: string): Promise<void> {
  const vid = victimId(c);
  await waitFor(what, SETTLE_DEADLINE_MS, async () => {
    const live = (await c.leader.listTasks({ service: SERVICE })).filter((t) => t.DesiredState === 'running');
    if (live.length !== REPLICAS || !live.every((t) => running(t) && t.NodeID === vid)) return undefined;
    const s = await c.leader.inspectService(SERVICE);
    return s.UpdateStatus === undefined || s.UpdateStatus.State === 'completed' ? true : undefined;
  });
}

function serviceSpec(): ServiceSpecDocument {
  return {
    Name: SERVICE,
    // The rebalancer would move tasks back onto the other nodes once they are active again.
    Labels: { 'swarm.rebalance': 'false' },
    TaskTemplate: {
      ContainerSpec: { Image: 'busybox', Command: ['sleep', '3600'], StopGracePeriod: 1_000_000_000 },
      RestartPolicy: { Condition: 'any', Delay: 0 },
    },
    Mode: { Replicated: { Replicas: REPLICAS } },
    // All at once, and no monitoring window to wait out between trials.
    UpdateConfig: { Parallelism: 0, Monitor: 0 },
  };
}

/** The first placement: every other node paused, so the scheduler has only the victim. */
async function placeFirst(c: Cluster): Promise<void> {
  await setOthers(c, 'pause');
  await c.leader.createService(serviceSpec());
  await waitAllOnVictim(c, `${REPLICAS} replicas running on ${VICTIM}`);
  await setOthers(c, 'active');
}

/** Back onto the restarted victim: pause the others, `service update --force` (all at once), unpause. */
async function placeAgain(c: Cluster): Promise<void> {
  await setOthers(c, 'pause');
  const s = await c.leader.inspectService(SERVICE);
  const spec: ServiceSpecDocument = { ...s.Spec, TaskTemplate: { ...s.Spec.TaskTemplate, ForceUpdate: (s.Spec.TaskTemplate.ForceUpdate ?? 0) + 1 } };
  await c.leader.updateService(SERVICE, spec, s.Version.Index);
  await waitAllOnVictim(c, `${REPLICAS} replicas back on ${VICTIM}`);
  await setOthers(c, 'active');
}

// ---- one trial ---------------------------------------------------------------------------------

/** ms after t0; `polled` is what the 25 ms poll of the leader saw, the others are timestamps the cluster wrote. */
interface TrialResult {
  trial: number;
  loadAvg1: number;
  killReturnedMs: number;
  /** The leader's write of Status.State down (the node's UpdatedAt); polledDownMs when that is not usable. */
  downMs: number | null;
  downFromPoll: boolean;
  polledDownMs: number | null;
  /** The orchestrator's write of the replacements (latest CreatedAt of the 10). */
  replacedMs: number | null;
  /** The agents' Status.Timestamp of RUNNING (the task process started), first and last of the 10. */
  firstRunningMs: number | null;
  allRunningMs: number | null;
  /** The first poll whose answer had 10 RUNNING elsewhere: what `service ps` on the leader shows. */
  polledAllRunningMs: number | null;
  /** Hostname -> replacements running there. */
  spread: Record<string, number>;
}

async function trial(c: Cluster, n: number): Promise<TrialResult> {
  const vid = victimId(c);
  const before = new Set((await c.leader.listTasks({ service: SERVICE })).map((t) => t.ID));
  const loadAvg1 = load1();
  let nodes: NodeDocument[] = [];
  let tasks: TaskDocument[] = [];
  // An object, not two lets: the poll callbacks set them, and TypeScript does not follow assignments in callbacks.
  const seen: { down: number | null; all: number | null } = { down: null, all: null };

  const t0 = Date.now();
  await killHost(LAB_NAME, VICTIM, { logger: silentLogger() });
  const killReturned = Date.now();
  const end = t0 + TRIAL_DEADLINE_MS;
  while (Date.now() < end && (seen.down === null || seen.all === null)) {
    const round = Date.now();
    await Promise.all([
      c.leader.listNodes().then((ns) => {
        nodes = ns;
        if (seen.down === null && ns.find((x) => x.ID === vid)?.Status.State === 'down') seen.down = Date.now();
      }, () => undefined),
      c.leader.listTasks({ service: SERVICE }).then((ts) => {
        tasks = ts;
        if (seen.all === null && ts.filter((t) => running(t) && t.NodeID !== vid).length >= REPLICAS) seen.all = Date.now();
      }, () => undefined),
    ]);
    await sleep(Math.max(0, round + POLL_MS - Date.now()));
  }

  // Timestamps the cluster wrote, kept only when they lie between the kill and the poll that saw them.
  const within = (iso: string | undefined, seen: number | null): number | null => {
    const at = iso === undefined ? NaN : Date.parse(iso);
    return Number.isFinite(at) && at >= t0 - 5 && at <= (seen ?? Date.now()) ? at - t0 : null;
  };
  const rel = (x: number | null): number | null => (x === null ? null : x - t0);
  const fresh = tasks.filter((t) => !before.has(t.ID) && running(t) && t.NodeID !== vid);
  const complete = fresh.length >= REPLICAS;
  // All 10 usable, or none: a partial set would make "the last of the 10" a lie.
  const usable = (xs: Array<number | null>): number[] | null => (complete && xs.every((x) => x !== null) ? xs.filter((x): x is number => x !== null) : null);
  const created = usable(fresh.map((t) => within(t.CreatedAt, seen.all)));
  const started = usable(fresh.map((t) => within(t.Status.Timestamp, seen.all)));
  const nameOf = new Map(nodes.map((x) => [x.ID, x.Description.Hostname]));
  const spread: Record<string, number> = {};
  for (const t of fresh) {
    const h = nameOf.get(t.NodeID ?? '') ?? '?';
    spread[h] = (spread[h] ?? 0) + 1;
  }
  const downWritten = within(nodes.find((x) => x.ID === vid)?.UpdatedAt, seen.down);
  const result: TrialResult = {
    trial: n,
    loadAvg1,
    killReturnedMs: killReturned - t0,
    downMs: downWritten ?? rel(seen.down),
    downFromPoll: downWritten === null,
    polledDownMs: rel(seen.down),
    replacedMs: created === null ? null : Math.max(...created),
    firstRunningMs: started === null ? null : Math.min(...started),
    allRunningMs: started === null ? null : Math.max(...started),
    polledAllRunningMs: rel(seen.all),
    spread,
  };

  await restartHost(LAB_NAME, VICTIM, { logger: silentLogger(), waitReady: (h) => waitForSocket(h) });
  await findLeader(c);
  return result;
}

// ---- report ------------------------------------------------------------------------------------

function machine(cfg: BenchConfig): string {
  return [
    `cpu: ${cpus()[0]?.model ?? '?'} x ${availableParallelism()}`,
    `memory: ${Math.round(totalmem() / 2 ** 30)} GiB`,
    `kernel: ${release()}`,
    `node: ${process.version}`,
    `settings: BENCH_TRIALS=${cfg.trials}, poll ${POLL_MS} ms`,
  ].join('\n');
}

function report(cfg: BenchConfig, startedAt: Date, loadAtStart: number, trials: readonly TrialResult[]): string {
  const col = (f: (t: TrialResult) => number | null): { med: number | null; mx: number | null; n: number } => {
    const xs = trials.map(f).filter((x): x is number => x !== null);
    return { med: median(xs), mx: max(xs), n: xs.length };
  };
  const rows: Array<[string, (t: TrialResult) => number | null]> = [
    [`${VICTIM} Down in the leader's store (the node's UpdatedAt)`, (t) => t.downMs],
    ['replacements created by the orchestrator (latest CreatedAt of the 10)', (t) => t.replacedMs],
    ['first replacement RUNNING (its agent\'s Status.Timestamp)', (t) => t.firstRunningMs],
    ['all 10 RUNNING (latest agent Status.Timestamp)', (t) => t.allRunningMs],
    [`**all 10 RUNNING seen on the leader** (${POLL_MS} ms poll of \`/tasks\`)`, (t) => t.polledAllRunningMs],
  ];
  const all = col((t) => t.polledAllRunningMs);
  const down = col((t) => t.downMs);
  const created = col((t) => t.replacedMs);
  const started = col((t) => t.allRunningMs);
  const loads = trials.map((t) => t.loadAvg1);
  const verdict = all.med === null ? 'not measured' : all.med < GOAL_MS ? 'meets the goal' : 'misses the goal';
  const out: string[] = [];
  out.push(`Run ${startedAt.toISOString()} with \`${cfg.command}\`; 1-minute load average ${loadAtStart} at the start.`);
  out.push('');
  out.push(`**Goal:** all ${REPLICAS} replicas of a killed worker RUNNING elsewhere in under ${GOAL_MS / 1000} s (median).`);
  out.push('');
  out.push(`${trials.length} trial${trials.length === 1 ? '' : 's'}: kill -9 of ${VICTIM} (daemon and task processes) running all ${REPLICAS} replicas, ` +
    `lab of ${NODES} nodes (${MANAGERS} managers); ms after the kill.`);
  out.push('');
  out.push('| measure | median ms | max ms | trials |');
  out.push('| --- | ---: | ---: | ---: |');
  for (const [label, f] of rows) {
    const r = col(f);
    out.push(`| ${label} | ${ms(r.med)} | ${ms(r.mx)} | ${r.n} / ${trials.length} |`);
  }
  out.push('');
  out.push(`All ${REPLICAS} running on the leader: median ${ms(all.med)} ms (${verdict}). Medians of the steps: detection (kill -> Down) ${ms(down.med)} ms, ` +
    `rescheduling (Down -> replacements created) ${down.med === null || created.med === null ? 'n/a' : ms(created.med - down.med)} ms, ` +
    `placement and start (-> last RUNNING on its node) ${created.med === null || started.med === null ? 'n/a' : ms(started.med - created.med)} ms, ` +
    `report to the leader's store and the poll ${started.med === null || all.med === null ? 'n/a' : ms(all.med - started.med)} ms. ${DOCKER_SENTENCE}`);
  out.push('');
  out.push('Trials (load average at the start; ms to: Down / created / first RUNNING / all RUNNING / all seen on the leader; where the 10 went):');
  out.push('');
  for (const t of trials) {
    const spread = Object.entries(t.spread).sort().map(([h, k]) => `${h} ${k}`).join(', ');
    out.push(`- ${t.trial}: load ${t.loadAvg1}: ${ms(t.downMs)} / ${ms(t.replacedMs)} / ${ms(t.firstRunningMs)} / ${ms(t.allRunningMs)} / ${ms(t.polledAllRunningMs)} (${spread === '' ? 'none' : spread})`);
  }
  out.push('');
  const med = median(loads);
  out.push(`Load average (1 min) at the start of each trial: median ${med === null ? 'n/a' : med.toFixed(2)}, max ${max(loads) ?? 'n/a'}, on ${availableParallelism()} CPUs; ` +
    'other work on the machine is not stopped for the benchmark.');
  out.push('');
  out.push(`Time sources: the kill is \`killHost\` (SIGKILL of the daemon, then of its task processes; it returned after median ${ms(median(trials.map((t) => t.killReturnedMs)))} ms). ` +
    'Down, created and RUNNING are the timestamps the cluster wrote (the leader\'s clock for the node and the new tasks, the agent\'s for RUNNING), ' +
    `used when they fall between the kill and the poll that saw them (Down falls back to the poll otherwise: ` +
    `${trials.filter((t) => t.downFromPoll).length} of ${trials.length} trials; the poll saw it median ${ms(median(trials.flatMap((t) => (t.polledDownMs === null ? [] : [t.polledDownMs]))))} ms after the kill). ` +
    `The last row is the poll time itself, up to ${POLL_MS} ms plus one API round trip late. The daemons run on this machine, so one clock serves all.`);
  out.push('');
  out.push(`Between trials ${VICTIM} is restarted and Ready again, the other nodes are paused, the service is updated with a bumped ` +
    `\`ForceUpdate\` (Parallelism 0: all ${REPLICAS} replaced at once, only ${VICTIM} can take them), and the others are made active again. ` +
    'The service has the label `swarm.rebalance=false`, so the rebalancer leaves it alone.');
  out.push('');
  out.push('Machine:');
  out.push('');
  out.push('```');
  out.push(machine(cfg));
  out.push('```');
  return out.join('\n');
}

const DOC_INTRO = `## Recovery: rescheduling a dead node's tasks

\`scripts/bench recovery\` builds a lab (\`@swarm/lab\`) of ${NODES} real daemons (${MANAGERS} managers), puts all ${REPLICAS}
replicas of a service (\`sleep 3600\` as plain processes) on the worker ${VICTIM}, kills it with kill -9 (daemon and
tasks), and polls the leader every ${POLL_MS} ms until all ${REPLICAS} run on other nodes. Median and max over
\`BENCH_TRIALS\` (10) trials.

Run it (as root):

\`\`\`
scripts/bench recovery                               # full run, about a minute and a half
BENCH_TRIALS=2 BENCH_DOC=- scripts/bench recovery    # quick run, do not touch this file
\`\`\`

The section between the markers below is rewritten by every run.
`;

function writeDoc(path: string, body: string): void {
  writeDocBlock(path, { start: DOC_START, end: DOC_END }, DOC_INTRO, body);
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  requireRoot();
  const cfg = readConfig();
  if (!existsSync(SWARM_MAIN)) throw new Error(`the swarm CLI is not built (${SWARM_MAIN}): run npx tsc -b`);
  const startedAt = new Date();
  const loadAtStart = load1();
  say(`== recovery benchmark: ${NODES} nodes (${MANAGERS} managers), ${REPLICAS} replicas on ${VICTIM}, ${cfg.trials} kills; load average ${loadAtStart}`);
  say(`== lab ${LAB_NAME} on ${SUBNET}`);
  const c = await upLab();
  say(`== service ${SERVICE}: ${REPLICAS} replicas, all on ${VICTIM}`);
  await placeFirst(c);

  const trials: TrialResult[] = [];
  for (let i = 1; i <= cfg.trials; i++) {
    if (i > 1) await placeAgain(c);
    const t = await trial(c, i);
    trials.push(t);
    say(`   trial ${i}/${cfg.trials} (load ${t.loadAvg1}): down ${ms(t.downMs)} ms (polled ${ms(t.polledDownMs)}), created ${ms(t.replacedMs)}, ` +
      `first running ${ms(t.firstRunningMs)}, all running ${ms(t.allRunningMs)}, seen on the leader ${ms(t.polledAllRunningMs)} ms ${JSON.stringify(t.spread)}`);
  }

  const body = report(cfg, startedAt, loadAtStart, trials);
  process.stdout.write(`${body}\n`);
  if (cfg.docPath !== null) {
    writeDoc(cfg.docPath, body);
    say(`wrote ${cfg.docPath}`);
  }
}

try {
  await main();
} catch (e) {
  say(`recovery benchmark failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
