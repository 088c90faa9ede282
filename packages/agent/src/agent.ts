// The per-node task runner: takes the dispatcher's full assignment set, drives each task through the runtime
// (ACCEPTED -> PREPARING -> STARTING -> RUNNING -> COMPLETE|FAILED|SHUTDOWN) level-triggered, and reports every move.

import { canTransitionTask, isTerminalTaskState, taskStateRank, type HealthConfig, type Task, type TaskState, type TaskStatus, type TaskStatusUpdate } from '@swarm/store';
import { containerConfigFor, NO_TASK_FILES, RuntimeError, type ContainerConfig, type LogLine, type LogOptions, type Runtime, type TaskFiles } from '@swarm/runtime';
import type { IngressConfig, TaskNetworking } from '@swarm/netdriver';
import type { Logger } from '@swarm/wire';

export type { TaskStatusUpdate };

export interface AgentOptions {
  nodeId: string;
  runtime: Runtime;
  /** Receives each transition, batched per event-loop turn, at most maxReportBatch per call. */
  report: (updates: TaskStatusUpdate[]) => void;
  logger: Logger;
  /**
   * Gives a task with overlay attachments its network namespace; null runs every task in the host's network
   * (a node without the overlay driver: the process runtime, no root).
   */
  networking?: TaskNetworking | null;
  /** Tasks in prepare/start at once; the others wait in ACCEPTED. */
  maxConcurrentStarts?: number;
  /** Tasks the agent holds at once; a bigger assignment set is cut (and logged). */
  maxTasks?: number;
  maxReportBatch?: number;
  nowMs?: () => number;
}

export const DEFAULT_MAX_CONCURRENT_STARTS = 8;

/** Docker's health check defaults, for fields a spec leaves 0. */
export const DEFAULT_HEALTH_INTERVAL_MS = 30_000;
export const DEFAULT_HEALTH_TIMEOUT_MS = 30_000;
export const DEFAULT_HEALTH_RETRIES = 3;

/** A health check as the agent runs it: Docker's defaults filled in. */
export interface HealthCheck {
  argv: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

/** The command a health check runs, or null when there is none (no config, NONE, or the image's, which we lack). */
export function healthCommand(h: HealthConfig | null): HealthCheck | null {
  if (h === null) return null;
  const [kind, ...rest] = h.test;
  let argv: string[];
  if (kind === 'CMD' && rest.length > 0) argv = rest;
  else if (kind === 'CMD-SHELL' && rest.length > 0) argv = ['/bin/sh', '-c', rest.join(' ')];
  else return null;
  return {
    argv,
    intervalMs: h.intervalMs > 0 ? h.intervalMs : DEFAULT_HEALTH_INTERVAL_MS,
    timeoutMs: h.timeoutMs > 0 ? h.timeoutMs : DEFAULT_HEALTH_TIMEOUT_MS,
    retries: h.retries > 0 ? h.retries : DEFAULT_HEALTH_RETRIES,
    startPeriodMs: h.startPeriodMs,
  };
}
export const DEFAULT_MAX_TASKS = 10_000;
/** Grace given to a container an earlier run left behind whose task is no longer this node's (Docker's default). */
export const ORPHAN_STOP_GRACE_MS = 10_000;
export const DEFAULT_MAX_REPORT_BATCH = 256;

export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`agent invariant: ${msg}`);
}

/**
 * What the runtime holds for a task: nothing yet; prepared (inside the start sequence); started (its process may
 * be alive); dead (ended or failed to start, files still there); removed (nothing left).
 */
type RuntimeState = 'none' | 'prepared' | 'started' | 'dead' | 'removed';

interface TaskRecord {
  /** The latest copy from the assignment set. */
  task: Task;
  /** The task's status as far as anyone got: ours, or the manager's when it is further along (ORPHANED, say). */
  status: TaskStatus;
  /** The last state this agent reported, to check it never reports a backwards move. */
  lastReported: TaskState | null;
  inSet: boolean;
  runtime: RuntimeState;
  /** An operation (start sequence, stop, remove) is in flight; reconcile runs again when it ends. */
  busy: boolean;
  /** The agent decided to stop it: its exit is a SHUTDOWN, not a failure. */
  stopWanted: boolean;
  stopIssued: boolean;
  /** An operation failed; reconciling waits for the next assignment set. */
  parked: boolean;
  pid: number;
  /** Why the health check gave up on it: its exit is then a failure, not a shutdown. */
  unhealthy: string | null;
  healthTimer: NodeJS.Timeout | null;
}

