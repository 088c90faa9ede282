// `service create|update|ps` flag handling without a daemon: Docker's flags to a ServiceSpec, update's -add/-rm
// lists over the current spec, and `ps --filter`; bad values are refused naming the flag.

import test from 'ava';
import type { ServiceDocument, ServiceSpecDocument, TaskDocument } from '@swarm/api/client';
import { parseFileReference, parseMount, parseNetwork, parsePublish, parseUlimit, serviceRow, specFromFlags, taskFilter, updatedSpec, type CreateFlags, type UpdateFlags } from '../src/service-commands.js';

const none: CreateFlags = { constraint: [], placementPref: [], env: [], label: [], containerLabel: [], mount: [], capAdd: [], capDrop: [], network: [], publish: [], secret: [], config: [], ulimit: [] };
const noUpdate: UpdateFlags = {
  envAdd: [],
  envRm: [],
  labelAdd: [],
  labelRm: [],
  containerLabelAdd: [],
  containerLabelRm: [],
  constraintAdd: [],
  constraintRm: [],
  placementPrefAdd: [],
  placementPrefRm: [],
  mountAdd: [],
  mountRm: [],
  capAdd: [],
  capDrop: [],
  networkAdd: [],
  networkRm: [],
  publishAdd: [],
  publishRm: [],
  secretAdd: [],
  secretRm: [],
  configAdd: [],
  configRm: [],
  ulimitAdd: [],
  ulimitRm: [],
};

test('create: update, rollback and health flags become UpdateConfig, RollbackConfig and Healthcheck in ns', (t) => {
  const spec = specFromFlags('busybox', ['sleep', '600'], {
    ...none,
    updateParallelism: '2',
    updateDelay: '10s',
    updateFailureAction: 'rollback',
    updateOrder: 'start-first',
    updateMaxFailureRatio: '0.25',
    rollbackMonitor: '1s',
    healthCmd: 'wget -q -O- localhost',
    healthInterval: '500ms',
    healthRetries: '2',
  });
  t.deepEqual(spec.UpdateConfig, { Parallelism: 2, Delay: 10e9, FailureAction: 'rollback', Order: 'start-first', MaxFailureRatio: 0.25 });
  t.deepEqual(spec.RollbackConfig, { Monitor: 1e9 });
  t.deepEqual(spec.TaskTemplate.ContainerSpec.Healthcheck, { Test: ['CMD-SHELL', 'wget -q -O- localhost'], Interval: 5e8, Retries: 2 });
  t.deepEqual(specFromFlags('busybox', [], { ...none, healthcheck: false }).TaskTemplate.ContainerSpec.Healthcheck, { Test: ['NONE'] });
});

test('bad flag values are refused naming the flag', (t) => {
  t.throws(() => specFromFlags('busybox', [], { ...none, updateFailureAction: 'explode' }), { message: /--update-failure-action "explode": use pause, continue, rollback/ });
  t.throws(() => specFromFlags('busybox', [], { ...none, rollbackFailureAction: 'rollback' }), { message: /--rollback-failure-action "rollback": use pause, continue$/ });
  t.throws(() => specFromFlags('busybox', [], { ...none, updateMaxFailureRatio: '1.5' }), { message: /--update-max-failure-ratio "1.5"/ });
  t.throws(() => specFromFlags('busybox', [], { ...none, updateOrder: 'random' }), { message: /--update-order/ });
  t.throws(() => specFromFlags('busybox', [], { ...none, healthcheck: false, healthCmd: 'true' }), { message: /--no-healthcheck conflicts/ });
  t.throws(() => specFromFlags('busybox', [], { ...none, healthInterval: 'soon' }), { message: /--health-interval "soon"/ });
});

