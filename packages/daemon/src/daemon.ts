// startDaemon: one swarm node on one data dir. Takes the dir's lock, serves the control API on a unix socket, and
// implements the API backend: `swarm init` builds the cluster's identity and its first Raft transaction; a restart
// on the same dir reloads the identity and reopens Raft, so the node comes back as itself.

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import { allocateNetwork, ConstraintError, isLive, parseConstraints, shutdownOp } from '@swarm/manager';
import { checkSubnet, ENCRYPTED_OPTION, gatewayFor, HOST_NETWORK, INGRESS_SUBNET, IpamError, VXLANID_OPTION, type Cidr } from '@swarm/netdriver';
import { familiarReference, parseReference, repositoryName, RuntimeError, type ImageInspect, type LayerStatus, type PullProgress, type Volume } from '@swarm/runtime';
import {
  ApiError,
  attachedTasks,
  formatHostPort,
  NETWORK_NAME_PATTERN,
  resolveNetwork,
  type NetworkCreateRequest,
  resolveNode,
  startApiServer,
  type ApiBackend,
  type ApiServer,
  type InfoDocument,
  type JoinTokenDocument,
  type MemberDocument,
  type NodeUpdateRequest,
  type SwarmLeaveResponse,
  type ServiceSpecDocument,
  type ServiceLogLine,
  resolveService,
  toServiceSpec,
  type SwarmInitRequest,
  type SwarmInitResponse,
  type SwarmJoinRequest,
  type SwarmJoinResponse,
  type ServiceWriteOptions,
  type ImageInspectDocument,
  type ImageProgressLine,
  type ImageSummaryDocument,
  type VolumeCreateRequest,
  type VolumeDocument,
  type FileObjectSpec,
  resolveFileObject,
} from '@swarm/api';
import {
  createJoinTokens,
  createRootCA,
  encodePnetKey,
  decodePnetKey,
  decodeDataKey,
  encodeDataKey,
  generateDataKey,
  generateNodeKeyPair,
  generatePnetKey,
  issueNodeCertificate,
  newId,
  rotateJoinToken,
  parseJoinToken,
  matchJoinToken,
  loadRootCA,
  verifyNodeCertificate,
  certificateFingerprint,
  PkiError,
} from '@swarm/pki';
import { deepEqual, defaultClusterSpec, type Config, type ObjectsByKind, type Secret, type RegistryAuth, type Cluster, type IpamConfig, type Network, type NetworkSpec, type Node, type NodeDescription, type NodeRole, type NodeSpec, type Op, type Service, type Task } from '@swarm/store';
import { pollUntil, type Logger } from '@swarm/wire';
import type { Status } from 'raft-consensus-ts';
import { peerIdFromString } from '@libp2p/peer-id';
import { ClusterRuntime } from './cluster-runtime.js';
import { LIBP2P_ADDR_LABEL, PEER_ID_LABEL } from './leader-loop.js';
import { JOIN_PROTOCOL_VERSION, JOIN_TIMEOUT_MS, joinProofPayload, requestJoin, startJoinServer, type JoinAnswer, type JoinRequestMessage, type JoinServer } from './join-protocol.js';
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
import { DaemonError, assert } from './errors.js';
import { acquireDataDirLock, type DataDirLock } from './lock.js';
import { createEngine, type NodeEngine, type RuntimeChoice } from './engine.js';
import type { AgentLike } from './agent-session.js';
import type { TaskStatusUpdate } from './dispatcher.js';
import { leaderReconcilers } from './reconcilers.js';
import { fetchTaskLogs, mergeStreams, mergeTaskLogs, MAX_TAIL_LINES, type LogSource, type TaskLogLine } from './task-logs.js';
import { publicKeyOfCertificate, requestLeave, sendRemoved, sendRoleChange, type RaftPeer, type RoleGrant, type RoleHandler } from './node-control.js';
import { chooseAdvertiseHost, describeLocalNode } from './platform.js';
import { inUseError, resolveServiceFiles, sealSecret, servicesUsing } from './secret-store.js';

export const DEFAULT_DATA_DIR = '/var/lib/swarm';
/** Docker's gossip port. */
export const DEFAULT_GOSSIP_PORT = 7946;
/** SwarmKit's defaults for the address pool overlay networks are cut from. */
const DEFAULT_ADDR_POOL = ['10.0.0.0/8'];

/** The routing mesh's network, made at init as Docker makes it: 10.0.0.0/24, the first VXLAN id. */
function ingressNetwork(id: string): Omit<Network, 'meta'> {
  return {
    id,
    spec: {
      name: 'ingress',
      labels: {},
      driver: 'overlay',
      driverOptions: {},
      ipam: { driver: 'default', configs: [{ subnet: INGRESS_SUBNET, range: '', gateway: '' }] },
      internal: false,
      attachable: false,
      ingress: true,
    },
    allocation: null,
  };
}
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
  /** Port the join endpoint binds instead of the listen port (0 picks a free one: tests run many managers). */
  joinListenPort?: number;
  /** Raft snapshot (and log compaction) every this many applied entries; small values are for tests. */
  raftSnapshotEvery?: number;
  /** Agent heartbeats on the dispatcher session: the period this node sends at, and the silence a leader allows. */
  heartbeatPeriodMs?: number;
  heartbeatGraceMs?: number;
  /** The container runtime: auto (default) is runc where it can run (Linux, root, runc + conmon), else process. */
  runtime?: RuntimeChoice;
  /** Docker's registry-mirrors: base URLs tried first for Docker Hub images. */
  registryMirrors?: string[];
  /** Docker's insecure-registries: host:port reached over plain HTTP (loopback always is). */
  insecureRegistries?: string[];
}

/** The agent as the daemon holds it: the dispatcher session's side, its tasks' logs, and its own shutdown. */
export interface TaskAgent extends AgentLike {
  readonly nodeId: string;
  logs: LogSource;
  /** Stops every task it runs (leave, daemon shutdown). */
  close(): Promise<void>;
}

/** What the schema cannot check: placement constraints parse (the message names the expression). */
function checkServiceSpec(spec: Service['spec']): void {
  try {
    parseReference(spec.taskTemplate.containerSpec.image);
  } catch (err) {
    if (err instanceof RuntimeError) throw new ApiError('invalid_argument', `TaskTemplate.ContainerSpec.Image: ${err.message}`);
    throw err;
  }
  try {
    parseConstraints(spec.taskTemplate.placement.constraints);
  } catch (err) {
    if (err instanceof ConstraintError) throw new ApiError('invalid_argument', `TaskTemplate.Placement.Constraints: ${err.message}`);
    throw err;
  }
}

/**
 * SwarmKit's rule for published ports between services: an ingress port (number and protocol) is one service's in
 * the whole cluster, as it is asked for or as the allocator gave it, and a host-mode port may not take a number
 * another service publishes in ingress mode (every node answers that one). Host-mode ports may repeat: the
 * scheduler's business. Throws ApiError('conflict') naming the field and the service that has the port.
 */
export function checkPortConflicts(spec: Service['spec'], services: readonly Service[], selfId: string): void {
  spec.endpointSpec.ports.forEach((p, i) => {
    if (p.publishedPort === 0) return;
    for (const other of services) {
      if (other.id === selfId) continue;
      const theirs = [...other.spec.endpointSpec.ports, ...other.endpoint.ports].filter((q) => q.publishedPort === p.publishedPort && q.protocol === p.protocol);
      const clash = p.publishMode === 'ingress' ? theirs[0] : theirs.find((q) => q.publishMode === 'ingress');
      if (clash === undefined) continue;
      throw new ApiError(
        'conflict',
        `EndpointSpec.Ports[${i}].PublishedPort: port ${p.publishedPort}/${p.protocol} is already in use by service ${other.spec.name}${clash.publishMode === 'host' ? ' (in host mode)' : ''}: publish another, or leave PublishedPort 0 to have one picked from 30000-32767`,
      );
    }
  });
}

/** How long `network create` waits for the leader's allocator before answering that it has not run. */
const NETWORK_ALLOCATION_DEADLINE_MS = 10_000;

const invalid = (message: string): ApiError => new ApiError('invalid_argument', message);

/**
 * A `network create` request as the store's spec, with what can be judged without the cluster: Docker's name rule,
 * the overlay driver only, at most one IPv4 subnet (a CIDR of a size we serve) with its gateway inside it, no
 * IP range, no VXLAN id of the user's choosing, and no attachable ingress.
 */
