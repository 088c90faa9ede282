// The running parts of a node that is in a swarm: the Raft node (log in dataDir/raft) whose state machine is the
// Store, and the libp2p gossip host with SWIM membership. Writes go through propose(); reads wait for a barrier.

import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import { ApiError, formatHostPort } from '@swarm/api';
import { createGossipHost, Membership, type GossipHost } from '@swarm/gossip';
import { EndpointGossip, type OverlayDriver } from '@swarm/netdriver';
import { encodeTransaction, Store, type ApplyResult, type Node, type NodeDescription, type Op } from '@swarm/store';
import type { Logger } from '@swarm/wire';
import { RaftError, RaftNode } from 'raft-consensus-ts';
import { FILES, type NodeState } from './data-dir.js';
import { assert } from './errors.js';
import { Libp2pTransport } from './libp2p-transport.js';
import { LIBP2P_ADDR_LABEL, LeaderLoop, PEER_ID_LABEL } from './leader-loop.js';
import { ProposalForwarder, proposeHere, raftErrorToApi } from './forward.js';
import { serveLeave, serveRole, type RoleHandler } from './node-control.js';
import { AgentSession, type AgentLike } from './agent-session.js';
import { DEFAULT_HEARTBEAT_GRACE_MS, Dispatcher } from './dispatcher.js';
import { openSecret } from './secret-store.js';
import { ReconcileLoop, type Reconciler } from './reconcile-loop.js';
import { serveTaskLogs, type LogSource } from './task-logs.js';
import { StoreStateMachine } from './state-machine.js';

/** How long a request waits for this node to know a leader (an election takes 0.5-1 s with the defaults). */
export const LEADER_WAIT_MS = 10_000;
/** Longest each step of closing the runtime may take before the next one starts anyway. */
const CLOSE_STEP_MS = 5_000;
const LEADER_POLL_MS = 20;

export interface ClusterRuntimeOptions {
  dataDir: string;
  state: NodeState;
  description: NodeDescription;
  libp2pKey: PrivateKey;
  libp2pPeerId: string;
  pnetKeyFile: Uint8Array;
  /** Managers: the cluster's data key, which the leader's dispatcher opens secrets with; null on workers. */
  dataKey: Uint8Array | null;
  /** Gossip (libp2p) port on the listen host; 0 picks a free one (tests). */
  gossipPort: number;
  logger: Logger;
  loggerFor: (component: string) => Logger;
  /** Raft tick period; the default suits a LAN. */
  raftTickMs?: number;
  raftSnapshotEvery?: number;
  /** This node's agent heartbeat period, and (as leader) how long a silent agent session is tolerated. */
  heartbeatPeriodMs?: number;
  heartbeatGraceMs?: number;
  /** Gossip seeds (multiaddrs of managers) to join through; empty for the first node. */
  seeds?: readonly string[];
  /** Raft addresses of the managers a joining manager learned at join (node id -> multiaddr). */
  raftPeers?: Readonly<Record<string, string>>;
  leaderLoopPeriodMs?: number;
  /** Fail the start if no seed answers (a first join); a restart starts anyway. */
  requireSeed?: boolean;
  /** At least this gossip incarnation: a runtime restarted in the same process (a role change) must outrank its past. */
  minIncarnation?: number;
  /** How this node takes a role change or its removal from a manager. */
  roleHandler: RoleHandler;
  /** Manager only: forgets a worker that asks to leave (throws if the request is not acceptable). */
  forgetLeaver: (remotePeer: string, nodeId: string) => Promise<void>;
  /** Manager only: tells a node its new role (the leader loop's part of promote and demote). */
  changeRole: (node: Node, role: 'manager' | 'worker') => Promise<string>;
  /** This node's task runner: it outlives the runtime (a role change must not stop tasks). */
  agent: AgentLike & { logs: LogSource };
  /** Manager only: what the leader runs over the store (orchestrators, scheduler, reaper). */
  reconcilers: readonly Reconciler[];
  /** This node's overlay driver, whose endpoint tables this runtime's gossip keeps; null without one. */
  overlay?: OverlayDriver | null;
}

