// `swarm secret create|ls|inspect|rm` and `swarm config create|ls|inspect|rm`: Docker's verbs, flags and table
// (ID NAME CREATED UPDATED), `--format json` lines and inspect's JSON array (a secret's never carries its data).

import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { MAX_SECRET_BYTES, type ApiClient, type ConfigDocument, type FileObjectFilters, type SecretDocument } from '@swarm/api/client';
import { clientFor, CliError, collect, forEachRef, parseFormat, parseKeyValues } from './context.js';
import { jsonLines, table, writeOut } from './output.js';
import { ago } from './service-commands.js';

/** Docker's bound, the API's (the daemon checks it too; saying it here saves sending half a megabyte for nothing). */
const MAX_DATA_BYTES = MAX_SECRET_BYTES;

type Kind = 'secret' | 'config';
type Doc = SecretDocument | ConfigDocument;

/** The data from FILE, or from standard input for `-`. */
export async function readData(kind: Kind, file: string, stdin: AsyncIterable<Buffer | string> = process.stdin): Promise<Uint8Array> {
  let data: Buffer;
  if (file === '-') {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stdin) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += b.length;
      if (size > MAX_DATA_BYTES) throw new CliError(`${kind} data from standard input is larger than ${MAX_DATA_BYTES} bytes (Docker's limit)`);
      chunks.push(b);
    }
    data = Buffer.concat(chunks);
  } else {
    try {
      data = await readFile(file);
    } catch (err) {
      throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
  }
  if (data.length === 0) throw new CliError(`${kind} data is empty: give a file with the ${kind}, or - to read it from standard input`);
  if (data.length > MAX_DATA_BYTES) throw new CliError(`${kind} data is ${data.length} bytes: at most ${MAX_DATA_BYTES} (Docker's limit)`);
  return data;
}

/** `--filter` items (id=, name=, label=) as the API's filters; anything else is refused naming it. */
export function parseFilters(items: readonly string[]): FileObjectFilters {
  const out: Required<FileObjectFilters> = { id: [], name: [], label: [] };
  for (const f of items) {
    const eq = f.indexOf('=');
    const key = eq < 0 ? f : f.slice(0, eq);
    const value = eq < 0 ? '' : f.slice(eq + 1);
    if ((key !== 'id' && key !== 'name' && key !== 'label') || value === '') throw new CliError(`invalid filter ${JSON.stringify(f)}: use id=ID, name=NAME or label=KEY[=VALUE]`);
    out[key].push(value);
  }
  return out;
}

export interface FileObjectRow {
  ID: string;
  Name: string;
  CreatedAt: string;
  UpdatedAt: string;
  Labels: string;
}

