// `swarm lab …`: many swarm hosts on this machine (network namespaces on a bridge, one daemon each),
// and the resilience verbs kill, restart, partition, heal. The machinery lives in @swarm/lab.

import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { BUSYBOX_BIN } from '@swarm/runtime';
import {
  LabError,
  createLab,
  destroyLab,
  execInHost,
  hostAlive,
  killHost,
  listLabs,
  loadLab,
  parseTarget,
  partitionLab,
  healLab,
  restartHost,
  registryDaemonFlags,
  seedLabImages,
  swarmInitJoin,
  REGISTRY_BIN,
  waitForSocket,
  type HostInfo,
} from '@swarm/lab';
import { componentLogger, silentLogger, type Logger } from '@swarm/wire';
import { CliError, parseFormat } from './context.js';
import { jsonLines, table, writeOut } from './output.js';

/** The `swarm` launcher the lab runs inside each namespace (daemon and init/join), wherever this CLI lives. */
const SWARM_BIN = fileURLToPath(new URL('../../bin/swarm.js', import.meta.url));

function swarmArgv(): string[] {
  return [process.execPath, SWARM_BIN];
}

/** Lab logs only when asked for (SWARM_LOG_LEVEL): the CLI's own output is the tables below. */
function labLogger(): Logger {
  return process.env['SWARM_LOG_LEVEL'] === undefined ? silentLogger() : componentLogger('lab', 'lab');
}

/**
 * A host's daemon. With the lab registry it is the daemons' Docker Hub mirror (plain HTTP), so `busybox` and the
 * other lab images run by their short names. SWARM_SOCKET, SWARM_DATA_DIR and SWARM_HOSTNAME are set by the lab
 * as well; the flags make `ps` readable.
 */
export function daemonCommand(runtime: string): (h: HostInfo) => { argv: string[] } {
  return (h) => {
    return { argv: [...swarmArgv(), 'daemon', '--data-dir', h.dataDir, '--hostname', h.name, '--runtime', runtime, ...registryDaemonFlags(h.registry)] };
  };
}

/** The lab registry needs Debian's docker-registry and, for its images, busybox-static. */
function registryMissing(): string | null {
  for (const bin of [REGISTRY_BIN, BUSYBOX_BIN]) if (!existsSync(bin)) return bin;
  return null;
}

function positiveInt(flag: string): (v: string) => number {
  return (v: string) => {
    if (!/^\d+$/.test(v)) throw new CliError(`${flag} ${JSON.stringify(v)} is not a whole number`);
    return Number(v);
  };
}

/** LabError is the user's to act on: print it as `swarm: MESSAGE`. */
function userErrors<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      if (e instanceof LabError) throw new CliError(e.message);
      throw e;
    }
  };
}

/** One host of `lab ls NAME`, with the field names of `--format json`. */
export interface LabHostRow {
  Node: string;
  Role: string;
  Address: string;
  Status: string;
  Pid: string;
  Socket: string;
}

function hostTable(rows: readonly LabHostRow[]): string {
  return table(['NODE', 'ROLE', 'ADDRESS', 'STATUS', 'PID', 'SOCKET'], rows.map((r) => [r.Node, r.Role, r.Address, r.Status, r.Pid, r.Socket]));
}

function hostRows(name: string): LabHostRow[] {
  return loadLab(name).hosts.map((h) => ({
    Node: h.name,
    Role: h.role,
    Address: h.ip,
    Status: hostAlive(h) ? 'running' : h.process.state === 'killed' ? 'killed' : 'stopped',
    Pid: h.process.state === 'running' || h.process.state === 'killed' ? String(h.process.pid) : '-',
    Socket: h.socketPath,
  }));
}

/** Splits `partition NAME A… -- B…` at the `--`, which commander drops from the operands. */
function partitionGroups(command: Command, operands: string[]): { a: string[]; b: string[] | undefined } {
  let rootCmd: Command = command;
  while (rootCmd.parent !== null) rootCmd = rootCmd.parent;
  const raw = (rootCmd as unknown as { rawArgs?: unknown }).rawArgs;
  const tokens = Array.isArray(raw) ? raw.filter((x): x is string => typeof x === 'string') : [];
  const at = tokens.findIndex((tok, i) => tok === 'partition' && tokens[i - 1] === 'lab');
  const after = at < 0 ? [] : tokens.slice(at + 2); // past `partition NAME`
  const sep = after.indexOf('--');
  if (sep < 0) return { a: operands, b: undefined };
  return { a: after.slice(0, sep), b: after.slice(sep + 1) };
}