test('update changes only what a flag names; -add/-rm edit lists; --force bumps ForceUpdate', (t) => {
  const current: ServiceSpecDocument = {
    Name: 'web',
    Labels: { tier: 'front', old: 'x' },
    TaskTemplate: {
      ContainerSpec: { Image: 'busybox', Args: ['sleep', '600'], Env: ['A=1', 'B=2'] },
      Placement: { Constraints: ['node.role==worker'] },
      RestartPolicy: { Condition: 'on-failure', Delay: 5e9 },
    },
    Mode: { Replicated: { Replicas: 3 } },
    UpdateConfig: { Parallelism: 1, Order: 'stop-first' },
  };
  const next = updatedSpec(current, {
    ...noUpdate,
    image: 'busybox:2',
    envAdd: ['B=3', 'C=4'],
    envRm: ['A'],
    labelAdd: ['new=y'],
    labelRm: ['old'],
    constraintAdd: ['node.labels.zone==a'],
    constraintRm: ['node.role==worker'],
    restartDelay: '1s',
    updateParallelism: '2',
    force: true,
  });
  t.is(next.TaskTemplate.ContainerSpec.Image, 'busybox:2');
  t.deepEqual(next.TaskTemplate.ContainerSpec.Env, ['B=3', 'C=4']);
  t.deepEqual(next.Labels, { tier: 'front', new: 'y' });
  t.deepEqual(next.TaskTemplate.Placement?.Constraints, ['node.labels.zone==a']);
  t.deepEqual(next.TaskTemplate.RestartPolicy, { Condition: 'on-failure', Delay: 1e9 });
  t.deepEqual(next.UpdateConfig, { Parallelism: 2, Order: 'stop-first' });
  t.is(next.TaskTemplate.ForceUpdate, 1);
  t.deepEqual(next.Mode, { Replicated: { Replicas: 3 } });
  t.is(current.TaskTemplate.ContainerSpec.Image, 'busybox', 'the current spec is not changed');
  t.throws(() => updatedSpec({ ...current, Mode: { Global: {} } }, { ...noUpdate, replicas: '2' }), { message: /--replicas can only be used with replicated mode/ });
});

test('ps --filter: values of a key are alternatives, keys must all hold', (t) => {
  const task = (id: string, name: string, node: string, desired: string): TaskDocument =>
    ({ ID: id, Name: name, NodeID: node, DesiredState: desired }) as unknown as TaskDocument;
  const tasks = [task('aaa1', 'web.1', 'n1', 'running'), task('bbb2', 'web.1', 'n2', 'shutdown'), task('ccc3', 'web.2', 'n2', 'running')];
  const hosts = new Map([
    ['n1', 'node-1'],
    ['n2', 'node-2'],
  ]);
  const ids = (filters: string[]) => tasks.filter((x) => taskFilter(filters)(x, hosts)).map((x) => x.ID);
  t.deepEqual(ids(['desired-state=running']), ['aaa1', 'ccc3']);
  t.deepEqual(ids(['desired-state=running', 'node=node-2']), ['ccc3']);
  t.deepEqual(ids(['node=n1', 'node=node-2']), ['aaa1', 'bbb2', 'ccc3']);
  t.deepEqual(ids(['name=web.1', 'desired-state=shutdown']), ['bbb2']);
  t.deepEqual(ids(['id=cc']), ['ccc3']);
  t.throws(() => taskFilter(['colour=red']), { message: /invalid filter "colour=red"/ });
  t.throws(() => taskFilter(['desired-state=dancing']), { message: /desired-state is running, shutdown or accepted/ });
});

test('--mount: Docker\'s CSV with its aliases; unknown fields, missing or relative targets are refused by name', (t) => {
  t.deepEqual(parseMount('type=volume,source=data,target=/data'), { Type: 'volume', Source: 'data', Target: '/data' });
  t.deepEqual(parseMount('type=bind,src=/srv,dst=/srv,ro'), { Type: 'bind', Source: '/srv', Target: '/srv', ReadOnly: true });
  t.deepEqual(parseMount('type=tmpfs,destination=/cache,tmpfs-size=64M,readonly=false'), { Type: 'tmpfs', Target: '/cache', ReadOnly: false, TmpfsOptions: { SizeBytes: 64 * 1024 * 1024 } });
  t.throws(() => parseMount('type=volume,source=x'), { message: /target is required/ });
  t.throws(() => parseMount('type=volume,source=x,target=data'), { message: /absolute/ });
  t.throws(() => parseMount('type=volume,source=x,target=/d,volume-driver=nfs'), { message: /unknown field "volume-driver"/ });
  t.throws(() => parseMount('type=nfs,target=/d'), { message: /bind, volume or tmpfs/ });
  t.throws(() => parseMount('type=bind,source=/a,target=/d,tmpfs-size=1M'), { message: /only for type=tmpfs/ });
});