export function networkSpecOf(r: NetworkCreateRequest): NetworkSpec {
  if (r.Name === '') throw invalid('Name: a network needs a name');
  if (!NETWORK_NAME_PATTERN.test(r.Name)) {
    throw invalid(`Name: ${JSON.stringify(r.Name)} is not a valid network name: use letters, digits, '_', '.' and '-', starting with a letter or digit`);
  }
  if (r.Name === HOST_NETWORK) throw new ApiError('conflict', `Name: network with name ${HOST_NETWORK} already exists (it is the hosts' own network stack, as in Docker)`);
  const driver = r.Driver === undefined || r.Driver === '' ? 'overlay' : r.Driver;
  if (driver !== 'overlay') {
    throw invalid(`Driver: swarm makes overlay networks only, not ${JSON.stringify(driver)} (bridge, host and the other drivers make a single host's networks): use -d overlay or leave it out`);
  }
  const ipamDriver = r.IPAM?.Driver ?? 'default';
  if (ipamDriver !== '' && ipamDriver !== 'default') throw invalid(`IPAM.Driver: only the default IPAM driver is supported, not ${JSON.stringify(ipamDriver)}`);
  const requested = r.IPAM?.Config ?? [];
  if (requested.length > 1) throw invalid(`IPAM.Config: a swarm network takes at most one subnet (IPv4), got ${requested.length}`);
  const configs: IpamConfig[] = [];
  const c = requested[0];
  if (c !== undefined) {
    const subnetText = c.Subnet ?? '';
    const gateway = c.Gateway ?? '';
    if ((c.IPRange ?? '') !== '') throw invalid('IPAM.Config[0].IPRange: not supported: tasks take addresses from the whole subnet; give a smaller --subnet instead');
    if (subnetText === '' && gateway !== '') throw invalid('IPAM.Config[0].Gateway: a gateway needs the subnet it is in (--subnet)');
    if (subnetText !== '') {
      let subnet: Cidr;
      try {
        subnet = checkSubnet(subnetText);
      } catch (err) {
        if (err instanceof IpamError) throw invalid(`IPAM.Config[0].Subnet: ${err.message}`);
        throw err;
      }
      try {
        gatewayFor(subnet, gateway);
      } catch (err) {
        if (err instanceof IpamError) throw invalid(`IPAM.Config[0].Gateway: ${err.message}`);
        throw err;
      }
      configs.push({ subnet: subnetText, range: '', gateway });
    }
  }
  const options = { ...(r.Options ?? {}) };
  if (Object.hasOwn(options, VXLANID_OPTION)) throw invalid(`Options: ${VXLANID_OPTION} is chosen by the cluster (from 4096 up), not given`);
  const ingress = r.Ingress ?? false;
  const attachable = r.Attachable ?? false;
  if (ingress && attachable) throw invalid('Attachable: an ingress network cannot be attachable');
  return {
    name: r.Name,
    labels: { ...(r.Labels ?? {}) },
    driver,
    driverOptions: options,
    ipam: { driver: 'default', configs },
    internal: r.Internal ?? false,
    attachable,
    ingress,
  };
}

export interface Daemon {
  readonly dataDir: string;
  readonly socketPath: string;
  /** This node's id once it is in a swarm. */
  readonly nodeId: string | null;
  readonly peerId: string;
  /** The port the join endpoint listens on, while this node is a manager. */
  readonly joinPort: number | null;
  /** Raft's view on a manager (tests and diagnostics); null on a worker or outside a swarm. */
  raftStatus(): Status | null;
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
  private joinServer: JoinServer | null = null;
  private closing: Promise<void> | null = null;
  private agent: TaskAgent | null = null;
  readonly description: NodeDescription;

