// The cluster data key and sealed values: a round trip, and every way a sealed value must refuse to open.

import test from 'ava';
import { decodeDataKey, encodeDataKey, generateDataKey, openData, PkiError, sealData } from '../src/index.js';

test('sealed data opens with its key and context only; the ciphertext does not hold the plaintext; each seal differs', (t) => {
  const key = generateDataKey();
  const plain = Buffer.from('correct horse battery staple');
  const sealed = sealData(key, plain, 'secret/abc');
  t.false(Buffer.from(sealed).includes(plain));
  t.is(sealed.length, 4 + 12 + plain.length + 16);
  t.deepEqual(Buffer.from(openData(key, sealed, 'secret/abc')), plain);
  t.notDeepEqual(sealData(key, plain, 'secret/abc'), sealed, 'a fresh nonce every time');
  const refuse = (k: Uint8Array, s: Uint8Array, ctx: string): void => void t.throws(() => openData(k, s, ctx), { instanceOf: PkiError });
  refuse(generateDataKey(), sealed, 'secret/abc');
  refuse(key, sealed, 'secret/other');
  const tampered = Uint8Array.from(sealed);
  tampered[20] = (tampered[20] ?? 0) ^ 1;
  refuse(key, tampered, 'secret/abc');
  refuse(key, plain, 'secret/abc');
  refuse(key, sealed.subarray(0, 10), 'secret/abc');
});

test('the key file: a tag line and hex; anything else is refused', (t) => {
  const key = generateDataKey();
  const file = encodeDataKey(key);
  t.regex(Buffer.from(file).toString(), /^swarm-data-key-v1\n[0-9a-f]{64}\n$/);
  t.deepEqual(decodeDataKey(file), key);
  t.throws(() => decodeDataKey(Buffer.from('swarm-data-key-v1\nabc\n')), { instanceOf: PkiError });
  t.throws(() => decodeDataKey(Buffer.from('something else')), { instanceOf: PkiError });
  t.throws(() => encodeDataKey(new Uint8Array(16)), { instanceOf: PkiError });
});
