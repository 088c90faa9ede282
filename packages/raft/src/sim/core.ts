// Where the simulator gets the Raft core from: one import point, so the core's module layout can change freely.
// It imports the core modules directly (not index.ts), so index.ts can re-export the simulator without a cycle.
export { RawNode } from '../rawnode.js';
export { MemoryStorage, bootstrap } from '../memory-storage.js';
export { encodeConfChange, decodeConfChange } from '../confchange.js';
