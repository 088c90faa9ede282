// `secret` and `config` verbs without a daemon: reading the data (file or stdin, Docker's bound), --filter, the
// table and the --pretty text.

import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ConfigDocument, SecretDocument } from '@swarm/api/client';
import { fileObjectTable, parseFilters, readData, renderPretty } from '../src/secret-commands.js';

const secret: SecretDocument = { ID: 'abc', Version: { Index: 3 }, CreatedAt: '2026-01-01T00:00:00.000Z', UpdatedAt: '2026-01-01T00:00:00.000Z', Spec: { Name: 'db', Labels: { env: 'prod' } } };

test('readData: a file, or stdin for -; empty and over 500 KB refused naming the kind', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-secret-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'pw'), 'hunter2');
  t.is(Buffer.from(await readData('secret', join(dir, 'pw'))).toString(), 'hunter2');
  t.is(Buffer.from(await readData('secret', '-', Readable.from([Buffer.from('from '), Buffer.from('stdin')]))).toString(), 'from stdin');
  await t.throwsAsync(readData('config', '-', Readable.from([])), { message: /^config data is empty/ });
  await t.throwsAsync(readData('secret', '-', Readable.from([Buffer.alloc(500 * 1024 + 1)])), { message: /larger than 512000 bytes/ });
  await t.throwsAsync(readData('secret', join(dir, 'nope')), { message: /^cannot read .*nope: no such file$/ });
});

test('--filter: id, name and label; anything else is refused', (t) => {
  t.deepEqual(parseFilters(['name=db', 'label=env=prod', 'id=ab', 'name=api']), { id: ['ab'], name: ['db', 'api'], label: ['env=prod'] });
  t.throws(() => parseFilters(['driver=x']), { message: /^invalid filter "driver=x"/ });
  t.throws(() => parseFilters(['name=']), { message: /^invalid filter "name="/ });
});

test('the table (ID NAME CREATED UPDATED, full ids) and the --pretty text (a config\'s data as text; a secret has none)', (t) => {
  const now = Date.parse('2026-01-01T00:02:00.000Z');
  t.is(fileObjectTable([secret], now), 'ID        NAME      CREATED         UPDATED\nabc       db        2 minutes ago   2 minutes ago');
  t.is(renderPretty(secret), 'ID:              abc\nName:            db\nLabels:\n - env=prod\nCreated at:      2026-01-01T00:00:00.000Z\nUpdated at:      2026-01-01T00:00:00.000Z');
  const config: ConfigDocument = { ...secret, Spec: { Name: 'app.conf', Labels: {}, Data: Buffer.from('listen 80').toString('base64') } };
  t.regex(renderPretty(config), /\nData:\nlisten 80$/);
});
