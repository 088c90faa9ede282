// Docker's ServiceSpec <-> the store's: defaults as SwarmKit's, nanoseconds <-> ms, and the documents that
// `service ls|ps|inspect` print, including the task name and the running/desired counts.

import test from 'ava';
import type { Service, Task } from '@swarm/store';
import { resolveService, serviceDocument, serviceStatus, taskDocument, toServiceSpec } from '../src/services.js';
import { ApiError } from '../src/errors.js';

const meta = { version: { index: 7 }, createdAtMs: 0, updatedAtMs: 1_000 };

test('toServiceSpec fills SwarmKit defaults and converts durations from nanoseconds', (t) => {
  const spec = toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'busybox', Args: ['sleep', '1'] } } }, 'gen-name');
  t.is(spec.name, 'gen-name');
  t.deepEqual(spec.mode, { replicated: { replicas: 1 } });
  t.deepEqual(spec.taskTemplate.restartPolicy, { condition: 'any', delayMs: 5_000, maxAttempts: 0, windowMs: 0 });
  t.is(spec.taskTemplate.containerSpec.stopGracePeriodMs, 10_000);
  t.deepEqual(spec.updateConfig, { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 5_000, maxFailureRatio: 0, order: 'stop-first' });

  const global = toServiceSpec(
    {
      Name: 'agent',
      Mode: { Global: {} },
      TaskTemplate: {
        ContainerSpec: { Image: 'x', StopGracePeriod: 3_000_000_000 },
        RestartPolicy: { Condition: 'on-failure', Delay: 250_000_000, MaxAttempts: 3, Window: 60_000_000_000 },
        Placement: { Constraints: ['node.role==worker'], Preferences: [{ Spread: { SpreadDescriptor: 'node.labels.zone' } }] },
        Resources: { Reservations: { MemoryBytes: 64 * 1024 * 1024 } },
      },
    },
    'unused',
  );
  t.is(global.name, 'agent');
  t.deepEqual(global.mode, { global: {} });
  t.deepEqual(global.taskTemplate.restartPolicy, { condition: 'on-failure', delayMs: 250, maxAttempts: 3, windowMs: 60_000 });
  t.is(global.taskTemplate.containerSpec.stopGracePeriodMs, 3_000);
  t.deepEqual(global.taskTemplate.placement.preferences, [{ spread: 'node.labels.zone' }]);
  t.is(global.taskTemplate.resources.reservations.memoryBytes, 64 * 1024 * 1024);
  const both = t.throws(() => toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'x' } }, Mode: { Replicated: {}, Global: {} } }, 'n'), { instanceOf: ApiError });
  t.regex(both?.message ?? '', /Mode: give Replicated or Global, not both/);
});

