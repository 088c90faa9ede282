// Runs one external tool with an argument array (never a shell string), bounded in time and output.
// The per-tool modules (ip.ts, nft.ts) build the arguments; this module only executes and checks.

import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { componentLogger, type Logger } from '@swarm/wire';
import { LabError } from './errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the tool's stdin, then stdin is closed. */
  input?: string;
  timeoutMs?: number;
  /** When true a non-zero exit is returned instead of thrown. */
  allowFailure?: boolean;
  env?: NodeJS.ProcessEnv;
}

const DEFAULT_TIMEOUT_MS = 30_000;
// A tool's output we keep in memory; the lab's tools print little, anything past this is a bug.
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

// System tools are taken from the system directories, not from PATH: `npx` puts node_modules/.bin first,
// and a JavaScript package there (@vercel/nft) ships a binary named `nft`.
const SYSTEM_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];
const resolved = new Map<string, string>();

/** Absolute path of a system tool (ip, nft, sysctl), or the bare name when none is installed (spawn then fails with ENOENT). */
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

let log: Logger | null = null;
function logger(): Logger {
  if (log === null) log = componentLogger('lab', 'lab-run');
  return log;
}

export async function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  logger().debug({ cmd: [file, ...args] }, 'run');
  return await new Promise<RunResult>((resolve, reject) => {
    const child = spawn(file, [...args], { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes <= MAX_OUTPUT_BYTES) into.push(chunk);
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT') reject(new LabError('tool_missing', `${file} is not installed: the lab needs it (apt-get install ${toolPackage(file)})`));
      else reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const res: RunResult = { code: code ?? 128, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
      if (signal === 'SIGKILL' && code === null) {
        reject(new LabError('timeout', `${file} ${args.join(' ')} did not finish within ${timeoutMs} ms`));
        return;
      }
      if (res.code !== 0 && opts.allowFailure !== true) {
        reject(new LabError('command_failed', `${file} ${args.join(' ')} exited with ${res.code}: ${res.stderr.trim() || res.stdout.trim()}`));
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

function toolPackage(file: string): string {
  if (file.endsWith('/ip') || file === 'ip') return 'iproute2';
  if (file.endsWith('/nft') || file === 'nft') return 'nftables';
  return file.slice(file.lastIndexOf('/') + 1);
}
