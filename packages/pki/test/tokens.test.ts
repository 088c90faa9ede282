import test from 'ava';
import {
  PkiError,
  createRootCA,
  generateJoinToken,
  createJoinTokens,
  rotateJoinToken,
  parseJoinToken,
  matchJoinToken,
  checkTokenPinsCA,
  type JoinTokens,
} from '../src/index.js';
import { seededRandom } from './seeded-random.js';

// Synthetic fingerprints keep most token tests free of key generation; one test uses real CAs.
const FP_A = 'a3'.repeat(32);
const FP_B = 'b4'.repeat(32);
const FP_LOW = '0'.repeat(62) + '2a'; // leading zeros must survive the fixed-width encoding
const TOKEN_SHAPE = /^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/;

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return err instanceof PkiError ? err.code : `not a PkiError: ${String(err)}`;
  }
}

function tokensFor(fingerprint: string, seed = 'tokens'): JoinTokens {
  return createJoinTokens({ fingerprint }, seededRandom(seed));
}

test('a token has Docker shape and round-trips its CA fingerprint and secret', (t) => {
  for (const fingerprint of [FP_A, FP_B, FP_LOW, 'f'.repeat(64)]) {
    const token = generateJoinToken({ fingerprint }, seededRandom(fingerprint));
    t.regex(token, TOKEN_SHAPE);
    const parsed = parseJoinToken(token);
    t.is(parsed.version, 1);
    t.is(parsed.caFingerprint, fingerprint);
    t.is(parsed.secret, token.slice(-25));
  }
});

test('the secret is 128 bits from the injected random source, encoded fixed-width', (t) => {
  const allZero = generateJoinToken({ fingerprint: FP_A }, (n) => new Uint8Array(n));
  t.true(allZero.endsWith('-' + '0'.repeat(25)));
  const allOnes = generateJoinToken({ fingerprint: FP_A }, (n) => new Uint8Array(n).fill(0xff));
  t.true(allOnes.endsWith('-' + ((1n << 128n) - 1n).toString(36)));
  t.is(generateJoinToken({ fingerprint: FP_A }, seededRandom('x')), generateJoinToken({ fingerprint: FP_A }, seededRandom('x')));
  t.not(generateJoinToken({ fingerprint: FP_A }, seededRandom('x')), generateJoinToken({ fingerprint: FP_A }, seededRandom('y')));
});

test('the worker token grants worker and the manager token grants manager', (t) => {
  const tokens = tokensFor(FP_A);
  t.not(tokens.worker, tokens.manager);
  t.is(matchJoinToken(tokens.worker, tokens, FP_A), 'worker');
  t.is(matchJoinToken(tokens.manager, tokens, FP_A), 'manager');
  // A token pasted with a trailing newline still matches.
  t.is(matchJoinToken(tokens.manager + '\n', tokens, FP_A), 'manager');
});

test('malformed tokens are token_malformed and the message says what a token looks like', (t) => {
  const good = tokensFor(FP_A).worker;
  const [, , digest = '', secret = ''] = good.split('-');
  const cases: Record<string, string> = {
    empty: '',
    'wrong prefix': `SWMTKX-1-${digest}-${secret}`,
    'lowercase prefix': `swmtkn-1-${digest}-${secret}`,
    'wrong version': `SWMTKN-2-${digest}-${secret}`,
    'missing version': `SWMTKN-${digest}-${secret}`,
    'missing secret': `SWMTKN-1-${digest}`,
    'extra part': `SWMTKN-1-${digest}-${secret}-x`,
    'short fingerprint': `SWMTKN-1-${digest.slice(1)}-${secret}`,
    'long fingerprint': `SWMTKN-1-0${digest}-${secret}`,
    'short secret': `SWMTKN-1-${digest}-${secret.slice(1)}`,
    'long secret': `SWMTKN-1-${digest}-${secret}0`,
    'uppercase in fingerprint': `SWMTKN-1-${digest.slice(0, -1)}A-${secret}`,
    'punctuation in secret': `SWMTKN-1-${digest}-${secret.slice(0, -1)}_`,
    'space inside': `SWMTKN-1-${digest}-${secret.slice(0, -1)} `.padEnd(good.length + 1, 'x'),
    'fingerprint over 256 bits': `SWMTKN-1-${'z'.repeat(50)}-${secret}`,
    'secret over 128 bits': `SWMTKN-1-${digest}-${'z'.repeat(25)}`,
    'very long': 'SWMTKN-1-' + 'a'.repeat(10_000),
  };
  for (const [name, token] of Object.entries(cases)) {
    t.is(codeOf(() => parseJoinToken(token)), 'token_malformed', name);
    t.is(codeOf(() => matchJoinToken(token, tokensFor(FP_A), FP_A)), 'token_malformed', name);
    const err = t.throws(() => parseJoinToken(token), { instanceOf: PkiError }, name);
    t.regex(err?.message ?? '', /SWMTKN-1-<50 characters/, name);
    t.regex(err?.message ?? '', /swarm join-token worker/, name);
  }
});

