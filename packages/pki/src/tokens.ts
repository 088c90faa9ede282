// Join tokens in Docker Swarm's SWMTKN-1 shape: `SWMTKN-1-<CA fingerprint>-<secret>`, both parts fixed-width
// lowercase base36. The first part pins the root CA a joining node must see; the second is the role's secret.
import { timingSafeEqual } from 'node:crypto';
import { PkiError, assert } from './errors.js';
import type { NodeRole } from './ca.js';
import {
  BASE36_ALPHABET,
  bytesToBigInt,
  cryptoRandom,
  fromBase36,
  takeRandom,
  toBase36Fixed,
  type RandomBytes,
} from './random.js';

export const TOKEN_PREFIX = 'SWMTKN';
export const TOKEN_VERSION = 1;
/** ceil(256 / log2(36)): a sha256 digest in base36. */
export const TOKEN_FINGERPRINT_LENGTH = 50;
/** ceil(128 / log2(36)): the 16-byte secret in base36. */
export const TOKEN_SECRET_LENGTH = 25;
const SECRET_BYTES = 16;
const TOKEN_LENGTH = TOKEN_PREFIX.length + 1 + String(TOKEN_VERSION).length + 1 + TOKEN_FINGERPRINT_LENGTH + 1 + TOKEN_SECRET_LENGTH;
const MAX_FINGERPRINT = (1n << 256n) - 1n;
const MAX_SECRET = (1n << 128n) - 1n;
const FINGERPRINT_HEX = /^[0-9a-f]{64}$/;

const HOW_TO_GET_A_TOKEN = 'ask a manager of the cluster for `swarm join-token worker` (or `swarm join-token manager`)';
const TOKEN_SHAPE = `a join token looks like ${TOKEN_PREFIX}-${TOKEN_VERSION}-<${TOKEN_FINGERPRINT_LENGTH} characters of [0-9a-z]>-<${TOKEN_SECRET_LENGTH} characters of [0-9a-z]>`;

export interface ParsedJoinToken {
  readonly version: number;
  /** sha256 of the root CA certificate's DER, lowercase hex, as pinned by the token. */
  readonly caFingerprint: string;
  /** The secret part, base36 as written in the token. */
  readonly secret: string;
}

/** The cluster's current tokens; a manager keeps them in the Raft-replicated Cluster object. */
export interface JoinTokens {
  readonly worker: string;
  readonly manager: string;
}

function checkFingerprint(fingerprint: string): void {
  assert(FINGERPRINT_HEX.test(fingerprint), `a CA fingerprint is 64 lowercase hex characters, got ${JSON.stringify(fingerprint)}`);
}

/** A fresh token for a CA: `SWMTKN-1-<fingerprint>-<secret>`. Rotation is simply generating another. */
export function generateJoinToken(ca: { readonly fingerprint: string }, random: RandomBytes = cryptoRandom): string {
  checkFingerprint(ca.fingerprint);
  const digest = toBase36Fixed(BigInt('0x' + ca.fingerprint), TOKEN_FINGERPRINT_LENGTH);
  const secret = toBase36Fixed(bytesToBigInt(takeRandom(random, SECRET_BYTES)), TOKEN_SECRET_LENGTH);
  const token = `${TOKEN_PREFIX}-${TOKEN_VERSION}-${digest}-${secret}`;
  assert(token.length === TOKEN_LENGTH, 'a generated token has the fixed length');
  return token;
}

/** Both tokens at `swarm init`. */
export function createJoinTokens(ca: { readonly fingerprint: string }, random: RandomBytes = cryptoRandom): JoinTokens {
  const tokens = { worker: generateJoinToken(ca, random), manager: generateJoinToken(ca, random) };
  assert(tokens.worker !== tokens.manager, 'the worker and manager tokens must differ');
  return tokens;
}

/** `swarm join-token --rotate ROLE`: replaces that role's token; the old one stops matching at once. */
export function rotateJoinToken(
  tokens: JoinTokens,
  role: NodeRole,
  ca: { readonly fingerprint: string },
  random: RandomBytes = cryptoRandom,
): JoinTokens {
  const fresh = generateJoinToken(ca, random);
  const rotated = role === 'worker' ? { ...tokens, worker: fresh } : { ...tokens, manager: fresh };
  assert(rotated.worker !== rotated.manager, 'the worker and manager tokens must differ');
  return rotated;
}

function malformed(problem: string): PkiError {
  return new PkiError('token_malformed', `the join token is malformed: ${problem}; ${TOKEN_SHAPE}; ${HOW_TO_GET_A_TOKEN}`);
}

