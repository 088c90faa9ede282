// The typed client of the control API over the daemon's unix socket (node:http with socketPath). The CLI uses it;
// failures come back as ApiError (the daemon answered with an error) or DaemonUnreachableError (nobody answered).

import { request } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import type { NodeRole } from '@swarm/store';
import { ApiError, DaemonUnreachableError, isApiErrorCode } from './errors.js';
import type { ConfigDocument, FileObjectFilters, SecretDocument } from './secrets.js';
import type { ServiceDocument, ServiceSpecDocument, TaskDocument } from './services.js';
import type { InfoDocument, JoinTokenDocument, MemberDocument, NetworkCreateRequest, NetworkDocument, NodeDocument, NodeUpdateRequest, ServiceLogLine, SwarmLeaveResponse, SwarmDocument, SwarmInitResponse, SwarmJoinResponse, VolumeCreateRequest, VolumeDocument, ImageInspectDocument, ImageProgressLine, ImageSummaryDocument } from './types.js';

/** Init waits for an election and an fsync'd commit; a few seconds normally, so a minute means something is wrong. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** Bound on a response the client buffers (a node list of thousands of nodes fits easily). */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

const UNREACHABLE_CODES = new Set(['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'ENOTSOCK', 'EPIPE']);

export interface ApiClientOptions {
  socketPath: string;
  timeoutMs?: number;
}

export interface SwarmInitOptions {
  advertiseAddr?: string;
  listenAddr?: string;
}

export interface SwarmJoinOptions {
  remoteAddr: string;
  token: string;
  advertiseAddr?: string;
  listenAddr?: string;
}

export class ApiClient {
  readonly socketPath: string;
  private readonly timeoutMs: number;

  constructor(options: ApiClientOptions) {
    this.socketPath = options.socketPath;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  async ping(): Promise<void> {
    await this.call('GET', '/_ping');
  }

  info(): Promise<InfoDocument> {
    return this.call('GET', '/info') as Promise<InfoDocument>;
  }

  initSwarm(options: SwarmInitOptions = {}): Promise<SwarmInitResponse> {
    return this.call('POST', '/swarm/init', options) as Promise<SwarmInitResponse>;
  }

  joinSwarm(options: SwarmJoinOptions): Promise<SwarmJoinResponse> {
    return this.call('POST', '/swarm/join', options) as Promise<SwarmJoinResponse>;
  }

  inspectSwarm(): Promise<SwarmDocument> {
    return this.call('GET', '/swarm') as Promise<SwarmDocument>;
  }

  joinToken(role: NodeRole, rotate = false): Promise<JoinTokenDocument> {
    const query = new URLSearchParams({ role, rotate: String(rotate) });
    return this.call('GET', `/swarm/join-tokens?${query.toString()}`) as Promise<JoinTokenDocument>;
  }

  listNodes(): Promise<NodeDocument[]> {
    return this.call('GET', '/nodes') as Promise<NodeDocument[]>;
  }

  updateNode(ref: string, changes: NodeUpdateRequest): Promise<NodeDocument> {
    return this.call('POST', `/nodes/${encodeURIComponent(ref)}/update`, changes) as Promise<NodeDocument>;
  }

  async removeNode(ref: string, force = false): Promise<void> {
    await this.call('DELETE', `/nodes/${encodeURIComponent(ref)}?force=${String(force)}`);
  }

  leaveSwarm(force = false): Promise<SwarmLeaveResponse> {
    return this.call('POST', `/swarm/leave?force=${String(force)}`) as Promise<SwarmLeaveResponse>;
  }

  /** Warnings: Docker's, e.g. that the image's digest could not be recorded. */
  createService(spec: ServiceSpecDocument, options: { resolveImage?: boolean; withRegistryAuth?: boolean } = {}): Promise<{ ID: string; Warnings?: string[] }> {
    const params = new URLSearchParams();
    if (options.resolveImage === false) params.set('resolveImage', 'false');
    if (options.withRegistryAuth === true) params.set('withRegistryAuth', 'true');
    const query = params.size === 0 ? '' : `?${params.toString()}`;
    return this.call('POST', `/services/create${query}`, spec) as Promise<{ ID: string; Warnings?: string[] }>;
  }

  listServices(status = true): Promise<ServiceDocument[]> {
    return this.call('GET', `/services?status=${String(status)}`) as Promise<ServiceDocument[]>;
  }

  inspectService(ref: string, status = false): Promise<ServiceDocument> {
    return this.call('GET', `/services/${encodeURIComponent(ref)}?status=${String(status)}`) as Promise<ServiceDocument>;
  }

  async updateService(ref: string, spec: ServiceSpecDocument, version?: number, options: { resolveImage?: boolean; withRegistryAuth?: boolean } = {}): Promise<string[]> {
    const params = new URLSearchParams();
    if (version !== undefined) params.set('version', String(version));
    if (options.resolveImage === false) params.set('resolveImage', 'false');
    if (options.withRegistryAuth === true) params.set('withRegistryAuth', 'true');
    const query = params.size === 0 ? '' : `?${params.toString()}`;
    const res = (await this.call('POST', `/services/${encodeURIComponent(ref)}/update${query}`, spec)) as { Warnings?: string[] };
    return res.Warnings ?? [];
  }

  /** `service rollback`: the previous spec back, rolled out with the rollback config. */
  async rollbackService(ref: string, spec: ServiceSpecDocument, version?: number): Promise<void> {
    const query = version === undefined ? '?rollback=previous' : `?version=${version}&rollback=previous`;
    await this.call('POST', `/services/${encodeURIComponent(ref)}/update${query}`, spec);
  }

  /** Answers once the leader has allocated the network (its VXLAN id and subnet); Warning is '' or Docker's note. */
  createNetwork(request: NetworkCreateRequest): Promise<{ Id: string; Warning: string }> {
    return this.call('POST', '/networks/create', request) as Promise<{ Id: string; Warning: string }>;
  }

  listNetworks(): Promise<NetworkDocument[]> {
    return this.call('GET', '/networks') as Promise<NetworkDocument[]>;
  }

  /** By id, name or unique id prefix. */
  inspectNetwork(ref: string): Promise<NetworkDocument> {
    return this.call('GET', `/networks/${encodeURIComponent(ref)}`) as Promise<NetworkDocument>;
  }

  async removeNetwork(ref: string): Promise<void> {
    await this.call('DELETE', `/networks/${encodeURIComponent(ref)}`);
  }

  // ---- secrets and configs (cluster objects; the stack deployer uses these too)

  /** `secret create`: `data` is the secret's bytes (sent base64, as Docker's API); answers the new id. */
  async createSecret(name: string, data: Uint8Array, labels: Record<string, string> = {}): Promise<string> {
    const res = (await this.call('POST', '/secrets/create', { Name: name, Labels: labels, Data: Buffer.from(data).toString('base64') })) as { ID: string };
    return res.ID;
  }

  /** Secrets by name; `filters` as `secret ls --filter` (name and id by prefix, label by key or key=value). */
  listSecrets(filters: FileObjectFilters = {}): Promise<SecretDocument[]> {
    return this.call('GET', `/secrets${filterQuery(filters)}`) as Promise<SecretDocument[]>;
  }

  /** By id, name or unique id prefix; never carries the data. */
  inspectSecret(ref: string): Promise<SecretDocument> {
    return this.call('GET', `/secrets/${encodeURIComponent(ref)}`) as Promise<SecretDocument>;
  }

  /** Refused (conflict) while a service uses it. */
  async removeSecret(ref: string): Promise<void> {
    await this.call('DELETE', `/secrets/${encodeURIComponent(ref)}`);
  }

  async createConfig(name: string, data: Uint8Array, labels: Record<string, string> = {}): Promise<string> {
    const res = (await this.call('POST', '/configs/create', { Name: name, Labels: labels, Data: Buffer.from(data).toString('base64') })) as { ID: string };
    return res.ID;
  }

  listConfigs(filters: FileObjectFilters = {}): Promise<ConfigDocument[]> {
    return this.call('GET', `/configs${filterQuery(filters)}`) as Promise<ConfigDocument[]>;
  }

  /** Spec.Data is the config's bytes in base64, as Docker's. */
  inspectConfig(ref: string): Promise<ConfigDocument> {
    return this.call('GET', `/configs/${encodeURIComponent(ref)}`) as Promise<ConfigDocument>;
  }

  async removeConfig(ref: string): Promise<void> {
    await this.call('DELETE', `/configs/${encodeURIComponent(ref)}`);
  }

  listVolumes(): Promise<VolumeDocument[]> {
    return (this.call('GET', '/volumes') as Promise<{ Volumes: VolumeDocument[] }>).then((r) => r.Volumes);
  }

  createVolume(request: VolumeCreateRequest): Promise<VolumeDocument> {
    return this.call('POST', '/volumes/create', request) as Promise<VolumeDocument>;
  }

  inspectVolume(name: string): Promise<VolumeDocument> {
    return this.call('GET', `/volumes/${encodeURIComponent(name)}`) as Promise<VolumeDocument>;
  }

  async removeVolume(name: string): Promise<void> {
    await this.call('DELETE', `/volumes/${encodeURIComponent(name)}`);
  }

  async removeService(ref: string): Promise<void> {
    await this.call('DELETE', `/services/${encodeURIComponent(ref)}`);
  }

  listTasks(filter: { service?: string; node?: string } = {}): Promise<TaskDocument[]> {
    const query = new URLSearchParams(Object.entries(filter).filter((e): e is [string, string] => e[1] !== undefined));
    const text = query.toString();
    return this.call('GET', `/tasks${text === '' ? '' : `?${text}`}`) as Promise<TaskDocument[]>;
  }

  /**
   * Streams a service's logs (NDJSON) to `onLine`; resolves when the daemon ends the stream (at once without
   * follow), rejects with ApiError on an error answer. No request timeout: a follow lasts until `signal` aborts.
   */
  serviceLogs(ref: string, options: { tail?: number; follow?: boolean }, onLine: (line: ServiceLogLine) => void, signal?: AbortSignal): Promise<void> {
    const query = new URLSearchParams({ follow: String(options.follow === true), ...(options.tail === undefined ? {} : { tail: String(options.tail) }) });
    return this.ndjson('GET', `/services/${encodeURIComponent(ref)}/logs?${query.toString()}`, (v) => onLine(v as ServiceLogLine), { signal });
  }

  /**
   * A request whose answer is NDJSON (logs, pull and push progress), each line to `onLine` as it comes; `body` is
   * streamed as the request body (an image archive). No request timeout: it lasts until the daemon ends it or
   * `signal` aborts (which resolves). An error answer rejects with its ApiError.
   */
  ndjson(method: 'GET' | 'POST', path: string, onLine: (value: unknown) => void, opts: { signal?: AbortSignal | undefined; body?: Readable; contentType?: string; headers?: Record<string, string> } = {}): Promise<void> {
    const signal = opts.signal;
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...opts.headers, ...(opts.body === undefined ? {} : { 'content-type': opts.contentType ?? 'application/octet-stream' }) };
      const req = request({ socketPath: this.socketPath, method, path, headers, ...(signal === undefined ? {} : { signal }) }, (res) => {
        const status = res.statusCode ?? 0;
        let buffered = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffered += chunk;
          if (buffered.length > MAX_RESPONSE_BYTES) {
            req.destroy(new Error(`a line from the daemon exceeds ${MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          if (status < 200 || status >= 300) return;
          let nl = buffered.indexOf('\n');
          while (nl >= 0) {
            const text = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            if (text !== '') onLine(JSON.parse(text));
            nl = buffered.indexOf('\n');
          }
        });
        res.on('error', reject);
        res.on('end', () => {
          if (status >= 200 && status < 300) return resolve();
          let body: unknown = buffered;
          try {
            body = JSON.parse(buffered);
          } catch {
            // not JSON: errorFromBody says so with the status
          }
          reject(errorFromBody(status, body, `${method} ${path}`));
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (signal?.aborted === true) resolve();
        else if (err.code !== undefined && UNREACHABLE_CODES.has(err.code)) reject(new DaemonUnreachableError(this.socketPath, err));
        else reject(err);
      });
      if (opts.body === undefined) req.end();
      else opts.body.on('error', (err) => req.destroy(err)).pipe(req);
    });
  }

  // ---- images (this node's)

  async login(serveraddress: string, username: string, password: string): Promise<void> {
    await this.call('POST', '/auth', { username, password, serveraddress });
  }

  async logout(serveraddress: string): Promise<boolean> {
    return ((await this.call('POST', '/auth/logout', { serveraddress })) as { Removed: boolean }).Removed;
  }

  listImages(): Promise<ImageSummaryDocument[]> {
    return this.call('GET', '/images/json') as Promise<ImageSummaryDocument[]>;
  }

  inspectImage(ref: string): Promise<ImageInspectDocument> {
    return this.call('GET', `/images/${encodeURIComponent(ref)}/json`) as Promise<ImageInspectDocument>;
  }

  /** Docker's pull progress lines; a failure part way is an `error` line, which rejects. */
  async pullImage(ref: string, onLine: (line: ImageProgressLine) => void, signal?: AbortSignal): Promise<void> {
    await this.progress('POST', `/images/create?fromImage=${encodeURIComponent(ref)}`, onLine, signal);
  }

  async pushImage(ref: string, onLine: (line: ImageProgressLine) => void, signal?: AbortSignal): Promise<void> {
    await this.progress('POST', `/images/${encodeURIComponent(ref)}/push`, onLine, signal);
  }

  removeImage(ref: string, force = false): Promise<Array<{ Untagged?: string; Deleted?: string }>> {
    return this.call('DELETE', `/images/${encodeURIComponent(ref)}?force=${String(force)}`) as Promise<Array<{ Untagged?: string; Deleted?: string }>>;
  }

  async tagImage(source: string, target: string): Promise<void> {
    await this.call('POST', `/images/${encodeURIComponent(source)}/tag?target=${encodeURIComponent(target)}`);
  }

  /** Loads an OCI image archive (plain or gzipped tar) streamed from `archive`; answers the names loaded. */
  async loadImages(archive: Readable): Promise<string[]> {
    const loaded: string[] = [];
    await this.progress('POST', '/images/load', (l) => {
      if (l.stream !== undefined) loaded.push(l.stream.replace(/^Loaded image: /, '').trim());
    }, undefined, { body: archive, contentType: 'application/x-tar' });
    return loaded;
  }

  /** Writes an OCI image archive of `refs` to `out`. */
  saveImages(refs: readonly string[], out: Writable): Promise<void> {
    const query = new URLSearchParams(refs.map((r): [string, string] => ['names', r]));
    const path = `/images/get?${query.toString()}`;
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socketPath, method: 'GET', path }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          // process.stdout is never ended by pipe(), so it never finishes: the end of the answer is the end then.
          res.pipe(out);
          if (out === process.stdout) res.once('end', () => resolve());
          else out.once('finish', () => resolve());
          out.once('error', reject);
          res.once('error', reject);
          return;
        }
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text = (text + c).slice(0, 65536)));
        res.on('end', () => {
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // errorFromBody says what came back
          }
          reject(errorFromBody(status, body, `GET ${path}`));
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code !== undefined && UNREACHABLE_CODES.has(err.code)) reject(new DaemonUnreachableError(this.socketPath, err));
        else reject(err);
      });
      req.end();
    });
  }

  private async progress(
    method: 'POST',
    path: string,
    onLine: (line: ImageProgressLine) => void,
    signal?: AbortSignal,
    extra: { body?: Readable; contentType?: string } = {},
  ): Promise<void> {
    let failure: string | null = null;
    await this.ndjson(method, path, (v) => {
      const line = v as ImageProgressLine;
      if (line.error !== undefined) failure = line.error;
      else onLine(line);
    }, { signal, ...extra });
    if (failure !== null) throw new ApiError('unavailable', failure);
  }

  /** The daemon's gossip view of the cluster (any node, no quorum needed). */
  listMembers(): Promise<MemberDocument[]> {
    return this.call('GET', '/members') as Promise<MemberDocument[]>;
  }

  inspectNode(ref: string): Promise<NodeDocument> {
    return this.call('GET', `/nodes/${encodeURIComponent(ref)}`) as Promise<NodeDocument>;
  }

  /** One request; resolves with the decoded JSON (or text) body of a 2xx answer. */
  call(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
    const payload = body === undefined ? null : Buffer.from(JSON.stringify(body), 'utf8');
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socketPath,
          method,
          path,
          headers: payload === null ? {} : { 'content-type': 'application/json', 'content-length': payload.length },
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (bytes > MAX_RESPONSE_BYTES) {
              req.destroy(new Error(`the daemon's answer to ${method} ${path} exceeds ${MAX_RESPONSE_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            let decoded: unknown = text;
            if ((res.headers['content-type'] ?? '').startsWith('application/json') && text !== '') {
              try {
                decoded = JSON.parse(text);
              } catch {
                reject(new ApiError('internal', `the daemon answered ${method} ${path} with malformed JSON`));
                return;
              }
            }
            if (status >= 200 && status < 300) resolve(decoded);
            else reject(errorFromBody(status, decoded, `${method} ${path}`));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`the swarm daemon at ${this.socketPath} did not answer ${method} ${path} within ${this.timeoutMs} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code !== undefined && UNREACHABLE_CODES.has(err.code)) reject(new DaemonUnreachableError(this.socketPath, err));
        else if (err.code === 'EACCES') reject(new Error(`permission denied on ${this.socketPath}: run as the user that started \`swarm daemon\` (or root)`));
        else reject(err);
      });
      if (payload !== null) req.write(payload);
      req.end();
    });
  }
}

/** Docker's `filters` query: JSON of lists; empty lists are left out. */
function filterQuery(filters: FileObjectFilters): string {
  const present = Object.fromEntries(Object.entries(filters).filter(([, v]) => Array.isArray(v) && v.length > 0));
  return Object.keys(present).length === 0 ? '' : `?${new URLSearchParams({ filters: JSON.stringify(present) }).toString()}`;
}

function errorFromBody(status: number, body: unknown, what: string): ApiError {
  if (typeof body === 'object' && body !== null && 'error' in body) {
    const e = (body as { error: unknown }).error;
    if (typeof e === 'object' && e !== null) {
      const code = (e as { code?: unknown }).code;
      const message = (e as { message?: unknown }).message;
      if (typeof message === 'string') return new ApiError(isApiErrorCode(code) ? code : 'internal', message);
    }
  }
  return new ApiError('internal', `the daemon answered ${what} with HTTP ${status}`);
}
