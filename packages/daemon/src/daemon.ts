// startDaemon: one swarm node on one data dir. Takes the dir's lock, serves the control API on a unix socket, and
// implements the API backend: `swarm init` builds the cluster's identity and its first Raft transaction; a restart
// on the same dir reloads the identity and reopens Raft, so the node comes back as itself.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import {
  ApiError,
  formatHostPort,
  startApiServer,
  type ApiBackend,
  type ApiServer,
  type InfoDocument,
  type JoinTokenDocument,
  type SwarmInitRequest,
  type SwarmInitResponse,
} from '@swarm/api';
import {
  createJoinTokens,
  createRootCA,
  encodePnetKey,
  decodePnetKey,
  generateNodeKeyPair,
  generatePnetKey,
  issueNodeCertificate,
  newId,
  rotateJoinToken,
} from '@swarm/pki';
import { defaultClusterSpec, type Cluster, type Node, type NodeDescription, type NodeRole } from '@swarm/store';
import type { Logger } from '@swarm/wire';
import { ClusterRuntime } from './cluster-runtime.js';
import {
  FILES,
  exists,
  loadNodeState,
  loadOrCreateLibp2pKey,
  loadSecrets,
  removeSwarmState,
  saveNodeState,
  saveSecrets,
  type NodeState,
} from './data-dir.js';
import { assert } from './errors.js';
import { acquireDataDirLock, type DataDirLock } from './lock.js';
import { chooseAdvertiseHost, describeLocalNode } from './platform.js';

export const DEFAULT_DATA_DIR = '/var/lib/swarm';
/** Docker's gossip port. */
export const DEFAULT_GOSSIP_PORT = 7946;
/** SwarmKit's defaults for the address pool overlay networks are cut from. */
const DEFAULT_ADDR_POOL = ['10.0.0.0/8'];
const DEFAULT_SUBNET_SIZE = 24;
const DEFAULT_DATA_PATH_PORT = 4789;

export interface DaemonOptions {
  dataDir: string;
  socketPath: string;
  /** The hostname this node reports (the lab gives each namespace its own); default os.hostname(). */
  hostname?: string;
  logger: Logger;
  /** Logger of one component (api, raft, gossip); default: logger.child({component}). */
  loggerFor?: (component: string) => Logger;
  /** Port of the libp2p gossip host; 0 picks a free one (tests). Default 7946. */
  gossipPort?: number;
  raftTickMs?: number;
  /** Raft snapshot (and log compaction) every this many applied entries; small values are for tests. */
  raftSnapshotEvery?: number;
}

export interface Daemon {
  readonly dataDir: string;
  readonly socketPath: string;
  /** This node's id once it is in a swarm. */
  readonly nodeId: string | null;
  readonly peerId: string;
  close(): Promise<void>;
}

type SwarmState =
  | { kind: 'inactive' }
  | { kind: 'initializing' }
  | { kind: 'active'; runtime: ClusterRuntime }
  | { kind: 'closed' };

class NodeDaemon implements ApiBackend, Daemon {
  private swarm: SwarmState = { kind: 'inactive' };
  private api: ApiServer | null = null;
  private closing: Promise<void> | null = null;
  readonly description: NodeDescription;

  constructor(
    private readonly options: DaemonOptions,
    private readonly lock: DataDirLock,
    private readonly libp2pKey: PrivateKey,
    readonly peerId: string,
    private readonly logger: Logger,
  ) {
    this.description = describeLocalNode(options.hostname);
  }

  private loggerFor(component: string): Logger {
    return this.options.loggerFor?.(component) ?? this.logger.child({ component });
  }

  get dataDir(): string {
    return this.options.dataDir;
  }

  get socketPath(): string {
    return this.options.socketPath;
  }

  get nodeId(): string | null {
    return this.swarm.kind === 'active' ? this.swarm.runtime.state.nodeId : null;
  }

  /** Rejoin the swarm this data dir belongs to, if any; then serve the API. */
  async start(): Promise<void> {
    const state = await loadNodeState(this.dataDir);
    if (state !== null) {
      const runtime = await this.startRuntime(state);
      this.swarm = { kind: 'active', runtime };
      this.logger.info({ nodeId: state.nodeId, clusterId: state.clusterId }, 'rejoined the swarm recorded in the data dir');
    } else if (await exists(join(this.dataDir, FILES.raftDir))) {
      // A Raft log without a node state is what an interrupted init leaves: it never answered, so start over.
      this.logger.warn({ dataDir: this.dataDir }, 'removing the leftovers of an interrupted swarm init');
      await removeSwarmState(this.dataDir);
    }
    this.api = await startApiServer({ socketPath: this.socketPath, backend: this, logger: this.loggerFor('api') });
  }

