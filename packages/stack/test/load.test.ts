// The loader end to end on small texts and files: YAML anchors and merge keys, interpolation with .env, x- fields,
// Docker's casts, paths, and every error naming file:line:column, the key path and what was expected.

import test from 'ava';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadStack, loadStackFromSources, stringifyStack, StackError, type LoadedStack } from '../src/index.js';

const load = (text: string, env: Record<string, string> = {}, extra: Parameters<typeof loadStackFromSources>[2] = {}): LoadedStack =>
  loadStackFromSources([{ name: 'stack.yml', text }], env, { workingDir: '/project', ...extra });

function fails(t: import('ava').ExecutionContext, text: string, message: string, code?: StackError['code'], env: Record<string, string> = {}): StackError {
  const err = t.throws(() => load(text, env), { instanceOf: StackError });
  t.is(err?.message, message);
  if (code !== undefined) t.is(err?.code, code);
  return err as StackError;
}

test('a minimal v3 file loads; version is kept and accepted without a warning', (t) => {
  const { model, warnings } = load('version: "3.8"\nservices:\n  web:\n    image: nginx:1.25\n');
  t.deepEqual(model, { version: '3.8', services: { web: { image: 'nginx:1.25' } } } as unknown as typeof model);
  t.deepEqual(warnings, []);
});

test('an unquoted version number is taken as the string it means', (t) => {
  t.is((load('version: 3.8\nservices: {}\n').model as unknown as Record<string, unknown>)['version'], '3.8');
});

test('anchors, aliases and merge keys: explicit keys win over merged ones, earlier merge sources over later', (t) => {
  const { model } = load(`
x-common: &common
  image: base:1
  environment: &env
    LEVEL: info
  labels: [a=1]
x-more: &more
  image: more:1
  hostname: from-more
services:
  web:
    <<: [*common, *more]
    image: web:2
  worker:
    <<: *common
    environment: *env
`);
  const services = model.services;
  t.deepEqual(services['web'], { image: 'web:2', environment: { LEVEL: 'info' }, labels: ['a=1'], hostname: 'from-more' });
  t.deepEqual(services['worker'], { image: 'base:1', environment: { LEVEL: 'info' }, labels: ['a=1'] });
  t.false(Object.keys(model).some((k) => k.startsWith('x-')), 'top-level x- fields are removed for the converter');
});

test('x- fields are removed where the schema allows them but kept as data in labels and environment; keepExtensions keeps them', (t) => {
  const text = 'x-top: 1\nservices:\n  web:\n    image: a\n    x-svc: 2\n    labels:\n      x-label: kept\n    deploy:\n      x-deploy: 3\n      replicas: 2\n';
  t.deepEqual(load(text).model.services['web'], { image: 'a', labels: { 'x-label': 'kept' }, deploy: { replicas: 2 } });
  const kept = load(text, {}, { keepExtensions: true }).model as unknown as Record<string, unknown>;
  t.is(kept['x-top'], 1);
  t.like(kept['services'], { web: { 'x-svc': 2, deploy: { 'x-deploy': 3 } } });
});

test('interpolation applies to values, not keys, with the environment over .env and $$ as a literal $', (t) => {
  const { model, warnings } = load(
    'services:\n  web:\n    image: "${IMAGE}:${TAG:-latest}"\n    environment:\n      $KEY: "$$HOME is ${HOME_DIR}"\n    command: ["echo", "${GREETING}"]\n',
    { IMAGE: 'nginx', HOME_DIR: '/root' },
    { dotEnv: { name: '/project/.env', text: 'IMAGE=from-dotenv\nTAG=1.25 # a comment\nGREETING="hello world"\n' } },
  );
  t.deepEqual(model.services['web'], { image: 'nginx:1.25', environment: { $KEY: '$HOME is /root' }, command: ['echo', 'hello world'] });
  t.deepEqual(warnings, []);
});

test('an unset variable without a default becomes "" with Docker\'s warning, once per variable', (t) => {
  const { model, warnings } = load('services:\n  web:\n    image: "nginx${SUFFIX}"\n    hostname: "${SUFFIX}"\n');
  t.is(model.services['web']?.['image'], 'nginx');
  t.deepEqual(warnings, ['The "SUFFIX" variable is not set. Defaulting to a blank string.']);
});

