// A store and a clock for the reconcilers, without Raft or nodes: ops are committed at the next index, agents are
// played by the test (runAssigned marks assigned tasks running), and settle() runs passes until nothing changes.

import { encodeTransaction, Store, type Node, type Op, type Service, type Task, type TaskState } from '@swarm/store';
import { newNode, newService } from '@swarm/store/testing';
import { leaderReconcilers, type Reconciler } from '../src/index.js';

export class Harness {
  readonly store = new Store();
  index = 0;
  nowMs = 1_000_000;
  private ids = 0;
  readonly reconcilers: Reconciler[] = leaderReconcilers({ newId: () => `task${String(++this.ids).padStart(4, '0')}` });
  /** Ops each reconciler wrote, by name, over the harness's life. */
  readonly written = new Map<string, number>();
  /** Agents fail tasks of these images at start (a crashing image). */
  readonly failingImages = new Set<string>();
  /** Passes of each reconciler that wrote something. */
  readonly writingPasses = new Map<string, number>();

  commit(ops: Op[]): void {
    if (ops.length === 0) return;
    this.index += 1;
    // The store stamps objects with the transaction's time: keep it the harness clock, not index-derived.
    mustCommitAt(this.store, this.index, this.nowMs, ops);
  }

  addNodes(n: number, change: (node: ReturnType<typeof newNode>, i: number) => void = () => undefined): string[] {
    const ids: string[] = [];
    const ops: Op[] = [];
    for (let i = 1; i <= n; i++) {
      const id = `node${String(this.store.view((tx) => tx.count('node')) + i).padStart(2, '0')}`;
      const node = newNode(id, `host-${id.slice(4)}`);
      change(node, i);
      ops.push({ op: 'create', kind: 'node', object: node });
      ids.push(id);
    }
    this.commit(ops);
    return ids;
  }

  addService(name: string, change: (s: ReturnType<typeof newService>) => void = () => undefined): string {
    const id = `svc-${name}`;
    const s = newService(id, name, 1);
    change(s);
    this.commit([{ op: 'create', kind: 'service', object: s }]);
    return id;
  }

  service(id: string): Service {
    const s = this.store.view((tx) => tx.get('service', id));
    if (s === undefined) throw new Error(`no service ${id}`);
    return s;
  }

  node(id: string): Node {
    const n = this.store.view((tx) => tx.get('node', id));
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  editService(id: string, change: (s: Service) => void): void {
    const copy = structuredClone(this.service(id));
    change(copy);
    this.commit([{ op: 'update', kind: 'service', object: copy }]);
  }

  editNode(id: string, change: (n: Node) => void): void {
    const copy = structuredClone(this.node(id));
    change(copy);
    this.commit([{ op: 'update', kind: 'node', object: copy }]);
  }

  tasks(serviceId?: string): Task[] {
    return this.store.view((tx) => (serviceId === undefined ? tx.list('task') : tx.tasksByService(serviceId))).sort((a, b) => a.slot - b.slot || (a.id < b.id ? -1 : 1));
  }

  /** What the daemon does on `service update`: the new spec, the old one kept, and the rollout started. */
  updateService(id: string, change: (s: Service) => void): void {
    this.editService(id, (s) => {
      const previous = structuredClone(s.spec);
      change(s);
      s.previousSpec = previous;
      s.updateStatus = { state: 'updating', startedAtMs: this.nowMs, completedAtMs: null, message: 'update in progress' };
    });
  }

  /** Tasks the orchestrator wants running. */
  live(serviceId: string): Task[] {
    return this.tasks(serviceId).filter((t) => t.desiredState === 'running');
  }

  /** One pass of every reconciler, each seeing the previous one's writes; returns the number of ops written. */
  pass(): number {
    let total = 0;
    for (const r of this.reconcilers) {
      const ops = r.run(this.store, this.nowMs);
      this.commit(ops);
      total += ops.length;
      if (ops.length > 0) {
        this.written.set(r.name, (this.written.get(r.name) ?? 0) + ops.length);
        this.writingPasses.set(r.name, (this.writingPasses.get(r.name) ?? 0) + 1);
      }
    }
    return total;
  }

  /** Passes until one writes nothing, playing the agents in between (assigned -> running, shutdown honoured). */
  settle(maxPasses = 50): void {
    for (let i = 0; i < maxPasses; i++) {
      const wrote = this.pass() + this.playAgents();
      if (wrote === 0) return;
    }
    throw new Error(`not settled after ${maxPasses} passes`);
  }

  /** What agents on live nodes do: run what is assigned to them, stop what they are told to stop. */
  playAgents(): number {
    const ops: Op[] = [];
    for (const t of this.tasks()) {
      if (t.nodeId === '') continue;
      const node = this.store.view((tx) => tx.get('node', t.nodeId));
      if (node === undefined || node.status.state !== 'ready') continue;
      const crashes = this.failingImages.has(t.spec.containerSpec.image);
      if (t.desiredState === 'running' && t.status.state === 'assigned') ops.push(crashes ? this.statusOp(t, 'failed', 'task: non-zero exit (1)') : this.statusOp(t, 'running'));
      else if (t.desiredState === 'shutdown' && ['assigned', 'running'].includes(t.status.state)) ops.push(this.statusOp(t, 'shutdown'));
    }
    this.commit(ops);
    return ops.length;
  }

  statusOp(t: Task, state: TaskState, err = ''): Op {
    return { op: 'update', kind: 'task', object: { ...t, status: { ...t.status, state, timestampMs: this.nowMs, message: state, err } } };
  }

  /** The agent reports that a task's process ended. */
  end(taskId: string, state: 'complete' | 'failed'): void {
    const t = this.store.view((tx) => tx.get('task', taskId));
    if (t === undefined) throw new Error(`no task ${taskId}`);
    this.commit([this.statusOp(t, state, state === 'failed' ? 'task: non-zero exit (1)' : '')]);
  }

  /** Hostname -> live running tasks of the service. */
  placement(serviceId: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of this.live(serviceId)) {
      if (t.status.state !== 'running') continue;
      const host = this.node(t.nodeId).description.hostname;
      out[host] = (out[host] ?? 0) + 1;
    }
    return out;
  }
}

/** Unlike the store's testing commit (which stamps index * 1000), stamps the harness clock: restart delays read it. */
function mustCommitAt(store: Store, index: number, timestampMs: number, ops: Op[]): void {
  const r = store.apply(index, encodeTransaction({ timestampMs, ops }));
  if (!r.ok) throw new Error(`entry ${index} did not apply: ${r.error.code}: ${r.error.message}`);
}

export function counts(record: Record<string, number>): number[] {
  return Object.values(record).sort((a, b) => a - b);
}

export function sum(record: Record<string, number>): number {
  return Object.values(record).reduce((a, b) => a + b, 0);
}
