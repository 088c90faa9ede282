// One compose file's YAML as plain values plus where each key and value sits (file:line:column), so every later
// step (interpolation, validation, our own checks) can point at the text the user wrote.

import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode, type ScalarTag } from 'yaml';
import { StackError, type SourcePosition } from './errors.js';

/** A key path into the model: mapping keys as strings, sequence indices as numbers. */
export type KeyPath = ReadonlyArray<string | number>;

/** `services.web.ports[0].published`, as error messages name a place. */
export function formatPath(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** Where each path's key and value start in one file. */
export class PositionIndex {
  private readonly values = new Map<string, SourcePosition>();
  private readonly keys = new Map<string, SourcePosition>();

  constructor(readonly file: string) {}

  setValue(path: KeyPath, pos: SourcePosition): void {
    this.values.set(JSON.stringify(path), pos);
  }

  setKey(path: KeyPath, pos: SourcePosition): void {
    this.keys.set(JSON.stringify(path), pos);
  }

  /** The value's position, or the nearest enclosing one the file has (a merged or defaulted value has none). */
  value(path: KeyPath): SourcePosition | null {
    for (let n = path.length; n >= 0; n--) {
      const hit = this.values.get(JSON.stringify(path.slice(0, n)));
      if (hit !== undefined) return hit;
    }
    return null;
  }

  /** The key's own position (where an unknown key was written), else the value's. */
  key(path: KeyPath): SourcePosition | null {
    return this.keys.get(JSON.stringify(path)) ?? this.value(path);
  }

  has(path: KeyPath): boolean {
    return this.values.has(JSON.stringify(path));
  }
}

export function at(pos: SourcePosition | null, file: string): string {
  return pos === null ? file : `${pos.file}:${pos.line}:${pos.column}`;
}

/** Upper bound on values built from one file, so a few aliases cannot expand into gigabytes ("billion laughs"). */
const MAX_NODES = 1_000_000;

/** Nesting bound: real compose files stay under 15 levels; every later step recurses, so bound it here once. */
const MAX_DEPTH = 200;

export interface ParsedFile {
  name: string;
  value: unknown;
  positions: PositionIndex;
  warnings: string[];
}

/** A mapping with no prototype tricks: `__proto__` as a key is an ordinary own property. */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Parses one compose file. YAML errors (syntax, duplicate keys, several documents) name file:line:column. */
export function parseComposeYaml(name: string, text: string): ParsedFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    merge: true,
    uniqueKeys: true,
    prettyErrors: false,
    strict: true,
    // Docker's YAML reader (go-yaml) reads a 0-led integer such as `mode: 0440` as octal; YAML 1.2 would say 440.
    customTags: (tags) => [OCTAL_INT, ...tags],
  });
  const posOf = (offset: number): SourcePosition => {
    const p = lineCounter.linePos(offset);
    return { file: name, line: p.line, column: p.col };
  };
  const first = doc.errors[0];
  if (first !== undefined) {
    const pos = posOf(first.pos[0]);
    throw new StackError('parse', `${at(pos, name)}: ${yamlMessage(first.code, first.message)}`, pos);
  }
  const warnings = doc.warnings.map((w) => `${at(posOf(w.pos[0]), name)}: ${w.message}`);
  const positions = new PositionIndex(name);
  const contents = doc.contents;
  if (contents === null || (isScalar(contents) && contents.value === null)) {
    throw new StackError('parse', `${name}: empty compose file: it needs at least a services: mapping`, { file: name, line: 1, column: 1 }, '');
  }
  let count = 0;
  const inProgress = new Set<YamlNode>();

  const walk = (node: unknown, path: (string | number)[]): unknown => {
    if (path.length > MAX_DEPTH) {
      const pos = positions.value(path);
      throw new StackError('parse', `${at(pos, name)}: the YAML is nested more than ${MAX_DEPTH} levels deep`, pos, formatPath(path.slice(0, 3)));
    }
    if (++count > MAX_NODES) {
      throw new StackError('parse', `${name}: the file expands to more than ${MAX_NODES} values (aliases of aliases?)`, null, formatPath(path));
    }
    if (isAlias(node)) {
      const target = node.resolve(doc);
      const aliasPos = posOf(node.range?.[0] ?? 0);
      if (target === undefined) {
        const pos = aliasPos;
        throw new StackError('parse', `${at(pos, name)}: unknown alias *${node.source}`, pos, formatPath(path));
      }
      if (inProgress.has(target)) {
        const pos = aliasPos;
        throw new StackError('parse', `${at(pos, name)}: alias *${node.source} refers to a value that contains it`, pos, formatPath(path));
      }
      // The alias's own place is where the user can see the value used; the anchor's nested places follow.
      const value = walk(target, path);
      positions.setValue(path, aliasPos);
      return value;
    }
    const range = (node as { range?: [number, number, number] | null }).range;
    if (range !== undefined && range !== null) positions.setValue(path, posOf(range[0]));
    if (isScalar(node)) return node.value;
    if (isSeq(node)) {
      inProgress.add(node);
      const out = node.items.map((item, i) => walk(item, [...path, i]));
      inProgress.delete(node);
      return out;
    }
    if (isMap(node)) {
      inProgress.add(node);
      const explicit = new Set<string>();
      for (const pair of node.items) if (!isMergePair(pair.key)) explicit.add(keyText(pair.key, path));
      // Merge sources first, so the places of keys written in this mapping (walked after) are the ones kept.
      const merged = new Map<unknown, Array<[string, unknown]>>();
      for (const pair of node.items) if (isMergePair(pair.key)) merged.set(pair, mergeSources(explicit, pair.value, path));
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        const fromMerge = merged.get(pair);
        if (fromMerge !== undefined) {
          for (const [k, v] of fromMerge) if (!Object.hasOwn(out, k) && !explicit.has(k)) setOwn(out, k, v);
          continue;
        }
        const key = keyText(pair.key, path);
        const keyRange = (pair.key as { range?: [number, number, number] | null }).range;
        if (Object.hasOwn(out, key)) {
          // YAML tells `1:` from `"1":`; a compose key is text, so they are the same key twice.
          const pos = keyRange === undefined || keyRange === null ? null : posOf(keyRange[0]);
          throw new StackError('parse', `${at(pos, name)}: duplicate key: a mapping key must be unique`, pos, formatPath([...path, key]));
        }
        if (keyRange !== undefined && keyRange !== null) positions.setKey([...path, key], posOf(keyRange[0]));
        const value = pair.value === null ? null : walk(pair.value, [...path, key]);
        if (pair.value === null && keyRange !== undefined && keyRange !== null) positions.setValue([...path, key], posOf(keyRange[0]));
        setOwn(out, key, value);
      }
      if (range !== undefined && range !== null) positions.setValue(path, posOf(range[0]));
      inProgress.delete(node);
      return out;
    }
    if (node === null || node === undefined) return null;
    throw new StackError('parse', `${name}: ${formatPath(path) || 'the file'}: unsupported YAML node`, null, formatPath(path));
  };

  /** YAML merge keys: `<<: *base` or `<<: [*a, *b]`; keys written in the mapping win, then earlier sources. */
  const mergeSources = (explicit: Set<string>, source: unknown, path: (string | number)[]): Array<[string, unknown]> => {
    const out: Array<[string, unknown]> = [];
    const seen = new Set<string>();
    const sources = isSeq(source) ? source.items : [source];
    for (const item of sources) {
      const resolved = isAlias(item) ? item.resolve(doc) : item;
      if (!isMap(resolved)) {
        const r = (item as { range?: [number, number, number] | null } | null)?.range;
        const pos = r === undefined || r === null ? null : posOf(r[0]);
        throw new StackError('parse', `${at(pos, name)}: ${formatPath(path) || 'the file'}: a merge key (<<) takes a mapping or a list of mappings`, pos, formatPath(path));
      }
      const merged = walk(item, path);
      if (merged === null || typeof merged !== 'object' || Array.isArray(merged)) continue;
      for (const [k, v] of Object.entries(merged)) {
        if (explicit.has(k) || seen.has(k)) continue;
        seen.add(k);
        out.push([k, v]);
      }
    }
    return out;
  };

  const keyText = (key: unknown, path: (string | number)[]): string => {
    if (isScalar(key)) {
      const v = key.value;
      if (v === null) return 'null';
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
    }
    const r = (key as { range?: [number, number, number] | null } | null)?.range;
    const pos = r === undefined || r === null ? null : posOf(r[0]);
    throw new StackError('parse', `${at(pos, name)}: ${formatPath(path) || 'the file'}: a mapping key must be a plain string`, pos, formatPath(path));
  };

  const value = walk(contents, []);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const pos = positions.value([]);
    throw new StackError('parse', `${at(pos, name)}: the top level of a compose file must be a mapping (services:, networks:, …)`, pos, '');
  }
  return { name, value, positions, warnings };
}

const OCTAL_INT: ScalarTag = {
  tag: 'tag:yaml.org,2002:int',
  default: true,
  format: 'OCT',
  test: /^0[0-7]+$/,
  identify: (v) => typeof v === 'number' && Number.isInteger(v),
  resolve: (text) => parseInt(text, 8),
};

function isMergePair(key: unknown): boolean {
  return isScalar(key) && typeof key.value === 'symbol';
}

function yamlMessage(code: string, message: string): string {
  if (code === 'DUPLICATE_KEY') return 'duplicate key: a mapping key must be unique';
  if (code === 'MULTIPLE_DOCS') return 'a compose file holds one YAML document (found a second one after ---)';
  if (/call stack/i.test(message)) return `the YAML is nested too deeply`;
  // yaml's messages end with " at line L, column C:" and a source excerpt; the position is already in front.
  return message.replace(/ at line \d+, column \d+:?[\s\S]*$/, '').trim();
}
