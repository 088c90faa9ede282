// The store's typed errors and its invariant assertion.
// StoreError is a refused transaction (the caller's fault); AssertionError is a bug in the store or its host.

export type StoreErrorCode = 'exists' | 'not_found' | 'version_conflict' | 'name_conflict' | 'invalid';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    /** Position of the offending op in its transaction, when one op is to blame. */
    readonly opIndex: number | null = null,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export type WatchCloseReason = 'overflow' | 'compacted' | 'restored' | 'filter_failed';

/** Ends a watch the consumer did not close itself: it must re-list from a view and watch again. */
export class WatchClosedError extends Error {
  constructor(
    readonly reason: WatchCloseReason,
    message: string,
  ) {
    super(message);
    this.name = 'WatchClosedError';
  }
}

export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssertionError';
  }
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new AssertionError(`store invariant violated: ${message}`);
}