test('a token made for another cluster\'s CA is token_wrong_cluster, even with a current secret', async (t) => {
  const ours = await createRootCA({ clusterId: 'ours', nowMs: Date.UTC(2026, 0, 1) });
  const theirs = await createRootCA({ clusterId: 'theirs', nowMs: Date.UTC(2026, 0, 1) });
  const ourTokens = createJoinTokens(ours, seededRandom('ours'));
  const theirToken = generateJoinToken(theirs, seededRandom('theirs'));
  const err = t.throws(() => matchJoinToken(theirToken, ourTokens, ours.fingerprint), { instanceOf: PkiError });
  t.is(err?.code, 'token_wrong_cluster');
  t.regex(err?.message ?? '', /another cluster/);
  // Same secret, other CA part: the fingerprint check must refuse it, not the secret comparison.
  const spliced = theirToken.slice(0, 9 + 50) + ourTokens.worker.slice(9 + 50);
  t.is(codeOf(() => matchJoinToken(spliced, ourTokens, ours.fingerprint)), 'token_wrong_cluster');
});

test('a token with this cluster\'s CA but an unknown secret is token_invalid', (t) => {
  const tokens = tokensFor(FP_A);
  const last = tokens.worker.at(-1) === '0' ? '1' : '0';
  const tampered = tokens.worker.slice(0, -1) + last;
  const err = t.throws(() => matchJoinToken(tampered, tokens, FP_A), { instanceOf: PkiError });
  t.is(err?.code, 'token_invalid');
  t.regex(err?.message ?? '', /rotated/);
  t.is(codeOf(() => matchJoinToken(generateJoinToken({ fingerprint: FP_A }, seededRandom('stranger')), tokens, FP_A)), 'token_invalid');
});

test('after rotation the old token is token_invalid, the new one works, the other role is untouched', (t) => {
  const before = tokensFor(FP_A);
  const after = rotateJoinToken(before, 'worker', { fingerprint: FP_A }, seededRandom('rotate-1'));
  t.not(after.worker, before.worker);
  t.is(after.manager, before.manager);
  t.is(codeOf(() => matchJoinToken(before.worker, after, FP_A)), 'token_invalid');
  t.is(matchJoinToken(after.worker, after, FP_A), 'worker');
  t.is(matchJoinToken(before.manager, after, FP_A), 'manager');

  const managerRotated = rotateJoinToken(after, 'manager', { fingerprint: FP_A }, seededRandom('rotate-2'));
  t.is(codeOf(() => matchJoinToken(before.manager, managerRotated, FP_A)), 'token_invalid');
  t.is(matchJoinToken(managerRotated.manager, managerRotated, FP_A), 'manager');
  t.is(matchJoinToken(after.worker, managerRotated, FP_A), 'worker');
});

test('a worker token never grants manager, even when only the manager token was rotated', (t) => {
  const tokens = rotateJoinToken(tokensFor(FP_A), 'manager', { fingerprint: FP_A }, seededRandom('r'));
  t.is(matchJoinToken(tokens.worker, tokens, FP_A), 'worker');
});

test('the joining node checks the CA a manager presents against the one its token pins', async (t) => {
  const ours = await createRootCA({ clusterId: 'ours', nowMs: Date.UTC(2026, 0, 1) });
  const other = await createRootCA({ clusterId: 'ours', nowMs: Date.UTC(2026, 0, 1) });
  const token = generateJoinToken(ours, seededRandom('join'));
  t.is(checkTokenPinsCA(token, ours.fingerprint).caFingerprint, ours.fingerprint);
  t.is(codeOf(() => checkTokenPinsCA(token, other.fingerprint)), 'token_wrong_cluster');
  t.is(codeOf(() => checkTokenPinsCA('SWMTKN-1-bad', ours.fingerprint)), 'token_malformed');
});
