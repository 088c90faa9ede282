// The API routes over a fake backend: validation errors name the field, unknown nodes are 404 with a message,
// node references resolve by id, prefix or hostname, failures never leak a stack trace; and the client over a socket.

import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster, Config, Network, Node, NodeRole, Secret, Service, Task } from '@swarm/store';
import { defaultClusterSpec } from '@swarm/store';
import { pollUntil, silentLogger } from '@swarm/wire';
import { ApiClient } from '../src/client.js';
import { ApiError, DaemonUnreachableError } from '../src/errors.js';
import { buildApiApp, startApiServer } from '../src/server.js';
import { resolveNode } from '../src/documents.js';
import { resolveNetwork } from '../src/networks.js';
import type { ServiceSpecDocument } from '../src/services.js';
import { resolveFileObject, type FileObjectSpec } from '../src/secrets.js';
import type { ApiBackend, InfoDocument, JoinTokenDocument, MemberDocument, NetworkCreateRequest, NodeUpdateRequest, ServiceLogLine, SwarmLeaveResponse, SwarmInitRequest, SwarmInitResponse, SwarmJoinRequest, SwarmJoinResponse, VolumeCreateRequest, VolumeDocument, ImageInspectDocument, ImageProgressLine, ImageSummaryDocument } from '../src/types.js';

function node(id: string, hostname: string, role: NodeRole = 'worker'): Node {
  return {
    id,
    meta: { version: { index: 3 }, createdAtMs: 1_700_000_000_000, updatedAtMs: 1_700_000_001_000 },
    spec: { name: '', labels: { zone: 'a' }, role, availability: 'active' },
    description: {
      hostname,
      platform: { os: 'linux', arch: 'x86_64' },
      resources: { nanoCpus: 2e9, memoryBytes: 1 << 30 },
      engineVersion: '0.1.0',
      engineLabels: {},
    },
    status: { state: 'ready', addr: '10.0.0.1', message: '' },
    managerStatus: role === 'manager' ? { raftId: id, addr: '10.0.0.1:2377', leader: true, reachability: 'reachable' } : null,
    attachments: [],
  };
}

class FakeBackend implements ApiBackend {
  inits: SwarmInitRequest[] = [];
  nodes: Node[] = [node('abc111', 'alpha', 'manager'), node('abc222', 'beta'), node('xyz333', 'twin'), node('xyz444', 'twin')];
  failWith: Error | null = null;

