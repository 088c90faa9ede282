// TcpTransport: Raft messages over plain TCP, one outbound connection per peer, length-prefixed msgpack.
// Outbound sockets only write, inbound sockets only read; every queue, buffer and backoff is bounded.

import net from 'node:net';
import type { Message, NodeId, RaftLogger } from '../types.js';
import { silentLogger } from '../types.js';
import { DEFAULT_MAX_FRAME_BYTES, FrameReader, encodeFrame } from './framing.js';
import type { Transport, TransportEvents } from './transport.js';
import { validateMessage } from './validate.js';

/** The first frame on every connection names the protocol and the dialling node. */
export const PROTOCOL_ID = 'raft-consensus-ts/tcp/1';

export interface TcpTransportOptions {
  readonly id: NodeId;
  /** Where to listen. Port 0 picks a free port (see `port` after start()). */
  readonly listenHost?: string;
  readonly listenPort: number;
  /** Initial address book: id -> "host:port". The own id, if present, is ignored. */
  readonly peers?: Readonly<Record<NodeId, string>>;
  readonly logger?: RaftLogger;
  /** Per-peer outgoing queue bound (messages); beyond it messages are dropped and reported. */
  readonly maxQueuedMessages?: number;
  /** Stop handing data to a socket while its kernel-side backlog exceeds this. */
  readonly maxSocketBufferBytes?: number;
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  readonly connectTimeoutMs?: number;
  readonly maxFrameBytes?: number;
  /** Bound on simultaneously open inbound connections. */
  readonly maxInboundConnections?: number;
}

type PeerState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'closed';

function assert(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new Error(`tcp transport invariant violated: ${msg}`);
}

export function parseAddress(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(address.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || !m[1] || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`peer address ${JSON.stringify(address)} is not host:port (e.g. 127.0.0.1:7001)`);
  }
  return { host: m[1], port };
}

class Peer {
  state: PeerState = 'idle';
  queue: Message[] = [];
  socket: net.Socket | null = null;
  backoffMs: number;
  timer: NodeJS.Timeout | null = null;
  flushScheduled = false;
  waitingForDrain = false;
  droppedSinceLog = 0;

  constructor(
    readonly id: NodeId,
    public address: { host: string; port: number },
    minBackoffMs: number,
  ) {
    this.backoffMs = minBackoffMs;
  }
}

export class TcpTransport implements Transport {
  private readonly logger: RaftLogger;
  private readonly peers = new Map<NodeId, Peer>();
  private readonly inbound = new Set<net.Socket>();
  private server: net.Server | null = null;
  private onMessage: ((m: Message) => void) | null = null;
  private events: TransportEvents = {};
  private stopped = false;
  private readonly maxQueuedMessages: number;
  private readonly maxSocketBufferBytes: number;
  private readonly reconnectMinMs: number;
  private readonly reconnectMaxMs: number;
  private readonly connectTimeoutMs: number;
  private readonly maxFrameBytes: number;
  private readonly maxInboundConnections: number;
  private boundPort = 0;

  constructor(private readonly options: TcpTransportOptions) {
    assert(options.id.length > 0, 'node id must be non-empty');
    this.logger = options.logger ?? silentLogger;
    this.maxQueuedMessages = options.maxQueuedMessages ?? 4096;
    this.maxSocketBufferBytes = options.maxSocketBufferBytes ?? 16 * 1024 * 1024;
    this.reconnectMinMs = options.reconnectMinMs ?? 20;
    this.reconnectMaxMs = options.reconnectMaxMs ?? 500;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 1000;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.maxInboundConnections = options.maxInboundConnections ?? 256;
    assert(this.maxQueuedMessages > 0 && this.reconnectMinMs > 0, 'bounds must be positive');
    assert(this.reconnectMaxMs >= this.reconnectMinMs, 'reconnectMaxMs must be >= reconnectMinMs');
    for (const [id, address] of Object.entries(options.peers ?? {})) this.addPeer(id, address);
  }

  /** The port actually bound (useful with listenPort 0). */
  get port(): number {
    return this.boundPort;
  }

  get address(): string {
    return `${this.options.listenHost ?? '127.0.0.1'}:${this.boundPort}`;
  }

