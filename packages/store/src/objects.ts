// The cluster's object types (Cluster, Node, Service, Task, Network, Secret, Config, Volume) as the store keeps them.
// Field meanings follow Docker's API; times are ms since the epoch from the proposing leader's clock, sizes in bytes.

/** The Raft index of the log entry that last wrote an object (SwarmKit's meta.version). */
export interface Version {
  index: number;
}

/** Set by the store when it applies a write; whatever a proposer puts here is ignored except version (checked). */
export interface Meta {
  version: Version;
  createdAtMs: number;
  updatedAtMs: number;
}

export type Labels = Record<string, string>;

// ---------------------------------------------------------------- task states

/** SwarmKit's task states, in their order: a task's status only ever moves rightwards. */
export const TASK_STATES = [
  'new',
  'pending',
  'assigned',
  'accepted',
  'preparing',
  'starting',
  'running',
  'complete',
  'shutdown',
  'failed',
  'rejected',
  'orphaned',
] as const;

export type TaskState = (typeof TASK_STATES)[number];

const TASK_STATE_RANK: ReadonlyMap<string, number> = new Map(TASK_STATES.map((s, i) => [s, i]));

export function isTaskState(value: unknown): value is TaskState {
  return typeof value === 'string' && TASK_STATE_RANK.has(value);
}

/** Position of a state in SwarmKit's order; comparing ranks compares progress. */
export function taskStateRank(state: TaskState): number {
  const rank = TASK_STATE_RANK.get(state);
  if (rank === undefined) throw new TypeError(`unknown task state ${JSON.stringify(state)}`);
  return rank;
}

/** complete, shutdown, failed, rejected, orphaned: the task's container will never run (again). */
export function isTerminalTaskState(state: TaskState): boolean {
  return taskStateRank(state) > taskStateRank('running');
}

/** A task never moves backwards; staying in the same state (a new message, say) is allowed. */
export function canTransitionTask(from: TaskState, to: TaskState): boolean {
  return taskStateRank(to) >= taskStateRank(from);
}

// ---------------------------------------------------------------- cluster

export interface ClusterSpec {
  name: string;
  labels: Labels;
  orchestration: { taskHistoryRetentionLimit: number };
  raft: {
    snapshotInterval: number;
    keepOldSnapshots: number;
    logEntriesForSlowFollowers: number;
    electionTick: number;
    heartbeatTick: number;
  };
  dispatcher: { heartbeatPeriodMs: number };
  caConfig: { nodeCertExpiryMs: number };
  encryptionConfig: { autoLockManagers: boolean };
  taskDefaults: { logDriver: { name: string; options: Record<string, string> } | null };
}

export interface Cluster {
  id: string;
  meta: Meta;
  spec: ClusterSpec;
  rootCA: { certPem: string; fingerprint: string };
  /** Full SWMTKN-1 tokens; rotation replaces them, and an old token no longer matches. */
  joinTokens: { worker: string; manager: string };
  /** Address pools that overlay networks without an explicit subnet are cut from (CIDRs), and the cut size. */
  defaultAddrPool: string[];
  subnetSize: number;
  dataPathPort: number;
}

/** SwarmKit's defaults, in our units. */
export function defaultClusterSpec(name = 'default'): ClusterSpec {
  return {
    name,
    labels: {},
    orchestration: { taskHistoryRetentionLimit: 5 },
    raft: {
      snapshotInterval: 10_000,
      keepOldSnapshots: 0,
      logEntriesForSlowFollowers: 500,
      electionTick: 10,
      heartbeatTick: 1,
    },
    dispatcher: { heartbeatPeriodMs: 5_000 },
    caConfig: { nodeCertExpiryMs: 90 * 24 * 3600 * 1000 },
    encryptionConfig: { autoLockManagers: false },
    taskDefaults: { logDriver: null },
  };
}

// ---------------------------------------------------------------- node

export type NodeRole = 'manager' | 'worker';
export type NodeAvailability = 'active' | 'pause' | 'drain';
export type NodeState = 'unknown' | 'down' | 'ready' | 'disconnected';
export type Reachability = 'unknown' | 'unreachable' | 'reachable';

export interface NodeSpec {
  /** Optional user-given name (Docker's Spec.Name); empty when unset. */
  name: string;
  labels: Labels;
  role: NodeRole;
  availability: NodeAvailability;
}

export interface NodeDescription {
  hostname: string;
  platform: { os: string; arch: string };
  resources: { nanoCpus: number; memoryBytes: number };
  engineVersion: string;
  /** Engine labels reported by the node itself (not settable by `node update`). */
  engineLabels: Labels;
}

export interface ManagerStatus {
  raftId: string;
  addr: string;
  leader: boolean;
  reachability: Reachability;
}

