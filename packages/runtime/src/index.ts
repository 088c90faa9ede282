// Public surface of @swarm/runtime: the Runtime interface and its implementations.
export {
  assert,
  containerConfigFor,
  taskFileMounts,
  NO_TASK_FILES,
  defaultContainerConfig,
  containerName,
  isContainerId,
  RuntimeError,
  MAX_EXEC_OUTPUT_BYTES,
  type ContainerConfig,
  type UlimitConfig,
  type FileMountConfig,
  type TaskFiles,
  type ContainerStats,
  type ExecResult,
  type ExitStatus,
  type ImageConfig,
  type ImageProvider,
  type LocalImage,
  type MountConfig,
  type VolumeProvider,
  type LogLine,
  type LogOptions,
  type Runtime,
  type RuntimeErrorCode,
  type RuntimeName,
} from './runtime.js';
export {
  DEFAULT_MAX_CONTAINERS,
  DEFAULT_MAX_KEPT_LOGS,
  MAX_CLOSE_GRACE_MS,
  ProcessRuntime,
  TASK_ID_ENV,
  FILES_ROOT_ENV,
  SECRETS_DIR_ENV,
  parseStopSignal,
  resolveExecutable,
  type ProcessRuntimeOptions,
} from './process-runtime.js';
export { DEFAULT_MAX_LOG_FILE_BYTES, MAX_FOLLOW_BUFFER_LINES, MAX_LINE_CHARS } from './log-file.js';
export { LocalVolumes, VOLUME_NAME, type LocalVolumesOptions, type Volume } from './volumes.js';
export * from './image/index.js';
export { DEFAULT_CONMON, DEFAULT_RUNC, DEFAULT_RUNC_LOG_BYTES, DEFAULT_TINI, destroyRuncRoot, RuncRuntime, type RuncRuntimeOptions } from './runc-runtime.js';
export { buildSpec, hostsFile, ociSpecJson, processArgs, processEnv, resolveUser, INIT_PATH, type OciSpec } from './oci-spec.js';
export { checkUlimits, hasSysResource, parseProcLimits, readHostLimits, rlimitType, RLIM_INFINITY, type HostLimits } from './rlimits.js';
export { CriLogParser } from './cri-log.js';
export { readProcStat, type ProcStat } from './proc-stat.js';
export { isMountPoint, mountTaskFiles, unmountTaskFiles, taskFilesSizeBytes } from './task-files.js';