test('toServiceSpec: mounts, init, read-only, capabilities and the pids limit, round trip through the document', (t) => {
  const container = {
    Image: 'busybox',
    Mounts: [
      { Type: 'volume' as const, Source: 'data', Target: '/data' },
      { Type: 'bind' as const, Source: '/srv/www', Target: '/www', ReadOnly: true },
      { Type: 'tmpfs' as const, Target: '/cache', TmpfsOptions: { SizeBytes: 1 << 20 } },
    ],
    Init: true,
    ReadOnly: true,
    CapabilityAdd: ['NET_ADMIN'],
    CapabilityDrop: ['CHOWN'],
  };
  const spec = toServiceSpec({ TaskTemplate: { ContainerSpec: container, Resources: { Limits: { Pids: 32 } } } }, 'n');
  const c = spec.taskTemplate.containerSpec;
  t.deepEqual(c.mounts[2], { type: 'tmpfs', source: '', target: '/cache', readOnly: false, tmpfsSizeBytes: 1 << 20 });
  t.true(c.init && c.readOnly);
  t.is(c.pidsLimit, 32);
  const s: Service = { id: 's1', meta, spec, previousSpec: null, specVersion: { index: 7 }, endpoint: { spec: spec.endpointSpec, ports: [], virtualIps: [] }, updateStatus: null };
  const doc = serviceDocument(s).Spec.TaskTemplate;
  t.deepEqual(doc.ContainerSpec.Mounts, container.Mounts);
  t.deepEqual(doc.ContainerSpec.CapabilityAdd, ['NET_ADMIN']);
  t.is(doc.Resources?.Limits?.Pids, 32);
  const bad = (m: object): string => t.throws(() => toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'x', Mounts: [m as never] } } }, 'n'))?.message ?? '';
  t.regex(bad({ Type: 'bind', Source: 'rel', Target: '/x' }), /Mounts\[0\]\.Source: a bind mount needs an absolute host path/);
  t.regex(bad({ Type: 'volume', Target: '/x' }), /Mounts\[0\]\.Source: a volume mount needs a volume name/);
  t.regex(bad({ Type: 'tmpfs', Source: 'x', Target: '/x' }), /takes no source/);
  const twice = t.throws(() => toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'x', Mounts: [{ Type: 'tmpfs', Target: '/x' }, { Type: 'tmpfs', Target: '/x/' }] } } }, 'n'));
  t.regex(twice?.message ?? '', /Mounts\[1\]\.Target: \/x is mounted twice/);
});

test('toServiceSpec: Ulimits in the given order, a round trip through the document; none is no field at all (as a spec stored before ulimits existed)', (t) => {
  const Ulimits = [
    { Name: 'nofile', Soft: 1024, Hard: 2048 },
    { Name: 'core', Soft: -1, Hard: -1 },
    { Name: 'nproc', Soft: 100, Hard: -1 },
  ];
  const spec = toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'busybox', Ulimits } } }, 'n');
  t.deepEqual(spec.taskTemplate.containerSpec.ulimits, [
    { name: 'nofile', soft: 1024, hard: 2048 },
    { name: 'core', soft: -1, hard: -1 },
    { name: 'nproc', soft: 100, hard: -1 },
  ]);
  const s: Service = { id: 's1', meta, spec, previousSpec: null, specVersion: { index: 7 }, endpoint: { spec: spec.endpointSpec, ports: [], virtualIps: [] }, updateStatus: null };
  const doc = serviceDocument(s);
  t.deepEqual(doc.Spec.TaskTemplate.ContainerSpec.Ulimits, Ulimits);
  t.deepEqual(toServiceSpec(doc.Spec, 'n'), spec, 'what inspect shows converts back to the same spec');
  t.false('ulimits' in toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'x' } } }, 'n').taskTemplate.containerSpec);
  t.false('ulimits' in toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'x', Ulimits: [] } } }, 'n').taskTemplate.containerSpec);
  t.false('Ulimits' in serviceDocument(service('a', 'b', 1)).Spec.TaskTemplate.ContainerSpec);
});

test('toServiceSpec: Ulimits refusals name the field: an unknown name, soft above hard, a name twice, a value below -1', (t) => {
  const refused = (u: object[]): string => t.throws(() => toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'x', Ulimits: u as never } } }, 'n'), { instanceOf: ApiError })?.message ?? '';
  t.regex(refused([{ Name: 'files', Soft: 1, Hard: 1 }]), /^TaskTemplate\.ContainerSpec\.Ulimits\[0\]\.Name: "files" is not a ulimit name \(core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack\)/);
  t.regex(refused([{ Name: 'nproc', Soft: 1, Hard: 1 }, { Name: 'nofile', Soft: 2048, Hard: 1024 }]), /^TaskTemplate\.ContainerSpec\.Ulimits\[1\]\.Soft: the soft limit 2048 is above the hard limit 1024/);
  t.regex(refused([{ Name: 'nofile', Soft: -1, Hard: 1024 }]), /Ulimits\[0\]\.Soft: the soft limit unlimited \(-1\) is above the hard limit 1024/);
  t.regex(refused([{ Name: 'nofile', Soft: 1, Hard: 1 }, { Name: 'nofile', Soft: 2, Hard: 2 }]), /^TaskTemplate\.ContainerSpec\.Ulimits\[1\]\.Name: ulimit nofile is also given by Ulimits\[0\]/);
  t.regex(refused([{ Name: 'nofile', Soft: 1, Hard: -5 }]), /^TaskTemplate\.ContainerSpec\.Ulimits\[0\]\.Hard: -5 is not a whole number \(or -1 for unlimited\)/);
  t.regex(refused([{ Name: 'stack', Soft: 0.5, Hard: 1 }]), /Ulimits\[0\]\.Soft: 0\.5 is not a whole number/);
});

