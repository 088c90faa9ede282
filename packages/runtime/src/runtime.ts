// The Runtime interface every task runner implements (process now, runc later), its typed error, and the
// mapping from a store Task to the ContainerConfig a runtime is given: the rest of the code depends only on this file.

import { fileTargetPath, type Task, type UlimitName } from '@swarm/store';

export type RuntimeName = 'process' | 'runc';

/** Everything a runtime needs to run one task; built from the task's spec by containerConfigFor. */
export interface ContainerConfig {
  /** The task id: the container's identity in the runtime (letters, digits, `_ . -`, at most 128). */
  readonly id: string;
  /** Docker's container name, `web.3.<taskid>` (or `web.<nodeid>.<taskid>` for a global service). */
  readonly name: string;
  readonly image: string;
  /** Docker's entrypoint and cmd: the process runs `command ++ args`. */
  readonly command: readonly string[];
  readonly args: readonly string[];
  /** `KEY=VALUE` strings. */
  readonly env: readonly string[];
  /** Working directory; empty for the runtime's default. */
  readonly dir: string;
  /** `uid[:gid]` or a user name; empty for the runtime's default. */
  readonly user: string;
  readonly labels: Readonly<Record<string, string>>;
  /** 0 means no limit. */
  readonly limits: { readonly nanoCpus: number; readonly memoryBytes: number };
  /** Signal name (`SIGTERM`, `TERM`) or number; empty for SIGTERM. */
  readonly stopSignal: string;
  readonly stopGracePeriodMs: number;
  /** The container's hostname (Docker's default: the first 12 characters of the task id). */
  readonly hostname: string;
  /** Bind, volume and tmpfs mounts, in the spec's order. A volume's source is its name (see VolumeStore). */
  readonly mounts: readonly MountConfig[];
  /** Run tini as pid 1 (Docker's --init). */
  readonly init: boolean;
  /** Mount the root filesystem read-only (Docker's --read-only). */
  readonly readOnly: boolean;
  /** Capabilities added to / dropped from Docker's default set: `NET_ADMIN` or `CAP_NET_ADMIN`, or `ALL`. */
  readonly capAdd: readonly string[];
  readonly capDrop: readonly string[];
  /** 0 means unlimited. */
  readonly pidsLimit: number;
  /** Resource limits of the container's processes (Docker's --ulimit), at most one per name; empty: the daemon's own. */
  readonly ulimits: readonly UlimitConfig[];
  /** CPU reservation (Docker's --reserve-cpu), turned into a cgroup cpu weight; 0 means the default weight. */
  readonly reservedNanoCpus: number;
  /** The network namespace the container joins (prepared by the network driver); null means the host's network. */
  readonly networkNamespacePath: string | null;
  /** Extra /etc/hosts lines (`IP NAME...`), after localhost and the container's own hostname. */
  readonly extraHosts: readonly string[];
  /** /etc/resolv.conf for the container; null copies the host's. */
  readonly resolvConf: string | null;
  /** The registry login the service carries (--with-registry-auth) for pulling its image; null for none. */
  readonly registryAuth: { readonly username: string; readonly password: string } | null;
  /**
   * Secrets and configs as files: the runtime puts them on a tmpfs of the task's own and mounts each read-only at
   * its target. The data is in memory only; a runtime never writes it anywhere but that tmpfs (nor logs it).
   */
  readonly files: readonly FileMountConfig[];
}

/** One resource limit: soft <= hard; -1 is unlimited (RLIM_INFINITY). */
export interface UlimitConfig {
  readonly name: UlimitName;
  readonly soft: number;
  readonly hard: number;
}

export interface FileMountConfig {
  readonly kind: 'secret' | 'config';
  /** The secret's or config's name, for messages. */
  readonly name: string;
  /** Absolute path in the container (/run/secrets/NAME by default for a secret, /NAME for a config). */
  readonly target: string;
  readonly uid: number;
  readonly gid: number;
  /** Permission bits, e.g. 0o444. */
  readonly mode: number;
  readonly data: Uint8Array;
}

/**
 * The bytes of the secrets and configs a node's tasks use, by id: the dispatcher sends them with the assignments (to
 * the nodes whose tasks use them only), the agent keeps them in memory and hands them over in ContainerConfig.files.
 */
export interface TaskFiles {
  readonly secrets: ReadonlyArray<{ readonly id: string; readonly data: Uint8Array }>;
  readonly configs: ReadonlyArray<{ readonly id: string; readonly data: Uint8Array }>;
}

export const NO_TASK_FILES: TaskFiles = Object.freeze({ secrets: [], configs: [] });