export interface Node {
  id: string;
  meta: Meta;
  spec: NodeSpec;
  description: NodeDescription;
  status: { state: NodeState; addr: string; message: string };
  managerStatus: ManagerStatus | null;
  /** Overlay attachments the allocator gave this node (ingress and others), by network id. */
  attachments: NetworkAttachment[];
}

// ---------------------------------------------------------------- service

export interface HealthConfig {
  /** Docker's form: ['NONE'] | ['CMD', ...] | ['CMD-SHELL', cmd]. Empty inherits the image's. */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  retries: number;
}

export interface ContainerSpec {
  image: string;
  command: string[];
  args: string[];
  env: string[];
  user: string;
  dir: string;
  labels: Labels;
  hostname: string;
  tty: boolean;
  stopSignal: string;
  stopGracePeriodMs: number;
  healthcheck: HealthConfig | null;
  /** Secrets the task's container sees as files (under /run/secrets/ unless the target is absolute). */
  secrets: SecretReference[];
  /** Configs the task's container sees as files (at `/<target>` unless the target is absolute). */
  configs: ConfigReference[];
  mounts: Mount[];
  /** Docker's --init: tini runs as the container's pid 1. */
  init: boolean;
  /** Docker's --read-only: the root filesystem is mounted read-only. */
  readOnly: boolean;
  capabilityAdd: string[];
  capabilityDrop: string[];
  /** Docker's Resources.Limits.Pids; 0 means unlimited. */
  pidsLimit: number;
  /**
   * Docker's --ulimit: resource limits of the task's processes, at most one per name. Absent means none, and the
   * API writes the field only when there is one: a spec stored before the field existed equals one made now.
   */
  ulimits?: Ulimit[];
  /**
   * `--with-registry-auth`: the login of the manager that took the request, for the image's registry, so every
   * node that runs a task can pull it. In the Raft log like the rest of the spec (as Docker's); never shown.
   */
  registryAuth: RegistryAuth | null;
}

/** Docker's ulimit names (go-units' list), each one of the kernel's RLIMIT_ resources. */
export const ULIMIT_NAMES = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack'] as const;

export type UlimitName = (typeof ULIMIT_NAMES)[number];

export function isUlimitName(value: unknown): value is UlimitName {
  return typeof value === 'string' && (ULIMIT_NAMES as readonly string[]).includes(value);
}

/** -1 as a soft or hard limit: unlimited (the kernel's RLIM_INFINITY), as Docker takes it. */
export const ULIMIT_UNLIMITED = -1;

/** One resource limit: soft <= hard, each a whole number or ULIMIT_UNLIMITED (units are the kernel's: bytes, seconds, ...). */
export interface Ulimit {
  name: UlimitName;
  soft: number;
  hard: number;
}

/** Whether soft <= hard, unlimited being above every number. */
export function ulimitInOrder(soft: number, hard: number): boolean {
  if (hard === ULIMIT_UNLIMITED) return true;
  return soft !== ULIMIT_UNLIMITED && soft <= hard;
}

const isLimitValue = (n: number): boolean => Number.isSafeInteger(n) && n >= ULIMIT_UNLIMITED;

export type UlimitCheck = { ok: true; ulimit: Ulimit } | { ok: false; part: 'name' | 'soft' | 'hard'; message: string };

/**
 * One ulimit checked: a known name, whole numbers (or -1), soft <= hard; else the part it is wrong in and why. The
 * API, the CLI and the stack converter each put their own field name in front, so the rules are the same wherever
 * a ulimit comes from.
 */
export function checkUlimit(name: string, soft: number, hard: number): UlimitCheck {
  if (!isUlimitName(name)) return { ok: false, part: 'name', message: `${JSON.stringify(name)} is not a ulimit name (${ULIMIT_NAMES.join(', ')})` };
  if (!isLimitValue(soft)) return { ok: false, part: 'soft', message: `${JSON.stringify(soft)} is not a whole number (or -1 for unlimited)` };
  if (!isLimitValue(hard)) return { ok: false, part: 'hard', message: `${JSON.stringify(hard)} is not a whole number (or -1 for unlimited)` };
  const show = (n: number): string => (n === ULIMIT_UNLIMITED ? 'unlimited (-1)' : String(n));
  if (!ulimitInOrder(soft, hard)) return { ok: false, part: 'soft', message: `the soft limit ${show(soft)} is above the hard limit ${show(hard)}` };
  return { ok: true, ulimit: { name, soft, hard } };
}

/** Docker's SecretReferenceFileTarget / ConfigReferenceFileTarget: where the file goes and who owns it. */
export interface FileTarget {
  /** The file's name (or absolute path) in the container; Docker's File.Name. */
  target: string;
  /** Numeric user and group id of the file, as strings like Docker's ('0'). */
  uid: string;
  gid: string;
  /** Permission bits (Docker's default 0o444). */
  mode: number;
}

