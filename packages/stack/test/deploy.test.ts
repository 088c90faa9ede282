// Deploy, redeploy, prune and rm against a fake backend that keeps objects as the daemon does (network ids in
// service specs, images pinned to a digest), and records every write so a test can say "nothing changed".

import test from 'ava';
import type { NetworkSpec, ServiceSpec } from '@swarm/store';
import { convertStack, deployStack, listStacks, removeStack, sameSpec, StackError, type ComposeModel, type ExistingObject, type ExistingService, type FileObjectBackend, type FileObjectSpec, type ServiceWriteOptions, type StackBackend } from '../src/index.js';

class FakeFileObjects implements FileObjectBackend {
  readonly objects = new Map<string, ExistingObject & { data: Uint8Array }>();
  constructor(
    private readonly kind: string,
    private readonly writes: string[],
    private readonly ids: () => string,
  ) {}
  async list(): Promise<ExistingObject[]> {
    // Like the API: a config's data is shown, a secret's never.
    return [...this.objects.values()].map(({ id, name, labels, data }) => (this.kind === 'config' ? { id, name, labels, data } : { id, name, labels }));
  }
  async create(spec: FileObjectSpec): Promise<string> {
    const id = this.ids();
    this.objects.set(id, { id, name: spec.name, labels: spec.labels, data: spec.data });
    this.writes.push(`create ${this.kind} ${spec.name}`);
    return id;
  }
  async remove(id: string): Promise<void> {
    const o = this.objects.get(id);
    this.objects.delete(id);
    this.writes.push(`remove ${this.kind} ${o?.name ?? id}`);
  }
}

class FakeCluster implements StackBackend {
  readonly writes: string[] = [];
  readonly services = new Map<string, ExistingService>();
  readonly networks = new Map<string, ExistingObject & { spec?: NetworkSpec }>();
  /** How many times removeNetwork refuses (tasks still stopping) before it works. */
  networkRefusals = 0;
  private next = 1;
  readonly id = (): string => `id${this.next++}`;
  readonly secrets = new FakeFileObjects('secret', this.writes, this.id);
  readonly configs = new FakeFileObjects('config', this.writes, this.id);

  async listServices(): Promise<ExistingService[]> {
    return [...this.services.values()].map((s) => structuredClone(s));
  }
  /** The name the daemon records for an image (a tag-less one gets `:latest`; hosts are not modelled here). */
  imageName(image: string): string {
    return image.slice(image.lastIndexOf('/') + 1).includes(':') ? image : `${image}:latest`;
  }
  /** As the daemon: network names become ids, the image is pinned to a digest. */
  private stored(spec: ServiceSpec): ServiceSpec {
    const s = structuredClone(spec);
    s.taskTemplate.networks = s.taskTemplate.networks.map((n) => {
      const found = [...this.networks.values()].find((x) => x.id === n.target || x.name === n.target);
      if (found === undefined) throw new Error(`network ${n.target} not found`);
      return { target: found.id, aliases: n.aliases };
    });
    const c = s.taskTemplate.containerSpec;
    // The daemon pins the familiar reference with its tag: `worker` becomes `worker:latest@sha256:…`.
    if (!c.image.includes('@')) c.image = `${this.imageName(c.image)}@sha256:${'a'.repeat(64)}`;
    return s;
  }
  readonly resolveImage: string[] = [];
  async createService(spec: ServiceSpec, opts?: ServiceWriteOptions): Promise<{ id: string; warnings: string[] }> {
    this.resolveImage.push(`${spec.name} ${opts?.resolveImage ?? '-'}`);
    const id = this.id();
    this.services.set(id, { id, version: 1, spec: this.stored(spec) });
    this.writes.push(`create service ${spec.name}`);
    return { id, warnings: [] };
  }
  async updateService(id: string, version: number, spec: ServiceSpec, opts?: ServiceWriteOptions): Promise<string[]> {
    this.resolveImage.push(`${spec.name} ${opts?.resolveImage ?? '-'}`);
    const s = this.services.get(id);
    if (s === undefined || s.version !== version) throw new Error('update out of sequence');
    this.services.set(id, { id, version: version + 1, spec: this.stored(spec) });
    this.writes.push(`update service ${spec.name}`);
    return [];
  }
  async removeService(id: string): Promise<void> {
    this.writes.push(`remove service ${this.services.get(id)?.spec.name ?? id}`);
    this.services.delete(id);
  }
  async listNetworks(): Promise<ExistingObject[]> {
    return [...this.networks.values()].map(({ id, name, labels }) => ({ id, name, labels }));
  }
  async createNetwork(spec: NetworkSpec): Promise<string> {
    const id = this.id();
    this.networks.set(id, { id, name: spec.name, labels: spec.labels, spec });
    this.writes.push(`create network ${spec.name}`);
    return id;
  }
  async removeNetwork(id: string): Promise<void> {
    if (this.networkRefusals > 0) {
      this.networkRefusals--;
      throw new Error('network still has tasks attached');
    }
    this.writes.push(`remove network ${this.networks.get(id)?.name ?? id}`);
    this.networks.delete(id);
  }
}

