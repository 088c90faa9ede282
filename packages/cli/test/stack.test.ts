// `swarm stack deploy|ls|services|ps|rm` end to end: an in-process daemon (process runtime) and the CLI as a child
// process: a small stack is deployed, listed, redeployed unchanged (no update), changed (one update), and removed.

import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient } from '@swarm/api';
import { startDaemon } from '@swarm/daemon';
import { pollUntil, silentLogger } from '@swarm/wire';
import { mountsUnder } from './mounts.js';

const SWARM_BIN = fileURLToPath(new URL('../../bin/swarm.js', import.meta.url));

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(socketPath: string, args: string[], cwd?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SWARM_BIN, ...args], { cwd, env: { ...process.env, SWARM_SOCKET: socketPath, SWARM_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const STACK = `
services:
  web:
    image: busybox
    command: sleep 600
    environment:
      GREETING: hello
    ports:
      - "18080:80"
    deploy:
      replicas: 2
      labels:
        tier: front
  api:
    image: busybox
    command: ["sleep", "600"]
    networks: [back]
    build: .
    secrets:
      - db_password
    configs:
      - source: app
        target: /etc/app.conf
networks:
  back:
    labels:
      purpose: test
secrets:
  db_password:
    file: ./pw.txt
configs:
  app:
    content: "listen 80"
`;

test('stack deploy creates, ls/services/ps list, an unchanged redeploy updates nothing, a change updates one service, rm removes all', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'swarm-stack-test-'));
  const socketPath = join(dir, 'swarm.sock');
  const daemon = await startDaemon({ dataDir: join(dir, 'data'), socketPath, hostname: 'stack-node', logger: silentLogger(), gossipPort: 0, joinListenPort: 0, raftTickMs: 50, runtime: 'process' });
  t.teardown(async () => {
    await daemon.close();
    // Tasks that held secrets leave their tmpfs mounted if the test failed before `stack rm`.
    for (const mount of mountsUnder(dir)) execFileSync('/bin/umount', ['-l', mount]);
    await rm(dir, { recursive: true, force: true });
  });
  const client = new ApiClient({ socketPath, timeoutMs: 30_000 });
  await client.initSwarm({ advertiseAddr: '127.0.0.1', listenAddr: '127.0.0.1:2377' });
  const file = join(dir, 'stack.yml');
  await writeFile(file, STACK);
  await writeFile(join(dir, 'pw.txt'), 'hunter2');

  const first = await run(socketPath, ['stack', 'deploy', '--resolve-image', 'never', '-c', file, 'shop']);
  t.is(first.code, 0, first.stderr);
  t.deepEqual(first.stdout.trim().split('\n'), ['Creating network shop_back', 'Creating network shop_default', 'Creating secret shop_db_password', 'Creating config shop_app', 'Creating service shop_api', 'Creating service shop_web']);
  t.is(first.stderr, 'Ignoring unsupported options: build (api)\n');

  const services = await client.listServices(false);
  const web = services.find((s) => s.Spec.Name === 'shop_web');
  t.deepEqual(web?.Spec.Labels, { tier: 'front', 'com.docker.stack.namespace': 'shop', 'com.docker.stack.image': 'busybox' });
  t.deepEqual(web?.Spec.TaskTemplate.ContainerSpec.Env, ['GREETING=hello']);
  t.deepEqual(web?.Spec.Mode, { Replicated: { Replicas: 2 } });
  const apiSpec = services.find((s) => s.Spec.Name === 'shop_api')?.Spec.TaskTemplate.ContainerSpec;
  t.deepEqual(apiSpec?.Secrets?.map((r) => [r.SecretName, r.File?.Name]), [['shop_db_password', 'db_password']]);
  t.deepEqual(apiSpec?.Configs?.map((r) => [r.ConfigName, r.File?.Name]), [['shop_app', '/etc/app.conf']]);
  t.deepEqual((await client.inspectSecret('shop_db_password')).Spec.Labels, { 'com.docker.stack.namespace': 'shop' });
  t.is(Buffer.from((await client.inspectConfig('shop_app')).Spec.Data, 'base64').toString(), 'listen 80');
  const back = await client.inspectNetwork('shop_back');
  t.deepEqual(back.Labels, { purpose: 'test', 'com.docker.stack.namespace': 'shop' });

  await pollUntil('3 running tasks', async () => ((await client.listTasks()).filter((x) => x.Status.State === 'running').length === 3 ? true : undefined), { deadlineMs: 60_000, intervalMs: 100 });

  const ls = await run(socketPath, ['stack', 'ls']);
  t.is(ls.code, 0, ls.stderr);
  t.deepEqual(ls.stdout.trim().split('\n').map((l) => l.split(/\s+/)), [['NAME', 'SERVICES'], ['shop', '2']]);

  const svc = await run(socketPath, ['stack', 'services', 'shop']);
  t.is(svc.code, 0, svc.stderr);
  const svcLines = svc.stdout.trim().split('\n');
  t.regex(svcLines[0] ?? '', /^ID\s+NAME\s+MODE\s+REPLICAS\s+IMAGE\s+PORTS$/);
  t.regex(svcLines[1] ?? '', /shop_api\s+replicated\s+1\/1\s+busybox/);
  t.regex(svcLines[2] ?? '', /shop_web\s+replicated\s+2\/2\s+busybox\s+\*:18080->80\/tcp/);

  const filtered = await run(socketPath, ['stack', 'services', '--filter', 'name=web', '--filter', 'label=tier=front', '-q', 'shop']);
  t.is(filtered.code, 0, filtered.stderr);
  t.is(filtered.stdout.trim(), web?.ID.slice(0, 12) ?? 'no web');
  t.is((await run(socketPath, ['stack', 'services', '-f', 'mode=global', 'shop'])).stdout.trim().split('\n').length, 1, 'the header only');
  t.regex((await run(socketPath, ['stack', 'services', '-f', 'colour=red', 'shop'])).stderr, /^swarm: invalid filter "colour=red"/);

  const ps = await run(socketPath, ['stack', 'ps', 'shop']);
  t.is(ps.code, 0, ps.stderr);
  t.deepEqual(
    ps.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[1]),
    ['shop_api.1', 'shop_web.1', 'shop_web.2'],
  );
  const psFull = await run(socketPath, ['stack', 'ps', '--no-trunc', '-q', 'shop']);
  t.deepEqual(psFull.stdout.trim().split('\n').map((id) => id.length), [25, 25, 25]);

  // The same file again: nothing is created or updated (an update would leave a PreviousSpec; the version alone
  // also moves when the allocator writes the service).
  const again = await run(socketPath, ['stack', 'deploy', '--resolve-image', 'never', '-c', file, 'shop']);
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout, '');
  for (const s of await client.listServices(false)) t.is(s.PreviousSpec, undefined, `${s.Spec.Name} was not updated`);

  // An override file that changes one service: only that one is updated; --detach=false waits for it.
  const override = join(dir, 'override.yml');
  await writeFile(override, 'services:\n  web:\n    environment:\n      GREETING: bonjour\n');
  const changed = await run(socketPath, ['stack', 'deploy', '--resolve-image', 'never', '-c', file, '-c', override, '--detach=false', 'shop']);
  t.is(changed.code, 0, changed.stderr);
  t.regex(changed.stdout, new RegExp(`^Updating service shop_web \\(id: ${web?.ID ?? '?'}\\)\n`));
  t.regex(changed.stdout, /verify: Stack converged\n$/);
  const after = await client.listServices(false);
  t.deepEqual(after.find((s) => s.Spec.Name === 'shop_web')?.Spec.TaskTemplate.ContainerSpec.Env, ['GREETING=bonjour']);
  t.deepEqual(after.find((s) => s.Spec.Name === 'shop_web')?.PreviousSpec?.TaskTemplate.ContainerSpec.Env, ['GREETING=hello']);
  t.is(after.find((s) => s.Spec.Name === 'shop_api')?.PreviousSpec, undefined, 'shop_api was not updated');

  // An update whose new tasks fail rolls itself back (failure_action rollback): --detach=false says so, exit 1.
  const failing = join(dir, 'failing.yml');
  await writeFile(failing, 'services:\n  web:\n    command: ["sh", "-c", "exit 3"]\n    deploy:\n      update_config:\n        failure_action: rollback\n        monitor: 2s\n      restart_policy:\n        delay: 100ms\n');
  const rolledBack = await run(socketPath, ['stack', 'deploy', '--resolve-image', 'never', '-c', file, '-c', override, '-c', failing, '--detach=false', 'shop']);
  t.is(rolledBack.code, 1, rolledBack.stdout);
  t.regex(rolledBack.stderr, /^swarm: service shop_web rolled back: .*\(shop_web\.\d: .*3.*\)/m);
  t.deepEqual((await client.inspectService('shop_web')).Spec.TaskTemplate.ContainerSpec.Args, ['sleep', '600'], 'the previous spec is back');

  // A missing external network: an error naming it, and nothing changes.
  const bad = join(dir, 'bad.yml');
  await writeFile(bad, 'services:\n  x:\n    image: busybox\n    networks: [outside]\nnetworks:\n  outside:\n    external: true\n');
  const refused = await run(socketPath, ['stack', 'deploy', '--resolve-image', 'never', '-c', bad, 'other']);
  t.is(refused.code, 1);
  t.true(refused.stderr.startsWith(`swarm: ${bad}:6:3: network "outside" is declared as external, but could not be found`), refused.stderr);
  t.is(refused.stdout, '');
  t.false((await client.listNetworks()).some((n) => n.Name.startsWith('other_')));

  // A bad value: an error naming the key path.
  await writeFile(bad, 'services:\n  x:\n    image: busybox\n    deploy:\n      resources:\n        limits:\n          memory: lots\n');
  const invalid = await run(socketPath, ['stack', 'deploy', '--resolve-image', 'never', '-c', bad, 'other']);
  t.is(invalid.code, 1);
  t.is(invalid.stderr, `swarm: ${bad}:7:11: services.x.deploy.resources.limits.memory: "lots" is not a size like 512M or 1G\n`);

  const removed = await run(socketPath, ['stack', 'rm', 'shop']);
  t.is(removed.code, 0, removed.stderr);
  t.deepEqual(removed.stdout.trim().split('\n'), ['Removing service shop_api', 'Removing service shop_web', 'Removing network shop_back', 'Removing network shop_default', 'Removing secret shop_db_password', 'Removing config shop_app']);
  t.deepEqual(await client.listSecrets(), []);
  t.deepEqual(await client.listConfigs(), []);
  t.deepEqual((await client.listServices(false)).map((s) => s.Spec.Name), []);
  t.deepEqual((await client.listNetworks()).map((n) => n.Name), ['ingress']);
  const empty = await run(socketPath, ['stack', 'ls']);
  t.is(empty.stdout.trim(), 'NAME      SERVICES');
  const nothing = await run(socketPath, ['stack', 'rm', 'shop']);
  t.is(nothing.stderr, 'Nothing found in stack: shop\n');
});
