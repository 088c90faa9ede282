// Validation of SWIM messages from the network: bad input is refused with the field named, never trusted.

import test from 'ava';
import { decode, encode } from '@swarm/wire';
import { GossipError, LIMITS, parseSwimMessage, type SwimMessage } from '../src/messages.js';

const meta = { nodeId: 'n', addrs: ['/ip4/127.0.0.1/tcp/1'], hostname: 'h', role: 'manager', cpus: 4, memoryBytes: 1024, labels: { a: 'b' }, version: '0.1.0' };

test('every message type survives msgpack and validation unchanged', (t) => {
  const msgs: SwimMessage[] = [
    { type: 'ping', seq: 1, target: 'b', updates: [{ kind: 'alive', id: 'a', incarnation: 2, meta: { ...meta, role: 'manager' } }] },
    { type: 'ack', seq: 1, updates: [{ kind: 'suspect', id: 'c', incarnation: 0, from: 'a' }] },
    { type: 'ping-req', seq: 9, target: 'c', targetAddrs: ['/ip4/127.0.0.1/tcp/2'], updates: [] },
    { type: 'nack', seq: 9, updates: [{ kind: 'dead', id: 'c', incarnation: 3, from: 'a' }] },
    { type: 'gossip', updates: [{ kind: 'left', id: 'd', incarnation: 5 }] },
    { type: 'sync', reply: true, members: [{ id: 'a', incarnation: 1, state: 'suspect', meta: { ...meta, role: 'worker' } }] },
  ];
  for (const m of msgs) t.deepEqual(parseSwimMessage(decode(encode(m))), m);
});

test('malformed messages are refused with a GossipError naming the field', (t) => {
  const bad: [unknown, RegExp][] = [
    [null, /message/],
    [{ type: 'pong' }, /type/],
    [{ type: 'ping', seq: -1, target: 'b', updates: [] }, /seq/],
    [{ type: 'ping', seq: 1.5, target: 'b', updates: [] }, /seq/],
    [{ type: 'ping', seq: 1, target: '', updates: [] }, /target/],
    [{ type: 'ack', seq: 1, updates: 'x' }, /updates/],
    [{ type: 'gossip', updates: [{ kind: 'alive', id: 'a', incarnation: 0, meta: { ...meta, role: 'king' } }] }, /meta\.role/],
    [{ type: 'gossip', updates: [{ kind: 'alive', id: 'a', incarnation: 0, meta: { ...meta, addrs: Array(LIMITS.maxAddrs + 1).fill('/x') } }] }, /addrs/],
    [{ type: 'gossip', updates: Array(LIMITS.maxUpdatesPerMessage + 1).fill({ kind: 'left', id: 'a', incarnation: 0 }) }, /updates/],
    [{ type: 'gossip', updates: [{ kind: 'suspect', id: 'a', incarnation: 0 }] }, /from/],
    [{ type: 'sync', reply: 'yes', members: [] }, /reply/],
    [{ type: 'sync', reply: false, members: [{ id: 'a', incarnation: 0, state: 'zombie', meta }] }, /state/],
  ];
  for (const [input, field] of bad) {
    const err = t.throws(() => parseSwimMessage(input), { instanceOf: GossipError });
    t.is(err?.code, 'invalid_message');
    t.regex(err?.message ?? '', field);
  }
});
