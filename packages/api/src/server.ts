// The API server: fastify on a unix socket (mode 0600), JSON schema validation of requests, and one error shape
// ({error: {code, message}} with a proper status) for everything that fails. Cluster logic stays in the backend.

import { connect } from 'node:net';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { dirname } from 'node:path';
import fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { FastifySchemaValidationError } from 'fastify/types/schema.js';
import type { Logger } from '@swarm/wire';
import type { NodeRole } from '@swarm/store';
import { isWildcardHost, parseHostPort } from './addresses.js';
import { nodeDocument, resolveNode, sortNodes, swarmDocument } from './documents.js';
import { resolveService, serviceDocument, serviceSpecSchema, serviceStatus, taskDocument, type ServiceSpecDocument } from './services.js';
import { configDocument, fileObjectListQuerySchema, fileObjectParamsSchema, matchesFilters, MAX_SECRET_REQUEST_BYTES, parseFileObjectFilters, resolveFileObject, secretCreateSchema, secretDocument, sortByName, toFileObjectSpec, type FileObjectSpec, type SecretCreateRequest } from './secrets.js';
import { networkCreateSchema, networkDocument, networkParamsSchema, resolveNetwork, sortNetworks } from './networks.js';
import { ApiError, assert, type ApiErrorBody } from './errors.js';
import { DEFAULT_LISTEN_PORT, type ApiBackend, type ImageProgressLine, type NetworkCreateRequest, type NodeUpdateRequest, type ServiceWriteOptions, type VolumeCreateRequest, type SwarmInitRequest, type SwarmJoinRequest } from './types.js';

/** Requests are small control messages; anything bigger is a mistake or an attack. */
export const MAX_REQUEST_BODY_BYTES = 64 * 1024;
/** How long a connecting probe of an existing socket file may take before we call it stale. */
const SOCKET_PROBE_TIMEOUT_MS = 1_000;

export interface ApiServerOptions {
  socketPath: string;
  backend: ApiBackend;
  logger: Logger;
}

export interface ApiServer {
  readonly socketPath: string;
  close(): Promise<void>;
}

const initBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    advertiseAddr: { type: 'string', minLength: 1, maxLength: 256 },
    listenAddr: { type: 'string', minLength: 1, maxLength: 256 },
  },
} as const;

const joinBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['remoteAddr', 'token'],
  properties: {
    remoteAddr: { type: 'string', minLength: 1, maxLength: 256 },
    token: { type: 'string', minLength: 1, maxLength: 512 },
    advertiseAddr: { type: 'string', minLength: 1, maxLength: 256 },
    listenAddr: { type: 'string', minLength: 1, maxLength: 256 },
  },
} as const;

interface JoinBody {
  remoteAddr: string;
  token: string;
  advertiseAddr?: string;
  listenAddr?: string;
}

const joinTokenQuerySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['role'],
  properties: {
    role: { type: 'string', enum: ['worker', 'manager'] },
    // A query string is text; body types are not coerced (a number is not a string), so neither is this.
    rotate: { type: 'string', enum: ['true', 'false'], default: 'false' },
  },
} as const;

const nodeParamsSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;

const volumeParamsSchema = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 255 } },
} as const;

const volumeCreateSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['Name'],
  properties: {
    Name: { type: 'string', minLength: 1, maxLength: 255 },
    Driver: { type: 'string', enum: ['local'] },
    Labels: { type: 'object', maxProperties: 256, additionalProperties: { type: 'string', maxLength: 4096 } },
  },
} as const;

const loginSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['username', 'password', 'serveraddress'],
  properties: {
    username: { type: 'string', minLength: 1, maxLength: 256 },
    password: { type: 'string', minLength: 1, maxLength: 4096 },
    serveraddress: { type: 'string', minLength: 1, maxLength: 256 },
  },
} as const;

const logoutSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['serveraddress'],
  properties: { serveraddress: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;

const imageParamsSchema = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 1024 } },
} as const;

const pullQuerySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['fromImage'],
  properties: { fromImage: { type: 'string', minLength: 1, maxLength: 1024 } },
} as const;

const tagQuerySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['target'],
  properties: { target: { type: 'string', minLength: 1, maxLength: 1024 } },
} as const;

const saveQuerySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['names'],
  properties: { names: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, maxItems: 256, items: { type: 'string', minLength: 1 } }] } },
} as const;

/**
 * Docker's progress stream: NDJSON lines as they come. A failure before the first line is a plain error answer;
 * after it, the stream ends with an {"error"} line. The client hanging up aborts the operation.
 */
async function streamProgress(reply: FastifyReply, run: (onLine: (line: ImageProgressLine) => void, signal: AbortSignal) => Promise<void>): Promise<void> {
  const controller = new AbortController();
  let started = false;
  const write = (line: ImageProgressLine): void => {
    if (!started) {
      started = true;
      reply.hijack();
      reply.raw.on('close', () => controller.abort());
      reply.raw.writeHead(200, { 'content-type': 'application/x-ndjson' });
    }
    reply.raw.write(`${JSON.stringify(line)}\n`);
  };
  try {
    await run(write, controller.signal);
  } catch (err) {
    if (!started) throw err;
    write({ error: err instanceof Error ? err.message : String(err) });
  }
  if (!started) {
    await reply.code(200).type('application/x-ndjson').send('');
    return;
  }
  reply.raw.end();
}

const forceQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { force: { type: 'string', enum: ['true', 'false'], default: 'false' } },
} as const;

/** Label keys and values as Docker takes them: a key is non-empty and has no '='. */
const LABEL_KEY = { type: 'string', minLength: 1, maxLength: 1024, pattern: '^[^=]+$' } as const;

const nodeUpdateBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    role: { type: 'string', enum: ['worker', 'manager'] },
    availability: { type: 'string', enum: ['active', 'pause', 'drain'] },
    labelAdd: { type: 'object', maxProperties: 256, propertyNames: LABEL_KEY, additionalProperties: { type: 'string', maxLength: 4096 } },
    labelRm: { type: 'array', maxItems: 256, items: LABEL_KEY },
  },
} as const;

const serviceQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { status: { type: 'string', enum: ['true', 'false'], default: 'false' } },
} as const;

const serviceUpdateQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    version: { type: 'string', pattern: '^[0-9]{1,15}$' },
    rollback: { type: 'string', enum: ['previous'] },
    resolveImage: { type: 'string', enum: ['true', 'false'] },
    withRegistryAuth: { type: 'string', enum: ['true', 'false'] },
  },
} as const;

const resolveQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { resolveImage: { type: 'string', enum: ['true', 'false'] }, withRegistryAuth: { type: 'string', enum: ['true', 'false'] } },
} as const;

function writeOptions(q: { resolveImage?: 'true' | 'false'; withRegistryAuth?: 'true' | 'false' }): ServiceWriteOptions {
  return { resolveImage: q.resolveImage !== 'false', withRegistryAuth: q.withRegistryAuth === 'true' };
}

const logsQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    tail: { type: 'string', pattern: '^(all|[0-9]{1,9})$' },
    follow: { type: 'string', enum: ['true', 'false'], default: 'false' },
  },
} as const;

const taskQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { service: { type: 'string', minLength: 1, maxLength: 256 }, node: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;

/** Ajv's errors, rewritten so the message always names the field ("body.listenAddr must be string"). */
function formatSchemaErrors(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const parts = errors.slice(0, 5).map((e) => {
    const path = dataVar + e.instancePath.replaceAll('/', '.');
    if (e.keyword === 'additionalProperties') return `${path}: unknown field ${JSON.stringify(e.params['additionalProperty'])}`;
    if (e.keyword === 'required') return `${path}: missing field ${JSON.stringify(e.params['missingProperty'])}`;
    if (e.keyword === 'enum') {
      const allowed = Array.isArray(e.params['allowedValues']) ? (e.params['allowedValues'] as unknown[]).join(', ') : '';
      return `${path} must be one of: ${allowed}`;
    }
    return `${path} ${e.message ?? 'is invalid'}`;
  });
  return new Error(parts.join('; '));
}

function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  const body: ApiErrorBody = err.toBody();
  return reply.code(err.status).type('application/json').send(body);
}

