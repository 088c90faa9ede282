// Public surface of @swarm/stack: compose loading, validation and conversion to the cluster's objects.
export { StackError, type StackErrorCode, type SourcePosition } from './errors.js';
export {
  loadStack,
  loadStackFromSources,
  stringifyStack,
  type LoadStackOptions,
  type LoadSourcesOptions,
  type StackSource,
  type LoadedStack,
} from './load.js';
export { interpolate, type InterpolationResult } from './interpolate.js';
export { parseDotEnv } from './load-dotenv.js';
export { mergeComposeFiles } from './merge.js';
export { stripExtensions } from './schema.js';
export { UNSUPPORTED_SERVICE_KEYS, DEPRECATED_SERVICE_KEYS, FORBIDDEN_SERVICE_KEYS } from './load-checks.js';
export type * from './model.js';
export { convertStack, LABEL_IMAGE, LABEL_NAMESPACE, type ConvertOptions, type ConvertedStack, type StackNetwork, type StackFileObject, type StackVolume } from './convert.js';
export { shellSplit, durationMs, bytes } from './convert-values.js';
export { positionLocator, sourceLocator, parseKeyPath } from './convert-positions.js';
export {
  deployStack,
  removeStack,
  listStacks,
  sameSpec,
  normaliseSpec,
  specDifferences,
  type StackBackend,
  type FileObjectBackend,
  type FileObjectSpec,
  type ExistingService,
  type ExistingObject,
  type ServiceWriteOptions,
  type DeployOptions,
  type DeployResult,
  type RemoveOptions,
  type RemoveResult,
} from './deploy.js';
