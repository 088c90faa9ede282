// Public surface of @swarm/store: object types, the Store state machine, transactions, watches, task history.
export * from './objects.js';
export { StoreError, WatchClosedError, AssertionError, type StoreErrorCode, type WatchCloseReason } from './errors.js';
export {
  encodeTransaction,
  decodeTransaction,
  MAX_OPS_PER_TRANSACTION,
  type Op,
  type Transaction,
  type NewObject,
} from './transaction.js';
export {
  Store,
  deepEqual,
  DEFAULT_MAX_HISTORY_EVENTS,
  type ApplyResult,
  type ReadTx,
  type StoreOptions,
} from './store.js';
export { Watcher, DEFAULT_MAX_QUEUED_EVENTS, type StoreEvent, type WatchFilter, type WatchOptions } from './watch.js';
export {
  tasksToReap,
  isDeadTask,
  DEFAULT_TASK_HISTORY_RETENTION_LIMIT,
  DEFAULT_MAX_REAPED_PER_PASS,
  type ReapOptions,
} from './history.js';
