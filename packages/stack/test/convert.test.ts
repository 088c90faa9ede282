// The converter, key by key: each compose key in its short and long syntax -> the cluster's spec, as Docker's
// `stack deploy` converts it, and errors that name the key path.

import test from 'ava';
import { convertStack, parseKeyPath, sourceLocator, StackError, shellSplit, type ComposeModel, type ComposeNetwork, type ComposeService, type ConvertedStack } from '../src/index.js';

const files: Record<string, string> = {
  '/stack/web.env': '# comment\nFROM_FILE=1\nexport QUOTED="a b"\nOVERRIDDEN=file\n\nBARE\n',
  '/stack/secret.txt': 's3cret',
  '/stack/app.conf': 'listen 80',
};

const readFile = (path: string): Uint8Array => {
  const text = files[path];
  if (text === undefined) throw new Error(`ENOENT: no such file, open '${path}'`);
  return Buffer.from(text, 'utf8');
};

function convert(model: Partial<ComposeModel> & { services: ComposeModel['services'] }, environment: Record<string, string> = {}): ConvertedStack {
  return convertStack('shop', model as ComposeModel, { workingDir: '/stack', readFile, environment });
}

function service(svc: ComposeService, extra: Partial<ComposeModel> = {}) {
  const stack = convert({ services: { web: { image: 'nginx:1.27', ...svc } }, ...extra });
  const spec = stack.services[0];
  if (spec === undefined) throw new Error('no service');
  return { spec, stack, c: spec.taskTemplate.containerSpec, t: spec.taskTemplate };
}

function failsWith(t: import('ava').ExecutionContext, fn: () => unknown, path: string, message?: RegExp): void {
  const err = t.throws(fn, { instanceOf: StackError });
  t.is(err?.path, path, err?.message);
  t.true(err?.message.startsWith(path) ?? false, err?.message);
  if (message !== undefined) t.regex(err?.message ?? '', message);
}

test('names are prefixed with the stack, and every object carries the namespace label; services the image label', (t) => {
  const { spec, c, stack } = service({});
  t.is(spec.name, 'shop_web');
  t.deepEqual(spec.labels, { 'com.docker.stack.namespace': 'shop', 'com.docker.stack.image': 'nginx:1.27' });
  t.deepEqual(c.labels, { 'com.docker.stack.namespace': 'shop' });
  t.is(c.image, 'nginx:1.27');
  t.deepEqual(stack.warnings, []);
});

test('a service without networks joins <stack>_default, an overlay made for the stack, with its name as alias', (t) => {
  const { t: task, stack } = service({});
  t.deepEqual(task.networks, [{ target: 'shop_default', aliases: ['web'] }]);
  t.is(stack.networks.length, 1);
  const n = stack.networks[0];
  t.true(n !== undefined && !n.external);
  if (n !== undefined && !n.external) {
    t.is(n.spec.name, 'shop_default');
    t.is(n.spec.driver, 'overlay');
    t.deepEqual(n.spec.labels, { 'com.docker.stack.namespace': 'shop' });
  }
});

test('networks: list and map syntax, aliases, external and named networks keep their names', (t) => {
  const networks = { front: { attachable: true, labels: ['tier=front'] }, back: { external: true }, legacy: { external: { name: 'old-net' } }, named: { name: 'exact-name', ipam: { config: [{ subnet: '10.9.0.0/24' }] } } };
  const list = service({ networks: ['front', 'back'] }, { networks });
  t.deepEqual(list.t.networks, [
    { target: 'back', aliases: ['web'] },
    { target: 'shop_front', aliases: ['web'] },
  ]);
  const map = service({ networks: { front: { aliases: ['www', 'web'] }, legacy: null, named: {} } }, { networks });
  t.deepEqual(map.t.networks, [
    { target: 'exact-name', aliases: ['web'] },
    { target: 'old-net', aliases: ['web'] },
    { target: 'shop_front', aliases: ['www', 'web'] },
  ]);
  const byName = new Map(map.stack.networks.map((n) => [n.name, n]));
  t.deepEqual([...byName.keys()].sort(), ['exact-name', 'old-net', 'shop_front']);
  t.true(byName.get('old-net')?.external);
  const front = byName.get('shop_front');
  if (front === undefined || front.external) return t.fail('shop_front is the stack\'s');
  t.true(front.spec.attachable);
  t.deepEqual(front.spec.labels, { tier: 'front', 'com.docker.stack.namespace': 'shop' });
  const named = byName.get('exact-name');
  if (named === undefined || named.external) return t.fail('exact-name is the stack\'s');
  t.deepEqual(named.spec.ipam.configs, [{ subnet: '10.9.0.0/24', range: '', gateway: '' }]);
});