  async info(): Promise<InfoDocument> {
    if (this.failWith) throw this.failWith;
    return {
      ID: 'peer',
      Name: 'alpha',
      ServerVersion: '0.1.0',
      OperatingSystem: 'linux',
      Architecture: 'x86_64',
      NCPU: 2,
      MemTotal: 1,
      DataDir: '/tmp',
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
    };
  }
  async initSwarm(request: SwarmInitRequest): Promise<SwarmInitResponse> {
    this.inits.push(request);
    return { NodeID: 'abc111', ClusterID: 'c1', ManagerAddr: '10.0.0.1:2377' };
  }
  joins: SwarmJoinRequest[] = [];
  async joinSwarm(request: SwarmJoinRequest): Promise<SwarmJoinResponse> {
    this.joins.push(request);
    return { NodeID: 'abc222', ClusterID: 'c1', Role: 'worker' };
  }
  async inspectSwarm(): Promise<Cluster> {
    return {
      id: 'c1',
      meta: { version: { index: 2 }, createdAtMs: 0, updatedAtMs: 0 },
      spec: defaultClusterSpec(),
      rootCA: { certPem: 'PEM', fingerprint: 'f'.repeat(64) },
      joinTokens: { worker: 'SWMTKN-1-w', manager: 'SWMTKN-1-m' },
      defaultAddrPool: ['10.0.0.0/8'],
      subnetSize: 24,
      dataPathPort: 4789,
    };
  }
  async joinToken(role: NodeRole, rotate: boolean): Promise<JoinTokenDocument> {
    return { Role: role, Token: `token-${role}-${rotate}`, ManagerAddr: '10.0.0.1:2377', Rotated: rotate };
  }
  async listNodes(): Promise<Node[]> {
    return this.nodes;
  }
  async listMembers(): Promise<MemberDocument[]> {
    return [];
  }
  updates: Array<[string, NodeUpdateRequest]> = [];
  async updateNode(ref: string, changes: NodeUpdateRequest): Promise<Node> {
    this.updates.push([ref, changes]);
    return resolveNode(this.nodes, ref);
  }
  removals: Array<[string, boolean]> = [];
  async removeNode(ref: string, force: boolean): Promise<void> {
    this.removals.push([ref, force]);
  }
  created: ServiceSpecDocument[] = [];
  async createService(spec: ServiceSpecDocument): Promise<{ ID: string; Warnings: string[] }> {
    this.created.push(spec);
    return { ID: 'svc1', Warnings: [] };
  }
  async listServices(): Promise<{ services: Service[]; tasks: Task[] }> {
    return { services: [], tasks: [] };
  }
  async updateService(): Promise<{ service: Service; warnings: string[] }> {
    throw new ApiError('not_found', 'service x not found');
  }
  async removeService(): Promise<void> {}
  async serviceLogs(ref: string, options: { tail: number | null; follow: boolean }): Promise<AsyncIterable<ServiceLogLine>> {
    if (ref !== 'web') throw new ApiError('not_found', `service ${ref} not found`);
    const count = options.tail ?? 3;
    return (async function* () {
      for (let i = 1; i <= count; i++) {
        yield { TaskID: 't1', TaskName: 'web.1', NodeID: 'n1', Hostname: 'alpha', Stream: 'stdout' as const, Timestamp: new Date(i).toISOString(), Line: `line ${i}` };
      }
    })();
  }
  volumes = new Map<string, VolumeDocument>();
  async listVolumes(): Promise<VolumeDocument[]> {
    return [...this.volumes.values()];
  }
  async createVolume(request: VolumeCreateRequest): Promise<VolumeDocument> {
    const v: VolumeDocument = { Name: request.Name, Driver: 'local', Mountpoint: `/v/${request.Name}/_data`, CreatedAt: new Date(0).toISOString(), Labels: request.Labels ?? {}, Scope: 'local', Options: {} };
    this.volumes.set(v.Name, v);
    return v;
  }
  async inspectVolume(name: string): Promise<VolumeDocument> {
    const v = this.volumes.get(name);
    if (v === undefined) throw new ApiError('not_found', `no such volume: ${name}`);
    return v;
  }
  async removeVolume(name: string): Promise<void> {
    if (name === 'busy') throw new ApiError('conflict', 'volume busy is in use');
    if (!this.volumes.delete(name)) throw new ApiError('not_found', `no such volume: ${name}`);
  }
  async login(): Promise<void> {}
  async logout(): Promise<boolean> {
    return false;
  }
  async listImages(): Promise<ImageSummaryDocument[]> {
    return [{ Repository: 'busybox', Tag: 'latest', ID: 'sha256:aa', Created: '', Size: 1 }];
  }
  async inspectImage(ref: string): Promise<ImageInspectDocument> {
    throw new ApiError('not_found', `no such image: ${ref}`);
  }
  async pullImage(ref: string, onLine: (line: ImageProgressLine) => void): Promise<void> {
    if (ref === 'missing') throw new ApiError('unavailable', 'manifest unknown: missing');
    onLine({ status: 'latest: Pulling from library/busybox' });
    onLine({ id: 'aaaaaaaaaaaa', status: 'Pull complete' });
    if (ref === 'halfway') throw new Error('connection reset by the registry');
    onLine({ status: `Status: Downloaded newer image for ${ref}` });
  }
  async pushImage(): Promise<void> {}
  async removeImage(ref: string, force: boolean): Promise<Array<{ Untagged?: string; Deleted?: string }>> {
    return force ? [{ Untagged: ref }] : [{ Untagged: ref }, { Deleted: 'sha256:aa' }];
  }
  async tagImage(): Promise<void> {}
  loadedBytes = 0;
  async loadImages(archive: NodeJS.ReadableStream): Promise<string[]> {
    for await (const chunk of archive) this.loadedBytes += (chunk as Buffer).length;
    return ['busybox:latest'];
  }
  saveCleanups = 0;
  async saveImages(): Promise<{ path: string; cleanup: () => Promise<void> }> {
    const dir = await mkdtemp(join(tmpdir(), 'swarm-api-save-'));
    const path = join(dir, 'images.tar');
    await writeFile(path, 'TARBYTES');
    return { path, cleanup: async () => void (this.saveCleanups++, await rm(dir, { recursive: true, force: true })) };
  }
  networkRequests: NetworkCreateRequest[] = [];
  networks: Network[] = [];
  tasks: Task[] = [];
  async createNetwork(request: NetworkCreateRequest): Promise<{ ID: string; Warning: string }> {
    this.networkRequests.push(request);
    if (this.networks.some((n) => n.spec.name === request.Name)) throw new ApiError('conflict', `network with name ${request.Name} already exists`);
    const id = `net${this.networks.length + 1}${'0'.repeat(20)}`;
    const config = request.IPAM?.Config?.[0];
    this.networks.push({
      id,
      meta: { version: { index: 5 }, createdAtMs: 1_700_000_000_000, updatedAtMs: 1_700_000_000_000 },
      spec: {
        name: request.Name,
        labels: request.Labels ?? {},
        driver: request.Driver ?? 'overlay',
        driverOptions: request.Options ?? {},
        ipam: { driver: 'default', configs: config === undefined ? [] : [{ subnet: config.Subnet ?? '', range: '', gateway: config.Gateway ?? '' }] },
        internal: request.Internal ?? false,
        attachable: request.Attachable ?? false,
        ingress: request.Ingress ?? false,
      },
      allocation: null,
    });
    return { ID: id, Warning: '' };
  }
  async listNetworks(): Promise<{ networks: Network[]; tasks: Task[]; nodes: Node[] }> {
    return { networks: this.networks, tasks: this.tasks, nodes: this.nodes };
  }
  async removeNetwork(ref: string): Promise<void> {
    const n = resolveNetwork(this.networks, ref);
    if (n.spec.name === 'busy') throw new ApiError('conflict', 'network busy is in use by service web');
    this.networks = this.networks.filter((x) => x.id !== n.id);
  }
  secrets: Secret[] = [];
  configs: Config[] = [];
  async createSecret(spec: FileObjectSpec): Promise<{ ID: string }> {
    if (this.secrets.some((x) => x.spec.name === spec.name)) throw new ApiError('conflict', `secret ${spec.name} already exists`);
    const id = `sec${this.secrets.length + 1}${'0'.repeat(22)}`;
    // The fake "seals" by reversing: enough to show that the document never carries the stored bytes.
    this.secrets.push({ id, meta: { version: { index: 7 }, createdAtMs: 1_700_000_000_000, updatedAtMs: 1_700_000_000_000 }, spec: { ...spec, data: spec.data.slice().reverse() } });
    return { ID: id };
  }
  async listSecrets(): Promise<Secret[]> {
    return this.secrets;
  }
  async removeSecret(ref: string): Promise<void> {
    const s = resolveFileObject('secret', this.secrets, ref);
    if (s.spec.name === 'busy') throw new ApiError('conflict', "secret 'busy' is in use by the following service: web");
    this.secrets = this.secrets.filter((x) => x.id !== s.id);
  }
  async createConfig(spec: FileObjectSpec): Promise<{ ID: string }> {
    const id = `cfg${this.configs.length + 1}${'0'.repeat(22)}`;
    this.configs.push({ id, meta: { version: { index: 8 }, createdAtMs: 1_700_000_000_000, updatedAtMs: 1_700_000_000_000 }, spec });
    return { ID: id };
  }
  async listConfigs(): Promise<Config[]> {
    return this.configs;
  }
  async removeConfig(ref: string): Promise<void> {
    const c = resolveFileObject('config', this.configs, ref);
    this.configs = this.configs.filter((x) => x.id !== c.id);
  }
  leaves: boolean[] = [];
  async leaveSwarm(force: boolean): Promise<SwarmLeaveResponse> {
    this.leaves.push(force);
    return { NodeID: 'abc111', ClusterForgot: true };
  }
}

