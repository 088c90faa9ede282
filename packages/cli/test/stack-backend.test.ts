// The CLI's stack backend sends the store's spec as Docker's document and reads it back: every key a compose file
// can set must survive that round trip, or a redeploy of an unchanged file would update the service.

import test from 'ava';
import { specDocument, toServiceSpec } from '@swarm/api/client';
import { convertStack, sameSpec, specDifferences, type ComposeModel } from '@swarm/stack';

const everything: ComposeModel = {
  services: {
    web: {
      image: 'registry.local:5000/web:1.2',
      entrypoint: ['/entry.sh'],
      command: 'serve --port 80',
      environment: { A: '1', B: 'two words' },
      labels: { role: 'web' },
      hostname: 'web',
      user: '1000',
      working_dir: '/srv',
      stop_grace_period: '1m30s',
      stop_signal: 'SIGQUIT',
      init: true,
      read_only: true,
      cap_add: ['NET_ADMIN'],
      cap_drop: ['MKNOD'],
      tmpfs: ['/run:size=1m'],
      ulimits: { nproc: 65535, nofile: { soft: 20000, hard: 40000 }, core: -1 },
      healthcheck: { test: ['CMD', 'true'], interval: '10s', timeout: '2s', retries: 3, start_period: '1s' },
      ports: ['8080:80', { target: 443, published: 8443, mode: 'host', protocol: 'tcp' }, '53/udp'],
      networks: { front: { aliases: ['www'] } },
      volumes: ['data:/data:ro', '/etc/hosts:/etc/hosts'],
      secrets: ['pw', { source: 'key', target: '/etc/key', uid: '100', gid: '101', mode: 0o400 }],
      configs: [{ source: 'conf', target: '/etc/app.conf', mode: '0440' }],
      deploy: {
        replicas: 3,
        labels: { tier: 'front' },
        placement: { constraints: ['node.role==worker'], preferences: [{ spread: 'node.labels.zone' }], max_replicas_per_node: 2 },
        resources: { limits: { cpus: '0.5', memory: '256M', pids: 64 }, reservations: { cpus: '0.1', memory: '32M' } },
        restart_policy: { condition: 'on-failure', delay: '3s', max_attempts: 5, window: '1m' },
        update_config: { parallelism: 2, delay: '5s', failure_action: 'rollback', monitor: '20s', max_failure_ratio: 0.25, order: 'start-first' },
        rollback_config: { parallelism: 0, failure_action: 'continue' },
      },
    },
    agent: { image: 'agent', deploy: { mode: 'global', endpoint_mode: 'dnsrr' } },
  },
  networks: { front: {} },
  volumes: { data: {} },
  secrets: { pw: { file: 'pw.txt' }, key: { external: true } },
  configs: { conf: { content: 'x=1' } },
};

const readFile = (): Uint8Array => Buffer.from('data');

test('every converted key survives the trip through Docker\'s document and back', (t) => {
  const stack = convertStack('shop', everything, { workingDir: '/', readFile });
  const web = stack.services.find((s) => s.name === 'shop_web');
  t.is(web?.taskTemplate.containerSpec.secrets.length, 2);
  t.is(web?.taskTemplate.containerSpec.configs.length, 1);
  t.is(web?.taskTemplate.containerSpec.ulimits?.length, 3);
  for (const spec of stack.services) {
    const doc = JSON.parse(JSON.stringify(specDocument(spec))) as ReturnType<typeof specDocument>;
    const back = toServiceSpec(doc, spec.name);
    t.deepEqual(specDifferences(back, spec), [], spec.name);
    t.true(sameSpec(back, spec), spec.name);
  }
});

test('the diff sees a change in any one key', (t) => {
  const stack = convertStack('shop', everything, { workingDir: '/', readFile });
  const web = stack.services.find((s) => s.name === 'shop_web');
  if (web === undefined) return t.fail('no web');
  const changed = structuredClone(web);
  changed.taskTemplate.resources.limits.memoryBytes += 1;
  t.false(sameSpec(web, changed));
  t.deepEqual(specDifferences(web, changed), ['taskTemplate.resources.limits.memoryBytes']);
});
