// What every client verb shares: which socket to talk to (-H/--socket, then $SWARM_SOCKET, then the default),
// the API client for it, and the error type the entry point prints as `swarm: MESSAGE`.

import type { Command } from 'commander';
import { ApiClient, ApiError, DEFAULT_SOCKET_PATH } from '@swarm/api/client';

/** An error meant for the user: printed as `swarm: MESSAGE`, exit code 1, never a stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function socketPath(command: Command): string {
  const opts = command.optsWithGlobals<{ socket?: string }>();
  return opts.socket ?? process.env['SWARM_SOCKET'] ?? DEFAULT_SOCKET_PATH;
}

export function clientFor(command: Command): ApiClient {
  return new ApiClient({ socketPath: socketPath(command) });
}

export type OutputFormat = 'table' | 'json';

export function parseFormat(value: string | undefined): OutputFormat {
  if (value === undefined || value === 'table') return 'table';
  if (value === 'json') return 'json';
  throw new CliError(`unsupported --format ${JSON.stringify(value)}: use table or json`);
}

/** Runs `fn` for each name; Docker does what it can, then fails naming what it could not (API errors only). */
export async function forEachRef(refs: readonly string[], fn: (ref: string) => Promise<void>): Promise<void> {
  const errors: string[] = [];
  for (const ref of refs) {
    try {
      await fn(ref);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      errors.push(err.message);
    }
  }
  if (errors.length > 0) throw new CliError(errors.join('\nswarm: '));
}

/** commander's collector for a repeatable option (`--label a --label b`). */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `key=value` items of a repeatable flag as a record; `key` alone means an empty value, as in Docker. */
export function parseKeyValues(items: readonly string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (key === '') throw new CliError(`invalid ${flag} ${JSON.stringify(item)}: use key=value`);
    out[key] = eq < 0 ? '' : item.slice(eq + 1);
  }
  return out;
}
