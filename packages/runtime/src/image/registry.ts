// A client of the OCI distribution API over fetch: manifests (OCI and Docker, index -> this node's platform), blob
// download with digest verification, resume and retries, blob upload and manifest push, anonymous/Basic/Bearer auth,
// insecure (plain http) registries and Docker Hub mirrors.

import { Readable } from 'node:stream';
import { silentLogger, type Logger } from '@swarm/wire';
import { RuntimeError, assert } from '../runtime.js';
import {
  MANIFEST_ACCEPT,
  MAX_MANIFEST_BYTES,
  hostPlatform,
  isManifestType,
  parseManifest,
  selectPlatform,
  sha256Digest,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  type Platform,
} from './oci.js';
import { DOCKER_HUB, familiarReference, isDigest, parseReference, type ImageReference } from './reference.js';

export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
}

/** Credentials for a registry host (`127.0.0.1:5000`, `docker.io`, a mirror's host), or null for anonymous. */
export type RegistryAuth = (registryHost: string) => RegistryCredentials | null | Promise<RegistryCredentials | null>;

export interface RegistryClientOptions {
  auth?: RegistryAuth;
  /** `host:port` of registries spoken to over plain http; loopback and localhost always are (as in Docker). */
  insecureRegistries?: readonly string[];
  /** Docker's registry-mirrors: base URLs (`http://10.0.0.1:5000`) tried in order for docker.io images before docker.io. */
  registryMirrors?: readonly string[];
  /** The platform picked from an index; this node's (linux + process.arch) by default. */
  platform?: Platform;
  /** Until a response's headers arrive. */
  requestTimeoutMs?: number;
  /** A response body that sends nothing for this long is abandoned (and the download resumed). */
  idleTimeoutMs?: number;
  /** Attempts at one request or download that makes no progress before giving up. */
  maxAttempts?: number;
  /** First retry delay, doubled for each further attempt. */
  retryDelayMs?: number;
  logger?: Logger;
  fetch?: typeof fetch;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_RETRY_DELAY_MS = 200;
/** Upper bound on attempts at one download even when each one makes some progress. */
const MAX_TOTAL_ATTEMPTS = 50;
const MAX_RETRY_DELAY_MS = 5_000;
const DOCKER_HUB_ENDPOINT = 'https://registry-1.docker.io';
/** Token lifetime when the token server does not say (the distribution spec's default). */
const DEFAULT_TOKEN_LIFETIME_S = 60;
const MAX_CACHED_TOKENS = 256;

/** Where requests for one registry go: the registry itself or a mirror of it. */
interface Endpoint {
  /** `http://127.0.0.1:5000` */
  readonly base: string;
  /** What the auth callback is asked about. */
  readonly host: string;
  readonly mirror: boolean;
}

type Challenge = { scheme: 'basic'; realm: string } | { scheme: 'bearer'; realm: string; service: string | null; scope: string | null };

export interface FetchedManifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly bytes: Buffer;
}

/** An image manifest for this platform and, when the reference named an index, that index. */
export interface FetchedImage {
  /** What the reference resolves to: the index's digest for a multi-platform image, else the manifest's. */
  readonly topDigest: string;
  readonly index: (FetchedManifest & { readonly parsed: ImageIndex }) | null;
  readonly manifest: FetchedManifest & { readonly parsed: ImageManifest };
}

/** Where a blob download writes: hashes as it goes (BlobWriter), restartable. */
export interface BlobSink {
  readonly bytesWritten: number;
  write(chunk: Uint8Array): Promise<void>;
  reset(): Promise<void>;
}

export interface UploadOptions {
  /** Upload in PATCH chunks of this size; 0 (the default) uploads in one PUT. */
  chunkBytes?: number;
  signal?: AbortSignal;
}

/** Errors worth another attempt: the network, timeouts, a 5xx or 429, a body cut short. */
class TransientError extends Error {}

