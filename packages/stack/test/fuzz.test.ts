// The loader on hostile input: random text, random YAML values, and valid files mutated byte by byte or key by key.
// Whatever comes in, the loader returns a model or throws a StackError with a one-line message; nothing else
// (no TypeError, no RangeError, no stack overflow) may escape.

import test from 'ava';
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { loadStackFromSources, stringifyStack, StackError } from '../src/index.js';

const CORPUS = fileURLToPath(new URL('../../test/fixtures/corpus/', import.meta.url));

/** Hand-written seeds plus the real-world corpus: mutations start from files people write. */
const SEEDS = [
  `version: "3.8"
x-defaults: &defaults
  restart: always
  logging: {driver: json-file, options: {max-size: 10m}}
services:
  web:
    <<: *defaults
    image: "nginx:\${TAG:-1.25}"
    ports: ["8080:80", {target: 443, published: 8443, mode: host}]
    environment: [A=1, B=$$literal]
    deploy:
      replicas: 2
      update_config: {parallelism: 1, order: start-first}
      placement: {constraints: [node.role==worker]}
    networks: {front: {aliases: [www]}}
    secrets: [{source: s, target: /run/s, mode: 0400}]
  db:
    image: postgres:16
    volumes: ["data:/var/lib/postgresql/data", {type: bind, source: ./init, target: /init}]
    healthcheck: {test: [CMD, pg_isready], interval: 10s, retries: 3}
networks:
  front: {driver: overlay}
volumes:
  data: {}
secrets:
  s: {file: ./s.txt}
`,
  `services:
  a:
    image: busybox
    command: ["sh", "-c", "echo $$HOME"]
    labels: {x: "1"}
    configs: [c]
configs:
  c: {external: true}
`,
  ...readdirSync(CORPUS)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => readFileSync(`${CORPUS}${f}`, 'utf8')),
];

const ENV = { TAG: '1.27', HOME: '/root' };

/** The property: a model or a StackError with a one-line message; `stack config` can print any model. */
function loadsOrFailsCleanly(text: string, ...more: string[]): void {
  try {
    const { model } = loadStackFromSources(
      [text, ...more].map((t, i) => ({ name: `f${i}.yml`, text: t })),
      ENV,
      { workingDir: '/project' },
    );
    stringifyStack(model);
  } catch (err) {
    if (!(err instanceof StackError)) throw err;
    if (err.message.includes('\n')) throw new Error(`a StackError message spans lines: ${JSON.stringify(err.message)}`);
  }
}

const YAML_CHARS = [':', '-', ' ', '\n', '  ', '&a', '*a', '<<', '$', '${', '}', '{', '[', ']', ',', '"', "'", '#', '!', '!!str', '|', '>', '?', '%', '@', '`', '\t', '0x', '~', 'null', '---', '...', 'services', 'image', 'x-', '\\', '\u0000', '\uFEFF', 'é'];
const yamlish = fc.array(fc.constantFrom(...YAML_CHARS), { maxLength: 60 }).map((parts) => parts.join(''));

test('random YAML-ish text never crashes the loader', (t) => {
  fc.assert(fc.property(yamlish, (text) => loadsOrFailsCleanly(text)), { numRuns: 1000, seed: 42 });
  fc.assert(fc.property(fc.string({ maxLength: 200, unit: 'binary' }), (text) => loadsOrFailsCleanly(text)), { numRuns: 300, seed: 7 });
  t.pass();
});

test('random YAML values (any shape) never crash the loader', (t) => {
  const value = fc.jsonValue({ maxDepth: 5 });
  const composeish = fc.record({ services: fc.dictionary(fc.constantFrom('web', 'db', 'x-a', '__proto__', 'constructor'), value), networks: value }, { requiredKeys: [] });
  fc.assert(fc.property(fc.oneof(value, composeish), (v) => loadsOrFailsCleanly(stringify(v))), { numRuns: 500, seed: 3 });
  t.pass();
});

/** A byte-level edit of a valid file: insert, delete or replace a piece at a position. */
const byteMutation = fc.record({
  seed: fc.nat({ max: SEEDS.length - 1 }),
  edits: fc.array(fc.tuple(fc.nat(), fc.constantFrom('insert', 'delete', 'replace'), fc.constantFrom(...YAML_CHARS)), { minLength: 1, maxLength: 5 }),
});

test('valid files mutated byte by byte never crash the loader', (t) => {
  fc.assert(
    fc.property(byteMutation, ({ seed, edits }) => {
      let text = SEEDS[seed] ?? '';
      for (const [at, kind, piece] of edits) {
        const i = text.length === 0 ? 0 : at % text.length;
        text = kind === 'insert' ? text.slice(0, i) + piece + text.slice(i) : kind === 'delete' ? text.slice(0, i) + text.slice(i + piece.length) : text.slice(0, i) + piece + text.slice(i + piece.length);
      }
      loadsOrFailsCleanly(text);
      loadsOrFailsCleanly(SEEDS[0] ?? '', text);
    }),
    { numRuns: 400, seed: 11 },
  );
  t.pass();
});

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path to a value inside a parsed seed, to aim key and value mutations at. */
function paths(v: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...prefix, i])));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  return out;
}

test('valid files with keys renamed, values replaced or removed never crash the loader', (t) => {
  const parsed = SEEDS.map((s) => loadStackFromSources([{ name: 's.yml', text: s }], ENV, { keepExtensions: true, skipInterpolation: true }).model as unknown as Json);
  const mutation = fc.record({
    seed: fc.nat({ max: parsed.length - 1 }),
    pick: fc.nat(),
    kind: fc.constantFrom('value', 'rename', 'remove'),
    value: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom('${UNSET}', '${A:?x}', '$', '8080:80', '0440', '-1', 'true', '', '1e400')),
    key: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('x-ext', '<<', 'image', 'ports', 'deploy', 'build', 'extends', 'include', '__proto__')),
  });
  fc.assert(
    fc.property(mutation, ({ seed, pick, kind, value, key }) => {
      const root = structuredClone(parsed[seed] ?? null);
      const all = paths(root).filter((p) => p.length > 0);
      const path = all[pick % all.length] ?? [];
      let parent: Json = root;
      for (const seg of path.slice(0, -1)) parent = (parent as Record<string | number, Json>)[seg] ?? null;
      const last = path[path.length - 1];
      if (last === undefined || parent === null || typeof parent !== 'object') return;
      const container = parent as Record<string | number, Json>;
      if (kind === 'value') container[last] = value as Json;
      else if (kind === 'remove') delete container[last];
      else if (!Array.isArray(parent)) {
        const v = container[last] ?? null;
        delete container[last];
        Object.defineProperty(container, key, { value: v, enumerable: true, writable: true, configurable: true });
      }
      loadsOrFailsCleanly(stringify(root));
    }),
    { numRuns: 500, seed: 5 },
  );
  t.pass();
});
