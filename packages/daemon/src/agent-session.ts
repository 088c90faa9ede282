// The dispatcher, node side: every node keeps one session with the leader's dispatcher (found through any manager,
// which redirects), hands the assignment sets it receives to the agent, and sends the agent's task status back.

import type { GossipHost, Stream } from '@swarm/gossip';
import type { IngressConfig } from '@swarm/netdriver';
import type { TaskFiles } from '@swarm/runtime';
import type { Task } from '@swarm/store';
import type { Logger } from '@swarm/wire';
import { encodeFrame, FrameReader } from 'raft-consensus-ts';
import { DEFAULT_HEARTBEAT_PERIOD_MS, DISPATCHER_PROTOCOL, MAX_DISPATCH_FRAME_BYTES, type AgentMessage, type Dispatcher, type LocalSession, type TaskStatusUpdate } from './dispatcher.js';

const OPEN_TIMEOUT_MS = 5_000;
const MIN_RETRY_MS = 100;
const MAX_RETRY_MS = 2_000;
/** Redirects followed in a row before backing off (a leader change in progress). */
const MAX_REDIRECTS = 3;
const LOCAL_LEADER_CHECK_MS = 250;

/** What the session needs of the agent (packages/agent implements it). */
export interface AgentLike {
  /** `files`: the bytes of the secrets and configs the tasks use (held in memory only). */
  setAssignments(tasks: Task[], files?: TaskFiles): void;
  setIngress(ingress: IngressConfig | null): void;
  statuses(): TaskStatusUpdate[];
}

export interface AgentSessionDeps {
  host: GossipHost;
  nodeId: string;
  /** Multiaddrs of the managers this node knows (gossip), tried in turn. */
  managers(): string[];
  agent: AgentLike;
  /** This node's own dispatcher while it leads (the agent then talks to it in process), else null. */
  localDispatcher(): Dispatcher | null;
  /** Heartbeat period on the session (default 1 s). */
  heartbeatPeriodMs?: number;
  logger: Logger;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The files of an assignments message; malformed entries are dropped (a task that needs one then fails, naming it). */
export function parseTaskFiles(value: unknown): TaskFiles {
  const list = (v: unknown): Array<{ id: string; data: Uint8Array }> =>
    Array.isArray(v) ? v.filter((f): f is { id: string; data: Uint8Array } => isRecord(f) && typeof f['id'] === 'string' && f['data'] instanceof Uint8Array) : [];
  return isRecord(value) ? { secrets: list(value['secrets']), configs: list(value['configs']) } : { secrets: [], configs: [] };
}

export class AgentSession {
  private stream: Stream | null = null;
  private local: LocalSession | null = null;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private leaderHint: string | null = null;
  private next = 0;
  private wake: (() => void) | null = null;

  constructor(private readonly deps: AgentSessionDeps) {}

  start(): void {
    this.loop ??= this.run();
  }

  get connected(): boolean {
    return this.stream !== null || this.local !== null;
  }

  /** Sends the agent's status changes; while no session is up they wait in the agent (the next hello has them all). */
  report(updates: TaskStatusUpdate[]): void {
    if (this.local !== null) {
      this.local.report(updates);
      return;
    }
    const stream = this.stream;
    if (stream === null || updates.length === 0) return;
    try {
      stream.send(encodeFrame({ type: 'status', updates } satisfies AgentMessage, MAX_DISPATCH_FRAME_BYTES));
    } catch (err) {
      this.deps.logger.debug({ err: (err as Error).message }, 'sending task status failed; the next session re-sends it');
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stream?.abort(new Error('agent session stopped'));
    this.local?.detach();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    let delayMs = MIN_RETRY_MS;
    let redirects = 0;
    while (!this.stopped) {
      const dispatcher = this.deps.localDispatcher();
      let outcome: 'redirected' | 'ended' | 'failed' = 'failed';
      if (dispatcher !== null) {
        outcome = await this.localSession(dispatcher);
      } else {
        const target = this.pickTarget();
        if (target !== null) outcome = await this.session(target);
      }
      if (this.stopped) return;
      if (outcome === 'redirected' && redirects < MAX_REDIRECTS) {
        redirects++;
        continue;
      }
      redirects = 0;
      // A session that ran and ended (leader change) retries at once; failures back off up to MAX_RETRY_MS.
      if (outcome === 'ended') delayMs = MIN_RETRY_MS;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.wake = () => (clearTimeout(timer), resolve());
      });
      this.wake = null;
      if (outcome !== 'ended') delayMs = Math.min(MAX_RETRY_MS, delayMs * 2);
    }
  }

