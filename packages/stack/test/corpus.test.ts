// Real-world compose files from public projects (test/fixtures/corpus, sources in SOURCES.md): each loads with the
// services and warnings listed here, or fails with exactly the error listed. A change in what we accept, warn
// about or refuse on files people really write shows up here first.

import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadStackFromSources, stringifyStack, type LoadedStack } from '../src/index.js';

const CORPUS = fileURLToPath(new URL('../../test/fixtures/corpus/', import.meta.url));

const unset = (...names: string[]): string[] => names.map((n) => `The "${n}" variable is not set. Defaulting to a blank string.`);

const CONTAINER_NAME = (services: string): string => `Ignoring deprecated option container_name (${services}): setting the container name is not supported`;
const EXPOSE = (services: string): string => `Ignoring deprecated option expose (${services}): exposing ports is unnecessary: services on the same network can reach each other's containers on any port`;

type Expectation = { services: string[]; warnings: string[]; env?: Record<string, string> } | { error: string; env?: Record<string, string> };

const EXPECTED: Record<string, Expectation> = {
  'airflow.docker-compose.yaml': {
    services: ['postgres', 'redis', 'airflow-apiserver', 'airflow-scheduler', 'airflow-dag-processor', 'airflow-worker', 'airflow-triggerer', 'airflow-init', 'airflow-cli', 'flower'],
    warnings: [
      ...unset('AIRFLOW_UID'),
      'Ignoring unsupported options: depends_on (airflow-apiserver, airflow-scheduler, airflow-dag-processor, airflow-worker, airflow-triggerer, airflow-init, airflow-cli, flower), profiles (airflow-cli, flower), restart (postgres, redis, airflow-apiserver, airflow-scheduler, airflow-dag-processor, airflow-worker, airflow-triggerer, flower)',
      EXPOSE('redis'),
    ],
  },
  'atsea-sample-shop-app.docker-stack.yml': { services: ['database', 'appserver', 'visualizer'], warnings: [] },
  'authentik.docker-compose.yml': {
    error: 'authentik.docker-compose.yml:16:26: services.postgresql.environment.POSTGRES_PASSWORD: required variable PG_PASS is missing a value: database password required',
  },
  'awesome-compose.elasticsearch-logstash-kibana.yaml': {
    services: ['elasticsearch', 'logstash', 'kibana'],
    warnings: ['Ignoring unsupported options: depends_on (logstash, kibana)', CONTAINER_NAME('elasticsearch, logstash, kibana')],
  },
  'awesome-compose.gitea-postgres.yaml': { services: ['gitea', 'db'], warnings: ['Ignoring unsupported options: restart (gitea, db)', EXPOSE('db')] },
  'awesome-compose.minecraft.yaml': { services: ['minecraft'], warnings: [] },
  'awesome-compose.nextcloud-redis-mariadb.yaml': { services: ['nc', 'redis', 'db'], warnings: ['Ignoring unsupported options: restart (nc, redis, db)'] },
  'awesome-compose.nginx-golang-postgres.yaml': {
    services: ['backend', 'db', 'proxy'],
    warnings: ['Ignoring unsupported options: build (backend), depends_on (backend, proxy), restart (db)', EXPOSE('db')],
  },
  'awesome-compose.pihole-cloudflared-doh.yaml': {
    services: ['cloudflared', 'pihole'],
    warnings: [
      ...unset('TIMEZONE', 'PIHOLE_PW', 'PIHOLE_ROUTER_IP', 'PIHOLE_NETWORK_DOMAIN', 'PIHOLE_REVERSE_DNS', 'PIHOLE_HOST_IP', 'PIHOLE_HOST_IPV6'),
      'Ignoring unsupported options: depends_on (pihole), restart (cloudflared, pihole)',
      CONTAINER_NAME('cloudflared, pihole'),
    ],
  },
  'awesome-compose.plex.yaml': {
    // PLEX_MEDIA_PATH unset leaves ":/media/", which Docker's loader refuses too.
    error: 'awesome-compose.plex.yaml:10:9: services.plex.volumes[0]: invalid volume spec ":/media/": empty section between colons',
  },
  'awesome-compose.react-express-mysql.yaml': {
    services: ['backend', 'db', 'frontend'],
    warnings: ['Ignoring unsupported options: build (backend, frontend), depends_on (backend, frontend), restart (db)'],
  },
  'awesome-compose.react-java-mysql.yaml': {
    services: ['backend', 'db', 'frontend'],
    warnings: ['Ignoring unsupported options: build (backend, frontend), depends_on (backend, frontend), restart (backend, db)', EXPOSE('db')],
  },
  'awesome-compose.wireguard.yaml': {
    services: ['wireguard'],
    warnings: [...unset('TIMEZONE', 'VPN_SERVER_URL'), 'Ignoring unsupported options: restart (wireguard)', CONTAINER_NAME('wireguard')],
  },
  'awesome-compose.prometheus-grafana.yaml': {
    services: ['prometheus', 'grafana'],
    warnings: ['Ignoring unsupported options: restart (prometheus, grafana)', CONTAINER_NAME('prometheus, grafana')],
  },
  'awesome-compose.react-express-mongodb.yaml': {
    services: ['frontend', 'Backend', 'db'],
    warnings: ['Ignoring unsupported options: build (frontend, Backend), depends_on (frontend, Backend), restart (frontend, Backend, db)'],
  },
  'docker-elk.docker-compose.yml': {
    services: ['elasticsearch', 'logstash', 'kibana'],
    warnings: [...unset('ELK_VERSION'), 'Ignoring unsupported options: build (elasticsearch, logstash, kibana), depends_on (logstash, kibana)'],
  },
  'dockerswarm-rocks.traefik-host.yml': {
    error: 'dockerswarm-rocks.traefik-host.yml:17:11: services.consul-leader.deploy.labels[0]: required variable DOMAIN is missing a value: Variable DOMAIN not set',
  },
  'example-voting-app.docker-stack.yml': {
    services: ['redis', 'db', 'vote', 'result', 'worker', 'visualizer'],
    warnings: ['Ignoring unsupported options: depends_on (vote, result)'],
  },
  'superset.docker-compose-non-dev.yml': {
    services: ['redis', 'db', 'superset', 'superset-init', 'superset-worker', 'superset-worker-beat'],
    warnings: [
      'Ignoring unsupported options: build (superset, superset-init, superset-worker, superset-worker-beat), depends_on (superset, superset-init, superset-worker, superset-worker-beat), restart (redis, db, superset, superset-worker, superset-worker-beat)',
      CONTAINER_NAME('redis, db, superset, superset-init, superset-worker, superset-worker-beat'),
    ],
  },
  'swarmprom.docker-compose.yml': {
    services: ['dockerd-exporter', 'cadvisor', 'grafana', 'alertmanager', 'node-exporter', 'prometheus', 'caddy'],
    warnings: unset('SLACK_URL', 'SLACK_CHANNEL', 'SLACK_USER'),
  },
};

