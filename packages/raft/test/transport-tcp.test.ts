// Tests for TcpTransport over real loopback TCP: delivery, reconnect, malformed input, bounded queues.
// Every transport and socket a test opens is closed in its teardown.

import test from 'ava';
import net from 'node:net';
import { TcpTransport } from '../src/transport/tcp.js';
import { encodeFrame } from '../src/transport/framing.js';
import { validateMessage } from '../src/transport/validate.js';
import type { Message } from '../src/types.js';

async function waitFor(cond: () => boolean, what: string, deadlineMs = 5000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function heartbeat(from: string, to: string, term = 1): Message {
  return { type: 'heartbeat', from, to, term, commit: 0, context: null };
}

function append(from: string, to: string, n: number): Message {
  return {
    type: 'append',
    from,
    to,
    term: 2,
    logTerm: 1,
    index: 5,
    commit: 4,
    entries: Array.from({ length: n }, (_, i) => ({ term: 2, index: 6 + i, type: 'normal' as const, data: new Uint8Array([i, 1, 2, 3]) })),
  };
}

interface Node {
  t: TcpTransport;
  got: Message[];
  unreachable: string[];
}

async function node(id: string, port = 0, opts: Partial<ConstructorParameters<typeof TcpTransport>[0]> = {}): Promise<Node> {
  const t = new TcpTransport({ id, listenPort: port, reconnectMinMs: 10, reconnectMaxMs: 50, ...opts });
  const n: Node = { t, got: [], unreachable: [] };
  await t.start((m) => n.got.push(m), { unreachable: (to) => n.unreachable.push(to) });
  return n;
}

test('messages sent by one transport arrive at the peer intact and in order, both directions', async (t) => {
  const a = await node('a');
  const b = await node('b');
  t.teardown(() => Promise.all([a.t.stop(), b.t.stop()]));
  a.t.addPeer('b', b.t.address);
  b.t.addPeer('a', a.t.address);

  a.t.send([append('a', 'b', 3), heartbeat('a', 'b', 7)]);
  b.t.send([heartbeat('b', 'a', 9)]);
  await waitFor(() => b.got.length === 2 && a.got.length === 1, 'delivery');

  const first = b.got[0];
  t.is(first?.type, 'append');
  if (first?.type !== 'append') return;
  t.is(first.entries.length, 3);
  t.deepEqual([...(first.entries[2]?.data ?? [])], [2, 1, 2, 3]);
  t.true(first.entries[0]?.data instanceof Uint8Array);
  t.is(b.got[1]?.term, 7);
  t.is(a.got[0]?.term, 9);

  // Many sends in one turn are delivered in order.
  const burst = Array.from({ length: 500 }, (_, i) => heartbeat('a', 'b', 100 + i));
  for (const m of burst) a.t.send([m]);
  await waitFor(() => b.got.length === 502, 'burst delivery');
  t.deepEqual(
    b.got.slice(2).map((m) => m.term),
    burst.map((m) => m.term),
  );
});

test('after the peer restarts on the same port, the sender reconnects and delivers again', async (t) => {
  const a = await node('a');
  let b = await node('b');
  const port = b.t.port;
  t.teardown(() => Promise.all([a.t.stop(), b.t.stop()]));
  a.t.addPeer('b', b.t.address);

  a.t.send([heartbeat('a', 'b', 1)]);
  await waitFor(() => b.got.length === 1, 'first delivery');

  await b.t.stop();
  // While b is down, messages are dropped and reported unreachable (never thrown, never blocking).
  await waitFor(() => {
    a.t.send([heartbeat('a', 'b', 2)]);
    return a.unreachable.includes('b');
  }, 'unreachable report while peer is down');

  b = await node('b', port);
  await waitFor(() => {
    a.t.send([heartbeat('a', 'b', 3)]);
    return b.got.some((m) => m.term === 3);
  }, 'delivery after restart');
  t.pass();
});

test('a peer that dials us again ends our reconnect backoff towards it at once', async (t) => {
  const a = await node('a', 0, { reconnectMinMs: 5000, reconnectMaxMs: 5000 });
  let b = await node('b');
  const port = b.t.port;
  t.teardown(() => Promise.all([a.t.stop(), b.t.stop()]));
  a.t.addPeer('b', b.t.address);
  a.t.send([heartbeat('a', 'b', 1)]);
  await waitFor(() => b.got.length === 1, 'first delivery');
  await b.t.stop();
  await waitFor(() => {
    a.t.send([heartbeat('a', 'b', 2)]);
    return a.unreachable.includes('b');
  }, 'a notices b is gone (now in a 5 s backoff)');

  b = await node('b', port);
  b.t.addPeer('a', a.t.address);
  const restartedMs = Date.now();
  b.t.send([heartbeat('b', 'a', 3)]); // b dials a
  await waitFor(() => {
    a.t.send([heartbeat('a', 'b', 4)]);
    return b.got.some((m) => m.term === 4);
  }, 'a redials b well before its backoff ends', 2500);
  t.true(Date.now() - restartedMs < 2500);
});

test('malformed frames close only that connection, with no crash, and good peers keep working', async (t) => {
  const warnings: string[] = [];
  const logger = { debug() {}, info() {}, error() {}, warn: (o: object) => warnings.push(JSON.stringify(o)) };
  const b = await node('b', 0, { logger, maxFrameBytes: 1024 * 1024 });
  const a = await node('a');
  t.teardown(() => Promise.all([a.t.stop(), b.t.stop()]));
  a.t.addPeer('b', b.t.address);

  const hello = encodeFrame({ proto: 'raft-consensus-ts/tcp/1', from: 'evil' });
  const garbage: Buffer[] = [
    Buffer.from([0, 0, 0, 3, 0xc1, 0xc1, 0xc1]), // not msgpack, no hello
    Buffer.concat([encodeFrame({ hello: 'wrong' })]), // wrong hello
    Buffer.concat([hello, encodeFrame({ type: 'vote', from: 'evil', to: 'b', term: -1 })]), // bad field
    Buffer.concat([hello, encodeFrame({ type: 'explode', from: 'evil', to: 'b', term: 1 })]), // unknown type
    Buffer.concat([hello, encodeFrame({ ...append('evil', 'b', 1), entries: [{ term: 1, index: 1, type: 'normal', data: 'str' }] })]),
    Buffer.concat([hello, encodeFrame(heartbeat('mallory', 'b'))]), // from does not match hello
    Buffer.from([0xff, 0xff, 0xff, 0xff]), // declared length over the limit
  ];
  for (const bytes of garbage) {
    const closed = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: b.t.port }, () => s.write(bytes));
      s.on('close', () => resolve(true));
      s.on('error', () => {});
      s.setTimeout(3000, () => {
        s.destroy();
        resolve(false);
      });
    });
    t.true(closed, `connection closed after ${bytes.subarray(0, 8).toString('hex')}`);
  }
  t.is(b.got.length, 0, 'nothing malformed reached Raft');
  t.true(warnings.length >= garbage.length, 'each rejection is logged as a warning');

  a.t.send([heartbeat('a', 'b', 4)]);
  await waitFor(() => b.got.length === 1, 'good peer still delivers');
  t.is(b.got[0]?.from, 'a');
});

