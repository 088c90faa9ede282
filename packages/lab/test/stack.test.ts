// The example stack (examples/stack.yml) on a real lab (3 hosts, real daemons, runc containers): deployed from the
// compose file it converges, serves a write and a read through the routing mesh on every host (web -> api -> kv over
// two overlays, by service name, the API holding its secret), survives a redeploy with one changed service (only
// that one rolls), `--prune` removes a service the file dropped, and `stack rm` leaves nothing of the stack behind.

import test from 'ava';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pollUntil } from '@swarm/wire';
import { cliLab, labSerial, missingPrerequisite } from './prerequisites.js';

// Apart from the other lab tests' subnets: ava runs test files at the same time.
const SUBNET = '10.251.47.0/24';
const EXAMPLES = fileURLToPath(new URL('../../../../examples/', import.meta.url));

const missing = missingPrerequisite({ tools: [['ip', '-V'], ['nft', '--version'], ['runc', '--version'], ['conmon', '--version'], ['docker-registry', '--version']], needCli: true });
const serial = labSerial(missing);
const { name, root, swarm, on } = cliLab('st', missing);
const dir = mkdtempSync(join(tmpdir(), 'swarm-stack-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

interface Host {
  name: string;
  ip: string;
}

function hosts(): Host[] {
  return (JSON.parse(readFileSync(join(root, name, 'state.json'), 'utf8')) as { hosts: Host[] }).hosts;
}

const eventually = <T>(what: string, timeoutMs: number, check: () => Promise<T | undefined | false>): Promise<T> =>
  pollUntil(what, check, { deadlineMs: timeoutMs, intervalMs: 300, retryErrors: true });

/** An HTTP request to the web tier through the mesh, from this machine's root namespace: the body, or '' on failure. */
function web(ip: string, key: string, body?: string): Promise<string> {
  return new Promise((resolve) => {
    // The CGI scripts end their headers with a bare newline: Node's strict parser would refuse the answer.
    const req = http.request({ host: ip, port: 8080, path: `/cgi-bin/web?key=${key}`, method: body === undefined ? 'GET' : 'POST', agent: false, timeout: 10_000, insecureHTTPParser: true }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve(res.statusCode === 200 ? text : ''));
      res.on('error', () => resolve(''));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(''));
    req.end(body);
  });
}

interface TaskRow {
  ID: string;
  Name: string;
  DesiredState: string;
  CurrentState: string;
}

async function tasks(service: string): Promise<TaskRow[]> {
  const res = await on('node-1', ['service', 'ps', '--format', 'json', service]);
  return res.stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as TaskRow);
}

async function runningIds(service: string): Promise<string[]> {
  return (await tasks(service)).filter((r) => r.DesiredState === 'Running' && r.CurrentState.startsWith('Running')).map((r) => r.ID).sort();
}

async function converged(want: Record<string, number>): Promise<Record<string, string[]>> {
  return eventually(`the stack runs ${JSON.stringify(want)}`, 120_000, async () => {
    const out: Record<string, string[]> = {};
    for (const [service, n] of Object.entries(want)) {
      out[service] = await runningIds(service);
      if (out[service]?.length !== n) return undefined;
    }
    return out;
  });
}