  constructor(
    private readonly options: DaemonOptions,
    private readonly engine: NodeEngine,
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

  raftStatus(): Status | null {
    return this.swarm.kind === 'active' ? (this.swarm.runtime.raftOrNull?.status() ?? null) : null;
  }

  get joinPort(): number | null {
    return this.joinServer?.port ?? null;
  }

  get nodeId(): string | null {
    return this.swarm.kind === 'active' ? this.swarm.runtime.state.nodeId : null;
  }

  /** Rejoin the swarm this data dir belongs to, if any; then serve the API. */
  async start(): Promise<void> {
    const state = await loadNodeState(this.dataDir);
    if (state !== null) {
      // A demotion interrupted after the state said "worker" leaves a Raft log and the CA key behind.
      if (state.role === 'worker') await this.dropManagerFiles();
      const runtime = await this.startRuntime(state);
      this.swarm = { kind: 'active', runtime };
      await this.startJoinEndpoint(runtime);
      this.logger.info({ nodeId: state.nodeId, clusterId: state.clusterId }, 'rejoined the swarm recorded in the data dir');
    } else if (await exists(join(this.dataDir, FILES.raftDir))) {
      // A Raft log without a node state is what an interrupted init leaves: it never answered, so start over.
      this.logger.warn({ dataDir: this.dataDir }, 'removing the leftovers of an interrupted swarm init');
      await removeSwarmState(this.dataDir);
    }
    this.api = await startApiServer({ socketPath: this.socketPath, backend: this, logger: this.loggerFor('api') });
  }

  /** Managers certify joining nodes on their listen address, with a TLS chain of their node cert and the CA. */
  private async startJoinEndpoint(runtime: ClusterRuntime): Promise<void> {
    if (runtime.state.role !== 'manager' || this.joinServer !== null) return;
    const secrets = await loadSecrets(this.dataDir);
    this.joinServer = await startJoinServer({
      host: runtime.state.listenHost,
      port: this.options.joinListenPort ?? runtime.state.listenPort,
      certChainPem: `${secrets.nodeCertPem.trim()}\n${secrets.caCertPem.trim()}\n`,
      keyPem: secrets.nodeKeyPem,
      logger: this.loggerFor('join'),
      handle: (request, remote) => this.handleJoin(request, remote),
    });
  }

  private async dropManagerFiles(): Promise<void> {
    await rm(join(this.dataDir, FILES.raftDir), { recursive: true, force: true });
    await rm(join(this.dataDir, FILES.caKey), { force: true });
    await rm(join(this.dataDir, FILES.dataKey), { force: true });
  }

  private async startRuntime(
    state: NodeState,
    seeds: readonly string[] = state.managerAddrs ?? [],
    raftPeers: Record<string, string> = {},
    requireSeed = false,
    minIncarnation = 0,
  ): Promise<ClusterRuntime> {
    const secrets = await loadSecrets(this.dataDir);
    // Re-encoding checks the file's format before libp2p sees it.
    const pnetKeyFile = encodePnetKey(decodePnetKey(secrets.pnetKeyFile));
    // Only a manager's dispatcher opens secrets; a worker has no key (and never gets one).
    const dataKey = state.role === 'manager' && secrets.dataKeyFile !== null ? decodeDataKey(secrets.dataKeyFile) : null;
    return ClusterRuntime.start({
      dataKey,
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
      ...(this.options.heartbeatPeriodMs === undefined ? {} : { heartbeatPeriodMs: this.options.heartbeatPeriodMs }),
      ...(this.options.heartbeatGraceMs === undefined ? {} : { heartbeatGraceMs: this.options.heartbeatGraceMs }),
      seeds,
      raftPeers,
      requireSeed,
      minIncarnation,
      roleHandler: this.roleHandler(state),
      forgetLeaver: (remotePeer, nodeId) => this.forgetLeaver(remotePeer, nodeId),
      changeRole: (node, role) => this.changeRole(node, role),
      agent: this.taskAgent(state.nodeId),
      reconcilers: leaderReconcilers(),
      overlay: this.engine.overlay,
    });
  }

  /** The node's task runner, made once per swarm membership: a role change keeps it (and its tasks) running. */
  private taskAgent(nodeId: string): TaskAgent {
    if (this.agent === null || this.agent.nodeId !== nodeId) {
      this.agent = this.engine.agentFor(nodeId, (updates) => this.reportTaskStatus(updates), this.loggerFor('agent'));
    }
    return this.agent;
  }

  private reportTaskStatus(updates: TaskStatusUpdate[]): void {
    if (this.swarm.kind === 'active') this.swarm.runtime.agentSession?.report(updates);
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
      const dataKeyFile = encodeDataKey(generateDataKey());
      await removeSwarmState(this.dataDir);
      await saveSecrets(this.dataDir, { caCertPem: ca.certPem, caKeyPem: ca.keyPem, nodeCertPem, nodeKeyPem: nodeKeys.privateKeyPem, pnetKeyFile, dataKeyFile });
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
        description: this.describeWithLibp2p(runtime),
        status: { state: 'ready', addr: state.advertiseHost, message: '' },
        managerStatus: { raftId: state.nodeId, addr: managerAddr, leader: true, reachability: 'reachable' },
        attachments: [],
      };
      await runtime.propose([
        { op: 'create', kind: 'cluster', object: cluster },
        { op: 'create', kind: 'node', object: node },
        { op: 'create', kind: 'network', object: ingressNetwork(newId()) },
      ]);
      await this.startJoinEndpoint(runtime);
      // Written last: its presence is what makes a restart rejoin instead of starting empty.
      await saveNodeState(this.dataDir, state);
      if (this.swarm.kind !== 'initializing') throw new ApiError('unavailable', 'this node is shutting down');
      this.swarm = { kind: 'active', runtime };
      this.logger.info({ nodeId: state.nodeId, clusterId: state.clusterId, managerAddr }, 'swarm initialized');
      return { NodeID: state.nodeId, ClusterID: state.clusterId, ManagerAddr: managerAddr };
    } catch (err) {
      await this.joinServer?.close();
      this.joinServer = null;
      await runtime?.close().catch((e: unknown) => this.logger.warn({ err: e }, 'closing the half-initialized runtime failed'));
      await removeSwarmState(this.dataDir).catch((e: unknown) => this.logger.warn({ err: e }, 'removing the half-initialized state failed'));
      if (this.swarm.kind === 'initializing') this.swarm = { kind: 'inactive' };
      this.logger.warn({ err }, 'swarm init failed; the node is left as it was');
      throw err;
    }
  }

  private describeWithLibp2p(runtime: ClusterRuntime): NodeDescription {
    const labels = { ...this.description.engineLabels, [PEER_ID_LABEL]: this.peerId, [LIBP2P_ADDR_LABEL]: runtime.advertisedMultiaddr() };
    return { ...this.description, engineLabels: labels };
  }

  /**
   * Joining side of `swarm join`: the manager's TLS chain must show the CA the token pins before the token is
   * sent; nothing is written to the data dir until the manager has certified this node.
   */
  async joinSwarm(request: SwarmJoinRequest): Promise<SwarmJoinResponse> {
    if (this.swarm.kind === 'active' || this.swarm.kind === 'initializing') {
      throw new ApiError('already_in_swarm', 'this node is already part of a swarm: use `swarm leave` to leave it first');
    }
    if (this.swarm.kind === 'closed') throw new ApiError('unavailable', 'this node is shutting down');
    try {
      parseJoinToken(request.token);
    } catch (err) {
      if (err instanceof PkiError) throw new ApiError('permission_denied', err.message);
      throw err;
    }
    this.swarm = { kind: 'initializing' };
    let runtime: ClusterRuntime | null = null;
    let wrote = false;
    try {
      const advertiseHost = request.advertiseHost ?? chooseAdvertiseHost(request.listenHost);
      const advertisePort = request.advertisePort ?? request.listenPort;
      const gossipPort = this.options.gossipPort ?? DEFAULT_GOSSIP_PORT;
      const nodeKeys = await generateNodeKeyPair();
      let joined;
      try {
        joined = await requestJoin(request.remoteHost, request.remotePort, request.token, async (caFingerprint) => ({
          version: JOIN_PROTOCOL_VERSION,
          token: request.token,
          nodePublicKey: nodeKeys.publicKeyPem,
          libp2pPeerId: this.peerId,
          peerIdProof: Buffer.from(await this.libp2pKey.sign(joinProofPayload(caFingerprint, nodeKeys.publicKeyPem))).toString('base64'),
          hostname: this.description.hostname,
          advertiseHost,
          advertisePort,
          libp2pAddr: `/${advertiseHost.includes(':') ? 'ip6' : 'ip4'}/${advertiseHost}/tcp/${gossipPort}/p2p/${this.peerId}`,
          platform: this.description.platform,
          resources: this.description.resources,
          engineVersion: this.description.engineVersion,
        }));
      } catch (err) {
        if (err instanceof PkiError) throw new ApiError('permission_denied', `join refused before sending the token: ${err.message}`);
        if (err instanceof DaemonError) throw new ApiError(err.code === 'join_refused' ? 'permission_denied' : 'unavailable', err.message);
        throw err;
      }
      const answer = joined.answer;
      if (!answer.ok) {
        throw new ApiError(answer.code === 'token' ? 'permission_denied' : answer.code === 'invalid' ? 'invalid_argument' : 'unavailable', `the manager refused the join: ${answer.message}`);
      }
      if (certificateFingerprint(answer.caCert) !== certificateFingerprint(joined.caPem)) {
        throw new ApiError('permission_denied', 'the manager answered with a CA certificate other than the one it presented in TLS');
      }
      const identity = await verifyNodeCertificate(answer.caCert, answer.cert, { nowMs: Date.now(), expectedPeerId: this.peerId });
      assert(identity.nodeId === answer.nodeId && identity.role === answer.role, 'the certificate names the node id and role the manager answered');
      const state: NodeState = {
        format: 1,
        nodeId: answer.nodeId,
        clusterId: answer.clusterId,
        role: answer.role,
        listenHost: request.listenHost,
        listenPort: request.listenPort,
        advertiseHost,
        advertisePort,
        joinedAtMs: Date.now(),
        ...(answer.role === 'manager' ? { raftJoin: true } : {}),
        managerAddrs: answer.managers.flatMap((m) => m.multiaddrs),
      };
      const pnetKeyFile = encodePnetKey(decodePnetKey(answer.pnetKey));
      // Re-encoding checks the key file's format; a worker never keeps one, whatever it was sent.
      const dataKeyFile = answer.role === 'manager' && answer.dataKey !== null ? encodeDataKey(decodeDataKey(Buffer.from(answer.dataKey, 'utf8'))) : null;
      await removeSwarmState(this.dataDir);
      wrote = true;
      await saveSecrets(this.dataDir, { caCertPem: answer.caCert, caKeyPem: answer.caKey, nodeCertPem: answer.cert, nodeKeyPem: nodeKeys.privateKeyPem, pnetKeyFile, dataKeyFile });
      const raftPeers = Object.fromEntries(answer.managers.flatMap((m) => (m.multiaddrs[0] === undefined ? [] : [[m.nodeId, m.multiaddrs[0]]])));
      runtime = await this.startRuntime(state, answer.managers.flatMap((m) => m.multiaddrs), raftPeers, true);
      if (state.role === 'manager') await this.waitUntilReplicated(runtime);
      await this.startJoinEndpoint(runtime);
      await saveNodeState(this.dataDir, state);
      if (this.swarm.kind !== 'initializing') throw new ApiError('unavailable', 'this node is shutting down');
      this.swarm = { kind: 'active', runtime };
      this.logger.info({ nodeId: state.nodeId, clusterId: state.clusterId, role: state.role }, 'joined the swarm');
      return { NodeID: state.nodeId, ClusterID: state.clusterId, Role: state.role };
    } catch (err) {
      await runtime?.close().catch((e: unknown) => this.logger.warn({ err: e }, 'closing the half-joined runtime failed'));
      await this.joinServer?.close();
      this.joinServer = null;
      if (wrote) await removeSwarmState(this.dataDir).catch((e: unknown) => this.logger.warn({ err: e }, 'removing the half-joined state failed'));
      if (this.swarm.kind === 'initializing') this.swarm = { kind: 'inactive' };
      this.logger.warn({ err }, 'swarm join failed; the node is left as it was');
      throw err;
    }
  }

  /** A joined manager is usable once the leader added it and its store holds its own Node. */
  private async waitUntilReplicated(runtime: ClusterRuntime): Promise<void> {
    const deadline = Date.now() + JOIN_TIMEOUT_MS;
    while (runtime.store.view((tx) => tx.get('node', runtime.state.nodeId)) === undefined) {
      if (Date.now() > deadline) {
        throw new ApiError('unavailable', `the leader did not replicate the cluster state to this manager within ${JOIN_TIMEOUT_MS} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Manager side of a join: token, proof of the libp2p key, certificate, then the Node through Raft. */
  private async handleJoin(request: JoinRequestMessage, remote: string): Promise<JoinAnswer> {
    if (this.swarm.kind !== 'active') return { ok: false, code: 'unavailable', message: 'this manager is not ready to accept joins' };
    const runtime = this.swarm.runtime;
    const cluster = await this.currentCluster(runtime);
    let role: NodeRole;
    try {
      role = matchJoinToken(request.token, cluster.joinTokens, cluster.rootCA.fingerprint);
    } catch (err) {
      if (err instanceof PkiError) return { ok: false, code: 'token', message: err.message };
      throw err;
    }
    let proofOk = false;
    try {
      const key = peerIdFromString(request.libp2pPeerId).publicKey;
      proofOk = key !== undefined && (await key.verify(joinProofPayload(cluster.rootCA.fingerprint, request.nodePublicKey), Buffer.from(request.peerIdProof, 'base64')));
    } catch {
      proofOk = false;
    }
    if (!proofOk) return { ok: false, code: 'invalid', message: 'the join request does not prove it holds the libp2p key of the peer id it names' };
    const secrets = await loadSecrets(this.dataDir);
    if (secrets.caKeyPem === null) return { ok: false, code: 'unavailable', message: 'this manager holds no CA key' };
    const ca = await loadRootCA(secrets.caCertPem, secrets.caKeyPem);
    const nodeId = newId();
    let cert: string;
    try {
      cert = await issueNodeCertificate(ca, { nodeId, role, clusterId: cluster.id, publicKey: request.nodePublicKey, libp2pPeerId: request.libp2pPeerId, nowMs: Date.now() });
    } catch (err) {
      if (err instanceof PkiError) return { ok: false, code: 'invalid', message: err.message };
      throw err;
    }
    const node: Omit<Node, 'meta'> = {
      id: nodeId,
      spec: { name: '', labels: {}, role, availability: 'active' },
      description: {
        hostname: request.hostname,
        platform: request.platform,
        resources: request.resources,
        engineVersion: request.engineVersion,
        engineLabels: { [PEER_ID_LABEL]: request.libp2pPeerId, [LIBP2P_ADDR_LABEL]: request.libp2pAddr },
      },
      status: { state: 'ready', addr: request.advertiseHost, message: '' },
      managerStatus: role === 'manager' ? { raftId: nodeId, addr: formatHostPort(request.advertiseHost, request.advertisePort), leader: false, reachability: 'unknown' } : null,
      attachments: [],
    };
    await runtime.propose([{ op: 'create', kind: 'node', object: node }]);
    const managers = managerPeers(runtime, nodeId).map((m) => ({ nodeId: m.nodeId, peerId: m.peerId, multiaddrs: [m.multiaddr] }));
    this.logger.info({ nodeId, role, hostname: request.hostname, remote }, 'node joined');
    return {
      ok: true,
      nodeId,
      role,
      clusterId: cluster.id,
      cert,
      caCert: cluster.rootCA.certPem,
      caKey: role === 'manager' ? secrets.caKeyPem : null,
      pnetKey: Buffer.from(secrets.pnetKeyFile).toString('utf8'),
      dataKey: role === 'manager' && secrets.dataKeyFile !== null ? Buffer.from(secrets.dataKeyFile).toString('utf8') : null,
      managers,
    };
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
    // Reachability is what this manager sees now: itself, and the others by gossip's verdict on them.
    const reachability = (n: Node): 'reachable' | 'unreachable' | null => {
      const alive = this.seesAlive(runtime, n);
      return alive === null ? null : alive ? 'reachable' : 'unreachable';
    };
    return runtime.store.view((tx) => tx.list('node')).map((n) =>
      n.managerStatus === null
        ? n
        : { ...n, managerStatus: { ...n.managerStatus, leader: n.managerStatus.raftId === leaderId, reachability: reachability(n) ?? n.managerStatus.reachability } },
    );
  }

  // ------------------------------------------------------------ images (node-local)

  async login(request: { username: string; password: string; serveraddress: string }): Promise<void> {
    await engineAsync(() => this.engine.login(registryHost(request.serveraddress), { username: request.username, password: request.password }));
  }

  async logout(serveraddress: string): Promise<boolean> {
    return this.engine.logout(registryHost(serveraddress));
  }

  async listImages(): Promise<ImageSummaryDocument[]> {
    return this.engine.images.list().map((i) => ({ Repository: i.repository, Tag: i.tag, ID: i.manifestDigest, Created: i.created, Size: i.sizeBytes }));
  }

  async inspectImage(ref: string): Promise<ImageInspectDocument> {
    return imageInspectDocument(engineCall(() => this.engine.images.inspect(ref)));
  }

  async pullImage(ref: string, onLine: (line: ImageProgressLine) => void, signal: AbortSignal): Promise<void> {
    engineCall(() => parseReference(ref));
    const progress = new PullProgressLines(onLine);
    const result = await engineAsync(() => this.engine.images.pull(ref, { signal, onProgress: (p) => progress.push(p) }));
    const name = familiarReference(parseReference(ref));
    onLine({ status: `Digest: ${result.digest}` });
    onLine({ status: result.downloaded ? `Status: Downloaded newer image for ${name}` : `Status: Image is up to date for ${name}` });
  }

  async pushImage(ref: string, onLine: (line: ImageProgressLine) => void, signal: AbortSignal): Promise<void> {
    engineCall(() => this.engine.images.inspect(ref));
    onLine({ status: `The push refers to repository [${repositoryName(parseReference(ref))}]` });
    const pushed = await engineAsync(() =>
      this.engine.images.push(ref, {
        signal,
        onProgress: (p) => onLine({ id: shortDigest(p.digest), status: p.status === 'pushing' ? 'Pushing' : p.status === 'pushed' ? 'Pushed' : 'Layer already exists', progressDetail: { total: p.totalBytes } }),
      }),
    );
    onLine({ status: `${parseReference(ref).tag ?? 'latest'}: digest: ${pushed.digest}` });
  }

  async removeImage(ref: string, force: boolean): Promise<Array<{ Untagged?: string; Deleted?: string }>> {
    const results = await engineAsync(() => this.engine.images.remove(ref, { force }));
    return results.map((r) => ('untagged' in r ? { Untagged: r.untagged } : { Deleted: r.deleted }));
  }

  async tagImage(source: string, target: string): Promise<void> {
    await engineAsync(() => this.engine.images.tag(source, target));
  }

  async loadImages(archive: NodeJS.ReadableStream): Promise<string[]> {
    const loaded = await engineAsync(() => this.engine.images.load(Readable.from(archive)));
    return loaded.flatMap((l) => (l.references.length > 0 ? [...l.references] : [l.manifestDigest]));
  }

  async saveImages(refs: string[]): Promise<{ path: string; cleanup: () => Promise<void> }> {
    const dir = await mkdtemp(join(tmpdir(), 'swarm-save-'));
    const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
    const path = join(dir, 'images.tar');
    try {
      await engineAsync(() => this.engine.images.save(refs, path));
    } catch (err) {
      await cleanup();
      throw err;
    }
    return { path, cleanup };
  }

  // ------------------------------------------------------------ volumes (node-local)

  async listVolumes(): Promise<VolumeDocument[]> {
    return this.engine.volumes.list().map(volumeDocument);
  }

  async createVolume(request: VolumeCreateRequest): Promise<VolumeDocument> {
    return volumeDocument(engineCall(() => this.engine.volumes.create(request.Name, request.Labels ?? {})));
  }

  async inspectVolume(name: string): Promise<VolumeDocument> {
    return volumeDocument(engineCall(() => this.engine.volumes.inspect(name)));
  }

  async removeVolume(name: string): Promise<void> {
    engineCall(() => this.engine.volumes.remove(name));
  }

  async listMembers(): Promise<MemberDocument[]> {
    const runtime = this.active();
    // sinceMs is on the membership's monotonic clock, not the epoch.
    const now = runtime.membership.nowMs();
    const self = runtime.membership.member(runtime.membership.id);
    const members = self === undefined ? runtime.membership.members() : [self, ...runtime.membership.members().filter((m) => m.id !== self.id)];
    return members.map((m) => ({
      PeerID: m.id,
      NodeID: m.meta.nodeId,
      Hostname: m.meta.hostname,
      Role: m.meta.role,
      State: m.state,
      Incarnation: m.incarnation,
      Addrs: [...m.meta.addrs],
      SinceMs: Math.max(0, now - m.sinceMs),
    }));
  }

  // ------------------------------------------------------------ networks (cluster objects, through Raft)

  async createNetwork(request: NetworkCreateRequest): Promise<{ ID: string; Warning: string }> {
    const runtime = this.active();
    this.requireManager(runtime);
    const spec = networkSpecOf(request);
    await runtime.readBarrier();
    const id = newId();
    const { networks, cluster } = runtime.store.view((tx) => ({ networks: tx.list('network'), cluster: tx.get('cluster', runtime.state.clusterId) }));
    // The store refuses a taken name too; saying it here names the network that has it.
    const taken = networks.find((n) => n.spec.name.toLowerCase() === spec.name.toLowerCase());
    if (taken !== undefined) throw new ApiError('conflict', `network with name ${taken.spec.name} already exists (${taken.id})`);
    const ingress = networks.find((n) => n.spec.ingress);
    if (spec.ingress && ingress !== undefined) throw new ApiError('conflict', `ingress network already exists (${ingress.spec.name}): remove it first to make another`);
    // The allocator's verdict foreseen (an overlap, full pools), so the user hears it now rather than finding the
    // network never allocated. The allocator itself allocates from what is committed: this result is thrown away.
    try {
      allocateNetwork({ id, meta: { version: { index: 0 }, createdAtMs: 0, updatedAtMs: 0 }, spec, allocation: null }, networks, cluster?.defaultAddrPool ?? [], cluster?.subnetSize ?? 0);
    } catch (err) {
      if (err instanceof IpamError) throw new ApiError('conflict', `${spec.ipam.configs.length > 0 ? 'IPAM.Config[0].Subnet' : 'IPAM'}: ${err.message}`);
      throw err;
    }
    await runtime.propose([{ op: 'create', kind: 'network', object: { id, spec, allocation: null } }]);
    const network = await this.networkAllocated(runtime, id, spec.name);
    assert(network.allocation !== null, 'an allocated network has its allocation');
    this.logger.info({ network: id, name: spec.name, vni: network.allocation.vni, subnet: network.allocation.subnet }, 'network created');
    const warning = Object.hasOwn(spec.driverOptions, ENCRYPTED_OPTION)
      ? `network ${spec.name} is encrypted, and this version's overlay cannot encrypt traffic between hosts yet: nodes that wire overlays (runc) refuse its tasks rather than send them in the clear; use a network without --opt ${ENCRYPTED_OPTION}`
      : '';
    return { ID: id, Warning: warning };
  }

  /** Polls this node's store (a follower's too: the leader's write is replicated) until the allocator has run. */
  private async networkAllocated(runtime: ClusterRuntime, id: string, name: string): Promise<Network> {
    try {
      return await pollUntil(
        `network ${name} allocated`,
        () => {
          const n = runtime.store.view((tx) => tx.get('network', id));
          if (n === undefined) throw new ApiError('not_found', `network ${name} was removed before the cluster allocated it`);
          return n.allocation !== null ? n : undefined;
        },
        { deadlineMs: NETWORK_ALLOCATION_DEADLINE_MS, intervalMs: 20 },
      );
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw new ApiError(
        'unavailable',
        `network ${name} (${id}) was created, but the leader has not allocated it a subnet and VXLAN id within ${NETWORK_ALLOCATION_DEADLINE_MS / 1000} s; tasks cannot use it until it does (see \`swarm network inspect ${name}\`, or remove it)`,
      );
    }
  }

  async listNetworks(): Promise<{ networks: Network[]; tasks: Task[]; nodes: Node[] }> {
    const runtime = this.active();
    this.requireManager(runtime);
    await runtime.readBarrier();
    return runtime.store.view((tx) => ({ networks: tx.list('network'), tasks: tx.list('task'), nodes: tx.list('node') }));
  }

  async removeNetwork(ref: string): Promise<void> {
    const runtime = this.active();
    this.requireManager(runtime);
    await runtime.readBarrier();
    const { network, services, tasks } = runtime.store.view((tx) => ({ network: resolveNetwork(tx.list('network'), ref), services: tx.list('service'), tasks: tx.list('task') }));
    const name = network.spec.name;
    const user = services.find((s) => s.spec.taskTemplate.networks.some((n) => n.target === network.id));
    if (user !== undefined) {
      throw new ApiError('conflict', `network ${name} is in use by service ${user.spec.name}: remove the service, or \`swarm service update --network-rm ${name} ${user.spec.name}\`, first`);
    }
    if (network.spec.ingress) {
      const publisher = services.find((s) => s.spec.endpointSpec.ports.some((p) => p.publishMode === 'ingress'));
      if (publisher !== undefined) {
        throw new ApiError('conflict', `network ${name} is the routing mesh of service ${publisher.spec.name}, which publishes ports in ingress mode: remove those ports (or the service) first`);
      }
    }
    // Docker waits for the endpoints to go; we refuse, so that no task ever holds an address on a deleted network.
    const attached = attachedTasks(network.id, tasks);
    if (attached.length > 0) throw new ApiError('conflict', `network ${name} still has ${attached.length} task(s) attached: wait for them to stop`);
    await runtime.propose([{ op: 'delete', kind: 'network', id: network.id, version: network.meta.version }]);
    this.logger.info({ network: network.id, name }, 'network removed');
  }

  /**
   * TaskTemplate.Networks' targets (id, name or unique id prefix) as network ids, each once (aliases merged), as
   * the store keeps them. The ingress network is refused: it comes with published ports, never by name.
   */
  private resolveServiceNetworks(runtime: ClusterRuntime, spec: Service['spec']): void {
    const wanted = spec.taskTemplate.networks;
    if (wanted.length === 0) return;
    // `--network host`: the tasks use their node's own network stack; that cannot be combined with an overlay.
    if (wanted.some((w) => w.target === HOST_NETWORK)) {
      if (wanted.some((w) => w.target !== HOST_NETWORK)) throw invalid(`TaskTemplate.Networks: the ${HOST_NETWORK} network cannot be combined with other networks`);
      spec.taskTemplate.networks = [{ target: HOST_NETWORK, aliases: [] }];
      return;
    }
    const networks = runtime.store.view((tx) => tx.list('network'));
    const resolved: Service['spec']['taskTemplate']['networks'] = [];
    wanted.forEach((w, i) => {
      let network: Network;
      try {
        network = resolveNetwork(networks, w.target);
      } catch (err) {
        if (err instanceof ApiError) throw new ApiError(err.code, `TaskTemplate.Networks[${i}].Target: ${err.message}`);
        throw err;
      }
      if (network.spec.ingress) throw invalid(`TaskTemplate.Networks[${i}].Target: service cannot be explicitly attached to the ingress network ${JSON.stringify(network.spec.name)}`);
      const same = resolved.find((r) => r.target === network.id);
      if (same === undefined) resolved.push({ target: network.id, aliases: [...new Set(w.aliases)] });
      else same.aliases = [...new Set([...same.aliases, ...w.aliases])];
    });
    assert(resolved.length <= wanted.length, 'resolving networks never adds one');
    spec.taskTemplate.networks = resolved;
  }

  // ------------------------------------------------------------ secrets and configs (cluster objects, through Raft)

  /** The cluster's data key from this manager's data dir (read when needed, like the CA key). */
  private async dataKey(): Promise<Uint8Array> {
    const secrets = await loadSecrets(this.dataDir);
    if (secrets.dataKeyFile === null) {
      throw new ApiError('unavailable', 'this manager holds no data key: its cluster was initialized before secrets existed, so it cannot store secrets (configs work)');
    }
    return decodeDataKey(secrets.dataKeyFile);
  }

  async createSecret(spec: FileObjectSpec): Promise<{ ID: string }> {
    const key = await this.dataKey();
    // Sealed before it is proposed: the Raft log, its snapshots and every manager's WAL only ever hold the ciphertext.
    return this.createFileObject('secret', spec, (id, data) => sealSecret(key, id, data));
  }

  listSecrets(): Promise<Secret[]> {
    return this.listFileObjects('secret');
  }

  removeSecret(ref: string): Promise<void> {
    return this.removeFileObject('secret', ref);
  }

  /** Configs are not secret (as Docker's): stored as given. */
  createConfig(spec: FileObjectSpec): Promise<{ ID: string }> {
    return this.createFileObject('config', spec, (_id, data) => data);
  }

  listConfigs(): Promise<Config[]> {
    return this.listFileObjects('config');
  }

  removeConfig(ref: string): Promise<void> {
    return this.removeFileObject('config', ref);
  }

  private async createFileObject(kind: 'secret' | 'config', spec: FileObjectSpec, seal: (id: string, data: Uint8Array) => Uint8Array): Promise<{ ID: string }> {
    const runtime = this.active();
    this.requireManager(runtime);
    await runtime.readBarrier();
    // The store refuses a taken name too (any case); saying it here is Docker's message.
    const taken = runtime.store.view((tx) => tx.list(kind)).find((x) => x.spec.name.toLowerCase() === spec.name.toLowerCase());
    if (taken !== undefined) throw new ApiError('conflict', `${kind} ${taken.spec.name} already exists`);
    const id = newId();
    const object: Omit<Secret | Config, 'meta'> = { id, spec: { name: spec.name, labels: spec.labels, data: seal(id, spec.data) } };
    // The two branches are one op; the condition narrows `kind` for the Op union.
    await runtime.propose([kind === 'secret' ? { op: 'create', kind, object } : { op: 'create', kind, object }]);
    this.logger.info({ [kind]: id, name: spec.name }, `${kind} created`);
    return { ID: id };
  }

  private async listFileObjects<K extends 'secret' | 'config'>(kind: K): Promise<Array<ObjectsByKind[K]>> {
    const runtime = this.active();
    this.requireManager(runtime);
    await runtime.readBarrier();
    return runtime.store.view((tx) => tx.list(kind));
  }

  private async removeFileObject(kind: 'secret' | 'config', ref: string): Promise<void> {
    const runtime = this.active();
    this.requireManager(runtime);
    await runtime.readBarrier();
    const { found, services } = runtime.store.view((tx) => ({ found: resolveFileObject(kind, tx.list(kind), ref), services: tx.list('service') }));
    const users = servicesUsing(kind, found.id, services);
    if (users.length > 0) throw inUseError(kind, found.spec.name, users);
    await runtime.propose([{ op: 'delete', kind, id: found.id, version: found.meta.version }]);
    this.logger.info({ [kind]: found.id, name: found.spec.name }, `${kind} removed`);
  }

  /** A service spec's secret and config references, names resolved to ids against the store (in place). */
  private resolveFiles(runtime: ClusterRuntime, spec: Service['spec']): void {
    const c = spec.taskTemplate.containerSpec;
    if ((c.secrets ?? []).length === 0 && (c.configs ?? []).length === 0) return;
    const { secrets, configs } = runtime.store.view((tx) => ({ secrets: tx.list('secret'), configs: tx.list('config') }));
    resolveServiceFiles(spec, secrets, configs);
  }

  // ------------------------------------------------------------ services

  async createService(doc: ServiceSpecDocument, options: ServiceWriteOptions): Promise<{ ID: string; Warnings: string[] }> {
    const runtime = this.active();
    this.requireManager(runtime);
    const id = newId();
    // Docker makes up a name when none is given; ours is short and says what it is.
    const spec = toServiceSpec(doc, `service-${id.slice(0, 8)}`);
    checkServiceSpec(spec);
    const usesNetworks = spec.taskTemplate.networks.length > 0 || spec.endpointSpec.ports.length > 0;
    const usesFiles = spec.taskTemplate.containerSpec.secrets.length > 0 || spec.taskTemplate.containerSpec.configs.length > 0;
    // One read barrier for whatever must be read from the store as it is (networks, ports, secrets, configs).
    if (usesNetworks || usesFiles) await runtime.readBarrier();
    if (usesNetworks) {
      this.resolveServiceNetworks(runtime, spec);
      checkPortConflicts(spec, runtime.store.view((tx) => tx.list('service')), id);
    }
    if (usesFiles) this.resolveFiles(runtime, spec);
    if (options.withRegistryAuth) spec.taskTemplate.containerSpec.registryAuth = this.registryAuthFor(spec.taskTemplate.containerSpec.image);
    const warnings = await this.pinImage(spec, options);
    const service: Omit<Service, 'meta'> = {
      id,
      spec,
      previousSpec: null,
      specVersion: { index: 0 },
      endpoint: { spec: spec.endpointSpec, ports: [], virtualIps: [] },
      updateStatus: null,
    };
    await runtime.propose([{ op: 'create', kind: 'service', object: service }]);
    this.logger.info({ service: id, name: spec.name, image: spec.taskTemplate.containerSpec.image }, 'service created');
    return { ID: id, Warnings: warnings };
  }

  /** This node's `swarm login` for the image's registry, to go with a service (--with-registry-auth). */
  private registryAuthFor(image: string): RegistryAuth {
    const registry = parseReference(image).registry;
    const creds = this.engine.credentials(registry);
    if (creds === null) throw new ApiError('invalid_argument', `--with-registry-auth: this node has no login for ${registry}: run \`swarm login ${registry}\` on it first`);
    return { registry, username: creds.username, password: creds.password };
  }

  /**
   * Docker's image pinning: an image given by tag becomes `tag@digest` with the digest the registry answers now,
   * so every replica, on every node, runs the same bytes even if the tag moves. An image already pinned, or a
   * registry that cannot be asked, is left as it is (with Docker's warning for the latter).
   */
  private async pinImage(spec: Service['spec'], options: ServiceWriteOptions): Promise<string[]> {
    const c = spec.taskTemplate.containerSpec;
    const resolve = this.engine.resolveImage;
    if (!options.resolveImage || c.image.includes('@') || resolve === null) return [];
    try {
      c.image = await resolve(c.image);
      return [];
    } catch (err) {
      this.logger.info({ image: c.image, err: (err as Error).message }, 'could not pin the image to a digest');
      return [`image ${c.image} could not be accessed on a registry to record its digest (${(err as Error).message}). Each node will access ${c.image} independently, possibly leading to different nodes running different versions of the image.`];
    }
  }

  async listServices(): Promise<{ services: Service[]; tasks: Task[] }> {
    const runtime = this.active();
    this.requireManager(runtime);
    await runtime.readBarrier();
    return runtime.store.view((tx) => ({ services: tx.list('service'), tasks: tx.list('task') }));
  }

  async updateService(ref: string, change: { spec: ServiceSpecDocument } | { rollback: true }, version: number | null, options: ServiceWriteOptions): Promise<{ service: Service; warnings: string[] }> {
    const runtime = this.active();
    this.requireManager(runtime);
    await runtime.readBarrier();
    const service = resolveService(runtime.store.view((tx) => tx.list('service')), ref);
    if (version !== null && version !== service.meta.version.index) {
      throw new ApiError('conflict', `update out of sequence: service ${service.spec.name} is at version ${service.meta.version.index}, not ${version}; inspect it again`);
    }
    const nowMs = Date.now();
    let next: Omit<Service, 'meta'> & { meta: Service['meta'] };
    let warnings: string[] = [];
    if ('rollback' in change) {
      if (service.previousSpec === null) throw new ApiError('invalid_argument', `service ${service.spec.name} has no previous spec to roll back to`);
      // Its networks may have been removed since: refused now, rather than tasks that wait for them forever.
      this.resolveServiceNetworks(runtime, structuredClone(service.previousSpec));
      // And its secrets and configs.
      this.resolveFiles(runtime, structuredClone(service.previousSpec));
      // So may its published ports have been taken by another service.
      checkPortConflicts(service.previousSpec, runtime.store.view((tx) => tx.list('service')), service.id);
      const rollingOut = !deepEqual(service.previousSpec.taskTemplate, service.spec.taskTemplate) || !deepEqual(service.previousSpec.endpointSpec, service.spec.endpointSpec);
      next = {
        ...service,
        spec: service.previousSpec,
        previousSpec: service.spec,
        updateStatus: rollingOut ? { state: 'rollback_started', startedAtMs: nowMs, completedAtMs: null, message: 'manually requested rollback' } : service.updateStatus,
      };
    } else {
      const spec = toServiceSpec(change.spec, service.spec.name);
      if (spec.name !== service.spec.name) throw new ApiError('invalid_argument', `Name: a service cannot be renamed (${service.spec.name} -> ${spec.name})`);
      if ((spec.mode.global !== undefined) !== (service.spec.mode.global !== undefined)) {
        throw new ApiError('invalid_argument', `Mode: service ${service.spec.name} is ${service.spec.mode.global !== undefined ? 'global' : 'replicated'}; the mode of a service cannot change`);
      }
      checkServiceSpec(spec);
      this.resolveServiceNetworks(runtime, spec);
      this.resolveFiles(runtime, spec);
      checkPortConflicts(spec, runtime.store.view((tx) => tx.list('service')), service.id);
      // As Docker's: without --with-registry-auth an update keeps the login the service already carries.
      spec.taskTemplate.containerSpec.registryAuth = options.withRegistryAuth
        ? this.registryAuthFor(spec.taskTemplate.containerSpec.image)
        : (service.spec.taskTemplate.containerSpec.registryAuth ?? null);
      warnings = await this.pinImage(spec, options);
      // A new task template or endpoint spec (ports, mode, strategy: the tasks' attachments come from it) is rolled
      // out; a new replica count is the orchestrator's alone (a scale).
      const rollingOut = !deepEqual(spec.taskTemplate, service.spec.taskTemplate) || !deepEqual(spec.endpointSpec, service.spec.endpointSpec);
      next = {
        ...service,
        spec,
        previousSpec: service.spec,
        updateStatus: rollingOut ? { state: 'updating', startedAtMs: nowMs, completedAtMs: null, message: 'update in progress' } : service.updateStatus,
      };
    }
    await runtime.propose([{ op: 'update', kind: 'service', object: next }]);
    const updated = runtime.store.view((tx) => tx.get('service', service.id));
    if (updated === undefined) throw new ApiError('not_found', `service ${ref} was removed while it was being updated`);
    this.logger.info({ service: service.id, name: service.spec.name, update: updated.updateStatus?.state ?? null }, 'service updated');
    return { service: updated, warnings };
  }

  async removeService(ref: string): Promise<void> {
    const runtime = this.active();
    this.requireManager(runtime);
    await runtime.readBarrier();
    const { service, tasks } = runtime.store.view((tx) => {
      const s = resolveService(tx.list('service'), ref);
      return { service: s, tasks: tx.tasksByService(s.id) };
    });
    const ops: Op[] = [{ op: 'delete', kind: 'service', id: service.id, version: service.meta.version }];
    // The orchestrator's own stop: a task never placed (or on a dead node) is marked stopped at once.
    runtime.store.view((tx) => {
      for (const t of tasks) if (isLive(t)) ops.push(shutdownOp(tx, t, Date.now()));
    });
    await runtime.propose(ops);
    this.logger.info({ service: service.id, name: service.spec.name, tasks: tasks.length }, 'service removed');
  }

  async serviceLogs(ref: string, options: { tail: number | null; follow: boolean }, signal: AbortSignal): Promise<AsyncIterable<ServiceLogLine>> {
    const runtime = this.active();
    this.requireManager(runtime);
    await runtime.readBarrier();
    const { tasks, nodes } = runtime.store.view((tx) => {
      const nodes = new Map(tx.list('node').map((n) => [n.id, n]));
      // Docker's `service logs SERVICE|TASK`: a service by id, name or prefix, else one task by id or unique prefix.
      let service;
      try {
        service = resolveService(tx.list('service'), ref);
      } catch (err) {
        if (!(err instanceof ApiError) || err.code !== 'not_found') throw err;
        const matches = tx.list('task').filter((t) => t.id === ref || t.id.startsWith(ref));
        const exact = matches.find((t) => t.id === ref);
        if (exact === undefined && matches.length > 1) throw new ApiError('ambiguous', `${ref} matches ${matches.length} tasks: give more of the id`);
        const task = exact ?? matches[0];
        if (task === undefined) throw new ApiError('not_found', `no such service or task: ${ref}`);
        return { tasks: task.nodeId === '' ? [] : [task], nodes };
      }
      return { tasks: tx.tasksByService(service.id).filter((t) => t.nodeId !== ''), nodes };
    });
    const request = (ids: string[]) => ({ taskIds: ids, tail: options.tail ?? MAX_TAIL_LINES, follow: options.follow });
    const byNode = new Map<string, string[]>();
    for (const t of tasks) byNode.set(t.nodeId, [...(byNode.get(t.nodeId) ?? []), t.id]);
    const sources: Array<AsyncIterable<TaskLogLine>> = [];
    for (const [nodeId, ids] of byNode) {
      if (nodeId === runtime.state.nodeId) {
        sources.push(mergeTaskLogs(this.taskAgent(nodeId).logs, request(ids), signal));
        continue;
      }
      const addr = nodes.get(nodeId)?.description.engineLabels[LIBP2P_ADDR_LABEL];
      if (addr !== undefined) sources.push(fetchTaskLogs(runtime.host, addr, request(ids), signal));
    }
    const byId = new Map(tasks.map((t) => [t.id, t]));
    return (async function* () {
      for await (const l of mergeStreams(sources, signal)) {
        const t = byId.get(l.taskId);
        if (t === undefined) continue;
        yield {
          TaskID: t.id,
          TaskName: t.slot > 0 ? `${t.serviceName}.${t.slot}` : `${t.serviceName}.${t.nodeId}`,
          NodeID: t.nodeId,
          Hostname: nodes.get(t.nodeId)?.description.hostname ?? t.nodeId,
          Stream: l.stream,
          Timestamp: new Date(l.timestampMs).toISOString(),
          Line: l.line,
        };
      }
    })();
  }

  // ------------------------------------------------------------ node update, rm, promote, demote, leave

  /** What this manager sees of another node now: itself, and the others by gossip's verdict; null if unknown. */
  private seesAlive(runtime: ClusterRuntime, node: Node): boolean | null {
    if (node.id === runtime.state.nodeId) return true;
    const peer = node.description.engineLabels[PEER_ID_LABEL];
    const member = peer === undefined ? undefined : runtime.membership.member(peer);
    if (member === undefined) return null;
    return member.state === 'alive' || member.state === 'suspect';
  }

  async updateNode(ref: string, changes: NodeUpdateRequest): Promise<Node> {
    const runtime = this.active();
    this.requireManager(runtime);
    await runtime.readBarrier();
    const nodes = runtime.store.view((tx) => tx.list('node'));
    const node = resolveNode(nodes, ref);
    const labels = { ...node.spec.labels };
    for (const key of changes.labelRm ?? []) {
      if (!(key in labels)) throw new ApiError('invalid_argument', `key ${key} doesn't exist in node's labels`);
      delete labels[key];
    }
    Object.assign(labels, changes.labelAdd ?? {});
    const spec: NodeSpec = { ...node.spec, labels, availability: changes.availability ?? node.spec.availability, role: changes.role ?? node.spec.role };
    if (spec.role === 'worker' && node.spec.role === 'manager') this.checkDemotion(runtime, nodes, node);
    // The update carries the version read above: a concurrent change makes this one fail instead of merging.
    await runtime.propose([{ op: 'update', kind: 'node', object: { ...node, spec } }]);
    const updated = runtime.store.view((tx) => tx.get('node', node.id));
    if (updated === undefined) throw new ApiError('not_found', `node ${node.id} was removed while it was being updated`);
    this.logger.info({ node: node.id, changes }, 'node updated');
    return updated;
  }

  /** Demoting must leave a manager, and a Raft quorum among the managers this one can reach. */
  private checkDemotion(runtime: ClusterRuntime, nodes: readonly Node[], target: Node): void {
    const remaining = nodes.filter((n) => n.spec.role === 'manager' && n.id !== target.id);
    if (remaining.length === 0) throw new ApiError('conflict', `attempting to demote the last manager of the swarm (${target.id})`);
    const reachable = remaining.filter((n) => this.seesAlive(runtime, n) === true).length;
    const quorum = Math.floor(remaining.length / 2) + 1;
    if (reachable < quorum) {
      throw new ApiError(
        'conflict',
        `can't demote ${target.id}: ${reachable} of the ${remaining.length} managers left are reachable and Raft needs ${quorum}; bring managers back first`,
      );
    }
  }

  async removeNode(ref: string, force: boolean): Promise<void> {
    const runtime = this.active();
    this.requireManager(runtime);
    await runtime.readBarrier();
    const node = resolveNode(runtime.store.view((tx) => tx.list('node')), ref);
    if (node.spec.role === 'manager' || node.managerStatus !== null) {
      throw new ApiError('conflict', `node ${node.id} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal`);
    }
    if (node.status.state !== 'down' && !force) {
      throw new ApiError('conflict', `node ${node.id} is not down and can't be removed: stop it first, or use --force`);
    }
    await runtime.propose([{ op: 'delete', kind: 'node', id: node.id, version: node.meta.version }]);
    this.logger.info({ node: node.id, force }, 'node removed');
    // A node removed while alive is told so, and leaves. One that is down hears nothing: if it comes back, the
    // managers ignore it (it has no Node) until it leaves or is wiped.
    const addr = node.description.engineLabels[LIBP2P_ADDR_LABEL];
    if (addr !== undefined && this.seesAlive(runtime, node) === true) {
      const secrets = await loadSecrets(this.dataDir);
      sendRemoved(runtime.host, addr, { op: 'removed', managerCert: secrets.nodeCertPem }).catch((err: unknown) =>
        this.logger.info({ node: node.id, err: (err as Error).message }, 'could not tell the removed node; it stays out of the cluster anyway'),
      );
    }
  }

  async leaveSwarm(force: boolean): Promise<SwarmLeaveResponse> {
    const runtime = this.active();
    const nodeId = runtime.state.nodeId;
    let forgot = false;
    if (runtime.state.role === 'manager') {
      const managers = runtime.store.view((tx) => tx.list('node')).filter((n) => n.spec.role === 'manager');
      if (!force) {
        const left = Math.max(0, managers.length - 1);
        const consequence =
          left === 0
            ? 'Removing the last manager erases all current state of the swarm.'
            : `Removing this node leaves ${left} managers out of ${managers.length}; demote it first (\`swarm node demote ${nodeId}\` on another manager) to keep the cluster's fault tolerance.`;
        throw new ApiError('conflict', `You are attempting to leave the swarm on a node that is participating as a manager. ${consequence} Use \`--force\` to ignore this message.`);
      }
      forgot = managers.length <= 1 || (await this.leaveRaft(runtime));
    } else {
      forgot = await this.askManagersToForget(runtime);
      if (!forgot && !force) {
        throw new ApiError(
          'unavailable',
          'no manager answered the leave request, so the cluster would list this node as Down until `swarm node rm`; use `--force` to leave anyway',
        );
      }
    }
    await this.leaveLocally('swarm leave');
    return { NodeID: nodeId, ClusterForgot: forgot };
  }

  /** A leaving manager: its Node goes, the leader takes it out of Raft (after a handover if it leads). */
  private async leaveRaft(runtime: ClusterRuntime): Promise<boolean> {
    const self = runtime.store.view((tx) => tx.get('node', runtime.state.nodeId));
    if (self !== undefined) await runtime.propose([{ op: 'delete', kind: 'node', id: self.id }]);
    // Out of Raft when its own configuration says so, or when the leader stops talking to it (a removed member may
    // never learn the commit that removed it). Either way the leader's loop finishes the removal.
    const deadline = Date.now() + LEAVE_RAFT_WAIT_MS;
    const raft = runtime.raft;
    let sawLeader = false;
    while (Date.now() < deadline) {
      const status = raft.status();
      if (!status.confState.voters.includes(status.id) && !status.confState.learners.includes(status.id)) return true;
      if (status.leader !== null && status.leader !== status.id) sawLeader = true;
      if (sawLeader && status.leader === null) return true;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    this.logger.warn({ waitedMs: LEAVE_RAFT_WAIT_MS }, 'the leader did not take this manager out of raft in time; leaving anyway');
    return false;
  }

  /** A leaving worker asks the managers gossip knows, one at a time, to delete its Node. */
  private async askManagersToForget(runtime: ClusterRuntime): Promise<boolean> {
    const managers = runtime.membership.members().filter((m) => m.meta.role === 'manager' && m.state === 'alive' && m.id !== this.peerId);
    for (const m of managers.slice(0, 3)) {
      const addr = m.meta.addrs[0] ?? m.id;
      try {
        await requestLeave(runtime.host, addr, runtime.state.nodeId);
        return true;
      } catch (err) {
        this.logger.info({ manager: m.meta.nodeId, err: (err as Error).message }, 'a manager did not take the leave request');
      }
    }
    return false;
  }

  /** Manager side of a worker's leave: the request must come from that node's own libp2p identity. */
  private async forgetLeaver(remotePeer: string, nodeId: string): Promise<void> {
    const runtime = this.active();
    await runtime.readBarrier();
    const node = runtime.store.view((tx) => tx.get('node', nodeId));
    if (node === undefined) return;
    if (node.description.engineLabels[PEER_ID_LABEL] !== remotePeer) throw new ApiError('permission_denied', `the leave request for ${nodeId} did not come from that node`);
    if (node.spec.role === 'manager' || node.managerStatus !== null) throw new ApiError('conflict', `${nodeId} is a manager: it leaves with \`swarm leave --force\``);
    await runtime.propose([{ op: 'delete', kind: 'node', id: node.id, version: node.meta.version }]);
    this.logger.info({ node: nodeId }, 'a worker left the swarm');
  }

  /** Stops the cluster parts (announcing the departure by gossip) and forgets the swarm: the node is as before init. */
  private async leaveLocally(why: string): Promise<void> {
    if (this.swarm.kind !== 'active') return;
    const runtime = this.swarm.runtime;
    this.swarm = { kind: 'initializing' };
    await this.joinServer?.close().catch((err: unknown) => this.logger.warn({ err }, 'closing the join endpoint failed'));
    this.joinServer = null;
    await runtime.close({ leave: true }).catch((err: unknown) => this.logger.warn({ err }, 'closing the cluster runtime failed'));
    await this.agent?.close().catch((err: unknown) => this.logger.warn({ err }, 'stopping the tasks failed'));
    this.agent = null;
    // The state record first: without it a restart never rejoins, whatever else is left.
    await rm(join(this.dataDir, FILES.state), { force: true });
    await removeSwarmState(this.dataDir);
    if (this.swarm.kind === 'initializing') this.swarm = { kind: 'inactive' };
    this.logger.info({ nodeId: runtime.state.nodeId, why }, 'left the swarm');
  }

  /** Manager side of promote/demote: certify the node's key for its new role and tell it (the leader loop calls this). */
  private async changeRole(node: Node, role: NodeRole): Promise<string> {
    const runtime = this.active();
    const peer = node.description.engineLabels[PEER_ID_LABEL];
    const addr = node.description.engineLabels[LIBP2P_ADDR_LABEL];
    if (peer === undefined || addr === undefined) throw new ApiError('internal', `node ${node.id} has no libp2p identity in the store`);
    const secrets = await loadSecrets(this.dataDir);
    if (secrets.caKeyPem === null) throw new ApiError('unavailable', 'this manager holds no CA key');
    const ca = await loadRootCA(secrets.caCertPem, secrets.caKeyPem);
    return sendRoleChange(runtime.host, addr, { op: 'role', managerCert: secrets.nodeCertPem, role }, async (nodeCertPem): Promise<RoleGrant> => {
      const identity = await verifyNodeCertificate(secrets.caCertPem, nodeCertPem, { nowMs: Date.now(), expectedPeerId: peer });
      if (identity.nodeId !== node.id) throw new ApiError('permission_denied', `the peer answered with the certificate of ${identity.nodeId}, not ${node.id}`);
      const cert = await issueNodeCertificate(ca, {
        nodeId: node.id,
        role,
        clusterId: runtime.state.clusterId,
        publicKey: publicKeyOfCertificate(nodeCertPem),
        libp2pPeerId: peer,
        nowMs: Date.now(),
      });
      const dataKey = role === 'manager' && secrets.dataKeyFile !== null ? Buffer.from(secrets.dataKeyFile).toString('utf8') : null;
      return { cert, caKey: role === 'manager' ? ca.keyPem : null, dataKey, managers: managerPeers(runtime, node.id) };
    });
  }

  /** Node side of promote, demote and removal. */
  private roleHandler(state: NodeState): RoleHandler {
    return {
      checkManager: async (remotePeer, managerCertPem) => {
        const secrets = await loadSecrets(this.dataDir);
        const identity = await verifyNodeCertificate(secrets.caCertPem, managerCertPem, { nowMs: Date.now(), expectedPeerId: remotePeer });
        if (identity.role !== 'manager' || identity.clusterId !== state.clusterId) {
          throw new ApiError('permission_denied', `${identity.nodeId} is not a manager of this cluster`);
        }
      },
      currentCertificate: async () => (await loadSecrets(this.dataDir)).nodeCertPem,
      applyRole: async (role, grant) => this.applyRole(state, role, grant),
      removed: () => {
        this.leaveLocally('removed from the swarm by a manager').catch((err: unknown) => this.logger.error({ err }, 'leaving after removal failed'));
      },
    };
  }

  /**
   * Persists a new role in crash-safe order: a promotion writes the manager certificate and CA key before the
   * state that makes a restart join Raft; a demotion writes the state first, so a crash never restarts a stale
   * Raft member (start() removes a worker's leftover Raft log and CA key).
   */
  private async applyRole(state: NodeState, role: NodeRole, grant: RoleGrant): Promise<{ managerAddr: string; restart: () => void }> {
    const secrets = await loadSecrets(this.dataDir);
    const identity = await verifyNodeCertificate(secrets.caCertPem, grant.cert, { nowMs: Date.now(), expectedPeerId: this.peerId });
    if (identity.nodeId !== state.nodeId || identity.role !== role) throw new ApiError('permission_denied', `the granted certificate is for ${identity.nodeId} as ${identity.role}`);
    if (role === 'manager') {
      if (grant.caKey === null) throw new ApiError('invalid_argument', 'a promotion without the CA key');
      await loadRootCA(secrets.caCertPem, grant.caKey);
    }
    const managerAddr = formatHostPort(state.advertiseHost, state.advertisePort);
    const next: NodeState = { ...state, role };
    delete next.raftJoin;
    if (role === 'manager') {
      next.raftJoin = true;
      next.managerAddrs = grant.managers.map((m) => m.multiaddr);
      const dataKeyFile = grant.dataKey === null ? null : encodeDataKey(decodeDataKey(Buffer.from(grant.dataKey, 'utf8')));
      await saveSecrets(this.dataDir, { ...secrets, nodeCertPem: grant.cert, caKeyPem: grant.caKey, dataKeyFile });
      if (state.role !== 'manager') await rm(join(this.dataDir, FILES.raftDir), { recursive: true, force: true });
      await saveNodeState(this.dataDir, next);
    } else {
      await saveNodeState(this.dataDir, next);
      await saveSecrets(this.dataDir, { ...secrets, nodeCertPem: grant.cert, caKeyPem: null, dataKeyFile: null });
      await this.dropManagerFiles();
    }
    this.logger.info({ role, from: state.role }, 'took a new role');
    const raftPeers = Object.fromEntries(grant.managers.map((m) => [m.nodeId, m.multiaddr]));
    return {
      managerAddr,
      restart: () => {
        if (state.role === role) return;
        this.restartRuntime(next, raftPeers).catch((err: unknown) => this.logger.error({ err }, 'restarting in the new role failed: restart the daemon'));
      },
    };
  }

  /** Swaps the cluster runtime for one in the new role (Raft on or off), gossip outranking the old incarnation. */
  private async restartRuntime(state: NodeState, raftPeers: Record<string, string>): Promise<void> {
    if (this.swarm.kind !== 'active') return;
    const old = this.swarm.runtime;
    const minIncarnation = old.membership.self().incarnation + 1;
    this.swarm = { kind: 'initializing' };
    await this.joinServer?.close().catch((err: unknown) => this.logger.warn({ err }, 'closing the join endpoint failed'));
    this.joinServer = null;
    await old.close();
    try {
      const runtime = await this.startRuntime(state, state.managerAddrs ?? [], raftPeers, false, minIncarnation);
      if (this.swarm.kind !== 'initializing') {
        await runtime.close();
        return;
      }
      this.swarm = { kind: 'active', runtime };
      await this.startJoinEndpoint(runtime);
      this.logger.info({ role: state.role }, 'running in the new role');
    } catch (err) {
      if (this.swarm.kind === 'initializing') this.swarm = { kind: 'inactive' };
      throw err;
    }
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
    await this.joinServer?.close().catch((err: unknown) => this.logger.warn({ err }, 'closing the join endpoint failed'));
    this.joinServer = null;
    if (previous.kind === 'active') await previous.runtime.close().catch((err: unknown) => this.logger.warn({ err }, 'closing the cluster runtime failed'));
    await this.agent?.close().catch((err: unknown) => this.logger.warn({ err }, 'stopping the tasks failed'));
    await this.engine.close().catch((err: unknown) => this.logger.warn({ err }, 'closing the container engine failed'));
    await this.lock.release();
    this.logger.info({ dataDir: this.dataDir }, 'daemon stopped');
  }
}

function volumeDocument(v: Volume): VolumeDocument {
  return { Name: v.name, Driver: v.driver, Mountpoint: v.mountpoint, CreatedAt: new Date(v.createdAtMs).toISOString(), Labels: { ...v.labels }, Scope: 'local', Options: {} };
}

/** A runtime refusal as the API's error: the same message, the matching code. */
function apiErrorOf(err: unknown): unknown {
  if (!(err instanceof RuntimeError)) return err;
  const code =
    err.code === 'not_found' ? 'not_found' : err.code === 'invalid_state' ? 'conflict' : err.code === 'invalid_config' ? 'invalid_argument' : err.code === 'image_unavailable' ? 'unavailable' : 'internal';
  return new ApiError(code, err.message);
}

function engineCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw apiErrorOf(err);
  }
}

async function engineAsync<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw apiErrorOf(err);
  }
}

