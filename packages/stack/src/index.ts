// Public surface of @swarm/stack: compose loading, validation and conversion to the cluster's objects.
export { StackError, type StackErrorCode, type SourcePosition } from './errors.js';
