// Runs one external tool with an argument array (never a shell string), bounded in time and output, with the
// network driver's runner; the per-tool modules (ip.ts, nft.ts) build the arguments. Errors are the lab's.

import { NetError, runTool } from '@swarm/netdriver';
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

let log: Logger | null = null;
function logger(): Logger {
  if (log === null) log = componentLogger('lab', 'lab-run');
  return log;
}

export async function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  try {
    return await runTool(logger(), file, args, { timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, ...opts });
  } catch (err) {
    // The lab's callers know its errors: the same codes under the lab's own type.
    if (err instanceof NetError && (err.code === 'tool_missing' || err.code === 'timeout' || err.code === 'command_failed')) throw new LabError(err.code, err.message);
    throw err;
  }
}

export { systemTool } from '@swarm/netdriver';
