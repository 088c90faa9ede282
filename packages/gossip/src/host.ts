// The libp2p 3 host of a swarm node: tcp + noise + yamux, identify, ping, gossipsub, and a private network
// (pnet pre-shared "swarm key") so that a machine without the cluster's key cannot connect at all.

import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { identify } from '@libp2p/identify';
import type { Connection, PeerId, PrivateKey, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import type { Logger } from '@swarm/wire';
import { createLibp2p, type Libp2p } from 'libp2p';
import { GossipError } from './messages.js';
import { privateNetwork } from './private-network.js';

export type { Stream } from '@libp2p/interface';

/** A pnet v1 key file: "/key/swarm/psk/1.0.0/\n/base16/\n" + 64 hex characters. */
export type SwarmKey = Uint8Array;

const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/\n/base16/\n';
const SWARM_KEY_BYTES = 32;

/** A fresh random swarm key, for tests and tools (the daemon takes the cluster's key from @swarm/pki). */
export function generateSwarmKey(): SwarmKey {
  const hex = Buffer.from(crypto.getRandomValues(new Uint8Array(SWARM_KEY_BYTES))).toString('hex');
  return new TextEncoder().encode(`${SWARM_KEY_HEADER}${hex}`);
}

/** Checks the key file's shape up front, so a bad key fails with a message instead of inside pnet. */
export function checkSwarmKey(psk: Uint8Array): void {
  const text = Buffer.from(psk).toString('utf8');
  if (!text.startsWith(SWARM_KEY_HEADER) || !/^[0-9a-fA-F]{64}\s*$/.test(text.slice(SWARM_KEY_HEADER.length))) {
    throw new GossipError(
      'invalid_config',
      'the swarm key must be a pnet v1 key file ("/key/swarm/psk/1.0.0/", "/base16/", 64 hex characters); use @swarm/pki encodePnetKey()',
    );
  }
}

export interface GossipHostOptions {
  /** '127.0.0.1:0', 'IP:PORT', '[IPv6]:PORT' or a multiaddr string like '/ip4/127.0.0.1/tcp/0'. */
  readonly listen: string;
  /** The node's identity; a new Ed25519 key when absent. */
  readonly privateKey?: PrivateKey;
  readonly psk: SwarmKey;
  readonly logger: Logger;
  /** Addresses to announce instead of the listen addresses (e.g. the --advertise-addr). */
  readonly announce?: readonly string[];
  /** How long a dial may take before it fails (default 5 s). */
  readonly dialTimeoutMs?: number;
}

export type MessageHandler = (data: Uint8Array, from: string | null) => void;
export type ProtocolHandler = (stream: Stream, remotePeer: string) => void | Promise<void>;

export interface GossipHost {
  readonly peerId: string;
  readonly privateKey: PrivateKey;
  /** Listening addresses, each with /p2p/<peer id>. */
  multiaddrs(): string[];
  /** Connects to an address (with or without /p2p/); resolves to the remote peer id. */
  dial(addr: string, signal?: AbortSignal): Promise<string>;
  /** Publishes on a gossipsub topic; resolves to the number of peers it was sent to. */
  publish(topic: string, data: Uint8Array): Promise<number>;
  /** Subscribes; returns the unsubscribe function. Several handlers per topic are allowed. */
  subscribe(topic: string, handler: MessageHandler): () => void;
  /** Opens a stream to a peer id (dialing its known addresses) or to an address. */
  openStream(peerOrAddr: string, protocol: string, signal?: AbortSignal): Promise<Stream>;
  handle(protocol: string, handler: ProtocolHandler, maxInboundStreams?: number): Promise<void>;
  unhandle(protocol: string): Promise<void>;
  isConnected(peer: string): boolean;
  connectedPeers(): string[];
  hangUp(peer: string): Promise<void>;
  stop(): Promise<void>;
}

/** Parses the listen option into a multiaddr. */
export function toListenMultiaddr(listen: string): Multiaddr {
  if (listen.startsWith('/')) {
    try {
      return multiaddr(listen);
    } catch (err) {
      throw new GossipError('invalid_address', `listen address ${listen} is not a valid multiaddr: ${String(err)}`);
    }
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[3]);
  if (m === null || !(port >= 0 && port <= 65535)) {
    throw new GossipError('invalid_address', `listen address ${listen}: expected IP:PORT (e.g. 127.0.0.1:2377) or a multiaddr`);
  }
  return m[1] !== undefined ? multiaddr(`/ip6/${m[1]}/tcp/${port}`) : multiaddr(`/ip4/${m[2] ?? ''}/tcp/${port}`);
}

function parseAddr(addr: string): Multiaddr {
  try {
    return multiaddr(addr);
  } catch (err) {
    throw new GossipError('invalid_address', `address ${addr} is not a valid multiaddr: ${String(err)}`);
  }
}

function dialTarget(peerOrAddr: string): PeerId | Multiaddr {
  return peerOrAddr.startsWith('/') ? parseAddr(peerOrAddr) : peerIdFromString(peerOrAddr);
}

export async function createGossipHost(opts: GossipHostOptions): Promise<GossipHost> {
  const log = opts.logger;
  const listen = toListenMultiaddr(opts.listen);
  checkSwarmKey(opts.psk);
  const dialTimeoutMs = opts.dialTimeoutMs ?? 5_000;
  const privateKey = opts.privateKey ?? (await generateKeyPair('Ed25519'));
  const node: Libp2p<{ pubsub: GossipSub; identify: unknown; ping: unknown }> = await createLibp2p({
    privateKey,
    addresses: {
      listen: [listen.toString()],
      ...(opts.announce !== undefined ? { announce: [...opts.announce] } : {}),
    },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: privateNetwork({ psk: opts.psk }),
    connectionManager: { dialTimeout: dialTimeoutMs },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        // A one-node cluster publishes to nobody; that is not an error for us.
        allowPublishToZeroTopicPeers: true,
        ignoreDuplicatePublishError: true,
        emitSelf: false,
      }),
    },
  });
  const peerId = node.peerId.toString();
  const handlers = new Map<string, Set<MessageHandler>>();
  let stopped = false;

  node.services.pubsub.addEventListener('message', (evt) => {
    const msg = evt.detail;
    const set = handlers.get(msg.topic);
    if (set === undefined) return;
    const from = msg.type === 'signed' ? msg.from.toString() : null;
    for (const h of set) {
      try {
        h(msg.data, from);
      } catch (err) {
        log.error({ err, topic: msg.topic }, 'gossipsub message handler threw');
      }
    }
  });

  const checkRunning = (what: string): void => {
    if (stopped) throw new GossipError('stopped', `gossip host is stopped: cannot ${what}`);
  };

  log.info({ peerId, addrs: node.getMultiaddrs().map(String) }, 'gossip host listening');

  const host: GossipHost = {
    peerId,
    privateKey,
    multiaddrs: () => node.getMultiaddrs().map((a) => a.toString()),
    async dial(addr, signal) {
      checkRunning('dial');
      const conn: Connection = await node.dial(parseAddr(addr), { signal: signal ?? AbortSignal.timeout(dialTimeoutMs) });
      return conn.remotePeer.toString();
    },
    async publish(topic, data) {
      checkRunning('publish');
      const res = await node.services.pubsub.publish(topic, data);
      return res.recipients.length;
    },
    subscribe(topic, handler) {
      checkRunning('subscribe');
      let set = handlers.get(topic);
      if (set === undefined) {
        set = new Set();
        handlers.set(topic, set);
        node.services.pubsub.subscribe(topic);
      }
      set.add(handler);
      return () => {
        const s = handlers.get(topic);
        if (s === undefined) return;
        s.delete(handler);
        if (s.size === 0) {
          handlers.delete(topic);
          if (!stopped) node.services.pubsub.unsubscribe(topic);
        }
      };
    },
    async openStream(peerOrAddr, protocol, signal) {
      checkRunning('open a stream');
      return node.dialProtocol(dialTarget(peerOrAddr), protocol, { signal: signal ?? AbortSignal.timeout(dialTimeoutMs) });
    },
    async handle(protocol, handler, maxInboundStreams = 256) {
      checkRunning('handle a protocol');
      await node.handle(
        protocol,
        async (stream, connection) => {
          try {
            await handler(stream, connection.remotePeer.toString());
          } catch (err) {
            log.debug({ err, protocol }, 'protocol handler failed');
            stream.abort(err instanceof Error ? err : new Error(String(err)));
          }
        },
        { maxInboundStreams, maxOutboundStreams: maxInboundStreams },
      );
    },
    async unhandle(protocol) {
      if (!stopped) await node.unhandle(protocol);
    },
    isConnected: (peer) => node.getConnections(peerIdFromString(peer)).length > 0,
    connectedPeers: () => node.getPeers().map((p) => p.toString()),
    async hangUp(peer) {
      await node.hangUp(peerIdFromString(peer));
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      handlers.clear();
      await node.stop();
      log.info({ peerId }, 'gossip host stopped');
    },
  };
  return host;
}
