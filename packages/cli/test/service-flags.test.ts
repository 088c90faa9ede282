// `service create|update|ps` flag handling without a daemon: Docker's flags to a ServiceSpec, update's -add/-rm
// lists over the current spec, and `ps --filter`; bad values are refused naming the flag.

import test from 'ava';
import type { ServiceSpecDocument, TaskDocument } from '@swarm/api/client';
import { parseMount, parseNetwork, specFromFlags, taskFilter, updatedSpec, type CreateFlags, type UpdateFlags } from '../src/service-commands.js';

const none: CreateFlags = { constraint: [], placementPref: [], env: [], label: [], containerLabel: [], mount: [], capAdd: [], capDrop: [], network: [] };
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