function app(t: ExecutionContext, backend = new FakeBackend()) {
  const a = buildApiApp(backend, silentLogger());
  t.teardown(() => a.close());
  return a;
}

test('POST /swarm/init normalizes addresses and defaults the port to 2377', async (t) => {
  const backend = new FakeBackend();
  const a = app(t, backend);
  const res = await a.inject({ method: 'POST', url: '/swarm/init', payload: { listenAddr: '10.0.0.1', advertiseAddr: '10.0.0.2:4000' } });
  t.is(res.statusCode, 200);
  t.deepEqual(backend.inits, [{ listenHost: '10.0.0.1', listenPort: 2377, advertiseHost: '10.0.0.2', advertisePort: 4000 }]);
  await a.inject({ method: 'POST', url: '/swarm/init', payload: {} });
  t.deepEqual(backend.inits[1], { listenHost: '0.0.0.0', listenPort: 2377, advertiseHost: null, advertisePort: null });
});

test('POST /swarm/join parses the manager address (default port 2377) and this node\'s addresses; a wildcard manager is refused', async (t) => {
  const backend = new FakeBackend();
  const a = app(t, backend);
  const res = await a.inject({ method: 'POST', url: '/swarm/join', payload: { remoteAddr: '10.0.0.1', token: ' SWMTKN-1-x ', advertiseAddr: '10.0.0.3' } });
  t.is(res.statusCode, 200);
  t.deepEqual(backend.joins, [
    { remoteHost: '10.0.0.1', remotePort: 2377, token: 'SWMTKN-1-x', listenHost: '0.0.0.0', listenPort: 2377, advertiseHost: '10.0.0.3', advertisePort: null },
  ]);
  const wild = await a.inject({ method: 'POST', url: '/swarm/join', payload: { remoteAddr: '0.0.0.0:2377', token: 't' } });
  t.is(wild.statusCode, 400);
  const missing = await a.inject({ method: 'POST', url: '/swarm/join', payload: { remoteAddr: '10.0.0.1' } });
  t.is(missing.statusCode, 400);
  t.regex(missing.json<{ error: { message: string } }>().error.message, /missing field "token"/);
  t.is(backend.joins.length, 1);
});

