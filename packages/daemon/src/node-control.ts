// The two libp2p protocols that change a node's place in the cluster: a manager tells a node its new role (promote,
// demote: a new certificate, and the CA key for a manager) or that it was removed; a worker asks a manager to forget it.

import { X509Certificate } from 'node:crypto';
import type { GossipHost, Stream } from '@swarm/gossip';
import type { NodeRole } from '@swarm/store';
import type { Logger } from '@swarm/wire';
import { encodeFrame, FrameReader } from 'raft-consensus-ts';
import { DaemonError } from './errors.js';

export const ROLE_PROTOCOL = '/swarm/role/1.0.0';
export const LEAVE_PROTOCOL = '/swarm/leave/1.0.0';
/** Certificates and a few addresses: small. */
const MAX_CONTROL_FRAME_BYTES = 256 * 1024;
export const CONTROL_TIMEOUT_MS = 10_000;
const MAX_INBOUND_CONTROL_STREAMS = 8;

/** A manager Raft peer as a promoted node needs to know it. */
export interface RaftPeer {
  nodeId: string;
  multiaddr: string;
}

/** Manager -> node, first frame: who asks (its certificate, checked against the peer libp2p authenticated). */
export type RoleRequest =
  | { op: 'role'; managerCert: string; role: NodeRole }
  | { op: 'removed'; managerCert: string };

/** Node -> manager: its current certificate, so the manager can certify the same key for the new role. */
interface RoleHello {
  ok: true;
  nodeCert: string;
}

/** Manager -> node, second frame of a role change. */
export interface RoleGrant {
  cert: string;
  /** Managers hold the CA key (they certify joining nodes); workers get null. */
  caKey: string | null;
  /** Managers hold the data key file's text too (secrets are sealed under it); workers get null. */
  dataKey: string | null;
  managers: RaftPeer[];
}

/** Node -> manager, last frame. managerAddr: where the node serves as a manager (host:port), for its ManagerStatus. */
type RoleDone = { ok: true; managerAddr: string } | { ok: false; message: string };

type LeaveAnswer = { ok: true } | { ok: false; message: string };

/** Frames in and out of one stream, read one at a time (a role change is a short conversation). */
class FrameChannel {
  private readonly reader = new FrameReader(MAX_CONTROL_FRAME_BYTES);
  private readonly queued: unknown[] = [];
  private readonly source: AsyncIterator<Uint8Array | { subarray(): Uint8Array }>;

  constructor(private readonly stream: Stream) {
    this.source = (stream as AsyncIterable<Uint8Array | { subarray(): Uint8Array }>)[Symbol.asyncIterator]();
  }

  send(value: unknown): void {
    this.stream.send(encodeFrame(value, MAX_CONTROL_FRAME_BYTES));
  }

  async next(what: string): Promise<unknown> {
    while (this.queued.length === 0) {
      const { value, done } = await this.source.next();
      if (done === true) throw new DaemonError('peer_unreachable', `the peer closed the stream before sending ${what}`);
      const bytes = value instanceof Uint8Array ? value : value.subarray();
      this.queued.push(...this.reader.push(Buffer.from(bytes)));
    }
    return this.queued.shift();
  }