/** `https://reg.example:5000/`, `reg.example:5000` -> `reg.example:5000`; Docker Hub's names -> docker.io. */
function registryHost(server: string): string {
  const host = server.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '');
  if (host === '' || host === 'index.docker.io' || host === 'registry-1.docker.io') return 'docker.io';
  return host;
}

const shortDigest = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

/** The store's pull events as Docker's progress lines: one id per layer (its digest's first 12 hex digits). */
class PullProgressLines {
  private readonly last = new Map<string, string>();
  constructor(private readonly onLine: (line: ImageProgressLine) => void) {}

  push(p: PullProgress): void {
    if (p.type === 'resolved') {
      const ref = parseReference(p.reference);
      this.onLine({ status: `${ref.tag ?? ref.digest ?? 'latest'}: Pulling from ${ref.repository}` });
      return;
    }
    const status = LAYER_STATUS[p.status];
    const id = shortDigest(p.digest);
    // Byte counts change often; a line per status change, plus downloads' progress at the store's own steps.
    if (this.last.get(id) === status && p.status !== 'downloading') return;
    this.last.set(id, status);
    this.onLine({ id, status, progressDetail: { current: p.currentBytes, total: p.totalBytes } });
  }
}

const LAYER_STATUS: Record<LayerStatus, string> = {
  waiting: 'Waiting',
  downloading: 'Downloading',
  verifying: 'Verifying Checksum',
  downloaded: 'Download complete',
  extracting: 'Extracting',
  complete: 'Pull complete',
  exists: 'Already exists',
};

