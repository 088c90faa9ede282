// `swarm stack deploy|ls|services|ps|rm`: a compose file converted and deployed by @swarm/stack through the API
// client, and the stack's services and tasks listed as `service ls`/`service ps` show them.

import type { Command } from 'commander';
import type { ApiClient, ServiceDocument } from '@swarm/api/client';
import { convertStack, deployStack, LABEL_NAMESPACE, listStacks, removeStack, StackError, type SourcePosition } from '@swarm/stack';
import { clientFor, CliError, collect, parseFormat } from './context.js';
import { jsonLines, table, writeOut } from './output.js';
import { serviceRow, taskFilter, taskRows, type TaskRow } from './service-commands.js';
import { apiStackBackend } from './stack-backend.js';
import { composeFileOption, loadComposeFiles } from './stack-commands.js';

/** How long `deploy --detach=false` waits for the stack's services to converge. */
const CONVERGE_TIMEOUT_MS = 300_000;
const CONVERGE_POLL_MS = 500;

/** `--detach` takes an optional boolean, as Docker's `--detach=false`. */
function parseBool(value: string): boolean {
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new CliError(`invalid boolean ${JSON.stringify(value)}: use true or false`);
}

/**
 * A StackError is the user's to fix: printed as `swarm: MESSAGE` like every CLI error, with the file:line:column of
 * the key it names when `locate` finds it (the converter knows key paths, not the text).
 */
async function userErrors<T>(fn: () => Promise<T>, locate: (path: string) => SourcePosition | null = () => null): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof StackError)) throw err;
    const pos = err.position ?? (err.path === null ? null : locate(err.path));
    throw new CliError(pos === null ? err.message : `${pos.file}:${pos.line}:${pos.column}: ${err.message}`);
  }
}

async function stackServices(client: ApiClient, namespace: string, status: boolean): Promise<ServiceDocument[]> {
  return (await client.listServices(status)).filter((s) => s.Spec.Labels[LABEL_NAMESPACE] === namespace).sort((a, b) => a.Spec.Name.localeCompare(b.Spec.Name));
}

/**
 * `--detach=false`: one line per service whenever its running/desired count or what blocks it changes, until every
 * service runs what it wants (exit 0) or one fails its update (an error naming it), or the deadline passes.
 * `startedBefore` is each service's UpdateStatus.StartedAt before the deploy: a rollback that started since is this
 * deploy's update failing.
 */
async function waitStackConverged(client: ApiClient, namespace: string, names: ReadonlySet<string>, startedBefore: ReadonlyMap<string, string | undefined>): Promise<void> {
  const deadline = Date.now() + CONVERGE_TIMEOUT_MS;
  const last = new Map<string, string>();
  for (;;) {
    const services = (await stackServices(client, namespace, true)).filter((s) => names.has(s.Spec.Name));
    let converged = true;
    for (const s of services) {
      const st = s.ServiceStatus;
      const running = st?.RunningTasks ?? 0;
      const desired = st?.DesiredTasks ?? 0;
      let blocking = '';
      const u = s.UpdateStatus;
      if (u !== undefined && (u.State === 'paused' || u.State === 'rollback_paused')) {
        throw new CliError(`service ${s.Spec.Name}: ${u.Message}; see \`swarm service ps ${s.Spec.Name}\``);
      }
      if (u !== undefined && u.State === 'rollback_completed' && u.StartedAt !== startedBefore.get(s.Spec.Name)) {
        // The newest task error says why the update failed (the rollback's own message only says it happened).
        const failed = (await client.listTasks({ service: s.ID })).filter((t) => t.Status.Err !== undefined).sort((a, b) => Date.parse(b.Status.Timestamp) - Date.parse(a.Status.Timestamp))[0];
        const why = failed === undefined ? '' : ` (${failed.Name}: ${failed.Status.Err ?? ''})`;
        throw new CliError(`service ${s.Spec.Name} rolled back: ${u.Message}${why}; see \`swarm service ps ${s.Spec.Name}\``);
      }
      const updating = u !== undefined && (u.State === 'updating' || u.State === 'rollback_started');
      if (running < desired || updating) {
        converged = false;
        const tasks = (await client.listTasks({ service: s.ID })).filter((t) => t.DesiredState === 'running' && t.Status.State !== 'running');
        const waiting = tasks.find((t) => t.Status.Err !== undefined) ?? tasks[0];
        if (waiting !== undefined) blocking = ` (${waiting.Status.State}${waiting.Status.Err !== undefined ? `: ${waiting.Status.Err}` : waiting.Status.Message !== '' ? `: ${waiting.Status.Message}` : ''})`;
        if (updating) blocking += ` ${u.Message}`;
      }
      const line = `${s.Spec.Name}: ${running}/${desired} running${blocking}`;
      if (last.get(s.Spec.Name) !== line) writeOut(line);
      last.set(s.Spec.Name, line);
    }
    if (converged) {
      writeOut('verify: Stack converged');
      return;
    }
    if (Date.now() > deadline) throw new CliError(`stack ${namespace} did not converge within ${CONVERGE_TIMEOUT_MS / 1000} s; see \`swarm stack ps ${namespace}\` (it keeps trying)`);
    await new Promise((r) => setTimeout(r, CONVERGE_POLL_MS));
  }
}

