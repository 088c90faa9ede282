// The runc runtime: a task is an OCI container (its own pid, mount, ipc and uts namespaces, cgroup v1 limits,
// Docker's capabilities and seccomp defaults) on an overlayfs of its image's layers. Each container runs under
// conmon (Debian's, the monitor podman and CRI-O use): conmon holds the container's output and writes its log,
// its exit code and OOM mark, so containers and their logs outlive a daemon crash; a new daemon adopts them.
//
// On disk, under rootDir: containers/<id>/ (bundle: config.json, rootfs overlay mountpoint, upper/, work/, etc/,
// persist/ for conmon's exit and oom files, meta.json), state/ (runc --root), exits/<id> (conmon's exit file),
// logs/<id>.log (kept after remove, the oldest deleted past a bound), sock/ (conmon's attach sockets), secrets/<id>
// (a tmpfs with the task's secrets and configs, bind-mounted read-only file by file into the container).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '@swarm/wire';
import { readCriLog } from './cri-log.js';
import { buildSpec, hostsFile, ociSpecJson } from './oci-spec.js';
import { checkUlimits, readHostLimits, type HostLimits } from './rlimits.js';
import {
  isContainerId,
  MAX_EXEC_OUTPUT_BYTES,
  RuntimeError,
  type ContainerConfig,
  type ContainerStats,
  type ExecResult,
  type ExitStatus,
  type ImageProvider,
  type LogLine,
  type LogOptions,
  type Runtime,
  type VolumeProvider,
} from './runtime.js';
import { parseStopSignal } from './process-runtime.js';
import { constants as osConstants } from 'node:os';
import { readProcStat } from './proc-stat.js';
import { isMountPoint, mountTaskFiles, unmountTaskFiles } from './task-files.js';

export const DEFAULT_RUNC = '/usr/sbin/runc';
export const DEFAULT_CONMON = '/usr/bin/conmon';
export const DEFAULT_TINI = '/usr/bin/tini-static';
/** conmon starts a container's log afresh at this size (Docker's json-file with max-file=1). */
export const DEFAULT_RUNC_LOG_BYTES = 10 * 1024 * 1024;
/** Logs of removed containers kept for `service logs` of dead tasks. */
const MAX_KEPT_LOGS = 256;
/** conmon answers on its sync pipe once `runc create` is done; far longer means something is wrong. */
const CREATE_TIMEOUT_MS = 30_000;
/** Exit files are watched; this poll only covers a missed filesystem event. */
const EXIT_POLL_MS = 1_000;
const CGROUP_ROOT = '/sys/fs/cgroup';

export interface RuncRuntimeOptions {
  rootDir: string;
  images: ImageProvider;
  volumes: VolumeProvider;
  logger: Logger;
  runcPath?: string;
  conmonPath?: string;
  tiniPath?: string;
  maxLogFileBytes?: number;
  /** The daemon's own limits, that a task's ulimits are checked against (runc's init inherits them); default: /proc/self. */
  hostLimits?: () => HostLimits;
}

/** What a container dir records about itself, so a new daemon knows what it made. */
interface Meta {
  config: ContainerConfig;
  stopSignal: string;
  started: boolean;
}

interface Container {
  readonly id: string;
  readonly dir: string;
  meta: Meta;
  /** Set once its exit is known. */
  exit: ExitStatus | null;
  exited: Promise<ExitStatus>;
  resolveExit: (e: ExitStatus) => void;
  conmon: ChildProcess | null;
  /** The conmon of a container adopted from an earlier daemon (not our child): watched by the poll. */
  monitor: ProcessIdentity | null;
}

/** A process by pid and its start time (so a reused pid is not taken for it). */
interface ProcessIdentity {
  pid: number;
  startTime: number;
}

function alive(p: ProcessIdentity): boolean {
  return readProcStat(p.pid)?.startTime === p.startTime;
}