  /**
   * Bind the listener without a receiver yet (messages arriving before start() are dropped), so the bound
   * port is known before the Raft host that will call start() is built. start() calls it when needed.
   */
  async listen(): Promise<void> {
    assert(!this.stopped, 'listen() after stop()');
    if (this.server !== null) return;
    const server = net.createServer((socket) => this.accept(socket));
    server.maxConnections = this.maxInboundConnections;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.listenPort, this.options.listenHost ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.error({ err: err.message }, 'raft transport listener error'));
    const addr = server.address();
    assert(addr !== null && typeof addr === 'object', 'listening server has an address');
    this.boundPort = addr.port;
    this.logger.info({ address: this.address }, 'raft transport listening');
  }

  async start(onMessage: (m: Message) => void, events: TransportEvents = {}): Promise<void> {
    assert(this.onMessage === null && !this.stopped, 'start() called twice or after stop()');
    this.onMessage = onMessage;
    this.events = events;
    await this.listen();
  }

  addPeer(id: NodeId, address: string): void {
    if (id === this.options.id) return;
    const parsed = parseAddress(address);
    const existing = this.peers.get(id);
    if (existing) {
      if (existing.address.host === parsed.host && existing.address.port === parsed.port) return;
      // Moved: reconnect to the new address.
      existing.address = parsed;
      this.resetConnection(existing, 'peer address changed');
      return;
    }
    this.peers.set(id, new Peer(id, parsed, this.reconnectMinMs));
  }

  removePeer(id: NodeId): void {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.peers.delete(id);
    peer.state = 'closed';
    if (peer.timer) clearTimeout(peer.timer);
    peer.timer = null;
    peer.socket?.destroy();
    peer.socket = null;
    this.dropQueue(peer);
  }

  send(messages: readonly Message[]): void {
    for (const m of messages) {
      if (this.stopped) return;
      const peer = this.peers.get(m.to);
      if (!peer) {
        this.drop(null, m, 'unknown peer');
        continue;
      }
      if (peer.state === 'backoff' || peer.state === 'closed') {
        this.drop(peer, m, 'connection down');
        continue;
      }
      if (peer.queue.length >= this.maxQueuedMessages) {
        this.drop(peer, m, 'queue full');
        continue;
      }
      peer.queue.push(m);
      if (peer.state === 'idle') this.connect(peer);
      else if (peer.state === 'connected') this.scheduleFlush(peer);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const id of [...this.peers.keys()]) this.removePeer(id);
    for (const s of this.inbound) s.destroy();
    this.inbound.clear();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Queue depth per peer, for status pages and tests. */
  queueDepths(): Record<NodeId, number> {
    const out: Record<NodeId, number> = {};
    for (const [id, p] of this.peers) out[id] = p.queue.length;
    return out;
  }

  // ---- outbound ----

  private connect(peer: Peer): void {
    assert(peer.state === 'idle' && peer.socket === null, 'connect only from idle');
    peer.state = 'connecting';
    const socket = net.connect({ host: peer.address.host, port: peer.address.port });
    peer.socket = socket;
    socket.setNoDelay(true);
    socket.setTimeout(this.connectTimeoutMs);
    socket.on('timeout', () => {
      if (peer.state === 'connecting') socket.destroy(new Error(`connect timed out after ${this.connectTimeoutMs} ms`));
    });
    socket.once('connect', () => {
      if (peer.socket !== socket) return;
      socket.setTimeout(0);
      socket.setKeepAlive(true, 5000);
      peer.state = 'connected';
      peer.backoffMs = this.reconnectMinMs;
      socket.write(encodeFrame({ proto: PROTOCOL_ID, from: this.options.id }));
      this.logger.debug({ peer: peer.id }, 'raft transport connected');
      this.scheduleFlush(peer);
    });
    socket.on('drain', () => {
      if (peer.socket !== socket) return;
      peer.waitingForDrain = false;
      this.scheduleFlush(peer);
    });
    // Peers never write on our outbound connection; reading keeps the socket from stalling if one does.
    socket.on('data', () => {});
    socket.on('error', (err) => {
      if (peer.socket === socket) this.logger.debug({ peer: peer.id, err: err.message }, 'raft transport connection error');
    });
    socket.on('close', () => {
      if (peer.socket !== socket) return;
      this.resetConnection(peer, 'connection closed');
    });
  }

  /** The connection is gone: drop what was queued (Raft retries) and wait before dialling again. */
  private resetConnection(peer: Peer, why: string): void {
    const socket = peer.socket;
    peer.socket = null;
    peer.waitingForDrain = false;
    socket?.destroy();
    this.dropQueue(peer);
    if (this.stopped || peer.state === 'closed') return;
    const wasConnected = peer.state === 'connected';
    peer.state = 'backoff';
    const delayMs = Math.min(peer.backoffMs, this.reconnectMaxMs);
    peer.backoffMs = Math.min(peer.backoffMs * 2, this.reconnectMaxMs);
    if (wasConnected) this.logger.info({ peer: peer.id, why, retryMs: delayMs }, 'raft transport lost peer');
    if (peer.timer) clearTimeout(peer.timer);
    peer.timer = setTimeout(() => {
      peer.timer = null;
      if (peer.state !== 'backoff') return;
      peer.state = 'idle';
      // Dial now rather than on the next message, so the link is up when Raft next speaks.
      this.connect(peer);
    }, delayMs);
    peer.timer.unref();
  }

  /** A peer that just dialled us is up again: do not sit out the rest of our backoff before dialling back. */
  private redialIfWaiting(id: NodeId): void {
    const peer = this.peers.get(id);
    if (!peer || peer.state !== 'backoff' || this.stopped) return;
    if (peer.timer) clearTimeout(peer.timer);
    peer.timer = null;
    peer.backoffMs = this.reconnectMinMs;
    peer.state = 'idle';
    this.connect(peer);
  }

  private scheduleFlush(peer: Peer): void {
    if (peer.flushScheduled) return;
    peer.flushScheduled = true;
    // One write per event-loop turn: everything Raft sends during this turn goes out together.
    setImmediate(() => {
      peer.flushScheduled = false;
      this.flush(peer);
    });
  }

  private flush(peer: Peer): void {
    const socket = peer.socket;
    if (peer.state !== 'connected' || socket === null || peer.queue.length === 0 || peer.waitingForDrain) return;
    if (socket.writableLength > this.maxSocketBufferBytes) {
      peer.waitingForDrain = true;
      return;
    }
    const batch = peer.queue;
    peer.queue = [];
    const frames: Buffer[] = [];
    const snapshots: Message[] = [];
    for (const m of batch) {
      let frame: Buffer;
      try {
        frame = encodeFrame(m, this.maxFrameBytes);
      } catch (err) {
        this.logger.error({ peer: peer.id, type: m.type, err: (err as Error).message }, 'raft transport cannot encode message');
        this.drop(peer, m, 'unencodable');
        continue;
      }
      frames.push(frame);
      if (m.type === 'snapshot') snapshots.push(m);
    }
    if (frames.length === 0) return;
    const ok = socket.write(frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames), (err) => {
      for (const m of snapshots) this.events.snapshotStatus?.(m.to, err ? 'failure' : 'finish');
    });
    if (!ok) peer.waitingForDrain = true;
  }

  private dropQueue(peer: Peer): void {
    const queued = peer.queue;
    peer.queue = [];
    for (const m of queued) this.drop(peer, m, 'connection down');
  }

  private drop(peer: Peer | null, m: Message, why: string): void {
    if (m.type === 'snapshot') this.events.snapshotStatus?.(m.to, 'failure');
    this.events.unreachable?.(m.to);
    if (peer === null) {
      this.logger.debug({ to: m.to, type: m.type, why }, 'raft transport dropped message');
      return;
    }
    // Log once per burst, not per message: a dead peer would otherwise flood the log at heartbeat rate.
    if (peer.droppedSinceLog++ % 1000 === 0) {
      this.logger.debug({ peer: peer.id, type: m.type, why, dropped: peer.droppedSinceLog }, 'raft transport dropped message');
    }
  }

  // ---- inbound ----

  private accept(socket: net.Socket): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    this.inbound.add(socket);
    socket.setNoDelay(true);
    const reader = new FrameReader(this.maxFrameBytes);
    let from: NodeId | null = null;
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const reject = (why: string): void => {
      this.logger.warn({ remote, from, why }, 'raft transport closing connection: malformed input');
      socket.destroy();
    };
    socket.on('data', (chunk: Buffer) => {
      let values: unknown[];
      try {
        values = reader.push(chunk);
      } catch (err) {
        reject((err as Error).message);
        return;
      }
      for (const v of values) {
        if (socket.destroyed) return;
        if (from === null) {
          const hello = v as { proto?: unknown; from?: unknown } | null;
          if (typeof hello !== 'object' || hello === null || hello.proto !== PROTOCOL_ID || typeof hello.from !== 'string' || hello.from.length === 0) {
            reject(`first frame is not a ${PROTOCOL_ID} hello`);
            return;
          }
          from = hello.from;
          this.redialIfWaiting(from);
          continue;
        }
        let m: Message;
        try {
          m = validateMessage(v);
        } catch (err) {
          reject((err as Error).message);
          return;
        }
        if (m.from !== from || m.to !== this.options.id) {
          reject(`message from ${m.from} to ${m.to} on a connection from ${from} to ${this.options.id}`);
          return;
        }
        try {
          this.onMessage?.(m);
        } catch (err) {
          // Raft refusing one message is not the peer's fault; keep the connection.
          this.logger.error({ from, type: m.type, err: (err as Error).message }, 'raft rejected a message');
        }
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => this.inbound.delete(socket));
  }
}
