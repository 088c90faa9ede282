// Public surface of @swarm/daemon: startDaemon and its options; the rest of src/ is internal.
// The CLI's `swarm daemon` verb runs it and handles signals.
export { DEFAULT_SOCKET_PATH } from '@swarm/api';
export { startDaemon, DEFAULT_DATA_DIR, DEFAULT_GOSSIP_PORT, type Daemon, type DaemonOptions } from './daemon.js';
export { DaemonError, type DaemonErrorCode } from './errors.js';
export { LOCK_FILE } from './lock.js';
export { FILES as DATA_DIR_FILES, type NodeState } from './data-dir.js';
export { ENGINE_VERSION } from './platform.js';
