// `swarm stack config` as a user runs it: the real CLI process, no daemon anywhere (the socket points nowhere),
// several -c files, .env, stdin, warnings on stderr, and errors as one `swarm: …` line with exit code 1.

import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SWARM_BIN = fileURLToPath(new URL('../../bin/swarm.js', import.meta.url));

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function swarm(args: string[], opts: { cwd: string; env?: Record<string, string>; input?: string }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SWARM_BIN, ...args], {
      cwd: opts.cwd,
      // No daemon: a socket path where nothing listens proves the verb never needs one.
      env: { PATH: process.env['PATH'] ?? '', SWARM_SOCKET: join(opts.cwd, 'nobody.sock'), ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

async function project(t: import('ava').ExecutionContext, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'swarm-stack-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

test('stack config prints the merged, interpolated file; warnings go to stderr; no daemon needed', async (t) => {
  const dir = await project(t, {
    '.env': 'TAG=1.25\n',
    'stack.yml': 'version: "3.8"\nx-note: kept\nservices:\n  web:\n    image: nginx:${TAG}\n    ports: ["${PORT:-8080}:80"]\n    restart: always\n',
    'prod.yml': 'services:\n  web:\n    deploy:\n      replicas: ${REPLICAS}\n',
  });
  const r = await swarm(['stack', 'config', '-c', 'stack.yml', '--compose-file', 'prod.yml'], { cwd: dir, env: { REPLICAS: '3' } });
  t.is(r.code, 0, r.stderr);
  t.is(
    r.stdout,
    'version: "3.8"\nx-note: kept\nservices:\n  web:\n    image: nginx:1.25\n    ports:\n      - "8080:80"\n    restart: always\n    deploy:\n      replicas: 3\n',
  );
  t.is(r.stderr, 'Ignoring unsupported options: restart (web)\n');
});

test('stack config --skip-interpolation prints variables as written', async (t) => {
  const dir = await project(t, { 'stack.yml': 'services:\n  web:\n    image: nginx:${TAG:?set TAG}\n' });
  const r = await swarm(['stack', 'config', '-c', 'stack.yml', '--skip-interpolation'], { cwd: dir });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'services:\n  web:\n    image: nginx:${TAG:?set TAG}\n');
});

test('stack config -c - reads the file from standard input', async (t) => {
  const dir = await project(t, {});
  const r = await swarm(['stack', 'config', '-c', '-'], { cwd: dir, input: 'services:\n  a:\n    image: busybox\n' });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'services:\n  a:\n    image: busybox\n');
});

test('stack config errors are one line naming file:line:column, exit code 1, no stack trace', async (t) => {
  const dir = await project(t, {
    'bad.yml': 'services:\n  web:\n    image: a\n    ports:\n      - published: yes\n        target: 80\n',
    'required.yml': 'services:\n  web:\n    image: ${IMAGE:?set IMAGE}\n',
  });
  const bad = await swarm(['stack', 'config', '-c', 'bad.yml'], { cwd: dir });
  t.is(bad.code, 1);
  t.is(bad.stdout, '');
  t.is(bad.stderr, 'swarm: bad.yml:5:20: services.web.ports[0].published: must be an integer, not "yes"\n');
  const required = await swarm(['stack', 'config', '-c', 'required.yml'], { cwd: dir });
  t.is(required.stderr, 'swarm: required.yml:3:12: services.web.image: required variable IMAGE is missing a value: set IMAGE\n');
  const missing = await swarm(['stack', 'config', '-c', 'nope.yml'], { cwd: dir });
  t.is(missing.code, 1);
  t.is(missing.stderr, 'swarm: nope.yml: no such file\n');
  const none = await swarm(['stack', 'config'], { cwd: dir });
  t.is(none.code, 1);
  t.is(none.stderr, 'swarm: please specify a compose file (with --compose-file)\n');
});
