// `swarm init`, `swarm join-token` and `swarm info`: the cluster-level verbs, printing Docker's texts.

import type { Command } from 'commander';
import type { InfoDocument, JoinTokenDocument } from '@swarm/api/client';
import { clientFor, CliError, parseFormat } from './context.js';
import { bytesSize, writeOut } from './output.js';

function joinInstructions(doc: JoinTokenDocument): string {
  return [
    `To add a ${doc.Role} to this swarm, run the following command:`,
    '',
    `    swarm join --token ${doc.Token} ${doc.ManagerAddr}`,
    '',
  ].join('\n');
}

export function registerSwarmCommands(program: Command): void {
  program
    .command('init')
    .description('make this node the first manager of a new swarm')
    .option('--advertise-addr <ip>', 'address other nodes reach this one at (IP or IP:PORT)')
    .option('--listen-addr <ip:port>', 'address of the cluster endpoint (default 0.0.0.0:2377)')
    .action(async (opts: { advertiseAddr?: string; listenAddr?: string }, command: Command) => {
      const client = clientFor(command);
      const res = await client.initSwarm({
        ...(opts.advertiseAddr === undefined ? {} : { advertiseAddr: opts.advertiseAddr }),
        ...(opts.listenAddr === undefined ? {} : { listenAddr: opts.listenAddr }),
      });
      const worker = await client.joinToken('worker');
      writeOut(
        [
          `Swarm initialized: current node (${res.NodeID}) is now a manager.`,
          '',
          joinInstructions(worker),
          "To add a manager to this swarm, run 'swarm join-token manager' and follow the instructions.",
          '',
        ].join('\n'),
      );
    });

  program
    .command('join')
    .description('join a swarm as the worker or manager the token says')
    .argument('<host:port>', "a manager's address (port 2377 when omitted)")
    .requiredOption('--token <token>', 'the join token (`swarm join-token worker|manager` on a manager)')
    .option('--advertise-addr <ip>', 'address other nodes reach this one at (IP or IP:PORT)')
    .option('--listen-addr <ip:port>', 'address this node listens on (default 0.0.0.0:2377)')
    .action(async (remoteAddr: string, opts: { token: string; advertiseAddr?: string; listenAddr?: string }, command: Command) => {
      const res = await clientFor(command).joinSwarm({
        remoteAddr,
        token: opts.token,
        ...(opts.advertiseAddr === undefined ? {} : { advertiseAddr: opts.advertiseAddr }),
        ...(opts.listenAddr === undefined ? {} : { listenAddr: opts.listenAddr }),
      });
      writeOut(res.Role === 'manager' ? 'This node joined a swarm as a manager.' : 'This node joined a swarm as a worker.');
    });

  program
    .command('leave')
    .description('leave the swarm (a manager must be demoted first, or use --force)')
    .option('-f, --force', 'leave even as a manager, or when no manager answers')
    .action(async (opts: { force?: boolean }, command: Command) => {
      const res = await clientFor(command).leaveSwarm(opts.force === true);
      writeOut(res.ClusterForgot ? 'Node left the swarm.' : 'Node left the swarm. No manager could be told: remove it there with `swarm node rm`.');
    });

  program
    .command('join-token')
    .description('show (or rotate) the token a worker or manager joins with')
    .argument('<role>', 'worker or manager')
    .option('--rotate', 'replace the token; the old one stops working at once')
    .option('-q, --quiet', 'print the token only')
    .action(async (role: string, opts: { rotate?: boolean; quiet?: boolean }, command: Command) => {
      if (role !== 'worker' && role !== 'manager') throw new CliError(`unknown role ${role}: use worker or manager`);
      const doc = await clientFor(command).joinToken(role, opts.rotate === true);
      if (opts.quiet === true) {
        writeOut(doc.Token);
        return;
      }
      const lines: string[] = [];
      if (doc.Rotated) lines.push(`Successfully rotated ${role} join token.`, '');
      lines.push(joinInstructions(doc));
      writeOut(lines.join('\n'));
    });

  program
    .command('info')
    .description('show this node and the swarm it belongs to')
    .option('--format <format>', 'table (default) or json')
    .action(async (opts: { format?: string }, command: Command) => {
      const format = parseFormat(opts.format);
      const info = await clientFor(command).info();
      writeOut(format === 'json' ? JSON.stringify(info) : renderInfo(info));
    });
}

export function renderInfo(info: InfoDocument): string {
  const s = info.Swarm;
  const lines = ['Server:', ` Server Version: ${info.ServerVersion}`, ` Swarm: ${s.LocalNodeState}`];
  if (s.LocalNodeState === 'active') {
    lines.push(`  NodeID: ${s.NodeID}`, `  Is Manager: ${s.ControlAvailable}`);
    if (s.Cluster !== undefined) lines.push(`  ClusterID: ${s.Cluster.ID}`);
    if (s.Managers !== undefined) lines.push(`  Managers: ${s.Managers}`);
    if (s.Nodes !== undefined) lines.push(`  Nodes: ${s.Nodes}`);
    lines.push(`  Node Address: ${s.NodeAddr}`);
    if (s.RemoteManagers !== null && s.RemoteManagers.length > 0) {
      lines.push('  Manager Addresses:', ...s.RemoteManagers.map((m) => `   ${m.Addr}`));
    }
  }
  if (s.Error !== '') lines.push(`  Error: ${s.Error}`);
  lines.push(
    ` Operating System: ${info.OperatingSystem}`,
    ` Architecture: ${info.Architecture}`,
    ` CPUs: ${info.NCPU}`,
    ` Total Memory: ${bytesSize(info.MemTotal)}`,
    ` Name: ${info.Name}`,
    ` ID: ${info.ID}`,
    ` Swarm Root Dir: ${info.DataDir}`,
  );
  return lines.join('\n');
}
