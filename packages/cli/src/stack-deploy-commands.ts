// `swarm stack deploy|ls|services|ps|rm`: a compose file converted and deployed by @swarm/stack through the API
// client, and the stack's services and tasks listed as `service ls`/`service ps` show them.

import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { ApiClient, ServiceDocument } from '@swarm/api/client';
import type { ComposeModel } from '@swarm/stack';
import { clientFor, CliError, collect, parseFormat } from './context.js';
import { jsonLines, table, writeOut } from './output.js';
import { serviceRow, taskFilter, taskRows, type TaskRow } from './service-commands.js';
import { apiStackBackend } from './stack-backend.js';

/** Loaded when a stack verb runs (compose schemas and all), so that other verbs start fast. */
const stackLib = (): Promise<typeof import('@swarm/stack')> => import('@swarm/stack');

/** Docker's label on every object of a stack (the same as @swarm/stack's LABEL_NAMESPACE). */
const LABEL_NAMESPACE = 'com.docker.stack.namespace';

/** How long `deploy --detach=false` waits for the stack's services to converge. */
const CONVERGE_TIMEOUT_MS = 300_000;
const CONVERGE_POLL_MS = 500;

/**
 * TEMPORARY, to be replaced by the loader's exported `loadStack` (interpolation, merge rules, schema validation):
 * reads each file as YAML and merges mappings key by key, later files winning. Kept private to this module.
 */
async function loadComposeFilesForNow(files: readonly string[]): Promise<ComposeModel> {
  const { StackError } = await stackLib();
  const merge = (a: unknown, b: unknown): unknown => {
    if (typeof a !== 'object' || a === null || Array.isArray(a) || typeof b !== 'object' || b === null || Array.isArray(b)) return b;
    const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
    for (const [k, v] of Object.entries(b)) out[k] = k in out ? merge(out[k], v) : v;
    return out;
  };
  let model: unknown = {};
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new StackError('not_found', `cannot read ${file}: ${(err as Error).message}`);
    }
    const doc = parseDocument(text, { prettyErrors: true });
    const first = doc.errors[0];
    if (first !== undefined) {
      const pos = first.linePos?.[0];
      throw new StackError('parse', `${file}${pos === undefined ? '' : `:${pos.line}:${pos.col}`}: ${first.message.split('\n')[0] ?? ''}`, pos === undefined ? null : { file, line: pos.line, column: pos.col });
    }
    const value: unknown = doc.toJS();
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new StackError('invalid', `${file}: the top level must be a mapping with services`);
    model = merge(model, value);
  }
  const m = model as ComposeModel;
  if (typeof m.services !== 'object' || m.services === null) throw new StackError('invalid', `${files.join(', ')}: no services`, null, 'services');
  return m;
}

/** `--detach` takes an optional boolean, as Docker's `--detach=false`. */
function parseBool(value: string): boolean {
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new CliError(`invalid boolean ${JSON.stringify(value)}: use true or false`);
}

/** A StackError is the user's to fix: printed as `swarm: MESSAGE` like every CLI error. */
async function userErrors<T>(fn: () => Promise<T>): Promise<T> {
  const { StackError } = await stackLib();
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StackError) throw new CliError(err.message);
    throw err;
  }
}

async function stackServices(client: ApiClient, namespace: string, status: boolean): Promise<ServiceDocument[]> {
  return (await client.listServices(status)).filter((s) => s.Spec.Labels[LABEL_NAMESPACE] === namespace).sort((a, b) => a.Spec.Name.localeCompare(b.Spec.Name));
}

/**
 * `--detach=false`: one line per service whenever its running/desired count or what blocks it changes, until every
 * service runs what it wants (exit 0) or one fails its update (an error naming it), or the deadline passes.
 */
async function waitStackConverged(client: ApiClient, namespace: string, names: ReadonlySet<string>): Promise<void> {
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

/** Adds deploy (up), ls, services, ps and rm (down) to the `stack` command group, making the group if need be. */
export function registerStackDeployCommands(program: Command): void {
  const stack = program.commands.find((c) => c.name() === 'stack') ?? program.command('stack').description('manage stacks: services, networks, secrets and configs from compose files');

  stack
    .command('deploy')
    .alias('up')
    .description('deploy a new stack or update an existing one')
    .argument('<stack>', 'the stack name (prefix of its objects)')
    .option('-c, --compose-file <file>', 'a compose file (repeatable: later files override earlier ones)', collect, [])
    .option('--prune', 'remove the services the file no longer has')
    .option('--with-registry-auth', "send this node's registry login with the services, so every node can pull their images")
    .option('--resolve-image <when>', 'pin images to their registry digest: always (default), changed (only images the file changed) or never')
    .option('-d, --detach [bool]', 'exit at once (default true); --detach=false waits until the services converge', parseBool, true)
    .action(async (name: string, opts: { composeFile: string[]; prune?: boolean; withRegistryAuth?: boolean; resolveImage?: string; detach: boolean }, command: Command) => {
      if (opts.composeFile.length === 0) throw new CliError('give the compose file with -c, --compose-file FILE');
      const resolveImage = opts.resolveImage ?? 'always';
      if (resolveImage !== 'always' && resolveImage !== 'changed' && resolveImage !== 'never') throw new CliError(`invalid --resolve-image ${JSON.stringify(resolveImage)}: use always, changed or never`);
      const files = opts.composeFile.map((f) => resolve(f));
      const client = clientFor(command);
      const { convertStack, deployStack } = await stackLib();
      await userErrors(async () => {
        const model = await loadComposeFilesForNow(files);
        const converted = convertStack(name, model, { workingDir: dirname(files[0] ?? '.'), environment: process.env });
        for (const w of converted.warnings) process.stderr.write(`${w}\n`);
        const result = await deployStack(apiStackBackend(client), converted, { prune: opts.prune === true, withRegistryAuth: opts.withRegistryAuth === true, resolveImage, log: writeOut });
        for (const w of result.warnings) process.stderr.write(`${w}\n`);
        if (!opts.detach) await waitStackConverged(client, name, new Set(converted.services.map((s) => s.name)));
      });
    });

  stack
    .command('ls')
    .alias('list')
    .description('list stacks')
    .option('--format <format>', 'table (default) or json (one object per line)')
    .action(async (opts: { format?: string }, command: Command) => {
      const format = parseFormat(opts.format);
      const { listStacks } = await stackLib();
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
    .action(async (name: string, opts: { format?: string; quiet?: boolean }, command: Command) => {
      const format = parseFormat(opts.format);
      const rows = (await stackServices(clientFor(command), name, true)).map(serviceRow);
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
    .action(async (name: string, opts: { format?: string; quiet?: boolean; filter: string[] }, command: Command) => {
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
        rows.push(...taskRows(tasks, hostnames, Date.now()));
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
      const { removeStack, StackError } = await stackLib();
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