export function registerLabCommands(program: Command): void {
  const lab = program
    .command('lab')
    .description('many swarm hosts on this machine: one network namespace, data dir and daemon each (needs root)');

  lab
    .command('up')
    .description('create a lab: N hosts node-1…node-N on a bridge, start their daemons, init and join them')
    .option('--name <name>', 'lab name', 'lab')
    .requiredOption('--nodes <n>', 'number of hosts', positiveInt('--nodes'))
    .requiredOption('--managers <m>', 'how many of them (the first) are managers', positiveInt('--managers'))
    .option('--subnet <cidr>', 'underlay A.B.C.0/24 (default: a free 10.250.K.0/24)')
    .option('--no-cluster', 'start hosts and daemons only; no init/join')
    .option('--runtime <name>', "the daemons' container runtime: auto (default), runc or process")
    .option('--no-registry', 'no lab registry (default: one on the bridge, holding busybox, swarm/httpd and swarm/crasher)')
    .action(
      userErrors(async (opts: { name: string; nodes: number; managers: number; subnet?: string; cluster: boolean; runtime?: string; registry: boolean }) => {
        const log = labLogger();
        const runtime = opts.runtime ?? 'auto';
        if (!['auto', 'runc', 'process'].includes(runtime)) throw new CliError(`--runtime ${JSON.stringify(runtime)}: use auto, runc or process`);
        const missing = opts.registry ? registryMissing() : null;
        if (missing !== null) throw new CliError(`the lab registry needs ${missing} (apt-get install docker-registry busybox-static), or pass --no-registry`);
        const created = await createLab({
          name: opts.name,
          nodes: opts.nodes,
          managers: opts.managers,
          ...(opts.subnet === undefined ? {} : { subnet: opts.subnet }),
          logger: log,
          command: daemonCommand(runtime),
          registry: opts.registry,
          seedRegistry: async (addr) => void (await seedLabImages(addr, tmpdir())),
          waitReady: (h) => waitForSocket(h),
          ...(opts.cluster ? { cluster: swarmInitJoin({ swarmArgv: swarmArgv() }) } : {}),
        });
        writeOut(hostTable(hostRows(created.name)));
        writeOut(`lab ${created.name} is up${opts.cluster ? ' and its cluster formed' : ' (no cluster: --no-cluster)'}; try \`swarm lab exec ${created.name}/node-1 -- swarm node ls\``);
      }),
    );

  lab
    .command('ls')
    .description('list labs, or the hosts of one lab')
    .argument('[name]', 'show this lab\'s hosts')
    .option('--format <format>', 'table (default) or json (one object per line)')
    .action(
      userErrors(async (name: string | undefined, opts: { format?: string }) => {
        const format = parseFormat(opts.format);
        if (name !== undefined) {
          const rows = hostRows(name);
          writeOut(format === 'json' ? jsonLines(rows) : hostTable(rows));
          return;
        }
        const labs = listLabs().map((l) => ({ Name: l.name, Nodes: l.nodes, Managers: l.managers, Status: l.status }));
        if (format === 'json') writeOut(jsonLines(labs));
        else writeOut(table(['NAME', 'NODES', 'MANAGERS', 'STATUS'], labs.map((l) => [l.Name, String(l.Nodes), String(l.Managers), l.Status])));
      }),
    );

  lab
    .command('down')
    .description('remove a lab: its daemons, namespaces, links and files (also after a crash; idempotent)')
    .argument('<name>')
    .action(
      userErrors(async (name: string) => {
        const r = await destroyLab(name, { logger: labLogger() });
        if (!r.found) {
          writeOut(`no lab ${name}: nothing to remove`);
          return;
        }
        writeOut(`removed lab ${name}: ${r.killedPids.length} processes, ${r.namespaces.length} namespaces, ${r.links.length} links`);
        if (r.strangers.length > 0) {
          writeOut(`warning: processes the lab did not start were still in its namespaces and were left alone: ${r.strangers.join(' ')}`);
        }
      }),
    );

  lab
    .command('exec')
    .description('run a command inside a host (SWARM_SOCKET points at its daemon): swarm lab exec lab/node-1 -- swarm node ls')
    .argument('<target>', 'LAB/NODE')
    .argument('<command...>', 'the command, after --')
    .action(
      userErrors(async (target: string, argv: string[]) => {
        const { lab: name, node } = parseTarget(target);
        const res = await execInHost(name, node, argv, { stdio: 'inherit' });
        process.exitCode = res.code;
      }),
    );

  lab
    .command('kill')
    .description('kill -9 a host\'s daemon')
    .argument('<target>', 'LAB/NODE')
    .action(
      userErrors(async (target: string) => {
        const { lab: name, node } = parseTarget(target);
        await killHost(name, node, { logger: labLogger() });
        writeOut(`killed ${target}`);
      }),
    );

  lab
    .command('restart')
    .description('start a host\'s daemon again on the same data dir (stopping it first if it runs)')
    .argument('<target>', 'LAB/NODE')
    .action(
      userErrors(async (target: string) => {
        const { lab: name, node } = parseTarget(target);
        await restartHost(name, node, { logger: labLogger(), waitReady: (h) => waitForSocket(h) });
        writeOut(`restarted ${target}`);
      }),
    );

  lab
    .command('partition')
    .description('drop underlay traffic between two groups of hosts (the second defaults to all the others)')
    .argument('<name>')
    .argument('<nodes...>', 'NODE… [-- NODE…]')
    .action(
      userErrors(async (name: string, nodes: string[], _opts: unknown, command: Command) => {
        const { a, b } = partitionGroups(command, nodes);
        await partitionLab(name, a, b, { logger: labLogger() });
        writeOut(`partitioned ${name}: ${a.join(' ')} | ${b === undefined ? 'all others' : b.join(' ')}`);
      }),
    );

  lab
    .command('heal')
    .description('remove every partition in a lab')
    .argument('<name>')
    .action(
      userErrors(async (name: string) => {
        await healLab(name, { logger: labLogger() });
        writeOut(`healed ${name}`);
      }),
    );
}
