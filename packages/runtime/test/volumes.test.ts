// Local named volumes: created on first use, data kept across tasks, listed and inspected, removal refused while
// in use, bad names refused naming the rule.

import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalVolumes } from '../src/volumes.js';
import { RuntimeError } from '../src/runtime.js';

function root(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-volumes-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('ensure creates a volume once; its data outlives the task and a new store over the same dir sees it', async (t) => {
  const dir = root(t);
  const volumes = new LocalVolumes({ rootDir: dir, nowMs: () => 5_000 });
  const path = await volumes.ensure('data', { app: 'kv' });
  writeFileSync(join(path, 'file'), 'kept');
  t.is(await volumes.ensure('data'), path);
  const again = new LocalVolumes({ rootDir: dir });
  t.is(readFileSync(join(await again.ensure('data'), 'file'), 'utf8'), 'kept');
  t.deepEqual(again.inspect('data'), { name: 'data', driver: 'local', mountpoint: path, createdAtMs: 5_000, labels: { app: 'kv' } });
  t.deepEqual(again.list().map((v) => v.name), ['data']);
});

test('remove: refused while in use, not found for an unknown name; bad names are invalid_config', (t) => {
  const used = new Set(['busy']);
  const volumes = new LocalVolumes({ rootDir: root(t), inUse: (n) => used.has(n) });
  volumes.create('busy');
  volumes.create('idle');
  t.throws(() => volumes.remove('busy'), { instanceOf: RuntimeError, message: /in use/ });
  volumes.remove('idle');
  t.deepEqual(volumes.list().map((v) => v.name), ['busy']);
  t.throws(() => volumes.remove('idle'), { message: /no such volume: idle/ });
  t.throws(() => volumes.create('../etc'), { message: /invalid volume name/ });
  t.throws(() => volumes.inspect(''), { message: /invalid volume name/ });
});