const RANK_RUNNING = taskStateRank('running');
const RANK_ACCEPTED = taskStateRank('accepted');
const RANK_STARTING = taskStateRank('starting');
/** How soon a routing mesh that could not be set up is tried again. */
const INGRESS_RETRY_MS = 2_000;

export class Agent {
  readonly nodeId: string;
  private readonly runtime: Runtime;
  private readonly networking: TaskNetworking | null;
  private readonly reportFn: AgentOptions['report'];
  private readonly log: Logger;
  private readonly maxConcurrentStarts: number;
  private readonly maxTasks: number;
  private readonly maxReportBatch: number;
  private readonly nowMs: () => number;
  private readonly records = new Map<string, TaskRecord>();
  /** Ids this agent ever prepared, oldest first (bounded): a task id is never started twice, even after it is forgotten. */
  private readonly everStarted = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private pending: TaskStatusUpdate[] = [];
  private flushScheduled = false;
  private startsRunning = 0;
  private readonly startWaiters: Array<() => void> = [];
  private closed = false;
  /** The routing mesh asked for and not applied yet (undefined: nothing new), and the chain applying it. */
  private ingressWanted: IngressConfig | null | undefined = undefined;
  private ingressApplying: Promise<void> | null = null;
  private ingressRetry: NodeJS.Timeout | null = null;
  /** Containers an earlier run of this daemon left running (see adopt); taken over by the first assignment set. */
  private adoptable: Set<string> | null = null;
  /** The bytes of the secrets and configs of the latest assignment set: in memory only, never logged. */
  private files: TaskFiles = NO_TASK_FILES;

  constructor(opts: AgentOptions) {
    this.nodeId = opts.nodeId;
    this.runtime = opts.runtime;
    this.networking = opts.networking ?? null;
    this.reportFn = opts.report;
    this.log = opts.logger;
    this.maxConcurrentStarts = opts.maxConcurrentStarts ?? DEFAULT_MAX_CONCURRENT_STARTS;
    this.maxTasks = opts.maxTasks ?? DEFAULT_MAX_TASKS;
    this.maxReportBatch = opts.maxReportBatch ?? DEFAULT_MAX_REPORT_BATCH;
    this.nowMs = opts.nowMs ?? Date.now;
    assert(this.nodeId !== '', 'nodeId is empty');
    assert(Number.isInteger(this.maxConcurrentStarts) && this.maxConcurrentStarts > 0, `maxConcurrentStarts ${this.maxConcurrentStarts}`);
    assert(Number.isInteger(this.maxTasks) && this.maxTasks > 0, `maxTasks ${this.maxTasks}`);
    assert(Number.isInteger(this.maxReportBatch) && this.maxReportBatch > 0, `maxReportBatch ${this.maxReportBatch}`);
  }

  /**
   * The containers the runtime found at start (a runtime like runc keeps them through a daemon restart). The first
   * assignment set decides: a task still assigned here carries on in its container (no second start, no
   * duplicate); a container whose task is no longer ours is stopped and removed.
   */
  adopt(containerIds: readonly string[]): void {
    assert(this.records.size === 0, 'adopt after assignments arrived');
    this.adoptable = new Set(containerIds);
  }