function service(id: string, name: string, replicas: number): Service {
  const spec = toServiceSpec({ Name: name, TaskTemplate: { ContainerSpec: { Image: 'busybox', Command: ['sleep'], Args: ['60'] } }, Mode: { Replicated: { Replicas: replicas } } }, name);
  return { id, meta, spec, previousSpec: null, specVersion: { index: 7 }, endpoint: { spec: spec.endpointSpec, ports: [], virtualIps: [] }, updateStatus: null };
}

function task(s: Service, slot: number, state: Task['status']['state'], desired: Task['desiredState']): Task {
  return {
    id: `${s.id}-t${slot}-${state}`,
    meta,
    serviceId: s.id,
    slot,
    nodeId: 'node1',
    spec: s.spec.taskTemplate,
    specVersion: s.specVersion,
    serviceName: s.spec.name,
    desiredState: desired,
    status: { state, timestampMs: 2_000, message: state, err: state === 'failed' ? 'task: non-zero exit (3)' : '', containerStatus: null, portStatus: [] },
    networksAttachments: [],
    endpoint: null,
  };
}

test('service and task documents: Docker field names, nanoseconds, the task name, and running/desired counts', (t) => {
  const web = service('abc123', 'web', 3);
  const tasks = [task(web, 1, 'running', 'running'), task(web, 2, 'failed', 'shutdown'), task(web, 2, 'starting', 'running')];
  const doc = serviceDocument(web, serviceStatus(web, tasks));
  t.is(doc.Spec.Name, 'web');
  t.deepEqual(doc.Spec.Mode, { Replicated: { Replicas: 3 } });
  t.deepEqual(doc.Spec.TaskTemplate.ContainerSpec, { Image: 'busybox', Command: ['sleep'], Args: ['60'], StopGracePeriod: 10_000_000_000 });
  t.deepEqual(doc.ServiceStatus, { RunningTasks: 1, DesiredTasks: 3, CompletedTasks: 0 });
  const failed = taskDocument(tasks[1] as Task);
  t.is(failed.Name, 'web.2');
  t.is(failed.Status.Err, 'task: non-zero exit (3)');
  t.is(failed.DesiredState, 'shutdown');
  t.is(failed.NodeID, 'node1');
});

test('resolveService: exact id, then name, then a unique id prefix; ambiguous and unknown are errors', (t) => {
  const all = [service('abc123', 'web', 1), service('abd456', 'api', 1)];
  t.is(resolveService(all, 'api').id, 'abd456');
  t.is(resolveService(all, 'abc').id, 'abc123');
  t.is(t.throws(() => resolveService(all, 'ab'), { instanceOf: ApiError })?.code, 'ambiguous');
  t.is(t.throws(() => resolveService(all, 'db'), { instanceOf: ApiError })?.message, 'service db not found');
});