test('${VAR:?msg} names file:line:column, the key and the variable', (t) => {
  const err = fails(t, 'services:\n  web:\n    image: ${IMAGE:?set IMAGE to the image to run}\n', 'stack.yml:3:12: services.web.image: required variable IMAGE is missing a value: set IMAGE to the image to run', 'interpolation');
  t.deepEqual(err.position, { file: 'stack.yml', line: 3, column: 12 });
  t.is(err.path, 'services.web.image');
});

test('a lone $ is an interpolation error naming where it is', (t) => {
  fails(t, 'services:\n  web:\n    image: a\n    command: sh -c "echo $1"\n', 'stack.yml:4:14: services.web.command: invalid interpolation format in "sh -c \\"echo $1\\"": you may need to escape any $ with another $');
});

test('--skip-interpolation leaves $VAR as written', (t) => {
  const { model } = load('services:\n  web:\n    image: ${IMAGE}\n', {}, { skipInterpolation: true });
  t.is(model.services['web']?.['image'], '${IMAGE}');
});

test("Docker's casts after interpolation: replicas, ports, booleans and octal modes", (t) => {
  const { model } = load(
    'services:\n  web:\n    image: a\n    read_only: "${RO}"\n    deploy:\n      replicas: ${N}\n    ports:\n      - target: ${T}\n        published: "8000"\n    secrets:\n      - source: s\n        mode: "0440"\n      - source: t\n        mode: 0400\nsecrets:\n  s:\n    external: true\n  t:\n    external: "${EXT}"\n',
    { N: '3', T: '80', RO: 'true', EXT: 'yes' },
  );
  t.like(model.services['web'], { read_only: true, deploy: { replicas: 3 }, ports: [{ target: 80, published: 8000 }] });
  t.deepEqual(model.services['web']?.['secrets'], [{ source: 's', mode: 0o440 }, { source: 't', mode: 0o400 }]);
  t.deepEqual(model.secrets?.['t'], { external: true });
  fails(t, 'services:\n  web:\n    image: a\n    deploy:\n      replicas: ${N}\n', 'stack.yml:5:17: services.web.deploy.replicas: must be an integer, not "three"', 'invalid', { N: 'three' });
});

test('schema errors name file:line:column, the key path and what was expected', (t) => {
  fails(t, 'services:\n  web:\n    image: a\n    ports:\n      - target: 80\n        published: true\n', 'stack.yml:6:20: services.web.ports[0].published: must be a string or an integer', 'invalid');
  fails(t, 'services:\n  web:\n    image: a\n    foo: bar\n', "stack.yml:4:5: services.web: additional property 'foo' is not allowed");
  fails(t, 'services:\n  web:\n    image: a\n    deploy:\n      replicas: 2\n      replica: 3\n', "stack.yml:6:7: services.web.deploy: additional property 'replica' is not allowed");
  fails(t, 'services:\n  web:\n    image: a\n    environment: "A=1"\n', 'stack.yml:4:18: services.web.environment: must be a mapping or a list');
  fails(t, 'services:\n  web:\n    image: a\n    volumes:\n      - source: data\n        target: /data\n', "stack.yml:5:9: services.web.volumes[0]: missing required property 'type'");
  fails(t, 'services:\n  web:\n    image: a\n    deploy:\n      update_config:\n        order: sideways\n', 'stack.yml:6:16: services.web.deploy.update_config.order: must be one of "start-first", "stop-first"');
  fails(t, 'services:\n  web:\n    image: [a]\n', 'stack.yml:3:12: services.web.image: must be a string');
  fails(t, 'services:\n  "my web":\n    image: a\n', "stack.yml:2:3: services: the name 'my web' is not allowed: use letters, digits, '.', '_' and '-'");
  fails(t, 'servces:\n  web:\n    image: a\n', "stack.yml:1:1: additional property 'servces' is not allowed");
  fails(t, 'services:\n  web:\n    image: a\n    cap_add: [NET_ADMIN, NET_ADMIN]\n', 'stack.yml:4:14: services.web.cap_add: must not have duplicate items (items 0 and 1 are the same)');
});

test('an error inside a value reached through an alias points at the alias', (t) => {
  fails(t, 'x-bad: &bad\n  image: a\n  nope: 1\nservices:\n  web: *bad\n', "stack.yml:3:3: services.web: additional property 'nope' is not allowed");
});