function run(file: string, args: readonly string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, [...args], { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

function signalName(exitCode: number): string | null {
  if (exitCode <= 128 || exitCode > 128 + 64) return null;
  const n = exitCode - 128;
  return Object.entries(osConstants.signals).find(([, num]) => num === n)?.[0] ?? null;
}

export class RuncRuntime implements Runtime {
  readonly name = 'runc' as const;
  private readonly rootDir: string;
  private readonly images: ImageProvider;
  private readonly volumes: VolumeProvider;
  private readonly log: Logger;
  private readonly runc: string;
  private readonly conmon: string;
  private readonly tini: string;
  private readonly maxLogBytes: number;
  private readonly hostLimits: () => HostLimits;
  private readonly containers = new Map<string, Container>();
  private readonly preparing = new Map<string, Promise<void>>();
  private watcher: FSWatcher | null = null;
  private poll: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(opts: RuncRuntimeOptions) {
    this.rootDir = opts.rootDir;
    this.images = opts.images;
    this.volumes = opts.volumes;
    this.log = opts.logger;
    this.runc = opts.runcPath ?? DEFAULT_RUNC;
    this.conmon = opts.conmonPath ?? DEFAULT_CONMON;
    this.tini = opts.tiniPath ?? DEFAULT_TINI;
    this.maxLogBytes = opts.maxLogFileBytes ?? DEFAULT_RUNC_LOG_BYTES;
    this.hostLimits = opts.hostLimits ?? readHostLimits;
    for (const d of ['containers', 'state', 'exits', 'logs', 'sock', 'secrets']) mkdirSync(join(this.rootDir, d), { recursive: true, mode: 0o700 });
  }

  private path(...parts: string[]): string {
    return join(this.rootDir, ...parts);
  }

  private runcArgs(...args: string[]): string[] {
    return ['--root', this.path('state'), ...args];
  }

  private check(): void {
    if (this.closed) throw new RuntimeError('closed', 'the runc runtime is closed');
  }

  private get(id: string): Container {
    this.check();
    const c = this.containers.get(id);
    if (c === undefined) throw new RuntimeError('not_found', `no such container: ${id}`);
    return c;
  }

  /**
   * Takes over what an earlier daemon left: running containers are watched again, ended ones report their exit,
   * containers made but never started (and anything half-made) are torn down. Call once, before anything else.
   */
  async recover(): Promise<void> {
    this.startExitWatch();
    for (const id of readdirSync(this.path('containers'))) {
      const dir = this.path('containers', id);
      let meta: Meta;
      try {
        meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as Meta;
      } catch {
        await this.teardown(id, dir);
        continue;
      }
      if (!meta.started) {
        await this.teardown(id, dir);
        continue;
      }
      const c = this.track(id, dir, meta);
      const exit = this.readExit(id);
      if (exit !== null) this.settle(c, exit);
      else await this.adopt(c);
      this.log.info({ container: id, running: c.exit === null }, 'container from an earlier run found');
    }
  }

  private track(id: string, dir: string, meta: Meta): Container {
    let resolveExit: (e: ExitStatus) => void = () => undefined;
    const exited = new Promise<ExitStatus>((r) => (resolveExit = r));
    const c: Container = { id, dir, meta, exit: null, exited, resolveExit, conmon: null, monitor: null };
    this.containers.set(id, c);
    return c;
  }

  private settle(c: Container, exit: ExitStatus): void {
    if (c.exit !== null) return;
    c.exit = exit;
    c.resolveExit(exit);
  }

  /** conmon's exit file: the exit code (128+N for a signal), with the OOM mark from its persist dir. */
  private readExit(id: string): ExitStatus | null {
    let text: string;
    try {
      text = readFileSync(this.path('exits', id), 'utf8').trim();
    } catch {
      return null;
    }
    const exitCode = Number(text);
    if (!Number.isInteger(exitCode)) return null;
    const oomKilled = existsSync(this.path('containers', id, 'persist', 'oom'));
    return { exitCode, signal: signalName(exitCode), ...(oomKilled ? { oomKilled: true } : {}) };
  }

  /** runc's status of a container ('created', 'running', 'paused', 'stopped'), or null when runc has none. */
  private async runcStatus(id: string): Promise<string | null> {
    const r = await run(this.runc, this.runcArgs('state', id));
    if (r.code !== 0) return null;
    try {
      return (JSON.parse(r.stdout) as { status?: string }).status ?? null;
    } catch {
      return null;
    }
  }

  /**
   * A started container of an earlier daemon without an exit file: watched again if it runs under its conmon.
   * One the daemon died starting (created, never started) is started now, as it was asked to be.
   */
  private async adopt(c: Container): Promise<void> {
    let status = await this.runcStatus(c.id);
    if (status === 'created') {
      const started = await run(this.runc, this.runcArgs('start', c.id));
      if (started.code !== 0) this.log.warn({ container: c.id, err: started.stderr.trim() }, 'starting a container left created failed');
      status = await this.runcStatus(c.id);
    }
    if (status !== 'running' && status !== 'paused') {
      // Gone with no exit file (a reboot, or its monitor was killed too): how it ended is not known.
      this.settle(c, this.readExit(c.id) ?? { exitCode: 255, signal: null });
      return;
    }
    // conmon is the container's parent (it reaps it and writes the exit file): watch it by pid and start time.
    let initPid = NaN;
    try {
      initPid = Number(readFileSync(join(c.dir, 'pid'), 'utf8').trim());
    } catch {
      // no pid file: treated as a container without its monitor
    }
    const init = Number.isInteger(initPid) ? readProcStat(initPid) : null;
    const parent = init === null ? null : readProcStat(init.ppid);
    if (init !== null && parent !== null && parent.comm === 'conmon') c.monitor = { pid: init.ppid, startTime: parent.startTime };
    else await this.monitorLost(c);
  }

  /** Nothing will record the container's exit or its output any more: it is killed and reported ended. */
  private async monitorLost(c: Container): Promise<void> {
    c.monitor = null;
    const exit = this.readExit(c.id);
    if (exit !== null) return this.settle(c, exit);
    if (c.exit !== null) return;
    this.log.warn({ container: c.id }, 'the container\'s conmon is gone without recording an exit: killing the container');
    await run(this.runc, this.runcArgs('kill', '--all', c.id, 'KILL'));
    this.settle(c, { exitCode: 255, signal: null });
  }

  /** One watch on the exit dir for every container; a slow poll behind it in case an event is missed. */
  private startExitWatch(): void {
    if (this.watcher !== null) return;
    const onExit = (id: string): void => {
      const c = this.containers.get(id);
      if (c === undefined || c.exit !== null) return;
      const exit = this.readExit(id);
      if (exit !== null) this.settle(c, exit);
    };
    this.watcher = watch(this.path('exits'), (_event, name) => {
      if (typeof name === 'string') onExit(name);
    });
    this.watcher.on('error', (err) => this.log.warn({ err: err.message }, 'watching exit files failed; polling only'));
    this.poll = setInterval(() => {
      for (const c of this.containers.values()) {
        if (!c.meta.started || c.exit !== null) continue;
        onExit(c.id);
        if (c.exit === null && c.monitor !== null && !alive(c.monitor)) void this.monitorLost(c);
      }
    }, EXIT_POLL_MS);
    this.poll.unref();
  }

  async prepare(config: ContainerConfig): Promise<void> {
    this.check();
    if (!isContainerId(config.id)) throw new RuntimeError('invalid_config', `invalid container id ${JSON.stringify(config.id)}`);
    if (this.containers.has(config.id)) return;
    const inFlight = this.preparing.get(config.id);
    if (inFlight !== undefined) return inFlight;
    const p = this.doPrepare(config).finally(() => this.preparing.delete(config.id));
    this.preparing.set(config.id, p);
    return p;
  }

  private async doPrepare(config: ContainerConfig): Promise<void> {
    this.startExitWatch();
    const stopSignal = parseStopSignal(config.stopSignal);
    if (stopSignal === null) throw new RuntimeError('invalid_config', `invalid stop signal ${JSON.stringify(config.stopSignal)}`);
    // Before the pull: a limit runc's init could not set (it would fail with a bare EPERM) is refused by name.
    if (config.ulimits.length > 0) checkUlimits(config.ulimits, this.hostLimits());
    const image = await this.images.ensure(config.image, config.registryAuth === null ? {} : { credentials: config.registryAuth });
    const volumes = new Map<string, string>();
    for (const m of config.mounts) {
      if (m.type === 'volume') volumes.set(m.source, await this.volumes.ensure(m.source));
      if (m.type === 'bind' && !existsSync(m.source)) throw new RuntimeError('invalid_config', `bind source path does not exist: ${m.source}`);
    }
    const dir = this.path('containers', config.id);
    const rootfs = join(dir, 'rootfs');
    for (const d of ['rootfs', 'upper', 'work', 'etc', 'persist']) mkdirSync(join(dir, d), { recursive: true, mode: 0o755 });
    try {
      // overlayfs wants the top layer first.
      const lower = [...image.layerDirs].reverse().join(':');
      const mount = await run('/bin/mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`, rootfs]);
      if (mount.code !== 0) throw new RuntimeError('start_failed', `could not mount the image's layers for ${config.image}: ${mount.stderr.trim()}`);
      const read = (p: string): string => {
        try {
          return readFileSync(join(rootfs, p), 'utf8');
        } catch {
          return '';
        }
      };
      // Secrets and configs: on the task's own tmpfs, one file per entry (named by position, not by secret name).
      const sources = config.files.length === 0 ? [] : mountTaskFiles(this.path('secrets', config.id), config.files, (_f, i) => String(i));
      const paths = {
        hosts: join(dir, 'etc', 'hosts'),
        hostname: join(dir, 'etc', 'hostname'),
        resolvConf: join(dir, 'etc', 'resolv.conf'),
        volumes,
        init: this.tini,
        files: config.files.map((f, i) => ({ target: f.target, source: sources[i] ?? '' })),
      };
      // The image's stop signal when the service gives none.
      const spec = buildSpec({ ...config, stopSignal: config.stopSignal !== '' ? config.stopSignal : image.config.stopSignal }, image.config, { passwd: read('etc/passwd'), group: read('etc/group') }, paths);
      writeFileSync(paths.hosts, hostsFile(config.hostname, config.extraHosts));
      writeFileSync(paths.hostname, `${config.hostname}\n`);
      writeFileSync(paths.resolvConf, config.resolvConf ?? readHostResolvConf());
      writeFileSync(join(dir, 'config.json'), ociSpecJson(spec));
      const imageSignal = parseStopSignal(image.config.stopSignal) ?? 'SIGTERM';
      // The registry login stays out of the files on disk.
      // Nor do the secrets' and configs' bytes: they live on the tmpfs only.
      const meta: Meta = { config: { ...config, registryAuth: null, files: [] }, stopSignal: config.stopSignal !== '' ? stopSignal : imageSignal, started: false };
      writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta));
      this.track(config.id, dir, meta);
    } catch (err) {
      await this.teardown(config.id, dir);
      throw err;
    }
  }

  async start(id: string): Promise<{ pid: number }> {
    const c = this.get(id);
    if (c.meta.started) throw new RuntimeError('invalid_state', `container ${id} was started already`);
    c.meta.started = true;
    writeFileSync(join(c.dir, 'meta.json'), JSON.stringify(c.meta));
    rmSync(this.path('exits', id), { force: true });
    const logPath = this.path('logs', `${id}.log`);
    rmSync(logPath, { force: true });
    const args = [
      '--sync', '--api-version', '1', '-c', id, '-u', id, '-n', c.meta.config.name,
      '-r', this.runc, '-b', c.dir, '-p', join(c.dir, 'pid'),
      '--exit-dir', this.path('exits'), '--persist-dir', join(c.dir, 'persist'),
      '-l', `k8s-file:${logPath}`, '--log-size-max', String(this.maxLogBytes),
      '--socket-dir-path', this.path('sock'),
      '--runtime-arg', '--root', '--runtime-arg', this.path('state'),
    ];
    // Its own session, so a daemon that dies (or is killed with its process group) leaves it running.
    // Its working dir is the container's: conmon drops an `oom` mark there too, and that goes with the container.
    const child = spawn(this.conmon, args, { cwd: c.dir, detached: true, stdio: ['ignore', 'ignore', 'pipe', 'pipe'], env: { ...process.env, _OCI_SYNCPIPE: '3' } });
    c.conmon = child;
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString('utf8')).slice(-4096)));
    let createdOk = false;
    child.on('exit', () => {
      c.conmon = null;
      const exit = this.readExit(id);
      if (exit !== null) this.settle(c, exit);
      // Gone without an exit file after the container was made: it was killed (before that, the sync answer says why).
      else if (createdOk) void this.monitorLost(c);
    });
    child.unref();
    const created = await new Promise<{ pid: number; message: string }>((resolve) => {
      let buf = '';
      const timer = setTimeout(() => resolve({ pid: -1, message: `conmon did not report within ${CREATE_TIMEOUT_MS} ms` }), CREATE_TIMEOUT_MS);
      const sync = child.stdio[3] as NodeJS.ReadableStream | null;
      sync?.on('data', (d: Buffer) => {
        buf += d.toString('utf8');
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        try {
          const msg = JSON.parse(buf.slice(0, nl)) as { data?: number; message?: string };
          resolve({ pid: msg.data ?? -1, message: msg.message ?? '' });
        } catch {
          resolve({ pid: -1, message: buf.slice(0, nl) });
        }
      });
      child.once('exit', () => {
        clearTimeout(timer);
        resolve({ pid: -1, message: stderr.trim() });
      });
    });
    (child.stdio[3] as NodeJS.ReadableStream & { destroy?: () => void } | null)?.destroy?.();
    createdOk = created.pid > 0;
    if (created.pid <= 0) {
      this.settle(c, { exitCode: 128, signal: null });
      throw new RuntimeError('start_failed', `the container could not be created: ${created.message || 'runc failed'}`);
    }
    const started = await run(this.runc, this.runcArgs('start', id));
    if (started.code !== 0) {
      await run(this.runc, this.runcArgs('kill', id, 'KILL'));
      throw new RuntimeError('start_failed', `the container could not start: ${started.stderr.trim()}`);
    }
    return { pid: created.pid };
  }

  async wait(id: string): Promise<ExitStatus> {
    const c = this.get(id);
    if (!c.meta.started) throw new RuntimeError('invalid_state', `container ${id} was not started`);
    return c.exited;
  }

  async stop(id: string, graceMs: number): Promise<void> {
    const c = this.get(id);
    if (!c.meta.started || c.exit !== null) return;
    await run(this.runc, this.runcArgs('kill', id, c.meta.stopSignal.replace(/^SIG/, '')));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([c.exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
    clearTimeout(timer);
    if (timedOut) await run(this.runc, this.runcArgs('kill', '--all', id, 'KILL'));
    await c.exited;
  }

  async remove(id: string): Promise<void> {
    this.check();
    const c = this.containers.get(id);
    if (c === undefined) return;
    if (c.meta.started && c.exit === null) throw new RuntimeError('invalid_state', `container ${id} is running: stop it first`);
    this.containers.delete(id);
    await this.teardown(id, c.dir);
    this.pruneLogs();
  }

  /** Deletes the runc container, unmounts the rootfs and removes the container's files (not its log). */
  private async teardown(id: string, dir: string): Promise<void> {
    if (existsSync(this.path('state', id))) {
      const del = await run(this.runc, this.runcArgs('delete', '--force', id));
      if (del.code !== 0 && existsSync(this.path('state', id))) this.log.warn({ container: id, err: del.stderr.trim() }, 'runc delete failed');
    }
    const rootfs = join(dir, 'rootfs');
    if (isMountPoint(rootfs)) {
      const um = await run('/bin/umount', [rootfs]);
      if (um.code !== 0) await run('/bin/umount', ['-l', rootfs]);
    }
    rmSync(dir, { recursive: true, force: true });
    rmSync(this.path('exits', id), { force: true });
    unmountTaskFiles(this.path('secrets', id));
  }

  private pruneLogs(): void {
    const live = new Set(this.containers.keys());
    const logs = readdirSync(this.path('logs'))
      .filter((n) => n.endsWith('.log') && !live.has(n.slice(0, -4)))
      .map((n) => ({ n, t: statSync(this.path('logs', n)).mtimeMs }))
      .sort((a, b) => a.t - b.t);
    for (const { n } of logs.slice(0, Math.max(0, logs.length - MAX_KEPT_LOGS))) rmSync(this.path('logs', n), { force: true });
  }

  logs(id: string, opts: LogOptions): AsyncIterable<LogLine> {
    this.check();
    const path = this.path('logs', `${id}.log`);
    const c = this.containers.get(id);
    if (c === undefined && !existsSync(path)) throw new RuntimeError('not_found', `no such container: ${id}`);
    // Like the process runtime: following a container that has not started ends at once.
    return readCriLog(path, opts, () => c === undefined || !c.meta.started || c.exit !== null);
  }

  async exec(id: string, argv: readonly string[], opts: { timeoutMs: number }): Promise<ExecResult> {
    const c = this.get(id);
    if (!c.meta.started || c.exit !== null) throw new RuntimeError('invalid_state', `container ${id} is not running`);
    const pidFile = join(c.dir, `exec-${process.hrtime.bigint()}.pid`);
    return await new Promise<ExecResult>((resolve) => {
      const child = spawn(this.runc, this.runcArgs('exec', '--pid-file', pidFile, id, ...argv), { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      const take = (b: Buffer): void => {
        if (output.length < MAX_EXEC_OUTPUT_BYTES) output = (output + b.toString('utf8')).slice(0, MAX_EXEC_OUTPUT_BYTES);
      };
      child.stdout.on('data', take);
      child.stderr.on('data', take);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        void killExec(pidFile, child);
      }, opts.timeoutMs);
      child.on('close', (code) => {
        clearTimeout(timer);
        rmSync(pidFile, { force: true });
        resolve({ exitCode: timedOut ? -1 : (code ?? -1), output, timedOut });
      });
    });
  }

  async stats(id: string): Promise<ContainerStats> {
    const c = this.get(id);
    if (!c.meta.started || c.exit !== null) throw new RuntimeError('invalid_state', `container ${id} is not running`);
    const read = (controller: string, file: string): number => {
      try {
        return Number(readFileSync(join(CGROUP_ROOT, controller, 'swarm', id, file), 'utf8').trim());
      } catch {
        return 0;
      }
    };
    return { cpuNanos: read('cpuacct', 'cpuacct.usage'), memoryBytes: read('memory', 'memory.usage_in_bytes') };
  }

  async list(): Promise<string[]> {
    this.check();
    return [...this.containers.keys()];
  }

  /** Stops watching; containers keep running (a daemon restart adopts them). destroyAll() removes them. */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.preparing.values()]);
    this.closed = true;
    this.watcher?.close();
    this.watcher = null;
    if (this.poll !== null) clearInterval(this.poll);
  }

  /** Stops (SIGKILL) and removes every container this runtime holds; for tests and teardown. */
  async destroyAll(): Promise<void> {
    for (const c of [...this.containers.values()]) {
      if (c.meta.started && c.exit === null) {
        await run(this.runc, this.runcArgs('kill', '--all', c.id, 'KILL'));
        await Promise.race([c.exited, new Promise((r) => setTimeout(r, 5_000).unref())]);
      }
      this.containers.delete(c.id);
      await this.teardown(c.id, c.dir);
    }
  }
}

