// An in-memory Runtime for agent tests: records every call, lets a test script failures and slow starts, and
// lets it end a task's "process" with any exit code.

import { RuntimeError, type ContainerConfig, type ContainerStats, type ExecResult, type ExitStatus, type LogLine, type LogOptions, type Runtime } from '@swarm/runtime';

interface FakeContainer {
  config: ContainerConfig;
  state: 'prepared' | 'running' | 'exited';
  exit: Promise<ExitStatus>;
  resolveExit: (e: ExitStatus) => void;
  /** Ignores the stop signal: only the kill after the grace period ends it. */
  stubborn: boolean;
}

export interface Script {
  prepareError?: RuntimeError;
  startError?: RuntimeError;
  /** start() waits for this before it returns. */
  startGate?: Promise<void>;
  stubborn?: boolean;
  removeError?: RuntimeError;
}

export class FakeRuntime implements Runtime {
  readonly name = 'process' as const;
  readonly calls: string[] = [];
  readonly stopGraces = new Map<string, number>();
  readonly containers = new Map<string, FakeContainer>();
  readonly scripts = new Map<string, Script>();
  startsInFlight = 0;
  maxStartsInFlight = 0;
  private nextPid = 1000;

  async prepare(config: ContainerConfig): Promise<void> {
    this.calls.push(`prepare:${config.id}`);
    const script = this.scripts.get(config.id);
    if (script?.prepareError !== undefined) throw script.prepareError;
    if (this.containers.has(config.id)) return;
    let resolveExit: (e: ExitStatus) => void = () => undefined;
    const exit = new Promise<ExitStatus>((r) => (resolveExit = r));
    this.containers.set(config.id, { config, state: 'prepared', exit, resolveExit, stubborn: script?.stubborn ?? false });
  }

  async start(id: string): Promise<{ pid: number }> {
    this.calls.push(`start:${id}`);
    const c = this.containers.get(id);
    if (c === undefined) throw new RuntimeError('not_found', `no such task: ${id}`);
    if (c.state !== 'prepared') throw new RuntimeError('invalid_state', `started twice: ${id}`);
    this.startsInFlight++;
    this.maxStartsInFlight = Math.max(this.maxStartsInFlight, this.startsInFlight);
    try {
      const script = this.scripts.get(id);
      if (script?.startGate !== undefined) await script.startGate;
      if (script?.startError !== undefined) throw script.startError;
      c.state = 'running';
      return { pid: this.nextPid++ };
    } finally {
      this.startsInFlight--;
    }
  }

  /** What the next exec (health check) in a container returns; exit 0 when the test sets nothing. */
  readonly execResults = new Map<string, ExecResult[]>();

  async exec(id: string, argv: readonly string[]): Promise<ExecResult> {
    this.calls.push(`exec:${id}:${argv.join(' ')}`);
    const c = this.containers.get(id);
    if (c === undefined || c.state !== 'running') throw new RuntimeError('invalid_state', `not running: ${id}`);
    return this.execResults.get(id)?.shift() ?? { exitCode: 0, output: '', timedOut: false };
  }

  async stats(id: string): Promise<ContainerStats> {
    const c = this.containers.get(id);
    if (c === undefined || c.state !== 'running') throw new RuntimeError('invalid_state', `not running: ${id}`);
    return { cpuNanos: 0, memoryBytes: 0 };
  }

  async wait(id: string): Promise<ExitStatus> {
    const c = this.containers.get(id);
    if (c === undefined) throw new RuntimeError('not_found', `no such task: ${id}`);
    return c.exit;
  }

  /** The test ends a running task's process. */
  exit(id: string, exitCode: number, signal: string | null = null, oomKilled = false): void {
    const c = this.containers.get(id);
    if (c === undefined || c.state !== 'running') throw new Error(`fake: ${id} is not running`);
    c.state = 'exited';
    c.resolveExit({ exitCode, signal, ...(oomKilled ? { oomKilled } : {}) });
  }

  async stop(id: string, graceMs: number): Promise<void> {
    this.calls.push(`stop:${id}`);
    this.stopGraces.set(id, graceMs);
    const c = this.containers.get(id);
    if (c === undefined) throw new RuntimeError('not_found', `no such task: ${id}`);
    if (c.state !== 'running') return;
    c.state = 'exited';
    c.resolveExit(c.stubborn ? { exitCode: 137, signal: 'SIGKILL' } : { exitCode: 143, signal: 'SIGTERM' });
    await c.exit;
  }

  async remove(id: string): Promise<void> {
    this.calls.push(`remove:${id}`);
    const script = this.scripts.get(id);
    if (script?.removeError !== undefined) throw script.removeError;
    const c = this.containers.get(id);
    if (c === undefined) return;
    if (c.state === 'running') throw new RuntimeError('invalid_state', `remove of running ${id}`);
    this.containers.delete(id);
  }

  async *logs(id: string, _opts: LogOptions): AsyncGenerator<LogLine> {
    if (!this.containers.has(id)) throw new RuntimeError('not_found', `no such task: ${id}`);
    yield { stream: 'stdout', timestampMs: 1, line: `log of ${id}` };
  }

  async list(): Promise<string[]> {
    return [...this.containers.keys()];
  }

  async close(): Promise<void> {
    for (const [id, c] of this.containers) if (c.state === 'running') await this.stop(id, 0);
  }

  count(call: string): number {
    return this.calls.filter((c) => c === call).length;
  }
}
