// `swarm image ls|pull|push|rm|inspect|tag|load|save`: this node's images (an OCI layout in the data dir), with
// Docker's table (REPOSITORY TAG IMAGE ID CREATED SIZE), progress lines and messages.

import type { Command } from 'commander';
import { createReadStream, createWriteStream } from 'node:fs';
import type { ImageInspectDocument, ImageProgressLine } from '@swarm/api/client';
import { clientFor, CliError, forEachRef, parseFormat } from './context.js';
import { humanSize, jsonLines, table, writeOut } from './output.js';
import { ago } from './service-commands.js';

/** `sha256:0123…` -> Docker's 12-character IMAGE ID. */
export function shortId(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/** A progress line as Docker prints it without a terminal: `ID: Status` or `Status`. */
export function progressText(l: ImageProgressLine): string {
  return l.id === undefined ? (l.status ?? '') : `${l.id}: ${l.status ?? ''}`;
}

/** Per layer only the first line of each status: byte-count updates repeat a status and say nothing new here. */
function progressPrinter(): (l: ImageProgressLine) => void {
  const seen = new Map<string, string>();
  return (l) => {
    if (l.id !== undefined) {
      if (seen.get(l.id) === l.status) return;
      seen.set(l.id, l.status ?? '');
    }
    writeOut(progressText(l));
  };
}


async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function registerImageCommands(program: Command): void {
  program
    .command('login')
    .description("log this node's daemon in to a registry (its pulls and pushes then use the credentials)")
    .argument('[server]', 'registry host[:port] (default: Docker Hub)', 'docker.io')
    .requiredOption('-u, --username <user>', 'user name')
    .option('-p, --password <password>', 'password (prefer --password-stdin: a flag shows in the process list)')
    .option('--password-stdin', 'read the password from stdin')
    .action(async (server: string, opts: { username: string; password?: string; passwordStdin?: boolean }, command: Command) => {
      if (opts.password !== undefined && opts.passwordStdin === true) throw new CliError('--password and --password-stdin are mutually exclusive');
      const password = opts.passwordStdin === true ? await readStdin() : opts.password;
      if (password === undefined || password === '') throw new CliError('give the password with --password-stdin (or -p)');
      await clientFor(command).login(server, opts.username, password);
      writeOut('Login Succeeded');
    });

  program
    .command('logout')
    .description("forget this node's credentials for a registry")
    .argument('[server]', 'registry host[:port] (default: Docker Hub)', 'docker.io')
    .action(async (server: string, _opts: unknown, command: Command) => {
      const removed = await clientFor(command).logout(server);
      writeOut(removed ? `Removing login credentials for ${server}` : `Not logged in to ${server}`);
    });

  const image = program.command('image').description("manage this node's images");

  image
    .command('ls')
    .alias('list')
    .description('list images')
    .option('-q, --quiet', 'print image IDs only')
    .option('--digests', 'show digests')
    .option('--format <format>', 'table (default) or json (one object per line)')
    .action(async (opts: { quiet?: boolean; digests?: boolean; format?: string }, command: Command) => {
      const format = parseFormat(opts.format);
      const images = await clientFor(command).listImages();
      if (opts.quiet === true) {
        writeOut([...new Set(images.map((i) => shortId(i.ID)))].join('\n'));
        return;
      }
      const now = Date.now();
      const rows = images.map((i) => ({
        Repository: i.Repository,
        Tag: i.Tag,
        Digest: i.ID,
        ID: shortId(i.ID),
        CreatedSince: i.Created === '' ? 'N/A' : ago(i.Created, now),
        Size: humanSize(i.Size),
      }));
      if (format === 'json') {
        writeOut(jsonLines(rows));
        return;
      }
      const header = opts.digests === true ? ['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'CREATED', 'SIZE'] : ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'];
      writeOut(table(header, rows.map((r) => (opts.digests === true ? [r.Repository, r.Tag, r.Digest, r.ID, r.CreatedSince, r.Size] : [r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size]))));
    });

  image
    .command('pull')
    .description('pull an image from a registry into this node')
    .argument('<image>', 'image reference, e.g. busybox or registry:5000/team/app:v1')
    .option('-q, --quiet', 'print only the image reference')
    .action(async (ref: string, opts: { quiet?: boolean }, command: Command) => {
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort());
      await clientFor(command).pullImage(ref, opts.quiet === true ? () => undefined : progressPrinter(), controller.signal);
      writeOut(ref);
    });

  image
    .command('push')
    .description('push an image of this node to its registry')
    .argument('<image>', 'image reference with its registry, e.g. 10.250.0.1:5000/app:v1')
    .action(async (ref: string, _opts: unknown, command: Command) => {
      await clientFor(command).pushImage(ref, progressPrinter());
    });

  image
    .command('tag')
    .description('give an image another name')
    .argument('<source>', 'an image on this node')
    .argument('<target>', 'the new name')
    .action(async (source: string, target: string, _opts: unknown, command: Command) => {
      await clientFor(command).tagImage(source, target);
    });

  image
    .command('rm')
    .alias('remove')
    .description('remove images (refused while a task uses one, unless --force, which only untags it then)')
    .argument('<image...>', 'image names or IDs')
    .option('-f, --force', 'untag even if a task uses it')
    .action(async (refs: string[], opts: { force?: boolean }, command: Command) => {
      const client = clientFor(command);
      await forEachRef(refs, async (ref) => {
        for (const r of await client.removeImage(ref, opts.force === true)) writeOut(r.Untagged !== undefined ? `Untagged: ${r.Untagged}` : `Deleted: ${r.Deleted ?? ''}`);
      });
    });

  image
    .command('inspect')
    .description("show images in detail (Docker's JSON shape)")
    .argument('<image...>', 'image names or IDs')
    .action(async (refs: string[], _opts: unknown, command: Command) => {
      const client = clientFor(command);
      const found: ImageInspectDocument[] = [];
      try {
        await forEachRef(refs, async (ref) => void found.push(await client.inspectImage(ref)));
      } finally {
        if (found.length > 0) writeOut(JSON.stringify(found, null, 4));
      }
    });

  image
    .command('load')
    .description('load images from an OCI image archive (from `image save`, skopeo or docker save)')
    .option('-i, --input <file>', 'read from this file instead of stdin')
    .action(async (opts: { input?: string }, command: Command) => {
      if (opts.input === undefined && process.stdin.isTTY) throw new CliError('give the archive with -i FILE or on stdin');
      const source = opts.input === undefined ? process.stdin : createReadStream(opts.input);
      const loaded = await clientFor(command).loadImages(source);
      for (const r of loaded) writeOut(`Loaded image: ${r}`);
    });

  image
    .command('save')
    .description('write images to an OCI image archive (so they can move without a registry)')
    .argument('<image...>', 'image names')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .action(async (refs: string[], opts: { output?: string }, command: Command) => {
      if (opts.output === undefined && process.stdout.isTTY) throw new CliError('cowardly refusing to write an archive to a terminal: use -o FILE or redirect stdout');
      const out = opts.output === undefined ? process.stdout : createWriteStream(opts.output);
      await clientFor(command).saveImages(refs, out);
    });
}
