// The cluster-private network on libp2p pnet v1's wire format: each side sends a random 24-byte nonce in the clear,
// then every byte it sends is XORed with the XSalsa20 keystream of (psk, its nonce); a peer without the key sees
// noise and its handshake (noise) fails. Ours, not @libp2p/pnet's: that one's WebAssembly xsalsa20 keeps views of
// its memory that go stale when the memory grows, each stale view grows it again, and a daemon that has opened
// enough connections dies with "WebAssembly.Memory.grow(): Maximum memory size exceeded" (seen after ~9 minutes
// on a 10-node lab). This uses @noble/ciphers' pure-JS XSalsa20, which holds no memory between calls.

import type { AbortOptions, ConnectionProtector, MessageStream, MultiaddrConnection } from '@libp2p/interface';
import { AbstractMultiaddrConnection, byteStream } from '@libp2p/utils';
import { xsalsa20 } from '@noble/ciphers/salsa.js';

export const PNET_NONCE_BYTES = 24;
const PSK_BYTES = 32;
const BLOCK_BYTES = 64;
const HANDSHAKE_TIMEOUT_MS = 5_000;

/** A pnet v1 key file: "/key/swarm/psk/1.0.0/\n/base16/\n<64 hex>"; returns the 32-byte key. */
export function decodePnetKey(file: Uint8Array): Uint8Array {
  const lines = new TextDecoder().decode(file).split(/\r?\n/);
  const [tag, codec] = lines;
  const hex = lines[2]?.trim();
  if (tag !== '/key/swarm/psk/1.0.0/' || codec !== '/base16/' || hex === undefined || !/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new Error('the swarm key must be a pnet v1 key file ("/key/swarm/psk/1.0.0/", "/base16/", 64 hex characters)');
  }
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}

/** One direction's keystream, applied to a byte stream cut anywhere: it tracks the position within the stream. */
export class XSalsa20Stream {
  private position = 0;

  constructor(
    private readonly key: Uint8Array,
    private readonly nonce: Uint8Array,
  ) {
    if (key.length !== PSK_BYTES) throw new Error(`a pnet key has ${PSK_BYTES} bytes, not ${key.length}`);
    if (nonce.length !== PNET_NONCE_BYTES) throw new Error(`a pnet nonce has ${PNET_NONCE_BYTES} bytes, not ${nonce.length}`);
  }

  /** XORs the next bytes of the stream (a new array; the input is left alone). */
  update(data: Uint8Array): Uint8Array {
    if (data.length === 0) return new Uint8Array(0);
    // The keystream is made in 64-byte blocks: start at the block that holds our position, skip into it.
    const skip = this.position % BLOCK_BYTES;
    const block = Math.floor(this.position / BLOCK_BYTES);
    const padded = new Uint8Array(skip + data.length);
    padded.set(data, skip);
    const out = xsalsa20(this.key, this.nonce, padded, undefined, block);
    this.position += data.length;
    return out.subarray(skip);
  }
}

/** The byte list libp2p hands sendData (its own uint8arraylist version). */
type OutgoingBytes = Parameters<AbstractMultiaddrConnection['sendData']>[0];

/** The protected connection: XOR on the way out and on the way in, everything else passed to the TCP connection. */
class PrivateConnection extends AbstractMultiaddrConnection {
  constructor(
    private readonly inner: MultiaddrConnection,
    private readonly outbound: XSalsa20Stream,
    inbound: XSalsa20Stream,
  ) {
    super({ remoteAddr: inner.remoteAddr, direction: inner.direction, log: inner.log.newScope('private-network') });
    inner.addEventListener('message', (evt) => {
      const data = evt.data;
      if (data instanceof Uint8Array) this.onData(inbound.update(data));
      else for (const chunk of data) this.onData(inbound.update(chunk));
    });
    inner.addEventListener('drain', () => this.onMuxerDrain());
    inner.addEventListener('close', (evt) => {
      if (evt.error === undefined) this.onTransportClosed();
      else if (evt.local === true) this.abort(evt.error);
      else this.onRemoteReset();
    });
  }

  sendData(data: OutgoingBytes): { sentBytes: number; canSendMore: boolean } {
    return { sentBytes: data.byteLength, canSendMore: this.inner.send(this.outbound.update(data.subarray())) };
  }

  sendReset(err: Error): void {
    this.inner.abort(err);
  }

  sendPause(): void {
    this.inner.pause();
  }

  sendResume(): void {
    this.inner.resume();
  }

  async sendClose(options?: AbortOptions): Promise<void> {
    await this.inner.close(options);
  }
}

class PrivateNetworkProtector implements ConnectionProtector {
  readonly [Symbol.toStringTag] = '@swarm/gossip/private-network';

  constructor(private readonly key: Uint8Array) {}

  async protect(connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    const localNonce = crypto.getRandomValues(new Uint8Array(PNET_NONCE_BYTES));
    const bytes = byteStream(connection);
    const opts = options ?? { signal: AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS) };
    const [remote] = await Promise.all([bytes.read({ bytes: PNET_NONCE_BYTES, ...opts }), bytes.write(localNonce, opts)]);
    const remoteNonce = remote.subarray();
    if (remoteNonce.length !== PNET_NONCE_BYTES) throw new Error(`private network: the peer sent a ${remoteNonce.length}-byte nonce`);
    // libp2p hands a protector the raw transport connection, a MultiaddrConnection.
    const inner = bytes.unwrap() as unknown as MultiaddrConnection;
    return new PrivateConnection(inner, new XSalsa20Stream(this.key, localNonce), new XSalsa20Stream(this.key, remoteNonce));
  }
}

/** libp2p's `connectionProtector` option for a cluster whose pnet v1 key file is `psk`. */
export function privateNetwork(init: { psk: Uint8Array }): () => ConnectionProtector {
  const key = decodePnetKey(init.psk);
  return () => new PrivateNetworkProtector(key);
}
