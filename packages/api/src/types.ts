// The API's documents (Docker Engine API field names, so `--format json` and `node inspect` read like Docker's)
// and the backend interface the daemon implements. No cluster logic here: only shapes.

import type { Cluster, Config, Network, Node, NodeRole, Secret, Service, Task } from '@swarm/store';
import type { FileObjectSpec } from './secrets.js';
import type { ServiceSpecDocument } from './services.js';

export interface VersionDocument {
  Index: number;
}

/** GET /nodes, GET /nodes/:id: Docker's Node object. ManagerStatus is absent on workers, as in Docker. */
export interface NodeDocument {
  ID: string;
  Version: VersionDocument;
  CreatedAt: string;
  UpdatedAt: string;
  Spec: {
    Name?: string;
    Role: NodeRole;
    Availability: 'active' | 'pause' | 'drain';
    Labels: Record<string, string>;
  };
  Description: {
    Hostname: string;
    Platform: { Architecture: string; OS: string };
    Resources: { NanoCPUs: number; MemoryBytes: number };
    Engine: { EngineVersion: string; Labels?: Record<string, string> };
  };
  Status: { State: 'unknown' | 'down' | 'ready' | 'disconnected'; Message?: string; Addr: string };
  ManagerStatus?: { Leader: boolean; Reachability: 'unknown' | 'unreachable' | 'reachable'; Addr: string };
}

/** GET /swarm: Docker's Swarm object (the Cluster plus its join tokens). Durations in nanoseconds as Docker's. */
export interface SwarmDocument {
  ID: string;
  Version: VersionDocument;
  CreatedAt: string;
  UpdatedAt: string;
  Spec: {
    Name: string;
    Labels: Record<string, string>;
    Orchestration: { TaskHistoryRetentionLimit: number };
    Raft: {
      SnapshotInterval: number;
      KeepOldSnapshots: number;
      LogEntriesForSlowFollowers: number;
      ElectionTick: number;
      HeartbeatTick: number;
    };
    Dispatcher: { HeartbeatPeriod: number };
    CAConfig: { NodeCertExpiry: number };
    EncryptionConfig: { AutoLockManagers: boolean };
  };
  TLSInfo: { TrustRoot: string; CertFingerprint: string };
  RootRotationInProgress: boolean;
  DefaultAddrPool: string[];
  SubnetSize: number;
  DataPathPort: number;
  JoinTokens: { Worker: string; Manager: string };
}

export type LocalNodeState = 'inactive' | 'pending' | 'active' | 'error';

/** GET /info: the daemon and, once in a swarm, its view of the cluster (Docker's Info with its Swarm part). */
export interface InfoDocument {
  /** The node's libp2p peer id: its identity before it belongs to any cluster. */
  ID: string;
  Name: string;
  ServerVersion: string;
  OperatingSystem: string;
  Architecture: string;
  NCPU: number;
  MemTotal: number;
  DataDir: string;
  Swarm: {
    NodeID: string;
    NodeAddr: string;
    LocalNodeState: LocalNodeState;
    ControlAvailable: boolean;
    Error: string;
    RemoteManagers: Array<{ NodeID: string; Addr: string }> | null;
    Nodes?: number;
    Managers?: number;
    Cluster?: { ID: string; CreatedAt: string; UpdatedAt: string; Name: string };
  };
}

/** GET /swarm/join-tokens?role=...: the token and the address a joining node dials. */
export interface JoinTokenDocument {
  Role: NodeRole;
  Token: string;
  /** host:port of this manager's cluster endpoint, as `swarm join` takes it. */
  ManagerAddr: string;
  Rotated: boolean;
}

/** POST /swarm/init, as the API validated and normalized it. */
export interface SwarmInitRequest {
  listenHost: string;
  listenPort: number;
  /** null: the daemon picks one (the listen host when it is not a wildcard, else a local interface). */
  advertiseHost: string | null;
  /** null: the listen port. */
  advertisePort: number | null;
}

