// Secrets and configs on daemons in one process (the process runtime, as root: each task's files on a tmpfs): the
// data key on managers only; the secret's bytes never on any node's disk in the clear (the Raft WAL and snapshots
// are read back byte by byte) nor in any log line; they reach only the node that runs a task using them; the task
// reads them; `secret rm` is refused while a service uses it; nothing is left mounted once the task is gone.

import test, { type ImplementationFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError, type ServiceSpecDocument } from '@swarm/api';
import { isMountPoint } from '@swarm/runtime';
import { captureLogger } from '@swarm/wire';
import { cluster, eventually, form, joinAddr, local, votersAre, type Host } from './local-cluster.js';

const isRoot = process.getuid?.() === 0;
// The process runtime mounts a tmpfs for task files, which needs root: without it these say so as skips.
const rootTest = (title: string, fn: ImplementationFn<[]>): void => (isRoot ? test(title, fn) : test.skip(`${title} [skipped: needs root]`, fn));

/** Every regular file under `dir` (not following links, not descending into mounts of the tasks' files). */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path, { throwIfNoEntry: false });
    if (st === undefined) continue;
    if (st.isDirectory()) {
      if (!isMountPoint(path)) out.push(...filesUnder(path));
    } else if (st.isFile()) out.push(path);
  }
  return out;
}

function holders(dir: string, needle: Buffer): string[] {
  return filesUnder(dir).filter((f) => readFileSync(f).includes(needle));
}

/** The tmpfs dirs of this node's tasks' files (process runtime: <dataDir>/runtime/secrets/<taskId>). */
function taskFileDirs(host: Host): string[] {
  const dir = join(host.dataDir, 'runtime', 'secrets');
  return existsSync(dir) ? readdirSync(dir).map((n) => join(dir, n)) : [];
}

function service(name: string, extra: Partial<ServiceSpecDocument['TaskTemplate']['ContainerSpec']>, constraint: string): ServiceSpecDocument {
  return {
    Name: name,
    TaskTemplate: { ContainerSpec: { Image: 'busybox', Command: ['sleep', '3600'], ...extra }, Placement: { Constraints: [constraint] } },
    Mode: { Replicated: { Replicas: 1 } },
  };
}