const files: Record<string, string> = { '/s/pw.txt': 'hunter2' };
const readFile = (p: string): Uint8Array => {
  const f = files[p];
  if (f === undefined) throw new Error(`ENOENT ${p}`);
  return Buffer.from(f);
};

const shop = (): ComposeModel => ({
  services: {
    web: { image: 'nginx:1.27', ports: ['8080:80'], networks: ['front'], deploy: { replicas: 2 } },
    api: { image: 'api:1', environment: { MODE: 'prod' }, networks: ['front', 'back'], secrets: ['pw'] },
    worker: { image: 'worker' },
  },
  networks: { front: {}, back: {} },
  secrets: { pw: { file: 'pw.txt' } },
});

const convert = (model: ComposeModel, ns = 'shop') => convertStack(ns, model, { workingDir: '/s', readFile });
const deploy = (cluster: StackBackend, model: ComposeModel, prune = false, log?: (l: string) => void) => deployStack(cluster, convert(model), { prune, withRegistryAuth: false, ...(log === undefined ? {} : { log }) });

test('a first deploy creates the networks, secrets and services, with Docker\'s progress lines', async (t) => {
  const cluster = new FakeCluster();
  const lines: string[] = [];
  const r = await deploy(cluster, shop(), false, (l) => lines.push(l));
  t.deepEqual(lines, [
    'Creating network shop_back',
    'Creating network shop_default',
    'Creating network shop_front',
    'Creating secret shop_pw',
    'Creating service shop_api',
    'Creating service shop_web',
    'Creating service shop_worker',
  ]);
  t.deepEqual(r.servicesCreated.map((s) => s.name), ['shop_api', 'shop_web', 'shop_worker']);
  const api = [...cluster.services.values()].find((s) => s.spec.name === 'shop_api');
  const secretId = [...cluster.secrets.objects.values()].find((s) => s.name === 'shop_pw')?.id;
  t.deepEqual(api?.spec.taskTemplate.containerSpec.secrets, [{ secretId: secretId ?? 'missing', secretName: 'shop_pw', target: 'pw', uid: '0', gid: '0', mode: 0o444 }]);
  t.deepEqual(api?.spec.taskTemplate.networks.map((n) => cluster.networks.get(n.target)?.name), ['shop_back', 'shop_front']);
});

test('deploying the same file twice changes nothing the second time (pinned digests and network ids included)', async (t) => {
  const cluster = new FakeCluster();
  await deploy(cluster, shop());
  const before = cluster.writes.length;
  const lines: string[] = [];
  const r = await deploy(cluster, shop(), true, (l) => lines.push(l));
  t.deepEqual(cluster.writes.slice(before), []);
  t.deepEqual(lines, []);
  t.deepEqual(r.servicesUnchanged.map((s) => s.name), ['shop_api', 'shop_web', 'shop_worker']);
});

test('a redeploy updates only the services whose spec changed, and keeps their force counter', async (t) => {
  const cluster = new FakeCluster();
  await deploy(cluster, shop());
  const api = [...cluster.services.values()].find((s) => s.spec.name === 'shop_api');
  if (api === undefined) return t.fail('no api');
  api.spec.taskTemplate.forceUpdate = 3;
  const before = cluster.writes.length;
  const changed = shop();
  changed.services['api'] = { ...changed.services['api'], environment: { MODE: 'debug' } };
  const lines: string[] = [];
  const r = await deploy(cluster, changed, false, (l) => lines.push(l));
  t.deepEqual(cluster.writes.slice(before), ['update service shop_api']);
  t.deepEqual(lines, [`Updating service shop_api (id: ${api.id})`]);
  t.deepEqual(r.servicesUpdated.map((s) => s.name), ['shop_api']);
  const updated = cluster.services.get(api.id);
  t.deepEqual(updated?.spec.taskTemplate.containerSpec.env, ['MODE=debug']);
  t.is(updated?.spec.taskTemplate.forceUpdate, 3);
});