/**
 * Docker's `stack services --filter`: values of one key are alternatives, different keys must all hold. A name is
 * matched with and without the stack's prefix (`web` finds `shop_web`), as Docker's.
 */
export function serviceFilter(filters: readonly string[], namespace: string): (s: ServiceDocument) => boolean {
  const byKey = new Map<string, string[]>();
  for (const f of filters) {
    const eq = f.indexOf('=');
    const key = eq < 0 ? f : f.slice(0, eq);
    const value = eq < 0 ? '' : f.slice(eq + 1);
    if (!['id', 'name', 'label', 'mode'].includes(key) || value === '') throw new CliError(`invalid filter ${JSON.stringify(f)}: use id=ID, name=NAME, label=KEY[=VALUE] or mode=replicated|global`);
    if (key === 'mode' && value !== 'replicated' && value !== 'global') throw new CliError(`invalid filter ${JSON.stringify(f)}: mode is replicated or global`);
    byKey.set(key, [...(byKey.get(key) ?? []), value]);
  }
  return (s) =>
    [...byKey].every(([key, values]) =>
      values.some((v) => {
        switch (key) {
          case 'id':
            return s.ID.startsWith(v);
          case 'name':
            return s.Spec.Name.startsWith(v) || s.Spec.Name.startsWith(`${namespace}_${v}`);
          case 'label': {
            const eq = v.indexOf('=');
            const k = eq < 0 ? v : v.slice(0, eq);
            return Object.hasOwn(s.Spec.Labels, k) && (eq < 0 || s.Spec.Labels[k] === v.slice(eq + 1));
          }
          default:
            return (s.Spec.Mode.Global !== undefined ? 'global' : 'replicated') === v;
        }
      }),
    );
}