test('a network the file does not define, or one that is not an overlay, is an error naming the key', (t) => {
  failsWith(t, () => service({ networks: ['nope'] }), 'services.web.networks[0]', /not defined under the top-level networks/);
  failsWith(t, () => service({ networks: { front: null } }, { networks: { front: { driver: 'bridge' } } }), 'networks.front.driver', /overlay/);
});

test('ports: short syntax with protocol, ranges and target only; long syntax with host mode; sorted', (t) => {
  const { spec } = service({ ports: ['8080:80', '53:53/udp', 443, '9000-9001:9000-9001', { target: 22, published: '2222', mode: 'host', protocol: 'tcp' }] });
  t.deepEqual(spec.endpointSpec, {
    mode: 'vip',
    ports: [
      { name: '', protocol: 'tcp', targetPort: 443, publishedPort: 0, publishMode: 'ingress' },
      { name: '', protocol: 'udp', targetPort: 53, publishedPort: 53, publishMode: 'ingress' },
      { name: '', protocol: 'tcp', targetPort: 22, publishedPort: 2222, publishMode: 'host' },
      { name: '', protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' },
      { name: '', protocol: 'tcp', targetPort: 9000, publishedPort: 9000, publishMode: 'ingress' },
      { name: '', protocol: 'tcp', targetPort: 9001, publishedPort: 9001, publishMode: 'ingress' },
    ],
  });
});

test('networks: what the daemon would refuse is an error before anything is made', (t) => {
  const refused = (front: ComposeNetwork) => () => service({ networks: ['front'] }, { networks: { front } });
  failsWith(t, refused({ ipam: { config: [{ subnet: '10.1.0.0/24' }, { subnet: '10.2.0.0/24' }] } }), 'networks.front.ipam.config', /at most one subnet/);
  failsWith(t, refused({ ipam: { config: [{ subnet: '10.1.0.0/24', ip_range: '10.1.0.0/25' }] } }), 'networks.front.ipam.config[0].ip_range');
  failsWith(t, refused({ ipam: { config: [{ gateway: '10.1.0.1' }] } }), 'networks.front.ipam.config[0].gateway');
  failsWith(t, refused({ ipam: { config: [{ subnet: 'fd00::/64' }] } }), 'networks.front.ipam.config[0].subnet');
  failsWith(t, refused({ ipam: { driver: 'dhcp' } }), 'networks.front.ipam.driver');
  failsWith(t, refused({ name: 'host' }), 'networks.front.name');
  failsWith(t, refused({ driver_opts: { 'com.docker.network.driver.overlay.vxlanid_list': '5000' } }), 'networks.front.driver_opts');
});

test('ports: a host IP is warned about, bad ports and modes are errors naming the entry', (t) => {
  failsWith(t, () => service({ ports: ['8080:80', '8080:81'] }), 'services.web.ports', /8080\/tcp is published twice/);
  t.is(service({ ports: ['8080:80', '8080:80/udp'] }).spec.endpointSpec.ports.length, 2);
  t.deepEqual(service({ ports: ['127.0.0.1:8080:80'] }).stack.warnings, ['services.web.ports[0]: host IP 127.0.0.1 is ignored: a published port is on every address of the node(s)']);
  failsWith(t, () => service({ ports: ['80:70000'] }), 'services.web.ports[0]', /target "70000"/);
  failsWith(t, () => service({ ports: ['80/icmp'] }), 'services.web.ports[0]', /protocol/);
  failsWith(t, () => service({ ports: [{ target: 80, mode: 'bridge' }] }), 'services.web.ports[0].mode');
  failsWith(t, () => service({ ports: ['8080:80'], deploy: { endpoint_mode: 'dnsrr' } }), 'services.web.ports', /dnsrr/);
});

test('environment: list and map forms, env_file relative to the working dir, environment wins, sorted', (t) => {
  const { c } = service({ env_file: 'web.env', environment: { OVERRIDDEN: 'env', NUM: 3, FLAG: true, FROM_SHELL: null } }, {});
  t.deepEqual(c.env, ['FLAG=true', 'FROM_FILE=1', 'NUM=3', 'OVERRIDDEN=env', 'QUOTED=a b']);
  const withShell = convert({ services: { web: { image: 'x', environment: ['A=1', 'FROM_SHELL', 'EMPTY='] } } }, { FROM_SHELL: 'yes' });
  t.deepEqual(withShell.services[0]?.taskTemplate.containerSpec.env, ['A=1', 'EMPTY=', 'FROM_SHELL=yes']);
  failsWith(t, () => service({ env_file: ['missing.env'] }), 'services.web.env_file[0]', /cannot read \/stack\/missing.env/);
  t.deepEqual(service({ env_file: [{ path: 'missing.env', required: false }] }).c.env, []);
});

test('command and entrypoint: a string is shell-split like Docker, a list is taken as it is', (t) => {
  const { c } = service({ entrypoint: '/bin/sh -c', command: `echo "hello world" 'it''s' a\\ b` });
  t.deepEqual(c.command, ['/bin/sh', '-c']);
  t.deepEqual(c.args, ['echo', 'hello world', 'its', 'a b']);
  t.deepEqual(service({ command: ['sh', '-c', 'echo $HOME'] }).c.args, ['sh', '-c', 'echo $HOME']);
  t.deepEqual(shellSplit(`a "b \\"c\\"" ''`, 'x'), ['a', 'b "c"', '']);
  failsWith(t, () => service({ command: 'echo "open' }), 'services.web.command', /unclosed/);
});

test('healthcheck: string and list tests, durations like 1m30s, disable', (t) => {
  t.deepEqual(service({ healthcheck: { test: 'curl -f http://localhost', interval: '1m30s', timeout: '10s', retries: 3, start_period: '500ms' } }).c.healthcheck, {
    test: ['CMD-SHELL', 'curl -f http://localhost'],
    intervalMs: 90_000,
    timeoutMs: 10_000,
    startPeriodMs: 500,
    retries: 3,
  });
  t.deepEqual(service({ healthcheck: { test: ['CMD', 'true'] } }).c.healthcheck?.test, ['CMD', 'true']);
  t.deepEqual(service({ healthcheck: { disable: true } }).c.healthcheck?.test, ['NONE']);
  t.is(service({}).c.healthcheck, null);
  failsWith(t, () => service({ healthcheck: { test: ['CMD'] } }), 'services.web.healthcheck.test');
  failsWith(t, () => service({ healthcheck: { test: 'true', interval: '10 seconds' } }), 'services.web.healthcheck.interval', /duration/);
  failsWith(t, () => service({ healthcheck: { test: 'true', disable: true } }), 'services.web.healthcheck.disable');
});

test('container settings: labels, hostname, user, working_dir, stop_grace_period, init, read_only, capabilities, stop_signal', (t) => {
  const { c, spec } = service({
    labels: { 'com.example.role': 'web' },
    hostname: 'web-host',
    user: '1000:1000',
    working_dir: '/srv',
    stop_grace_period: '1m',
    stop_signal: 'SIGQUIT',
    init: true,
    read_only: true,
    cap_add: ['net_admin'],
    cap_drop: ['ALL'],
    deploy: { labels: ['com.example.service=yes'] },
  });
  t.deepEqual(c.labels, { 'com.example.role': 'web', 'com.docker.stack.namespace': 'shop' });
  t.deepEqual(spec.labels, { 'com.example.service': 'yes', 'com.docker.stack.namespace': 'shop', 'com.docker.stack.image': 'nginx:1.27' });
  t.like(c, { hostname: 'web-host', user: '1000:1000', dir: '/srv', stopGracePeriodMs: 60_000, stopSignal: 'SIGQUIT', init: true, readOnly: true, capabilityAdd: ['NET_ADMIN'], capabilityDrop: ['ALL'] });
  t.is(service({}).c.stopGracePeriodMs, 10_000);
  failsWith(t, () => service({ stop_signal: 'sigterm' }), 'services.web.stop_signal', /signal name/);
});

test('volumes: named volumes prefixed (external and named ones keep their names), binds relative to the working dir, tmpfs', (t) => {
  const volumes = { data: null, shared: { external: true }, fixed: { name: 'fixed-name' } };
  const { c, stack } = service(
    {
      volumes: ['data:/var/lib/data', 'shared:/shared:ro', './html:/usr/share/nginx/html:ro', '/etc/hosts:/etc/hosts', { type: 'volume', source: 'fixed', target: '/fixed' }, { type: 'tmpfs', target: '/cache', tmpfs: { size: '64M' } }, { type: 'bind', source: 'conf', target: '/conf', read_only: true }],
      tmpfs: ['/run:size=1m'],
    },
    { volumes },
  );
  t.deepEqual(c.mounts, [
    { type: 'volume', source: 'shop_data', target: '/var/lib/data', readOnly: false, tmpfsSizeBytes: 0 },
    { type: 'volume', source: 'shared', target: '/shared', readOnly: true, tmpfsSizeBytes: 0 },
    { type: 'bind', source: '/stack/html', target: '/usr/share/nginx/html', readOnly: true, tmpfsSizeBytes: 0 },
    { type: 'bind', source: '/etc/hosts', target: '/etc/hosts', readOnly: false, tmpfsSizeBytes: 0 },
    { type: 'volume', source: 'fixed-name', target: '/fixed', readOnly: false, tmpfsSizeBytes: 0 },
    { type: 'tmpfs', source: '', target: '/cache', readOnly: false, tmpfsSizeBytes: 64 * 1024 * 1024 },
    { type: 'bind', source: '/stack/conf', target: '/conf', readOnly: true, tmpfsSizeBytes: 0 },
    { type: 'tmpfs', source: '', target: '/run', readOnly: false, tmpfsSizeBytes: 1024 * 1024 },
  ]);
  t.deepEqual(stack.volumes, [
    { key: 'data', name: 'shop_data', external: false },
    { key: 'fixed', name: 'fixed-name', external: false },
    { key: 'shared', name: 'shared', external: true },
  ]);
});

test('volumes: undefined named volumes, anonymous volumes and bad types are errors naming the entry', (t) => {
  failsWith(t, () => service({ volumes: ['nope:/x'] }), 'services.web.volumes[0]', /not defined under the top-level volumes/);
  failsWith(t, () => service({ volumes: ['/just-a-target'] }), 'services.web.volumes[0]', /anonymous/);
  failsWith(t, () => service({ volumes: [{ type: 'npipe', source: 'x', target: '/x' }] }), 'services.web.volumes[0].type');
  failsWith(t, () => service({ volumes: [{ type: 'tmpfs', target: '/x', bind: {} }] }), 'services.web.volumes[0].bind', /incompatible/);
  failsWith(t, () => service({ volumes: ['/a:/x', '/b:/x'] }), 'services.web.volumes', /mounted twice/);
  failsWith(t, () => service({ volumes: ['data:/x'] }, { volumes: { data: { name: 'bad name' } } }), 'volumes.data.name', /not valid/);
});

test('deploy: mode and replicas, placement, resources, restart policy, update and rollback config, endpoint mode', (t) => {
  const { spec, t: task, c } = service({
    deploy: {
      replicas: '3',
      endpoint_mode: 'dnsrr',
      placement: { constraints: ['node.role==worker'], preferences: [{ spread: 'node.labels.zone' }], max_replicas_per_node: 2 },
      resources: { limits: { cpus: '0.5', memory: '512M', pids: 100 }, reservations: { cpus: 0.25, memory: '64m' } },
      restart_policy: { condition: 'on-failure', delay: '10s', max_attempts: 3, window: '2m' },
      update_config: { parallelism: 2, delay: '10s', failure_action: 'rollback', monitor: '30s', max_failure_ratio: 0.3, order: 'start-first' },
      rollback_config: { parallelism: 0, order: 'stop-first' },
    },
  });
  t.deepEqual(spec.mode, { replicated: { replicas: 3 } });
  t.is(spec.endpointSpec.mode, 'dnsrr');
  t.deepEqual(task.placement, { constraints: ['node.role==worker'], preferences: [{ spread: 'node.labels.zone' }], maxReplicas: 2, platforms: [] });
  t.deepEqual(task.resources, { limits: { nanoCpus: 500_000_000, memoryBytes: 512 * 1024 * 1024 }, reservations: { nanoCpus: 250_000_000, memoryBytes: 64 * 1024 * 1024 } });
  t.is(c.pidsLimit, 100);
  t.deepEqual(task.restartPolicy, { condition: 'on-failure', delayMs: 10_000, maxAttempts: 3, windowMs: 120_000 });
  t.deepEqual(spec.updateConfig, { parallelism: 2, delayMs: 10_000, failureAction: 'rollback', monitorMs: 30_000, maxFailureRatio: 0.3, order: 'start-first' });
  t.deepEqual(spec.rollbackConfig, { parallelism: 0, delayMs: 0, failureAction: 'pause', monitorMs: 5_000, maxFailureRatio: 0, order: 'stop-first' });
  t.deepEqual(service({ deploy: { mode: 'global' } }).spec.mode, { global: {} });
  t.deepEqual(service({}).spec.mode, { replicated: { replicas: 1 } });
});

test('deploy: bad values are errors naming the key path', (t) => {
  failsWith(t, () => service({ deploy: { resources: { limits: { memory: 'lots' } } } }), 'services.web.deploy.resources.limits.memory', /size/);
  failsWith(t, () => service({ deploy: { resources: { limits: { cpus: 'half' } } } }), 'services.web.deploy.resources.limits.cpus');
  failsWith(t, () => service({ deploy: { mode: 'global', replicas: 2 } }), 'services.web.deploy.replicas');
  failsWith(t, () => service({ deploy: { mode: 'replicated-job' } }), 'services.web.deploy.mode', /not supported/);
  failsWith(t, () => service({ deploy: { replicas: -1 } }), 'services.web.deploy.replicas');
  failsWith(t, () => service({ deploy: { restart_policy: { condition: 'always' } } }), 'services.web.deploy.restart_policy.condition');
  failsWith(t, () => service({ deploy: { update_config: { order: 'random' } } }), 'services.web.deploy.update_config.order');
  failsWith(t, () => service({ deploy: { rollback_config: { failure_action: 'rollback' } } }), 'services.web.deploy.rollback_config.failure_action');
  failsWith(t, () => service({ deploy: { update_config: { max_failure_ratio: 2 } } }), 'services.web.deploy.update_config.max_failure_ratio');
  failsWith(t, () => service({ deploy: { placement: { preferences: [{} as { spread: string }] } } }), 'services.web.deploy.placement.preferences[0].spread');
  failsWith(t, () => service({ image: '' }), 'services.web.image');
  failsWith(t, () => service({ deploy: { placement: { constraints: ['node.role==manager', 'node.colour==red'] } } }), 'services.web.deploy.placement.constraints[1]', /unknown key "node.colour"/);
  failsWith(t, () => service({ deploy: { placement: { constraints: ['node.role=manager'] } } }), 'services.web.deploy.placement.constraints[0]', /KEY==VALUE/);
  failsWith(t, () => service({ deploy: { placement: { constraints: ['node.role==boss'] } } }), 'services.web.deploy.placement.constraints[0]', /manager or worker/);
});

test('restart: the legacy key is the fallback for deploy.restart_policy, as in Docker', (t) => {
  t.like(service({ restart: 'on-failure:4' }).t.restartPolicy, { condition: 'on-failure', maxAttempts: 4 });
  t.like(service({ restart: 'always' }).t.restartPolicy, { condition: 'any', maxAttempts: 0 });
  t.like(service({ restart: 'unless-stopped' }).t.restartPolicy, { condition: 'any' });
  const both = service({ restart: 'always', deploy: { restart_policy: { condition: 'none' } } });
  t.is(both.t.restartPolicy.condition, 'none');
  t.deepEqual(both.stack.warnings, ['services.web.restart: deploy.restart_policy is set too: restart is ignored']);
  failsWith(t, () => service({ restart: 'sometimes' }), 'services.web.restart');
});

test('secrets and configs: short and long references by name, files read relative to the working dir, external ones kept', (t) => {
  const { c, stack } = service(
    { secrets: ['db_password', { source: 'api_key', target: 'key', uid: '0', mode: 0o444 }], configs: [{ source: 'app', target: '/etc/app.conf' }, 'shared_conf'] },
    {
      secrets: { db_password: { file: 'secret.txt' }, api_key: { external: true } },
      configs: { app: { file: './app.conf', labels: { v: '1' } }, shared_conf: { external: true, name: 'global-conf' }, inline: { content: 'x=1' } },
    },
  );
  t.deepEqual(c.secrets, [
    { secretId: '', secretName: 'api_key', target: 'key', uid: '0', gid: '0', mode: 0o444 },
    { secretId: '', secretName: 'shop_db_password', target: 'db_password', uid: '0', gid: '0', mode: 0o444 },
  ]);
  t.deepEqual(c.configs, [
    { configId: '', configName: 'global-conf', target: 'shared_conf', uid: '0', gid: '0', mode: 0o444 },
    { configId: '', configName: 'shop_app', target: '/etc/app.conf', uid: '0', gid: '0', mode: 0o444 },
  ]);
  t.deepEqual(
    stack.secrets.map((s) => (s.external ? { name: s.name, external: true } : { name: s.name, data: Buffer.from(s.data).toString(), labels: s.labels })),
    [
      { name: 'api_key', external: true },
      { name: 'shop_db_password', data: 's3cret', labels: { 'com.docker.stack.namespace': 'shop' } },
    ],
  );
  t.deepEqual(
    stack.configs.map((s) => (s.external ? { name: s.name, external: true } : { name: s.name, data: Buffer.from(s.data).toString(), labels: s.labels })),
    [
      { name: 'shop_app', data: 'listen 80', labels: { v: '1', 'com.docker.stack.namespace': 'shop' } },
      { name: 'shop_inline', data: 'x=1', labels: { 'com.docker.stack.namespace': 'shop' } },
      { name: 'global-conf', external: true },
    ],
  );
  t.deepEqual(stack.warnings, []);
});

test('secrets: uid, gid and mode (octal however written); undefined, doubled, clashing and unreadable ones are errors', (t) => {
  const secrets = { s: { file: 'secret.txt' }, t: { file: 'secret.txt' } };
  const configs = { c: { content: 'x' } };
  t.deepEqual(service({ secrets: [{ source: 's', uid: '1000', gid: 50, mode: 0o400 }, { source: 't', mode: '0440' }] }, { secrets }).c.secrets, [
    { secretId: '', secretName: 'shop_s', target: 's', uid: '1000', gid: '50', mode: 0o400 },
    { secretId: '', secretName: 'shop_t', target: 't', uid: '0', gid: '0', mode: 0o440 },
  ]);
  failsWith(t, () => service({ secrets: [{ source: 's', uid: 'root' }] }, { secrets }), 'services.web.secrets[0].uid', /numeric user id/);
  failsWith(t, () => service({ secrets: [{ source: 's', mode: 0o1777 }] }, { secrets }), 'services.web.secrets[0].mode', /file mode/);
  failsWith(t, () => service({ secrets: ['nope'] }, { secrets }), 'services.web.secrets[0]', /not defined under the top-level secrets/);
  failsWith(t, () => service({ secrets: ['s', { source: 's', target: 'other' }] }, { secrets }), 'services.web.secrets[1]', /already given by services.web.secrets\[0\]/);
  failsWith(t, () => service({ secrets: ['s', { source: 't', target: '/run/secrets/s' }] }, { secrets }), 'services.web.secrets', /\/run\/secrets\/s is the target of both secret shop_s and secret shop_t/);
  failsWith(t, () => service({ secrets: [{ source: 's', target: '/etc/x' }], configs: [{ source: 'c', target: '/etc/x' }] }, { secrets, configs }), 'services.web.configs', /\/etc\/x is the target of both/);
  failsWith(t, () => service({ secrets: [{ source: 's', target: '../x' }] }, { secrets }), 'services.web.secrets[0].target');
  failsWith(t, () => service({}, { secrets: { gone: { file: 'gone.txt' } } }), 'secrets.gone.file', /cannot read \/stack\/gone.txt/);
  failsWith(t, () => service({}, { secrets: { env: { environment: 'UNSET_VAR' } } }), 'secrets.env.environment', /not set/);
  failsWith(t, () => service({}, { secrets: { two: { file: 'secret.txt', environment: 'X' } } }), 'secrets.two');
});

test('ulimits: a single value is soft and hard, a mapping gives each; sorted by name (Docker\'s); -1 is unlimited; strings from interpolation are numbers', (t) => {
  const cases: Array<[ComposeService['ulimits'], unknown]> = [
    [{ nproc: 65535, nofile: { soft: 20000, hard: 40000 } }, [{ name: 'nofile', soft: 20000, hard: 40000 }, { name: 'nproc', soft: 65535, hard: 65535 }]],
    [{ core: -1, memlock: { soft: '-1', hard: '-1' } }, [{ name: 'core', soft: -1, hard: -1 }, { name: 'memlock', soft: -1, hard: -1 }]],
    [{ stack: { soft: 8192, hard: -1, 'x-note': 'hi' } as never }, [{ name: 'stack', soft: 8192, hard: -1 }]],
    [{ nofile: '1024' }, [{ name: 'nofile', soft: 1024, hard: 1024 }]],
  ];
  for (const [ulimits, want] of cases) {
    const { c, stack } = service({ ulimits });
    t.deepEqual(c.ulimits, want, JSON.stringify(ulimits));
    t.deepEqual(stack.warnings, []);
  }
  t.false('ulimits' in service({}).c, 'no ulimits: no field, as the API makes it');
  t.false('ulimits' in service({ ulimits: {} }).c);
});

test('ulimits errors name the key path: an unknown name, soft above hard, a value that is not a whole number, a half mapping, an unknown key', (t) => {
  const cases: Array<[unknown, string, RegExp]> = [
    [{ files: 10 }, 'services.web.ulimits.files', /"files" is not a ulimit name \(core, cpu, data,/],
    [{ nofile: { soft: 40000, hard: 20000 } }, 'services.web.ulimits.nofile.soft', /the soft limit 40000 is above the hard limit 20000/],
    [{ nofile: { soft: -1, hard: 20000 } }, 'services.web.ulimits.nofile.soft', /the soft limit unlimited \(-1\) is above the hard limit 20000/],
    [{ nofile: { soft: 1, hard: 'lots' } }, 'services.web.ulimits.nofile.hard', /"lots" is not a whole number \(or -1 for unlimited\)/],
    [{ nproc: -2 }, 'services.web.ulimits.nproc', /-2 is not a whole number/],
    [{ nproc: 1.5 }, 'services.web.ulimits.nproc', /1\.5 is not a whole number/],
    [{ nofile: { soft: 1 } }, 'services.web.ulimits.nofile.hard', /is required with soft/],
    [{ nofile: { soft: 1, hard: 2, max: 3 } }, 'services.web.ulimits.nofile.max', /is not soft or hard/],
    [{ nofile: [1, 2] }, 'services.web.ulimits.nofile', /is not a whole number/],
    [[1, 2], 'services.web.ulimits', /is not a map/],
  ];
  for (const [ulimits, path, message] of cases) failsWith(t, () => service({ ulimits } as ComposeService), path, message);
});

test('keys this cluster has no setting for are warnings naming them; what the loader reports is not repeated', (t) => {
  const { stack } = service({ build: '.', container_name: 'web', restart: 'always', sysctls: { 'net.core.somaxconn': 1024 }, 'x-custom': 1, deploy: { resources: { limits: { cpus: '1' }, reservations: { generic_resources: [], devices: [] } } } });
  t.deepEqual(stack.warnings, [
    'services.web.sysctls: this cluster has no such setting: ignored',
    'services.web.deploy.resources.reservations.generic_resources: this cluster has no such setting: ignored',
  ]);
});

test('services are sorted by name, and only the networks services use are in the result', (t) => {
  const stack = convert({ services: { b: { image: 'x', networks: ['front'] }, a: { image: 'x', networks: ['front'] } }, networks: { front: {}, unused: {} } });
  t.deepEqual(stack.services.map((s) => s.name), ['shop_a', 'shop_b']);
  t.deepEqual(stack.networks.map((n) => n.name), ['shop_front']);
});

test('a bad stack name or an empty file is an error', (t) => {
  t.throws(() => convertStack('-bad', { services: { a: { image: 'x' } } }, { workingDir: '/' }), { instanceOf: StackError, message: /stack name/ });
  failsWith(t, () => convert({ services: {} }), 'services', /no service/);
  failsWith(t, () => convert({ services: { ['s'.repeat(60)]: { image: 'x' } } }), `services.${'s'.repeat(60)}`, /at most 63/);
});

test('the converter\'s key paths are found in the files, the last file that writes them winning', (t) => {
  const locate = sourceLocator([
    { name: 'a.yml', text: 'services:\n  web:\n    image: x\n    deploy:\n      replicas: 2\n' },
    { name: 'b.yml', text: 'services:\n  web:\n    deploy:\n      replicas: -1\n    ports:\n      - "80:80"\n' },
  ]);
  t.deepEqual(locate('services.web.deploy.replicas'), { file: 'b.yml', line: 4, column: 7 });
  t.deepEqual(locate('services.web.image'), { file: 'a.yml', line: 3, column: 5 });
  t.deepEqual(locate('services.web.ports[0]'), { file: 'b.yml', line: 6, column: 9 });
  t.deepEqual(locate('services.web.healthcheck.test'), { file: 'b.yml', line: 2, column: 3 }, 'the nearest enclosing key');
  t.is(locate('networks.front'), null);
  const ulimits = sourceLocator([{ name: 'u.yml', text: 'services:\n  web:\n    image: x\n    ulimits:\n      nproc: 10\n      nofile:\n        soft: 9\n        hard: 1\n' }]);
  t.deepEqual(ulimits('services.web.ulimits.nofile.soft'), { file: 'u.yml', line: 7, column: 9 });
  t.deepEqual(parseKeyPath('services.web.ports[0].published'), ['services', 'web', 'ports', 0, 'published']);
});