/** A host's address as other nodes dial it: the advertise host and the port the libp2p host listens on. */
export function advertisedMultiaddr(host: GossipHost, advertiseHost: string): string {
  const port = host.multiaddrs().map((a) => /\/tcp\/(\d+)/.exec(a)?.[1]).find((p) => p !== undefined);
  assert(port !== undefined, 'the gossip host listens on a TCP port');
  const proto = advertiseHost.includes(':') ? 'ip6' : 'ip4';
  return `/${proto}/${advertiseHost}/tcp/${port}/p2p/${host.peerId}`;
}

export class ClusterRuntime {
  private closed = false;
  private leaderLoop: LeaderLoop | null = null;
  private reconcileLoop: ReconcileLoop | null = null;
  private dispatcher: Dispatcher | null = null;
  /** The session the agent reports through. */
  agentSession: AgentSession | null = null;
  /** The overlay's endpoint tables on gossip; null on a node without the overlay driver. */
  endpoints: EndpointGossip | null = null;

  private constructor(
    readonly store: Store,
    readonly state: NodeState,
    /** Workers run no Raft: null. */
    readonly raftOrNull: RaftNode<ApplyResult> | null,
    private readonly forwarder: ProposalForwarder | null,
    readonly host: GossipHost,
    readonly membership: Membership,
    private readonly logger: Logger,
  ) {}

