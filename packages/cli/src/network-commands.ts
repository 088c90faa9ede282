// `swarm network create|ls|inspect|rm`: the cluster's overlay networks with Docker's flags, Docker's table
// (NETWORK ID, NAME, DRIVER, SCOPE), `--format json` lines and inspect's JSON array.

import type { Command } from 'commander';
import type { NetworkCreateRequest, NetworkDocument } from '@swarm/api/client';
import { clientFor, CliError, forEachRef, parseFormat, collect, parseKeyValues } from './context.js';
import { jsonLines, table, writeOut } from './output.js';



export interface NetworkCreateFlags {
  driver: string;
  subnet: string[];
  gateway: string[];
  ipRange: string[];
  attachable?: boolean;
  internal?: boolean;
  ingress?: boolean;
  opt: string[];
  label: string[];
}

/**
 * `network create` flags as Docker's request. Refused here, before any request: a driver other than overlay (a
 * swarm's networks span hosts), --ip-range (tasks take addresses from the whole subnet), a gateway without a subnet.
 */
export function networkRequestFromFlags(name: string, f: NetworkCreateFlags): NetworkCreateRequest {
  if (f.driver !== 'overlay') {
    throw new CliError(`invalid --driver ${JSON.stringify(f.driver)}: swarm makes overlay networks only (bridge, host and the other drivers make one host's networks, which a swarm service cannot span)`);
  }
  if (f.ipRange.length > 0) throw new CliError('--ip-range is not supported: tasks take addresses from the whole subnet; give a smaller --subnet instead');
  if (f.subnet.length > 1) throw new CliError('a swarm network takes one --subnet');
  if (f.gateway.length > 1) throw new CliError('a swarm network takes one --gateway');
  const subnet = f.subnet[0];
  const gateway = f.gateway[0];
  if (gateway !== undefined && subnet === undefined) throw new CliError('--gateway needs the --subnet it is in');
  const request: NetworkCreateRequest = { Name: name, Driver: 'overlay' };
  if (subnet !== undefined) request.IPAM = { Driver: 'default', Config: [{ Subnet: subnet, ...(gateway === undefined ? {} : { Gateway: gateway }) }] };
  if (f.attachable === true) request.Attachable = true;
  if (f.internal === true) request.Internal = true;
  if (f.ingress === true) request.Ingress = true;
  if (f.opt.length > 0) request.Options = parseKeyValues(f.opt, '--opt');
  if (f.label.length > 0) request.Labels = parseKeyValues(f.label, '--label');
  return request;
}

export interface NetworkRow {
  ID: string;
  Name: string;
  Driver: string;
  Scope: string;
  Internal: string;
  IPv6: string;
  Labels: string;
  CreatedAt: string;
}