/** Adds deploy (up), ls, services, ps and rm (down) to the `stack` command group, making the group if need be. */
export function registerStackDeployCommands(program: Command): void {
  const stack = program.commands.find((c) => c.name() === 'stack') ?? program.command('stack').description('manage stacks: services, networks, secrets and configs from compose files');

  composeFileOption(
    stack
      .command('deploy')
      .alias('up')
      .description('deploy a new stack or update an existing one')
      .argument('<stack>', 'the stack name (prefix of its objects)'),
  )
    .option('--skip-interpolation', 'do not substitute variables in the files')
    .option('--prune', 'remove the services the file no longer has')
    .option('--with-registry-auth', "send this node's registry login with the services, so every node can pull their images")
    .option('--resolve-image <when>', 'pin images to their registry digest: always (default), changed (only images the file changed) or never')
    .option('-d, --detach [bool]', 'exit at once; --detach=false waits until the services converge (the default on a terminal)', parseBool)
    .action(async (name: string, opts: { composeFile: string[]; skipInterpolation?: boolean; prune?: boolean; withRegistryAuth?: boolean; resolveImage?: string; detach?: boolean }, command: Command) => {
      // Docker's coming default: wait and show progress on a terminal, return at once in scripts.
      const detach = opts.detach ?? process.stdout.isTTY !== true;
      const resolveImage = opts.resolveImage ?? 'always';
      if (resolveImage !== 'always' && resolveImage !== 'changed' && resolveImage !== 'never') throw new CliError(`invalid --resolve-image ${JSON.stringify(resolveImage)}: use always, changed or never`);
      const client = clientFor(command);
      // The loader prints its warnings and turns its errors into one-line CLI errors.
      const loaded = await loadComposeFiles(opts);
      const startedBefore = detach ? new Map<string, string | undefined>() : new Map((await stackServices(client, name, false)).map((s) => [s.Spec.Name, s.UpdateStatus?.StartedAt]));
      await userErrors(async () => {
        const converted = convertStack(name, loaded.model, { workingDir: loaded.workingDir, environment: process.env });
        for (const w of converted.warnings) process.stderr.write(`${w}\n`);
        const result = await deployStack(apiStackBackend(client), converted, { prune: opts.prune === true, withRegistryAuth: opts.withRegistryAuth === true, resolveImage, log: writeOut });
        for (const w of result.warnings) process.stderr.write(`${w}\n`);
        if (!detach) await waitStackConverged(client, name, new Set(converted.services.map((s) => s.name)), startedBefore);
      }, loaded.locate);
    });

  stack
    .command('ls')
    .alias('list')
    .description('list stacks')
    .option('--format <format>', 'table (default) or json (one object per line)')
    .action(async (opts: { format?: string }, command: Command) => {
      const format = parseFormat(opts.format);
      const stacks = await listStacks(apiStackBackend(clientFor(command)));
      if (format === 'json') writeOut(jsonLines(stacks.map((s) => ({ Name: s.name, Services: String(s.services) }))));
      else writeOut(table(['NAME', 'SERVICES'], stacks.map((s) => [s.name, String(s.services)])));
    });

  stack
    .command('services')
    .description("list a stack's services")
    .argument('<stack>', 'the stack name')
    .option('--format <format>', 'table (default) or json (one object per line)')
    .option('-q, --quiet', 'print IDs only')
    .option('-f, --filter <key=value>', 'id=ID (prefix), name=NAME (prefix, with or without the stack), label=KEY[=VALUE], mode=replicated|global (repeatable)', collect, [])
    .action(async (name: string, opts: { format?: string; quiet?: boolean; filter: string[] }, command: Command) => {
      const format = parseFormat(opts.format);
      const keep = serviceFilter(opts.filter, name);
      const rows = (await stackServices(clientFor(command), name, true)).filter(keep).map(serviceRow);
      if (rows.length === 0) {
        process.stderr.write(`Nothing found in stack: ${name}\n`);
        return;
      }
      if (opts.quiet === true) writeOut(rows.map((r) => r.ID).join('\n'));
      else if (format === 'json') writeOut(jsonLines(rows));
      else writeOut(table(['ID', 'NAME', 'MODE', 'REPLICAS', 'IMAGE', 'PORTS'], rows.map((r) => [r.ID, r.Name, r.Mode, r.Replicas, r.Image, r.Ports])));
    });

  stack
    .command('ps')
    .description("list a stack's tasks")
    .argument('<stack>', 'the stack name')
    .option('--format <format>', 'table (default) or json (one object per line)')
    .option('-q, --quiet', 'print task IDs only')
    .option('-f, --filter <key=value>', 'desired-state=running|shutdown|accepted, node=NODE, name=NAME, id=ID (repeatable)', collect, [])
    .option('--no-trunc', 'do not shorten ids')
    .option('--no-resolve', 'show node ids, not hostnames')
    .action(async (name: string, opts: { format?: string; quiet?: boolean; filter: string[]; trunc: boolean; resolve: boolean }, command: Command) => {
      const format = parseFormat(opts.format);
      const keep = taskFilter(opts.filter);
      const client = clientFor(command);
      const services = await stackServices(client, name, false);
      if (services.length === 0) {
        process.stderr.write(`Nothing found in stack: ${name}\n`);
        return;
      }
      const hostnames = new Map((await client.listNodes()).map((n) => [n.ID, n.Description.Hostname]));
      const rows: TaskRow[] = [];
      for (const s of services) {
        const tasks = (await client.listTasks({ service: s.ID })).filter((t) => keep(t, hostnames)).sort((a, b) => a.Name.localeCompare(b.Name) || Date.parse(b.CreatedAt) - Date.parse(a.CreatedAt));
        const shown = taskRows(tasks, opts.resolve ? hostnames : new Map(), Date.now());
        // taskRows shortens ids to 12 characters, as Docker's table does; --no-trunc puts them back.
        if (!opts.trunc) shown.forEach((r, i) => (r.ID = tasks[i]?.ID ?? r.ID));
        rows.push(...shown);
      }
      if (opts.quiet === true) writeOut(rows.map((r) => r.ID).join('\n'));
      else if (format === 'json') writeOut(jsonLines(rows));
      else writeOut(table(['ID', 'NAME', 'IMAGE', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR', 'PORTS'], rows.map((r) => [r.ID, r.Name, r.Image, r.Node, r.DesiredState, r.CurrentState, r.Error, r.Ports])));
    });

  stack
    .command('rm')
    .aliases(['remove', 'down'])
    .description('remove stacks: their services, then networks, secrets and configs')
    .argument('<stack...>', 'stack names')
    .action(async (names: string[], _opts: unknown, command: Command) => {
      const backend = apiStackBackend(clientFor(command));
      for (const name of names) {
        try {
          await removeStack(backend, name, { log: writeOut });
        } catch (err) {
          // As Docker's: a stack with nothing in it is said on stderr, and the others are still removed.
          if (err instanceof StackError && err.code === 'not_found') process.stderr.write(`Nothing found in stack: ${name}\n`);
          else if (err instanceof StackError) throw new CliError(err.message);
          else throw err;
        }
      }
    });
}