test('YAML errors: duplicate keys, syntax, several documents, a non-mapping top level, an empty file', (t) => {
  fails(t, 'services:\n  web:\n    image: a\n    image: b\n', 'stack.yml:4:5: duplicate key: a mapping key must be unique', 'parse');
  fails(t, 'services:\n  web:\n    image: a\n    labels:\n      1: a\n      "1": b\n', 'stack.yml:6:7: duplicate key: a mapping key must be unique', 'parse');
  const syntax = t.throws(() => load('services:\n  web:\n    image: "unterminated\n'), { instanceOf: StackError });
  t.regex(syntax?.message ?? '', /^stack\.yml:\d+:\d+: /);
  fails(t, 'services: {}\n---\nservices: {}\n', 'stack.yml:2:1: a compose file holds one YAML document (found a second one after ---)');
  fails(t, '- a\n- b\n', 'stack.yml:1:1: the top level of a compose file must be a mapping (services:, networks:, …)');
  fails(t, '# nothing\n', 'stack.yml: empty compose file: it needs at least a services: mapping');
  fails(t, 'a: &a [*a]\n', 'stack.yml:1:8: alias *a refers to a value that contains it');
  fails(t, 'services:\n  ? [a, b]\n  : {}\n', 'stack.yml:2:5: services: a mapping key must be a plain string');
});

test('many aliases of aliases stop at a bound instead of exhausting memory', (t) => {
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 9; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
  const err = t.throws(() => load(`${lines.join('\n')}\nservices: {}\n`), { instanceOf: StackError });
  t.regex(err?.message ?? '', /expands to more than 1000000 values/);
});

test('deep nesting is refused with a StackError, never a stack overflow', (t) => {
  for (const depth of [250, 1800, 5000]) {
    const flow = t.throws(() => load(`x-a: ${'['.repeat(depth)}${']'.repeat(depth)}\n`), { instanceOf: StackError });
    t.regex(flow?.message ?? '', /^stack\.yml:1:\d+: the YAML is nested (more than 200 levels deep|too deeply)$/);
  }
});

test('networks, named volumes, secrets and configs a service names must be declared, in this file or another', (t) => {
  fails(t, 'services:\n  web:\n    image: a\n    networks: [front]\n', 'stack.yml:4:16: services.web.networks[0]: undefined network "front": declare it under the top-level networks:', 'invalid');
  fails(t, 'services:\n  web:\n    image: a\n    networks:\n      back:\n        aliases: [w]\n', 'stack.yml:6:9: services.web.networks.back: undefined network "back": declare it under the top-level networks:');
  fails(t, 'services:\n  web:\n    image: a\n    volumes:\n      - /host:/host\n      - data:/data\n', 'stack.yml:6:9: services.web.volumes[1]: undefined volume "data": declare it under the top-level volumes:');
  fails(t, 'services:\n  web:\n    image: a\n    volumes:\n      - type: volume\n        source: logs\n        target: /logs\n', 'stack.yml:5:9: services.web.volumes[0]: undefined volume "logs": declare it under the top-level volumes:');
  fails(t, 'services:\n  web:\n    image: a\n    secrets:\n      - source: key\n', 'stack.yml:5:9: services.web.secrets[0]: undefined secret "key": declare it under the top-level secrets:');
  fails(t, 'services:\n  web:\n    image: a\n    configs: [conf]\n', 'stack.yml:4:15: services.web.configs[0]: undefined config "conf": declare it under the top-level configs:');
  // The default network, binds, tmpfs and anonymous volumes need no declaration; a later file may declare for an earlier one.
  t.notThrows(() => load('services:\n  web:\n    image: a\n    networks: [default]\n    volumes: [/data, ./x:/x, "/h:/h", {type: tmpfs, target: /t}, {type: volume, target: /anon}]\n'));
  const twoFiles = loadStackFromSources(
    [
      { name: 'a.yml', text: 'services:\n  web:\n    image: a\n    networks: [front]\n' },
      { name: 'b.yml', text: 'networks:\n  front: {}\n' },
    ],
    {},
    { workingDir: '/p' },
  );
  t.deepEqual(twoFiles.model.networks, { front: {} });
});

