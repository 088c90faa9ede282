// The Runtime interface every task runner implements (process now, runc later), its typed error, and the
// mapping from a store Task to the ContainerConfig a runtime is given: the rest of the code depends only on this file.

import type { Task } from '@swarm/store';

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
}

/** How a container's main process ended. A process killed by a signal has exitCode 128 + the signal's number. */
export interface ExitStatus {
  readonly exitCode: number;
  /** The signal that ended it (`SIGKILL`), or null if it exited by itself. */
  readonly signal: string | null;
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

export function containerConfigFor(task: Task): ContainerConfig {
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
  };
}
