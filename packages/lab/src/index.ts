// Public surface of @swarm/lab: many swarm hosts on one Linux machine, one network namespace each.
// Used by the CLI's `swarm lab` verbs, the integration tests and the benchmarks.

export { LabError, type LabErrorCode } from './errors.js';
export {
  Lab,
  createLab,
  destroyLab,
  execInHost,
  findHost,
  healLab,
  hostAlive,
  hostInfo,
  killHost,
  listLabs,
  loadLab,
  parseTarget,
  partitionLab,
  requireRoot,
  restartHost,
  waitForSocket,
  MAX_NODES,
  type ClusterStep,
  type CreateLabOptions,
  type DownReport,
  type ExecOptions,
  type ExecResult,
  type HostCommand,
  type HostInfo,
  type LabOptions,
  type LabSummary,
  type RestartOptions,
} from './lab.js';
export { swarmInitJoin, type SwarmInitJoinOptions } from './cluster.js';
export { DEFAULT_ROOT, labRoot, type HostState, type LabState, type HostProcess, type HostRole, type ClusterState } from './state.js';
export { NETNS_PREFIX, LINK_PREFIX } from './ip.js';
export { PARTITION_TABLE } from './nft.js';
export { REGISTRY_BIN, REGISTRY_PORT, registryDaemonFlags, startRegistry } from './registry.js';
export { seedLabImages } from './images.js';
