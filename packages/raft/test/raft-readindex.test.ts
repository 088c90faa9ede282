// ReadIndex (Raft thesis §6.4): linearizable reads without writing to the log. The leader needs an entry of its
// term committed, records the commit index, confirms leadership with a heartbeat round, then answers.

import test from 'ava';
import { RaftError } from '../src/types.js';
import { Network, bytes, ids, newRaft } from './raft-harness.js';

const dec = new TextDecoder();

test('§6.4 single-node leader answers a read at once with its commit index', (t) => {
  const r = newRaft('n1', ['n1']);
  r.hup(false);
  r.readIndex(bytes('ctx1'));
  t.deepEqual(r.readStates.map((s) => [s.index, dec.decode(s.context)]), [[1, 'ctx1']]);
});

test('§6.4 the leader answers only after a quorum acknowledges the heartbeat carrying the context', (t) => {
  const net = Network.of(3);
  net.campaign('n1');
  net.propose('n1', 'x');
  const r = net.raft('n1');
  net.isolate('n2');
  net.isolate('n3');
  r.readIndex(bytes('r1'));
  const hbs = r.takeMessages().filter((m) => m.type === 'heartbeat');
  t.is(hbs.length, 2);
  for (const m of hbs) t.truthy(m.type === 'heartbeat' && m.context !== null && dec.decode(m.context) === 'r1');
  t.deepEqual(r.readStates, [], 'no answer without a quorum');
  // Deliver one heartbeat's response: quorum of 2 out of 3.
  net.recover();
  const toN2 = hbs.find((m) => m.to === 'n2');
  if (toN2 === undefined) return t.fail();
  net.send([toN2]);
  t.deepEqual(r.readStates.map((s) => [s.index, dec.decode(s.context)]), [[2, 'r1']]);
});

test('§6.4 in a 5-node cluster one follower ack is not a quorum; two are', (t) => {
  const net = Network.of(5);
  net.campaign('n1');
  const r = net.raft('n1');
  for (const id of ids(5)) net.isolate(id);
  r.readIndex(bytes('five'));
  const hbs = r.takeMessages().filter((m) => m.type === 'heartbeat');
  net.recover();
  const h2 = hbs.find((m) => m.to === 'n2');
  const h3 = hbs.find((m) => m.to === 'n3');
  if (h2 === undefined || h3 === undefined) return t.fail();
  net.send([h2]);
  t.deepEqual(r.readStates, [], 'leader + 1 of 5 is not a quorum');
  net.send([h3]);
  t.deepEqual(r.readStates.map((s) => dec.decode(s.context)), ['five']);
});

test('§6.4 a new leader defers reads until an entry of its term is committed', (t) => {
  const net = Network.of(3);
  net.ignore('append-resp'); // the no-op will not commit
  net.campaign('n1');
  const r = net.raft('n1');
  t.is(r.log.committed, 0);
  r.readIndex(bytes('early'));
  net.send(r.takeMessages());
  t.deepEqual(r.readStates, []);
  net.recover();
  net.tick('n1'); // heartbeat -> responses -> appends -> no-op commits -> read round -> answer
  t.deepEqual(r.readStates.map((s) => [s.index, dec.decode(s.context)]), [[1, 'early']]);
});

test('§6.4 a follower forwards the read to the leader and gets a ReadState back', (t) => {
  const net = Network.of(3);
  net.campaign('n1');
  net.propose('n1', 'x');
  const f = net.raft('n2');
  f.readIndex(bytes('fr'));
  const fwd = f.takeMessages();
  t.deepEqual(fwd.map((m) => [m.type, m.to]), [['read-index', 'n1']]);
  net.send(fwd);
  t.true(net.trace.some((m) => m.type === 'read-index-resp' && m.to === 'n2'));
  t.deepEqual(f.readStates.map((s) => [s.index, dec.decode(s.context)]), [[2, 'fr']]);
});

test('§6.4 a node that knows no leader refuses a read with not_leader', (t) => {
  const r = newRaft('n2', ids(3));
  const err = t.throws(() => r.readIndex(bytes('x')));
  t.true(err instanceof RaftError && err.code === 'not_leader');
});

test('§6.4 an ack for a later read also confirms every earlier pending read', (t) => {
  const net = Network.of(3);
  net.campaign('n1');
  const r = net.raft('n1');
  net.isolate('n2');
  net.isolate('n3');
  r.readIndex(bytes('a'));
  r.readIndex(bytes('b'));
  const hbs = r.takeMessages().filter((m) => m.type === 'heartbeat' && m.to === 'n2');
  const forB = hbs.find((m) => m.type === 'heartbeat' && m.context !== null && dec.decode(m.context) === 'b');
  if (forB === undefined) return t.fail();
  net.recover();
  net.send([forB]);
  t.deepEqual(r.readStates.map((s) => dec.decode(s.context)), ['a', 'b']);
});

test('§6.4 a read recorded before later writes returns the commit index at request time', (t) => {
  const net = Network.of(3);
  net.campaign('n1');
  const r = net.raft('n1');
  net.isolate('n2');
  net.isolate('n3');
  r.readIndex(bytes('q'));
  const hb = r.takeMessages().find((m) => m.type === 'heartbeat' && m.to === 'n3');
  net.recover();
  net.propose('n1', 'later');
  t.is(r.log.committed, 2);
  if (hb === undefined) return t.fail();
  net.send([hb]);
  t.deepEqual(r.readStates.map((s) => s.index), [1]);
});

test('§6.4 a deposed leader never answers its pending reads', (t) => {
  const net = Network.of(3);
  net.campaign('n1');
  const r = net.raft('n1');
  net.isolate('n1');
  r.readIndex(bytes('stale'));
  r.takeMessages();
  net.recover();
  net.campaign('n2');
  net.tick('n2');
  t.is(r.role, 'follower');
  t.deepEqual(r.readStates, []);
});
