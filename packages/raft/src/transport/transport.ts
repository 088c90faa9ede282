// The Transport interface: how a Raft host hands messages to its peers and receives theirs.
// Implementations: TcpTransport (tcp.ts) here; the cluster later plugs in one over libp2p streams.

import type { Message, NodeId } from '../types.js';

/** What a transport reports back to the host, which forwards it to RawNode. */
export interface TransportEvents {
  /** A message to `id` was dropped (queue full, connection down): RawNode.reportUnreachable(id). */
  unreachable?(id: NodeId): void;
  /** A snapshot message to `id` was written to the socket ('finish') or dropped ('failure'). */
  snapshotStatus?(id: NodeId, status: 'finish' | 'failure'): void;
}

export interface Transport {
  /** Begin accepting peers' messages; resolves once the transport can receive. */
  start(onMessage: (m: Message) => void, events?: TransportEvents): Promise<void>;
  /**
   * Queue messages for their `to` peers. Never blocks and never throws for network reasons:
   * a message that cannot be queued is dropped and reported unreachable (Raft retries).
   */
  send(messages: readonly Message[]): void;
  /** Learn (or change) where a peer listens. */
  addPeer(id: NodeId, address: string): void;
  /** Forget a peer: drop its queue and close its connection. */
  removePeer(id: NodeId): void;
  /** Close every connection and the listener. */
  stop(): Promise<void>;
}
