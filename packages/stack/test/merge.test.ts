// Several -c files merged in order with docker/cli's rules: each test is one rule, checked through the loader so
// the files are validated on their own first, as Docker does.

import test from 'ava';
import { loadStackFromSources, mergeComposeFiles } from '../src/index.js';

/** A last file declares every network, volume, secret and config the tests' services name. */
const DECLARATIONS = 'networks: {front: {}, back: {}, extra: {}}\nvolumes: {data: {}, other: {}, cache: {}}\nsecrets: {a: {external: true}, b: {external: true}}\nconfigs: {c: {external: true}, d: {external: true}}\n';

function merged(...texts: string[]): Record<string, Record<string, unknown>> {
  const { model } = loadStackFromSources(
    [...texts, DECLARATIONS].map((text, i) => ({ name: `f${i}.yml`, text })),
    {},
    { workingDir: '/p' },
  );
  return model.services;
}

test('services merge by name; scalars of the later file win; new services are added', (t) => {
  const s = merged('services:\n  web:\n    image: a:1\n    hostname: h\n', 'services:\n  web:\n    image: a:2\n  db:\n    image: pg\n');
  t.deepEqual(s, { web: { image: 'a:2', hostname: 'h' }, db: { image: 'pg' } });
});

test('mappings merge recursively (deploy)', (t) => {
  const s = merged(
    'services:\n  web:\n    image: a\n    deploy:\n      replicas: 2\n      update_config: {parallelism: 1, delay: 10s}\n',
    'services:\n  web:\n    deploy:\n      update_config: {delay: 5s}\n      placement: {constraints: [node.role==worker]}\n',
  );
  t.deepEqual(s['web']?.['deploy'], { replicas: 2, update_config: { parallelism: 1, delay: '5s' }, placement: { constraints: ['node.role==worker'] } });
});

test('command and entrypoint are replaced, not appended', (t) => {
  const s = merged('services:\n  web:\n    image: a\n    command: [a, b]\n    entrypoint: /x\n', 'services:\n  web:\n    command: [c]\n    entrypoint: [/y, -z]\n');
  t.deepEqual(s['web'], { image: 'a', command: ['c'], entrypoint: ['/y', '-z'] });
});

test('environment and labels merge by name whether written as a list or a mapping', (t) => {
  const s = merged(
    'services:\n  web:\n    image: a\n    environment: [A=1, B=2, C]\n    labels: {x: "1"}\n    deploy:\n      labels: [d=1]\n',
    'services:\n  web:\n    environment: {B: "3", D: "4"}\n    labels: [y=2]\n    deploy:\n      labels: {d: "2", e: "3"}\n',
  );
  t.deepEqual(s['web']?.['environment'], { A: '1', B: '3', C: null, D: '4' });
  t.deepEqual(s['web']?.['labels'], { x: '1', y: '2' });
  t.deepEqual(s['web']?.['deploy'], { labels: { d: '2', e: '3' } });
});

test('ports merge by the whole mapping (short and long syntax alike) and are ordered by published port', (t) => {
  const s = merged(
    'services:\n  web:\n    image: a\n    ports: ["8080:80", "9090:90"]\n',
    'services:\n  web:\n    ports:\n      - {target: 80, published: 8080}\n      - "7070:70/udp"\n',
  );
  t.deepEqual(s['web']?.['ports'], ['7070:70/udp', { target: 80, published: 8080 }, '9090:90']);
});

test('volumes merge by target: a later mount on the same path replaces the earlier one', (t) => {
  const s = merged(
    'services:\n  web:\n    image: a\n    volumes: ["data:/data", "/host/logs:/logs:ro"]\n',
    'services:\n  web:\n    volumes:\n      - type: volume\n        source: other\n        target: /data\n      - cache:/cache\n',
  );
  t.deepEqual(s['web']?.['volumes'], ['cache:/cache', { type: 'volume', source: 'other', target: '/data' }, '/host/logs:/logs:ro']);
});

