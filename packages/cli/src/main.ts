// The swarm command: parses argv and talks to the local daemon. No cluster logic lives here.
// Each verb group lives in its own module; this file wires them and turns failures into `swarm: MESSAGE`.

import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { ApiError, DaemonUnreachableError } from '@swarm/api/client';
import { CliError } from './context.js';
import { registerDaemonCommand } from './daemon-command.js';
import { registerLabCommands } from './lab.js';
import { registerNetworkCommands } from './network-commands.js';
import { registerSecretCommands } from './secret-commands.js';
import { registerNodeCommands } from './node-commands.js';
import { registerServiceCommands } from './service-commands.js';
import { registerStackCommands } from './stack-commands.js';
import { registerStackDeployCommands } from './stack-deploy-commands.js';
import { registerSwarmCommands } from './swarm-commands.js';
import { registerImageCommands } from './image-commands.js';
import { registerVolumeCommands } from './volume-commands.js';

/** dist/src/main.js -> the package's own package.json (read here so client verbs never load the daemon). */
function cliVersion(): string {
  const raw: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  const version = typeof raw === 'object' && raw !== null ? (raw as { version?: unknown }).version : undefined;
  return typeof version === 'string' ? version : '0.0.0';
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('swarm')
    .description('A Swarm-style container cluster')
    .version(cliVersion(), '-v, --version')
    // As in Docker, global flags come before the verb, and `service create IMAGE CMD -c …` passes -c to CMD.
    .enablePositionalOptions()
    .option('-H, --socket <path>', 'the daemon\'s unix socket (default $SWARM_SOCKET or /run/swarm/swarm.sock)');
  registerDaemonCommand(program);
  registerSwarmCommands(program);
  registerNodeCommands(program);
  registerServiceCommands(program);
  registerStackCommands(program);
  registerStackDeployCommands(program);
  registerNetworkCommands(program);
  registerSecretCommands(program);
  registerVolumeCommands(program);
  registerImageCommands(program);
  registerLabCommands(program);
  return program;
}

/** Errors the user can act on print as one line; anything else is a bug and prints its message too, never a stack. */
function report(err: unknown): number {
  if (err instanceof CliError) {
    process.stderr.write(`swarm: ${err.message}\n`);
    return err.exitCode;
  }
  const known = err instanceof ApiError || err instanceof DaemonUnreachableError;
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`swarm: ${known ? message : `unexpected error: ${message}`}\n`);
  return 1;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.exitCode = report(err);
  });