export interface SwarmInitResponse {
  NodeID: string;
  ClusterID: string;
  ManagerAddr: string;
}

/** What the API server calls; the daemon implements it. Throw ApiError for failures the user can act on. */
/** `swarm join`: the manager to ask, the token, and this node's addresses (checked by the server). */
export interface SwarmJoinRequest {
  remoteHost: string;
  remotePort: number;
  token: string;
  listenHost: string;
  listenPort: number;
  advertiseHost: string | null;
  advertisePort: number | null;
}

export interface SwarmJoinResponse {
  NodeID: string;
  ClusterID: string;
  Role: NodeRole;
}

/** GET /members: this node's gossip (SWIM) view of one member. Not a Docker document: a diagnostic of our own. */
export interface MemberDocument {
  PeerID: string;
  NodeID: string;
  Hostname: string;
  Role: NodeRole;
  State: 'alive' | 'suspect' | 'dead' | 'left';
  Incarnation: number;
  Addrs: string[];
  /** Milliseconds since this node saw the member's state change (local clock). */
  SinceMs: number;
}

/** POST /nodes/:id/update: the changes of `node update`, `node promote` and `node demote` (absent = unchanged). */
export interface NodeUpdateRequest {
  role?: NodeRole;
  availability?: 'active' | 'pause' | 'drain';
  /** Labels to set (a key without a value is set to ''). */
  labelAdd?: Record<string, string>;
  /** Label keys to remove; each must exist. */
  labelRm?: string[];
}

/** POST /swarm/leave: what the node did. */
export interface SwarmLeaveResponse {
  NodeID: string;
  /** False when no manager could be told (a forced leave): the cluster lists the node as Down until `node rm`. */
  ClusterForgot: boolean;
}

/** One line of `GET /services/:id/logs` (NDJSON). */
export interface ServiceLogLine {
  TaskID: string;
  /** web.3 */
  TaskName: string;
  NodeID: string;
  Hostname: string;
  Stream: 'stdout' | 'stderr';
  Timestamp: string;
  Line: string;
}

/** Docker's Volume document (node-local: Scope is always local). */
export interface VolumeDocument {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: 'local';
  Options: Record<string, string>;
}

export interface VolumeCreateRequest {
  Name: string;
  Driver?: string;
  Labels?: Record<string, string>;
}

/** One row of `image ls`: one per tag (an untagged image is `<none>`). */
export interface ImageSummaryDocument {
  Repository: string;
  Tag: string;
  /** The manifest digest. */
  ID: string;
  /** RFC 3339, or '' when the image says nothing. */
  Created: string;
  Size: number;
}

/** Docker's image inspect fields we have. */
export interface ImageInspectDocument {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Created: string;
  Os: string;
  Architecture: string;
  Variant?: string;
  Size: number;
  Config: {
    Entrypoint: string[] | null;
    Cmd: string[] | null;
    Env: string[];
    WorkingDir: string;
    User: string;
    StopSignal?: string;
    Labels: Record<string, string>;
    ExposedPorts: Record<string, Record<string, never>>;
  };
  RootFS: { Type: 'layers'; Layers: string[] };
  Manifest: { Digest: string; MediaType: string; Config: string; Layers: Array<{ Digest: string; MediaType: string; Size: number }> };
}

/** A line of Docker's pull/push/load progress stream (NDJSON). */
export interface ImageProgressLine {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  /** `Loaded image: busybox:latest` (load). */
  stream?: string;
  /** Set on the last line when the operation failed part way. */
  error?: string;
}

/** `POST /networks/create`: Docker's NetworkCreateRequest fields that a swarm overlay uses. */
export interface NetworkCreateRequest {
  Name: string;
  /** Only `overlay` (the default) makes a cluster network. */
  Driver?: string;
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  Labels?: Record<string, string>;
  /** Driver options; `encrypted` asks for encryption between hosts. */
  Options?: Record<string, string>;
  IPAM?: { Driver?: string; Config?: Array<{ Subnet?: string; Gateway?: string; IPRange?: string }> };
}

