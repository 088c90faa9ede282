// The endpoint tables as a host merges them from gossip, and the endpoint messages as they are checked on arrival.

import test from 'ava';
import { encode } from '@swarm/wire';
import { EndpointTable, macForIp, parseMessage, type PublishedTable } from '../src/index.js';

function table(networkId: string, seq: number, host: string, ips: string[]): PublishedTable {
  return { networkId, seq, host, endpoints: ips.map((ip, i) => ({ ip, mac: macForIp(ip), taskId: `t${i}`, service: 'web', task: `web.${i + 1}.t${i}`, aliases: [], vip: '', ready: true })) };
}

test("Docker's MAC rule: 02:42 and the address's four bytes", (t) => {
  t.is(macForIp('10.0.1.5'), '02:42:0a:00:01:05');
  t.is(macForIp('172.18.255.254'), '02:42:ac:12:ff:fe');
  t.throws(() => macForIp('10.0.1'));
});

test("a publisher's newer table replaces its older one; an older one arriving late is ignored", (t) => {
  const tab = new EndpointTable('self');
  t.true(tab.apply('p1', table('n', 10, '10.1.0.1', ['10.0.1.2', '10.0.1.3'])));
  t.false(tab.apply('p1', table('n', 10, '10.1.0.1', ['10.0.1.2', '10.0.1.3'])), 'the same sequence again changes nothing');
  t.true(tab.apply('p1', table('n', 11, '10.1.0.1', ['10.0.1.3'])));
  t.false(tab.apply('p1', table('n', 9, '10.1.0.1', ['10.0.1.2', '10.0.1.9'])), 'older');
  t.deepEqual(tab.remote('n').map((e) => e.ip), ['10.0.1.3']);
});

test('an empty table withdraws a publisher, and a late older full table cannot bring it back', (t) => {
  const tab = new EndpointTable('self');
  tab.apply('p1', table('n', 5, '10.1.0.1', ['10.0.1.2']));
  t.true(tab.apply('p1', table('n', 6, '10.1.0.1', [])));
  t.deepEqual(tab.remote('n'), []);
  t.false(tab.apply('p1', table('n', 5, '10.1.0.1', ['10.0.1.2'])));
  t.deepEqual(tab.remote('n'), []);
  t.deepEqual(tab.publishers('n'), []);
});

test("the union of every peer's endpoints, with each one's host; our own publications are not peers", (t) => {
  const tab = new EndpointTable('self');
  tab.apply('p1', table('n', 1, '10.1.0.1', ['10.0.1.2']));
  tab.apply('p2', table('n', 1, '10.1.0.2', ['10.0.1.3', '10.0.1.4']));
  tab.apply('p2', table('m', 1, '10.1.0.2', ['10.0.2.2']));
  t.false(tab.apply('self', table('n', 1, '10.1.0.9', ['10.0.1.9'])));
  t.deepEqual(tab.remote('n').map((e) => [e.ip, e.host]), [['10.0.1.2', '10.1.0.1'], ['10.0.1.3', '10.1.0.2'], ['10.0.1.4', '10.1.0.2']]);
  t.deepEqual(tab.remote('m').map((e) => e.ip), ['10.0.2.2']);
});

test("a dead peer's endpoints leave every network it was on", (t) => {
  const tab = new EndpointTable('self');
  tab.apply('p1', table('n', 1, '10.1.0.1', ['10.0.1.2']));
  tab.apply('p1', table('m', 1, '10.1.0.1', ['10.0.2.2']));
  tab.apply('p2', table('n', 1, '10.1.0.2', ['10.0.1.3']));
  t.deepEqual(tab.dropPublisher('p1'), ['m', 'n']);
  t.deepEqual(tab.remote('n').map((e) => e.ip), ['10.0.1.3']);
  t.deepEqual(tab.remote('m'), []);
  t.deepEqual(tab.dropPublisher('p1'), []);
});

test('an address claimed by two hosts (a task moved, the old host not yet withdrawn) goes to the later publication', (t) => {
  const tab = new EndpointTable('self');
  tab.apply('old', table('n', 100, '10.1.0.1', ['10.0.1.2']));
  tab.apply('new', table('n', 200, '10.1.0.2', ['10.0.1.2']));
  t.deepEqual(tab.remote('n').map((e) => e.host), ['10.1.0.2']);
  tab.apply('old', table('n', 300, '10.1.0.1', []));
  t.deepEqual(tab.remote('n').map((e) => e.host), ['10.1.0.2']);
});

test('endpoint messages from the wire are checked: anything malformed is null, never thrown', (t) => {
  t.deepEqual(parseMessage(encode({ kind: 'sync', networkId: 'n' })), { kind: 'sync', networkId: 'n' });
  const good = table('n', 1, '10.1.0.1', ['10.0.1.2']);
  t.deepEqual(parseMessage(encode({ kind: 'table', table: good })), { kind: 'table', table: good });
  t.is(parseMessage(new Uint8Array([0xc1, 0xff])), null);
  t.is(parseMessage(encode({ kind: 'table', table: { ...good, host: '10.1.0.1\nlink del eth0' } })), null, 'no second command line can ride in a host');
  const e = good.endpoints[0];
  t.is(parseMessage(encode({ kind: 'table', table: { ...good, endpoints: [{ ...e, ip: '10.0.1.2 ; x' }] } })), null);
  t.is(parseMessage(encode({ kind: 'table', table: { ...good, endpoints: [{ ...e, mac: 'zz' }] } })), null);
  t.is(parseMessage(encode({ kind: 'table', table: { ...good, endpoints: [{ ...e, vip: 'x' }] } })), null);
  t.is(parseMessage(encode({ kind: 'table', table: { ...good, endpoints: [{ ...e, ready: 'yes' }] } })), null);
  t.is(parseMessage(encode({ kind: 'table', table: { ...good, endpoints: [{ ...e, aliases: Array.from({ length: 33 }, () => 'a') }] } })), null, 'bounded aliases');
  t.is(parseMessage(encode({ kind: 'table', table: { ...good, endpoints: [{ ...e, service: 'x'.repeat(256) }] } })), null, 'bounded names');
  t.is(parseMessage(encode({ kind: 'table', table: { ...good, seq: 'x' } })), null);
  t.is(parseMessage(encode({ kind: 'other' })), null);
  t.is(parseMessage(encode(null)), null);
});