test('short-syntax ports and volumes must parse as Docker parses them', (t) => {
  fails(t, 'services:\n  web:\n    image: a\n    ports: ["80:http"]\n', 'stack.yml:4:13: services.web.ports[0]: invalid port "80:http": use [HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL], e.g. "8080:80" or "53:53/udp"', 'invalid');
  fails(t, 'services:\n  web:\n    image: a\n    ports: ["${P}"]\n', 'stack.yml:4:13: services.web.ports[0]: invalid port "": use [HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL], e.g. "8080:80" or "53:53/udp"');
  fails(t, 'services:\n  web:\n    image: a\n    volumes: ["${DATA}:/data"]\n', 'stack.yml:4:15: services.web.volumes[0]: invalid volume spec ":/data": empty section between colons');
  fails(t, 'services:\n  web:\n    image: a\n    volumes: ["/a:/b:ro:z"]\n', 'stack.yml:4:15: services.web.volumes[0]: invalid volume spec "/a:/b:ro:z": too many colons (use SOURCE:TARGET[:MODE])');
  fails(t, 'services:\n  web:\n    image: a\n    volumes: ["/a:data"]\n', 'stack.yml:4:15: services.web.volumes[0]: invalid volume spec "/a:data": the mount point "data" must be an absolute path');
  const ok = load('services:\n  web:\n    image: a\n    ports: ["80", "8080:80", ":81", "127.0.0.1:8080:80/udp", "[::1]:53:53/udp", "8000-8010:8000-8010", "127.0.0.1::80", 443]\n    volumes: ["/data", "/h:/c:ro", "/h:/c:ro,z"]\n');
  t.is((ok.model.services['web']?.['ports'] as unknown[]).length, 8);
  t.notThrows(() => load('services:\n  web:\n    image: a\n    ports: ["${P}:80"]\n', {}, { skipInterpolation: true }));
});

test("keys a stack refuses are errors with Docker's advice; include is refused", (t) => {
  fails(t, 'services:\n  web:\n    image: a\n    volumes_from: [other]\n', 'stack.yml:4:5: services.web.volumes_from: not supported in a stack: to share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option', 'unsupported');
  fails(t, 'services:\n  web:\n    image: a\n    mem_limit: 1g\n', 'stack.yml:4:5: services.web.mem_limit: not supported in a stack: set resource limits using deploy.resources');
  fails(t, 'include:\n  - other.yml\nservices: {}\n', 'stack.yml:1:1: include: not supported in a stack: pass each file with -c instead');
});

test('keys Swarm ignores are warnings naming each key and the services that set it', (t) => {
  const { warnings, model } = load(`name: shop
services:
  web:
    image: a
    build: .
    restart: always
    depends_on: [db]
    container_name: web1
  db:
    image: b
    restart: unless-stopped
    deploy:
      resources:
        reservations:
          devices:
            - capabilities: [gpu]
`);
  t.deepEqual(warnings, [
    'Ignoring unsupported options: build (web), depends_on (web), restart (web, db)',
    'Ignoring deprecated option container_name (web): setting the container name is not supported',
    'Ignoring unsupported deploy options: deploy.resources.reservations.devices (db)',
    "Ignoring unsupported top-level options: name (the stack's name is the one given to stack deploy)",
  ]);
  t.is(model.services['web']?.['build'], '.', 'the model stays close to the file; the converter skips them');
});

test('relative paths are made absolute against the working directory: env_file, secret and config files, bind sources', (t) => {
  const { model } = load(
    'services:\n  web:\n    image: a\n    env_file: [./web.env, {path: common.env}]\n    volumes:\n      - ./data:/data:ro\n      - named:/named\n      - type: bind\n        source: ../logs\n        target: /logs\n      - /abs:/abs\n      - ~/cache:/cache\nvolumes:\n  named: {}\nsecrets:\n  s:\n    file: ./s.txt\nconfigs:\n  c:\n    file: /etc/c.conf\n',
    { HOME: '/home/me' },
  );
  t.deepEqual(model.services['web']?.['env_file'], ['/project/web.env', { path: '/project/common.env' }]);
  t.deepEqual(model.services['web']?.['volumes'], ['/project/data:/data:ro', 'named:/named', { type: 'bind', source: '/logs', target: '/logs' }, '/abs:/abs', '/home/me/cache:/cache']);
  t.deepEqual(model.secrets?.['s'], { file: '/project/s.txt' });
  t.deepEqual(model.configs?.['c'], { file: '/etc/c.conf' });
});