/** One task's endpoint on a network, in `network inspect`'s Containers (keyed by task id). */
export interface NetworkEndpointDocument {
  /** The task's container name, as Docker's: service.slot.taskid (service.nodeid.taskid for a global service). */
  Name: string;
  EndpointID: string;
  /** Docker's rule: 02:42 and the four bytes of the IPv4 address. */
  MacAddress: string;
  /** CIDR, e.g. 10.0.1.5/24. */
  IPv4Address: string;
  IPv6Address: string;
}

/** Docker's network document (`GET /networks`, `network inspect`) for a swarm overlay network. */
export interface NetworkDocument {
  Name: string;
  Id: string;
  /** RFC 3339. */
  Created: string;
  Scope: 'swarm';
  Driver: string;
  EnableIPv6: false;
  /** Config: the allocated subnet and gateway, or the spec's until the allocator has run. */
  IPAM: { Driver: string; Options: null; Config: Array<{ Subnet: string; Gateway: string }> };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: false;
  /** Every task in the cluster that holds an address on it now (its state is not an end state), by task id. */
  Containers: Record<string, NetworkEndpointDocument>;
  /** The spec's driver options, and the VXLAN id once allocated (Docker's vxlanid_list). */
  Options: Record<string, string>;
  Labels: Record<string, string>;
  /** The nodes those tasks run on. */
  Peers: Array<{ Name: string; IP: string }>;
}

export interface ServiceWriteOptions {
  /** Pin an image given by tag to its registry digest (Docker's default; --no-resolve-image turns it off). */
  resolveImage: boolean;
  /** Docker's --with-registry-auth: the receiving manager's login for the image's registry goes with the service. */
  withRegistryAuth: boolean;
}

