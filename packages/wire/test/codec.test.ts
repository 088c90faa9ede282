import test from 'ava';
import { encode, decode, encodeFrame, FrameDecoder, FrameError } from '../src/index.js';

test('a value survives encode/decode, including byte arrays', (t) => {
  const value = { type: 'append', term: 3, entries: [{ index: 1, data: new Uint8Array([1, 2, 3]) }], vote: null };
  const back = decode<typeof value>(encode(value));
  t.is(back.type, 'append');
  t.is(back.vote, null);
  t.deepEqual(Array.from(back.entries[0]!.data), [1, 2, 3]);
});

test('frames split at every byte boundary are reassembled in order', (t) => {
  const bytes = Buffer.concat([encodeFrame({ n: 1 }), encodeFrame({ n: 2, s: 'x'.repeat(300) }), encodeFrame({ n: 3 })]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const d = new FrameDecoder();
    const got = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))] as Array<{ n: number }>;
    t.deepEqual(got.map((f) => f.n), [1, 2, 3], `cut at ${cut}`);
    t.is(d.pendingBytes, 0);
  }
});

test('a frame length over the limit is refused before it is buffered', (t) => {
  const d = new FrameDecoder();
  const header = Buffer.alloc(4);
  header.writeUInt32BE(0xffffffff, 0);
  const err = t.throws(() => d.push(header), { instanceOf: FrameError });
  t.is(err?.code, 'frame_too_large');
});
