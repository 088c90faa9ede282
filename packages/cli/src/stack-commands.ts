// `swarm stack …`: stacks of services from compose files. `stack config` prints the merged, interpolated file and
// needs no daemon; deploy/ls/ps/rm register beside it on the same `stack` command (see registerStackCommands).

import type { Command } from 'commander';
import { loadStack, stringifyStack, StackError, type LoadedStack } from '@swarm/stack';
import { CliError, collect } from './context.js';

export interface ComposeFileFlags {
  composeFile: string[];
  skipInterpolation?: boolean;
}

/**
 * Loads the `-c` files as every stack verb does: the process environment for interpolation, `.env` beside the first
 * file, Docker's warnings on stderr, and a StackError turned into the one-line `swarm: …` error (exit code 1).
 */
export async function loadComposeFiles(flags: ComposeFileFlags, options: { keepExtensions?: boolean } = {}): Promise<LoadedStack> {
  if (flags.composeFile.length === 0) throw new CliError('please specify a compose file (with --compose-file)');
  try {
    const loaded = await loadStack({
      files: flags.composeFile,
      env: process.env,
      ...(flags.skipInterpolation === true ? { skipInterpolation: true } : {}),
      ...(options.keepExtensions === true ? { keepExtensions: true } : {}),
    });
    for (const w of loaded.warnings) process.stderr.write(`${w}\n`);
    return loaded;
  } catch (err) {
    if (err instanceof StackError) throw new CliError(err.message);
    throw err;
  }
}

/** The `-c, --compose-file` option, repeatable, as Docker spells it. */
export function composeFileOption(command: Command): Command {
  return command.option('-c, --compose-file <file>', 'path to a compose file, or "-" to read from stdin (repeatable: later files merge onto earlier ones)', collect, []);
}

/** Registers `swarm stack` and its verbs; returns the `stack` command so other verbs can be added to it. */
export function registerStackCommands(program: Command): Command {
  const stack = program.command('stack').description('manage stacks: services, networks, secrets and configs from compose files');
  registerStackConfig(stack);
  return stack;
}

function registerStackConfig(stack: Command): void {
  composeFileOption(
    stack
      .command('config')
      .description('print the final compose file: every -c file merged in order and interpolated (needs no daemon)'),
  )
    .option('--skip-interpolation', 'do not substitute variables; print $VAR as written')
    .action(async (opts: ComposeFileFlags) => {
      const { model } = await loadComposeFiles(opts, { keepExtensions: true });
      process.stdout.write(stringifyStack(model));
    });
}
