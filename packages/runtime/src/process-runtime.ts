// The `process` runtime: a task is a plain child process in its own process group (no namespaces, no image, no
// cgroup limits; ulimits through prlimit), for machines without root. Owns the children it spawned, their working dirs and their log files, and the
// tmpfs of each task's secrets and configs (secrets/<id>: files at their container paths below it, named by env).

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { ULIMIT_UNLIMITED } from '@swarm/store';
import type { Logger } from '@swarm/wire';
import { DEFAULT_MAX_LOG_FILE_BYTES, followLog, LineSplitter, LogWriter, readSnapshot, removeLogFiles, snapshotFiles } from './log-file.js';
import { checkUlimits, readHostLimits, type HostLimits } from './rlimits.js';
import { mountTaskFiles, unmountAllTaskFiles, unmountTaskFiles } from './task-files.js';
import { assert, isContainerId, MAX_EXEC_OUTPUT_BYTES, RuntimeError, type UlimitConfig, type ContainerConfig, type ContainerStats, type ExecResult, type ExitStatus, type LogLine, type LogOptions, type Runtime } from './runtime.js';

export const DEFAULT_MAX_CONTAINERS = 1_024;
/** Logs of removed containers kept for `service logs` of dead tasks; older ones are deleted first. */
export const DEFAULT_MAX_KEPT_LOGS = 256;
/** close() gives each child at most this long after its stop signal (the daemon is shutting down). */
export const MAX_CLOSE_GRACE_MS = 10_000;
/** After the main process exits, its pipes may stay open in a background child; wait() does not wait longer. */
const PIPE_CLOSE_AFTER_EXIT_MS = 250;
const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Every task process carries it, so tools (the lab) can recognise a task's processes. */
export const TASK_ID_ENV = 'SWARM_TASK_ID';
/**
 * No mount namespace, so a task's secrets and configs cannot be at their container paths: they are under this
 * directory instead (`$SWARM_FILES_ROOT/run/secrets/NAME`, `$SWARM_FILES_ROOT/NAME` for a config), and
 * SWARM_SECRETS_DIR names `$SWARM_FILES_ROOT/run/secrets`.
 */
export const FILES_ROOT_ENV = 'SWARM_FILES_ROOT';
export const SECRETS_DIR_ENV = 'SWARM_SECRETS_DIR';

export interface ProcessRuntimeOptions {
  /** Holds tasks/<id>/ (working dir and HOME when the spec gives none) and logs/<id>.log. */
  rootDir: string;
  logger: Logger;
  maxContainers?: number;
  maxLogFileBytes?: number;
  maxKeptLogs?: number;
  nowMs?: () => number;
  /** util-linux's prlimit, which applies a task's ulimits; default: the one on the daemon's PATH; null: none. */
  prlimitPath?: string | null;
  /** The daemon's own limits, that a task's ulimits are checked against; default: read from /proc/self. */
  hostLimits?: () => HostLimits;
}

type ContainerState =
  | { kind: 'prepared' }
  | { kind: 'running'; child: ChildProcess; pid: number; exited: Promise<ExitStatus> }
  | { kind: 'exited'; pid: number; exit: ExitStatus };

interface Container {
  readonly config: ContainerConfig;
  readonly workDir: string;
  readonly logPath: string;
  readonly user: { uid: number; gid: number } | null;
  /** The tmpfs with its secrets and configs, or null when it has none. */
  readonly filesDir: string | null;
  /** prlimit, when the task has ulimits: its processes (and health checks) start through it. */
  readonly prlimit: string | null;
  state: ContainerState;
  writer: LogWriter | null;
  stopping: Promise<void> | null;
}

function signalNumber(name: string): number | null {
  const n = (osConstants.signals as Record<string, number | undefined>)[name];
  return n ?? null;
}

/** `SIGTERM`, `TERM`, `15` -> 'SIGTERM'; empty means SIGTERM; null if it names no signal. */
export function parseStopSignal(value: string): NodeJS.Signals | null {
  const v = value.trim().toUpperCase();
  if (v === '') return 'SIGTERM';
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    const entry = Object.entries(osConstants.signals).find(([, num]) => num === n);
    return entry === undefined ? null : (entry[0] as NodeJS.Signals);
  }
  const name = v.startsWith('SIG') ? v : `SIG${v}`;
  return signalNumber(name) === null ? null : (name as NodeJS.Signals);
}

