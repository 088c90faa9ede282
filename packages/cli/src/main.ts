// The swarm command: parses argv and talks to the local daemon. No cluster logic lives here.
// Today it carries only the verbs that exist; each later issue adds its own.

import { Command } from 'commander';

const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command();
  program.name('swarm').description('A Swarm-style container cluster').version(VERSION, '-v, --version');
  return program;
}

const program = buildProgram();
program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`swarm: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
