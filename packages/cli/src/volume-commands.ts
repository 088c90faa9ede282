// `swarm volume create|ls|inspect|rm`: this node's named volumes (node-local, as in Docker), with Docker's table
// (DRIVER, VOLUME NAME), `--format json` lines and inspect's JSON array.

import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import type { VolumeDocument } from '@swarm/api/client';
import { clientFor, CliError, forEachRef, parseFormat, collect, parseKeyValues } from './context.js';
import { jsonLines, table, writeOut } from './output.js';




export function registerVolumeCommands(program: Command): void {
  const volume = program.command('volume').description("manage this node's volumes");

  volume
    .command('create')
    .description('create a volume (a task mounting a volume that does not exist creates it too)')
    .argument('[name]', 'volume name (default: a random one)')
    .option('-d, --driver <driver>', 'volume driver (only local)', 'local')
    .option('-l, --label <key=value>', 'volume label (repeatable)', collect, [])
    .action(async (name: string | undefined, opts: { driver: string; label: string[] }, command: Command) => {
      const client = clientFor(command);
      const v = await client.createVolume({ Name: name ?? randomBytes(32).toString('hex'), Driver: opts.driver, Labels: parseKeyValues(opts.label, '--label') });
      writeOut(v.Name);
    });

  volume
    .command('ls')
    .alias('list')
    .description('list volumes')
    .option('-q, --quiet', 'print names only')
    .option('--format <format>', 'table (default) or json (one object per line)')
    .action(async (opts: { quiet?: boolean; format?: string }, command: Command) => {
      const format = parseFormat(opts.format);
      const volumes = await clientFor(command).listVolumes();
      if (opts.quiet === true) writeOut(volumes.map((v) => v.Name).join('\n'));
      else if (format === 'json') writeOut(jsonLines(volumes.map((v) => ({ Driver: v.Driver, Name: v.Name, Mountpoint: v.Mountpoint, Scope: v.Scope, Labels: v.Labels }))));
      else writeOut(table(['DRIVER', 'VOLUME NAME'], volumes.map((v) => [v.Driver, v.Name])));
    });

  volume
    .command('inspect')
    .description('show volumes in detail (Docker\'s JSON shape)')
    .argument('<name...>', 'volume names')
    .action(async (names: string[], _opts: unknown, command: Command) => {
      const client = clientFor(command);
      const found: VolumeDocument[] = [];
      try {
        await forEachRef(names, async (n) => void found.push(await client.inspectVolume(n)));
      } finally {
        if (found.length > 0) writeOut(JSON.stringify(found, null, 4));
      }
    });

  volume
    .command('rm')
    .alias('remove')
    .description('remove volumes (refused while a task uses one)')
    .argument('<name...>', 'volume names')
    .action(async (names: string[], _opts: unknown, command: Command) => {
      const client = clientFor(command);
      await forEachRef(names, async (n) => {
        await client.removeVolume(n);
        writeOut(n);
      });
    });
}
