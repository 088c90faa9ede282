// What every leader loop of this package is: a function of a store snapshot and the time to the ops of one
// transaction. The daemon's reconcile loop runs them in order and proposes their ops through Raft.

import type { Op, Store } from '@swarm/store';

export interface Reconciler {
  name: string;
  run(store: Store, nowMs: number): Op[];
}

export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`manager invariant: ${msg}`);
}
