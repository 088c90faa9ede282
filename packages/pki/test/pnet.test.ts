import test from 'ava';
import { PkiError, generatePnetKey, derivePnetKey, encodePnetKey, decodePnetKey, PNET_KEY_BYTES } from '../src/index.js';
import { seededRandom } from './seeded-random.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return err instanceof PkiError ? err.code : `not a PkiError: ${String(err)}`;
  }
}

test('the pnet key file is the three-line /key/swarm/psk/1.0.0/ base16 format libp2p pnet reads', (t) => {
  const key = Uint8Array.from({ length: PNET_KEY_BYTES }, (_, i) => i);
  const text = Buffer.from(encodePnetKey(key)).toString('utf8');
  t.is(text, '/key/swarm/psk/1.0.0/\n/base16/\n000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
  t.deepEqual(decodePnetKey(encodePnetKey(key)), key);
  t.deepEqual(decodePnetKey(text + '\n'), key);
});

test('a pnet key of the wrong length or a file in another format is pnet_key_invalid', (t) => {
  t.is(codeOf(() => encodePnetKey(new Uint8Array(31))), 'pnet_key_invalid');
  const good = Buffer.from(encodePnetKey(generatePnetKey(seededRandom('k')))).toString('utf8');
  t.is(codeOf(() => decodePnetKey(good.replace('/key/swarm/psk/1.0.0/', '/key/swarm/psk/2.0.0/'))), 'pnet_key_invalid');
  t.is(codeOf(() => decodePnetKey(good.replace('/base16/', '/base64/'))), 'pnet_key_invalid');
  t.is(codeOf(() => decodePnetKey(good.slice(0, -2))), 'pnet_key_invalid');
  t.is(codeOf(() => decodePnetKey(good.toUpperCase())), 'pnet_key_invalid');
});

test('generated keys come from the injected random source', (t) => {
  const a = generatePnetKey(seededRandom('pnet'));
  t.is(a.length, PNET_KEY_BYTES);
  t.deepEqual(generatePnetKey(seededRandom('pnet')), a);
  t.notDeepEqual(generatePnetKey(seededRandom('other')), a);
  t.notDeepEqual(generatePnetKey(), generatePnetKey());
});

test('a derived pnet key is stable for one cluster and differs across secrets and clusters', (t) => {
  const secret = generatePnetKey(seededRandom('secret'));
  const key = derivePnetKey(secret, 'cluster-a');
  t.is(key.length, PNET_KEY_BYTES);
  t.deepEqual(derivePnetKey(secret, 'cluster-a'), key);
  t.notDeepEqual(derivePnetKey(secret, 'cluster-b'), key);
  t.notDeepEqual(derivePnetKey(generatePnetKey(seededRandom('secret2')), 'cluster-a'), key);
  t.notDeepEqual(key, secret);
  t.is(codeOf(() => derivePnetKey(new Uint8Array(16), 'cluster-a')), 'pnet_key_invalid');
});
