// Raft's Transport over the node's libp2p host: one long-lived outbound stream per peer on RAFT_PROTOCOL carrying
// length-prefixed msgpack frames (the raft library's framing). Addresses are multiaddrs ending in /p2p/<peer id>.

import type { GossipHost, Stream } from '@swarm/gossip';
import type { Logger } from '@swarm/wire';
import { encodeFrame, FrameReader, validateMessage, type Message, type NodeId, type Transport, type TransportEvents } from 'raft-consensus-ts';
import { assert } from './errors.js';

export const RAFT_PROTOCOL = '/swarm/raft/1.0.0';
/** Frames queued for a peer while its stream opens; Raft retries what is dropped beyond it. */
const MAX_PENDING_PER_PEER = 256;
/** Bytes buffered on one stream before further messages are dropped (a peer that does not read). */
const MAX_WRITE_BUFFER_BYTES = 64 * 1024 * 1024;
const OPEN_TIMEOUT_MS = 5_000;
/** Inbound raft streams at once: a few per manager. */
const MAX_INBOUND_STREAMS = 64;

interface Link {
  stream: Stream | null;
  pending: Array<{ frame: Uint8Array; snapshot: boolean }>;
}

/** The peer id in a raft address: a multiaddr ending in /p2p/<id>, or a bare peer id (data dirs made by init). */
function peerIdOf(address: string): string | null {
  if (/^[A-Za-z0-9]{16,128}$/.test(address)) return address;
  const m = /\/p2p\/([A-Za-z0-9]+)$/.exec(address);
  return m?.[1] ?? null;
}

export class Libp2pTransport implements Transport {
  private readonly peers = new Map<NodeId, string>();
  private readonly links = new Map<NodeId, Link>();
  private events: TransportEvents = {};
  private onMessage: ((m: Message) => void) | null = null;
  private stopped = false;

  constructor(
    private readonly host: GossipHost,
    private readonly selfId: NodeId,
    private readonly logger: Logger,
  ) {}

  async start(onMessage: (m: Message) => void, events?: TransportEvents): Promise<void> {
    this.onMessage = onMessage;
    this.events = events ?? {};
    await this.host.handle(RAFT_PROTOCOL, (stream, remote) => this.receive(stream, remote), MAX_INBOUND_STREAMS);
  }

  send(messages: readonly Message[]): void {
    for (const m of messages) {
      if (m.to === this.selfId || this.stopped) continue;
      let frame: Uint8Array;
      try {
        frame = encodeFrame(m);
      } catch (err) {
        this.logger.warn({ err, to: m.to, type: m.type }, 'raft message too large to send');
        this.dropped(m.to, m.type === 'snapshot');
        continue;
      }
      this.write(m.to, frame, m.type === 'snapshot');
    }
  }

  addPeer(id: NodeId, address: string): void {
    if (peerIdOf(address) === null) throw new Error(`raft address ${address} of ${id} is not a multiaddr ending in /p2p/<peer id>`);
    const previous = this.peers.get(id);
    this.peers.set(id, address);
    if (previous !== undefined && previous !== address) this.closeLink(id);
  }

  removePeer(id: NodeId): void {
    this.peers.delete(id);
    this.closeLink(id);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const id of [...this.links.keys()]) this.closeLink(id);
    await this.host.unhandle(RAFT_PROTOCOL).catch(() => undefined);
  }

  private dropped(id: NodeId, snapshot: boolean): void {
    this.events.unreachable?.(id);
    if (snapshot) this.events.snapshotStatus?.(id, 'failure');
  }

  private closeLink(id: NodeId): void {
    const link = this.links.get(id);
    this.links.delete(id);
    link?.stream?.abort(new Error('raft peer removed'));
  }

  private write(id: NodeId, frame: Uint8Array, snapshot: boolean): void {
    const address = this.peers.get(id);
    if (address === undefined) {
      this.dropped(id, snapshot);
      return;
    }
    let link = this.links.get(id);
    if (link === undefined) {
      link = { stream: null, pending: [] };
      this.links.set(id, link);
      this.open(id, address, link);
    }
    if (link.stream === null) {
      if (link.pending.length < MAX_PENDING_PER_PEER) link.pending.push({ frame, snapshot });
      else this.dropped(id, snapshot);
      return;
    }
    const s = link.stream;
    if (s.status !== 'open' || s.writeStatus !== 'writable' || s.writeBufferLength > MAX_WRITE_BUFFER_BYTES) {
      if (s.status !== 'open') this.links.delete(id);
      this.dropped(id, snapshot);
      return;
    }
    try {
      s.send(frame);
      if (snapshot) this.events.snapshotStatus?.(id, 'finish');
    } catch (err) {
      this.links.delete(id);
      s.abort(err instanceof Error ? err : new Error(String(err)));
      this.dropped(id, snapshot);
    }
  }

  private open(id: NodeId, address: string, link: Link): void {
    const peer = peerIdOf(address);
    assert(peer !== null, 'raft addresses end in /p2p/<peer id>');
    void (async () => {
      try {
        // An existing connection (gossip made one) is reused; otherwise dial the recorded address.
        let target = address;
        try {
          if (this.host.isConnected(peer)) target = peer;
        } catch {
          target = address;
        }
        const stream = await this.host.openStream(target, RAFT_PROTOCOL, AbortSignal.timeout(OPEN_TIMEOUT_MS));
        if (this.stopped || this.links.get(id) !== link) {
          stream.abort(new Error('raft link replaced'));
          return;
        }
        link.stream = stream;
        stream.addEventListener('close', () => {
          if (this.links.get(id) === link) this.links.delete(id);
        });
        const queued = link.pending;
        link.pending = [];
        for (const p of queued) this.write(id, p.frame, p.snapshot);
      } catch (err) {
        if (this.links.get(id) === link) this.links.delete(id);
        for (const p of link.pending) this.dropped(id, p.snapshot);
        link.pending = [];
        this.logger.debug({ err: (err as Error).message, to: id, address }, 'raft stream open failed');
      }
    })();
  }

  private async receive(stream: Stream, remote: string): Promise<void> {
    const reader = new FrameReader();
    try {
      for await (const chunk of stream) {
        const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
        for (const v of reader.push(Buffer.from(bytes))) {
          const m = validateMessage(v);
          // The pnet key admits only cluster nodes; a member's messages must also come from its own peer id.
          const known = this.peers.get(m.from);
          if (m.to !== this.selfId || (known !== undefined && peerIdOf(known) !== remote)) {
            this.logger.warn({ from: m.from, to: m.to, remote }, 'raft message from the wrong peer dropped');
            continue;
          }
          this.onMessage?.(m);
        }
        if (this.stopped) break;
      }
    } catch (err) {
      this.logger.debug({ err: (err as Error).message, remote }, 'raft inbound stream failed');
      stream.abort(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    await stream.close().catch(() => undefined);
  }
}
