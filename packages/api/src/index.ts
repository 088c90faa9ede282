// Public surface of @swarm/api: the documents, the backend interface, the server on a unix socket and the client.
// The daemon implements ApiBackend; the CLI uses ApiClient.
export * from './types.js';
export { ApiError, DaemonUnreachableError, httpStatusOf, isApiErrorCode, type ApiErrorCode, type ApiErrorBody } from './errors.js';
export { nodeDocument, swarmDocument, resolveNode, sortNodes } from './documents.js';
export { parseHostPort, isWildcardHost, formatHostPort, type HostPort } from './addresses.js';
export { buildApiApp, startApiServer, MAX_REQUEST_BODY_BYTES, type ApiServer, type ApiServerOptions } from './server.js';
export { ApiClient, DEFAULT_REQUEST_TIMEOUT_MS, MAX_RESPONSE_BYTES, type ApiClientOptions, type SwarmInitOptions, type SwarmJoinOptions } from './client.js';
export * from './services.js';
export { attachedTasks, networkDocument, resolveNetwork, sortNetworks, taskContainerName, NETWORK_NAME_PATTERN } from './networks.js';
export { checkSecretName, configDocument, matchesFilters, parseFileObjectFilters, resolveFileObject, secretDocument, sortByName, toFileObjectSpec, MAX_SECRET_BYTES, MAX_SECRET_NAME_LENGTH, SECRET_NAME_PATTERN, type ConfigCreateRequest, type ConfigDocument, type FileObjectFilters, type FileObjectKind, type FileObjectSpec, type SecretCreateRequest, type SecretDocument } from './secrets.js';