test('the per-peer queue is bounded: overflow is dropped and reported unreachable', async (t) => {
  const b = await node('b');
  const a = await node('a', 0, { maxQueuedMessages: 10 });
  t.teardown(() => Promise.all([a.t.stop(), b.t.stop()]));
  a.t.addPeer('b', b.t.address);

  // One synchronous call: the connection is still being set up, so everything queues.
  a.t.send(Array.from({ length: 25 }, (_, i) => heartbeat('a', 'b', i + 1)));
  t.is(a.unreachable.filter((id) => id === 'b').length, 15);
  t.is(a.t.queueDepths()['b'], 10);
  await waitFor(() => b.got.length === 10, 'queued messages delivered');
  t.deepEqual(
    b.got.map((m) => m.term),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
  );
});

test('messages to unknown peers are dropped and reported, not thrown', async (t) => {
  const a = await node('a');
  t.teardown(() => a.t.stop());
  t.notThrows(() => a.t.send([heartbeat('a', 'nobody')]));
  t.deepEqual(a.unreachable, ['nobody']);
});

test('validateMessage rebuilds a message with only known fields and rejects bad shapes', (t) => {
  const m = validateMessage({ ...heartbeat('a', 'b'), extra: 'x' });
  t.deepEqual(Object.keys(m).sort(), ['commit', 'context', 'from', 'term', 'to', 'type']);
  t.throws(() => validateMessage({ ...heartbeat('a', 'b'), from: '' }));
  t.throws(() => validateMessage({ ...heartbeat('a', 'b'), term: 1.5 }));
  t.throws(() => validateMessage({ ...append('a', 'b', 1), commit: '3' }));
  t.throws(() => validateMessage({ type: 'snapshot', from: 'a', to: 'b', term: 1, snapshot: { meta: { index: 1, term: 1 }, data: new Uint8Array() } }));
  t.throws(() => validateMessage(null));
  t.throws(() => validateMessage([1, 2]));
});