test('create: --mount, --cap-add/--cap-drop, --init, --read-only, --limit-pids and --hostname reach the spec', (t) => {
  const spec = specFromFlags('busybox', [], { ...none, mount: ['type=volume,source=data,target=/data'], capAdd: ['net_admin,SYS_TIME'], capDrop: ['ALL'], init: true, readOnly: true, limitPids: '64', hostname: 'web' });
  const c = spec.TaskTemplate.ContainerSpec;
  t.deepEqual(c.Mounts, [{ Type: 'volume', Source: 'data', Target: '/data' }]);
  t.deepEqual(c.CapabilityAdd, ['NET_ADMIN', 'SYS_TIME']);
  t.deepEqual(c.CapabilityDrop, ['ALL']);
  t.is(c.Init, true);
  t.is(c.ReadOnly, true);
  t.is(c.Hostname, 'web');
  t.is(spec.TaskTemplate.Resources?.Limits?.Pids, 64);
  t.throws(() => specFromFlags('busybox', [], { ...none, capAdd: ['net-admin'] }), { message: /--cap-add/ });
});

test('create: --ulimit NAME=SOFT[:HARD] (one value: soft = hard; -1 unlimited), repeatable, a later one of a name replacing the earlier, sorted by name', (t) => {
  const spec = specFromFlags('busybox', [], { ...none, ulimit: ['nproc=100', 'nofile=1024:2048', 'core=-1', 'nproc=200:300'] });
  t.deepEqual(spec.TaskTemplate.ContainerSpec.Ulimits, [
    { Name: 'core', Soft: -1, Hard: -1 },
    { Name: 'nofile', Soft: 1024, Hard: 2048 },
    { Name: 'nproc', Soft: 200, Hard: 300 },
  ]);
  t.false('Ulimits' in specFromFlags('busybox', [], none).TaskTemplate.ContainerSpec);
  t.deepEqual(parseUlimit(' stack=8192:-1 '), { Name: 'stack', Soft: 8192, Hard: -1 });
  t.throws(() => parseUlimit('nofile'), { message: 'invalid --ulimit "nofile": use NAME=SOFT[:HARD], e.g. nofile=1024:2048' });
  t.throws(() => parseUlimit('nofile=1k'), { message: /invalid --ulimit "nofile=1k": use NAME=SOFT\[:HARD\]/ });
  t.throws(() => parseUlimit('nofile=1:2:3'), { message: /use NAME=SOFT\[:HARD\]/ });
  t.throws(() => parseUlimit('files=10'), { message: /^invalid --ulimit "files=10": "files" is not a ulimit name \(core, cpu, / });
  t.throws(() => parseUlimit('nofile=2048:1024'), { message: 'invalid --ulimit "nofile=2048:1024": the soft limit 2048 is above the hard limit 1024' });
  t.throws(() => parseUlimit('nofile=-2'), { message: /"nofile=-2": -2 is not a whole number \(or -1 for unlimited\)/ });
  t.throws(() => specFromFlags('busybox', [], { ...none, ulimit: ['nofile=9:1'] }), { message: /^invalid --ulimit "nofile=9:1"/ });
});

test('update: --ulimit-rm removes by name, then --ulimit-add adds or replaces by name (sorted, as Docker); removing the last leaves no field', (t) => {
  const current: ServiceSpecDocument = { TaskTemplate: { ContainerSpec: { Image: 'busybox', Ulimits: [{ Name: 'nproc', Soft: 10, Hard: 10 }, { Name: 'nofile', Soft: 1, Hard: 2 }] } } };
  const c = updatedSpec(current, { ...noUpdate, ulimitRm: ['nproc'], ulimitAdd: ['nofile=100:200', 'core=0'] }).TaskTemplate.ContainerSpec;
  t.deepEqual(c.Ulimits, [{ Name: 'core', Soft: 0, Hard: 0 }, { Name: 'nofile', Soft: 100, Hard: 200 }]);
  t.is(current.TaskTemplate.ContainerSpec.Ulimits?.length, 2, 'the current spec is not changed in place');
  t.deepEqual(updatedSpec(current, noUpdate).TaskTemplate.ContainerSpec.Ulimits, current.TaskTemplate.ContainerSpec.Ulimits, 'no ulimit flag: unchanged (order too)');
  t.false('Ulimits' in updatedSpec(current, { ...noUpdate, ulimitRm: ['nproc', 'nofile'] }).TaskTemplate.ContainerSpec);
  t.throws(() => updatedSpec(current, { ...noUpdate, ulimitRm: ['files'] }), { message: /^invalid --ulimit-rm "files": not a ulimit name/ });
  t.throws(() => updatedSpec(current, { ...noUpdate, ulimitAdd: ['nofile=5:1'] }), { message: /^invalid --ulimit-add "nofile=5:1": the soft limit 5 is above the hard limit 1/ });
});

test('update: --mount-add replaces the mount at its target, --mount-rm removes by target; cap add/drop move between lists', (t) => {
  const current: ServiceSpecDocument = {
    TaskTemplate: { ContainerSpec: { Image: 'busybox', Mounts: [{ Type: 'volume', Source: 'a', Target: '/a' }, { Type: 'tmpfs', Target: '/t' }], CapabilityDrop: ['NET_RAW'] } },
  };
  const spec = updatedSpec(current, { ...noUpdate, mountAdd: ['type=volume,source=b,target=/a'], mountRm: ['/t'], capAdd: ['NET_RAW'], capDrop: ['CHOWN'] });
  const c = spec.TaskTemplate.ContainerSpec;
  t.deepEqual(c.Mounts, [{ Type: 'volume', Source: 'b', Target: '/a' }]);
  t.deepEqual(c.CapabilityAdd, ['NET_RAW']);
  t.deepEqual(c.CapabilityDrop, ['CHOWN']);
  t.deepEqual(current.TaskTemplate.ContainerSpec.Mounts?.length, 2, 'the current spec is not changed in place');
});

test('--network: a name, or the long form with aliases; update adds (replacing the same target) and removes by target', (t) => {
  t.deepEqual(parseNetwork('web'), { Target: 'web' });
  t.deepEqual(parseNetwork('name=web,alias=w1,alias=w2'), { Target: 'web', Aliases: ['w1', 'w2'] });
  t.deepEqual(parseNetwork('target=web'), { Target: 'web' });
  t.throws(() => parseNetwork('alias=w1'), { message: 'invalid --network "alias=w1": name is required' });
  t.throws(() => parseNetwork('name=web,driver-opt=x=y'), { message: /unknown field "driver-opt"/ });
  t.throws(() => parseNetwork('a,b'), { message: /a network name or id/ });

  const spec = specFromFlags('busybox', [], { ...none, network: ['front', 'name=back,alias=db'] });
  t.deepEqual(spec.TaskTemplate.Networks, [{ Target: 'front' }, { Target: 'back', Aliases: ['db'] }]);
  t.is(specFromFlags('busybox', [], none).TaskTemplate.Networks, undefined);

  // The service stores ids; update's --network-rm is given them (the command looks names up).
  const current: ServiceSpecDocument = { TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Networks: [{ Target: 'id-front' }, { Target: 'id-back', Aliases: ['db'] }] } };
  const updated = updatedSpec(current, { ...noUpdate, networkAdd: ['name=id-back,alias=store', 'extra'], networkRm: ['front', 'id-front'] });
  t.deepEqual(updated.TaskTemplate.Networks, [{ Target: 'id-back', Aliases: ['store'] }, { Target: 'extra' }]);
  t.deepEqual(current.TaskTemplate.Networks?.length, 2, 'the current spec is left as it was');
  t.deepEqual(updatedSpec(current, noUpdate).TaskTemplate.Networks, current.TaskTemplate.Networks);
});