  /**
   * The full set of tasks assigned to this node; anything not in it must not run here. Idempotent. `files`: the
   * secrets and configs those tasks use (replacing the previous set's); absent, the previous set still holds.
   */
  setAssignments(tasks: Task[], files?: TaskFiles): void {
    if (this.closed) return;
    if (files !== undefined) this.files = files;
    const set = new Map<string, Task>();
    for (const task of tasks) {
      if (task.nodeId !== this.nodeId) {
        this.log.warn({ task: task.id, node: task.nodeId }, 'assignment for another node ignored');
        continue;
      }
      if (set.size >= this.maxTasks) {
        this.log.error({ assigned: tasks.length, maxTasks: this.maxTasks }, 'assignment set over the agent\'s bound; the rest is ignored');
        break;
      }
      set.set(task.id, task);
    }
    for (const [id, rec] of this.records) {
      rec.parked = false;
      if (!set.has(id)) rec.inSet = false;
    }
    const adoptable = this.adoptable;
    this.adoptable = null;
    if (adoptable !== null) this.adoptContainers(adoptable, set);
    for (const task of set.values()) {
      const rec = this.records.get(task.id);
      if (rec === undefined) {
        this.records.set(task.id, {
          task,
          status: task.status,
          lastReported: null,
          inSet: true,
          runtime: 'none',
          busy: false,
          stopWanted: false,
          stopIssued: false,
          parked: false,
          pid: 0,
          unhealthy: null,
          healthTimer: null,
        });
        continue;
      }
      rec.task = task;
      rec.inSet = true;
      // The manager moves a task on by itself only to end it (ORPHANED when the node was thought dead, ...).
      if (taskStateRank(task.status.state) > taskStateRank(rec.status.state)) rec.status = task.status;
    }
    assert(this.records.size <= 2 * this.maxTasks, `records ${this.records.size}`);
    for (const rec of [...this.records.values()]) this.reconcile(rec);
  }

  /** The latest status of every task this agent has reported on (a new dispatcher session starts from these). */
  statuses(): TaskStatusUpdate[] {
    const out: TaskStatusUpdate[] = [];
    for (const [taskId, rec] of this.records) if (rec.lastReported !== null) out.push({ taskId, status: rec.status });
    return out;
  }

  logs(taskId: string, opts: LogOptions): AsyncIterable<LogLine> {
    return this.runtime.logs(taskId, opts);
  }

  /** Names of the volumes the containers this agent holds mount (a volume in use cannot be removed). */
  volumesInUse(): Set<string> {
    const names = new Set<string>();
    for (const rec of this.records.values()) {
      if (rec.runtime === 'none' || rec.runtime === 'removed') continue;
      for (const m of rec.task.spec.containerSpec.mounts) if (m.type === 'volume') names.add(m.source);
    }
    return names;
  }

  /** The image references of the containers this agent holds (an image in use cannot be removed). */
  imagesInUse(): Set<string> {
    const refs = new Set<string>();
    for (const rec of this.records.values()) if (rec.runtime !== 'none' && rec.runtime !== 'removed') refs.add(rec.task.spec.containerSpec.image);
    return refs;
  }

  /**
   * After close: stops every container this agent holds (each with its grace period) and removes them; for a node
   * that leaves the swarm or a daemon that shuts down cleanly (a crash leaves them running, to be adopted).
   */
  async stopAll(): Promise<void> {
    assert(this.closed, 'stopAll before close');
    await Promise.allSettled(
      [...this.records.values()]
        .filter((rec) => rec.runtime !== 'none' && rec.runtime !== 'removed')
        .map(async (rec) => {
          try {
            await this.runtime.stop(rec.task.id, rec.task.spec.containerSpec.stopGracePeriodMs);
            await this.runtime.remove(rec.task.id);
            await this.networking?.detach(rec.task.id);
            rec.runtime = 'removed';
          } catch (err) {
            this.log.warn({ task: rec.task.id, err: (err as Error).message }, 'could not stop a task at shutdown');
          }
        }),
    );
  }

