// The real-world compose files of the loader's corpus (test/fixtures/corpus), loaded and then converted: each one
// that loads converts, or fails with a StackError naming a key; the swarm stack files convert as Docker would.

import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { convertStack, loadStackFromSources, StackError, type ConvertedStack } from '../src/index.js';

const CORPUS = fileURLToPath(new URL('../../test/fixtures/corpus/', import.meta.url));

/** Every variable a corpus file asks for, given a plausible value, so that each file loads. */
const ENV: Record<string, string> = { PG_PASS: 'pw', AUTHENTIK_SECRET_KEY: 'k', DOMAIN: 'example.com', USERNAME: 'admin', HASHED_PASSWORD: 'x', EMAIL: 'a@example.com', PLEX_MEDIA_PATH: '/srv/media' };

function convert(file: string): ConvertedStack {
  const { model } = loadStackFromSources([{ name: file, text: readFileSync(`${CORPUS}${file}`, 'utf8') }], ENV, { workingDir: '/project' });
  return convertStack('corpus', model, { workingDir: '/project', readFile: () => Buffer.from('KEY=value\n'), environment: ENV });
}

/** The corpus files a swarm cannot run, and the key the converter names (Docker's stack deploy fails on them too). */
const REFUSED: Record<string, string> = {
  'awesome-compose.elasticsearch-logstash-kibana.yaml': 'networks.elastic.driver',
  'awesome-compose.nginx-golang-postgres.yaml': 'services.backend.image',
  'awesome-compose.prometheus-grafana.yaml': 'services.prometheus.volumes',
  'awesome-compose.react-express-mongodb.yaml': 'services.Backend.image',
  'awesome-compose.react-express-mysql.yaml': 'services.backend.image',
  'awesome-compose.react-java-mysql.yaml': 'services.backend.image',
  'docker-elk.docker-compose.yml': 'services.elasticsearch.image',
  'superset.docker-compose-non-dev.yml': 'services.superset.image',
};

for (const file of readdirSync(CORPUS).filter((f) => /\.ya?ml$/.test(f)).sort()) {
  const refused = REFUSED[file];
  test(`corpus: ${file} ${refused === undefined ? 'converts' : `is refused at ${refused}`}`, (t) => {
    if (refused !== undefined) {
      const err = t.throws(() => convert(file), { instanceOf: StackError });
      t.is(err?.path, refused, err?.message);
      t.regex(err?.message ?? '', /^[^\n]+$/);
      return;
    }
    const stack = convert(file);
    t.true(stack.services.length > 0);
    for (const s of stack.services) t.true(s.name.startsWith('corpus_'));
  });
}

test('the example voting app stack converts as docker stack deploy does', (t) => {
  const stack = convert('example-voting-app.docker-stack.yml');
  const by = new Map(stack.services.map((s) => [s.name, s]));
  t.deepEqual([...by.keys()], ['corpus_db', 'corpus_redis', 'corpus_result', 'corpus_visualizer', 'corpus_vote', 'corpus_worker']);
  t.deepEqual(by.get('corpus_redis')?.endpointSpec.ports, [{ name: '', protocol: 'tcp', targetPort: 6379, publishedPort: 0, publishMode: 'ingress' }]);
  t.deepEqual(by.get('corpus_redis')?.updateConfig, { parallelism: 2, delayMs: 10_000, failureAction: 'pause', monitorMs: 5_000, maxFailureRatio: 0, order: 'stop-first' });
  t.deepEqual(by.get('corpus_db')?.taskTemplate.placement.constraints, ['node.role == manager']);
  t.deepEqual(by.get('corpus_db')?.taskTemplate.containerSpec.mounts, [{ type: 'volume', source: 'corpus_db-data', target: '/var/lib/postgresql/data', readOnly: false, tmpfsSizeBytes: 0 }]);
  t.deepEqual(by.get('corpus_worker')?.taskTemplate.restartPolicy, { condition: 'on-failure', delayMs: 10_000, maxAttempts: 3, windowMs: 120_000 });
  t.is(by.get('corpus_worker')?.labels['APP'], 'VOTING');
  t.deepEqual(by.get('corpus_worker')?.taskTemplate.networks, [
    { target: 'corpus_backend', aliases: ['worker'] },
    { target: 'corpus_frontend', aliases: ['worker'] },
  ]);
  t.is(by.get('corpus_visualizer')?.taskTemplate.containerSpec.stopGracePeriodMs, 90_000);
  t.deepEqual(by.get('corpus_visualizer')?.taskTemplate.networks, [{ target: 'corpus_default', aliases: ['visualizer'] }]);
  t.deepEqual(stack.networks.map((n) => n.name), ['corpus_backend', 'corpus_default', 'corpus_frontend']);
});