function isLoopbackHost(hostPort: string): boolean {
  const host = hostPort.startsWith('[') ? hostPort.slice(1, hostPort.indexOf(']')) : hostPort.replace(/:\d+$/, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** `Bearer realm="…",service="…",scope="…"` -> its parts; null for schemes we do not speak. */
export function parseChallenge(header: string | null): Challenge | null {
  if (header === null) return null;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (m === null) return null;
  const scheme = (m[1] as string).toLowerCase();
  const params: Record<string, string> = {};
  const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g;
  for (let p = re.exec(m[2] as string); p !== null; p = re.exec(m[2] as string)) {
    params[(p[1] as string).toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  if (scheme === 'basic') return { scheme: 'basic', realm: params['realm'] ?? '' };
  if (scheme === 'bearer' && params['realm'] !== undefined) {
    return { scheme: 'bearer', realm: params['realm'], service: params['service'] ?? null, scope: params['scope'] ?? null };
  }
  return null;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(abortError(signal));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(abortError(signal as AbortSignal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted');
}

/** The registry's own words from an error body (`{"errors":[{"code","message"}]}`), if any. */
async function registryErrorText(res: Response): Promise<string> {
  try {
    const text = (await res.text()).slice(0, 2048);
    const v = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    const e = v.errors?.[0];
    if (e !== undefined) return `${e.code ?? ''}${e.message !== undefined ? `: ${e.message}` : ''}`;
    return text.trim();
  } catch {
    return '';
  }
}

export class RegistryClient {
  private readonly insecure: Set<string>;
  private readonly mirrors: readonly string[];
  private readonly platform: Platform;
  private readonly requestTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;
  private readonly log: Logger;
  private readonly fetchFn: typeof fetch;
  private readonly authFn: RegistryAuth;
  /** The auth scheme each endpoint asked for last, so later requests authenticate up front. */
  private readonly challenges = new Map<string, Challenge>();
  /** Bearer tokens by realm, service, scope and user, until shortly before they expire. */
  private readonly tokens = new Map<string, { token: string; expiresAtMs: number }>();

  constructor(opts: RegistryClientOptions = {}) {
    this.insecure = new Set(opts.insecureRegistries ?? []);
    this.mirrors = (opts.registryMirrors ?? []).map((m) => m.replace(/\/+$/, ''));
    for (const m of this.mirrors) {
      if (!/^https?:\/\/[^/]+/.test(m)) throw new RuntimeError('invalid_config', `registry mirror "${m}" is not an http(s) URL like https://mirror.example.com`);
    }
    this.platform = opts.platform ?? hostPlatform();
    this.requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
    this.retryDelayMs = opts.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
    this.log = opts.logger ?? silentLogger();
    this.fetchFn = opts.fetch ?? fetch;
    this.authFn = opts.auth ?? (() => null);
  }

  /** `http` for insecure registries (the list, loopback, localhost), else `https`. */
  schemeFor(registryHost: string): 'http' | 'https' {
    return this.insecure.has(registryHost) || isLoopbackHost(registryHost) ? 'http' : 'https';
  }

  private endpoints(ref: ImageReference, forPush: boolean): Endpoint[] {
    if (ref.registry === DOCKER_HUB) {
      const hub: Endpoint = { base: DOCKER_HUB_ENDPOINT, host: DOCKER_HUB, mirror: false };
      if (forPush) return [hub];
      return [...this.mirrors.map((base) => ({ base, host: new URL(base).host, mirror: true })), hub];
    }
    return [{ base: `${this.schemeFor(ref.registry)}://${ref.registry}`, host: ref.registry, mirror: false }];
  }

  // ---- auth ----

  /**
   * `docker login`'s check: the registry's /v2/ with these credentials (Basic at once, or through its token server
   * for Bearer). Resolves when they are accepted; a refusal is RuntimeError('image_unavailable') saying so.
   */
  async checkLogin(registryHost: string, creds: RegistryCredentials, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const ep: Endpoint = { base: `${this.schemeFor(registryHost)}://${registryHost}`, host: registryHost, mirror: false };
    let res: Response;
    try {
      res = await this.timedFetch(`${ep.base}/v2/`, {}, opts.signal);
    } catch (err) {
      throw new RuntimeError('image_unavailable', `registry ${registryHost} cannot be reached: ${(err as Error).message}`);
    }
    await res.body?.cancel();
    if (res.ok) return; // no auth at all: any credentials do
    const ch = res.status === 401 ? parseChallenge(res.headers.get('www-authenticate')) : null;
    if (ch === null) throw new RuntimeError('image_unavailable', `registry ${registryHost} answered /v2/ with ${res.status} and no login challenge`);
    if (ch.scheme === 'bearer') {
      await this.token(ep, ch, '', creds, opts.signal);
      return;
    }
    const basic = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    const again = await this.timedFetch(`${ep.base}/v2/`, { headers: { authorization: basic } }, opts.signal);
    await again.body?.cancel();
    if (!again.ok) throw new RuntimeError('image_unavailable', `registry ${registryHost} refused the credentials of ${creds.username}: check the user name and password`);
  }

  private async credentials(host: string): Promise<RegistryCredentials | null> {
    return (await this.authFn(host)) ?? null;
  }

  private async authorization(ep: Endpoint, scope: string, signal: AbortSignal | undefined): Promise<string | null> {
    const ch = this.challenges.get(ep.base);
    if (ch === undefined) return null;
    const creds = await this.credentials(ep.host);
    if (ch.scheme === 'basic') {
      if (creds === null) {
        throw new RuntimeError('image_unavailable', `registry ${ep.host} requires a login: give credentials for it (swarm login ${ep.host})`);
      }
      return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    }
    return `Bearer ${await this.token(ep, ch, scope, creds, signal)}`;
  }

  private async token(
    ep: Endpoint,
    ch: Extract<Challenge, { scheme: 'bearer' }>,
    scope: string,
    creds: RegistryCredentials | null,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const key = JSON.stringify([ch.realm, ch.service, scope, creds?.username ?? '']);
    const cached = this.tokens.get(key);
    if (cached !== undefined && cached.expiresAtMs > Date.now()) return cached.token;
    const url = new URL(ch.realm);
    if (ch.service !== null) url.searchParams.set('service', ch.service);
    for (const s of scope.split(' ').filter((x) => x !== '')) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (creds !== null) headers['authorization'] = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    let res: Response;
    try {
      res = await this.timedFetch(url.toString(), { headers }, signal);
    } catch (err) {
      throw new RuntimeError('image_unavailable', `the token server of ${ep.host} (${url.origin}) cannot be reached: ${(err as Error).message}`);
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw new RuntimeError(
        'image_unavailable',
        creds === null
          ? `registry ${ep.host} requires a login for ${scope}: give credentials for it`
          : `registry ${ep.host} refused the credentials of ${creds.username}: check the user name and password`,
      );
    }
    if (!res.ok) throw new RuntimeError('image_unavailable', `the token server of ${ep.host} answered ${res.status}: ${await registryErrorText(res)}`);
    const body = (await res.json().catch(() => null)) as { token?: unknown; access_token?: unknown; expires_in?: unknown } | null;
    const token = typeof body?.token === 'string' ? body.token : typeof body?.access_token === 'string' ? body.access_token : null;
    if (token === null || token === '') throw new RuntimeError('image_unavailable', `the token server of ${ep.host} sent no token`);
    const lifetimeS = typeof body?.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_LIFETIME_S;
    // Renew a little early so a token does not run out between here and the registry.
    const marginMs = Math.min(10_000, (lifetimeS * 1000) / 10);
    if (this.tokens.size >= MAX_CACHED_TOKENS) this.tokens.clear();
    this.tokens.set(key, { token, expiresAtMs: Date.now() + lifetimeS * 1000 - marginMs });
    return token;
  }

  // ---- requests ----

  /** fetch with a deadline for the response headers; the caller's signal aborts it (and its body) too. */
  private async timedFetch(url: string, init: RequestInit, signal: AbortSignal | undefined): Promise<Response> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(new TransientError(`no answer from ${new URL(url).host} within ${this.requestTimeoutMs} ms`)), this.requestTimeoutMs);
    try {
      return await this.fetchFn(url, { ...init, signal: signal === undefined ? ctl.signal : AbortSignal.any([ctl.signal, signal]) });
    } catch (err) {
      if (signal?.aborted === true) throw signal.reason instanceof TransientError ? signal.reason : abortError(signal);
      if (ctl.signal.aborted && ctl.signal.reason instanceof TransientError) throw ctl.signal.reason;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new TransientError(`${new URL(url).host}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * One request to a registry endpoint, authenticated as the endpoint last asked; on a 401 the challenge is
   * remembered and the request sent once more. `body` is a factory so it can be sent twice.
   */
  private async send(
    ep: Endpoint,
    scope: string,
    method: string,
    pathOrUrl: string,
    opts: { headers?: Record<string, string>; body?: () => NonNullable<RequestInit['body']> | null; signal?: AbortSignal | undefined },
  ): Promise<Response> {
    const url = pathOrUrl.startsWith('http://') || pathOrUrl.startsWith('https://') ? pathOrUrl : `${ep.base}${pathOrUrl}`;
    for (let round = 0; ; round++) {
      const headers: Record<string, string> = { 'user-agent': 'swarm', ...opts.headers };
      const authz = await this.authorization(ep, scope, opts.signal);
      if (authz !== null) headers['authorization'] = authz;
      const body = opts.body?.() ?? null;
      const init: RequestInit & { duplex?: 'half' } = { method, headers, redirect: 'follow' };
      if (body !== null) {
        init.body = body;
        init.duplex = 'half';
      }
      this.log.debug({ method, url }, 'registry request');
      const res = await this.timedFetch(url, init, opts.signal);
      if (res.status !== 401 || round > 0) {
        if (res.status === 401 || (res.status === 403 && authz !== null)) {
          const why = await registryErrorText(res);
          const creds = await this.credentials(ep.host);
          throw new RuntimeError(
            'image_unavailable',
            creds === null
              ? `registry ${ep.host} requires a login for ${scope} (${why || res.status}): give credentials for it`
              : `registry ${ep.host} refused access for ${creds.username} to ${scope} (${why || res.status}): check the credentials and that the user may ${scope.split(':').pop() ?? 'pull'}`,
          );
        }
        return res;
      }
      const ch = parseChallenge(res.headers.get('www-authenticate'));
      await res.body?.cancel();
      // A token we held was refused (revoked, or for too small a scope): ask again rather than reuse it.
      if (authz !== null) this.tokens.clear();
      if (ch === null) throw new RuntimeError('image_unavailable', `registry ${ep.host} asks for an authentication scheme this client does not speak (${String(res.headers.get('www-authenticate'))})`);
      this.challenges.set(ep.base, ch);
      if (ch.scheme === 'bearer' && ch.scope !== null && !ch.scope.split(' ').includes(scope)) scope = `${scope} ${ch.scope}`;
    }
  }

  /** Runs fn up to maxAttempts times while it fails with a transient error, backing off between attempts. */
  private async retrying<T>(what: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    let delay = this.retryDelayMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof TransientError) || attempt >= this.maxAttempts || signal?.aborted === true) {
          if (err instanceof TransientError) {
            throw new RuntimeError('image_unavailable', `${what} failed after ${attempt} attempts: ${err.message}`);
          }
          throw err;
        }
        this.log.debug({ what, attempt, err: err.message }, 'registry request failed; retrying');
        await sleep(delay, signal);
        delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
      }
    }
  }

  /** Tries each endpoint (mirrors first); a mirror's failure of any kind falls through to the next. */
  private async onEndpoints<T>(ref: ImageReference, forPush: boolean, fn: (ep: Endpoint) => Promise<T>): Promise<T> {
    const eps = this.endpoints(ref, forPush);
    let lastErr: unknown = null;
    for (const ep of eps) {
      try {
        return await fn(ep);
      } catch (err) {
        lastErr = err;
        if (!ep.mirror) throw err;
        this.log.info({ mirror: ep.base, err: (err as Error).message }, 'registry mirror failed; trying the next');
      }
    }
    throw lastErr;
  }

  private static scope(ref: ImageReference, push: boolean): string {
    return `repository:${ref.repository}:${push ? 'pull,push' : 'pull'}`;
  }

  private static check5xx(res: Response, what: string): void {
    if (res.status >= 500 || res.status === 429) {
      void res.body?.cancel();
      throw new TransientError(`${what}: the registry answered ${res.status}`);
    }
  }

  // ---- manifests ----

  /** The raw manifest or index `tagOrDigest` names, verified against the digest it was asked by or the registry gave. */
  async getManifest(ref: ImageReference, tagOrDigest: string, opts: { signal?: AbortSignal } = {}): Promise<FetchedManifest> {
    return this.onEndpoints(ref, false, (ep) => this.getManifestFrom(ep, ref, tagOrDigest, opts.signal));
  }

  private async getManifestFrom(ep: Endpoint, ref: ImageReference, tagOrDigest: string, signal: AbortSignal | undefined): Promise<FetchedManifest> {
    const name = `${familiarReference({ ...ref, tag: isDigest(tagOrDigest) ? null : tagOrDigest, digest: isDigest(tagOrDigest) ? tagOrDigest : null })}`;
    return this.retrying(`fetching the manifest of ${name} from ${ep.host}`, signal, async () => {
      const res = await this.send(ep, RegistryClient.scope(ref, false), 'GET', `/v2/${ref.repository}/manifests/${tagOrDigest}`, {
        headers: { accept: MANIFEST_ACCEPT },
        signal,
      });
      RegistryClient.check5xx(res, `manifest of ${name}`);
      if (res.status === 404) {
        const why = await registryErrorText(res);
        throw new RuntimeError('image_unavailable', `manifest for ${name} not found on ${ep.host}${why !== '' ? ` (${why})` : ''}: check the name and tag`);
      }
      if (!res.ok) throw new RuntimeError('image_unavailable', `${ep.host} refused the manifest of ${name}: ${res.status} ${await registryErrorText(res)}`);
      const bytes = await this.readCapped(res, MAX_MANIFEST_BYTES, `the manifest of ${name}`);
      const digest = sha256Digest(bytes);
      const expected = isDigest(tagOrDigest) ? tagOrDigest : res.headers.get('docker-content-digest');
      if (expected !== null && isDigest(expected) && expected !== digest) {
        throw new RuntimeError('image_unavailable', `the manifest of ${name} from ${ep.host} failed verification: expected ${expected}, got ${digest}`);
      }
      const parsed = parseManifest(bytes, res.headers.get('content-type'), `the manifest of ${name}`);
      return { digest, mediaType: parsed.mediaType, bytes };
    });
  }

  private async readCapped(res: Response, maxBytes: number, what: string): Promise<Buffer> {
    const len = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(len) && len > maxBytes) {
      await res.body?.cancel();
      throw new RuntimeError('image_unavailable', `${what} is ${len} bytes, more than the ${maxBytes} allowed`);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    if (res.body === null) return Buffer.alloc(0);
    try {
      for await (const chunk of res.body) {
        total += chunk.byteLength;
        if (total > maxBytes) throw new RuntimeError('image_unavailable', `${what} is more than the ${maxBytes} bytes allowed`);
        chunks.push(Buffer.from(chunk));
      }
    } catch (err) {
      if (err instanceof RuntimeError) throw err;
      throw new TransientError(`${what} was cut short: ${(err as Error).message}`);
    }
    return Buffer.concat(chunks);
  }

  /** The manifest (and index) for this node's platform. */
  async fetchImage(ref: ImageReference, opts: { signal?: AbortSignal } = {}): Promise<FetchedImage> {
    const top = await this.getManifest(ref, ref.digest ?? ref.tag ?? 'latest', opts);
    const parsed = parseManifest(top.bytes, top.mediaType, familiarReference(ref));
    if (parsed.kind === 'manifest') return { topDigest: top.digest, index: null, manifest: { ...top, parsed: parsed.manifest } };
    const chosen = selectPlatform(parsed.index, this.platform, familiarReference(ref));
    const m = await this.getManifest(ref, chosen.digest, opts);
    const inner = parseManifest(m.bytes, m.mediaType, `${familiarReference(ref)} (${chosen.digest})`);
    if (inner.kind !== 'manifest') throw new RuntimeError('image_unavailable', `${familiarReference(ref)}: the index entry ${chosen.digest} is not an image manifest`);
    return { topDigest: top.digest, index: { ...top, parsed: parsed.index }, manifest: { ...m, parsed: inner.manifest } };
  }

  /**
   * The digest `reference` stands for now: the registry's Docker-Content-Digest from a HEAD (the index's digest for
   * a multi-platform image, as Docker pins it), or the hash of the manifest when the registry does not say.
   */
  async resolve(reference: string | ImageReference, opts: { signal?: AbortSignal } = {}): Promise<string> {
    const ref = typeof reference === 'string' ? parseReference(reference) : reference;
    if (ref.digest !== null) return ref.digest;
    const tag = ref.tag ?? 'latest';
    return this.onEndpoints(ref, false, async (ep) => {
      const head = await this.retrying(`resolving ${familiarReference(ref)} on ${ep.host}`, opts.signal, async () => {
        const res = await this.send(ep, RegistryClient.scope(ref, false), 'HEAD', `/v2/${ref.repository}/manifests/${tag}`, {
          headers: { accept: MANIFEST_ACCEPT },
          signal: opts.signal,
        });
        RegistryClient.check5xx(res, `manifest of ${familiarReference(ref)}`);
        return res;
      });
      if (head.status === 404) throw new RuntimeError('image_unavailable', `manifest for ${familiarReference(ref)} not found on ${ep.host}: check the name and tag`);
      const digest = head.ok ? head.headers.get('docker-content-digest') : null;
      if (digest !== null && isDigest(digest)) return digest;
      return (await this.getManifestFrom(ep, ref, tag, opts.signal)).digest;
    });
  }

  async putManifest(ref: ImageReference, tagOrDigest: string, bytes: Uint8Array, mediaType: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
    const digest = sha256Digest(bytes);
    const [ep] = this.endpoints(ref, true);
    assert(ep !== undefined, 'a registry has an endpoint');
    const name = familiarReference(ref);
    await this.retrying(`pushing the manifest of ${name}`, opts.signal, async () => {
      const res = await this.send(ep, RegistryClient.scope(ref, true), 'PUT', `/v2/${ref.repository}/manifests/${tagOrDigest}`, {
        headers: { 'content-type': mediaType },
        body: () => Buffer.from(bytes),
        signal: opts.signal,
      });
      RegistryClient.check5xx(res, `manifest of ${name}`);
      if (res.status !== 201 && !res.ok) throw new RuntimeError('image_unavailable', `${ep.host} refused the manifest of ${name}: ${res.status} ${await registryErrorText(res)}`);
      await res.body?.cancel();
    });
    return digest;
  }

  // ---- blobs ----

  /**
   * Downloads a blob into `sink`, resuming with a Range request (or starting over when the server ignores it) after
   * the connection drops or stalls. The caller commits the sink, which verifies the digest.
   */
  async downloadBlob(
    ref: ImageReference,
    desc: Pick<Descriptor, 'digest' | 'size'>,
    sink: BlobSink,
    opts: { signal?: AbortSignal; onBytes?: (bytesSoFar: number) => void } = {},
  ): Promise<void> {
    await this.onEndpoints(ref, false, async (ep) => {
      if (sink.bytesWritten > 0) await sink.reset();
      await this.downloadFrom(ep, ref, desc, sink, opts);
    });
  }

  private async downloadFrom(
    ep: Endpoint,
    ref: ImageReference,
    desc: Pick<Descriptor, 'digest' | 'size'>,
    sink: BlobSink,
    opts: { signal?: AbortSignal; onBytes?: (bytesSoFar: number) => void },
  ): Promise<void> {
    let failures = 0;
    let delay = this.retryDelayMs;
    for (let attempt = 1; ; attempt++) {
      const before = sink.bytesWritten;
      try {
        await this.downloadOnce(ep, ref, desc, sink, opts);
        return;
      } catch (err) {
        if (!(err instanceof TransientError) || opts.signal?.aborted === true) throw err;
        // An attempt that got some bytes in does not count against the limit, up to an overall bound.
        failures = sink.bytesWritten > before ? 0 : failures + 1;
        if (failures >= this.maxAttempts || attempt >= MAX_TOTAL_ATTEMPTS) {
          throw new RuntimeError('image_unavailable', `downloading blob ${desc.digest} from ${ep.host} failed after ${attempt} attempts: ${err.message}`);
        }
        this.log.info({ digest: desc.digest, attempt, have: sink.bytesWritten, err: err.message }, 'blob download interrupted; resuming');
        await sleep(delay, opts.signal);
        delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
      }
    }
  }

  private async downloadOnce(
    ep: Endpoint,
    ref: ImageReference,
    desc: Pick<Descriptor, 'digest' | 'size'>,
    sink: BlobSink,
    opts: { signal?: AbortSignal; onBytes?: (bytesSoFar: number) => void },
  ): Promise<void> {
    const from = sink.bytesWritten;
    if (from === desc.size) return;
    const headers: Record<string, string> = {};
    if (from > 0) headers['range'] = `bytes=${from}-`;
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await this.send(ep, RegistryClient.scope(ref, false), 'GET', `/v2/${ref.repository}/blobs/${desc.digest}`, { headers, signal: ctl.signal });
      RegistryClient.check5xx(res, `blob ${desc.digest}`);
      if (res.status === 404) {
        await res.body?.cancel();
        throw new RuntimeError('image_unavailable', `blob ${desc.digest} of ${familiarReference(ref)} not found on ${ep.host}: the image is incomplete there; push it again`);
      }
      if (res.status === 206) {
        const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
        if (m === null || Number(m[1]) !== from) {
          await res.body?.cancel();
          await sink.reset();
          throw new TransientError(`blob ${desc.digest}: the registry answered the range from ${from} with ${String(res.headers.get('content-range'))}`);
        }
      } else if (res.ok) {
        if (from > 0) await sink.reset();
      } else {
        throw new RuntimeError('image_unavailable', `${ep.host} refused blob ${desc.digest}: ${res.status} ${await registryErrorText(res)}`);
      }
      if (res.body === null) throw new TransientError(`blob ${desc.digest}: empty response`);
      let idle: NodeJS.Timeout | null = null;
      const arm = (): void => {
        if (idle !== null) clearTimeout(idle);
        idle = setTimeout(() => ctl.abort(new TransientError(`blob ${desc.digest}: no data for ${this.idleTimeoutMs} ms`)), this.idleTimeoutMs);
      };
      arm();
      try {
        for await (const chunk of res.body) {
          arm();
          await sink.write(chunk);
          opts.onBytes?.(sink.bytesWritten);
        }
      } catch (err) {
        if (err instanceof RuntimeError) throw err;
        if (opts.signal?.aborted === true) throw abortError(opts.signal);
        throw new TransientError(`blob ${desc.digest} was cut off after ${sink.bytesWritten} of ${desc.size} bytes: ${(err as Error).message}`);
      } finally {
        if (idle !== null) clearTimeout(idle);
      }
      if (sink.bytesWritten < desc.size) throw new TransientError(`blob ${desc.digest} ended after ${sink.bytesWritten} of ${desc.size} bytes`);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  async blobExists(ref: ImageReference, digest: string, opts: { signal?: AbortSignal; forPush?: boolean } = {}): Promise<boolean> {
    const [ep] = this.endpoints(ref, opts.forPush ?? false);
    assert(ep !== undefined, 'a registry has an endpoint');
    return this.retrying(`checking blob ${digest} on ${ep.host}`, opts.signal, async () => {
      const res = await this.send(ep, RegistryClient.scope(ref, opts.forPush ?? false), 'HEAD', `/v2/${ref.repository}/blobs/${digest}`, { signal: opts.signal });
      RegistryClient.check5xx(res, `blob ${digest}`);
      await res.body?.cancel();
      if (res.status === 404) return false;
      if (res.ok) return true;
      throw new RuntimeError('image_unavailable', `${ep.host} answered ${res.status} for blob ${digest}`);
    });
  }

  /**
   * Uploads a blob unless the registry has it (HEAD first): one PUT, or PATCH chunks then a closing PUT.
   * `open` gives the blob's bytes from the start each time it is called.
   */
  async uploadBlob(ref: ImageReference, desc: Pick<Descriptor, 'digest' | 'size'>, open: () => Readable, opts: UploadOptions = {}): Promise<'exists' | 'uploaded'> {
    if (await this.blobExists(ref, desc.digest, { forPush: true, ...(opts.signal !== undefined ? { signal: opts.signal } : {}) })) return 'exists';
    const [ep] = this.endpoints(ref, true);
    assert(ep !== undefined, 'a registry has an endpoint');
    const scope = RegistryClient.scope(ref, true);
    await this.retrying(`uploading blob ${desc.digest} to ${ep.host}`, opts.signal, async () => {
      const start = await this.send(ep, scope, 'POST', `/v2/${ref.repository}/blobs/uploads/`, { signal: opts.signal, body: () => null });
      RegistryClient.check5xx(start, `upload of ${desc.digest}`);
      if (start.status !== 202) throw new RuntimeError('image_unavailable', `${ep.host} refused to start an upload: ${start.status} ${await registryErrorText(start)}`);
      await start.body?.cancel();
      let location = RegistryClient.location(ep, start, 'upload start');
      const chunkBytes = opts.chunkBytes ?? 0;
      if (chunkBytes > 0) {
        let offset = 0;
        for await (const chunk of chunked(open(), chunkBytes)) {
          const res = await this.send(ep, scope, 'PATCH', location, {
            headers: {
              'content-type': 'application/octet-stream',
              'content-range': `${offset}-${offset + chunk.byteLength - 1}`,
              'content-length': String(chunk.byteLength),
            },
            body: () => chunk,
            signal: opts.signal,
          });
          RegistryClient.check5xx(res, `upload of ${desc.digest}`);
          if (res.status !== 202) throw new RuntimeError('image_unavailable', `${ep.host} refused a chunk of blob ${desc.digest}: ${res.status} ${await registryErrorText(res)}`);
          await res.body?.cancel();
          location = RegistryClient.location(ep, res, 'upload chunk');
          offset += chunk.byteLength;
        }
        assert(offset === desc.size, `uploaded ${offset} bytes of a ${desc.size}-byte blob`);
      }
      const done = new URL(location);
      done.searchParams.set('digest', desc.digest);
      const res = await this.send(ep, scope, 'PUT', done.toString(), {
        headers:
          chunkBytes > 0
            ? { 'content-length': '0' }
            : { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
        body: () => (chunkBytes > 0 ? null : (Readable.toWeb(open()) as NonNullable<RequestInit['body']>)),
        signal: opts.signal,
      });
      RegistryClient.check5xx(res, `upload of ${desc.digest}`);
      if (res.status !== 201) throw new RuntimeError('image_unavailable', `${ep.host} refused blob ${desc.digest}: ${res.status} ${await registryErrorText(res)}`);
      await res.body?.cancel();
    });
    return 'uploaded';
  }

  private static location(ep: Endpoint, res: Response, what: string): string {
    const loc = res.headers.get('location');
    if (loc === null) throw new RuntimeError('image_unavailable', `${ep.host} sent no Location for the ${what}`);
    return new URL(loc, `${ep.base}/`).toString();
  }
}

/** Re-cuts a stream into pieces of exactly `size` bytes (the last one shorter). */
async function* chunked(src: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const c of src) {
    let buf = Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array);
    while (have + buf.byteLength >= size) {
      const take = size - have;
      parts.push(buf.subarray(0, take));
      yield Buffer.concat(parts);
      parts = [];
      have = 0;
      buf = buf.subarray(take);
    }
    if (buf.byteLength > 0) {
      parts.push(buf);
      have += buf.byteLength;
    }
  }
  if (have > 0) yield Buffer.concat(parts);
}
