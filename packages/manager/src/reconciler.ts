// What every leader loop of this package is: a function of a store snapshot and the time to the ops of one
// transaction. The daemon's reconcile loop runs them in order and proposes their ops through Raft.

import type { Op, ReadTx, Service, Store } from '@swarm/store';

export interface Reconciler {
  name: string;
  run(store: Store, nowMs: number): Op[];
}

export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`manager invariant: ${msg}`);
}

/** A reconciler that takes one service at a time, in id order (the updater, the rebalancer). */
export function perService(name: string, step: (tx: ReadTx, service: Service, nowMs: number) => Op[]): Reconciler {
  return {
    name,
    run: (store: Store, nowMs: number) =>
      store.view((tx) =>
        tx
          .list('service')
          .sort((a, b) => (a.id < b.id ? -1 : 1))
          .flatMap((s) => step(tx, s, nowMs)),
      ),
  };
}
