// What the image tests share: the machine check (root, docker-registry, mknod, setfattr, busybox) with a skip
// that says why, a real registry (Debian's docker-registry) started on a free loopback port and stopped with
// its files, and a counting proxy in front of it that can cut a blob download half way.

import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

/** Why the image tests cannot run here, or null. */
export function missing(extra: readonly string[] = []): string | null {
  if (process.getuid?.() !== 0) return 'not root: unpacking keeps owners and makes device nodes';
  for (const bin of [REGISTRY_BIN, '/usr/bin/mknod', '/usr/bin/setfattr', '/usr/bin/busybox', ...extra]) {
    try {
      accessSync(bin, constants.X_OK);
    } catch {
      return `${bin} is missing (apt-get install docker-registry coreutils attr busybox-static apache2-utils)`;
    }
  }
  return null;
}

/** test.serial when the machine has what the image tests need; otherwise a skip whose title says why. */
export function imageTest(extra: readonly string[] = []): (title: string, fn: (t: ExecutionContext) => Promise<void> | void) => void {
  const why = missing(extra);
  return (title, fn) => {
    if (why === null) test.serial(title, fn);
    else test.serial.skip(`${title} [skipped: ${why}]`, fn);
  };
}

export function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `swarm-${prefix}-`));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  readonly addr: string;
  readonly dir: string;
  readonly storage: string;
  /** The file a blob is kept in (to corrupt it on purpose). */
  blobFile(digest: string): string;
  stop(): Promise<void>;
}

/** Starts docker-registry with `extraConfig` (YAML appended at top level) and waits until /v2/ answers. */
export async function startRegistry(extraConfig = ''): Promise<TestRegistry> {
  const dir = tmp('registry');
  const storage = join(dir, 'storage');
  const port = await freePort();
  const addr = `127.0.0.1:${port}`;
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${storage}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${addr}`,
      extraConfig,
      '',
    ].join('\n'),
  );
  const logFd = openSync(join(dir, 'registry.log'), 'a');
  const child: ChildProcess = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  let exited = false;
  const gone = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const res = await fetch(`http://${addr}/v2/`, { signal: AbortSignal.timeout(1_000) });
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not listening yet
    }
    if (exited || Date.now() > deadline) {
      const log = readFileSync(join(dir, 'registry.log'), 'utf8');
      await stop();
      throw new Error(`docker-registry did not come up on ${addr}: ${log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    addr,
    dir,
    storage,
    blobFile: (digest) => {
      const hex = digest.slice('sha256:'.length);
      return join(storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    },
    stop,
  };
}

export interface ProxyRequest {
  readonly method: string;
  readonly url: string;
  readonly range: string | null;
}

export interface TestProxy {
  readonly addr: string;
  readonly requests: ProxyRequest[];
  /** The next full GET of this blob sends half its body, then the connection is cut. */
  cutNext(digest: string): void;
  close(): Promise<void>;
}

/** An HTTP proxy to the registry at `target` that records requests and can cut a blob body half way. */
export async function startProxy(target: string): Promise<TestProxy> {
  const requests: ProxyRequest[] = [];
  const cut = new Set<string>();
  const [host, port] = target.split(':') as [string, string];
  const server: Server = createHttpServer((req: IncomingMessage, res) => {
    const url = req.url ?? '/';
    requests.push({ method: req.method ?? 'GET', url, range: typeof req.headers.range === 'string' ? req.headers.range : null });
    const blob = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url)?.[1];
    const cutThis = blob !== undefined && req.method === 'GET' && cut.has(blob) && req.headers.range === undefined;
    if (cutThis) cut.delete(blob);
    const up = httpRequest({ host, port: Number(port), method: req.method, path: url, headers: { ...req.headers, host: target } }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      if (!cutThis) {
        upRes.pipe(res);
        return;
      }
      const total = Number(upRes.headers['content-length'] ?? 0);
      let sent = 0;
      upRes.on('data', (chunk: Buffer) => {
        if (sent >= total / 2) return;
        const part = chunk.subarray(0, Math.max(0, Math.ceil(total / 2) - sent));
        sent += part.byteLength;
        res.write(part);
        if (sent >= total / 2) {
          upRes.destroy();
          // Flush what was written, then drop the connection mid-body.
          res.socket?.end(() => res.socket?.destroy());
        }
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  const addr = typeof a === 'object' && a !== null ? `127.0.0.1:${a.port}` : '';
  return {
    addr,
    requests,
    cutNext: (digest) => cut.add(digest),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