test('--publish: the short syntax (PUBLISHED:TARGET[/PROTOCOL], or TARGET alone to have one picked) and the long one; bad ones refused naming the flag', (t) => {
  t.deepEqual(parsePublish('8080:80'), { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' });
  t.deepEqual(parsePublish('53:53/udp'), { Protocol: 'udp', TargetPort: 53, PublishedPort: 53, PublishMode: 'ingress' });
  t.deepEqual(parsePublish('80'), { Protocol: 'tcp', TargetPort: 80, PublishMode: 'ingress' }, 'no published port: the leader picks one');
  t.deepEqual(parsePublish('9000/SCTP'), { Protocol: 'sctp', TargetPort: 9000, PublishMode: 'ingress' });
  t.deepEqual(parsePublish('published=8080,target=80,protocol=udp,mode=host'), { Protocol: 'udp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'host' });
  t.deepEqual(parsePublish('target=80'), { Protocol: 'tcp', TargetPort: 80, PublishMode: 'ingress' });
  t.deepEqual(parsePublish('mode=host, target=80 ,published=0'), { Protocol: 'tcp', TargetPort: 80, PublishMode: 'host' });

  t.throws(() => parsePublish('published=8080'), { message: 'invalid --publish "published=8080": target is required' });
  t.throws(() => parsePublish('8080:0'), { message: /invalid --publish "8080:0": target "0" is not a port \(1-65535\)/ });
  t.throws(() => parsePublish('70000:80'), { message: /published "70000" is not a port/ });
  t.throws(() => parsePublish('http'), { message: /target "http" is not a port/ });
  t.throws(() => parsePublish('8080:80/icmp'), { message: /protocol is tcp, udp or sctp/ });
  t.throws(() => parsePublish('127.0.0.1:8080:80'), { message: /a host IP cannot be given/ });
  t.throws(() => parsePublish('8080-8081:80-81'), { message: /port ranges are not supported/ });
  t.throws(() => parsePublish('target=80,mode=mesh'), { message: /mode is ingress or host/ });
  t.throws(() => parsePublish('target=80,ip=1.2.3.4'), { message: /unknown field "ip"/ });
  t.throws(() => parsePublish('target=', '--publish-add'), { message: /^invalid --publish-add "target=": target needs a value/ });

  const spec = specFromFlags('nginx', [], { ...none, publish: ['8080:80', 'published=443,target=8443', '9090'], endpointMode: 'vip' });
  t.deepEqual(spec.EndpointSpec, {
    Mode: 'vip',
    Ports: [
      { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
      { Protocol: 'tcp', TargetPort: 8443, PublishedPort: 443, PublishMode: 'ingress' },
      { Protocol: 'tcp', TargetPort: 9090, PublishMode: 'ingress' },
    ],
  });
  t.is(specFromFlags('nginx', [], none).EndpointSpec, undefined, 'no --publish: no EndpointSpec (the daemon defaults it)');
  t.deepEqual(specFromFlags('nginx', [], { ...none, endpointMode: 'dnsrr' }).EndpointSpec, { Mode: 'dnsrr' });
  t.throws(() => specFromFlags('nginx', [], { ...none, endpointMode: 'rr' }), { message: /--endpoint-mode "rr": use vip or dnsrr/ });
  t.deepEqual(specFromFlags('nginx', [], { ...none, publish: ['8080:80'], lbStrategy: 'load-aware' }).EndpointSpec, { Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' }], LbStrategy: 'load-aware' });
  t.throws(() => specFromFlags('nginx', [], { ...none, lbStrategy: 'fastest' }), { message: /--lb-strategy "fastest": use round-robin, random, load-aware/ });
});

test('update: --publish-rm removes by target port (and protocol), or by published=; --publish-add adds, replacing a port on the same number', (t) => {
  const current: ServiceSpecDocument = {
    TaskTemplate: { ContainerSpec: { Image: 'nginx' } },
    EndpointSpec: {
      Mode: 'vip',
      Ports: [
        { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
        { Protocol: 'udp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
        { Protocol: 'tcp', TargetPort: 443, PublishMode: 'ingress' },
        { Protocol: 'tcp', TargetPort: 9000, PublishedPort: 9000, PublishMode: 'host' },
      ],
    },
  };
  const ports = (f: Partial<UpdateFlags>): string[] =>
    (updatedSpec(current, { ...noUpdate, ...f }).EndpointSpec?.Ports ?? []).map((p) => `${p.PublishedPort ?? 0}:${p.TargetPort}/${p.Protocol ?? ''}/${p.PublishMode ?? ''}`);
  t.deepEqual(ports({}), ['8080:80/tcp/ingress', '8080:80/udp/ingress', '0:443/tcp/ingress', '9000:9000/tcp/host'], 'no flag: the ports as they were');
  t.deepEqual(ports({ publishRm: ['80'] }), ['8080:80/udp/ingress', '0:443/tcp/ingress', '9000:9000/tcp/host'], 'by target: tcp unless a protocol is given');
  t.deepEqual(ports({ publishRm: ['80/udp', '443'] }), ['8080:80/tcp/ingress', '9000:9000/tcp/host']);
  t.deepEqual(ports({ publishRm: ['published=9000'] }), ['8080:80/tcp/ingress', '8080:80/udp/ingress', '0:443/tcp/ingress']);
  t.deepEqual(ports({ publishRm: ['8080:81'] }), ['8080:80/tcp/ingress', '8080:80/udp/ingress', '0:443/tcp/ingress', '9000:9000/tcp/host'], 'both given: both must match');
  t.deepEqual(ports({ publishAdd: ['8080:8000', '5000'] }), ['8080:80/udp/ingress', '0:443/tcp/ingress', '9000:9000/tcp/host', '8080:8000/tcp/ingress', '0:5000/tcp/ingress'], 'the port on 8080/tcp is replaced');
  t.deepEqual(ports({ publishAdd: ['443', '443'] }), ['8080:80/tcp/ingress', '8080:80/udp/ingress', '9000:9000/tcp/host', '0:443/tcp/ingress'], 'the same picked port is not added twice');
  t.deepEqual(ports({ publishRm: ['80', '80/udp', '443', '9000'] }), []);
  t.is(current.EndpointSpec?.Ports?.length, 4, 'the current spec is not changed in place');
  t.deepEqual(updatedSpec({ TaskTemplate: { ContainerSpec: { Image: 'x' } } }, { ...noUpdate, publishAdd: ['80:80'] }).EndpointSpec, { Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 80, PublishMode: 'ingress' }] });
  t.throws(() => updatedSpec(current, { ...noUpdate, publishRm: ['mode=host'] }), { message: /--publish-rm "mode=host": give the target port, or published=PORT/ });
});

test('service ls PORTS: the ingress ports as allocated, *:PUBLISHED->TARGET/PROTOCOL; host-mode ports are left to service ps', (t) => {
  const doc = (ports: NonNullable<ServiceDocument['Endpoint']['Ports']>): ServiceDocument => ({
    ID: 'abcdefabcdefabcdef',
    Version: { Index: 1 },
    CreatedAt: '',
    UpdatedAt: '',
    Spec: { Name: 'web', Labels: {}, TaskTemplate: { ContainerSpec: { Image: 'nginx:1@sha256:00' } }, Mode: { Replicated: { Replicas: 2 } }, EndpointSpec: { Mode: 'vip' } },
    Endpoint: { Spec: { Mode: 'vip' }, Ports: ports },
    ServiceStatus: { RunningTasks: 1, DesiredTasks: 2, CompletedTasks: 0 },
  });
  const row = serviceRow(
    doc([
      { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
      { Protocol: 'udp', TargetPort: 53, PublishedPort: 30000, PublishMode: 'ingress' },
      { Protocol: 'tcp', TargetPort: 9000, PublishedPort: 9000, PublishMode: 'host' },
    ]),
  );
  t.is(row.Ports, '*:8080->80/tcp, *:30000->53/udp');
  t.like(row, { ID: 'abcdefabcdef', Replicas: '1/2', Image: 'nginx:1' });
  t.is(serviceRow(doc([])).Ports, '');
});

test('--secret and --config: a name, or Docker\'s CSV (source, target, uid, gid, mode with Docker\'s octal reading); bad ones refused naming the flag', (t) => {
  t.deepEqual(parseFileReference('secret', 'db-password'), { SecretName: 'db-password' });
  t.deepEqual(parseFileReference('secret', 'source=db,target=pw.txt,uid=1000,gid=1000,mode=0400'), { SecretName: 'db', File: { Name: 'pw.txt', UID: '1000', GID: '1000', Mode: 0o400 } });
  t.deepEqual(parseFileReference('config', 'src=nginx,target=/etc/nginx/nginx.conf'), { ConfigName: 'nginx', File: { Name: '/etc/nginx/nginx.conf' } });
  t.is(parseFileReference('secret', 'source=a,mode=420').File?.Mode, 420, 'no leading 0: decimal, as Docker reads it');
  t.is(parseFileReference('secret', 'source=a,mode=0o440').File?.Mode, 0o440);
  const bad: Array<[string, RegExp]> = [
    ['target=x', /^invalid --secret "target=x": the secret name \(source\) is required$/],
    ['source=a,mode=999', /mode must be permission bits/],
    ['source=a,uid=root', /uid must be a numeric id/],
    ['source=a,driver=x', /unknown field "driver"/],
    ['source=a,ro', /field "ro" must be a key=value pair/],
  ];
  for (const [value, message] of bad) t.throws(() => parseFileReference('secret', value), { message }, value);
  const spec = specFromFlags('busybox', [], { ...none, secret: ['a', 'source=b,target=b.txt'], config: ['c'] });
  t.deepEqual(spec.TaskTemplate.ContainerSpec.Secrets, [{ SecretName: 'a' }, { SecretName: 'b', File: { Name: 'b.txt' } }]);
  t.deepEqual(spec.TaskTemplate.ContainerSpec.Configs, [{ ConfigName: 'c' }]);
});

test('update: --secret-rm (by name or id) comes first, then --secret-add; the same for configs; other flags leave them alone', (t) => {
  const current: ServiceSpecDocument = {
    Name: 'web',
    TaskTemplate: {
      ContainerSpec: {
        Image: 'busybox',
        Secrets: [
          { File: { Name: 'a', UID: '0', GID: '0', Mode: 0o444 }, SecretID: 'ida', SecretName: 'a' },
          { File: { Name: 'b', UID: '0', GID: '0', Mode: 0o444 }, SecretID: 'idb', SecretName: 'b' },
        ],
        Configs: [{ File: { Name: '/c', UID: '0', GID: '0', Mode: 0o444 }, ConfigID: 'idc', ConfigName: 'c' }],
      },
    },
  };
  const next = updatedSpec(current, { ...noUpdate, secretRm: ['ida', 'b'], secretAdd: ['source=b,target=other'], configRm: ['c'], configAdd: ['d'] });
  t.deepEqual(next.TaskTemplate.ContainerSpec.Secrets, [{ SecretName: 'b', File: { Name: 'other' } }]);
  t.deepEqual(next.TaskTemplate.ContainerSpec.Configs, [{ ConfigName: 'd' }]);
  t.deepEqual(updatedSpec(current, { ...noUpdate, image: 'nginx' }).TaskTemplate.ContainerSpec.Secrets, current.TaskTemplate.ContainerSpec.Secrets);
});
