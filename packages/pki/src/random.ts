// The injectable random source and the base36 encoding shared by ids and join tokens.
// Tests pass a seeded source so tokens and serial numbers are reproducible.
import { randomBytes } from 'node:crypto';
import { assert } from './errors.js';

/** Returns exactly `byteCount` random bytes. */
export type RandomBytes = (byteCount: number) => Uint8Array;

/** The production source: the OS CSPRNG. */
export const cryptoRandom: RandomBytes = (byteCount) => new Uint8Array(randomBytes(byteCount));

/** Calls `random` and checks it kept its contract, so a broken test double fails loudly. */
export function takeRandom(random: RandomBytes, byteCount: number): Uint8Array {
  const bytes = random(byteCount);
  assert(bytes.length === byteCount, `random source returned ${bytes.length} bytes, wanted ${byteCount}`);
  return bytes;
}

export function bytesToBigInt(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

export const BASE36_ALPHABET = /^[0-9a-z]+$/;

/** Zero-padded lowercase base36, the encoding SwarmKit uses for ids and token parts. */
export function toBase36Fixed(value: bigint, width: number): string {
  assert(value >= 0n, 'base36 value must be non-negative');
  const digits = value.toString(36);
  assert(digits.length <= width, `base36 value needs ${digits.length} digits, width is ${width}`);
  return digits.padStart(width, '0');
}

/** Parses lowercase base36; the caller has already checked the charset. */
export function fromBase36(text: string): bigint {
  assert(BASE36_ALPHABET.test(text), 'base36 text has a character outside [0-9a-z]');
  let value = 0n;
  for (const ch of text) value = value * 36n + BigInt(parseInt(ch, 36));
  return value;
}

// 128 random bits in base36 need ceil(128 / log2(36)) = 25 digits.
const ID_ENTROPY_BYTES = 16;
export const ID_LENGTH = 25;

/** A random id (node id, cluster id) in SwarmKit's shape: 25 lowercase base36 characters, 128 bits. */
export function newId(random: RandomBytes = cryptoRandom): string {
  return toBase36Fixed(bytesToBigInt(takeRandom(random, ID_ENTROPY_BYTES)), ID_LENGTH);
}