test('validation errors are 400 invalid_argument and name the field', async (t) => {
  const a = app(t);
  const cases: Array<[unknown, RegExp]> = [
    [{ listenAddr: 5 }, /body\.listenAddr must be string/],
    [{ advertiseAddr: 'not-an-ip' }, /advertiseAddr "not-an-ip" is not valid/],
    [{ listenAddr: '10.0.0.1:99999' }, /listenAddr .* port 99999 is outside 1-65535/],
    [{ listenAdr: '10.0.0.1' }, /unknown field "listenAdr"/],
    [{ advertiseAddr: '0.0.0.0' }, /advertiseAddr 0\.0\.0\.0 is a wildcard/],
  ];
  for (const [payload, message] of cases) {
    const res = await a.inject({ method: 'POST', url: '/swarm/init', payload: payload as Record<string, unknown> });
    t.is(res.statusCode, 400, JSON.stringify(payload));
    const body = res.json<{ error: { code: string; message: string } }>();
    t.is(body.error.code, 'invalid_argument');
    t.regex(body.error.message, message);
  }
  const q = await a.inject({ method: 'GET', url: '/swarm/join-tokens?role=boss' });
  t.is(q.statusCode, 400);
  t.regex(q.json<{ error: { message: string } }>().error.message, /querystring\.role must be one of: worker, manager/);
  const missing = await a.inject({ method: 'GET', url: '/swarm/join-tokens' });
  t.regex(missing.json<{ error: { message: string } }>().error.message, /missing field "role"/);
  const badJson = await a.inject({ method: 'POST', url: '/swarm/init', headers: { 'content-type': 'application/json' }, payload: '{nope' });
  t.is(badJson.statusCode, 400);
  t.is(badJson.json<{ error: { code: string } }>().error.code, 'invalid_argument');
});

test('GET /nodes/:id resolves an exact id, a hostname and a unique prefix; unknown is 404, ambiguous is 409', async (t) => {
  const a = app(t);
  const get = async (ref: string) => a.inject({ method: 'GET', url: `/nodes/${ref}` });
  t.is((await get('abc222')).json<{ ID: string }>().ID, 'abc222');
  t.is((await get('alpha')).json<{ ID: string }>().ID, 'abc111');
  t.is((await get('abc1')).json<{ ID: string }>().ID, 'abc111');
  const unknown = await get('nobody');
  t.is(unknown.statusCode, 404);
  t.deepEqual(unknown.json(), { error: { code: 'not_found', message: 'no such node: nobody' } });
  const prefix = await get('abc');
  t.is(prefix.statusCode, 409);
  t.regex(prefix.json<{ error: { message: string } }>().error.message, /prefix abc is ambiguous: it matches 2 nodes \(abc111, abc222\)/);
  const twin = await get('twin');
  t.is(twin.statusCode, 409);
  t.regex(twin.json<{ error: { message: string } }>().error.message, /hostname twin matches 2 nodes/);
});

test('GET /nodes answers Docker-shaped documents sorted by hostname; ManagerStatus only on managers', async (t) => {
  const a = app(t);
  const res = await a.inject({ method: 'GET', url: '/nodes' });
  t.is(res.statusCode, 200);
  const nodes = res.json<Array<Record<string, unknown> & { ID: string; Description: { Hostname: string } }>>();
  t.deepEqual(nodes.map((n) => n.Description.Hostname), ['alpha', 'beta', 'twin', 'twin']);
  const [alpha, beta] = nodes;
  t.deepEqual(alpha?.['ManagerStatus'], { Leader: true, Reachability: 'reachable', Addr: '10.0.0.1:2377' });
  t.false(beta !== undefined && 'ManagerStatus' in beta);
  t.deepEqual(alpha?.['Spec'], { Role: 'manager', Availability: 'active', Labels: { zone: 'a' } });
  t.deepEqual(alpha?.['Status'], { State: 'ready', Addr: '10.0.0.1' });
  t.deepEqual(alpha?.['Version'], { Index: 3 });
  t.is(alpha?.['CreatedAt'], '2023-11-14T22:13:20.000Z');
});

test('backend errors keep their code and status; unexpected errors are 500 without a stack trace', async (t) => {
  const backend = new FakeBackend();
  const a = app(t, backend);
  backend.failWith = new ApiError('not_in_swarm', 'this node is not part of a swarm');
  const known = await a.inject({ method: 'GET', url: '/info' });
  t.is(known.statusCode, 503);
  t.deepEqual(known.json(), { error: { code: 'not_in_swarm', message: 'this node is not part of a swarm' } });
  backend.failWith = new TypeError('boom');
  const unknown = await a.inject({ method: 'GET', url: '/info' });
  t.is(unknown.statusCode, 500);
  t.deepEqual(unknown.json(), { error: { code: 'internal', message: 'internal error: boom' } });
  t.false(unknown.body.includes('at '), 'no stack frames');
  const route = await a.inject({ method: 'GET', url: '/nowhere' });
  t.is(route.statusCode, 404);
  t.is(route.json<{ error: { code: string } }>().error.code, 'not_found');
});

