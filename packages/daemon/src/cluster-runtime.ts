// The running parts of a node that is in a swarm: the Raft node (log in dataDir/raft) whose state machine is the
// Store, and the libp2p gossip host with SWIM membership. Writes go through propose(); reads wait for a barrier.

import { join } from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import { ApiError, formatHostPort } from '@swarm/api';
import { createGossipHost, Membership, type GossipHost } from '@swarm/gossip';
import { encodeTransaction, Store, StoreError, type ApplyResult, type NodeDescription, type Op } from '@swarm/store';
import type { Logger } from '@swarm/wire';
import { RaftError, RaftNode } from 'raft-consensus-ts';
import { FILES, type NodeState } from './data-dir.js';
import { assert } from './errors.js';
import { LocalOnlyTransport } from './local-transport.js';
import { StoreStateMachine } from './state-machine.js';

/** How long a request waits for this node to know a leader (an election takes 0.5-1 s with the defaults). */
export const LEADER_WAIT_MS = 10_000;
const LEADER_POLL_MS = 20;

export interface ClusterRuntimeOptions {
  dataDir: string;
  state: NodeState;
  description: NodeDescription;
  libp2pKey: PrivateKey;
  libp2pPeerId: string;
  pnetKeyFile: Uint8Array;
  /** Gossip (libp2p) port on the listen host; 0 picks a free one (tests). */
  gossipPort: number;
  logger: Logger;
  loggerFor: (component: string) => Logger;
  /** Raft tick period; the default suits a LAN. */
  raftTickMs?: number;
  raftSnapshotEvery?: number;
}

function storeErrorToApi(err: StoreError): ApiError {
  switch (err.code) {
    case 'not_found':
      return new ApiError('not_found', err.message);
    case 'exists':
    case 'name_conflict':
    case 'version_conflict':
      return new ApiError('conflict', err.message);
    case 'invalid':
      return new ApiError('invalid_argument', err.message);
  }
}

function raftErrorToApi(err: RaftError): ApiError {
  if (err.code === 'not_leader' || err.code === 'unavailable' || err.code === 'proposal_dropped') {
    return new ApiError('unavailable', `the cluster could not complete the request: ${err.message}`);
  }
  return new ApiError('internal', `raft: ${err.message}`);
}

export class ClusterRuntime {
  private closed = false;

  private constructor(
    readonly store: Store,
    readonly state: NodeState,
    readonly raft: RaftNode<ApplyResult>,
    readonly host: GossipHost,
    readonly membership: Membership,
    private readonly logger: Logger,
  ) {}

  /** Opens (or bootstraps, on a fresh raft dir) the Raft group with this node as its only voter, then gossip. */
  static async start(options: ClusterRuntimeOptions): Promise<ClusterRuntime> {
    const { state, logger } = options;
    const raftLogger = options.loggerFor('raft');
    const store = new Store();
    const raft = new RaftNode<ApplyResult>({
      id: state.nodeId,
      // Raft addresses are libp2p peer ids: the join slice carries Raft over libp2p streams.
      peers: { [state.nodeId]: options.libp2pPeerId },
      dataDir: join(options.dataDir, FILES.raftDir),
      transport: new LocalOnlyTransport(state.nodeId, raftLogger),
      stateMachine: new StoreStateMachine(store),
      logger: raftLogger,
      ...(options.raftTickMs === undefined ? {} : { tickMs: options.raftTickMs }),
      ...(options.raftSnapshotEvery === undefined ? {} : { snapshotEvery: options.raftSnapshotEvery, catchUpEntries: 1 }),
      onFatal: (err) => logger.fatal({ err }, 'raft stopped on an unrecoverable error; this node no longer serves cluster writes'),
    });
    await raft.start();
    let host: GossipHost | null = null;
    try {
      const gossipLogger = options.loggerFor('gossip');
      host = await createGossipHost({
        listen: formatHostPort(state.listenHost, options.gossipPort),
        privateKey: options.libp2pKey,
        psk: options.pnetKeyFile,
        logger: gossipLogger,
      });
      const membership = await Membership.start({
        host,
        logger: gossipLogger,
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
      return new ClusterRuntime(store, state, raft, host, membership, logger);
    } catch (err) {
      await host?.stop().catch(() => {});
      await raft.close().catch(() => {});
      throw err;
    }
  }

  get isLeader(): boolean {
    return this.raft.isLeader;
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
    if (!this.raft.isLeader) {
      // Forwarding to the leader comes with the join slice; a one-node cluster is always its own leader.
      throw new ApiError('unavailable', `this node is not the Raft leader (the leader is ${this.raft.leaderId ?? 'unknown'}); retry on the leader`);
    }
    let result: ApplyResult;
    try {
      result = await this.raft.propose(encodeTransaction({ timestampMs: Date.now(), ops }));
    } catch (err) {
      if (err instanceof RaftError) throw raftErrorToApi(err);
      throw err;
    }
    if (!result.ok) throw storeErrorToApi(result.error);
    this.logger.debug({ index: result.index, ops: ops.length }, 'transaction committed');
    return result.index;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.membership.stop().catch((err: unknown) => this.logger.warn({ err }, 'membership stop failed'));
    await this.host.stop().catch((err: unknown) => this.logger.warn({ err }, 'gossip host stop failed'));
    await this.raft.close();
  }
}