export function networkRow(n: NetworkDocument, noTrunc = false): NetworkRow {
  return {
    ID: noTrunc ? n.Id : n.Id.slice(0, 12),
    Name: n.Name,
    Driver: n.Driver,
    Scope: n.Scope,
    Internal: String(n.Internal),
    IPv6: String(n.EnableIPv6),
    Labels: Object.entries(n.Labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
    CreatedAt: n.Created,
  };
}

/**
 * Docker's `network ls --filter`: name (a substring), id (a prefix), driver, scope, label (key or key=value),
 * type (custom; builtin matches none, as a swarm has no predefined networks but ingress, which Docker calls custom).
 * Values of one key are alternatives; different keys must all hold.
 */
export function networkFilter(filters: readonly string[]): (n: NetworkDocument) => boolean {
  const byKey = new Map<string, string[]>();
  for (const f of filters) {
    const eq = f.indexOf('=');
    const key = eq < 0 ? f : f.slice(0, eq);
    const value = eq < 0 ? '' : f.slice(eq + 1);
    if (!['name', 'id', 'driver', 'scope', 'label', 'type'].includes(key) || value === '') {
      throw new CliError(`invalid filter ${JSON.stringify(f)}: use name=NAME, id=ID, driver=DRIVER, scope=SCOPE, label=KEY[=VALUE] or type=custom|builtin`);
    }
    byKey.set(key, [...(byKey.get(key) ?? []), value]);
  }
  return (n) =>
    [...byKey].every(([key, values]) =>
      values.some((v) => {
        switch (key) {
          case 'name':
            return n.Name.includes(v);
          case 'id':
            return n.Id.startsWith(v);
          case 'driver':
            return n.Driver === v;
          case 'scope':
            return n.Scope === v;
          case 'type':
            return v === 'custom';
          default: {
            const eq = v.indexOf('=');
            return eq < 0 ? Object.hasOwn(n.Labels, v) : n.Labels[v.slice(0, eq)] === v.slice(eq + 1);
          }
        }
      }),
    );
}

export function registerNetworkCommands(program: Command): void {
  const network = program.command('network').description("manage the cluster's overlay networks");

  network
    .command('create')
    .description('create an overlay network (answers once the cluster has given it a subnet and VXLAN id)')
    .argument('<name>', 'network name')
    .option('-d, --driver <driver>', 'network driver (only overlay)', 'overlay')
    .option('--subnet <cidr>', 'the subnet, e.g. 10.0.9.0/24 (default: a /24 of the cluster\'s address pool)', collect, [])
    .option('--gateway <ip>', 'the gateway in the subnet (default: its first address)', collect, [])
    .option('--ip-range <cidr>', 'not supported: tasks take addresses from the whole subnet', collect, [])
    .option('--attachable', 'let standalone containers attach (recorded; swarm runs services only)')
    .option('--internal', 'no traffic to or from outside the network')
    .option('--ingress', 'make it the routing-mesh network (there is one, made at init)')
    .option('-o, --opt <key=value>', 'driver option, e.g. encrypted (repeatable)', collect, [])
    .option('-l, --label <key=value>', 'network label (repeatable)', collect, [])
    .action(async (name: string, opts: NetworkCreateFlags, command: Command) => {
      const { Id, Warning } = await clientFor(command).createNetwork(networkRequestFromFlags(name, opts));
      if (Warning !== '') process.stderr.write(`WARNING: ${Warning}\n`);
      writeOut(Id);
    });

  network
    .command('ls')
    .alias('list')
    .description('list networks')
    .option('-q, --quiet', 'print IDs only')
    .option('--no-trunc', 'do not truncate the IDs')
    .option('--format <format>', 'table (default) or json (one object per line)')
    .option('-f, --filter <key=value>', 'name=NAME, id=ID, driver=DRIVER, scope=SCOPE, label=KEY[=VALUE] (repeatable)', collect, [])
    .action(async (opts: { quiet?: boolean; trunc: boolean; format?: string; filter: string[] }, command: Command) => {
      const format = parseFormat(opts.format);
      const keep = networkFilter(opts.filter);
      const rows = (await clientFor(command).listNetworks()).filter(keep).map((n) => networkRow(n, !opts.trunc));
      if (opts.quiet === true) writeOut(rows.map((r) => r.ID).join('\n'));
      else if (format === 'json') writeOut(jsonLines(rows));
      else writeOut(table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], rows.map((r) => [r.ID, r.Name, r.Driver, r.Scope])));
    });

  network
    .command('inspect')
    .description("show networks in detail (Docker's JSON shape, with every task attached anywhere in the cluster)")
    .argument('<network...>', 'network names, ids or id prefixes')
    .option('--format <format>', 'the JSON array (default), or json: one object per line')
    .action(async (refs: string[], opts: { format?: string }, command: Command) => {
      const format = opts.format === undefined ? 'table' : parseFormat(opts.format);
      const client = clientFor(command);
      const found: NetworkDocument[] = [];
      try {
        await forEachRef(refs, async (r) => void found.push(await client.inspectNetwork(r)));
      } finally {
        if (found.length > 0) writeOut(format === 'json' ? jsonLines(found) : JSON.stringify(found, null, 4));
      }
    });

  network
    .command('rm')
    .alias('remove')
    .description('remove networks (refused while a service or a task uses one)')
    .argument('<network...>', 'network names, ids or id prefixes')
    .action(async (refs: string[], _opts: unknown, command: Command) => {
      const client = clientFor(command);
      await forEachRef(refs, async (r) => {
        await client.removeNetwork(r);
        writeOut(r);
      });
    });
}