/** The API server on a socket in a fresh directory, over a fake backend, and a client for it; gone after the test. */
async function overSocket(t: ExecutionContext): Promise<{ client: ApiClient; backend: FakeBackend; socketPath: string }> {
  const root = await mkdtemp(join(tmpdir(), 'swarm-api-test-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const socketPath = join(root, 'api.sock');
  const backend = new FakeBackend();
  const server = await startApiServer({ socketPath, backend, logger: silentLogger() });
  t.teardown(() => server.close());
  return { client: new ApiClient({ socketPath }), backend, socketPath };
}

test('the client over a real socket: typed results, ApiError from error bodies, DaemonUnreachableError when nobody listens', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'swarm-api-test-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const socketPath = join(root, 'api.sock');
  const server = await startApiServer({ socketPath, backend: new FakeBackend(), logger: silentLogger() });
  t.teardown(() => server.close());
  t.is((await stat(socketPath)).mode & 0o777, 0o600);
  const client = new ApiClient({ socketPath });
  await client.ping();
  t.is((await client.joinToken('manager', true)).Token, 'token-manager-true');
  t.is((await client.inspectNode('alpha')).ID, 'abc111');
  t.is((await client.inspectSwarm()).JoinTokens.Worker, 'SWMTKN-1-w');
  const err = await t.throwsAsync(client.inspectNode('nobody'), { instanceOf: ApiError });
  t.is(err?.code, 'not_found');
  t.is(err?.message, 'no such node: nobody');
  await server.close();
  const gone = await t.throwsAsync(client.info(), { instanceOf: DaemonUnreachableError });
  t.is(gone?.message, `cannot reach the swarm daemon at ${socketPath}: is \`swarm daemon\` running?`);
});

test('node update, node rm and swarm leave: the body and query are checked and reach the backend as typed changes', async (t) => {
  const backend = new FakeBackend();
  const a = app(t, backend);
  const ok = await a.inject({ method: 'POST', url: '/nodes/alpha/update', payload: { availability: 'drain', labelAdd: { zone: 'a', ssd: '' }, labelRm: ['old'] } });
  t.is(ok.statusCode, 200, ok.body);
  t.is(ok.json<{ ID: string }>().ID, 'abc111');
  t.deepEqual(backend.updates, [['alpha', { availability: 'drain', labelAdd: { zone: 'a', ssd: '' }, labelRm: ['old'] }]]);
  const bad = await a.inject({ method: 'POST', url: '/nodes/alpha/update', payload: { availability: 'sleep' } });
  t.is(bad.statusCode, 400);
  t.regex(bad.json<{ error: { message: string } }>().error.message, /body\.availability must be one of: active, pause, drain/);
  const badKey = await a.inject({ method: 'POST', url: '/nodes/alpha/update', payload: { labelRm: ['a=b'] } });
  t.is(badKey.statusCode, 400);
  t.regex(badKey.json<{ error: { message: string } }>().error.message, /labelRm/);
  const unknown = await a.inject({ method: 'POST', url: '/nodes/alpha/update', payload: { rolee: 'manager' } });
  t.is(unknown.statusCode, 400);
  t.regex(unknown.json<{ error: { message: string } }>().error.message, /unknown field "rolee"/);
  t.is(backend.updates.length, 1, 'refused requests never reach the backend');

  t.is((await a.inject({ method: 'DELETE', url: '/nodes/beta?force=true' })).statusCode, 204);
  t.is((await a.inject({ method: 'DELETE', url: '/nodes/beta' })).statusCode, 204);
  t.is((await a.inject({ method: 'DELETE', url: '/nodes/beta?force=yes' })).statusCode, 400);
  t.deepEqual(backend.removals, [['beta', true], ['beta', false]]);

  const left = await a.inject({ method: 'POST', url: '/swarm/leave?force=true' });
  t.is(left.statusCode, 200);
  t.deepEqual(left.json(), { NodeID: 'abc111', ClusterForgot: true });
  t.deepEqual(backend.leaves, [true]);
});

test('POST /services/create checks the spec by schema and names the bad field; a good spec reaches the backend', async (t) => {
  const backend = new FakeBackend();
  const a = app(t, backend);
  const ok = await a.inject({
    method: 'POST',
    url: '/services/create',
    payload: { Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'busybox', Args: ['sleep', '60'] } }, Mode: { Replicated: { Replicas: 3 } } },
  });
  t.is(ok.statusCode, 200, ok.body);
  t.deepEqual(ok.json(), { ID: 'svc1', Warnings: [] });
  t.is(backend.created.length, 1);
  const cases: Array<[unknown, RegExp]> = [
    [{ TaskTemplate: { ContainerSpec: {} } }, /body\.TaskTemplate\.ContainerSpec: missing field "Image"/],
    [{ Name: 'bad name!', TaskTemplate: { ContainerSpec: { Image: 'x' } } }, /body\.Name must match pattern/],
    [{ TaskTemplate: { ContainerSpec: { Image: 'x' } }, Mode: { Replicated: { Replicas: -1 } } }, /body\.Mode\.Replicated\.Replicas must be >= 0/],
    [{ TaskTemplate: { ContainerSpec: { Image: 'x', Env: ['NOEQUALS'] } } }, /body\.TaskTemplate\.ContainerSpec\.Env\.0 must match pattern/],
    [{ TaskTemplate: { ContainerSpec: { Image: 'x' }, RestartPolicy: { Condition: 'sometimes' } } }, /Condition must be one of: none, on-failure, any/],
    [{ TaskTemplate: { ContainerSpec: { Image: 'x', Imagee: 'y' } } }, /unknown field "Imagee"/],
    [{ TaskTemplate: { ContainerSpec: { Image: 'x' } }, EndpointSpec: { Ports: [{ TargetPort: 70000 }] } }, /body\.EndpointSpec\.Ports\.0\.TargetPort must be <= 65535/],
    [{ TaskTemplate: { ContainerSpec: { Image: 'x' } }, EndpointSpec: { Ports: [{ PublishedPort: 8080 }] } }, /body\.EndpointSpec\.Ports\.0: missing field "TargetPort"/],
    [{ TaskTemplate: { ContainerSpec: { Image: 'x' } }, EndpointSpec: { Ports: [{ TargetPort: 80, PublishMode: 'mesh' }] } }, /PublishMode must be one of: ingress, host/],
    [{ TaskTemplate: { ContainerSpec: { Image: 'x', Ulimits: [{ Name: 'nofile', Soft: -2, Hard: 10 }] } } }, /body\.TaskTemplate\.ContainerSpec\.Ulimits\.0\.Soft must be >= -1/],
    [{ TaskTemplate: { ContainerSpec: { Image: 'x', Ulimits: [{ Name: 'nofile', Soft: 1.5, Hard: 10 }] } } }, /Ulimits\.0\.Soft must be integer/],
    [{ TaskTemplate: { ContainerSpec: { Image: 'x', Ulimits: [{ Name: 'nofile', Soft: 10 }] } } }, /body\.TaskTemplate\.ContainerSpec\.Ulimits\.0: missing field "Hard"/],
  ];
  for (const [payload, message] of cases) {
    const res = await a.inject({ method: 'POST', url: '/services/create', payload: payload as Record<string, unknown> });
    t.is(res.statusCode, 400, JSON.stringify(payload));
    t.regex(res.json<{ error: { message: string } }>().error.message, message);
  }
  t.is(backend.created.length, 1, 'refused specs never reach the backend');
});