/** Docker's convention: a process ended by signal N exited with 128 + N. */
/** Clock ticks per second of /proc/<pid>/stat times: 100 on every Linux architecture we run on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time and resident memory of one process from /proc (the task's main process). */
export function processStats(pid: number): ContainerStats {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat(5))
    const rss = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { cpuNanos: Math.round((ticks / CLOCK_TICKS_PER_SECOND) * 1e9), memoryBytes: rss === null ? 0 : Number(rss[1]) * 1024 };
  } catch (err) {
    throw new RuntimeError('not_found', `the task's process ${pid} is gone: ${(err as Error).message}`);
  }
}

export function exitStatusOf(code: number | null, signal: NodeJS.Signals | null): ExitStatus {
  if (signal !== null) return { exitCode: 128 + (signalNumber(signal) ?? 0), signal };
  assert(code !== null, 'a child exits with a code or a signal');
  return { exitCode: code, signal: null };
}

function lookupColonFile(path: string, key: string, field: number): number | null {
  try {
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      const parts = line.split(':');
      if (parts[0] === key && parts[field] !== undefined && /^\d+$/.test(parts[field])) return Number(parts[field]);
    }
  } catch {
    // no such file: no names to resolve
  }
  return null;
}

/** `uid[:gid]` or `name[:group]` from /etc/passwd and /etc/group; the gid defaults to the user's primary group. */
function resolveUser(user: string): { uid: number; gid: number } {
  const [u = '', g] = user.split(':', 2);
  const uid = /^\d+$/.test(u) ? Number(u) : lookupColonFile('/etc/passwd', u, 2);
  if (uid === null) throw new RuntimeError('invalid_config', `unable to find user ${u}: no matching entries in passwd file`);
  let gid: number | null;
  if (g === undefined || g === '') gid = /^\d+$/.test(u) ? uid : lookupColonFile('/etc/passwd', u, 3);
  else gid = /^\d+$/.test(g) ? Number(g) : lookupColonFile('/etc/group', g, 2);
  if (gid === null) throw new RuntimeError('invalid_config', `unable to find group ${g ?? u}: no matching entries in group file`);
  return { uid, gid };
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Like execvp: a name with a slash is a path (from cwd); otherwise the first executable file on PATH. */
export function resolveExecutable(file: string, pathVar: string, cwd: string): string | null {
  if (file.includes('/')) {
    const p = isAbsolute(file) ? file : resolve(cwd, file);
    return isExecutableFile(p) ? p : null;
  }
  for (const dir of pathVar.split(delimiter)) {
    if (dir === '') continue;
    const p = join(isAbsolute(dir) ? dir : resolve(cwd, dir), file);
    if (isExecutableFile(p)) return p;
  }
  return null;
}

/** Written into a task's dir at start, so a later runtime on the same rootDir can find a process it left behind. */
const PROCESS_FILE = 'process.json';

interface ProcessRecord {
  pid: number;
  /** From /proc/<pid>/stat: with the pid, it names one process (a reused pid has another start time). */
  startTime: number;
}

function readProcessRecord(path: string): ProcessRecord | null {
  try {
    const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof v !== 'object' || v === null) return null;
    const { pid, startTime } = v as Record<string, unknown>;
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 1 || typeof startTime !== 'number') return null;
    return { pid, startTime };
  } catch {
    return null;
  }
}

/** The process's start time in clock ticks since boot, or null if there is no such (living) process. */
function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const start = fields[19];
    if (state === 'Z' || state === 'X' || start === undefined) return null;
    return Number(start);
  } catch {
    return null;
  }
}