function toInitRequest(body: { advertiseAddr?: string; listenAddr?: string } | undefined): SwarmInitRequest {
  const listen = parseHostPort(body?.listenAddr ?? '0.0.0.0', 'listenAddr');
  const advertise = body?.advertiseAddr === undefined ? null : parseHostPort(body.advertiseAddr, 'advertiseAddr');
  if (advertise !== null && (advertise.host === '0.0.0.0' || advertise.host === '::')) {
    throw new ApiError('invalid_argument', `advertiseAddr ${advertise.host} is a wildcard: other nodes cannot dial it; give this node's own IP`);
  }
  return {
    listenHost: listen.host,
    listenPort: listen.port ?? DEFAULT_LISTEN_PORT,
    advertiseHost: advertise?.host ?? null,
    advertisePort: advertise?.port ?? null,
  };
}

function toJoinRequest(body: JoinBody): SwarmJoinRequest {
  const init = toInitRequest(body);
  const remote = parseHostPort(body.remoteAddr, 'remoteAddr');
  if (isWildcardHost(remote.host)) throw new ApiError('invalid_argument', `remoteAddr ${remote.host} is a wildcard: give a manager's address`);
  return { ...init, remoteHost: remote.host, remotePort: remote.port ?? DEFAULT_LISTEN_PORT, token: body.token.trim() };
}

