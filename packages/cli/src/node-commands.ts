// `swarm node ls|inspect|update|promote|demote|rm`: Docker's table (ID with `*` for this node), `--format json`
// lines with Docker's field names, inspect's JSON array or its --pretty text, and Docker's messages for changes.

import type { Command } from 'commander';
import { ApiError, type ApiClient, type NodeDocument, type NodeUpdateRequest } from '@swarm/api/client';
import { clientFor, CliError, parseFormat, collect } from './context.js';
import { bytesSize, capitalize, jsonLines, table, writeOut } from './output.js';

/** The row of `node ls --format json`: Docker's NodeContext fields. */
export interface NodeRow {
  ID: string;
  Self: boolean;
  Hostname: string;
  Status: string;
  Availability: string;
  ManagerStatus: string;
  EngineVersion: string;
  TLSStatus: string;
}

export function nodeRow(node: NodeDocument, selfId: string): NodeRow {
  let managerStatus = '';
  if (node.ManagerStatus !== undefined) {
    managerStatus = node.ManagerStatus.Leader ? 'Leader' : capitalize(node.ManagerStatus.Reachability);
  }
  return {
    ID: node.ID,
    Self: node.ID === selfId,
    Hostname: node.Description.Hostname,
    Status: capitalize(node.Status.State),
    Availability: capitalize(node.Spec.Availability),
    ManagerStatus: managerStatus,
    EngineVersion: node.Description.Engine.EngineVersion,
    // Every node holds a certificate from the cluster's CA (root rotation does not exist yet).
    TLSStatus: 'Ready',
  };
}

export function renderNodeTable(rows: readonly NodeRow[]): string {
  return table(
    ['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS', 'ENGINE VERSION'],
    rows.map((r) => [r.Self ? `${r.ID} *` : r.ID, r.Hostname, r.Status, r.Availability, r.ManagerStatus, r.EngineVersion]),
  );
}

export function renderNodePretty(node: NodeDocument): string {
  const lines = [`ID:                     ${node.ID}`];
  if (node.Spec.Name !== undefined) lines.push(`Name:                   ${node.Spec.Name}`);
  const labels = Object.entries(node.Spec.Labels);
  if (labels.length > 0) lines.push('Labels:', ...labels.map(([k, v]) => ` - ${k}${v === '' ? '' : `=${v}`}`));
  lines.push(
    `Hostname:               ${node.Description.Hostname}`,
    `Joined at:              ${node.CreatedAt}`,
    'Status:',
    ` State:                 ${capitalize(node.Status.State)}`,
  );
  if (node.Status.Message !== undefined) lines.push(` Message:               ${node.Status.Message}`);
  lines.push(` Availability:          ${capitalize(node.Spec.Availability)}`);
  if (node.Status.Addr !== '') lines.push(` Address:               ${node.Status.Addr}`);
  if (node.ManagerStatus !== undefined) {
    lines.push(
      'Manager Status:',
      ` Address:               ${node.ManagerStatus.Addr}`,
      ` Raft Status:           ${capitalize(node.ManagerStatus.Reachability)}`,
      ` Leader:                ${node.ManagerStatus.Leader ? 'Yes' : 'No'}`,
    );
  }
  lines.push(
    'Platform:',
    ` Operating System:      ${node.Description.Platform.OS}`,
    ` Architecture:          ${node.Description.Platform.Architecture}`,
    'Resources:',
    ` CPUs:                  ${node.Description.Resources.NanoCPUs / 1e9}`,
    ` Memory:                ${bytesSize(node.Description.Resources.MemoryBytes)}`,
    `Engine Version:         ${node.Description.Engine.EngineVersion}`,
  );
  return lines.join('\n');
}