export function fileObjectRow(d: Doc): FileObjectRow {
  return {
    ID: d.ID,
    Name: d.Spec.Name,
    CreatedAt: d.CreatedAt,
    UpdatedAt: d.UpdatedAt,
    Labels: Object.entries(d.Spec.Labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
  };
}

/** Docker's `secret ls` table: full ids, times as "2 minutes ago". */
export function fileObjectTable(docs: readonly Doc[], nowMs: number): string {
  return table(['ID', 'NAME', 'CREATED', 'UPDATED'], docs.map((d) => [d.ID, d.Spec.Name, ago(d.CreatedAt, nowMs), ago(d.UpdatedAt, nowMs)]));
}

/** Docker's `secret inspect --pretty` / `config inspect --pretty` (a config's data shown as text). */
export function renderPretty(d: Doc): string {
  const lines = [`ID:              ${d.ID}`, `Name:            ${d.Spec.Name}`];
  const labels = Object.entries(d.Spec.Labels);
  if (labels.length > 0) lines.push('Labels:', ...labels.map(([k, v]) => ` - ${k}=${v}`));
  lines.push(`Created at:      ${d.CreatedAt}`, `Updated at:      ${d.UpdatedAt}`);
  if ('Data' in d.Spec) lines.push('Data:', Buffer.from(d.Spec.Data, 'base64').toString('utf8'));
  return lines.join('\n');
}

interface Verbs {
  create(client: ApiClient, name: string, data: Uint8Array, labels: Record<string, string>): Promise<string>;
  list(client: ApiClient, filters: FileObjectFilters): Promise<Doc[]>;
  inspect(client: ApiClient, ref: string): Promise<Doc>;
  remove(client: ApiClient, ref: string): Promise<void>;
}

const VERBS: Record<Kind, Verbs> = {
  secret: {
    create: (c, name, data, labels) => c.createSecret(name, data, labels),
    list: (c, f) => c.listSecrets(f),
    inspect: (c, r) => c.inspectSecret(r),
    remove: (c, r) => c.removeSecret(r),
  },
  config: {
    create: (c, name, data, labels) => c.createConfig(name, data, labels),
    list: (c, f) => c.listConfigs(f),
    inspect: (c, r) => c.inspectConfig(r),
    remove: (c, r) => c.removeConfig(r),
  },
};

function register(program: Command, kind: Kind, description: string): void {
  const verbs = VERBS[kind];
  const group = program.command(kind).description(description);

  group
    .command('create')
    .description(`create a ${kind} from a file, or from standard input with -`)
    .argument('<name>', `${kind} name`)
    .argument('<file>', `file with the ${kind}'s data (at most 500 KB), or - for standard input`)
    .option('-l, --label <key=value>', `${kind} label (repeatable)`, collect, [])
    .action(async (name: string, file: string, opts: { label: string[] }, command: Command) => {
      const labels = parseKeyValues(opts.label, '--label');
      const data = await readData(kind, file);
      writeOut(await verbs.create(clientFor(command), name, data, labels));
    });

  group
    .command('ls')
    .alias('list')
    .description(`list ${kind}s`)
    .option('-q, --quiet', 'print IDs only')
    .option('--format <format>', 'table (default) or json (one object per line)')
    .option('-f, --filter <key=value>', 'id=ID, name=NAME (prefixes), label=KEY[=VALUE] (repeatable)', collect, [])
    .action(async (opts: { quiet?: boolean; format?: string; filter: string[] }, command: Command) => {
      const format = parseFormat(opts.format);
      const docs = await verbs.list(clientFor(command), parseFilters(opts.filter));
      if (opts.quiet === true) writeOut(docs.map((d) => d.ID).join('\n'));
      else if (format === 'json') writeOut(jsonLines(docs.map(fileObjectRow)));
      else writeOut(fileObjectTable(docs, Date.now()));
    });

  group
    .command('inspect')
    .description(`show ${kind}s in detail (Docker's JSON shape${kind === 'secret' ? '; never the data' : '; Data in base64'})`)
    .argument(`<${kind}...>`, `${kind} names, ids or id prefixes`)
    .option('--format <format>', 'the JSON array (default), or json: one object per line')
    .option('--pretty', 'print a human-readable summary instead of JSON')
    .action(async (refs: string[], opts: { format?: string; pretty?: boolean }, command: Command) => {
      const format = opts.format === undefined ? 'table' : parseFormat(opts.format);
      const client = clientFor(command);
      const found: Doc[] = [];
      try {
        await forEachRef(refs, async (r) => void found.push(await verbs.inspect(client, r)));
      } finally {
        if (found.length > 0) writeOut(opts.pretty === true ? found.map(renderPretty).join('\n\n') : format === 'json' ? jsonLines(found) : JSON.stringify(found, null, 4));
      }
    });

  group
    .command('rm')
    .alias('remove')
    .description(`remove ${kind}s (refused while a service uses one)`)
    .argument(`<${kind}...>`, `${kind} names, ids or id prefixes`)
    .action(async (refs: string[], _opts: unknown, command: Command) => {
      const client = clientFor(command);
      await forEachRef(refs, async (r) => {
        await verbs.remove(client, r);
        writeOut(r);
      });
    });
}

export function registerSecretCommands(program: Command): void {
  register(program, 'secret', "manage the cluster's secrets (encrypted in the Raft log, given only to the tasks that use them)");
  register(program, 'config', "manage the cluster's configs (files for services' tasks; not secret)");
}