rootTest('secrets: sealed in Raft (WAL and snapshots never hold the plaintext), managers alone hold the key, only the node running the task gets the bytes, on a tmpfs; rm refused while in use; nothing left mounted after', async (t) => {
  const plaintext = `pw-${randomBytes(12).toString('hex')}`;
  const configText = `cfg-${randomBytes(12).toString('hex')}`;
  const logs: string[] = [];
  const c = await cluster(t);
  const start = (name: string): Promise<Host> => c.start(name, 0, { logger: captureLogger({ write: (line) => void logs.push(line) }), raftSnapshotEvery: 4 });
  const m1 = await start('mgr-1');
  const m2 = await start('mgr-2');
  const w1 = await start('wrk-1');
  const w2 = await start('wrk-2');
  await m1.client.initSwarm(local);
  await m2.client.joinSwarm({ remoteAddr: joinAddr(m1), token: (await m1.client.joinToken('manager')).Token, ...local });
  const workerToken = (await m1.client.joinToken('worker')).Token;
  for (const w of [w1, w2]) await w.client.joinSwarm({ remoteAddr: joinAddr(m1), token: workerToken, ...local });
  await votersAre(m1, [m1, m2]);

  // The data key: made at init, handed to the joining manager, never to a worker.
  const keyFile = 'certificates/swarm-data.key';
  t.true(existsSync(join(m1.dataDir, keyFile)));
  t.deepEqual(readFileSync(join(m2.dataDir, keyFile)), readFileSync(join(m1.dataDir, keyFile)));
  t.is(statSync(join(m1.dataDir, keyFile)).mode & 0o777, 0o600);
  t.false(existsSync(join(w1.dataDir, keyFile)) || existsSync(join(w2.dataDir, keyFile)));

  // Created through the follower manager: forwarded to the leader already sealed.
  const id = await m2.client.createSecret('db-password', Buffer.from(plaintext), { tier: 'db' });
  await m1.client.createConfig('app.conf', Buffer.from(configText));
  const doc = await m1.client.inspectSecret('db-password');
  t.deepEqual(doc.Spec, { Name: 'db-password', Labels: { tier: 'db' } });
  t.false(JSON.stringify(await m1.client.listSecrets()).includes(plaintext));
  t.is(Buffer.from((await m1.client.inspectConfig('app.conf')).Spec.Data, 'base64').toString(), configText);

  const unknown = await t.throwsAsync(m1.client.createService(service('x', { Secrets: [{ SecretName: 'nope' }] }, 'node.hostname==wrk-1')), { instanceOf: ApiError });
  t.is(unknown?.code, 'invalid_argument');
  t.regex(unknown?.message ?? '', /^TaskTemplate\.ContainerSpec\.Secrets\[0\]\.SecretName: secret not found: nope/);

  await m1.client.createService(
    service('api', { Secrets: [{ SecretName: 'db-password' }], Configs: [{ ConfigName: 'app.conf', File: { Name: '/etc/app.conf' } }] }, 'node.hostname==wrk-1'),
  );
  const inspected = await m1.client.inspectService('api');
  t.deepEqual(inspected.Spec.TaskTemplate.ContainerSpec.Secrets, [{ File: { Name: 'db-password', UID: '0', GID: '0', Mode: 0o444 }, SecretID: id, SecretName: 'db-password' }]);

  // The task's files are on a tmpfs on wrk-1 only; the task's process reads them at the paths its env names.
  const dir = await eventually('the task files on wrk-1', 30_000, async () => {
    const tasks = await m1.client.listTasks({ service: 'api' });
    return tasks.some((x) => x.Status.State === 'running') ? taskFileDirs(w1)[0] : undefined;
  });
  t.true(isMountPoint(dir));
  t.is(readFileSync(join(dir, 'run/secrets/db-password'), 'utf8'), plaintext);
  t.is(statSync(join(dir, 'run/secrets/db-password')).mode & 0o777, 0o444);
  t.is(readFileSync(join(dir, 'etc/app.conf'), 'utf8'), configText);
  for (const other of [m1, m2, w2]) t.deepEqual(taskFileDirs(other), [], `${other.name} got no task files`);

  // `secret rm` and `config rm` are refused while a service uses them, naming it.
  const busy = await t.throwsAsync(m1.client.removeSecret('db-password'), { instanceOf: ApiError });
  t.is(busy?.code, 'conflict');
  t.is(busy?.message, "secret 'db-password' is in use by the following service: api");
  t.regex((await t.throwsAsync(m1.client.removeConfig('app.conf'), { instanceOf: ApiError }))?.message ?? '', /config 'app\.conf' is in use by the following service: api/);

  // The largest secret Docker allows goes through the follower, the forwarding and Raft's replication.
  const big = randomBytes(500 * 1024);
  await m2.client.createSecret('big', big);
  t.deepEqual((await m1.client.listSecrets({ name: ['big'] })).map((x) => x.Spec.Name), ['big']);
  // More writes so that both managers snapshot (every 4 entries) with the secret in the store.
  for (let i = 0; i < 6; i++) await m1.client.createConfig(`filler-${i}`, Buffer.from('x'));
  await eventually('snapshots on both managers', 30_000, async () =>
    [m1, m2].every((m) => filesUnder(join(m.dataDir, 'raft')).some((f) => /snap/i.test(f))) ? true : undefined,
  );

  // Nowhere on any node's disk in the clear (the tasks' tmpfs aside), nor in any log line.
  for (const h of [m1, m2, w1, w2]) {
    t.deepEqual(holders(h.dataDir, Buffer.from(plaintext)), [], `${h.name}'s data dir`);
    t.deepEqual(holders(h.dataDir, Buffer.from(Buffer.from(plaintext).toString('base64'))), [], `${h.name}'s data dir (base64)`);
  }
  t.true(filesUnder(join(m1.dataDir, 'raft')).some((f) => readFileSync(f).includes(Buffer.from('db-password'))), 'the Raft files do hold the secret object (its name)');
  t.false(logs.join('').includes(plaintext), 'no log line carries the secret');
  for (const h of [m1, m2]) t.deepEqual(holders(h.dataDir, big.subarray(1000, 1064)), [], `${h.name}: none of the big secret either`);

  // The service gone, its task's tmpfs goes too; then the secret can be removed.
  await m1.client.removeService('api');
  await eventually('the task files unmounted and removed', 30_000, async () => (taskFileDirs(w1).length === 0 ? true : undefined));
  t.false(isMountPoint(dir));
  await m1.client.removeSecret(id);
  t.deepEqual((await m1.client.listSecrets()).map((s) => s.Spec.Name), ['big']);
});

