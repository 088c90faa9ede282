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