/** Splits and checks a token's shape. Throws PkiError('token_malformed') that says what a token looks like. */
export function parseJoinToken(token: string): ParsedJoinToken {
  if (typeof token !== 'string') throw malformed('it is not a string');
  // A token pasted from a terminal often carries a newline; anything inside it must be exact.
  const text = token.trim();
  if (text.length === 0) throw malformed('it is empty');
  if (text.length > 4 * TOKEN_LENGTH) throw malformed(`it is ${text.length} characters long`);
  const parts = text.split('-');
  if (parts[0] !== TOKEN_PREFIX) throw malformed(`it does not start with "${TOKEN_PREFIX}-"`);
  if (parts[1] !== String(TOKEN_VERSION)) {
    throw malformed(`version "${parts[1] ?? ''}" is not supported (this node understands version ${TOKEN_VERSION})`);
  }
  if (parts.length !== 4) throw malformed(`it has ${parts.length} dash-separated parts, not 4`);
  const [, , digest = '', secret = ''] = parts;
  if (digest.length !== TOKEN_FINGERPRINT_LENGTH) {
    throw malformed(`the CA fingerprint part is ${digest.length} characters, not ${TOKEN_FINGERPRINT_LENGTH}`);
  }
  if (!BASE36_ALPHABET.test(digest)) throw malformed('the CA fingerprint part has characters outside [0-9a-z]');
  if (secret.length !== TOKEN_SECRET_LENGTH) {
    throw malformed(`the secret part is ${secret.length} characters, not ${TOKEN_SECRET_LENGTH}`);
  }
  if (!BASE36_ALPHABET.test(secret)) throw malformed('the secret part has characters outside [0-9a-z]');
  const digestValue = fromBase36(digest);
  if (digestValue > MAX_FINGERPRINT) throw malformed('the CA fingerprint part is larger than a sha256 digest');
  if (fromBase36(secret) > MAX_SECRET) throw malformed('the secret part is larger than 128 bits');
  const caFingerprint = digestValue.toString(16).padStart(64, '0');
  checkFingerprint(caFingerprint);
  return { version: TOKEN_VERSION, caFingerprint, secret };
}

function wrongCluster(tokenFingerprint: string, clusterFingerprint: string): PkiError {
  return new PkiError(
    'token_wrong_cluster',
    `the join token belongs to another cluster: it pins root CA sha256:${tokenFingerprint.slice(0, 16)}…, ` +
      `but this cluster's root CA is sha256:${clusterFingerprint.slice(0, 16)}…; ask a manager of the cluster you want to join ` +
      'for `swarm join-token worker` (or `swarm join-token manager`)',
  );
}

function secretsEqual(a: string, b: string): boolean {
  // Both are fixed-width ASCII after parsing; timingSafeEqual needs equal lengths, which holds by construction.
  const left = Buffer.from(a, 'ascii');
  const right = Buffer.from(b, 'ascii');
  assert(left.length === right.length, 'secrets compared in constant time have the same length');
  return timingSafeEqual(left, right);
}

/**
 * Manager side of `swarm join`: decides the role a presented token grants, or refuses it. Order of checks:
 * shape (token_malformed), the CA it pins (token_wrong_cluster), then the secret in constant time against
 * both current tokens (token_invalid, which is also what a rotated-away token gets).
 */
export function matchJoinToken(token: string, current: JoinTokens, caFingerprint: string): NodeRole {
  checkFingerprint(caFingerprint);
  const presented = parseJoinToken(token);
  if (presented.caFingerprint !== caFingerprint) throw wrongCluster(presented.caFingerprint, caFingerprint);
  const worker = parseJoinToken(current.worker);
  const manager = parseJoinToken(current.manager);
  assert(worker.caFingerprint === caFingerprint && manager.caFingerprint === caFingerprint, "the cluster's own tokens pin its CA");
  // Compare against both before deciding so the time taken does not reveal which secret was close.
  const isWorker = secretsEqual(presented.secret, worker.secret);
  const isManager = secretsEqual(presented.secret, manager.secret);
  assert(!(isWorker && isManager), 'the worker and manager secrets must differ');
  if (isManager) return 'manager';
  if (isWorker) return 'worker';
  throw new PkiError(
    'token_invalid',
    'the join token is not valid for this cluster: it may have been rotated (`swarm join-token --rotate`) or mistyped; ' +
      HOW_TO_GET_A_TOKEN,
  );
}

/**
 * Joining side: before trusting anything a manager says, check that the root CA certificate it presented is
 * the one the token pins. `fingerprint` is certificateFingerprint(presented CA cert).
 */
export function checkTokenPinsCA(token: string, presentedCAFingerprint: string): ParsedJoinToken {
  checkFingerprint(presentedCAFingerprint);
  const parsed = parseJoinToken(token);
  if (parsed.caFingerprint !== presentedCAFingerprint) {
    throw new PkiError(
      'token_wrong_cluster',
      `the manager presented root CA sha256:${presentedCAFingerprint.slice(0, 16)}…, but the join token pins ` +
        `sha256:${parsed.caFingerprint.slice(0, 16)}…: this address is not a manager of the cluster the token is for ` +
        '(or someone is in the way); check the address, or get a token from a manager of that cluster',
    );
  }
  return parsed;
}
