// Public surface of the WAL: durable storage (segmented checksummed log + atomic snapshot files) for a Raft node.
// The host opens it, loads the recovered state into its in-memory Storage, then persists every Ready through it.

export { DiskLog, openDiskStorage, DEFAULT_SEGMENT_BYTES } from './disk-log.js';
export type { DiskLogOptions, RecoveredState, RepairReport, OpenedDiskLog } from './disk-log.js';
