// Runs the kernel tools the data plane needs (ip, bridge, nsenter, unshare, umount, sysctl, nft) with argument
// arrays, never shell strings: bounded in time and output, exit codes checked, each command logged at debug.

import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { Logger } from '@swarm/wire';
import { NetError } from './errors.js';

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ToolOptions {
  /** Written to stdin, then stdin is closed (ip -batch -). */
  input?: string;
  timeoutMs?: number;
  /** Return a non-zero exit instead of throwing it. */
  allowFailure?: boolean;
  env?: NodeJS.ProcessEnv;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;
// Taken from the system directories, not PATH: npx puts node_modules/.bin first, and a package there ships `nft`.
const SYSTEM_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];
const PACKAGES: Record<string, string> = { ip: 'iproute2', bridge: 'iproute2', nft: 'nftables', nsenter: 'util-linux', unshare: 'util-linux', umount: 'mount', sysctl: 'procps' };
const resolved = new Map<string, string>();

/** Absolute path of a system tool, or the bare name when none is installed (the run then fails with tool_missing). */
export function systemTool(name: string): string {
  const hit = resolved.get(name);
  if (hit !== undefined) return hit;
  for (const dir of SYSTEM_DIRS) {
    const path = `${dir}/${name}`;
    try {
      accessSync(path, constants.X_OK);
      resolved.set(name, path);
      return path;
    } catch {
      // not in this directory
    }
  }
  return name;
}

/** Runs `name args…`: a system tool by name, or any program by absolute path. */
export async function runTool(log: Logger, name: string, args: readonly string[], opts: ToolOptions = {}): Promise<ToolResult> {
  const file = name.startsWith('/') ? name : systemTool(name);
  const base = name.slice(name.lastIndexOf('/') + 1);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  log.debug({ cmd: [name, ...args], input: opts.input }, 'run');
  return await new Promise<ToolResult>((resolve, reject) => {
    const child = spawn(file, [...args], { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let bytes = 0;
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes <= MAX_OUTPUT_BYTES) into.push(chunk);
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT') reject(new NetError('tool_missing', `${name} is not installed: overlay networks need it (apt-get install ${PACKAGES[base] ?? base})`));
      else reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const res: ToolResult = { code: code ?? 128, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
      if (signal === 'SIGKILL' && code === null) {
        reject(new NetError('timeout', `${name} ${args.join(' ')} did not finish within ${timeoutMs} ms`));
        return;
      }
      if (res.code !== 0 && opts.allowFailure !== true) {
        const detail = opts.input !== undefined ? ` (input: ${opts.input.trim().replaceAll('\n', '; ')})` : '';
        reject(new NetError('command_failed', `${name} ${args.join(' ')} exited with ${res.code}: ${res.stderr.trim() || res.stdout.trim()}${detail}`));
        return;
      }
      resolve(res);
    });
    child.stdin.on('error', () => {
      // The tool may exit before reading its input; its exit code says what went wrong.
    });
    child.stdin.end(opts.input ?? '');
  });
}