const load = (file: string, env: Record<string, string> = {}): LoadedStack =>
  loadStackFromSources([{ name: file, text: readFileSync(`${CORPUS}${file}`, 'utf8') }], env, { workingDir: '/project' });

test('every corpus file has an expectation, and every expectation a file', (t) => {
  const files = readdirSync(CORPUS).filter((f) => /\.ya?ml$/.test(f)).sort();
  t.deepEqual(files, Object.keys(EXPECTED).sort());
  t.true(files.length >= 15);
});

for (const [file, expected] of Object.entries(EXPECTED)) {
  test(`corpus: ${file}`, (t) => {
    if ('error' in expected) {
      t.throws(() => load(file, expected.env), { message: expected.error });
      return;
    }
    const { model, warnings } = load(file, expected.env);
    t.deepEqual(Object.keys(model.services), expected.services);
    t.deepEqual(warnings, expected.warnings);
    // What stack config prints loads back to the same model (already interpolated: $ is no longer escaped).
    t.deepEqual(loadStackFromSources([{ name: 'again.yml', text: stringifyStack(model) }], {}, { workingDir: '/project', skipInterpolation: true }).model, model);
  });
}

test('corpus files that need variables load once they are given', (t) => {
  const authentik = load('authentik.docker-compose.yml', { PG_PASS: 'pw', AUTHENTIK_SECRET_KEY: 'k' });
  t.like(authentik.model.services['server'], { image: 'ghcr.io/goauthentik/server:2025.2.4', ports: ['9000:9000', '9443:9443'], env_file: ['/project/.env'] });
  t.like(authentik.model.services['postgresql'], { healthcheck: { test: ['CMD-SHELL', 'pg_isready -d ${POSTGRES_DB} -U ${POSTGRES_USER}'] } });
  const traefik = load('dockerswarm-rocks.traefik-host.yml', { DOMAIN: 'example.com', USERNAME: 'admin', HASHED_PASSWORD: 'x', EMAIL: 'a@example.com' });
  t.like(traefik.model.services['consul-replica'], { deploy: { replicas: 3 } });
  t.like(traefik.model.services['traefik'], { ports: [{ target: 80, published: 80, mode: 'host' }, { target: 443, published: 443, mode: 'host' }] });
  t.deepEqual(traefik.model.networks, { 'traefik-public': { external: true } });
});

test('corpus: plex loads once its media path is given', (t) => {
  const plex = load('awesome-compose.plex.yaml', { PLEX_MEDIA_PATH: '/srv/media' });
  t.deepEqual(plex.model.services['plex']?.['volumes'], ['/srv/media:/media/']);
  t.deepEqual(plex.warnings, ['Ignoring unsupported options: network_mode (plex), restart (plex)', CONTAINER_NAME('plex')]);
});

test('corpus: YAML anchors and merge keys resolve as the files mean them (airflow, superset)', (t) => {
  const airflow = load('airflow.docker-compose.yaml').model.services;
  t.like(airflow['airflow-worker'], { image: 'apache/airflow:|version|', user: '50000:0', command: 'celery worker', environment: { AIRFLOW__CORE__EXECUTOR: 'CeleryExecutor', DUMB_INIT_SETSID: '0' } });
  t.deepEqual(Object.keys((airflow['airflow-worker']?.['depends_on'] ?? {}) as object), ['redis', 'postgres', 'airflow-apiserver', 'airflow-init']);
  t.false(Object.keys(load('airflow.docker-compose.yaml').model).includes('x-airflow-common'));
  const superset = load('superset.docker-compose-non-dev.yml').model.services;
  t.deepEqual(superset['superset']?.['volumes'], ['/project/docker:/app/docker', 'superset_home:/app/superset_home']);
  t.deepEqual(superset['superset']?.['build'], { context: '.', target: 'dev', cache_from: ['apache/superset-cache:3.10-slim-bookworm'] });
});

test('corpus: swarm stack files keep Go templates and $$ escapes as Docker does', (t) => {
  const swarmprom = load('swarmprom.docker-compose.yml').model;
  t.deepEqual(swarmprom.services['node-exporter']?.['environment'], ['NODE_ID={{.Node.ID}}']);
  t.true((swarmprom.services['node-exporter']?.['command'] as string[]).includes('-collector.filesystem.ignored-mount-points=^/(sys|proc|dev|host|etc)($|/)'));
  t.deepEqual(swarmprom.configs?.['caddy_config'], { file: '/project/caddy/Caddyfile' });
});
