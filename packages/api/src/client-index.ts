// The client-only entry point (`@swarm/api/client`): what the CLI needs to talk to a daemon, without loading
// fastify, so that every `swarm` command starts fast.
export * from './types.js';
export { ApiError, DaemonUnreachableError, isApiErrorCode, type ApiErrorCode, type ApiErrorBody } from './errors.js';
export { ApiClient, DEFAULT_REQUEST_TIMEOUT_MS, MAX_RESPONSE_BYTES, type ApiClientOptions, type SwarmInitOptions, type SwarmJoinOptions } from './client.js';
export * from './services.js';
export { checkSecretName, configDocument, matchesFilters, parseFileObjectFilters, resolveFileObject, secretDocument, sortByName, toFileObjectSpec, MAX_SECRET_BYTES, MAX_SECRET_NAME_LENGTH, SECRET_NAME_PATTERN, type ConfigCreateRequest, type ConfigDocument, type FileObjectFilters, type FileObjectKind, type FileObjectSpec, type SecretCreateRequest, type SecretDocument } from './secrets.js';