export function registerNodeCommands(program: Command): void {
  const node = program.command('node').description('manage the swarm\'s nodes');

  node
    .command('ls')
    .alias('list')
    .description('list the nodes of the swarm')
    .option('--format <format>', 'table (default) or json (one object per line)')
    .option('-q, --quiet', 'print node IDs only')
    .action(async (opts: { format?: string; quiet?: boolean }, command: Command) => {
      const format = parseFormat(opts.format);
      const client = clientFor(command);
      const [info, nodes] = await Promise.all([client.info(), client.listNodes()]);
      const rows = nodes.map((n) => nodeRow(n, info.Swarm.NodeID));
      if (opts.quiet === true) writeOut(rows.map((r) => r.ID).join('\n'));
      else writeOut(format === 'json' ? jsonLines(rows) : renderNodeTable(rows));
    });

  node
    .command('inspect')
    .description('show one or more nodes in detail (Docker\'s JSON shape)')
    .argument('<node...>', 'node id, id prefix or hostname ("self" for this node)')
    .option('--pretty', 'print a human-readable summary instead of JSON')
    .action(async (refs: string[], opts: { pretty?: boolean }, command: Command) => {
      const client = clientFor(command);
      const found: NodeDocument[] = [];
      const errors: string[] = [];
      for (const ref of refs) {
        const target = ref === 'self' ? (await client.info()).Swarm.NodeID : ref;
        try {
          found.push(await client.inspectNode(target));
        } catch (err) {
          // Docker prints what it found and fails for the rest; only user-facing API errors are collected.
          if (!(err instanceof ApiError) || (err.code !== 'not_found' && err.code !== 'ambiguous')) throw err;
          errors.push(err.message);
        }
      }
      if (found.length > 0) {
        writeOut(opts.pretty === true ? found.map(renderNodePretty).join('\n\n') : JSON.stringify(found, null, 4));
      }
      if (errors.length > 0) throw new CliError(errors.join('\nswarm: '));
    });

  node
    .command('update')
    .description("change a node's availability, labels or role")
    .argument('<node>', 'node id, id prefix or hostname')
    .option('--availability <availability>', 'active, pause (no new tasks) or drain (tasks move away)')
    .option('--label-add <key=value>', 'add or change a node label (repeatable)', collect, [])
    .option('--label-rm <key>', 'remove a node label (repeatable)', collect, [])
    .option('--role <role>', 'worker or manager')
    .action(async (ref: string, opts: { availability?: string; labelAdd: string[]; labelRm: string[]; role?: string }, command: Command) => {
      const changes = parseNodeUpdate(opts);
      if (Object.keys(changes).length === 0) throw new CliError('node update needs at least one of --availability, --label-add, --label-rm, --role');
      const updated = await clientFor(command).updateNode(ref, changes);
      writeOut(updated.ID);
    });

  node
    .command('promote')
    .description('make workers managers (Raft voters)')
    .argument('<node...>', 'node ids, id prefixes or hostnames')
    .action(async (refs: string[], _opts: unknown, command: Command) => changeRoles(clientFor(command), refs, 'manager'));

  node
    .command('demote')
    .description('make managers workers (leaves Raft; refused if it would break the quorum)')
    .argument('<node...>', 'node ids, id prefixes or hostnames')
    .action(async (refs: string[], _opts: unknown, command: Command) => changeRoles(clientFor(command), refs, 'worker'));

  node
    .command('rm')
    .alias('remove')
    .description('remove nodes from the swarm (a manager must be demoted first)')
    .argument('<node...>', 'node ids, id prefixes or hostnames')
    .option('-f, --force', 'remove a node even if it is not down')
    .action(async (refs: string[], opts: { force?: boolean }, command: Command) => {
      const client = clientFor(command);
      const errors: string[] = [];
      for (const ref of refs) {
        try {
          await client.removeNode(ref, opts.force === true);
          writeOut(ref);
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          errors.push(err.message);
        }
      }
      if (errors.length > 0) throw new CliError(errors.join('\nswarm: '));
    });
}


/** The flags of `node update` as API changes; a malformed flag names itself. */
export function parseNodeUpdate(opts: { availability?: string; labelAdd: string[]; labelRm: string[]; role?: string }): NodeUpdateRequest {
  const changes: NodeUpdateRequest = {};
  if (opts.availability !== undefined) {
    if (opts.availability !== 'active' && opts.availability !== 'pause' && opts.availability !== 'drain') {
      throw new CliError(`invalid --availability ${JSON.stringify(opts.availability)}: use active, pause or drain`);
    }
    changes.availability = opts.availability;
  }
  if (opts.role !== undefined) {
    if (opts.role !== 'worker' && opts.role !== 'manager') throw new CliError(`invalid --role ${JSON.stringify(opts.role)}: use worker or manager`);
    changes.role = opts.role;
  }
  if (opts.labelAdd.length > 0) {
    const labels: Record<string, string> = {};
    for (const item of opts.labelAdd) {
      const eq = item.indexOf('=');
      const key = eq < 0 ? item : item.slice(0, eq);
      if (key === '') throw new CliError(`invalid --label-add ${JSON.stringify(item)}: use key=value or key`);
      labels[key] = eq < 0 ? '' : item.slice(eq + 1);
    }
    changes.labelAdd = labels;
  }
  if (opts.labelRm.length > 0) {
    for (const key of opts.labelRm) {
      if (key === '' || key.includes('=')) throw new CliError(`invalid --label-rm ${JSON.stringify(key)}: give a label key`);
    }
    changes.labelRm = opts.labelRm;
  }
  return changes;
}

/** promote/demote: Docker's messages, one node at a time; nodes already in the role are reported, not refused. */
async function changeRoles(client: ApiClient, refs: readonly string[], role: 'manager' | 'worker'): Promise<void> {
  const errors: string[] = [];
  for (const ref of refs) {
    try {
      const node = await client.inspectNode(ref);
      if (node.Spec.Role === role) {
        writeOut(`Node ${ref} is already a ${role}.`);
        continue;
      }
      await client.updateNode(ref, { role });
      writeOut(role === 'manager' ? `Node ${ref} promoted to a manager in the swarm.` : `Manager ${ref} demoted in the swarm.`);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      errors.push(err.message);
    }
  }
  if (errors.length > 0) throw new CliError(errors.join('\nswarm: '));
}