  private async startRuntime(state: NodeState): Promise<ClusterRuntime> {
    const secrets = await loadSecrets(this.dataDir);
    // Re-encoding checks the file's format before libp2p sees it.
    const pnetKeyFile = encodePnetKey(decodePnetKey(secrets.pnetKeyFile));
    return ClusterRuntime.start({
      dataDir: this.dataDir,
      state,
      description: this.description,
      libp2pKey: this.libp2pKey,
      libp2pPeerId: this.peerId,
      pnetKeyFile,
      gossipPort: this.options.gossipPort ?? DEFAULT_GOSSIP_PORT,
      logger: this.logger,
      loggerFor: (component) => this.loggerFor(component),
      ...(this.options.raftTickMs === undefined ? {} : { raftTickMs: this.options.raftTickMs }),
      ...(this.options.raftSnapshotEvery === undefined ? {} : { raftSnapshotEvery: this.options.raftSnapshotEvery }),
    });
  }

  private active(): ClusterRuntime {
    switch (this.swarm.kind) {
      case 'active':
        return this.swarm.runtime;
      case 'initializing':
        throw new ApiError('not_in_swarm', 'this node is still initializing a swarm: retry in a moment');
      case 'closed':
        throw new ApiError('unavailable', 'this node is shutting down');
      case 'inactive':
        throw new ApiError('not_in_swarm', 'this node is not part of a swarm: run `swarm init` or `swarm join` first');
    }
  }

  // ------------------------------------------------------------ ApiBackend

  async info(): Promise<InfoDocument> {
    const d = this.description;
    const doc: InfoDocument = {
      ID: this.peerId,
      Name: d.hostname,
      ServerVersion: d.engineVersion,
      OperatingSystem: d.platform.os,
      Architecture: d.platform.arch,
      NCPU: d.resources.nanoCpus / 1e9,
      MemTotal: d.resources.memoryBytes,
      DataDir: this.dataDir,
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
    };
    if (this.swarm.kind === 'initializing') doc.Swarm.LocalNodeState = 'pending';
    if (this.swarm.kind !== 'active') return doc;
    const runtime = this.swarm.runtime;
    // Info answers from the local store without a barrier: it must work even when no quorum is reachable.
    const { nodes, cluster } = runtime.store.view((tx) => ({ nodes: tx.list('node'), cluster: tx.get('cluster', runtime.state.clusterId) }));
    const managers = nodes.filter((n) => n.managerStatus !== null);
    doc.Swarm = {
      NodeID: runtime.state.nodeId,
      NodeAddr: runtime.state.advertiseHost,
      LocalNodeState: 'active',
      ControlAvailable: runtime.state.role === 'manager',
      Error: '',
      RemoteManagers: managers.map((n) => ({ NodeID: n.id, Addr: n.managerStatus?.addr ?? '' })),
      Nodes: nodes.length,
      Managers: managers.length,
    };
    if (cluster !== undefined) {
      doc.Swarm.Cluster = {
        ID: cluster.id,
        Name: cluster.spec.name,
        CreatedAt: new Date(cluster.meta.createdAtMs).toISOString(),
        UpdatedAt: new Date(cluster.meta.updatedAtMs).toISOString(),
      };
    }
    return doc;
  }

  async initSwarm(request: SwarmInitRequest): Promise<SwarmInitResponse> {
    if (this.swarm.kind === 'active' || this.swarm.kind === 'initializing') {
      throw new ApiError('already_in_swarm', 'this node is already part of a swarm: use `swarm leave` to leave it first');
    }
    if (this.swarm.kind === 'closed') throw new ApiError('unavailable', 'this node is shutting down');
    this.swarm = { kind: 'initializing' };
    let runtime: ClusterRuntime | null = null;
    try {
      const advertiseHost = request.advertiseHost ?? chooseAdvertiseHost(request.listenHost);
      const nowMs = Date.now();
      const state: NodeState = {
        format: 1,
        nodeId: newId(),
        clusterId: newId(),
        role: 'manager',
        listenHost: request.listenHost,
        listenPort: request.listenPort,
        advertiseHost,
        advertisePort: request.advertisePort ?? request.listenPort,
        joinedAtMs: nowMs,
      };
      const ca = await createRootCA({ clusterId: state.clusterId, nowMs });
      const tokens = createJoinTokens(ca);
      const nodeKeys = await generateNodeKeyPair();
      const nodeCertPem = await issueNodeCertificate(ca, {
        nodeId: state.nodeId,
        role: 'manager',
        clusterId: state.clusterId,
        publicKey: nodeKeys.publicKeyPem,
        libp2pPeerId: this.peerId,
        nowMs,
      });
      const pnetKeyFile = encodePnetKey(generatePnetKey());
      await removeSwarmState(this.dataDir);
      await saveSecrets(this.dataDir, { caCertPem: ca.certPem, caKeyPem: ca.keyPem, nodeCertPem, nodeKeyPem: nodeKeys.privateKeyPem, pnetKeyFile });
      runtime = await this.startRuntime(state);
      const managerAddr = formatHostPort(state.advertiseHost, state.advertisePort);
      const cluster: Omit<Cluster, 'meta'> = {
        id: state.clusterId,
        spec: defaultClusterSpec('default'),
        rootCA: { certPem: ca.certPem, fingerprint: ca.fingerprint },
        joinTokens: { worker: tokens.worker, manager: tokens.manager },
        defaultAddrPool: DEFAULT_ADDR_POOL,
        subnetSize: DEFAULT_SUBNET_SIZE,
        dataPathPort: DEFAULT_DATA_PATH_PORT,
      };
      const node: Omit<Node, 'meta'> = {
        id: state.nodeId,
        spec: { name: '', labels: {}, role: 'manager', availability: 'active' },
        description: this.description,
        status: { state: 'ready', addr: state.advertiseHost, message: '' },
        managerStatus: { raftId: state.nodeId, addr: managerAddr, leader: true, reachability: 'reachable' },
        attachments: [],
      };
      await runtime.propose([
        { op: 'create', kind: 'cluster', object: cluster },
        { op: 'create', kind: 'node', object: node },
      ]);
      // Written last: its presence is what makes a restart rejoin instead of starting empty.
      await saveNodeState(this.dataDir, state);
      if (this.swarm.kind !== 'initializing') throw new ApiError('unavailable', 'this node is shutting down');
      this.swarm = { kind: 'active', runtime };
      this.logger.info({ nodeId: state.nodeId, clusterId: state.clusterId, managerAddr }, 'swarm initialized');
      return { NodeID: state.nodeId, ClusterID: state.clusterId, ManagerAddr: managerAddr };
    } catch (err) {
      await runtime?.close().catch((e: unknown) => this.logger.warn({ err: e }, 'closing the half-initialized runtime failed'));
      await removeSwarmState(this.dataDir).catch((e: unknown) => this.logger.warn({ err: e }, 'removing the half-initialized state failed'));
      if (this.swarm.kind === 'initializing') this.swarm = { kind: 'inactive' };
      this.logger.warn({ err }, 'swarm init failed; the node is left as it was');
      throw err;
    }
  }

