// The cluster's libp2p private-network key (pnet PSK): made at `swarm init`, written in libp2p's pnet v1 PSK file
// format (what @swarm/gossip's privateNetwork({ psk }) decodes), and handed to a node only after its token matched.
import { hkdfSync } from 'node:crypto';
import { PkiError, assert } from './errors.js';
import { cryptoRandom, takeRandom, type RandomBytes } from './random.js';

// The format is libp2p's pnet v1 (as @libp2p/pnet writes and reads it): three newline-separated lines
// "/key/swarm/psk/1.0.0/", "/base16/", then the 32-byte key as lowercase hex.
export const PNET_KEY_BYTES = 32;
const PSK_TAG = '/key/swarm/psk/1.0.0/';
const PSK_CODEC = '/base16/';
const HEX_KEY = /^[0-9a-f]{64}$/;
// Domain separation for derivePnetKey: a key derived for pnet is never equal to one derived for anything else.
const HKDF_INFO = 'swarm pnet psk v1';

/** A fresh random 32-byte key. How it reaches joining nodes: see the module comment. */
export function generatePnetKey(random: RandomBytes = cryptoRandom): Uint8Array {
  const key = takeRandom(random, PNET_KEY_BYTES);
  assert(key.some((byte) => byte !== 0), 'a pnet key of all zeros means the random source is broken');
  return key;
}

/**
 * Derives the pnet key from a cluster secret (at least 32 bytes, kept in the replicated Cluster object) with
 * HKDF-SHA256, salted with the cluster id, so one stored secret can feed several keys without reuse.
 */
export function derivePnetKey(clusterSecret: Uint8Array, clusterId: string): Uint8Array {
  if (clusterSecret.length < PNET_KEY_BYTES) {
    throw new PkiError('pnet_key_invalid', `the cluster secret is ${clusterSecret.length} bytes; it must be at least ${PNET_KEY_BYTES}`);
  }
  assert(clusterId.length > 0, 'a cluster id is needed to derive the pnet key');
  const key = new Uint8Array(hkdfSync('sha256', clusterSecret, Buffer.from(clusterId, 'utf8'), Buffer.from(HKDF_INFO, 'utf8'), PNET_KEY_BYTES));
  assert(key.length === PNET_KEY_BYTES, 'HKDF returned the requested length');
  return key;
}

/** The PSK file bytes: `privateNetwork({ psk: encodePnetKey(key) })` in @swarm/gossip. */
export function encodePnetKey(key: Uint8Array): Uint8Array {
  if (key.length !== PNET_KEY_BYTES) {
    throw new PkiError('pnet_key_invalid', `a pnet key is ${PNET_KEY_BYTES} bytes, got ${key.length}`);
  }
  const text = `${PSK_TAG}\n${PSK_CODEC}\n${Buffer.from(key).toString('hex')}`;
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

/** Reads a PSK file back (a node's data dir) and checks it is the format encodePnetKey writes. */
export function decodePnetKey(file: Uint8Array | string): Uint8Array {
  const text = typeof file === 'string' ? file : Buffer.from(file).toString('utf8');
  const lines = text.trim().split(/\r\n|\r|\n/);
  const [tag, codec, hex = ''] = lines;
  if (lines.length !== 3 || tag !== PSK_TAG || codec !== PSK_CODEC || !HEX_KEY.test(hex)) {
    throw new PkiError(
      'pnet_key_invalid',
      `the private-network key file is not "${PSK_TAG}", "${PSK_CODEC}" and 64 lowercase hex characters on three lines; ` +
        'restore it from a manager or leave and rejoin the cluster',
    );
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