  /** In process with this node's dispatcher, until it stops leading (the dispatcher closes the session). */
  private async localSession(dispatcher: Dispatcher): Promise<'ended'> {
    await new Promise<void>((resolve) => {
      this.local = dispatcher.attachLocal(this.deps.nodeId, this.deps.agent, resolve);
      this.deps.logger.info({}, 'agent session with the local dispatcher started (this node leads)');
      if (this.stopped) this.local.detach();
    });
    this.local = null;
    return 'ended';
  }

  private pickTarget(): string | null {
    if (this.leaderHint !== null) {
      const hint = this.leaderHint;
      this.leaderHint = null;
      return hint;
    }
    const managers = this.deps.managers();
    if (managers.length === 0) return null;
    this.next = (this.next + 1) % managers.length;
    return managers[this.next] ?? null;
  }

  private async session(target: string): Promise<'redirected' | 'ended' | 'failed'> {
    let stream: Stream;
    try {
      stream = await this.deps.host.openStream(target, DISPATCHER_PROTOCOL, AbortSignal.timeout(OPEN_TIMEOUT_MS));
    } catch (err) {
      this.deps.logger.debug({ target, err: (err as Error).message }, 'cannot reach a manager for the agent session');
      return 'failed';
    }
    const reader = new FrameReader(MAX_DISPATCH_FRAME_BYTES);
    let assigned = false;
    // Once this node leads, its agent talks to its own dispatcher: leave the remote session.
    const watch = setInterval(() => {
      if (this.deps.localDispatcher() !== null) stream.abort(new Error('this node leads now'));
    }, LOCAL_LEADER_CHECK_MS);
    const heartbeat = setInterval(() => {
      try {
        stream.send(encodeFrame({ type: 'heartbeat' } satisfies AgentMessage, MAX_DISPATCH_FRAME_BYTES));
      } catch {
        // the session is ending: the read loop below sees it
      }
    }, this.deps.heartbeatPeriodMs ?? DEFAULT_HEARTBEAT_PERIOD_MS);
    try {
      stream.send(encodeFrame({ type: 'hello', nodeId: this.deps.nodeId, statuses: this.deps.agent.statuses() } satisfies AgentMessage, MAX_DISPATCH_FRAME_BYTES));
      this.stream = stream;
      for await (const chunk of stream) {
        const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
        for (const message of reader.push(Buffer.from(bytes))) {
          if (!isRecord(message)) continue;
          if (message['type'] === 'redirect') {
            this.leaderHint = typeof message['leader'] === 'string' ? message['leader'] : null;
            return 'redirected';
          }
          if (message['type'] === 'assignments' && Array.isArray(message['tasks'])) {
            if (!assigned) this.deps.logger.info({ target }, 'agent session with the leader started');
            assigned = true;
            // No files: the set the tasks use is the one sent last.
            this.deps.agent.setAssignments(message['tasks'] as Task[], message['files'] === undefined ? undefined : parseTaskFiles(message['files']));
          }
          // From the leader over the cluster's private, authenticated transport: trusted like the assignments.
          if (message['type'] === 'ingress' && (message['ingress'] === null || isRecord(message['ingress']))) {
            this.deps.agent.setIngress(message['ingress'] as IngressConfig | null);
          }
        }
        if (this.stopped) break;
      }
      return assigned ? 'ended' : 'failed';
    } catch (err) {
      this.deps.logger.debug({ target, err: (err as Error).message }, 'agent session ended');
      return assigned ? 'ended' : 'failed';
    } finally {
      clearInterval(watch);
      clearInterval(heartbeat);
      if (this.stream === stream) this.stream = null;
      stream.abort(new Error('agent session over'));
    }
  }
}
