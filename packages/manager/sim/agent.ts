// A simulated node's agent with a fake container runtime: it takes the tasks assigned to its node, walks them through
// ACCEPTED..RUNNING a state per tick, stops what it is told to stop, and reports every move late (later when slow).

import { isTerminalTaskState, taskStateRank, type ReadTx, type Task, type TaskState, type TaskStatus, type TaskStatusUpdate } from '@swarm/store';
import type { Rng } from './random.js';

/** What a task's image does when started: the simulator names images so the fate is visible in every trace. */
export type ImageFate = 'runs' | 'crashes' | 'rejected';

/** `crash:*` images exit non-zero right after starting; `badimage:*` fail to pull (REJECTED); the rest run. */
export function imageFate(image: string): ImageFate {
  if (image.startsWith('crash:')) return 'crashes';
  if (image.startsWith('badimage:')) return 'rejected';
  return 'runs';
}

export function isFaultyImage(task: Task): boolean {
  return imageFate(task.spec.containerSpec.image) !== 'runs';
}

/**
 * up: connected and working. partitioned: cut off from the managers, its containers keep their state and nothing
 * it says arrives. crashed: the machine went down with its containers. removed: `node rm`, never back.
 */
export type AgentLink = 'up' | 'partitioned' | 'crashed' | 'removed';

interface Container {
  /** The agent's own view of the task, ahead of what the store has heard. */
  state: TaskState;
  /** The last status it reported, re-sent when a partition heals (a new dispatcher session). */
  status: TaskStatus;
}

interface Report extends TaskStatusUpdate {
  dueStep: number;
}

/** Reports in flight per agent: a bound, so a bug that floods reports shows up as a thrown error, not memory. */
const MAX_OUTBOX = 10_000;

const NEXT_STATE: Partial<Record<TaskState, TaskState>> = {
  accepted: 'preparing',
  preparing: 'starting',
  starting: 'running',
};

export class SimAgent {
  link: AgentLink = 'up';
  /** A slow node moves its containers on less often and its reports take several steps to arrive. */
  slow = false;
  private readonly containers = new Map<string, Container>();
  private outbox: Report[] = [];
  private lastDueStep = 0;

  constructor(
    readonly nodeId: string,
    private readonly rng: Rng,
  ) {}

  /** One tick of the agent against the assignment set the dispatcher shows it (the store's tasks of its node). */
  tick(tx: ReadTx, step: number, nowMs: number): void {
    if (this.link !== 'up') return;
    const assigned = tx.tasksByNode(this.nodeId).sort((a, b) => (a.id < b.id ? -1 : 1));
    const seen = new Set<string>();
    for (const t of assigned) {
      seen.add(t.id);
      this.reconcile(t, step, nowMs);
    }
    // A task gone from the store (reaped) is gone from the node too: its container is removed.
    for (const id of [...this.containers.keys()]) if (!seen.has(id)) this.containers.delete(id);
  }

  private reconcile(t: Task, step: number, nowMs: number): void {
    const local = this.containers.get(t.id);
    const storeRank = taskStateRank(t.status.state);
    const wantsRun = taskStateRank(t.desiredState) <= taskStateRank('running');
    if (local === undefined) {
      // The dispatcher only hands out tasks from ASSIGNED on; earlier ones (a global task not yet placed) wait.
      if (storeRank < taskStateRank('assigned') || isTerminalTaskState(t.status.state)) return;
      if (!wantsRun) return this.set(t.id, 'shutdown', step, nowMs, 'shutdown', '');
      if (t.status.state === 'assigned') return this.set(t.id, 'accepted', step, nowMs, 'accepted', '');
      // Past ACCEPTED but unknown here: the machine restarted and the container went with it (as the real agent says).
      return this.set(t.id, 'failed', step, nowMs, 'lost', "task: the node's agent restarted and no longer runs this task");
    }
    if (isTerminalTaskState(local.state)) return;
    if (!wantsRun) return this.set(t.id, 'shutdown', step, nowMs, 'shutdown', '');
    const next = NEXT_STATE[local.state];
    if (next === undefined || !this.rng.chance(this.slow ? 0.3 : 0.7)) return;
    const fate = imageFate(t.spec.containerSpec.image);
    if (local.state === 'preparing' && fate === 'rejected') return this.set(t.id, 'rejected', step, nowMs, 'rejected', 'image pull failed: manifest unknown');
    if (local.state === 'starting' && fate === 'crashes') return this.set(t.id, 'failed', step, nowMs, 'failed', 'task: non-zero exit (1)');
    this.set(t.id, next, step, nowMs, next === 'running' ? 'started' : next, '');
  }