serial('the example stack deploys from its compose file, converges, and serves a write and a read through the mesh on every host', async (t) => {
  const up = await swarm(['lab', 'up', '--name', name, '--nodes', '3', '--managers', '1', '--subnet', SUBNET], 240_000);
  t.is(up.code, 0, up.stderr);
  t.is((await on('node-1', ['node', 'update', '--label-add', 'kv=true', 'node-2'])).code, 0);
  copyFileSync(join(EXAMPLES, 'stack.yml'), join(dir, 'stack.yml'));
  copyFileSync(join(EXAMPLES, 'api_token.txt'), join(dir, 'api_token.txt'));
  const deploy = await on('node-1', ['stack', 'deploy', '-c', join(dir, 'stack.yml'), 'shop'], 240_000);
  t.is(deploy.code, 0, deploy.stderr);
  for (const line of ['Creating network shop_front', 'Creating network shop_back', 'Creating service shop_web', 'Creating service shop_api', 'Creating service shop_kv']) t.true(deploy.stdout.includes(line), `${line}: ${deploy.stdout}`);
  await converged({ shop_web: 3, shop_api: 2, shop_kv: 1 });
  const ls = await on('node-1', ['stack', 'ls']);
  t.regex(ls.stdout, /shop\s+3/);
  const [first, ...others] = hosts();
  if (first === undefined) throw new Error('no hosts');
  const stored = await eventually('a write through the mesh', 60_000, async () => {
    const answer = await web(first.ip, 'color', 'blue');
    return answer.includes('stored color') ? answer : undefined;
  });
  t.regex(stored, /^web \S+\napi \S+: secret api_token set \(28 bytes\)\nkv \S+: stored color/);
  for (const h of [first, ...others]) {
    const read = await eventually(`${h.name} reads it back`, 30_000, async () => {
      const answer = await web(h.ip, 'color');
      return answer.includes('color=blue') ? answer : undefined;
    });
    t.regex(read, /kv \S+: color=blue/, h.name);
  }
  // The secret's bytes never show: not in inspect, not in what the API says.
  t.false((await on('node-1', ['secret', 'inspect', 'shop_api_token'])).stdout.includes('example-token'));
});

serial('a redeploy of the same file changes nothing; one changed service is the only one that rolls', async (t) => {
  const before = await converged({ shop_web: 3, shop_api: 2, shop_kv: 1 });
  const again = await on('node-1', ['stack', 'deploy', '-c', join(dir, 'stack.yml'), 'shop'], 240_000);
  t.is(again.code, 0, again.stderr);
  t.false(/Updating service/.test(again.stdout), `nothing to update: ${again.stdout}`);
  writeFileSync(join(dir, 'override.yml'), 'services:\n  api:\n    environment:\n      RELEASE: "2"\n');
  const changed = await on('node-1', ['stack', 'deploy', '-c', join(dir, 'stack.yml'), '-c', join(dir, 'override.yml'), 'shop'], 240_000);
  t.is(changed.code, 0, changed.stderr);
  t.regex(changed.stdout, /Updating service shop_api/);
  t.false(/Updating service shop_(web|kv)/.test(changed.stdout), changed.stdout);
  const after = await eventually('api rolled, the others untouched', 120_000, async () => {
    const now = await converged({ shop_web: 3, shop_api: 2, shop_kv: 1 });
    return (now['shop_api'] ?? []).every((id) => !(before['shop_api'] ?? []).includes(id)) ? now : undefined;
  });
  t.deepEqual(after['shop_web'], before['shop_web'], 'web kept its tasks');
  t.deepEqual(after['shop_kv'], before['shop_kv'], 'kv kept its task');
  const host = hosts()[0];
  t.regex(await web(host?.ip ?? '', 'color'), /color=blue/, 'still serving, the value still there');
});

serial('--prune removes a service the file dropped; stack rm leaves no service, network or secret of the stack', async (t) => {
  const text = readFileSync(join(dir, 'stack.yml'), 'utf8');
  // The same stack without the web tier (its anchor and everything else kept).
  const withoutWeb = text.replace(/\n {2}web:\n(?: {4}.*\n|\n)*?(?= {2}api:)/, '\n');
  t.false(withoutWeb.includes('  web:'), 'the web service is gone from the file');
  writeFileSync(join(dir, 'pruned.yml'), withoutWeb);
  const prune = await on('node-1', ['stack', 'deploy', '--prune', '-c', join(dir, 'pruned.yml'), 'shop'], 240_000);
  t.is(prune.code, 0, prune.stderr);
  t.regex(prune.stdout, /Removing service shop_web/);
  await eventually('shop_web gone', 60_000, async () => !(await on('node-1', ['service', 'ls'])).stdout.includes('shop_web') || undefined);
  const rm = await on('node-1', ['stack', 'rm', 'shop'], 240_000);
  t.is(rm.code, 0, rm.stderr);
  await eventually('nothing of the stack left', 90_000, async () => {
    const services = (await on('node-1', ['service', 'ls'])).stdout;
    const networks = (await on('node-1', ['network', 'ls'])).stdout;
    const secrets = (await on('node-1', ['secret', 'ls'])).stdout;
    return !/shop_/.test(services + networks + secrets) || undefined;
  });
  t.is((await on('node-1', ['stack', 'ls'])).stdout.includes('shop'), false);
});
