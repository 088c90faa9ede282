// The private network's keystream: the same bytes whatever way the stream is cut, one key file format, and (in
// host.test.ts) two hosts with the key talk while a host with another key cannot connect at all.

import test from 'ava';
import { xsalsa20 } from '@noble/ciphers/salsa.js';
import { decodePnetKey, XSalsa20Stream } from '../src/private-network.js';
import { generateSwarmKey } from '../src/index.js';

test('the keystream is the same whatever sizes the stream is cut into, and XOR twice gives the bytes back', (t) => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const nonce = crypto.getRandomValues(new Uint8Array(24));
  const data = crypto.getRandomValues(new Uint8Array(5_000));
  const whole = xsalsa20(key, nonce, data);
  for (const sizes of [[1], [63, 1, 64, 65], [7, 200, 13], [4_999, 1]]) {
    const stream = new XSalsa20Stream(key, nonce);
    const parts: Uint8Array[] = [];
    for (let at = 0, i = 0; at < data.length; i++) {
      const n = Math.min(sizes[i % sizes.length] as number, data.length - at);
      parts.push(stream.update(data.subarray(at, at + n)));
      at += n;
    }
    t.deepEqual(Buffer.concat(parts), Buffer.from(whole), `cut in ${sizes.join(',')}`);
  }
  const back = new XSalsa20Stream(key, nonce).update(whole);
  t.deepEqual(Buffer.from(back), Buffer.from(data));
});

test('pnet v1 key files: a generated one decodes to 32 bytes; a malformed one is refused', (t) => {
  t.is(decodePnetKey(generateSwarmKey()).length, 32);
  t.is(decodePnetKey(new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${'ab'.repeat(32)}\n`))[0], 0xab);
  t.throws(() => decodePnetKey(new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base64/\n${'ab'.repeat(32)}`)), { message: /pnet v1 key file/ });
  t.throws(() => decodePnetKey(new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${'ab'.repeat(31)}`)), { message: /pnet v1 key file/ });
});