test('service update: secrets added and removed by name; an update naming a removed secret is refused; a worker cannot store secrets', async (t) => {
  const c = await cluster(t);
  const m1 = await c.start('mgr-1');
  const w1 = await c.start('wrk-1');
  await m1.client.initSwarm(local);
  await w1.client.joinSwarm({ remoteAddr: joinAddr(m1), token: (await m1.client.joinToken('worker')).Token, ...local });
  await m1.client.createSecret('a', Buffer.from('one'));
  const b = await m1.client.createSecret('b', Buffer.from('two'));
  // Placed nowhere (no node has that label): the spec is what is checked here, not the tasks.
  await m1.client.createService(service('web', { Secrets: [{ SecretName: 'a' }] }, 'node.labels.none==1'));
  const current = await m1.client.inspectService('web');
  const spec = structuredClone(current.Spec) as ServiceSpecDocument;
  spec.TaskTemplate.ContainerSpec.Secrets = [{ SecretName: 'b', File: { Name: 'b.txt' } }];
  await m1.client.updateService('web', spec, current.Version.Index);
  const updated = await m1.client.inspectService('web');
  t.deepEqual(updated.Spec.TaskTemplate.ContainerSpec.Secrets?.map((s) => [s.SecretID, s.SecretName, s.File?.Name]), [[b, 'b', 'b.txt']]);
  // a is free now; b is not.
  await m1.client.removeSecret('a');
  t.is((await t.throwsAsync(m1.client.removeSecret('b'), { instanceOf: ApiError }))?.code, 'conflict');
  // Rolling back to the spec that used a: refused, naming the field, since a is gone.
  const rollback = await t.throwsAsync(m1.client.rollbackService('web', spec), { instanceOf: ApiError });
  t.regex(rollback?.message ?? '', /Secrets\[0\]\.SecretID: secret \w+ not found/);
  const worker = await t.throwsAsync(w1.client.createSecret('c', Buffer.from('x')), { instanceOf: ApiError });
  t.regex(worker?.message ?? '', /manager/, 'a worker holds no data key and stores no secret');
});

rootTest('promotion hands a worker the data key and demotion takes it away; the promoted leader opens a secret sealed before it was a manager', async (t) => {
  const { managers, workers } = await form(t, 1, 1);
  const [m] = managers;
  const [w] = workers;
  if (m === undefined || w === undefined) throw new Error('unreachable');
  const keyFile = (h: Host): string => join(h.dataDir, 'certificates/swarm-data.key');
  await m.client.createSecret('early', Buffer.from('sealed-before-promotion'));
  t.false(existsSync(keyFile(w)));

  await m.client.updateNode('wrk-1', { role: 'manager' });
  await votersAre(m, [m, w]);
  await eventually('the promoted node holds the data key', 30_000, async () => (existsSync(keyFile(w)) ? true : undefined));
  t.deepEqual(readFileSync(keyFile(w)), readFileSync(keyFile(m)));

  // The first manager steps down: the promoted node leads, and its dispatcher opens the secret with its copy.
  await m.client.updateNode('mgr-1', { role: 'worker' });
  await votersAre(w, [w]);
  await eventually('the demoted node drops the data key', 30_000, async () => (existsSync(keyFile(m)) ? undefined : true));
  await w.client.createService(service('early-user', { Secrets: [{ SecretName: 'early' }] }, 'node.hostname==mgr-1'));
  const dir = await eventually('the task files on mgr-1', 30_000, async () => taskFileDirs(m)[0]);
  await eventually('the secret file written', 30_000, async () => (existsSync(join(dir, 'run/secrets/early')) ? true : undefined));
  t.is(readFileSync(join(dir, 'run/secrets/early'), 'utf8'), 'sealed-before-promotion');
  await w.client.removeService('early-user');
  await eventually('the task files unmounted', 30_000, async () => (taskFileDirs(m).length === 0 ? true : undefined));
});
