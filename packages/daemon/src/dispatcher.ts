// The dispatcher, manager side: agents open a session over libp2p (/swarm/dispatcher/1.0.0); the leader pushes each
// node its full assignment set whenever it changes and writes the task status the agents report into Raft, in batches.
// With an assignment set go the bytes of the secrets and configs its tasks use: to that node only, opened here.

import type { GossipHost, Stream } from '@swarm/gossip';
import { statusOps } from '@swarm/manager';
import type { IngressConfig } from '@swarm/netdriver';
import type { TaskFiles } from '@swarm/runtime';
import { isTaskState, isTerminalTaskState, taskStateRank, type Op, type PortConfig, type Secret, type Store, type Task, type TaskStatusUpdate } from '@swarm/store';
import type { Logger } from '@swarm/wire';
import { encodeFrame, FrameReader } from 'raft-consensus-ts';
import type { AgentLike } from './agent-session.js';
import { assert } from './errors.js';

export const DISPATCHER_PROTOCOL = '/swarm/dispatcher/1.0.0';
/** A full assignment set of a busy node is a few MiB at most. */
export const MAX_DISPATCH_FRAME_BYTES = 32 * 1024 * 1024;
const MAX_SESSIONS = 4_096;
/** Status updates per Raft transaction, and how long updates wait to be batched. */
const MAX_UPDATES_PER_BATCH = 1_024;
const BATCH_DELAY_MS = 20;
/** Updates waiting for Raft beyond this are dropped (the agent re-sends all its statuses on its next session). */
const MAX_PENDING_UPDATES = 100_000;
const MAX_BATCH_RETRIES = 5;

export type { TaskStatusUpdate };

/** Agent -> manager. */
export type AgentMessage =
  | { type: 'hello'; nodeId: string; statuses: TaskStatusUpdate[] }
  | { type: 'status'; updates: TaskStatusUpdate[] }
  /** Sent every heartbeat period: a session that falls silent marks its node Down even while gossip says alive. */
  | { type: 'heartbeat' };

/** How often an agent sends a heartbeat on its session, and how long the leader waits before calling it dead. */
export const DEFAULT_HEARTBEAT_PERIOD_MS = 1_000;
/** Generous against starved-but-alive nodes: gossip (about 1.3 s) is the fast path, this the backstop for a hung agent. */
export const DEFAULT_HEARTBEAT_GRACE_MS = 10_000;

/** Manager -> agent. redirect: this manager does not lead; `leader` is the leader's multiaddr if known. */
export type DispatcherMessage =
  | { type: 'redirect'; leader: string | null }
  /** `files` only when the set of secrets and configs the tasks use changed (the agent keeps the last one). */
  | { type: 'assignments'; tasks: Task[]; files?: TaskFiles }
  /** The routing mesh this node serves; sent when it changes (null: none). */
  | { type: 'ingress'; ingress: IngressConfig | null };


/**
 * The secrets and configs used by the tasks in a node's set that may still start (desired running, not ended), with
 * their bytes: secrets opened with `openSecret`. A secret that does not open is left out and logged (never its
 * bytes); the agent then fails the task that needs it, naming it. Tasks that are stopping get nothing.
 */
export function filesFor(store: Store, tasks: readonly Task[], openSecret: (secret: Secret) => Uint8Array, logger: Logger): TaskFiles {
  const { secretIds, configIds } = fileIdsOf(tasks);
  if (secretIds.size === 0 && configIds.size === 0) return { secrets: [], configs: [] };
  return store.view((tx) => {
    const secrets: Array<{ id: string; data: Uint8Array }> = [];
    for (const id of secretIds) {
      const secret = tx.get('secret', id);
      if (secret === undefined) continue;
      try {
        secrets.push({ id, data: openSecret(secret) });
      } catch (err) {
        logger.warn({ secret: id, name: secret.spec.name, err: (err as Error).message }, 'a secret could not be opened; the tasks that use it cannot start');
      }
    }
    const configs = [...configIds].flatMap((id) => {
      const config = tx.get('config', id);
      return config === undefined ? [] : [{ id, data: config.spec.data }];
    });
    assert(secrets.length <= secretIds.size && configs.length <= configIds.size, 'only the files the tasks use');
    return { secrets, configs };
  });
}

