// The join bootstrap wire: a TLS endpoint on a manager's listen address (2377) presenting a certificate of the
// cluster CA, and the client a joining node uses. One JSON request line and one JSON answer line per connection.

import { X509Certificate, createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { checkTokenPinsCA, verifyNodeCertificate } from '@swarm/pki';
import type { Logger } from '@swarm/wire';
import { DaemonError, assert } from './errors.js';

export const JOIN_PROTOCOL_VERSION = 1;
/** A request or answer is a few certificates and names; anything larger is not ours. */
export const MAX_JOIN_MESSAGE_BYTES = 256 * 1024;
/** A join waits for a Raft commit on the manager: seconds normally. */
export const JOIN_TIMEOUT_MS = 30_000;
/** Concurrent join connections a manager serves; more are refused at accept. */
export const MAX_JOIN_CONNECTIONS = 64;

export interface JoinRequestMessage {
  version: typeof JOIN_PROTOCOL_VERSION;
  token: string;
  /** SPKI PEM of the key the node certificate is issued for. */
  nodePublicKey: string;
  libp2pPeerId: string;
  /** base64 libp2p signature over joinProofPayload(): the joiner holds the peer id's private key. */
  peerIdProof: string;
  hostname: string;
  advertiseHost: string;
  advertisePort: number;
  /** Where the joiner's libp2p host listens (a multiaddr with /p2p/); Raft reaches a manager there. */
  libp2pAddr: string;
  platform: { os: string; arch: string };
  resources: { nanoCpus: number; memoryBytes: number };
  engineVersion: string;
}

export interface ManagerContact {
  nodeId: string;
  peerId: string;
  multiaddrs: string[];
}

export type JoinAnswer =
  | {
      ok: true;
      nodeId: string;
      role: 'manager' | 'worker';
      clusterId: string;
      cert: string;
      caCert: string;
      /** Only for managers: they issue certificates too. */
      caKey: string | null;
      /** The pnet key file's text. */
      pnetKey: string;
      /** Only for managers: the data key file's text (secrets are sealed under it); null from a cluster without one. */
      dataKey: string | null;
      managers: ManagerContact[];
    }
  | { ok: false; code: 'token' | 'invalid' | 'unavailable'; message: string };

/** What the peer-id proof signs: binds the libp2p key to this cluster's CA and to the certified public key. */
export function joinProofPayload(caFingerprint: string, nodePublicKey: string): Uint8Array {
  return new TextEncoder().encode(`swarm-join/v1\n${caFingerprint}\n${nodePublicKey}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Record<string, unknown>, key: string, maxLength: number): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > maxLength) {
    throw new DaemonError('invalid_request', `join request field ${key} must be a string of 1-${maxLength} characters`);
  }
  return v;
}

function int(o: Record<string, unknown>, key: string, min: number, max: number): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new DaemonError('invalid_request', `join request field ${key} must be an integer in ${min}-${max}`);
  }
  return v;
}

/** Checks a decoded request's shape; the manager checks the token, proof and key after this. */
export function parseJoinRequest(raw: unknown): JoinRequestMessage {
  if (!isRecord(raw) || raw['version'] !== JOIN_PROTOCOL_VERSION) {
    throw new DaemonError('invalid_request', `not a version ${JOIN_PROTOCOL_VERSION} join request: upgrade the joining node or the manager`);
  }
  const platform = raw['platform'];
  const resources = raw['resources'];
  if (!isRecord(platform) || !isRecord(resources)) throw new DaemonError('invalid_request', 'join request lacks platform or resources');
  return {
    version: JOIN_PROTOCOL_VERSION,
    token: str(raw, 'token', 512),
    nodePublicKey: str(raw, 'nodePublicKey', 4096),
    libp2pPeerId: str(raw, 'libp2pPeerId', 128),
    peerIdProof: str(raw, 'peerIdProof', 1024),
    hostname: str(raw, 'hostname', 253),
    advertiseHost: str(raw, 'advertiseHost', 64),
    advertisePort: int(raw, 'advertisePort', 1, 65535),
    libp2pAddr: str(raw, 'libp2pAddr', 512),
    platform: { os: str(platform, 'os', 64), arch: str(platform, 'arch', 64) },
    resources: { nanoCpus: int(resources, 'nanoCpus', 0, Number.MAX_SAFE_INTEGER), memoryBytes: int(resources, 'memoryBytes', 0, Number.MAX_SAFE_INTEGER) },
    engineVersion: str(raw, 'engineVersion', 64),
  };
}

/** Reads one newline-terminated JSON value, bounded in size. */
function readLine(socket: Socket, what: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const done = (err: Error | null, value?: unknown): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      if (err !== null) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      const nl = chunk.indexOf(0x0a);
      bytes += nl < 0 ? chunk.length : nl;
      if (bytes > MAX_JOIN_MESSAGE_BYTES) {
        done(new DaemonError('invalid_request', `the ${what} exceeds ${MAX_JOIN_MESSAGE_BYTES} bytes`));
        return;
      }
      chunks.push(nl < 0 ? chunk : chunk.subarray(0, nl));
      if (nl < 0) return;
      try {
        done(null, JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        done(new DaemonError('invalid_request', `the ${what} is not JSON: ${(err as Error).message}`));
      }
    };
    const onEnd = (): void => done(new DaemonError('invalid_request', `the connection closed before the ${what} was complete`));
    const onError = (err: Error): void => done(err);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
  });
}

export interface JoinServerOptions {
  host: string;
  port: number;
  /** The manager's node certificate followed by the CA certificate: the joiner pins the CA in this chain. */
  certChainPem: string;
  keyPem: string;
  logger: Logger;
  handle(request: JoinRequestMessage, remoteAddress: string): Promise<JoinAnswer>;
}

export interface JoinServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startJoinServer(options: JoinServerOptions): Promise<JoinServer> {
  const sockets = new Set<TLSSocket>();
  const server = createServer({ cert: options.certChainPem, key: options.keyPem, minVersion: 'TLSv1.3' }, (socket) => {
    if (sockets.size >= MAX_JOIN_CONNECTIONS) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setTimeout(JOIN_TIMEOUT_MS, () => socket.destroy());
    const remote = socket.remoteAddress ?? 'unknown';
    void (async () => {
      let answer: JoinAnswer;
      try {
        answer = await options.handle(parseJoinRequest(await readLine(socket, 'join request')), remote);
      } catch (err) {
        const invalid = err instanceof DaemonError && err.code === 'invalid_request';
        if (!invalid) options.logger.warn({ err, remote }, 'join request failed');
        answer = { ok: false, code: invalid ? 'invalid' : 'unavailable', message: (err as Error).message };
      }
      if (!answer.ok) options.logger.info({ remote, code: answer.code, reason: answer.message }, 'join refused');
      if (!socket.destroyed) socket.end(`${JSON.stringify(answer)}\n`);
    })();
  });
  server.on('tlsClientError', (err) => options.logger.debug({ err: err.message }, 'join endpoint: TLS handshake failed'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  assert(address !== null && typeof address === 'object', 'the join server listens on a TCP port');
  options.logger.info({ host: options.host, port: address.port }, 'join endpoint listening');
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The CA certificate at the top of the chain the server presented, and the leaf it signed. */
function presentedChain(socket: TLSSocket): { caPem: string; leafPem: string; caFingerprint: string } {
  const leaf = socket.getPeerCertificate(true);
  if (leaf === null || leaf.raw === undefined) throw new DaemonError('join_refused', 'the manager presented no certificate');
  let top = leaf;
  for (let depth = 0; depth < 4 && top.issuerCertificate !== undefined && top.issuerCertificate !== top; depth += 1) {
    if (top.issuerCertificate.raw === undefined || top.issuerCertificate.raw.equals(top.raw)) break;
    top = top.issuerCertificate;
  }
  if (top === leaf) throw new DaemonError('join_refused', 'the manager presented no CA certificate in its TLS chain');
  const ca = new X509Certificate(top.raw);
  // The handshake proved the server holds the leaf's key; the CA must have signed that leaf.
  if (!new X509Certificate(leaf.raw).verify(ca.publicKey)) {
    throw new DaemonError('join_refused', "the manager's certificate is not signed by the CA it presented");
  }
  return { caPem: ca.toString(), leafPem: new X509Certificate(leaf.raw).toString(), caFingerprint: createHash('sha256').update(top.raw).digest('hex') };
}

/**
 * Joining side: connect, check that the presented CA is the one the token pins (checkTokenPinsCA throws a
 * PkiError otherwise, before the token leaves this node), then send the request built for that CA.
 */
export async function requestJoin(
  host: string,
  port: number,
  token: string,
  build: (caFingerprint: string) => Promise<JoinRequestMessage>,
  timeoutMs = JOIN_TIMEOUT_MS,
): Promise<{ answer: JoinAnswer; caPem: string }> {
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    // The chain is checked by hand against the token's pin: no public CA vouches for a swarm.
    const s = connect({ host, port, rejectUnauthorized: false, minVersion: 'TLSv1.3', timeout: timeoutMs });
    const onError = (err: Error): void => reject(new DaemonError('join_unreachable', `cannot reach the manager at ${host}:${port}: ${err.message}`));
    s.once('error', onError);
    s.once('timeout', () => s.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    s.once('secureConnect', () => {
      s.off('error', onError);
      resolve(s);
    });
  });
  try {
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`the manager did not answer the join within ${timeoutMs} ms`)));
    const { caPem, leafPem, caFingerprint } = presentedChain(socket);
    checkTokenPinsCA(token, caFingerprint);
    // A worker's certificate is signed by the same CA: only a manager's may take a token.
    const server = await verifyNodeCertificate(caPem, leafPem, { nowMs: Date.now() });
    if (server.role !== 'manager') throw new DaemonError('join_refused', `${host}:${port} is a swarm node but not a manager: join through a manager's address`);
    const request = await build(caFingerprint);
    const answerPromise = readLine(socket, 'join answer');
    socket.write(`${JSON.stringify(request)}\n`);
    const raw = await answerPromise;
    return { answer: parseJoinAnswer(raw), caPem };
  } finally {
    socket.destroy();
  }
}

function parseJoinAnswer(raw: unknown): JoinAnswer {
  const bad = (): DaemonError => new DaemonError('join_refused', 'the manager answered the join with a malformed message');
  if (!isRecord(raw)) throw bad();
  if (raw['ok'] === false) {
    const code = raw['code'];
    if ((code !== 'token' && code !== 'invalid' && code !== 'unavailable') || typeof raw['message'] !== 'string') throw bad();
    return { ok: false, code, message: raw['message'] };
  }
  const s = (k: string): string => {
    const v = raw[k];
    if (typeof v !== 'string' || v === '') throw bad();
    return v;
  };
  const role = raw['role'];
  if (raw['ok'] !== true || (role !== 'manager' && role !== 'worker') || !Array.isArray(raw['managers'])) throw bad();
  const managers: ManagerContact[] = raw['managers'].map((m: unknown) => {
    if (!isRecord(m) || typeof m['nodeId'] !== 'string' || typeof m['peerId'] !== 'string' || !Array.isArray(m['multiaddrs'])) throw bad();
    const multiaddrs = m['multiaddrs'].filter((a): a is string => typeof a === 'string');
    return { nodeId: m['nodeId'], peerId: m['peerId'], multiaddrs };
  });
  const caKey = raw['caKey'];
  if (caKey !== null && typeof caKey !== 'string') throw bad();
  // Absent from a manager older than secrets.
  const dataKey = raw['dataKey'] ?? null;
  if (dataKey !== null && typeof dataKey !== 'string') throw bad();
  return { ok: true, nodeId: s('nodeId'), role, clusterId: s('clusterId'), cert: s('cert'), caCert: s('caCert'), caKey, pnetKey: s('pnetKey'), dataKey, managers };
}