export interface ApiBackend {
  info(): Promise<InfoDocument>;
  initSwarm(request: SwarmInitRequest): Promise<SwarmInitResponse>;
  /** Joins through a manager; refused with permission_denied (token) or unavailable (manager unreachable). */
  joinSwarm(request: SwarmJoinRequest): Promise<SwarmJoinResponse>;
  /** The current Cluster object (after a linearizable read); ApiError('not_in_swarm') before init. */
  inspectSwarm(): Promise<Cluster>;
  /** rotate=true replaces that role's token through Raft before answering. */
  joinToken(role: NodeRole, rotate: boolean): Promise<JoinTokenDocument>;
  /** Every Node in the store (after a linearizable read). */
  listNodes(): Promise<Node[]>;
  /** Applies `node update` changes through Raft; answers the updated node. */
  updateNode(ref: string, changes: NodeUpdateRequest): Promise<Node>;
  /** `node rm`: refuses managers, and nodes that are not down unless force. */
  removeNode(ref: string, force: boolean): Promise<void>;
  /** `swarm leave`: a manager is refused unless force. */
  leaveSwarm(force: boolean): Promise<SwarmLeaveResponse>;
  /** `service create`: the spec as the API checked it (schema); resolves with the new service's id. */
  /**
   * `service create`: the spec as the API checked it (schema). Unless `resolveImage` is false, an image given by
   * tag is pinned to the digest its registry has now, so every replica runs the same bytes; when the registry
   * cannot be asked, Docker's warning says so and each node resolves the tag itself.
   */
  createService(spec: ServiceSpecDocument, options: ServiceWriteOptions): Promise<{ ID: string; Warnings: string[] }>;
  /** Every service and task (after a linearizable read). */
  listServices(): Promise<{ services: Service[]; tasks: Task[] }>;
  /**
   * Replaces a service's spec, or puts its previous spec back (rollback); a changed task template starts a rolling
   * update. `version` (the Version.Index read) makes a concurrent update fail with conflict.
   */
  updateService(ref: string, change: { spec: ServiceSpecDocument } | { rollback: true }, version: number | null, options: ServiceWriteOptions): Promise<{ service: Service; warnings: string[] }>;
  removeService(ref: string): Promise<void>;
  /** The logs of a service's tasks from every node that ran one, merged; ends unless follow, or when signal aborts. */
  serviceLogs(ref: string, options: { tail: number | null; follow: boolean }, signal: AbortSignal): Promise<AsyncIterable<ServiceLogLine>>;
  /** This node's gossip view, itself included; answers on workers too, and without a quorum. */
  listMembers(): Promise<MemberDocument[]>;
  /**
   * `network create`: checked (name, driver, subnet and gateway, no overlap with another network) and written through
   * Raft; the leader's allocator then gives it its VXLAN id and subnet. Resolves once it is allocated.
   */
  createNetwork(request: NetworkCreateRequest): Promise<{ ID: string; Warning: string }>;
  /** Every network, with the tasks and nodes that say who is attached where (after a linearizable read). */
  listNetworks(): Promise<{ networks: Network[]; tasks: Task[]; nodes: Node[] }>;
  /** `network rm`: by id, name or unique id prefix; refused (conflict) while a service uses it, and for ingress while services publish ports. */
  removeNetwork(ref: string): Promise<void>;
  /**
   * `secret create`: the spec as the API checked it (name rule, data decoded, at most 500 KB); sealed under the
   * cluster's data key and written through Raft. conflict when the name is taken.
   */
  createSecret(spec: FileObjectSpec): Promise<{ ID: string }>;
  /** Every secret (after a linearizable read), its data sealed; the API never shows it. */
  listSecrets(): Promise<Secret[]>;
  /** `secret rm`: by id, name or unique id prefix; refused (conflict) while a service uses it, naming the services. */
  removeSecret(ref: string): Promise<void>;
  /** `config create`: as createSecret; a config's data is kept as given (configs are not secret). */
  createConfig(spec: FileObjectSpec): Promise<{ ID: string }>;
  listConfigs(): Promise<Config[]>;
  removeConfig(ref: string): Promise<void>;
  /** This node's named volumes (they are node-local, as in Docker); answer outside a swarm too. */
  listVolumes(): Promise<VolumeDocument[]>;
  createVolume(request: VolumeCreateRequest): Promise<VolumeDocument>;
  inspectVolume(name: string): Promise<VolumeDocument>;
  /** Refused (conflict) while a task uses it. */
  removeVolume(name: string): Promise<void>;
  /** `swarm login`: checked with the registry, then used for this node's pulls and pushes. */
  login(request: { username: string; password: string; serveraddress: string }): Promise<void>;
  /** `swarm logout`: false when this node had no credentials for the registry. */
  logout(serveraddress: string): Promise<boolean>;
  /** This node's images; answer outside a swarm too. */
  listImages(): Promise<ImageSummaryDocument[]>;
  inspectImage(ref: string): Promise<ImageInspectDocument>;
  /** Pulls (always asking the registry, as `docker pull`); progress lines as they come; rejects before any line. */
  pullImage(ref: string, onLine: (line: ImageProgressLine) => void, signal: AbortSignal): Promise<void>;
  pushImage(ref: string, onLine: (line: ImageProgressLine) => void, signal: AbortSignal): Promise<void>;
  removeImage(ref: string, force: boolean): Promise<Array<{ Untagged?: string; Deleted?: string }>>;
  tagImage(source: string, target: string): Promise<void>;
  /** Loads an OCI image archive from the request body; the names it loaded. */
  loadImages(archive: NodeJS.ReadableStream): Promise<string[]>;
  /** Writes an archive of `refs` to a temporary file: its path, and what removes it once it is sent. */
  saveImages(refs: string[]): Promise<{ path: string; cleanup: () => Promise<void> }>;
}

/** Where the daemon serves the API and the CLI looks for it unless told otherwise. */
export const DEFAULT_SOCKET_PATH = '/run/swarm/swarm.sock';

/** Default port of the cluster endpoint (Docker's 2377). */
export const DEFAULT_LISTEN_PORT = 2377;