/** The ids of the secrets and configs used by the tasks that may still start (what filesFor sends). */
function fileIdsOf(tasks: readonly Task[]): { secretIds: Set<string>; configIds: Set<string> } {
  const secretIds = new Set<string>();
  const configIds = new Set<string>();
  for (const t of tasks) {
    if (taskStateRank(t.desiredState) > taskStateRank('running') || isTerminalTaskState(t.status.state)) continue;
    for (const r of t.spec.containerSpec.secrets ?? []) secretIds.add(r.secretId);
    for (const r of t.spec.containerSpec.configs ?? []) configIds.add(r.configId);
  }
  return { secretIds, configIds };
}

/**
 * Which files a set of tasks needs, as a key: secrets and configs cannot change under an id, so the same ids are the
 * same bytes, and a task's status moving on (a new assignment set) need not open and send them again.
 */
export function filesKey(tasks: readonly Task[]): string {
  const { secretIds, configIds } = fileIdsOf(tasks);
  return `${[...secretIds].sort().join(',')}|${[...configIds].sort().join(',')}`;
}

/**
 * What a node must know about: its tasks that should run, and those still alive that must stop. Tasks that are
 * terminal and meant to stay so are left out (nothing to do), so the set stays small on long-lived nodes.
 */
export function assignmentsFor(store: Store, nodeId: string): Task[] {
  return store
    .view((tx) => tx.tasksByNode(nodeId))
    .filter((t) => !(isTerminalTaskState(t.status.state) && isTerminalTaskState(t.desiredState)))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Every service with ingress-mode ports (as allocated), by name: the same for every node, read once per sync. */
export function ingressServices(store: Store): IngressConfig['services'] {
  return store.view((tx) =>
    tx
      .list('service')
      .map((s) => ({
        name: s.spec.name,
        ports: s.endpoint.ports.filter((p) => p.publishMode === 'ingress' && p.publishedPort !== 0).map((p) => ({ protocol: p.protocol, publishedPort: p.publishedPort, targetPort: p.targetPort })),
        strategy: s.spec.endpointSpec.lbStrategy ?? 'round-robin',
      }))
      .filter((s) => s.ports.length > 0)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  );
}

/**
 * The routing mesh a node serves: its address on the ingress network and `services`; null while the node has no
 * ingress address or no service publishes through the mesh.
 */
export function ingressFor(store: Store, nodeId: string, services: IngressConfig['services']): IngressConfig | null {
  if (services.length === 0) return null;
  const attachment = store.view((tx) => tx.get('node', nodeId)?.attachments.find((a) => a.network.ingress));
  return attachment === undefined ? null : { attachment, services };
}

/** A cheap fingerprint of an assignment set: it changes when any task in it is written. */
export function assignmentsSignature(tasks: readonly Task[]): string {
  return tasks.map((t) => `${t.id}@${t.meta.version.index}`).join(',');
}

/**
 * A batch of reports (several per node when a node reports often) as one transaction's ops: each node's reports
 * are merged first, so a task reported twice in the batch is written once, with its latest status.
 */
export function batchOps(store: Store, batch: ReadonlyArray<{ nodeId: string; updates: readonly TaskStatusUpdate[] }>): Op[] {
  const byNode = new Map<string, TaskStatusUpdate[]>();
  for (const b of batch) {
    const list = byNode.get(b.nodeId);
    if (list === undefined) byNode.set(b.nodeId, [...b.updates]);
    else list.push(...b.updates);
  }
  return store.view((tx) => [...byNode].flatMap(([nodeId, updates]) => statusOps(tx, nodeId, updates)));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Shape checks of what an agent sends; a malformed update is dropped, not trusted. */
export function parseUpdates(value: unknown): TaskStatusUpdate[] {
  if (!Array.isArray(value)) return [];
  return value
    .filter((u): u is TaskStatusUpdate => {
      if (!isRecord(u) || typeof u['taskId'] !== 'string' || !isRecord(u['status'])) return false;
      const s = u['status'];
      return isTaskState(s['state']) && typeof s['timestampMs'] === 'number' && typeof s['message'] === 'string' && typeof s['err'] === 'string';
    })
    .map((u) => ({ ...u, status: { ...u.status, portStatus: portStatusOf(u.status.portStatus) } }));
}

/** The ports an agent says a task holds, well-formed ones only (none from an agent that sends none). */
function portStatusOf(value: unknown): PortConfig[] {
  if (!Array.isArray(value)) return [];
  const port = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 65535;
  return value.filter(
    (p): p is PortConfig =>
      isRecord(p) && typeof p['name'] === 'string' && ['tcp', 'udp', 'sctp'].includes(p['protocol'] as string) && port(p['targetPort']) && port(p['publishedPort']) && (p['publishMode'] === 'host' || p['publishMode'] === 'ingress'),
  );
}

export interface DispatcherDeps {
  host: GossipHost;
  store: Store;
  isLeader(): boolean;
  /** The leader's multiaddr, for redirects (null while unknown). */
  leaderAddress(): string | null;
  /** The node id a libp2p peer is, by the store (its engine label), or null. */
  nodeOfPeer(peer: string): string | null;
  propose(ops: Op[]): Promise<number>;
  /** A secret's plaintext (its sealed data opened with the cluster's data key); throws when it cannot. */
  openSecret(secret: Secret): Uint8Array;
  logger: Logger;
}

interface Session {
  nodeId: string;
  signature: string;
  /** The ingress config last sent, as JSON ('' before the first). */
  ingress: string;
  /** filesKey of the files last sent (null before the first). */
  files: string | null;
  /** When the agent last said anything (Infinity for the leader's own, in-process agent). */
  lastSeenMs: number;
  deliver(message: DispatcherMessage): void;
  close(): void;
}

/** An agent on the leader itself talks to the dispatcher in process (libp2p does not dial itself). */
export interface LocalSession {
  report(updates: TaskStatusUpdate[]): void;
  detach(): void;
}

export class Dispatcher {
  private readonly sessions = new Set<Session>();
  private pending: Array<{ nodeId: string; updates: TaskStatusUpdate[] }> = [];
  private pendingCount = 0;
  private flushTimer: NodeJS.Timeout | null = null;
  private flushing = false;
  private stopped = false;

  constructor(private readonly deps: DispatcherDeps) {}

  async start(): Promise<void> {
    await this.deps.host.handle(DISPATCHER_PROTOCOL, (stream, remote) => this.serve(stream, remote), MAX_SESSIONS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    for (const s of this.sessions) s.close();
    this.sessions.clear();
    await this.deps.host.unhandle(DISPATCHER_PROTOCOL).catch(() => undefined);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Nodes whose session with this leader has been silent longer than graceMs (missed heartbeats). */
  silentNodes(nowMs: number, graceMs: number): Set<string> {
    const out = new Set<string>();
    for (const s of this.sessions) if (nowMs - s.lastSeenMs > graceMs) out.add(s.nodeId);
    // A node with a fresh session besides a silent old one (it reconnected) is not silent.
    for (const s of this.sessions) if (nowMs - s.lastSeenMs <= graceMs) out.delete(s.nodeId);
    return out;
  }

  /** Called after every store change (and periodically): pushes changed assignment sets; drops sessions off-lead. */
  sync(): void {
    if (this.stopped) return;
    if (!this.deps.isLeader()) {
      for (const s of this.sessions) {
        s.deliver({ type: 'redirect', leader: this.deps.leaderAddress() });
        s.close();
      }
      this.sessions.clear();
      return;
    }
    const services = ingressServices(this.deps.store);
    for (const s of this.sessions) this.push(s, services);
  }

  /** The leader's own agent. `onClosed` runs when the session ends (this node stopped leading, or stop()). */
  attachLocal(nodeId: string, agent: AgentLike, onClosed: () => void): LocalSession {
    let open = true;
    const session: Session = {
      nodeId,
      signature: '',
      ingress: '',
      files: null,
      lastSeenMs: Infinity,
      deliver: (m) => {
        if (open && m.type === 'assignments') agent.setAssignments(m.tasks, m.files);
        if (open && m.type === 'ingress') agent.setIngress(m.ingress);
      },
      close: () => {
        if (!open) return;
        open = false;
        onClosed();
      },
    };
    this.sessions.add(session);
    this.enqueue(nodeId, agent.statuses());
    this.push(session);
    return {
      report: (updates) => {
        if (open) this.enqueue(nodeId, updates);
      },
      detach: () => {
        this.sessions.delete(session);
        session.close();
      },
    };
  }

  private push(s: Session, services: IngressConfig['services'] = ingressServices(this.deps.store)): void {
    const tasks = assignmentsFor(this.deps.store, s.nodeId);
    const signature = assignmentsSignature(tasks);
    // The mesh first: a task that is about to start may be a backend of a port the node must serve.
    const ingress = ingressFor(this.deps.store, s.nodeId, services);
    const ingressText = JSON.stringify(ingress);
    if (ingressText !== s.ingress) {
      s.ingress = ingressText;
      s.deliver({ type: 'ingress', ingress });
    }
    if (signature === s.signature) return;
    s.signature = signature;
    const key = filesKey(tasks);
    if (key === s.files) {
      s.deliver({ type: 'assignments', tasks });
      return;
    }
    s.files = key;
    s.deliver({ type: 'assignments', tasks, files: filesFor(this.deps.store, tasks, this.deps.openSecret, this.deps.logger) });
  }

  private streamSession(nodeId: string, stream: Stream): Session {
    const session: Session = {
      nodeId,
      signature: '',
      ingress: '',
      files: null,
      lastSeenMs: Date.now(),
      deliver: (message) => {
        try {
          stream.send(encodeFrame(message, MAX_DISPATCH_FRAME_BYTES));
        } catch (err) {
          this.deps.logger.debug({ err: (err as Error).message }, 'a dispatcher session write failed');
          this.sessions.delete(session);
          stream.abort(err instanceof Error ? err : new Error(String(err)));
        }
      },
      close: () => void stream.close().catch(() => undefined),
    };
    return session;
  }

  private redirect(stream: Stream): void {
    try {
      stream.send(encodeFrame({ type: 'redirect', leader: this.deps.leaderAddress() } satisfies DispatcherMessage, MAX_DISPATCH_FRAME_BYTES));
    } catch {
      // the agent tries another manager anyway
    }
    void stream.close().catch(() => undefined);
  }

  private async serve(stream: Stream, remote: string): Promise<void> {
    const reader = new FrameReader(MAX_DISPATCH_FRAME_BYTES);
    let session: Session | null = null;
    try {
      for await (const chunk of stream) {
        const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
        for (const message of reader.push(Buffer.from(bytes))) {
          if (!isRecord(message)) continue;
          if (session === null) {
            if (message['type'] !== 'hello' || typeof message['nodeId'] !== 'string') return;
            if (!this.deps.isLeader()) {
              this.redirect(stream);
              return;
            }
            const nodeId = message['nodeId'];
            // The pnet key admits cluster members only; a session must also come from that node's own peer id.
            if (this.deps.nodeOfPeer(remote) !== nodeId) {
              this.deps.logger.warn({ remote, nodeId }, 'a dispatcher session for another node refused');
              return;
            }
            session = this.streamSession(nodeId, stream);
            this.sessions.add(session);
            this.deps.logger.info({ node: nodeId }, 'agent session started');
            this.enqueue(nodeId, parseUpdates(message['statuses']));
            this.push(session);
            continue;
          }
          session.lastSeenMs = Date.now();
          if (message['type'] === 'status') this.enqueue(session.nodeId, parseUpdates(message['updates']));
        }
      }
    } catch (err) {
      this.deps.logger.debug({ err: (err as Error).message, remote }, 'agent session ended');
    } finally {
      if (session !== null) {
        this.sessions.delete(session);
        this.deps.logger.info({ node: session.nodeId }, 'agent session closed');
      }
    }
  }

  private enqueue(nodeId: string, updates: TaskStatusUpdate[]): void {
    if (updates.length === 0) return;
    if (this.pendingCount + updates.length > MAX_PENDING_UPDATES) {
      this.deps.logger.warn({ node: nodeId, dropped: updates.length }, 'status updates dropped: too many waiting for raft');
      return;
    }
    this.pending.push({ nodeId, updates });
    this.pendingCount += updates.length;
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = null;
      void this.flush();
    }, BATCH_DELAY_MS);
  }

  /** One transaction per batch; a version race (the orchestrator wrote a task meanwhile) re-reads and retries. */
  private async flush(): Promise<void> {
    if (this.flushing || this.stopped) return;
    this.flushing = true;
    try {
      while (this.pending.length > 0 && !this.stopped) {
        const batch: Array<{ nodeId: string; updates: TaskStatusUpdate[] }> = [];
        let n = 0;
        while (this.pending.length > 0 && n < MAX_UPDATES_PER_BATCH) {
          const next = this.pending.shift();
          assert(next !== undefined, 'pending is not empty');
          batch.push(next);
          n += next.updates.length;
        }
        this.pendingCount -= n;
        for (let attempt = 1; attempt <= MAX_BATCH_RETRIES; attempt++) {
          const ops = batchOps(this.deps.store, batch);
          if (ops.length === 0) break;
          try {
            await this.deps.propose(ops);
            break;
          } catch (err) {
            if (attempt === MAX_BATCH_RETRIES || !this.deps.isLeader()) {
              this.deps.logger.warn({ err: (err as Error).message, updates: n }, 'task status updates not written');
              break;
            }
          }
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