test('a new image tag is an update; the same tag the daemon pinned is not', async (t) => {
  const cluster = new FakeCluster();
  await deploy(cluster, shop());
  const before = cluster.writes.length;
  const m = shop();
  m.services['worker'] = { image: 'worker:2' };
  await deploy(cluster, m);
  t.deepEqual(cluster.writes.slice(before), ['update service shop_worker']);
});

test('--prune removes the stack\'s services the file no longer has; without it they stay', async (t) => {
  const cluster = new FakeCluster();
  await deploy(cluster, shop());
  const m = shop();
  delete m.services['worker'];
  let before = cluster.writes.length;
  await deploy(cluster, m, false);
  t.deepEqual(cluster.writes.slice(before), []);
  before = cluster.writes.length;
  const lines: string[] = [];
  const r = await deploy(cluster, m, true, (l) => lines.push(l));
  t.deepEqual(cluster.writes.slice(before), ['remove service shop_worker']);
  t.deepEqual(lines, ['Removing service shop_worker']);
  t.deepEqual(r.servicesRemoved.map((s) => s.name), ['shop_worker']);
});

test('prune never touches another stack\'s services', async (t) => {
  const cluster = new FakeCluster();
  await deploy(cluster, shop());
  await deployStack(cluster, convert({ services: { db: { image: 'db:1' } } }, 'other'), { prune: true, withRegistryAuth: false });
  t.deepEqual((await listStacks(cluster)).map((s) => [s.name, s.services]), [
    ['other', 1],
    ['shop', 3],
  ]);
});

test('a missing external network, secret or config stops the deploy before any change', async (t) => {
  const cases: Array<[ComposeModel, RegExp]> = [
    [{ services: { a: { image: 'x', networks: ['ext'] }, b: { image: 'y' } }, networks: { ext: { external: true } } }, /network "ext" is declared as external/],
    [{ services: { a: { image: 'x', secrets: ['s'] }, b: { image: 'y' } }, secrets: { s: { external: true, name: 'prod-secret' } } }, /secret "prod-secret" is declared as external/],
    [{ services: { a: { image: 'x', configs: ['c'] } }, configs: { c: { external: true } } }, /config "c" is declared as external/],
  ];
  for (const [model, message] of cases) {
    const cluster = new FakeCluster();
    const err = await t.throwsAsync(deploy(cluster, model), { instanceOf: StackError, message });
    t.is(err?.code, 'not_found');
    t.deepEqual(cluster.writes, [], 'nothing was written');
  }
});

test('an external network that exists is used by name and never created', async (t) => {
  const cluster = new FakeCluster();
  await cluster.createNetwork({ name: 'ext', labels: {}, driver: 'overlay', driverOptions: {}, ipam: { driver: 'default', configs: [] }, internal: false, attachable: false, ingress: false });
  const before = cluster.writes.length;
  await deploy(cluster, { services: { a: { image: 'x', networks: ['ext'] } }, networks: { ext: { external: true } } });
  t.deepEqual(cluster.writes.slice(before), ['create service shop_a']);
});

test('a service that would change between replicated and global stops the deploy before any change', async (t) => {
  const cluster = new FakeCluster();
  await deploy(cluster, shop());
  const m = shop();
  m.services['worker'] = { image: 'worker:1', deploy: { mode: 'global' } };
  m.services['new'] = { image: 'new:1' };
  const before = cluster.writes.length;
  const err = await t.throwsAsync(deploy(cluster, m), { instanceOf: StackError });
  t.is(err?.path, 'services.worker.deploy.mode');
  t.deepEqual(cluster.writes.slice(before), []);
});