/** A service's use of a secret: its id (what the store keeps) and name (what the user gave, for display). */
export interface SecretReference extends FileTarget {
  secretId: string;
  secretName: string;
}

export interface ConfigReference extends FileTarget {
  configId: string;
  configName: string;
}

/** Where a secret's or config's file is in the container, by Docker's rules: secrets under /run/secrets/, configs at /. */
export function fileTargetPath(kind: 'secret' | 'config', target: string): string {
  if (target.startsWith('/')) return target;
  return kind === 'secret' ? `/run/secrets/${target}` : `/${target}`;
}

export interface RegistryAuth {
  registry: string;
  username: string;
  password: string;
}

export interface Mount {
  type: 'bind' | 'volume' | 'tmpfs';
  /** Host path (bind), volume name (volume), empty (tmpfs). */
  source: string;
  target: string;
  readOnly: boolean;
  /** tmpfs only; 0 means the kernel's default. */
  tmpfsSizeBytes: number;
}

export interface Resources {
  nanoCpus: number;
  memoryBytes: number;
}

export interface RestartPolicy {
  condition: 'none' | 'on-failure' | 'any';
  delayMs: number;
  /** 0 means unlimited, as in Docker. */
  maxAttempts: number;
  /** 0 means attempts are counted over the task's whole life. */
  windowMs: number;
}

export interface Placement {
  /** Docker's constraint expressions, e.g. 'node.role==manager', 'node.labels.zone!=b'. */
  constraints: string[];
  preferences: Array<{ spread: string }>;
  /** 0 means unlimited. */
  maxReplicas: number;
  platforms: Array<{ os: string; arch: string }>;
}

export interface TaskSpec {
  containerSpec: ContainerSpec;
  resources: { limits: Resources; reservations: Resources };
  restartPolicy: RestartPolicy;
  placement: Placement;
  networks: Array<{ target: string; aliases: string[] }>;
  /** Bumped by `service update --force` so that tasks are replaced even when nothing else changed. */
  forceUpdate: number;
}

/** Docker's shape: exactly one of replicated or global. */
export type ServiceMode =
  | { replicated: { replicas: number }; global?: never }
  | { global: Record<string, never>; replicated?: never };

export interface UpdateConfig {
  parallelism: number;
  delayMs: number;
  failureAction: 'pause' | 'continue' | 'rollback';
  monitorMs: number;
  maxFailureRatio: number;
  order: 'stop-first' | 'start-first';
}

/** SwarmKit's defaults, used when a service has no update (or rollback) config. */
export function defaultUpdateConfig(): UpdateConfig {
  return { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 5_000, maxFailureRatio: 0, order: 'stop-first' };
}

export interface PortConfig {
  name: string;
  protocol: 'tcp' | 'udp' | 'sctp';
  targetPort: number;
  publishedPort: number;
  publishMode: 'ingress' | 'host';
}

/** How connections to a service are spread over its tasks (`--lb-strategy`). */
export type LbStrategy = 'round-robin' | 'random' | 'load-aware';
export const LB_STRATEGIES: readonly LbStrategy[] = ['round-robin', 'random', 'load-aware'];

export interface EndpointSpec {
  mode: 'vip' | 'dnsrr';
  ports: PortConfig[];
  /** Absent: round-robin (specs written before strategies existed have none). */
  lbStrategy?: LbStrategy;
}

export interface ServiceSpec {
  name: string;
  labels: Labels;
  taskTemplate: TaskSpec;
  mode: ServiceMode;
  updateConfig: UpdateConfig | null;
  rollbackConfig: UpdateConfig | null;
  endpointSpec: EndpointSpec;
}

export type UpdateState =
  | 'updating'
  | 'paused'
  | 'completed'
  | 'rollback_started'
  | 'rollback_paused'
  | 'rollback_completed';

export interface UpdateStatus {
  state: UpdateState;
  startedAtMs: number;
  completedAtMs: number | null;
  message: string;
}

export interface Service {
  id: string;
  meta: Meta;
  spec: ServiceSpec;
  /** The spec before the last update: what `service rollback` returns to. */
  previousSpec: ServiceSpec | null;
  /** Version of the spec (the Raft index that last changed spec); tasks record the one they were made from. */
  specVersion: Version;
  endpoint: {
    spec: EndpointSpec;
    /** Published ports as allocated (publishedPort filled in when the spec left it 0). */
    ports: PortConfig[];
    virtualIps: Array<{ networkId: string; addr: string }>;
  };
  updateStatus: UpdateStatus | null;
}

// ---------------------------------------------------------------- task