function hasTaskMarker(pid: number, id: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`${TASK_ID_ENV}=${id}`);
  } catch {
    return false;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The command through prlimit when there are ulimits: prlimit sets them on itself and execs the command, so the
 * task's pid is prlimit's (the command sees its absolute path as argv[0], not the name the spec gave).
 */
function withUlimits(prlimit: string | null, ulimits: readonly UlimitConfig[], exe: string, args: readonly string[]): { file: string; args: string[] } {
  if (prlimit === null || ulimits.length === 0) return { file: exe, args: [...args] };
  const value = (n: number): string => (n === ULIMIT_UNLIMITED ? 'unlimited' : String(n));
  return { file: prlimit, args: [...ulimits.map((u) => `--${u.name}=${value(u.soft)}:${value(u.hard)}`), '--', exe, ...args] };
}

export class ProcessRuntime implements Runtime {
  readonly name = 'process' as const;
  private readonly containers = new Map<string, Container>();
  /** Ids of removed containers whose log is kept, oldest first. */
  private readonly keptLogs: string[] = [];
  private readonly tasksDir: string;
  private readonly logsDir: string;
  private readonly secretsDir: string;
  private readonly log: Logger;
  private readonly maxContainers: number;
  private readonly maxLogFileBytes: number;
  private readonly maxKeptLogs: number;
  private readonly nowMs: () => number;
  private readonly prlimitPath: string | null;
  private readonly hostLimits: () => HostLimits;
  private closed = false;

  constructor(opts: ProcessRuntimeOptions) {
    this.maxContainers = opts.maxContainers ?? DEFAULT_MAX_CONTAINERS;
    this.maxLogFileBytes = opts.maxLogFileBytes ?? DEFAULT_MAX_LOG_FILE_BYTES;
    this.maxKeptLogs = opts.maxKeptLogs ?? DEFAULT_MAX_KEPT_LOGS;
    assert(Number.isInteger(this.maxContainers) && this.maxContainers > 0, `maxContainers ${this.maxContainers}`);
    assert(Number.isInteger(this.maxKeptLogs) && this.maxKeptLogs >= 0, `maxKeptLogs ${this.maxKeptLogs}`);
    this.log = opts.logger;
    this.nowMs = opts.nowMs ?? Date.now;
    this.prlimitPath = opts.prlimitPath !== undefined ? opts.prlimitPath : resolveExecutable('prlimit', process.env['PATH'] ?? BASE_PATH, '/');
    this.hostLimits = opts.hostLimits ?? readHostLimits;
    this.tasksDir = join(opts.rootDir, 'tasks');
    this.logsDir = join(opts.rootDir, 'logs');
    this.secretsDir = join(opts.rootDir, 'secrets');
    // Processes and working dirs left by an earlier daemon on this rootDir belong to no container any more: the
    // processes are killed (this runtime cannot wait on them or stop them later), their logs are kept (bounded).
    this.killLeftovers();
    rmSync(this.tasksDir, { recursive: true, force: true });
    unmountAllTaskFiles(this.secretsDir);
    mkdirSync(this.tasksDir, { recursive: true });
    mkdirSync(this.logsDir, { recursive: true });
    const old = readdirSync(this.logsDir)
      .filter((f) => f.endsWith('.log'))
      .map((f) => ({ id: f.slice(0, -'.log'.length), mtimeMs: statSync(join(this.logsDir, f)).mtimeMs }))
      .sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const o of old) this.keepLog(o.id);
  }

  async prepare(config: ContainerConfig): Promise<void> {
    this.checkOpen();
    if (!isContainerId(config.id)) throw new RuntimeError('invalid_config', `invalid container id ${JSON.stringify(config.id)}`);
    const existing = this.containers.get(config.id);
    if (existing !== undefined) {
      assert(existing.config.name === config.name, `container ${config.id} prepared twice with different names`);
      return;
    }
    if (this.containers.size >= this.maxContainers) {
      throw new RuntimeError('too_many_containers', `this node already holds ${this.maxContainers} tasks (the process runtime's limit); scale down or add nodes`);
    }
    if (config.command.length + config.args.length === 0) {
      throw new RuntimeError(
        'invalid_config',
        'the process runtime runs the service\'s command and has no image to take one from; give one, e.g. `swarm service create busybox sleep 3600`',
      );
    }
    for (const e of config.env) {
      if (e.indexOf('=') <= 0) throw new RuntimeError('invalid_config', `invalid environment entry ${JSON.stringify(e)}: expected KEY=VALUE`);
    }
    if (parseStopSignal(config.stopSignal) === null) throw new RuntimeError('invalid_config', `invalid stop signal ${JSON.stringify(config.stopSignal)}`);
    if (!Number.isFinite(config.stopGracePeriodMs) || config.stopGracePeriodMs < 0) {
      throw new RuntimeError('invalid_config', `invalid stop grace period ${config.stopGracePeriodMs} ms`);
    }
    let user: Container['user'] = null;
    if (config.user !== '') {
      user = resolveUser(config.user);
      const self = process.getuid?.() ?? 0;
      if (self !== 0 && user.uid !== self) {
        throw new RuntimeError('invalid_config', `the process runtime runs tasks as the daemon's user (uid ${self}); running as ${config.user} needs a daemon started as root`);
      }
    }
    if (config.limits.nanoCpus > 0 || config.limits.memoryBytes > 0) {
      this.log.warn({ task: config.id }, 'the process runtime does not enforce cpu or memory limits');
    }
    let prlimit: string | null = null;
    if (config.ulimits.length > 0) {
      if (this.prlimitPath === null) {
        throw new RuntimeError('invalid_config', "the process runtime sets a task's ulimits with prlimit (util-linux), which this node does not have: install it (or use the runc runtime)");
      }
      checkUlimits(config.ulimits, this.hostLimits());
      prlimit = this.prlimitPath;
    }
    let filesDir: string | null = null;
    if (config.files.length > 0) {
      const self = process.getuid?.() ?? 0;
      if (self !== 0) {
        throw new RuntimeError('invalid_config', "the process runtime puts a task's secrets and configs on a tmpfs of its own, which needs a daemon started as root (or the runc runtime)");
      }
      filesDir = join(this.secretsDir, config.id);
      // The task's own user owns the tmpfs (0700): other users on the node cannot list it.
      mountTaskFiles(filesDir, config.files, (f) => f.target.slice(1), user ?? { uid: self, gid: process.getgid?.() ?? 0 });
    }
    const workDir = join(this.tasksDir, config.id);
    mkdirSync(workDir, { recursive: true });
    this.forgetKeptLog(config.id);
    this.containers.set(config.id, { config, workDir, logPath: join(this.logsDir, `${config.id}.log`), user, filesDir, prlimit, state: { kind: 'prepared' }, writer: null, stopping: null });
    this.log.debug({ task: config.id, name: config.name, image: config.image }, 'prepared');
  }

  async start(id: string): Promise<{ pid: number }> {
    this.checkOpen();
    const c = this.get(id);
    if (c.state.kind !== 'prepared') throw new RuntimeError('invalid_state', `container ${c.config.name} was already started`);
    const { config } = c;
    const { cwd, env } = this.processContext(c);
    const argv = [...config.command, ...config.args];
    const file = argv[0];
    assert(file !== undefined, 'prepare refuses an empty command');
    const exe = resolveExecutable(file, env['PATH'] ?? '', cwd);
    if (exe === null) {
      throw new RuntimeError('start_failed', `starting container failed: exec: ${JSON.stringify(file)}: executable file not found in $PATH`);
    }
    const writer = new LogWriter(c.logPath, this.maxLogFileBytes);
    const run = withUlimits(c.prlimit, config.ulimits, exe, argv.slice(1));
    const child = spawn(run.file, run.args, {
      argv0: run.file === exe ? file : run.file,
      cwd,
      env,
      detached: true, // its own process group: stop() signals the task and everything it started
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(c.user === null ? {} : { uid: c.user.uid, gid: c.user.gid }),
    });
    const pid = child.pid;
    if (pid === undefined) {
      const err = await new Promise<Error>((res) => child.once('error', res));
      writer.end();
      throw new RuntimeError('start_failed', `starting container failed: ${err.message}`);
    }
    c.writer = writer;
    const out = new LineSplitter('stdout', this.nowMs, (lines) => writer.write(lines));
    const errOut = new LineSplitter('stderr', this.nowMs, (lines) => writer.write(lines));
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => errOut.push(chunk));
    child.on('error', (err) => this.log.warn({ task: id, err: err.message }, 'child process error'));
    const exited = new Promise<ExitStatus>((resolveExit) => {
      let status: ExitStatus | null = null;
      let settled = false;
      const settle = (): void => {
        if (settled || status === null) return;
        settled = true;
        out.flush();
        errOut.flush();
        writer.end();
        c.state = { kind: 'exited', pid, exit: status };
        this.log.debug({ task: id, pid, ...status }, 'exited');
        resolveExit(status);
      };
      child.once('exit', (code, signal) => {
        status = exitStatusOf(code, signal);
        // As in a container, whose pid namespace dies with its first process: what it left running goes too. The
        // group cannot have been reused yet: a pid stays taken while a group of that id has members.
        try {
          this.signalGroup(pid, 'SIGKILL');
        } catch (err) {
          this.log.warn({ task: id, err: (err as Error).message }, 'could not kill what the task left running');
        }
        setTimeout(settle, PIPE_CLOSE_AFTER_EXIT_MS).unref();
      });
      child.once('close', (code, signal) => {
        status ??= exitStatusOf(code, signal);
        settle();
      });
    });
    const startTime = processStartTime(pid);
    if (startTime !== null) writeFileSync(join(c.workDir, PROCESS_FILE), JSON.stringify({ pid, startTime } satisfies ProcessRecord));
    c.state = { kind: 'running', child, pid, exited };
    this.log.debug({ task: id, pid, argv }, 'started');
    return { pid };
  }

  /** The directory and environment the task's processes (and health checks) run with. */
  private processContext(c: Container): { cwd: string; env: Record<string, string> } {
    const { config } = c;
    const cwd = config.dir !== '' && isDirectory(config.dir) ? config.dir : c.workDir;
    const env: Record<string, string> = { PATH: BASE_PATH, HOME: c.workDir };
    for (const e of config.env) {
      const at = e.indexOf('=');
      env[e.slice(0, at)] = e.slice(at + 1);
    }
    env[TASK_ID_ENV] = config.id;
    if (c.filesDir !== null) {
      env[FILES_ROOT_ENV] = c.filesDir;
      env[SECRETS_DIR_ENV] = join(c.filesDir, 'run', 'secrets');
    }
    return { cwd, env };
  }

  async exec(id: string, argv: readonly string[], opts: { timeoutMs: number }): Promise<ExecResult> {
    this.checkOpen();
    const c = this.get(id);
    if (c.state.kind !== 'running') throw new RuntimeError('invalid_state', `container ${c.config.name} is not running`);
    const file = argv[0];
    if (file === undefined) throw new RuntimeError('invalid_config', 'exec needs a command');
    const { cwd, env } = this.processContext(c);
    const exe = resolveExecutable(file, env['PATH'] ?? '', cwd);
    if (exe === null) return { exitCode: 127, output: `exec: ${JSON.stringify(file)}: executable file not found in $PATH`, timedOut: false };
    const run = withUlimits(c.prlimit, c.config.ulimits, exe, argv.slice(1));
    const child = spawn(run.file, run.args, {
      argv0: run.file === exe ? file : run.file,
      cwd,
      env,
      detached: true, // its own group, so a timeout kills what it started too
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(c.user === null ? {} : { uid: c.user.uid, gid: c.user.gid }),
    });
    const pid = child.pid;
    if (pid === undefined) {
      const err = await new Promise<Error>((res) => child.once('error', res));
      return { exitCode: 126, output: `exec failed: ${err.message}`, timedOut: false };
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const keep = (chunk: Buffer): void => {
      if (size >= MAX_EXEC_OUTPUT_BYTES) return;
      chunks.push(chunk.subarray(0, MAX_EXEC_OUTPUT_BYTES - size));
      size += Math.min(chunk.length, MAX_EXEC_OUTPUT_BYTES - size);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.signalGroup(pid, 'SIGKILL');
    }, opts.timeoutMs);
    const status = await new Promise<ExitStatus>((res) => child.once('close', (code, signal) => res(exitStatusOf(code, signal))));
    clearTimeout(timer);
    this.signalGroup(pid, 'SIGKILL'); // anything it left running
    const output = Buffer.concat(chunks).toString('utf8');
    return { exitCode: timedOut ? -1 : status.exitCode, output, timedOut };
  }

  async stats(id: string): Promise<ContainerStats> {
    this.checkOpen();
    const c = this.get(id);
    if (c.state.kind !== 'running') throw new RuntimeError('invalid_state', `container ${c.config.name} is not running`);
    return processStats(c.state.pid);
  }

  async wait(id: string): Promise<ExitStatus> {
    const c = this.get(id);
    switch (c.state.kind) {
      case 'prepared':
        throw new RuntimeError('invalid_state', `container ${c.config.name} has not been started`);
      case 'running':
        return c.state.exited;
      case 'exited':
        return c.state.exit;
    }
  }

  async stop(id: string, graceMs: number): Promise<void> {
    assert(Number.isFinite(graceMs) && graceMs >= 0, `graceMs ${graceMs}`);
    const c = this.get(id);
    if (c.state.kind !== 'running') return;
    c.stopping ??= this.stopRunning(c, c.state, graceMs).finally(() => {
      c.stopping = null;
    });
    return c.stopping;
  }

  private async stopRunning(c: Container, running: Extract<ContainerState, { kind: 'running' }>, graceMs: number): Promise<void> {
    const signal = parseStopSignal(c.config.stopSignal);
    assert(signal !== null, 'prepare checked the stop signal');
    const pgid = running.pid;
    this.signalGroup(pgid, signal);
    const kill = setTimeout(() => {
      this.log.info({ task: c.config.id, graceMs }, 'task did not stop within its grace period; killing it');
      this.signalGroup(pgid, 'SIGKILL');
    }, graceMs);
    try {
      await running.exited;
    } finally {
      clearTimeout(kill);
    }
    // Whatever the main process left behind in its group (background children) goes with it.
    this.signalGroup(pgid, 'SIGKILL');
  }

  /** Only ever a group this runtime created: its leader is a child we spawned detached. */
  private signalGroup(pgid: number, signal: NodeJS.Signals): void {
    assert(Number.isInteger(pgid) && pgid > 1, `pgid ${pgid}`);
    try {
      process.kill(-pgid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }

  async remove(id: string): Promise<void> {
    const c = this.containers.get(id);
    if (c === undefined) return;
    if (c.state.kind === 'running') throw new RuntimeError('invalid_state', `container ${c.config.name} is running: stop it before removing it`);
    this.containers.delete(id);
    rmSync(c.workDir, { recursive: true, force: true });
    if (c.filesDir !== null) unmountTaskFiles(c.filesDir);
    if (c.state.kind === 'exited') this.keepLog(id);
    else removeLogFiles(c.logPath);
    this.log.debug({ task: id }, 'removed');
  }

  async *logs(id: string, opts: LogOptions): AsyncGenerator<LogLine> {
    if (opts.tail !== undefined) assert(Number.isInteger(opts.tail), `tail ${opts.tail}`);
    const c = this.containers.get(id);
    if (c === undefined && !this.keptLogs.includes(id)) throw new RuntimeError('not_found', `no such task: ${id}`);
    const writer = c?.writer ?? null;
    if (opts.follow === true && writer !== null && !writer.isEnded) {
      yield* followLog(writer, opts.tail, opts.signal);
      return;
    }
    const path = c?.logPath ?? join(this.logsDir, `${id}.log`);
    for (const l of await readSnapshot(snapshotFiles(path), opts.tail)) {
      if (opts.signal?.aborted === true) return;
      yield l;
    }
  }

  async list(): Promise<string[]> {
    return [...this.containers.keys()];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const running = [...this.containers.values()].filter((c) => c.state.kind === 'running');
    await Promise.all(running.map((c) => this.stop(c.config.id, Math.min(c.config.stopGracePeriodMs, MAX_CLOSE_GRACE_MS))));
    this.log.debug({ stopped: running.length }, 'closed');
  }

  /** Kills the process groups an earlier run started here, each only if its leader is provably the same process. */
  private killLeftovers(): void {
    let dirs: string[];
    try {
      dirs = readdirSync(this.tasksDir);
    } catch {
      return; // first start on this rootDir
    }
    for (const id of dirs) {
      const rec = readProcessRecord(join(this.tasksDir, id, PROCESS_FILE));
      if (rec === null || !isContainerId(id)) continue;
      if (processStartTime(rec.pid) !== rec.startTime || !hasTaskMarker(rec.pid, id)) continue;
      this.log.warn({ task: id, pid: rec.pid }, 'killing a task process left by an earlier daemon');
      try {
        this.signalGroup(rec.pid, 'SIGKILL');
      } catch (err) {
        this.log.error({ task: id, pid: rec.pid, err: (err as Error).message }, 'could not kill a leftover task process');
      }
    }
  }

  private get(id: string): Container {
    const c = this.containers.get(id);
    if (c === undefined) throw new RuntimeError('not_found', `no such task: ${id}`);
    return c;
  }

  private checkOpen(): void {
    if (this.closed) throw new RuntimeError('closed', 'the runtime is shut down (the daemon is stopping)');
  }

  private keepLog(id: string): void {
    this.forgetKeptLog(id);
    this.keptLogs.push(id);
    while (this.keptLogs.length > this.maxKeptLogs) {
      const oldest = this.keptLogs.shift();
      if (oldest !== undefined) removeLogFiles(join(this.logsDir, `${oldest}.log`));
    }
  }

  private forgetKeptLog(id: string): void {
    const at = this.keptLogs.indexOf(id);
    if (at >= 0) this.keptLogs.splice(at, 1);
  }
}