test('a backend without secrets refuses a stack that uses them, before any change', async (t) => {
  const cluster = new FakeCluster();
  const noSecrets: StackBackend = {
    listServices: () => cluster.listServices(),
    createService: (s) => cluster.createService(s),
    updateService: (id, v, s) => cluster.updateService(id, v, s),
    removeService: (id) => cluster.removeService(id),
    listNetworks: () => cluster.listNetworks(),
    createNetwork: (s) => cluster.createNetwork(s),
    removeNetwork: (id) => cluster.removeNetwork(id),
  };
  await t.throwsAsync(deploy(noSecrets, shop()), { instanceOf: StackError, message: /secrets are not supported yet/ });
  t.deepEqual(cluster.writes, []);
  await deploy(noSecrets, { services: { a: { image: 'x' } } });
  t.deepEqual(cluster.writes, ['create network shop_default', 'create service shop_a']);
});

test('rm removes the stack\'s services, then networks (waiting while they are refused), secrets and configs', async (t) => {
  const cluster = new FakeCluster();
  await deploy(cluster, shop());
  await deployStack(cluster, convert({ services: { db: { image: 'db:1' } } }, 'other'), { prune: false, withRegistryAuth: false });
  cluster.networkRefusals = 2;
  const before = cluster.writes.length;
  const lines: string[] = [];
  let slept = 0;
  const r = await removeStack(cluster, 'shop', { log: (l) => lines.push(l), sleep: async (ms) => void (slept += ms) });
  t.deepEqual(cluster.writes.slice(before), [
    'remove service shop_api',
    'remove service shop_web',
    'remove service shop_worker',
    'remove network shop_back',
    'remove network shop_default',
    'remove network shop_front',
    'remove secret shop_pw',
  ]);
  t.deepEqual(lines, ['Removing service shop_api', 'Removing service shop_web', 'Removing service shop_worker', 'Removing network shop_back', 'Removing network shop_default', 'Removing network shop_front', 'Removing secret shop_pw']);
  t.true(slept > 0);
  t.deepEqual(r.services, ['shop_api', 'shop_web', 'shop_worker']);
  t.deepEqual((await listStacks(cluster)).map((s) => s.name), ['other']);
  t.true([...cluster.networks.values()].some((n) => n.name === 'other_default'), "the other stack's network stays");
  await t.throwsAsync(removeStack(cluster, 'shop'), { instanceOf: StackError, message: 'nothing found in stack: shop' });
});

test('rm gives up on a network that stays refused past the deadline, with the backend\'s error', async (t) => {
  const cluster = new FakeCluster();
  await deploy(cluster, { services: { a: { image: 'x' } } });
  cluster.networkRefusals = 1_000;
  let now = 0;
  await t.throwsAsync(removeStack(cluster, 'shop', { networkWaitMs: 1_000, now: () => now, sleep: async (ms) => void (now += ms) }), { message: /still has tasks/ });
});

test('--resolve-image: always pins on every write, changed only when the image changed, never not at all', async (t) => {
  const cluster = new FakeCluster();
  const m = (image: string, env: string): ComposeModel => ({ services: { a: { image, environment: [env] } } });
  const run = (model: ComposeModel, resolveImage: 'always' | 'changed' | 'never') => deployStack(cluster, convert(model), { prune: false, withRegistryAuth: false, resolveImage });
  await run(m('x:1', 'A=1'), 'changed');
  await run(m('x:1', 'A=2'), 'changed');
  await run(m('x:2', 'A=2'), 'changed');
  await run(m('x:2', 'A=3'), 'always');
  await run(m('x:3', 'A=3'), 'never');
  t.deepEqual(cluster.resolveImage, ['shop_a always', 'shop_a never', 'shop_a always', 'shop_a always', 'shop_a never']);
});

test('a published port another service holds, in or out of the stack, stops the deploy before any change', async (t) => {
  const cluster = new FakeCluster();
  await deployStack(cluster, convert({ services: { lb: { image: 'x', ports: ['8080:80'] } } }, 'other'), { prune: false, withRegistryAuth: false });
  const before = cluster.writes.length;
  const outside = await t.throwsAsync(deploy(cluster, { services: { a: { image: 'x' }, web: { image: 'x', ports: ['8080:80'] } } }), { instanceOf: StackError });
  t.is(outside?.message, 'services.web.ports: port 8080/tcp is already in use by service other_lb: publish another');
  const inside = await t.throwsAsync(deploy(cluster, { services: { a: { image: 'x', ports: ['9090:80'] }, b: { image: 'x', ports: [{ target: 80, published: 9090, mode: 'host' }] } } }), { instanceOf: StackError });
  t.is(inside?.path, 'services.b.ports');
  t.deepEqual(cluster.writes.slice(before), []);
  // Host mode on both sides is no clash (each node runs one task per host port), and a service keeps its own ports.
  await deploy(cluster, { services: { a: { image: 'x', ports: [{ target: 80, published: 7070, mode: 'host' }] }, b: { image: 'x', ports: [{ target: 81, published: 7070, mode: 'host' }] } } });
  await deploy(cluster, { services: { a: { image: 'x', ports: [{ target: 80, published: 7070, mode: 'host' }] }, b: { image: 'x', ports: [{ target: 81, published: 7070, mode: 'host' }] } } });
  t.pass();
});