  private async currentCluster(runtime: ClusterRuntime): Promise<Cluster> {
    await runtime.readBarrier();
    const cluster = runtime.store.view((tx) => tx.get('cluster', runtime.state.clusterId));
    if (cluster === undefined) throw new ApiError('internal', `the store holds no cluster object ${runtime.state.clusterId}`);
    return cluster;
  }

  async inspectSwarm(): Promise<Cluster> {
    const runtime = this.active();
    this.requireManager(runtime);
    return this.currentCluster(runtime);
  }

  async joinToken(role: NodeRole, rotate: boolean): Promise<JoinTokenDocument> {
    const runtime = this.active();
    this.requireManager(runtime);
    let cluster = await this.currentCluster(runtime);
    if (rotate) {
      const rotated = rotateJoinToken(cluster.joinTokens, role, cluster.rootCA);
      // An update carries the version we read: a concurrent rotation makes this one fail, not silently merge.
      await runtime.propose([{ op: 'update', kind: 'cluster', object: { ...cluster, joinTokens: { ...rotated } } }]);
      cluster = runtime.store.view((tx) => tx.get('cluster', runtime.state.clusterId)) ?? cluster;
      this.logger.info({ role }, 'join token rotated');
    }
    const token = role === 'worker' ? cluster.joinTokens.worker : cluster.joinTokens.manager;
    return { Role: role, Token: token, ManagerAddr: formatHostPort(runtime.state.advertiseHost, runtime.state.advertisePort), Rotated: rotate };
  }

  async listNodes(): Promise<Node[]> {
    const runtime = this.active();
    this.requireManager(runtime);
    await runtime.readBarrier();
    const leaderId = runtime.raft.leaderId;
    // The stored leader flag is written at init and by leader changes; Raft's own view is fresher.
    return runtime.store.view((tx) => tx.list('node')).map((n) =>
      n.managerStatus === null ? n : { ...n, managerStatus: { ...n.managerStatus, leader: n.managerStatus.raftId === leaderId } },
    );
  }

  private requireManager(runtime: ClusterRuntime): void {
    if (runtime.state.role !== 'manager') {
      throw new ApiError('not_in_swarm', 'this node is not a swarm manager: run the command on a manager, or promote this node');
    }
  }

  // ------------------------------------------------------------ shutdown

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const previous = this.swarm;
    this.swarm = { kind: 'closed' };
    // Stop taking requests first, then the cluster parts, and release the data dir last.
    await this.api?.close().catch((err: unknown) => this.logger.warn({ err }, 'closing the api failed'));
    if (previous.kind === 'active') await previous.runtime.close().catch((err: unknown) => this.logger.warn({ err }, 'closing the cluster runtime failed'));
    await this.lock.release();
    this.logger.info({ dataDir: this.dataDir }, 'daemon stopped');
  }
}

export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  assert(options.dataDir.length > 0 && options.socketPath.length > 0, 'data dir and socket path are given');
  const logger = options.logger;
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const lock = await acquireDataDirLock(options.dataDir, logger);
  try {
    const { privateKey, peerId } = await loadOrCreateLibp2pKey(options.dataDir, logger);
    const daemon = new NodeDaemon(options, lock, privateKey, peerId, logger);
    try {
      await daemon.start();
    } catch (err) {
      await daemon.close();
      throw err;
    }
    logger.info({ dataDir: options.dataDir, socket: options.socketPath, peerId, nodeId: daemon.nodeId }, 'daemon started');
    return daemon;
  } catch (err) {
    await lock.release();
    throw err;
  }
}
