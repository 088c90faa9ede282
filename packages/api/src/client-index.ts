// The client-only entry point (`@swarm/api/client`): what the CLI needs to talk to a daemon, without loading
// fastify, so that every `swarm` command starts fast.
export * from './types.js';
export { ApiError, DaemonUnreachableError, isApiErrorCode, type ApiErrorCode, type ApiErrorBody } from './errors.js';
export { ApiClient, DEFAULT_REQUEST_TIMEOUT_MS, MAX_RESPONSE_BYTES, type ApiClientOptions, type SwarmInitOptions, type SwarmJoinOptions } from './client.js';
export * from './services.js';