test('service logs stream as NDJSON over the socket; an unknown service is an ApiError, not a broken stream', async (t) => {
  const { client } = await overSocket(t);
  const lines: string[] = [];
  await client.serviceLogs('web', {}, (l) => lines.push(`${l.TaskName}@${l.Hostname} | ${l.Line}`));
  t.deepEqual(lines, ['web.1@alpha | line 1', 'web.1@alpha | line 2', 'web.1@alpha | line 3']);
  const tailed: string[] = [];
  await client.serviceLogs('web', { tail: 1 }, (l) => tailed.push(l.Line));
  t.deepEqual(tailed, ['line 1']);
  const err = await t.throwsAsync(client.serviceLogs('db', {}, () => undefined), { instanceOf: ApiError });
  t.is(err?.message, 'service db not found');
});

test('volumes over the socket: create (201, Docker\'s document), ls, inspect, rm; a bad driver is refused naming the field', async (t) => {
  const { client } = await overSocket(t);
  const created = await client.createVolume({ Name: 'data', Labels: { app: 'kv' } });
  t.is(created.Mountpoint, '/v/data/_data');
  t.deepEqual((await client.listVolumes()).map((v) => v.Name), ['data']);
  t.deepEqual((await client.inspectVolume('data')).Labels, { app: 'kv' });
  await client.removeVolume('data');
  t.is((await t.throwsAsync(client.inspectVolume('data'), { instanceOf: ApiError }))?.code, 'not_found');
  t.is((await t.throwsAsync(client.removeVolume('busy'), { instanceOf: ApiError }))?.code, 'conflict');
  const bad = await t.throwsAsync(client.createVolume({ Name: 'x', Driver: 'nfs' }), { instanceOf: ApiError });
  t.is(bad?.code, 'invalid_argument');
  t.regex(bad?.message ?? '', /Driver/);
});

test('images over the socket: ls, pull progress (an error part way is the last line and rejects), rm, load streams the body, save streams a file', async (t) => {
  const { client, backend } = await overSocket(t);
  t.is((await client.listImages())[0]?.Repository, 'busybox');
  const lines: string[] = [];
  await client.pullImage('busybox', (l) => lines.push(`${l.id ?? ''} ${l.status ?? ''}`.trim()));
  t.deepEqual(lines, ['latest: Pulling from library/busybox', 'aaaaaaaaaaaa Pull complete', 'Status: Downloaded newer image for busybox']);
  const before = await t.throwsAsync(client.pullImage('missing', () => undefined), { instanceOf: ApiError });
  t.is(before?.code, 'unavailable');
  const half = await t.throwsAsync(client.pullImage('halfway', () => undefined), { instanceOf: ApiError });
  t.regex(half?.message ?? '', /connection reset/);
  t.deepEqual(await client.removeImage('busybox'), [{ Untagged: 'busybox' }, { Deleted: 'sha256:aa' }]);
  t.deepEqual(await client.loadImages(Readable.from([Buffer.alloc(100_000, 1), Buffer.alloc(5, 2)])), ['busybox:latest']);
  t.is(backend.loadedBytes, 100_005);
  const chunks: Buffer[] = [];
  await client.saveImages(['busybox'], new Writable({ write: (c: Buffer, _e, cb) => void (chunks.push(c), cb()) }));
  t.is(Buffer.concat(chunks).toString(), 'TARBYTES');
  await pollUntil('the saved file removed', () => backend.saveCleanups === 1, { deadlineMs: 5_000, intervalMs: 10 });
});