function imageInspectDocument(i: ImageInspect): ImageInspectDocument {
  const c = i.config;
  return {
    Id: i.id,
    RepoTags: [...i.repoTags],
    RepoDigests: [...i.repoDigests],
    Created: i.created,
    Os: i.os,
    Architecture: i.architecture,
    ...(i.variant === '' ? {} : { Variant: i.variant }),
    Size: i.sizeBytes,
    Config: {
      Entrypoint: c.entrypoint.length > 0 ? [...c.entrypoint] : null,
      Cmd: c.cmd.length > 0 ? [...c.cmd] : null,
      Env: [...c.env],
      WorkingDir: c.workingDir,
      User: c.user,
      ...(c.stopSignal === '' ? {} : { StopSignal: c.stopSignal }),
      Labels: { ...c.labels },
      ExposedPorts: Object.fromEntries(c.exposedPorts.map((p) => [p, {}])),
    },
    RootFS: { Type: 'layers', Layers: i.layers.map((l) => l.diffId) },
    Manifest: { Digest: i.manifestDigest, MediaType: i.manifestMediaType, Config: i.configDigest, Layers: i.layers.map((l) => ({ Digest: l.digest, MediaType: l.mediaType, Size: l.sizeBytes })) },
  };
}

/** The managers in the store (but `except`), as Raft peers a new manager dials. */
function managerPeers(runtime: ClusterRuntime, except: string): Array<RaftPeer & { peerId: string }> {
  return runtime.store
    .view((tx) => tx.list('node'))
    .filter((n) => n.managerStatus !== null && n.id !== except)
    .map((n) => ({ nodeId: n.id, peerId: n.description.engineLabels[PEER_ID_LABEL] ?? '', multiaddr: n.description.engineLabels[LIBP2P_ADDR_LABEL] ?? '' }))
    .filter((m) => m.peerId !== '' && m.multiaddr !== '');
}

/** How long a manager that leaves waits for the leader to take it out of Raft before it stops anyway. */
const LEAVE_RAFT_WAIT_MS = 10_000;

export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  assert(options.dataDir.length > 0 && options.socketPath.length > 0, 'data dir and socket path are given');
  const logger = options.logger;
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const lock = await acquireDataDirLock(options.dataDir, logger);
  try {
    const { privateKey, peerId } = await loadOrCreateLibp2pKey(options.dataDir, logger);
    const engine = await createEngine({ dataDir: options.dataDir, logger: options.loggerFor?.('runtime') ?? logger.child({ component: 'runtime' }), runtime: options.runtime ?? 'auto', registryMirrors: options.registryMirrors ?? [], insecureRegistries: options.insecureRegistries ?? [] });
    const daemon = new NodeDaemon(options, engine, lock, privateKey, peerId, logger);
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
