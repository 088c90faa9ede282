// The Store as Raft's state machine: committed entries are store transactions; snapshots are store images.
// The bootstrap snapshot carries no image (empty bytes): that means an empty store.

import type { StateMachine } from 'raft-consensus-ts';
import { Store, type ApplyResult } from '@swarm/store';

const EMPTY_STORE_IMAGE = new Store().snapshot();

export class StoreStateMachine implements StateMachine<ApplyResult> {
  constructor(readonly store: Store) {}

  apply(data: Uint8Array, index: number): ApplyResult {
    return this.store.apply(index, data);
  }

  snapshot(): Uint8Array {
    return this.store.snapshot();
  }

  restore(data: Uint8Array): void {
    this.store.restore(data.length === 0 ? EMPTY_STORE_IMAGE : data);
  }
}