test('networks: create answers 201 {Id, Warning}; the schema names a bad field; ls sorted by name; inspect by name or prefix, 404 naming it; rm 204 or the backend\'s conflict', async (t) => {
  const backend = new FakeBackend();
  const a = app(t, backend);
  const create = await a.inject({ method: 'POST', url: '/networks/create', payload: { Name: 'web', IPAM: { Config: [{ Subnet: '10.9.0.0/24' }] }, Options: { encrypted: '' } } });
  t.is(create.statusCode, 201);
  t.deepEqual(create.json(), { Id: `net1${'0'.repeat(20)}`, Warning: '' });
  t.deepEqual(backend.networkRequests[0], { Name: 'web', IPAM: { Config: [{ Subnet: '10.9.0.0/24' }] }, Options: { encrypted: '' } });
  await a.inject({ method: 'POST', url: '/networks/create', payload: { Name: 'busy' } });
  await a.inject({ method: 'POST', url: '/networks/create', payload: { Name: 'app' } });

  const bad: Array<[unknown, RegExp]> = [
    [{ Name: 'x', Subnet: '10.0.0.0/24' }, /unknown field "Subnet"/],
    [{ Name: 'x', IPAM: { Config: [{ Subnet: 5 }] } }, /body\.IPAM\.Config\.0\.Subnet must be string/],
    [{ Driver: 'overlay' }, /missing field "Name"/],
    [{ Name: 'x', Internal: 'yes' }, /body\.Internal must be boolean/],
  ];
  for (const [payload, message] of bad) {
    const res = await a.inject({ method: 'POST', url: '/networks/create', payload: payload as Record<string, unknown> });
    t.is(res.statusCode, 400, JSON.stringify(payload));
    t.regex(res.json<{ error: { message: string } }>().error.message, message);
  }
  t.is(backend.networkRequests.length, 3, 'nothing refused by the schema reached the backend');

  const ls = await a.inject({ method: 'GET', url: '/networks' });
  t.deepEqual(ls.json<Array<{ Name: string; Scope: string }>>().map((n) => `${n.Name}/${n.Scope}`), ['app/swarm', 'busy/swarm', 'web/swarm']);
  const byName = await a.inject({ method: 'GET', url: '/networks/web' });
  t.like(byName.json(), { Name: 'web', Driver: 'overlay', IPAM: { Driver: 'default', Options: null, Config: [{ Subnet: '10.9.0.0/24', Gateway: '' }] } });
  t.is((await a.inject({ method: 'GET', url: '/networks/net3' })).json<{ Name: string }>().Name, 'app');
  const missing = await a.inject({ method: 'GET', url: '/networks/cache' });
  t.is(missing.statusCode, 404);
  t.deepEqual(missing.json(), { error: { code: 'not_found', message: 'network cache not found' } });
  const ambiguous = await a.inject({ method: 'GET', url: '/networks/net' });
  t.is(ambiguous.statusCode, 409);

  t.is((await a.inject({ method: 'DELETE', url: '/networks/busy' })).statusCode, 409);
  t.is((await a.inject({ method: 'DELETE', url: '/networks/web' })).statusCode, 204);
  t.deepEqual(backend.networks.map((n) => n.spec.name), ['busy', 'app']);
});

test('networks through the client over a socket: create, ls, inspect, rm; errors come back as ApiError with their code', async (t) => {
  const { client } = await overSocket(t);
  const { Id } = await client.createNetwork({ Name: 'web', Labels: { a: 'b' } });
  t.deepEqual((await client.listNetworks()).map((n) => n.Id), [Id]);
  t.deepEqual((await client.inspectNetwork('web')).Labels, { a: 'b' });
  t.is((await t.throwsAsync(client.createNetwork({ Name: 'web' }), { instanceOf: ApiError }))?.code, 'conflict');
  await client.removeNetwork(Id);
  t.is((await t.throwsAsync(client.removeNetwork('web'), { instanceOf: ApiError }))?.code, 'not_found');
});