test('EndpointSpec: defaults (vip; tcp, ingress, 0 = picked), a round trip through the document, and the allocated ports in Endpoint', (t) => {
  t.deepEqual(toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'x' } } }, 'n').endpointSpec, { mode: 'vip', ports: [] });
  const ports = [
    { TargetPort: 80, PublishedPort: 8080 },
    { Name: 'dns', Protocol: 'udp' as const, TargetPort: 53 },
    { TargetPort: 9000, PublishedPort: 9000, PublishMode: 'host' as const },
  ];
  const spec = toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'x' } }, EndpointSpec: { Ports: ports } }, 'n');
  t.deepEqual(spec.endpointSpec, {
    mode: 'vip',
    ports: [
      { name: '', protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' },
      { name: 'dns', protocol: 'udp', targetPort: 53, publishedPort: 0, publishMode: 'ingress' },
      { name: '', protocol: 'tcp', targetPort: 9000, publishedPort: 9000, publishMode: 'host' },
    ],
  });
  const allocated = spec.endpointSpec.ports.map((p) => (p.publishedPort === 0 ? { ...p, publishedPort: 30000 } : p));
  const s: Service = { id: 's1', meta, spec, previousSpec: null, specVersion: { index: 7 }, endpoint: { spec: spec.endpointSpec, ports: allocated, virtualIps: [] }, updateStatus: null };
  const doc = serviceDocument(s);
  t.deepEqual(doc.Spec.EndpointSpec, {
    Mode: 'vip',
    Ports: [
      { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
      { Name: 'dns', Protocol: 'udp', TargetPort: 53, PublishMode: 'ingress' },
      { Protocol: 'tcp', TargetPort: 9000, PublishedPort: 9000, PublishMode: 'host' },
    ],
  });
  // What `service update` sends back is what inspect showed: the ports survive it unchanged.
  t.deepEqual(toServiceSpec({ ...doc.Spec }, 'n').endpointSpec, spec.endpointSpec);
  t.deepEqual(doc.Endpoint.Spec, doc.Spec.EndpointSpec);
  t.deepEqual(doc.Endpoint.Ports?.[1], { Name: 'dns', Protocol: 'udp', TargetPort: 53, PublishedPort: 30000, PublishMode: 'ingress' });
  t.deepEqual(serviceDocument(service('a', 'b', 1)).Spec.EndpointSpec, { Mode: 'vip' }, 'no ports: Docker shows the mode alone');
});

test('EndpointSpec refusals name the field: a port out of range, ingress ports in dnsrr mode, one published port twice', (t) => {
  const refused = (e: object): string => t.throws(() => toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'x' } }, EndpointSpec: e as never }, 'n'), { instanceOf: ApiError })?.message ?? '';
  t.regex(refused({ Ports: [{ TargetPort: 80 }, { TargetPort: 0 }] }), /^EndpointSpec\.Ports\[1\]\.TargetPort: 0 is not a port \(1-65535\)/);
  t.regex(refused({ Ports: [{ TargetPort: 80, PublishedPort: 70000 }] }), /^EndpointSpec\.Ports\[0\]\.PublishedPort: 70000 is not a port/);
  t.regex(refused({ Mode: 'dnsrr', Ports: [{ TargetPort: 80 }] }), /^EndpointSpec\.Ports\[0\]\.PublishMode: port published with ingress mode can't be used with dnsrr mode/);
  t.regex(refused({ Ports: [{ TargetPort: 80, PublishedPort: 8080 }, { TargetPort: 81, PublishedPort: 8080, PublishMode: 'host' }] }), /^EndpointSpec\.Ports\[1\]\.PublishedPort: port 8080\/tcp is already published by EndpointSpec\.Ports\[0\]/);
  // Host mode in dnsrr, the same port over two protocols, and one target published twice are all fine (Docker's rules).
  const ok = toServiceSpec(
    {
      TaskTemplate: { ContainerSpec: { Image: 'x' } },
      EndpointSpec: { Mode: 'dnsrr', Ports: [{ TargetPort: 53, PublishedPort: 53, PublishMode: 'host' }, { TargetPort: 53, PublishedPort: 53, Protocol: 'udp', PublishMode: 'host' }, { TargetPort: 80, PublishedPort: 81, PublishMode: 'host' }, { TargetPort: 80, PublishedPort: 82, PublishMode: 'host' }] },
    },
    'n',
  );
  t.is(ok.endpointSpec.mode, 'dnsrr');
  t.is(ok.endpointSpec.ports.length, 4);
});