export interface MountConfig {
  readonly type: 'bind' | 'volume' | 'tmpfs';
  /** Host path (bind), volume name (volume), unused (tmpfs). */
  readonly source: string;
  /** Absolute path inside the container. */
  readonly target: string;
  readonly readOnly: boolean;
  /** tmpfs only: size limit in bytes; 0 means the kernel's default (half of RAM). */
  readonly tmpfsSizeBytes: number;
}

/** The parts of an OCI image config a container uses (`config` of application/vnd.oci.image.config.v1+json). */
export interface ImageConfig {
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  /** `KEY=VALUE` strings. */
  readonly env: readonly string[];
  readonly workingDir: string;
  readonly user: string;
  readonly stopSignal: string;
  readonly labels: Readonly<Record<string, string>>;
  /** `80/tcp` style keys. */
  readonly exposedPorts: readonly string[];
}

/** An image present on this node: its layers unpacked, ready to be the lower dirs of an overlay. */
export interface LocalImage {
  /** The canonical reference it was asked for (`registry/repo:tag` or `registry/repo@sha256:...`). */
  readonly reference: string;
  /** Digest of the image manifest for this platform. */
  readonly manifestDigest: string;
  /** Directories of the unpacked layers, bottom layer first. */
  readonly layerDirs: readonly string[];
  readonly config: ImageConfig;
}

/** Where a runtime gets images from: the node's image store, pulling when needed. */
export interface ImageProvider {
  /** The image, pulled and unpacked if absent; concurrent calls for one image share one pull. */
  ensure(reference: string, opts?: { signal?: AbortSignal; credentials?: { username: string; password: string } | null }): Promise<LocalImage>;
}

/** Node-local named volumes: a directory per volume that outlives the tasks that use it. */
export interface VolumeProvider {
  /** The volume's host directory, created (with Docker's `local` driver semantics) if it does not exist. */
  ensure(name: string, labels?: Readonly<Record<string, string>>): Promise<string>;
}

/** How a container's main process ended. A process killed by a signal has exitCode 128 + the signal's number. */
export interface ExitStatus {
  readonly exitCode: number;
  /** The signal that ended it (`SIGKILL`), or null if it exited by itself. */
  readonly signal: string | null;
  /** The kernel's OOM killer ended it (the runc runtime reports this; the process runtime never does). */
  readonly oomKilled?: boolean;
}

export interface LogLine {
  stream: 'stdout' | 'stderr';
  timestampMs: number;
  line: string;
}

export interface LogOptions {
  /** Only the last `tail` lines already written; all when absent. */
  tail?: number;
  /** Keep yielding new lines until the container's output ends or `signal` aborts. */
  follow?: boolean;
  signal?: AbortSignal;
}

/** What a command run inside a container (a health check) did. */
export interface ExecResult {
  /** The command's exit code; -1 when it timed out and was killed. */
  readonly exitCode: number;
  /** The start of its stdout and stderr together (at most MAX_EXEC_OUTPUT_BYTES). */
  readonly output: string;
  readonly timedOut: boolean;
}

export const MAX_EXEC_OUTPUT_BYTES = 4096;

/** A container's resource use now. */
export interface ContainerStats {
  /** CPU time used since it started (user + system), in ns. */
  readonly cpuNanos: number;
  readonly memoryBytes: number;
}

export interface Runtime {
  readonly name: RuntimeName;
  /** Checks the config and readies the container's files; idempotent for the same id. */
  prepare(config: ContainerConfig): Promise<void>;
  /** Starts a prepared container; a container starts at most once. */
  start(id: string): Promise<{ pid: number }>;
  /** Resolves when a started container's process has ended, also when that happened before the call. */
  wait(id: string): Promise<ExitStatus>;
  /** The config's stop signal, SIGKILL after graceMs; resolves when the process is gone. No-op if not running. */
  stop(id: string, graceMs: number): Promise<void>;
  /** Forgets a container that is not running and deletes its files; no-op for an unknown id. */
  remove(id: string): Promise<void>;
  logs(id: string, opts: LogOptions): AsyncIterable<LogLine>;
  /** Runs argv inside a running container (its environment, directory and user); killed after timeoutMs. */
  exec(id: string, argv: readonly string[], opts: { timeoutMs: number }): Promise<ExecResult>;
  /** Resource use of a running container. */
  stats(id: string): Promise<ContainerStats>;
  /** Ids of the containers it holds (prepared, running or exited, not yet removed). */
  list(): Promise<string[]>;
  /** Stops every container it started; afterwards every call fails with `closed`. */
  close(): Promise<void>;
}