test('secrets: create checks the name (Docker\'s rule), base64 and the 500 KB bound naming the field; the document never carries data; ls filters by name prefix and label; rm 204 or the backend\'s conflict', async (t) => {
  const backend = new FakeBackend();
  const a = app(t, backend);
  const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
  const create = await a.inject({ method: 'POST', url: '/secrets/create', payload: { Name: 'db-password', Labels: { env: 'prod' }, Data: b64('hunter2') } });
  t.is(create.statusCode, 201);
  t.deepEqual(create.json(), { ID: `sec1${'0'.repeat(22)}` });
  t.is(Buffer.from(backend.secrets[0]?.spec.data ?? []).reverse().toString(), 'hunter2', 'the backend got the decoded bytes');
  await a.inject({ method: 'POST', url: '/secrets/create', payload: { Name: 'db-user', Data: b64('admin') } });
  await a.inject({ method: 'POST', url: '/secrets/create', payload: { Name: 'busy', Labels: { env: 'dev' }, Data: b64('x') } });

  const bad: Array<[unknown, RegExp]> = [
    [{ Name: '-bad', Data: b64('x') }, /^Name: invalid secret name "-bad": only 64 \[a-zA-Z0-9-_.\] characters allowed, and the start and end character must be \[a-zA-Z0-9\]$/],
    [{ Name: 'a'.repeat(65), Data: b64('x') }, /only 64/],
    [{ Name: 'x', Data: 'not base64!' }, /^Data: the secret's data is not valid base64$/],
    [{ Name: 'x', Data: '' }, /^Data: a secret needs data/],
    [{ Name: 'x', Data: b64(Buffer.alloc(500 * 1024 + 1)) }, /^Data: secret data must be larger than 0 and less than 512000 bytes \(it is 512001\)$/],
    [{ Name: 'x' }, /missing field "Data"/],
    [{ Name: 'x', Data: b64('x'), Driver: 'vault' }, /unknown field "Driver"/],
  ];
  for (const [payload, message] of bad) {
    const res = await a.inject({ method: 'POST', url: '/secrets/create', payload: payload as Record<string, unknown> });
    t.is(res.statusCode, 400, JSON.stringify(payload).slice(0, 80));
    t.regex(res.json<{ error: { message: string } }>().error.message, message);
  }
  t.is(backend.secrets.length, 3, 'nothing refused reached the backend');
  const biggest = await a.inject({ method: 'POST', url: '/secrets/create', payload: { Name: 'big', Data: b64(Buffer.alloc(500 * 1024, 1)) } });
  t.is(biggest.statusCode, 201, 'exactly 500 KB fits in the request body');

  const ls = await a.inject({ method: 'GET', url: '/secrets' });
  t.deepEqual(ls.json<Array<{ Spec: { Name: string } }>>().map((s) => s.Spec.Name), ['big', 'busy', 'db-password', 'db-user']);
  t.false(ls.body.includes(b64('hunter2')) || ls.body.includes('Data'), 'ls never carries data');
  const byPrefix = await a.inject({ method: 'GET', url: `/secrets?filters=${encodeURIComponent(JSON.stringify({ name: ['db-'] }))}` });
  t.deepEqual(byPrefix.json<Array<{ Spec: { Name: string } }>>().map((s) => s.Spec.Name), ['db-password', 'db-user']);
  const byLabel = await a.inject({ method: 'GET', url: `/secrets?filters=${encodeURIComponent(JSON.stringify({ label: ['env=prod'] }))}` });
  t.deepEqual(byLabel.json<Array<{ Spec: { Name: string } }>>().map((s) => s.Spec.Name), ['db-password']);
  const badFilter = await a.inject({ method: 'GET', url: `/secrets?filters=${encodeURIComponent(JSON.stringify({ driver: ['x'] }))}` });
  t.is(badFilter.statusCode, 400);

  const inspect = await a.inject({ method: 'GET', url: '/secrets/db-password' });
  t.deepEqual(inspect.json(), { ID: `sec1${'0'.repeat(22)}`, Version: { Index: 7 }, CreatedAt: '2023-11-14T22:13:20.000Z', UpdatedAt: '2023-11-14T22:13:20.000Z', Spec: { Name: 'db-password', Labels: { env: 'prod' } } });
  const missing = await a.inject({ method: 'GET', url: '/secrets/nope' });
  t.deepEqual(missing.json(), { error: { code: 'not_found', message: 'secret nope not found' } });

  const busy = await a.inject({ method: 'DELETE', url: '/secrets/busy' });
  t.is(busy.statusCode, 409);
  t.regex(busy.json<{ error: { message: string } }>().error.message, /in use by the following service: web/);
  t.is((await a.inject({ method: 'DELETE', url: '/secrets/db-user' })).statusCode, 204);
});

test('configs through the client over a socket: create, ls with filters, inspect shows Data in base64 (Docker\'s), rm', async (t) => {
  const { client } = await overSocket(t);
  const id = await client.createConfig('nginx.conf', Buffer.from('server {}\n'), { app: 'web' });
  await client.createConfig('other', Buffer.from('x'));
  t.deepEqual((await client.listConfigs({ label: ['app'] })).map((c) => c.ID), [id]);
  const doc = await client.inspectConfig('nginx.conf');
  t.is(doc.Spec.Data, Buffer.from('server {}\n').toString('base64'));
  t.deepEqual(doc.Spec.Labels, { app: 'web' });
  await client.removeConfig(id);
  t.is((await t.throwsAsync(client.inspectConfig(id), { instanceOf: ApiError }))?.message, `config ${id} not found`);
  const sid = await client.createSecret('token', Buffer.from('s3cr3t'));
  t.deepEqual((await client.listSecrets({ name: ['tok'] })).map((s) => s.ID), [sid]);
  t.is((await t.throwsAsync(client.createSecret('token', Buffer.from('again')), { instanceOf: ApiError }))?.code, 'conflict');
});
