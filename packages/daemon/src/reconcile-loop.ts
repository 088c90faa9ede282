// Runs the leader's reconcilers (orchestrators, scheduler, task reaper) whenever the store changed, and on a slow
// beat for time-based rules (restart delays); each returns the ops of one transaction, proposed through Raft.

import type { Reconciler } from '@swarm/manager';
import type { Op, Store } from '@swarm/store';
import type { Logger } from '@swarm/wire';

export type { Reconciler };

export interface ReconcileLoopDeps {
  store: Store;
  isLeader(): boolean;
  appliedIndex(): number;
  reconcilers: readonly Reconciler[];
  propose(ops: Op[]): Promise<number>;
  /** After every store change, leader or not (the dispatcher pushes assignment sets, or redirects off-lead). */
  onChange(): void;
  logger: Logger;
}

const POLL_MS = 25;
/** Time-based rules (restart delay) are looked at at least this often even when nothing changes. */
const IDLE_PASS_MS = 500;
/** Ops per proposed transaction: a huge plan goes in several commits. */
const MAX_OPS_PER_PROPOSAL = 5_000;
const FAILURE_BACKOFF_MS = 200;

export class ReconcileLoop {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private seenIndex = -1;
  private wasLeader = false;
  private lastPassMs = 0;
  private backoffUntilMs = 0;

  constructor(private readonly deps: ReconcileLoopDeps) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), POLL_MS);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    const index = this.deps.appliedIndex();
    const leader = this.deps.isLeader();
    const nowMs = Date.now();
    const changed = index !== this.seenIndex || leader !== this.wasLeader;
    if (!changed && nowMs - this.lastPassMs < IDLE_PASS_MS) return;
    this.seenIndex = index;
    this.wasLeader = leader;
    this.lastPassMs = nowMs;
    this.deps.onChange();
    if (!leader || nowMs < this.backoffUntilMs) return;
    this.running = true;
    try {
      await this.pass(nowMs);
    } finally {
      this.running = false;
    }
  }

  /** Each reconciler sees the store as the previous one left it (its ops committed before the next runs). */
  private async pass(nowMs: number): Promise<void> {
    for (const r of this.deps.reconcilers) {
      if (!this.deps.isLeader()) return;
      let ops: Op[];
      try {
        ops = r.run(this.deps.store, nowMs);
      } catch (err) {
        this.deps.logger.error({ err, reconciler: r.name }, 'a reconciler failed');
        this.backoffUntilMs = Date.now() + FAILURE_BACKOFF_MS;
        return;
      }
      for (let i = 0; i < ops.length; i += MAX_OPS_PER_PROPOSAL) {
        try {
          await this.deps.propose(ops.slice(i, i + MAX_OPS_PER_PROPOSAL));
        } catch (err) {
          // A version race with another writer (an agent's status) is normal: the next pass re-reads.
          this.deps.logger.debug({ err: (err as Error).message, reconciler: r.name }, 'reconciler writes not committed; retrying');
          this.backoffUntilMs = Date.now() + FAILURE_BACKOFF_MS;
          this.seenIndex = -1;
          return;
        }
      }
      if (ops.length > 0) this.deps.logger.debug({ reconciler: r.name, ops: ops.length }, 'reconciler wrote');
    }
  }
}