/** The fastify app without a listener: tests drive it with inject(). */
export function buildApiApp(backend: ApiBackend, logger: Logger): FastifyInstance {
  const app = fastify({
    logger: false,
    bodyLimit: MAX_REQUEST_BODY_BYTES,
    schemaErrorFormatter: formatSchemaErrors,
    // Unknown fields are refused, not silently dropped: a misspelt option must not look accepted.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
  });

  app.setErrorHandler((err: FastifyError | ApiError, request, reply) => {
    if (err instanceof ApiError) return sendError(reply, err);
    if ('validation' in err && err.validation !== undefined) return sendError(reply, new ApiError('invalid_argument', err.message));
    const status = 'statusCode' in err && typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status >= 400 && status < 500) {
      // fastify's own client errors (bad JSON, wrong content type, body too large): the message is safe to show.
      return sendError(reply, new ApiError(status === 404 ? 'not_found' : 'invalid_argument', err.message));
    }
    logger.error({ err, method: request.method, url: request.url }, 'api request failed');
    return sendError(reply, new ApiError('internal', `internal error: ${err.message}`));
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new ApiError('not_found', `no such API route: ${request.method} ${request.url.split('?')[0] ?? ''}`)),
  );
  app.addHook('onResponse', async (request, reply) => {
    logger.debug({ method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'api request');
  });

  app.get('/_ping', async (_request, reply) => reply.type('text/plain').send('OK'));

  app.get('/info', async () => backend.info());

  app.post<{ Body: { advertiseAddr?: string; listenAddr?: string } | undefined }>(
    '/swarm/init',
    { schema: { body: initBodySchema } },
    async (request) => backend.initSwarm(toInitRequest(request.body)),
  );

  app.post<{ Body: JoinBody }>('/swarm/join', { schema: { body: joinBodySchema } }, async (request) =>
    backend.joinSwarm(toJoinRequest(request.body)),
  );

  app.get('/swarm', async () => swarmDocument(await backend.inspectSwarm()));

  app.get<{ Querystring: { role: NodeRole; rotate: 'true' | 'false' } }>(
    '/swarm/join-tokens',
    { schema: { querystring: joinTokenQuerySchema } },
    async (request) => backend.joinToken(request.query.role, request.query.rotate === 'true'),
  );

  app.post<{ Querystring: { force: 'true' | 'false' } }>('/swarm/leave', { schema: { querystring: forceQuerySchema } }, async (request) =>
    backend.leaveSwarm(request.query.force === 'true'),
  );

  app.get('/members', async () => backend.listMembers());

  app.get('/nodes', async () => sortNodes(await backend.listNodes()).map(nodeDocument));

  app.get<{ Params: { id: string } }>('/nodes/:id', { schema: { params: nodeParamsSchema } }, async (request) =>
    nodeDocument(resolveNode(await backend.listNodes(), request.params.id)),
  );

  app.post<{ Params: { id: string }; Body: NodeUpdateRequest | undefined }>(
    '/nodes/:id/update',
    { schema: { params: nodeParamsSchema, body: nodeUpdateBodySchema } },
    async (request) => nodeDocument(await backend.updateNode(request.params.id, request.body ?? {})),
  );

  app.delete<{ Params: { id: string }; Querystring: { force: 'true' | 'false' } }>(
    '/nodes/:id',
    { schema: { params: nodeParamsSchema, querystring: forceQuerySchema } },
    async (request, reply) => {
      await backend.removeNode(request.params.id, request.query.force === 'true');
      return reply.code(204).send();
    },
  );

  app.post<{ Body: ServiceSpecDocument; Querystring: { resolveImage?: 'true' | 'false'; withRegistryAuth?: 'true' | 'false' } }>(
    '/services/create',
    { schema: { body: serviceSpecSchema, querystring: resolveQuerySchema } },
    async (request) => backend.createService(request.body, writeOptions(request.query)),
  );

  app.get<{ Querystring: { status: 'true' | 'false' } }>('/services', { schema: { querystring: serviceQuerySchema } }, async (request) => {
    const { services, tasks } = await backend.listServices();
    const withStatus = request.query.status === 'true';
    return [...services]
      .sort((a, b) => a.spec.name.localeCompare(b.spec.name))
      .map((s) => serviceDocument(s, withStatus ? serviceStatus(s, tasks) : undefined));
  });

  app.get<{ Params: { id: string }; Querystring: { status: 'true' | 'false' } }>(
    '/services/:id',
    { schema: { params: nodeParamsSchema, querystring: serviceQuerySchema } },
    async (request) => {
      const { services, tasks } = await backend.listServices();
      const service = resolveService(services, request.params.id);
      return serviceDocument(service, request.query.status === 'true' ? serviceStatus(service, tasks) : undefined);
    },
  );

  // As Docker's: `?rollback=previous` puts the previous spec back (the body is then not used).
  app.post<{ Params: { id: string }; Querystring: { version?: string; rollback?: 'previous'; resolveImage?: 'true' | 'false'; withRegistryAuth?: 'true' | 'false' }; Body: ServiceSpecDocument }>(
    '/services/:id/update',
    { schema: { params: nodeParamsSchema, querystring: serviceUpdateQuerySchema, body: serviceSpecSchema } },
    async (request) => {
      const version = request.query.version === undefined ? null : Number(request.query.version);
      const change = request.query.rollback === 'previous' ? { rollback: true as const } : { spec: request.body };
      const { warnings } = await backend.updateService(request.params.id, change, version, writeOptions(request.query));
      return { Warnings: warnings };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { tail?: string; follow: 'true' | 'false' } }>(
    '/services/:id/logs',
    { schema: { params: nodeParamsSchema, querystring: logsQuerySchema } },
    async (request, reply) => {
      const controller = new AbortController();
      const tail = request.query.tail === undefined || request.query.tail === 'all' ? null : Number(request.query.tail);
      const lines = await backend.serviceLogs(request.params.id, { tail, follow: request.query.follow === 'true' }, controller.signal);
      // NDJSON, one line per log line, flushed as it comes; the client hanging up ends a follow.
      reply.raw.on('close', () => controller.abort());
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'application/x-ndjson' });
      try {
        for await (const line of lines) {
          if (!reply.raw.write(`${JSON.stringify(line)}\n`)) await new Promise((resolve) => reply.raw.once('drain', resolve));
        }
      } finally {
        controller.abort();
        reply.raw.end();
      }
    },
  );

  app.delete<{ Params: { id: string } }>('/services/:id', { schema: { params: nodeParamsSchema } }, async (request, reply) => {
    await backend.removeService(request.params.id);
    return reply.code(204).send();
  });

  // ---- overlay networks: cluster objects, so every document can list the endpoints of every node.

  app.post<{ Body: NetworkCreateRequest }>('/networks/create', { schema: { body: networkCreateSchema } }, async (request, reply) => {
    const { ID, Warning } = await backend.createNetwork(request.body);
    return reply.code(201).send({ Id: ID, Warning });
  });

  app.get('/networks', async () => {
    const { networks, tasks, nodes } = await backend.listNetworks();
    return sortNetworks(networks).map((n) => networkDocument(n, tasks, nodes));
  });

  app.get<{ Params: { id: string } }>('/networks/:id', { schema: { params: networkParamsSchema } }, async (request) => {
    const { networks, tasks, nodes } = await backend.listNetworks();
    return networkDocument(resolveNetwork(networks, request.params.id), tasks, nodes);
  });

  app.delete<{ Params: { id: string } }>('/networks/:id', { schema: { params: networkParamsSchema } }, async (request, reply) => {
    await backend.removeNetwork(request.params.id);
    return reply.code(204).send();
  });

  // ---- secrets and configs: cluster objects. A create body carries up to 500 KB in base64, more than other requests.

  const fileObjects = [
    { kind: 'secret', create: (spec: FileObjectSpec) => backend.createSecret(spec), list: () => backend.listSecrets(), remove: (ref: string) => backend.removeSecret(ref), document: secretDocument },
    { kind: 'config', create: (spec: FileObjectSpec) => backend.createConfig(spec), list: () => backend.listConfigs(), remove: (ref: string) => backend.removeConfig(ref), document: configDocument },
  ] as const;
  for (const o of fileObjects) {
    app.post<{ Body: SecretCreateRequest }>(`/${o.kind}s/create`, { bodyLimit: MAX_SECRET_REQUEST_BYTES, schema: { body: secretCreateSchema } }, async (request, reply) =>
      reply.code(201).send(await o.create(toFileObjectSpec(o.kind, request.body))),
    );

    app.get<{ Querystring: { filters?: string } }>(`/${o.kind}s`, { schema: { querystring: fileObjectListQuerySchema } }, async (request) => {
      const filters = parseFileObjectFilters(request.query.filters);
      return sortByName(await o.list()).filter((x) => matchesFilters(x, filters)).map((x) => o.document(x));
    });

    app.get<{ Params: { id: string } }>(`/${o.kind}s/:id`, { schema: { params: fileObjectParamsSchema } }, async (request) =>
      o.document(resolveFileObject(o.kind, await o.list(), request.params.id)),
    );

    app.delete<{ Params: { id: string } }>(`/${o.kind}s/:id`, { schema: { params: fileObjectParamsSchema } }, async (request, reply) => {
      await o.remove(request.params.id);
      return reply.code(204).send();
    });
  }

  app.get('/volumes', async () => ({ Volumes: await backend.listVolumes(), Warnings: [] }));

  app.post<{ Body: VolumeCreateRequest }>('/volumes/create', { schema: { body: volumeCreateSchema } }, async (request, reply) => {
    const volume = await backend.createVolume(request.body);
    return reply.code(201).send(volume);
  });

  app.get<{ Params: { name: string } }>('/volumes/:name', { schema: { params: volumeParamsSchema } }, async (request) => backend.inspectVolume(request.params.name));

  app.delete<{ Params: { name: string } }>('/volumes/:name', { schema: { params: volumeParamsSchema } }, async (request, reply) => {
    await backend.removeVolume(request.params.name);
    return reply.code(204).send();
  });

  // ---- images: this node's store. Pull and push answer Docker's NDJSON progress; an error part way is the
  // stream's last line ({"error": ...}), as Docker's, since the status line has gone out by then.

  app.post<{ Body: { username: string; password: string; serveraddress: string } }>('/auth', { schema: { body: loginSchema } }, async (request) => {
    await backend.login(request.body);
    return { Status: 'Login Succeeded' };
  });

  app.post<{ Body: { serveraddress: string } }>('/auth/logout', { schema: { body: logoutSchema } }, async (request) => ({ Removed: await backend.logout(request.body.serveraddress) }));

  app.get('/images/json', async () => backend.listImages());

  app.get<{ Params: { name: string } }>('/images/:name/json', { schema: { params: imageParamsSchema } }, async (request) => backend.inspectImage(request.params.name));

  app.post<{ Querystring: { fromImage: string } }>('/images/create', { schema: { querystring: pullQuerySchema } }, async (request, reply) =>
    streamProgress(reply, (onLine, signal) => backend.pullImage(request.query.fromImage, onLine, signal)),
  );

  app.post<{ Params: { name: string } }>('/images/:name/push', { schema: { params: imageParamsSchema } }, async (request, reply) =>
    streamProgress(reply, (onLine, signal) => backend.pushImage(request.params.name, onLine, signal)),
  );

  app.post<{ Params: { name: string }; Querystring: { target: string } }>(
    '/images/:name/tag',
    { schema: { params: imageParamsSchema, querystring: tagQuerySchema } },
    async (request, reply) => {
      await backend.tagImage(request.params.name, request.query.target);
      return reply.code(201).send();
    },
  );

  app.delete<{ Params: { name: string }; Querystring: { force: 'true' | 'false' } }>(
    '/images/:name',
    { schema: { params: imageParamsSchema, querystring: forceQuerySchema } },
    async (request) => backend.removeImage(request.params.name, request.query.force === 'true'),
  );

  // The archive is the raw request body (no size bound: images are big), handed on as a stream.
  app.addContentTypeParser(['application/x-tar', 'application/octet-stream', 'application/gzip'], (_request, payload, done) => done(null, payload));
  app.post('/images/load', async (request, reply) => {
    if (request.body === undefined || request.body === null) throw new ApiError('invalid_argument', 'POST /images/load needs the archive as the body (Content-Type application/x-tar)');
    const loaded = await backend.loadImages(request.body as NodeJS.ReadableStream);
    reply.type('application/x-ndjson');
    return loaded.map((r) => `${JSON.stringify({ stream: `Loaded image: ${r}\n` })}\n`).join('');
  });

  app.get<{ Querystring: { names: string | string[] } }>('/images/get', { schema: { querystring: saveQuerySchema } }, async (request, reply) => {
    const names = Array.isArray(request.query.names) ? request.query.names : [request.query.names];
    const saved = await backend.saveImages(names);
    const file = createReadStream(saved.path);
    file.once('close', () => void saved.cleanup().catch(() => undefined));
    return reply.type('application/x-tar').send(file);
  });

  app.get<{ Querystring: { service?: string; node?: string } }>('/tasks', { schema: { querystring: taskQuerySchema } }, async (request) => {
    const { services, tasks } = await backend.listServices();
    let selected = tasks;
    if (request.query.service !== undefined) {
      const service = resolveService(services, request.query.service);
      selected = selected.filter((t) => t.serviceId === service.id);
    }
    if (request.query.node !== undefined) {
      const node = resolveNode(await backend.listNodes(), request.query.node);
      selected = selected.filter((t) => t.nodeId === node.id);
    }
    // `service ps` order: by service, then slot (or node), newest first within a slot.
    return [...selected]
      .sort((a, b) => a.serviceName.localeCompare(b.serviceName) || a.slot - b.slot || a.nodeId.localeCompare(b.nodeId) || b.meta.createdAtMs - a.meta.createdAtMs)
      .map(taskDocument);
  });

  return app;
}

