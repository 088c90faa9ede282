// A Raft transport for a group whose only voter is this node: nothing to send, nothing to receive.
// The join slice replaces it with a transport over libp2p streams; the RaftNode does not change.

import type { Message, NodeId, Transport, TransportEvents } from 'raft-consensus-ts';
import type { Logger } from '@swarm/wire';

export class LocalOnlyTransport implements Transport {
  private readonly peers = new Map<NodeId, string>();
  private events: TransportEvents = {};

  constructor(
    private readonly selfId: NodeId,
    private readonly logger: Logger,
  ) {}

  async start(_onMessage: (m: Message) => void, events?: TransportEvents): Promise<void> {
    this.events = events ?? {};
  }

  send(messages: readonly Message[]): void {
    // With a single voter Raft sends nothing; a message to anyone else means a member we cannot reach yet.
    for (const m of messages) {
      if (m.to === this.selfId) continue;
      this.logger.debug({ to: m.to, type: m.type }, 'raft message dropped: no transport to other members yet');
      this.events.unreachable?.(m.to);
    }
  }

  addPeer(id: NodeId, address: string): void {
    this.peers.set(id, address);
  }

  removePeer(id: NodeId): void {
    this.peers.delete(id);
  }

  async stop(): Promise<void> {
    this.peers.clear();
  }
}
