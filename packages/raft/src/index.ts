export {};
export type { Transport, TransportEvents } from './transport/transport.js';
export { TcpTransport, PROTOCOL_ID, parseAddress } from './transport/tcp.js';
export type { TcpTransportOptions } from './transport/tcp.js';
export { encodeFrame, FrameReader, FrameError, DEFAULT_MAX_FRAME_BYTES } from './transport/framing.js';
export { validateMessage, MessageShapeError } from './transport/validate.js';
export * from './types.js';
export { assert } from './assert.js';
export { MemoryStorage, bootstrap } from './memory-storage.js';
export { encodeConfChange, decodeConfChange, applyConfChangeToState } from './confchange.js';
export { RawNode } from './rawnode.js';
export {
  Raft,
  DEFAULT_MAX_SIZE_PER_MSG,
  DEFAULT_MAX_INFLIGHT_MSGS,
  DEFAULT_MAX_COMMITTED_SIZE_PER_READY,
  DEFAULT_MAX_UNCOMMITTED_ENTRIES,
} from './raft.js';
export { DiskLog, openDiskStorage, DEFAULT_SEGMENT_BYTES } from './wal/index.js';
export type { DiskLogOptions, RecoveredState, RepairReport, OpenedDiskLog } from './wal/index.js';
export { RaftNode } from './host/raft-node.js';
export type { RaftNodeOptions, StateMachine } from './host/raft-node.js';
export { runSimulation } from './sim/cluster.js';
export type { SimOptions, SimResult } from './sim/cluster.js';