test('--prune removes first, so a port a pruned service held can go to a new one in the same deploy', async (t) => {
  const cluster = new FakeCluster();
  await deploy(cluster, { services: { old: { image: 'x', ports: ['8080:80'] } } });
  const before = cluster.writes.length;
  await deploy(cluster, { services: { new: { image: 'x', ports: ['8080:80'] } } }, true);
  t.deepEqual(cluster.writes.slice(before), ['remove service shop_old', 'create service shop_new']);
});

test('a backend that finds an image reference bad stops the deploy before any change, naming the service\'s image key', async (t) => {
  const cluster = new FakeCluster();
  Object.assign(cluster, { checkImage: (image: string) => (image === 'Bad:Image' ? 'repository name must be lowercase' : null) });
  const err = await t.throwsAsync(deploy(cluster, { services: { a: { image: 'x' }, b: { image: 'Bad:Image' } } }), { instanceOf: StackError });
  t.is(err?.message, 'services.b.image: repository name must be lowercase');
  t.deepEqual(cluster.writes, []);
});

test('a config whose bytes the file changed stops the deploy before any change; the same bytes are no change', async (t) => {
  const cluster = new FakeCluster();
  const model = (content: string): ComposeModel => ({ services: { a: { image: 'x', configs: ['app'] } }, configs: { app: { content } } });
  await deploy(cluster, model('v1'));
  const before = cluster.writes.length;
  await deploy(cluster, model('v1'));
  t.deepEqual(cluster.writes.slice(before), []);
  const err = await t.throwsAsync(deploy(cluster, model('v2')), { instanceOf: StackError });
  t.is(err?.path, 'configs.app');
  t.regex(err?.message ?? '', /config shop_app exists with other data/);
  t.deepEqual(cluster.writes.slice(before), []);
});

test('a service of the same name outside the stack stops the deploy before any change', async (t) => {
  const cluster = new FakeCluster();
  const outside = convert({ services: { web: { image: 'x' } } }).services[0];
  if (outside === undefined) return t.fail();
  delete outside.labels['com.docker.stack.namespace'];
  outside.taskTemplate.networks = [];
  await cluster.createService(outside);
  const before = cluster.writes.length;
  const err = await t.throwsAsync(deploy(cluster, { services: { api: { image: 'x' }, web: { image: 'x' } } }), { instanceOf: StackError });
  t.is(err?.path, 'services.web');
  t.regex(err?.message ?? '', /a service named shop_web exists that is not part of stack shop/);
  t.deepEqual(cluster.writes.slice(before), []);
});

test('the redeploy diff: ulimits in another order are the same; none and an empty list are the same; a changed limit is a change', (t) => {
  const spec = convertStack('shop', { services: { web: { image: 'x', ulimits: { nproc: 10, nofile: { soft: 1, hard: 2 } } } } } as ComposeModel, { workingDir: '/' }).services[0];
  if (spec === undefined) return t.fail('no service');
  const reordered = structuredClone(spec);
  reordered.taskTemplate.containerSpec.ulimits?.reverse();
  t.true(sameSpec(spec, reordered));
  const none = structuredClone(spec);
  delete none.taskTemplate.containerSpec.ulimits;
  const empty = structuredClone(none);
  empty.taskTemplate.containerSpec.ulimits = [];
  t.true(sameSpec(none, empty));
  t.false(sameSpec(spec, none));
  const raised = structuredClone(spec);
  const first = raised.taskTemplate.containerSpec.ulimits?.[0];
  if (first !== undefined) first.hard += 1;
  t.false(sameSpec(spec, raised));
});