test('EndpointSpec.LbStrategy: absent means round-robin and stays absent; a known one is kept and shown; others are refused naming the field', (t) => {
  const spec = (e: object) => toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'x' } }, EndpointSpec: e as never }, 'n');
  t.false('lbStrategy' in spec({ Ports: [] }).endpointSpec);
  t.is(spec({ LbStrategy: 'random' }).endpointSpec.lbStrategy, 'random');
  t.throws(() => spec({ LbStrategy: 'fastest' }), { instanceOf: ApiError, message: /^EndpointSpec\.LbStrategy: "fastest" is not one of round-robin, random, load-aware/ });
});

test('toServiceSpec: Secrets and Configs with Docker\'s defaults (File.Name = the name, UID/GID 0, mode 0444), a round trip through the document; a name twice, a path twice or a bad file name is refused naming the field', (t) => {
  const spec = toServiceSpec(
    {
      TaskTemplate: {
        ContainerSpec: {
          Image: 'busybox',
          Secrets: [{ SecretName: 'db' }, { SecretName: 'tls', SecretID: 'id-tls', File: { Name: 'cert.pem', UID: '1000', GID: '1000', Mode: 0o400 } }],
          Configs: [{ ConfigName: 'app.conf' }, { ConfigName: 'nginx', File: { Name: '/etc/nginx/nginx.conf' } }],
        },
      },
    },
    'web',
  );
  t.deepEqual(spec.taskTemplate.containerSpec.secrets, [
    { secretId: '', secretName: 'db', target: 'db', uid: '0', gid: '0', mode: 0o444 },
    { secretId: 'id-tls', secretName: 'tls', target: 'cert.pem', uid: '1000', gid: '1000', mode: 0o400 },
  ]);
  t.deepEqual(spec.taskTemplate.containerSpec.configs.map((c) => c.target), ['app.conf', '/etc/nginx/nginx.conf']);
  const doc = serviceDocument({ id: 's1', meta, spec, previousSpec: null, specVersion: { index: 7 }, endpoint: { spec: spec.endpointSpec, ports: [], virtualIps: [] }, updateStatus: null });
  t.deepEqual(doc.Spec.TaskTemplate.ContainerSpec.Secrets?.[1], { File: { Name: 'cert.pem', UID: '1000', GID: '1000', Mode: 0o400 }, SecretID: 'id-tls', SecretName: 'tls' });
  t.deepEqual(toServiceSpec(doc.Spec, 'web').taskTemplate.containerSpec.secrets, spec.taskTemplate.containerSpec.secrets);

  const refused = (c: Record<string, unknown>, message: RegExp): void => {
    const err = t.throws(() => toServiceSpec({ TaskTemplate: { ContainerSpec: { Image: 'busybox', ...c } } }, 'web'), { instanceOf: ApiError });
    t.regex(err?.message ?? '', message);
  };
  refused({ Secrets: [{ SecretName: 'a' }, { SecretName: 'a', File: { Name: 'b' } }] }, /^TaskTemplate\.ContainerSpec\.Secrets\[1\]\.SecretName: secret a is given twice$/);
  refused({ Secrets: [{ SecretName: 'a', File: { Name: 'x' } }, { SecretName: 'b', File: { Name: '/run/secrets/x' } }] }, /^TaskTemplate\.ContainerSpec\.Secrets\[1\]\.File\.Name: \/run\/secrets\/x is also the target of TaskTemplate\.ContainerSpec\.Secrets\[0\]$/);
  refused({ Configs: [{ ConfigName: 'a', File: { Name: '../etc/passwd' } }] }, /^TaskTemplate\.ContainerSpec\.Configs\[0\]\.File\.Name: "\.\.\/etc\/passwd" is not a file name or absolute file path$/);
});