  /**
   * On a manager, opens (or bootstraps, on a fresh raft dir) the Raft group with this node as its only voter;
   * a worker runs no Raft. Then gossip, joined through the seeds.
   */
  static async start(options: ClusterRuntimeOptions): Promise<ClusterRuntime> {
    const { state, logger } = options;
    const raftLogger = options.loggerFor('raft');
    const gossipLogger = options.loggerFor('gossip');
    const store = new Store();
    // The libp2p host comes first: Raft runs over its streams and its address is this manager's Raft address.
    const host = await createGossipHost({
      listen: formatHostPort(state.listenHost, options.gossipPort),
      privateKey: options.libp2pKey,
      psk: options.pnetKeyFile,
      logger: gossipLogger,
    });
    let raft: RaftNode<ApplyResult> | null = null;
    let forwarder: ProposalForwarder | null = null;
    try {
      if (state.role === 'manager') {
        const self = advertisedMultiaddr(host, state.advertiseHost);
        raft = new RaftNode<ApplyResult>({
          id: state.nodeId,
          // Raft addresses are libp2p multiaddrs ending in /p2p/<peer id>.
          peers: { ...(options.raftPeers ?? {}), [state.nodeId]: self },
          // A manager that joined waits for the leader to add it; only init bootstraps a group.
          join: state.raftJoin === true,
          dataDir: join(options.dataDir, FILES.raftDir),
          transport: new Libp2pTransport(host, state.nodeId, raftLogger),
          stateMachine: new StoreStateMachine(store),
          logger: raftLogger,
          ...(options.raftTickMs === undefined ? {} : { tickMs: options.raftTickMs }),
          ...(options.raftSnapshotEvery === undefined ? {} : { snapshotEvery: options.raftSnapshotEvery, catchUpEntries: 1 }),
          onFatal: (err) => logger.fatal({ err }, 'raft stopped on an unrecoverable error; this node no longer serves cluster writes'),
        });
        await raft.start();
        forwarder = new ProposalForwarder(host, raft, options.loggerFor('forward'));
        await forwarder.start();
        await serveLeave(host, options.forgetLeaver, options.loggerFor('control'));
      }
      await serveRole(host, options.roleHandler, options.loggerFor('control'));
      const membership = await Membership.start({
        host,
        logger: gossipLogger,
        // Seconds since the epoch: a restarted node outranks whatever the cluster remembers of its last life.
        incarnation: Math.max(Math.floor(Date.now() / 1000), options.minIncarnation ?? 0),
        meta: {
          nodeId: state.nodeId,
          hostname: options.description.hostname,
          role: state.role,
          cpus: options.description.resources.nanoCpus / 1e9,
          memoryBytes: options.description.resources.memoryBytes,
          labels: {},
          version: options.description.engineVersion,
        },
      });
      // Seeds: the managers met at join, and on a manager those its (replayed) store knows.
      const known = store.view((tx) => tx.list('node')).flatMap((n) => {
        const addr = n.managerStatus === null ? undefined : n.description.engineLabels[LIBP2P_ADDR_LABEL];
        return addr === undefined ? [] : [addr];
      });
      const seeds = [...new Set([...(options.seeds ?? []), ...known])].filter((a) => !a.endsWith(`/p2p/${options.libp2pPeerId}`));
      if (seeds.length > 0) {
        const joined = membership.join(seeds);
        // A first join must reach a manager; a restart goes on without one (they may all be down) and keeps trying.
        if (options.requireSeed === true) await joined;
        else joined.catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'no gossip seed answered at start; waiting for peers'));
      }
      const runtime = new ClusterRuntime(store, state, raft, forwarder, host, membership, logger);
      if (options.overlay != null && !isIPv4(state.advertiseHost)) {
        logger.warn({ advertise: state.advertiseHost }, 'overlay networks need an IPv4 advertise address: tasks with networks will be rejected on this node');
      } else if (options.overlay != null) {
        options.overlay.setUnderlay(state.advertiseHost);
        runtime.endpoints = new EndpointGossip({ host, membership, driver: options.overlay, underlayAddr: state.advertiseHost, logger: options.loggerFor('netdriver') });
        runtime.endpoints.start();
      }
      if (raft !== null) {
        runtime.leaderLoop = new LeaderLoop({
          store,
          raft,
          membership,
          selfPeerId: options.libp2pPeerId,
          propose: (ops) => runtime.propose(ops),
          changeRole: options.changeRole,
          silentNodes: () => runtime.dispatcher?.silentNodes(Date.now(), options.heartbeatGraceMs ?? DEFAULT_HEARTBEAT_GRACE_MS) ?? new Set<string>(),
          logger: options.loggerFor('leader'),
        });
        runtime.leaderLoop.start(options.leaderLoopPeriodMs);
        const raftNode = raft;
        const dispatcher = new Dispatcher({
          host,
          store,
          isLeader: () => raftNode.isLeader,
          leaderAddress: () => (raftNode.leaderId === null ? null : raftNode.addressOf(raftNode.leaderId)),
          nodeOfPeer: (peer) => store.view((tx) => tx.list('node')).find((n) => n.description.engineLabels[PEER_ID_LABEL] === peer)?.id ?? null,
          propose: (ops) => runtime.propose(ops),
          openSecret: (secret) => {
            if (options.dataKey === null) throw new Error('this manager holds no data key (its cluster was made before secrets existed)');
            return openSecret(options.dataKey, secret);
          },
          logger: options.loggerFor('dispatcher'),
        });
        await dispatcher.start();
        runtime.dispatcher = dispatcher;
        runtime.reconcileLoop = new ReconcileLoop({
          store,
          isLeader: () => raftNode.isLeader,
          appliedIndex: () => raftNode.appliedIndex,
          reconcilers: options.reconcilers,
          propose: (ops) => runtime.propose(ops),
          onChange: () => dispatcher.sync(),
          logger: options.loggerFor('orchestrator'),
        });
        runtime.reconcileLoop.start();
      }
      await serveTaskLogs(host, options.agent.logs, (peer) => membership.member(peer)?.meta.role === 'manager', options.loggerFor('agent'));
      runtime.agentSession = new AgentSession({
        host,
        nodeId: state.nodeId,
        managers: () =>
          membership
            .members()
            .filter((m) => m.meta.role === 'manager' && m.state === 'alive' && m.id !== options.libp2pPeerId)
            .flatMap((m) => (m.meta.addrs[0] === undefined ? [] : [m.meta.addrs[0]])),
        agent: options.agent,
        localDispatcher: () => (raft !== null && raft.isLeader ? runtime.dispatcher : null),
        ...(options.heartbeatPeriodMs === undefined ? {} : { heartbeatPeriodMs: options.heartbeatPeriodMs }),
        logger: options.loggerFor('agent'),
      });
      runtime.agentSession.start();
      return runtime;
    } catch (err) {
      await forwarder?.stop().catch(() => {});
      await raft?.close().catch(() => {});
      await host.stop().catch(() => {});
      throw err;
    }
  }

  /** The Raft node; only managers have one (callers check the role first). */
  get raft(): RaftNode<ApplyResult> {
    if (this.raftOrNull === null) throw new ApiError('not_in_swarm', 'this node is not a swarm manager: run the command on a manager, or promote this node');
    return this.raftOrNull;
  }

  get isLeader(): boolean {
    return this.raftOrNull?.isLeader ?? false;
  }

  /** This node's libp2p address as other nodes dial it: the advertise host and the port gossip listens on. */
  advertisedMultiaddr(): string {
    return advertisedMultiaddr(this.host, this.state.advertiseHost);
  }

  /** Resolves once some leader is known (maybe this node); ApiError('unavailable') at the deadline. */
  async waitForLeader(timeoutMs = LEADER_WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.raft.leaderId === null) {
      if (this.closed) throw new ApiError('unavailable', 'this node is shutting down');
      if (Date.now() > deadline) {
        throw new ApiError('unavailable', `no Raft leader known after ${timeoutMs} ms: a quorum of managers is not reachable`);
      }
      await new Promise((resolve) => setTimeout(resolve, LEADER_POLL_MS));
    }
  }

  /** A linearizable read barrier: after it, the store holds every write committed before the call. */
  async readBarrier(): Promise<void> {
    await this.waitForLeader();
    try {
      await this.raft.read();
    } catch (err) {
      if (err instanceof RaftError) throw raftErrorToApi(err);
      throw err;
    }
  }

  /** One transaction through Raft; resolves after it committed and applied here, rejects with ApiError if refused. */
  async propose(ops: Op[]): Promise<number> {
    assert(ops.length > 0, 'a transaction has ops');
    await this.waitForLeader();
    const data = encodeTransaction({ timestampMs: Date.now(), ops });
    const raft = this.raft;
    let index: number;
    if (raft.isLeader || this.forwarder === null) index = await proposeHere(raft, data);
    else index = await this.forwarder.forward(data);
    this.logger.debug({ index, ops: ops.length }, 'transaction committed');
    return index;
  }

  /**
   * leave: announce by gossip that this node leaves for good (peers list it as left, not dead). Each step is bounded
   * (CLOSE_STEP_MS): a peer that does not answer, or a machine under load, never keeps `swarm leave` or a shutdown
   * waiting; what is still open when its time is up goes with the process or the next start.
   */
  async close(options: { leave?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.leaderLoop?.stop();
    this.reconcileLoop?.stop();
    this.endpoints?.stop();
    const step = async (what: string, p: Promise<unknown> | undefined): Promise<void> => {
      if (p === undefined) return;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), CLOSE_STEP_MS)));
      try {
        if ((await Promise.race([p.then(() => 'done' as const), late])) === 'late') this.logger.warn({ step: what, waitedMs: CLOSE_STEP_MS }, 'a shutdown step took too long; going on');
      } catch (err) {
        this.logger.warn({ err, step: what }, 'a shutdown step failed');
      } finally {
        clearTimeout(timer);
      }
    };
    await step('agent session', this.agentSession?.stop());
    await step('dispatcher', this.dispatcher?.stop());
    await step('membership', options.leave === true ? this.membership.leave() : this.membership.stop());
    await step('forwarder', this.forwarder?.stop());
    await step('raft', this.raftOrNull?.close());
    await step('gossip host', this.host.stop());
  }
}
