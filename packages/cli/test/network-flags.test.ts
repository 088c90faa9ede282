// `network create|ls` flag handling without a daemon: Docker's flags to a NetworkCreateRequest (what swarm refuses
// is refused before any request, naming the flag), ls rows and filters.

import test from 'ava';
import type { NetworkDocument } from '@swarm/api/client';
import { networkFilter, networkRequestFromFlags, networkRow, type NetworkCreateFlags } from '../src/network-commands.js';

const none: NetworkCreateFlags = { driver: 'overlay', subnet: [], gateway: [], ipRange: [], opt: [], label: [] };

function doc(name: string, id: string, labels: Record<string, string> = {}): NetworkDocument {
  return {
    Name: name,
    Id: id,
    Created: '2024-01-01T00:00:00.000Z',
    Scope: 'swarm',
    Driver: 'overlay',
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: [] },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: {},
    Options: {},
    Labels: labels,
    Peers: [],
  };
}

test('create: flags become the request; no subnet leaves IPAM out (the pool gives one); options and labels as key=value', (t) => {
  t.deepEqual(networkRequestFromFlags('web', none), { Name: 'web', Driver: 'overlay' });
  t.deepEqual(
    networkRequestFromFlags('web', { ...none, subnet: ['10.9.0.0/24'], gateway: ['10.9.0.254'], attachable: true, internal: true, opt: ['encrypted', 'k=v'], label: ['tier=db'] }),
    {
      Name: 'web',
      Driver: 'overlay',
      IPAM: { Driver: 'default', Config: [{ Subnet: '10.9.0.0/24', Gateway: '10.9.0.254' }] },
      Attachable: true,
      Internal: true,
      Options: { encrypted: '', k: 'v' },
      Labels: { tier: 'db' },
    },
  );
  t.true(networkRequestFromFlags('mesh', { ...none, ingress: true }).Ingress);
});

test('create: other drivers, --ip-range, two subnets and a gateway without a subnet are refused naming the flag', (t) => {
  t.throws(() => networkRequestFromFlags('web', { ...none, driver: 'bridge' }), { message: /^invalid --driver "bridge": swarm makes overlay networks only/ });
  t.throws(() => networkRequestFromFlags('web', { ...none, driver: 'host' }), { message: /^invalid --driver "host"/ });
  t.throws(() => networkRequestFromFlags('web', { ...none, subnet: ['10.9.0.0/24'], ipRange: ['10.9.0.0/25'] }), { message: /^--ip-range is not supported/ });
  t.throws(() => networkRequestFromFlags('web', { ...none, subnet: ['10.9.0.0/24', '10.8.0.0/24'] }), { message: 'a swarm network takes one --subnet' });
  t.throws(() => networkRequestFromFlags('web', { ...none, gateway: ['10.9.0.1'] }), { message: '--gateway needs the --subnet it is in' });
  t.throws(() => networkRequestFromFlags('web', { ...none, opt: ['=x'] }), { message: 'invalid --opt "=x": use key=value' });
});

test('ls: 12-character ids unless --no-trunc; filters by name substring, id prefix, driver and label, keys all holding', (t) => {
  const id = 'abcdef0123456789abcdefghi';
  t.is(networkRow(doc('web', id)).ID, 'abcdef012345');
  t.is(networkRow(doc('web', id), true).ID, id);
  t.is(networkRow(doc('web', id, { a: '1', b: '' })).Labels, 'a=1,b=');
  const all = [doc('web-front', 'aaa1'), doc('web-back', 'bbb2', { tier: 'db' }), doc('ingress', 'ccc3')];
  const names = (filters: string[]): string[] => all.filter(networkFilter(filters)).map((n) => n.Name);
  t.deepEqual(names([]), ['web-front', 'web-back', 'ingress']);
  t.deepEqual(names(['name=web']), ['web-front', 'web-back']);
  t.deepEqual(names(['name=front', 'name=ingress']), ['web-front', 'ingress']);
  t.deepEqual(names(['name=web', 'label=tier']), ['web-back']);
  t.deepEqual(names(['label=tier=db']), ['web-back']);
  t.deepEqual(names(['label=tier=web']), []);
  t.deepEqual(names(['id=ccc']), ['ingress']);
  t.deepEqual(names(['driver=bridge']), []);
  t.throws(() => networkFilter(['color=red']), { message: /^invalid filter "color=red"/ });
});