  /**
   * The routing mesh this node serves, as the managers last said. Applied in order, the newest winning: a config
   * that arrives while another is being applied replaces any still waiting. A failure is tried again in a moment.
   */
  setIngress(ingress: IngressConfig | null): void {
    const networking = this.networking;
    if (this.closed || networking?.setIngress === undefined) return;
    this.ingressWanted = ingress;
    if (this.ingressRetry !== null) clearTimeout(this.ingressRetry);
    this.ingressRetry = null;
    if (this.ingressApplying !== null) return;
    const p = (async () => {
      while (this.ingressWanted !== undefined && !this.closed) {
        const want = this.ingressWanted;
        this.ingressWanted = undefined;
        try {
          await networking.setIngress?.(want);
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'could not set up the routing mesh; trying again');
          if (this.ingressWanted === undefined) {
            this.ingressRetry = setTimeout(() => {
              this.ingressRetry = null;
              this.setIngress(want);
            }, INGRESS_RETRY_MS);
          }
        }
      }
    })().finally(() => {
      this.ingressApplying = null;
      this.inFlight.delete(p);
    });
    this.ingressApplying = p;
    this.inFlight.add(p);
  }

  /** Stops reconciling and reporting; tasks keep running (stopAll stops them). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.ingressRetry !== null) clearTimeout(this.ingressRetry);
    for (const rec of this.records.values()) this.stopHealth(rec);
    for (const w of this.startWaiters.splice(0)) w();
    await Promise.allSettled([...this.inFlight]);
    this.pending = [];
  }

  private adoptContainers(ids: ReadonlySet<string>, set: ReadonlyMap<string, Task>): void {
    for (const id of ids) {
      const task = set.get(id);
      if (task === undefined) {
        // Not ours any more (moved while the daemon was down): stopped with Docker's default grace and removed.
        const p = this.runtime
          .stop(id, ORPHAN_STOP_GRACE_MS)
          .then(() => this.runtime.remove(id))
          .then(() => this.networking?.detach(id))
          .catch((err: unknown) => this.log.warn({ task: id, err: (err as Error).message }, 'could not remove a container left by an earlier run'))
          .finally(() => this.inFlight.delete(p));
        this.inFlight.add(p);
        continue;
      }
      this.markStarted(id);
      const rec: TaskRecord = {
        task,
        status: task.status,
        lastReported: task.status.state,
        inSet: true,
        runtime: 'started',
        busy: false,
        stopWanted: false,
        stopIssued: false,
        parked: false,
        pid: task.status.containerStatus?.pid ?? 0,
        unhealthy: null,
        healthTimer: null,
      };
      // One that must stop (desired shutdown, or ended as far as the manager knows) is stopped by reconcile.
      this.records.set(id, rec);
      this.log.info({ task: id, state: task.status.state }, 'adopted a running container from an earlier run');
      const check = healthCommand(task.spec.containerSpec.healthcheck);
      if (!this.wantsStop(rec)) {
        if (check !== null) this.watchHealth(rec, check);
        else {
          if (taskStateRank(task.status.state) < RANK_RUNNING) {
            this.advance(rec, 'running', { message: 'started', containerStatus: { containerId: id, pid: rec.pid, exitCode: 0 } });
          }
          this.setReady(rec, true);
        }
      }
      this.watchExit(rec);
    }
  }

  // ------------------------------------------------------------------ reconciling

  private wantsStop(rec: TaskRecord): boolean {
    return !rec.inSet || taskStateRank(rec.task.desiredState) > RANK_RUNNING || isTerminalTaskState(rec.status.state);
  }

  /** Looks at one task's desired and actual state and starts the one operation that moves it closer. */
  private reconcile(rec: TaskRecord): void {
    if (this.closed || rec.busy || rec.parked) return;
    const id = rec.task.id;
    switch (rec.runtime) {
      case 'none': {
        if (isTerminalTaskState(rec.status.state)) break; // ended before we ever ran it: never restarted
        if (this.wantsStop(rec)) {
          if (rec.inSet) this.advance(rec, 'shutdown', { message: 'shutdown' });
          break;
        }
        if (taskStateRank(rec.status.state) > RANK_ACCEPTED || this.everStarted.has(id)) {
          // Past ACCEPTED yet unknown here: an earlier run of this daemon had it, and its process is not ours.
          this.advance(rec, 'failed', { message: 'lost', err: 'task: the node\'s agent restarted and no longer runs this task' });
          break;
        }
        this.advance(rec, 'accepted', { message: 'accepted' });
        this.track(rec, () => this.startSequence(rec));
        return;
      }
      case 'prepared':
        assert(false, `task ${id} prepared outside its start sequence`);
        break;
      case 'started':
        if (this.wantsStop(rec) && !rec.stopIssued) {
          rec.stopWanted = true;
          rec.stopIssued = true;
          this.track(rec, () => this.stopTask(rec));
          return;
        }
        return; // running, or being stopped: its exit watcher reports the end
      case 'dead':
        this.track(rec, () => this.removeTask(rec));
        return;
      case 'removed':
        break;
    }
    if (!rec.inSet) this.records.delete(id); // nothing left to do for a task this node no longer holds
  }

  private track(rec: TaskRecord, op: () => Promise<void>): void {
    assert(!rec.busy, `task ${rec.task.id} has two operations at once`);
    rec.busy = true;
    const p = op()
      .catch((err: unknown) => {
        // Retried on the next assignment set, not at once: a runtime that keeps failing must not spin the agent.
        rec.parked = true;
        this.log.error({ task: rec.task.id, err: (err as Error).message }, 'task operation failed; retrying with the next assignments');
      })
      .finally(() => {
        rec.busy = false;
        this.inFlight.delete(p);
        this.reconcile(rec);
      });
    this.inFlight.add(p);
  }

  private async startSequence(rec: TaskRecord): Promise<void> {
    const id = rec.task.id;
    await this.acquireStartSlot();
    try {
      if (this.closed) return;
      if (this.wantsStop(rec)) {
        this.advance(rec, 'shutdown', { message: 'shutdown' });
        return;
      }
      assert(rec.runtime === 'none' && !this.everStarted.has(id), `task ${id} would start twice`);
      this.markStarted(id);
      this.advance(rec, 'preparing', { message: 'preparing' });
      try {
        await this.runtime.prepare(await this.containerConfig(rec.task));
        rec.runtime = 'prepared';
      } catch (err) {
        rec.runtime = 'dead';
        this.fail(rec, err);
        return;
      }
      if (this.closed) return;
      if (this.wantsStop(rec)) {
        rec.runtime = 'dead';
        this.advance(rec, 'shutdown', { message: 'shutdown' });
        return;
      }
      this.advance(rec, 'starting', { message: 'starting' });
      let pid: number;
      try {
        pid = (await this.runtime.start(id)).pid;
      } catch (err) {
        rec.runtime = 'dead';
        this.fail(rec, err);
        return;
      }
      rec.runtime = 'started';
      rec.pid = pid;
      const check = healthCommand(rec.task.spec.containerSpec.healthcheck);
      // With a health check a task stays STARTING until the check first passes, as in Docker.
      if (check === null) {
        this.advance(rec, 'running', { message: 'started', containerStatus: { containerId: id, pid, exitCode: 0 } });
        this.setReady(rec, true);
      }
      else this.watchHealth(rec, check);
      this.watchExit(rec);
    } finally {
      this.releaseStartSlot();
    }
  }

  /** SwarmKit's rule: a failure before STARTING rejects the task, from STARTING on it fails. */
  private fail(rec: TaskRecord, err: unknown): void {
    const message = err instanceof RuntimeError || err instanceof Error ? err.message : String(err);
    const state: TaskState = taskStateRank(rec.status.state) < RANK_STARTING ? 'rejected' : 'failed';
    this.log.info({ task: rec.task.id, state, err: message }, 'task could not start');
    this.advance(rec, state, { message: state === 'rejected' ? 'preparing failed' : 'starting failed', err: message });
  }

  private watchExit(rec: TaskRecord): void {
    const id = rec.task.id;
    this.runtime.wait(id).then(
      (exit) => {
        if (this.closed) return;
        assert(rec.runtime === 'started', `task ${id} exited while ${rec.runtime}`);
        rec.runtime = 'dead';
        this.stopHealth(rec);
        const containerStatus = { containerId: id, pid: rec.pid, exitCode: exit.exitCode };
        if (rec.unhealthy !== null) this.advance(rec, 'failed', { message: 'unhealthy', err: `task: unhealthy container: ${rec.unhealthy}`, containerStatus });
        else if (rec.stopWanted) this.advance(rec, 'shutdown', { message: 'shutdown', containerStatus });
        else if (exit.exitCode === 0 && exit.oomKilled !== true) this.advance(rec, 'complete', { message: 'finished', containerStatus });
        else {
          const oom = exit.oomKilled === true ? ': OOM killed' : '';
          this.advance(rec, 'failed', { message: 'started', err: `task: non-zero exit (${exit.exitCode})${oom}`, containerStatus });
        }
        this.reconcile(rec);
      },
      (err: unknown) => {
        if (this.closed) return;
        rec.runtime = 'dead';
        this.stopHealth(rec);
        this.advance(rec, 'failed', { message: 'started', err: `task: lost track of the process: ${(err as Error).message}` });
        this.reconcile(rec);
      },
    );
  }

  /**
   * Docker's health check: every interval (the first after one interval) the command runs in the container with a
   * timeout; the first pass makes the task RUNNING; `retries` failures in a row (not counted in the start period
   * before the first pass) make it unhealthy: it is stopped and reported FAILED, and the orchestrator replaces it.
   */
  private watchHealth(rec: TaskRecord, check: HealthCheck): void {
    const id = rec.task.id;
    const startedAtMs = this.nowMs();
    let failures = 0;
    let healthy = false;
    const tick = async (): Promise<void> => {
      rec.healthTimer = null;
      if (this.closed || rec.runtime !== 'started' || rec.stopIssued) return;
      let result;
      try {
        result = await this.runtime.exec(id, check.argv, { timeoutMs: check.timeoutMs });
      } catch {
        return; // the process is gone: its exit watcher reports it
      }
      if (this.closed || rec.runtime !== 'started' || rec.stopIssued) return;
      if (result.exitCode === 0) {
        failures = 0;
        if (!healthy) {
          healthy = true;
          this.advance(rec, 'running', { message: 'started', containerStatus: { containerId: id, pid: rec.pid, exitCode: 0 } });
          this.setReady(rec, true);
        }
      } else if (healthy || this.nowMs() - startedAtMs >= check.startPeriodMs) {
        failures += 1;
        if (failures >= check.retries) {
          const what = result.timedOut ? `timed out after ${check.timeoutMs} ms` : `exit ${result.exitCode}`;
          const output = result.output.trim().split('\n').slice(-1)[0] ?? '';
          rec.unhealthy = `health check failed ${failures} times in a row (last: ${what}${output === '' ? '' : `: ${output.slice(0, 200)}`})`;
          this.log.info({ task: id, reason: rec.unhealthy }, 'task unhealthy; stopping it');
          this.setReady(rec, false);
          if (!rec.busy) {
            rec.stopIssued = true;
            this.track(rec, () => this.stopTask(rec));
          }
          return;
        }
      }
      rec.healthTimer = setTimeout(() => void tick(), check.intervalMs);
    };
    rec.healthTimer = setTimeout(() => void tick(), check.intervalMs);
  }

  private stopHealth(rec: TaskRecord): void {
    if (rec.healthTimer !== null) clearTimeout(rec.healthTimer);
    rec.healthTimer = null;
  }

  private async stopTask(rec: TaskRecord): Promise<void> {
    // Out of DNS answers before it is told to stop, so no new client picks a task that is going away.
    this.setReady(rec, false);
    const grace = rec.task.spec.containerSpec.stopGracePeriodMs;
    try {
      await this.runtime.stop(rec.task.id, grace);
    } catch (err) {
      rec.stopIssued = false; // the next assignment set tries again
      throw err;
    }
  }

  private async removeTask(rec: TaskRecord): Promise<void> {
    await this.runtime.remove(rec.task.id);
    await this.networking?.detach(rec.task.id);
    rec.runtime = 'removed';
  }

  /** Tells the network driver whether the task may be in DNS answers (only tasks with overlay attachments are there). */
  private setReady(rec: TaskRecord, ready: boolean): void {
    if (this.networking !== null && rec.task.networksAttachments.length > 0) this.networking.setReady(rec.task.id, ready);
  }

  /**
   * The task's container config, with its network namespace made first when it has overlay attachments: eth0…
   * carry its addresses, and /etc/hosts names it by the first of them, as Docker's does.
   */
  private async containerConfig(task: Task): Promise<ContainerConfig> {
    const config = containerConfigFor(task, this.files);
    if (this.networking === null || task.networksAttachments.length === 0) return config;
    // Host-mode ports with a number: this node forwards them to the task (0, a port picked per node, is not done yet).
    const hostPorts = (task.endpoint?.ports ?? []).filter((p) => p.publishMode === 'host' && p.publishedPort > 0).map((p) => ({ protocol: p.protocol, publishedPort: p.publishedPort, targetPort: p.targetPort }));
    const { netnsPath, nameserver } = await this.networking.attach(task.id, task.networksAttachments, { service: task.serviceName, task: config.name, ...(task.endpoint?.spec.lbStrategy !== undefined ? { lb: task.endpoint.spec.lbStrategy } : {}) }, hostPorts);
    const first = task.networksAttachments[0]?.addresses[0];
    const ownAddress = first === undefined ? [] : [`${first.slice(0, first.indexOf('/'))} ${config.hostname}`];
    // The embedded DNS answers the swarm's names and passes the rest on; ndots:0 asks it for `web` as it is.
    const resolvConf = nameserver === null ? config.resolvConf : `nameserver ${nameserver}\noptions ndots:0\n`;
    return { ...config, networkNamespacePath: netnsPath, extraHosts: [...ownAddress, ...config.extraHosts], resolvConf };
  }

  private markStarted(id: string): void {
    this.everStarted.add(id);
    const bound = 4 * this.maxTasks;
    for (const old of this.everStarted) {
      if (this.everStarted.size <= bound) break;
      this.everStarted.delete(old);
    }
  }

  private acquireStartSlot(): Promise<void> {
    if (this.startsRunning < this.maxConcurrentStarts || this.closed) {
      this.startsRunning++;
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.startWaiters.push(() => {
        this.startsRunning++;
        resolve();
      }),
    );
  }

  private releaseStartSlot(): void {
    this.startsRunning--;
    assert(this.startsRunning >= 0, 'start slots released more often than taken');
    this.startWaiters.shift()?.();
  }

  // ------------------------------------------------------------------ reporting

  /**
   * Moves the task to `state` and queues the report. A move the manager has already passed (it ORPHANED the task,
   * say) is dropped: the manager's state stands. Returns whether the task moved.
   */
  private advance(rec: TaskRecord, state: TaskState, fields: { message: string; err?: string; containerStatus?: TaskStatus['containerStatus'] }): boolean {
    if (!canTransitionTask(rec.status.state, state)) return false;
    // Staying put is a move only the first time this agent reports it (the manager may have set it already).
    if (rec.status.state === state && (rec.lastReported === state || isTerminalTaskState(state))) return false;
    assert(rec.lastReported === null || canTransitionTask(rec.lastReported, state), `task ${rec.task.id} would move back from ${rec.lastReported} to ${state}`);
    const status: TaskStatus = {
      state,
      timestampMs: this.nowMs(),
      message: fields.message,
      err: fields.err ?? '',
      containerStatus: fields.containerStatus ?? rec.status.containerStatus,
      // Docker's PortStatus: the host-mode ports this task holds on its node while it runs.
      portStatus: state === 'running' ? (rec.task.endpoint?.ports ?? []).filter((p) => p.publishMode === 'host' && p.publishedPort > 0).map((p) => ({ ...p })) : [],
    };
    rec.status = status;
    rec.lastReported = state;
    if (isTerminalTaskState(state)) this.setReady(rec, false);
    this.pending.push({ taskId: rec.task.id, status });
    this.scheduleFlush();
    return true;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.pending.length > 0 && !this.closed) {
      const batch = this.pending.splice(0, this.maxReportBatch);
      assert(batch.length <= this.maxReportBatch, 'batch over its bound');
      try {
        this.reportFn(batch);
      } catch (err) {
        // The dispatcher asks for statuses() on its next session: nothing reported is lost for good.
        this.log.warn({ err: (err as Error).message, updates: batch.length }, 'reporting task status failed');
      }
    }
  }
}