  private set(taskId: string, state: TaskState, step: number, nowMs: number, message: string, err: string): void {
    const exitCode = state === 'failed' ? 1 : 0;
    const status: TaskStatus = {
      state,
      timestampMs: nowMs,
      message,
      err,
      containerStatus: taskStateRank(state) >= taskStateRank('starting') ? { containerId: `ctr-${taskId}`, pid: state === 'running' ? 4242 : 0, exitCode } : null,
      portStatus: [],
    };
    this.containers.set(taskId, { state, status });
    this.send({ taskId, status }, step);
  }

  private send(update: TaskStatusUpdate, step: number): void {
    // Reports of one node arrive in order: a later report is never due before an earlier one.
    const delay = this.slow ? this.rng.int(2, 6) : this.rng.int(0, 1);
    this.lastDueStep = Math.max(this.lastDueStep, step + delay);
    this.outbox.push({ ...update, dueStep: this.lastDueStep });
    if (this.outbox.length > MAX_OUTBOX) throw new Error(`sim agent ${this.nodeId}: ${this.outbox.length} reports in flight`);
  }

  /** Reports that arrive at the dispatcher by this step (none from an agent that is not connected). */
  takeDueReports(step: number): TaskStatusUpdate[] {
    if (this.link !== 'up') return [];
    const due: TaskStatusUpdate[] = [];
    while (this.outbox.length > 0 && (this.outbox[0] as Report).dueStep <= step) {
      const r = this.outbox.shift() as Report;
      due.push({ taskId: r.taskId, status: r.status });
    }
    return due;
  }

  /** Task ids whose container runs here right now (the candidates for a crash). */
  runningTaskIds(): string[] {
    return [...this.containers].filter(([, c]) => c.state === 'running').map(([id]) => id);
  }

  /** The process of a running task ends by itself: non-zero (FAILED) or zero (COMPLETE). */
  endContainer(taskId: string, how: 'failed' | 'complete', step: number, nowMs: number): void {
    const c = this.containers.get(taskId);
    if (this.link !== 'up' || c === undefined || c.state !== 'running') throw new Error(`sim agent ${this.nodeId}: ${taskId} is not running here`);
    if (how === 'failed') this.set(taskId, 'failed', step, nowMs, 'failed', 'task: non-zero exit (137)');
    else this.set(taskId, 'complete', step, nowMs, 'finished', '');
  }

  /** The node stops answering. Reports in flight are lost either way; a crash also loses the containers. */
  fail(kind: 'partitioned' | 'crashed'): void {
    if (this.link !== 'up') throw new Error(`sim agent ${this.nodeId}: fail() while ${this.link}`);
    this.link = kind;
    this.outbox = [];
    if (kind === 'crashed') this.containers.clear();
  }

  /** Back in touch: a new dispatcher session starts with the agent's latest status of every task it holds. */
  recover(step: number): void {
    if (this.link !== 'partitioned' && this.link !== 'crashed') throw new Error(`sim agent ${this.nodeId}: recover() while ${this.link}`);
    this.link = 'up';
    for (const [taskId, c] of this.containers) this.send({ taskId, status: c.status }, step);
  }

  remove(): void {
    this.link = 'removed';
    this.outbox = [];
    this.containers.clear();
  }
}