export type RuntimeErrorCode =
  /** The task's spec cannot run on this runtime (no command, bad env entry, unknown user, ...). */
  | 'invalid_config'
  | 'not_found'
  /** The call does not fit the container's lifecycle (start twice, wait before start, remove while running). */
  | 'invalid_state'
  /** The executable is missing or the process could not be spawned. */
  | 'start_failed'
  | 'too_many_containers'
  /** The image could not be pulled or unpacked (no such image, registry unreachable, auth refused, bad digest). */
  | 'image_unavailable'
  | 'closed';

/** A runtime's refusal; the message is shown to the user as the task's error, so it says what to do. */
export class RuntimeError extends Error {
  constructor(
    readonly code: RuntimeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RuntimeError';
  }
}

export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`runtime invariant: ${msg}`);
}

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function isContainerId(id: string): boolean {
  return CONTAINER_ID.test(id);
}

/** Docker's name for a task's container: service.slot.taskid, with the node id in place of the slot for global tasks. */
export function containerName(task: Pick<Task, 'id' | 'serviceName' | 'slot' | 'nodeId'>): string {
  const slot = task.slot > 0 ? String(task.slot) : task.nodeId;
  return `${task.serviceName}.${slot}.${task.id}`;
}

/** A config with Docker's defaults for everything but the id and the command (tests and benchmarks build on it). */
export function defaultContainerConfig(id: string, command: readonly string[], image = 'busybox'): ContainerConfig {
  return {
    id,
    name: `web.1.${id}`,
    image,
    command: [...command],
    args: [],
    env: [],
    dir: '',
    user: '',
    labels: {},
    limits: { nanoCpus: 0, memoryBytes: 0 },
    stopSignal: '',
    stopGracePeriodMs: 10_000,
    hostname: id.slice(0, 12),
    mounts: [],
    init: false,
    readOnly: false,
    capAdd: [],
    capDrop: [],
    pidsLimit: 0,
    ulimits: [],
    reservedNanoCpus: 0,
    networkNamespacePath: null,
    extraHosts: [],
    resolvConf: null,
    registryAuth: null,
    files: [],
  };
}

/**
 * The task's secrets and configs as files, with their bytes from `files`; one that did not come with the assignment
 * fails the task (RuntimeError invalid_config) naming it.
 */
export function taskFileMounts(task: Task, files: TaskFiles): FileMountConfig[] {
  const c = task.spec.containerSpec;
  const find = (kind: 'secret' | 'config', id: string, name: string): Uint8Array => {
    const data = (kind === 'secret' ? files.secrets : files.configs).find((f) => f.id === id)?.data;
    if (data === undefined) {
      throw new RuntimeError('invalid_config', `${kind} ${name} (${id}) did not come with the task's assignment: the leader could not send it (see its log), or it was removed`);
    }
    return data;
  };
  const mount = (kind: 'secret' | 'config', id: string, name: string, f: { target: string; uid: string; gid: string; mode: number }): FileMountConfig => ({
    kind,
    name,
    target: fileTargetPath(kind, f.target),
    uid: Number(f.uid),
    gid: Number(f.gid),
    mode: f.mode,
    data: find(kind, id, name),
  });
  // `?? []`: specs written before the fields existed have none.
  return [...(c.secrets ?? []).map((r) => mount('secret', r.secretId, r.secretName, r)), ...(c.configs ?? []).map((r) => mount('config', r.configId, r.configName, r))];
}

export function containerConfigFor(task: Task, files: TaskFiles = NO_TASK_FILES): ContainerConfig {
  const c = task.spec.containerSpec;
  return {
    id: task.id,
    name: containerName(task),
    image: c.image,
    command: [...c.command],
    args: [...c.args],
    env: [...c.env],
    dir: c.dir,
    user: c.user,
    labels: { ...c.labels },
    limits: { nanoCpus: task.spec.resources.limits.nanoCpus, memoryBytes: task.spec.resources.limits.memoryBytes },
    stopSignal: c.stopSignal,
    stopGracePeriodMs: c.stopGracePeriodMs,
    hostname: c.hostname !== '' ? c.hostname : task.id.slice(0, 12),
    mounts: c.mounts.map((m) => ({ ...m })),
    init: c.init,
    readOnly: c.readOnly,
    capAdd: [...c.capabilityAdd],
    capDrop: [...c.capabilityDrop],
    pidsLimit: c.pidsLimit,
    // `?? []`: specs without ulimits (and those stored before the field existed) have none.
    ulimits: (c.ulimits ?? []).map((u) => ({ ...u })),
    reservedNanoCpus: task.spec.resources.reservations.nanoCpus,
    networkNamespacePath: null,
    extraHosts: [],
    resolvConf: null,
    // `?? null`: specs written before the field existed have none.
    registryAuth: (c.registryAuth ?? null) === null ? null : { username: c.registryAuth?.username ?? '', password: c.registryAuth?.password ?? '' },
    files: taskFileMounts(task, files),
  };
}