test('a file without services gets an empty services mapping', (t) => {
  t.deepEqual(load('networks:\n  front: {}\n').model.services, {});
});

test('.env values may use variables of the environment and of lines above; single quotes keep them literal', (t) => {
  const { model } = load(
    'services:\n  web:\n    image: a\n    environment:\n      URL: ${URL}\n      RAW: ${RAW}\n      BOTH: ${BOTH}\n',
    { HOST: 'db' },
    { dotEnv: { name: '/project/.env', text: 'PORT=5432\nURL="postgres://${HOST}:${PORT}/x"\nRAW=\'${HOST}\'\nBOTH=${URL}!\n' } },
  );
  t.deepEqual(model.services['web']?.['environment'], { URL: 'postgres://db:5432/x', RAW: '${HOST}', BOTH: 'postgres://db:5432/x!' });
  const err = t.throws(() => load('services: {}\n', {}, { dotEnv: { name: '/project/.env', text: 'A=1\nB=${NEEDED:?set NEEDED}\n' } }), { instanceOf: StackError });
  t.is(err?.message, '/project/.env:2:1: B: required variable NEEDED is missing a value: set NEEDED');
});

test('.env errors name the .env file and line', (t) => {
  const err = t.throws(() => load('services: {}\n', {}, { dotEnv: { name: '/project/.env', text: 'OK=1\nnot a valid line\n' } }), { instanceOf: StackError });
  t.is(err?.message, '/project/.env:2:1: invalid variable name "not a valid line": use KEY=VALUE');
});

test('loadStack reads files, .env beside the first file, and several files merged in order; stdin with -', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'swarm-stack-load-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'app'));
  await writeFile(join(dir, 'app', '.env'), 'TAG=1.25\nREPLICAS=2\n');
  await writeFile(join(dir, 'app', 'stack.yml'), 'services:\n  web:\n    image: nginx:${TAG}\n    deploy:\n      replicas: ${REPLICAS}\nsecrets:\n  s:\n    file: ./s.txt\n');
  await writeFile(join(dir, 'override.yml'), 'services:\n  web:\n    deploy:\n      replicas: 5\n');
  const loaded = await loadStack({ files: [join(dir, 'app', 'stack.yml'), join(dir, 'override.yml')], env: { TAG: '1.27' } });
  t.deepEqual(loaded.model.services['web'], { image: 'nginx:1.27', deploy: { replicas: 5 } });
  t.deepEqual(loaded.model.secrets?.['s'], { file: join(dir, 'app', 's.txt') });
  t.is(loaded.workingDir, join(dir, 'app'));

  const fromStdin = await loadStack({ files: ['-'], env: {}, workingDir: dir, readStdin: async () => 'services:\n  a:\n    image: b\n' });
  t.deepEqual(fromStdin.model.services, { a: { image: 'b' } });

  await t.throwsAsync(loadStack({ files: [join(dir, 'missing.yml')], env: {} }), { instanceOf: StackError, message: `${join(dir, 'missing.yml')}: no such file` });
  await t.throwsAsync(loadStack({ files: [dir], env: {} }), { instanceOf: StackError, message: `${dir}: is a directory, not a compose file` });
  await t.throwsAsync(loadStack({ files: [], env: {} }), { instanceOf: StackError, message: 'no compose file: give one with -c FILE' });
  // An error in the second file names the second file.
  await writeFile(join(dir, 'bad.yml'), 'services:\n  web:\n    deploy:\n      replicas: many\n');
  await t.throwsAsync(loadStack({ files: [join(dir, 'app', 'stack.yml'), join(dir, 'bad.yml')], env: {} }), {
    instanceOf: StackError,
    message: `${join(dir, 'bad.yml')}:4:17: services.web.deploy.replicas: must be an integer, not "many"`,
  });
});

test('stringifyStack prints YAML that loads back to the same model, quoting 8080:80', (t) => {
  const { model } = load('services:\n  web:\n    image: a\n    ports: ["8080:80", 443]\n    environment: {A: "1", B: null}\n');
  const text = stringifyStack(model);
  t.true(text.includes('- "8080:80"'), text);
  t.deepEqual(load(text).model, model);
});
