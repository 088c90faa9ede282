// The cluster's data key: 32 random bytes made at `swarm init`, kept in every manager's data dir (0600, beside the CA
// key) and never given to workers; secrets are sealed under it (AES-256-GCM) before they are proposed to Raft.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { PkiError, assert } from './errors.js';
import { cryptoRandom, takeRandom, type RandomBytes } from './random.js';

export const DATA_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** "SWB" and a format version: a sealed value says what it is, so a future format can be told apart. */
const MAGIC = Buffer.from([0x53, 0x57, 0x42, 0x01]);
/** The file's first line; the key follows as lowercase hex. */
const FILE_TAG = 'swarm-data-key-v1';

/** A fresh random key. */
export function generateDataKey(random: RandomBytes = cryptoRandom): Uint8Array {
  const key = takeRandom(random, DATA_KEY_BYTES);
  assert(key.some((byte) => byte !== 0), 'a data key of all zeros means the random source is broken');
  return key;
}

/** The key file's bytes: a tag line, then the key in hex (text, so an operator can back it up like the CA key). */
export function encodeDataKey(key: Uint8Array): Uint8Array {
  if (key.length !== DATA_KEY_BYTES) throw new PkiError('key_invalid', `a data key is ${DATA_KEY_BYTES} bytes, got ${key.length}`);
  return Buffer.from(`${FILE_TAG}\n${Buffer.from(key).toString('hex')}\n`, 'utf8');
}

export function decodeDataKey(file: Uint8Array): Uint8Array {
  const [tag, hex, ...rest] = Buffer.from(file).toString('utf8').split('\n');
  if (tag !== FILE_TAG || hex === undefined || !/^[0-9a-f]{64}$/.test(hex) || rest.some((l) => l.trim() !== '')) {
    throw new PkiError('key_invalid', `not a swarm data key file (a "${FILE_TAG}" line, then ${DATA_KEY_BYTES} bytes of hex)`);
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/**
 * AES-256-GCM with a random 96-bit nonce: MAGIC | nonce | ciphertext | tag. `context` (the object's kind and id) is
 * authenticated, so a sealed value moved onto another object does not open.
 */
export function sealData(key: Uint8Array, plaintext: Uint8Array, context: string, random: RandomBytes = cryptoRandom): Uint8Array {
  assert(key.length === DATA_KEY_BYTES, 'the data key is 32 bytes');
  const nonce = takeRandom(random, NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const sealed = Buffer.concat([MAGIC, nonce, body, cipher.getAuthTag()]);
  assert(sealed.length === MAGIC.length + NONCE_BYTES + plaintext.length + TAG_BYTES, 'sealed length');
  return new Uint8Array(sealed);
}

/** Throws PkiError('key_invalid') when the value was not sealed under this key for this context, or was altered. */
export function openData(key: Uint8Array, sealed: Uint8Array, context: string): Uint8Array {
  assert(key.length === DATA_KEY_BYTES, 'the data key is 32 bytes');
  const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (bytes.length < MAGIC.length + NONCE_BYTES + TAG_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new PkiError('key_invalid', `${context}: the stored value is not sealed data`);
  }
  const nonce = bytes.subarray(MAGIC.length, MAGIC.length + NONCE_BYTES);
  const tag = bytes.subarray(bytes.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(Buffer.from(context, 'utf8'));
  decipher.setAuthTag(tag);
  try {
    return new Uint8Array(Buffer.concat([decipher.update(bytes.subarray(MAGIC.length + NONCE_BYTES, bytes.length - TAG_BYTES)), decipher.final()]));
  } catch {
    throw new PkiError('key_invalid', `${context}: the stored value does not open with this manager's data key (another cluster's key, or altered)`);
  }
}