/** How long a timed-out exec may take to show its pid file (runc writes it as the command starts). */
const EXEC_PID_WAIT_MS = 2_000;

/**
 * Kills a timed-out exec'd command and whatever it started. The command runs inside the container, not under
 * runc; runc makes it a session leader, so its process group holds its children too. runc reaps it and exits.
 */
async function killExec(pidFile: string, runc: ChildProcess): Promise<void> {
  const deadline = Date.now() + EXEC_PID_WAIT_MS;
  let pid = NaN;
  while (runc.exitCode === null && runc.signalCode === null) {
    pid = Number(existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : NaN);
    if (Number.isInteger(pid) && pid > 0) break;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  if (Number.isInteger(pid) && pid > 0) {
    // Only a group it leads: a command that is not one shares a group with runc's own (never ours to kill).
    const target = readProcStat(pid)?.pgrp === pid ? -pid : pid;
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // already gone
    }
  } else {
    runc.kill('SIGKILL');
  }
}

function readHostResolvConf(): string {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return '';
  }
}

/**
 * Everything a runc runtime left under `rootDir` (a daemon that is gone for good: a lab host being removed):
 * containers killed, deleted from runc, their overlays unmounted, their files removed. Needs no image store.
 */
export async function destroyRuncRoot(rootDir: string, logger: Logger): Promise<void> {
  if (!existsSync(join(rootDir, 'containers'))) return;
  const unused = async (): Promise<never> => {
    throw new RuntimeError('closed', 'destroyRuncRoot makes no containers');
  };
  const rt = new RuncRuntime({ rootDir, images: { ensure: unused }, volumes: { ensure: unused }, logger });
  try {
    await rt.recover();
    await rt.destroyAll();
  } finally {
    await rt.close();
  }
}