export interface TaskStatus {
  state: TaskState;
  timestampMs: number;
  message: string;
  /** Empty when there is no error; shown in the ERROR column of `service ps`. */
  err: string;
  containerStatus: { containerId: string; pid: number; exitCode: number } | null;
  portStatus: PortConfig[];
}

/** One task's new status as a node's agent reports it to the dispatcher. */
export interface TaskStatusUpdate {
  taskId: string;
  status: TaskStatus;
}

export interface NetworkAttachment {
  networkId: string;
  /** What a node's data plane needs of the network, copied at allocation (a network never changes after it). */
  network: AttachedNetwork;
  /** CIDR addresses, e.g. '10.0.1.5/24'. */
  addresses: string[];
  aliases: string[];
  /** The task's service's virtual IP on this network (CIDR), or '' (endpoint mode dnsrr, or a node's attachment). */
  virtualIp: string;
}

/** A network as an attachment carries it to the node that runs the task. */
export interface AttachedNetwork {
  name: string;
  vni: Vni;
  /** CIDR, e.g. '10.0.1.0/24'. */
  subnet: string;
  gateway: string;
  internal: boolean;
  encrypted: boolean;
  ingress: boolean;
}

/** A VXLAN network identifier (24 bits); Docker's overlay driver starts at 4096. */
export type Vni = number;

export interface Task {
  id: string;
  meta: Meta;
  serviceId: string;
  /** Replica number (1..N) for replicated services; 0 for global ones, whose slot is their node. */
  slot: number;
  /** Empty until the scheduler assigns the task. */
  nodeId: string;
  spec: TaskSpec;
  specVersion: Version;
  /** Docker's task name is `${serviceName}.${slot}` (or `.${nodeId}` for global); kept for display. */
  serviceName: string;
  desiredState: TaskState;
  status: TaskStatus;
  networksAttachments: NetworkAttachment[];
  endpoint: { spec: EndpointSpec; ports: PortConfig[] } | null;
}

// ---------------------------------------------------------------- network, secret, config, volume

export interface IpamConfig {
  subnet: string;
  range: string;
  gateway: string;
}

export interface NetworkSpec {
  name: string;
  labels: Labels;
  driver: string;
  driverOptions: Record<string, string>;
  ipam: { driver: string; configs: IpamConfig[] };
  internal: boolean;
  attachable: boolean;
  ingress: boolean;
}

export interface Network {
  id: string;
  meta: Meta;
  spec: NetworkSpec;
  /** What the leader's allocator chose; null until it has run. */
  allocation: NetworkAllocation | null;
}

export interface NetworkAllocation {
  vni: Vni;
  /** CIDR: the spec's subnet, or one cut from the cluster's default address pool. */
  subnet: string;
  gateway: string;
  /**
   * Host part of the task address given last: the next task gets the next free one after it, so an address is
   * not handed out again until the subnet wraps (a freed address may still be in peers' tables for a moment).
   */
  lastHost: number;
}

export interface Secret {
  id: string;
  meta: Meta;
  /**
   * data is sealed: AES-256-GCM under the cluster's data key (@swarm/pki sealData, bound to the secret's id), never
   * the plaintext, so neither the Raft log nor a snapshot on a manager's disk holds it in the clear. Only the leader's
   * dispatcher opens it, to send it to a node that runs a task using it.
   */
  spec: { name: string; labels: Labels; data: Uint8Array };
}

export interface Config {
  id: string;
  meta: Meta;
  /** data is the config's bytes as given (configs are not secret, as in Docker). */
  spec: { name: string; labels: Labels; data: Uint8Array };
}

export interface Volume {
  id: string;
  meta: Meta;
  spec: { name: string; labels: Labels; driver: string; driverOptions: Record<string, string> };
}

// ---------------------------------------------------------------- kinds

export interface ObjectsByKind {
  cluster: Cluster;
  node: Node;
  service: Service;
  task: Task;
  network: Network;
  secret: Secret;
  config: Config;
  volume: Volume;
}

export type ObjectKind = keyof ObjectsByKind;

/** Fixed order: snapshots list tables in it, so it is part of the snapshot format. */
export const OBJECT_KINDS: readonly ObjectKind[] = [
  'cluster',
  'node',
  'service',
  'task',
  'network',
  'secret',
  'config',
  'volume',
];

export type StoreObject = ObjectsByKind[ObjectKind];

/** Kinds whose spec.name is unique across the cluster (case-insensitively, like SwarmKit). */
export const UNIQUE_NAME_KINDS: ReadonlySet<ObjectKind> = new Set<ObjectKind>([
  'cluster',
  'service',
  'network',
  'secret',
  'config',
  'volume',
]);

export function isObjectKind(value: unknown): value is ObjectKind {
  return typeof value === 'string' && (OBJECT_KINDS as readonly string[]).includes(value);
}