/**
 * A socket file left by a daemon that died is removed; one that still answers belongs to a live daemon and is
 * refused, and a path that is not a socket at all is never deleted.
 */
async function prepareSocketPath(socketPath: string): Promise<void> {
  await mkdir(dirname(socketPath), { recursive: true, mode: 0o755 });
  let stat;
  try {
    stat = await lstat(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!stat.isSocket()) {
    throw new ApiError('conflict', `${socketPath} exists and is not a socket: remove it or choose another --socket`);
  }
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect({ path: socketPath });
    const timer = setTimeout(() => (probe.destroy(), resolve(false)), SOCKET_PROBE_TIMEOUT_MS);
    probe.once('connect', () => (clearTimeout(timer), probe.destroy(), resolve(true)));
    probe.once('error', () => (clearTimeout(timer), resolve(false)));
  });
  if (alive) throw new ApiError('conflict', `another swarm daemon is serving ${socketPath}: stop it or choose another --socket`);
  await unlink(socketPath);
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { socketPath, backend, logger } = options;
  assert(socketPath.length > 0, 'socket path is non-empty');
  await prepareSocketPath(socketPath);
  const app = buildApiApp(backend, logger);
  await app.listen({ path: socketPath });
  // Whoever can talk to this socket controls the node: owner only, as Docker's socket is root-only.
  await chmod(socketPath, 0o600);
  logger.info({ socket: socketPath }, 'api listening');
  let closed = false;
  return {
    socketPath,
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      // fastify removes the socket file on close; make sure, without failing if it is already gone.
      await unlink(socketPath).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    },
  };
}