  async close(): Promise<void> {
    await this.stream.close().catch(() => undefined);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function withTimeout<T>(what: string, work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DaemonError('peer_unreachable', `${what} did not finish within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** The SPKI PEM of the key a certificate certifies: a role change re-certifies the same key. */
export function publicKeyOfCertificate(certPem: string): string {
  try {
    return new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  } catch (err) {
    throw new DaemonError('invalid_request', `not a certificate: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------- manager side

/**
 * Tells the node at `peer` its new role: sends our certificate, takes its current one, lets `grant` certify its key
 * for the role, and resolves with the address it serves as a manager at. Throws DaemonError if it refused or failed.
 */
export async function sendRoleChange(
  host: GossipHost,
  peer: string,
  request: Extract<RoleRequest, { op: 'role' }>,
  grant: (nodeCertPem: string) => Promise<RoleGrant>,
): Promise<string> {
  const stream = await host.openStream(peer, ROLE_PROTOCOL, AbortSignal.timeout(CONTROL_TIMEOUT_MS));
  const channel = new FrameChannel(stream);
  try {
    return await withTimeout(`the role change of ${peer}`, (async () => {
      channel.send(request);
      const hello = await channel.next('its certificate');
      if (!isObject(hello) || hello['ok'] !== true || typeof hello['nodeCert'] !== 'string') {
        const message = isObject(hello) && typeof hello['message'] === 'string' ? hello['message'] : 'a malformed answer';
        throw new DaemonError('peer_refused', `the node refused the role change: ${message}`);
      }
      channel.send(await grant(hello['nodeCert']));
      const done = await channel.next('the outcome');
      if (!isObject(done) || done['ok'] !== true || typeof done['managerAddr'] !== 'string') {
        const message = isObject(done) && typeof done['message'] === 'string' ? done['message'] : 'a malformed answer';
        throw new DaemonError('peer_refused', `the node failed the role change: ${message}`);
      }
      return done['managerAddr'];
    })(), CONTROL_TIMEOUT_MS);
  } finally {
    await channel.close();
  }
}

/** Tells a node that `node rm --force` removed it; best effort (it may be gone already). */
export async function sendRemoved(host: GossipHost, peer: string, request: Extract<RoleRequest, { op: 'removed' }>): Promise<void> {
  const stream = await host.openStream(peer, ROLE_PROTOCOL, AbortSignal.timeout(CONTROL_TIMEOUT_MS));
  const channel = new FrameChannel(stream);
  try {
    await withTimeout(`telling ${peer} it was removed`, (async () => {
      channel.send(request);
      await channel.next('an acknowledgement');
    })(), CONTROL_TIMEOUT_MS);
  } finally {
    await channel.close();
  }
}

/** Serves LEAVE_PROTOCOL on a manager: `forget(remotePeer, nodeId)` checks and removes the node, or throws. */
export async function serveLeave(host: GossipHost, forget: (remotePeer: string, nodeId: string) => Promise<void>, logger: Logger): Promise<void> {
  await host.handle(
    LEAVE_PROTOCOL,
    async (stream, remotePeer) => {
      const channel = new FrameChannel(stream);
      let answer: LeaveAnswer;
      try {
        const request = await withTimeout('a leave request', channel.next('a leave request'), CONTROL_TIMEOUT_MS);
        if (!isObject(request) || typeof request['nodeId'] !== 'string') throw new DaemonError('invalid_request', 'a leave request names no node');
        await forget(remotePeer, request['nodeId']);
        answer = { ok: true };
      } catch (err) {
        logger.info({ remotePeer, err: (err as Error).message }, 'a leave request was refused');
        answer = { ok: false, message: (err as Error).message };
      }
      try {
        channel.send(answer);
      } finally {
        await channel.close();
      }
    },
    MAX_INBOUND_CONTROL_STREAMS,
  );
}

// ---------------------------------------------------------------- node side

/** What the node does with a role change, given by the daemon. */
export interface RoleHandler {
  /** Throws unless `managerCert` is a manager's certificate of this cluster bound to `remotePeer`. */
  checkManager(remotePeer: string, managerCertPem: string): Promise<void>;
  currentCertificate(): Promise<string>;
  /** Verifies and persists the grant; resolves with this node's manager address. The restart runs after the answer went out. */
  applyRole(role: NodeRole, grant: RoleGrant): Promise<{ managerAddr: string; restart: () => void }>;
  /** The cluster removed this node: leave locally. Runs after the answer went out. */
  removed(): void;
}

export async function serveRole(host: GossipHost, handler: RoleHandler, logger: Logger): Promise<void> {
  await host.handle(
    ROLE_PROTOCOL,
    async (stream, remotePeer) => {
      const channel = new FrameChannel(stream);
      let after: (() => void) | null = null;
      try {
        await withTimeout('a role change', (async () => {
          const request = await channel.next('a role request');
          if (!isObject(request) || typeof request['managerCert'] !== 'string' || (request['op'] !== 'role' && request['op'] !== 'removed')) {
            throw new DaemonError('invalid_request', 'a malformed role request');
          }
          await handler.checkManager(remotePeer, request['managerCert']);
          if (request['op'] === 'removed') {
            channel.send({ ok: true });
            after = () => handler.removed();
            return;
          }
          const role = request['role'];
          if (role !== 'manager' && role !== 'worker') throw new DaemonError('invalid_request', 'a role request names no role');
          const hello: RoleHello = { ok: true, nodeCert: await handler.currentCertificate() };
          channel.send(hello);
          const grant = await channel.next('the new certificate');
          if (!isObject(grant) || typeof grant['cert'] !== 'string' || !Array.isArray(grant['managers'])) throw new DaemonError('invalid_request', 'a malformed role grant');
          const caKey = grant['caKey'];
          if (caKey !== null && typeof caKey !== 'string') throw new DaemonError('invalid_request', 'a malformed role grant');
          const dataKey = grant['dataKey'] ?? null;
          if (dataKey !== null && typeof dataKey !== 'string') throw new DaemonError('invalid_request', 'a malformed role grant');
          const managers = (grant['managers'] as unknown[]).filter(
            (m): m is RaftPeer => isObject(m) && typeof m['nodeId'] === 'string' && typeof m['multiaddr'] === 'string',
          );
          const applied = await handler.applyRole(role, { cert: grant['cert'], caKey, dataKey, managers });
          const done: RoleDone = { ok: true, managerAddr: applied.managerAddr };
          channel.send(done);
          after = applied.restart;
        })(), CONTROL_TIMEOUT_MS);
      } catch (err) {
        logger.warn({ remotePeer, err: (err as Error).message }, 'a role change was refused');
        try {
          channel.send({ ok: false, message: (err as Error).message } satisfies RoleDone);
        } catch {
          // the stream is gone; the manager retries
        }
      } finally {
        await channel.close();
      }
      // The restart closes the libp2p host this stream runs on: only once the answer is out.
      if (after !== null) setImmediate(after);
    },
    MAX_INBOUND_CONTROL_STREAMS,
  );
}

/** Asks the manager at `peer` to forget this node; throws DaemonError if it refused or did not answer. */
export async function requestLeave(host: GossipHost, peer: string, nodeId: string): Promise<void> {
  const stream = await host.openStream(peer, LEAVE_PROTOCOL, AbortSignal.timeout(CONTROL_TIMEOUT_MS));
  const channel = new FrameChannel(stream);
  try {
    const answer = await withTimeout('the leave request', (async () => {
      channel.send({ nodeId });
      return channel.next('an answer');
    })(), CONTROL_TIMEOUT_MS);
    if (!isObject(answer) || answer['ok'] !== true) {
      const message = isObject(answer) && typeof answer['message'] === 'string' ? answer['message'] : 'a malformed answer';
      throw new DaemonError('peer_refused', `the manager refused the leave: ${message}`);
    }
  } finally {
    await channel.close();
  }
}