test('secrets and configs merge by source', (t) => {
  const s = merged(
    'services:\n  web:\n    image: a\n    secrets: [b, a]\n    configs: [c]\n',
    'services:\n  web:\n    secrets:\n      - source: a\n        target: /run/a\n    configs: [d]\n',
  );
  t.deepEqual(s['web']?.['secrets'], [{ source: 'a', target: '/run/a' }, 'b']);
  t.deepEqual(s['web']?.['configs'], ['c', 'd']);
});

test('service networks merge by name: lists union, a mapping entry merges its settings and replaces aliases', (t) => {
  t.deepEqual(merged('services:\n  web:\n    image: a\n    networks: [front]\n', 'services:\n  web:\n    networks: [back, front]\n')['web']?.['networks'], ['front', 'back']);
  const s = merged(
    'services:\n  web:\n    image: a\n    networks:\n      front:\n        aliases: [w1]\n      back:\n',
    'services:\n  web:\n    networks:\n      front:\n        aliases: [w2]\n      extra:\n',
  );
  t.deepEqual(s['web']?.['networks'], { front: { aliases: ['w2'] }, back: null, extra: null });
  const mixed = merged('services:\n  web:\n    image: a\n    networks: [front]\n', 'services:\n  web:\n    networks:\n      back:\n        aliases: [b]\n');
  t.deepEqual(mixed['web']?.['networks'], { front: null, back: { aliases: ['b'] } });
});

test('other lists are appended without duplicates (dns, cap_add, extra_hosts)', (t) => {
  const s = merged('services:\n  web:\n    image: a\n    cap_add: [NET_ADMIN]\n    dns: 1.1.1.1\n', 'services:\n  web:\n    cap_add: [NET_ADMIN, SYS_TIME]\n    dns: [8.8.8.8]\n');
  t.deepEqual(s['web']?.['cap_add'], ['NET_ADMIN', 'SYS_TIME']);
  t.deepEqual(s['web']?.['dns'], ['1.1.1.1', '8.8.8.8']);
});

test('logging: the same driver merges options, another driver replaces the whole logging', (t) => {
  const same = merged('services:\n  web:\n    image: a\n    logging: {driver: json-file, options: {max-size: 10m}}\n', 'services:\n  web:\n    logging: {options: {max-file: "3"}}\n');
  t.deepEqual(same['web']?.['logging'], { driver: 'json-file', options: { 'max-size': '10m', 'max-file': '3' } });
  const other = merged('services:\n  web:\n    image: a\n    logging: {driver: json-file, options: {max-size: 10m}}\n', 'services:\n  web:\n    logging: {driver: syslog}\n');
  t.deepEqual(other['web']?.['logging'], { driver: 'syslog' });
});

test('ulimits: each limit in a later file replaces that limit whole', (t) => {
  const s = merged('services:\n  web:\n    image: a\n    ulimits: {nproc: 100, nofile: {soft: 1, hard: 2}}\n', 'services:\n  web:\n    ulimits: {nofile: {soft: 3, hard: 4}}\n');
  t.deepEqual(s['web']?.['ulimits'], { nproc: 100, nofile: { soft: 3, hard: 4 } });
});

test('top-level networks, volumes, secrets and configs: a later definition replaces the one with its name', (t) => {
  const { model } = loadStackFromSources(
    [
      { name: 'a.yml', text: 'services: {}\nnetworks:\n  front: {driver: overlay, attachable: true}\n  back: {}\nvolumes:\n  data: {driver: local}\n' },
      { name: 'b.yml', text: 'networks:\n  front: {driver: overlay}\nvolumes:\n  logs: {}\n' },
    ],
    {},
    { workingDir: '/p' },
  );
  t.deepEqual(model.networks, { front: { driver: 'overlay' }, back: {} });
  t.deepEqual(model.volumes, { data: { driver: 'local' }, logs: {} });
});

test('merging leaves its inputs unchanged', (t) => {
  const base = { services: { web: { image: 'a', environment: ['A=1'] } } };
  const over = { services: { web: { environment: { B: '2' } } } };
  const snapshot = JSON.stringify([base, over]);
  const out = mergeComposeFiles(base, over);
  t.deepEqual(out, { services: { web: { image: 'a', environment: { A: '1', B: '2' } } } });
  t.is(JSON.stringify([base, over]), snapshot);
});
