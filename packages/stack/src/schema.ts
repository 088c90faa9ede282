// Validation against the published Compose Specification JSON schema (vendored in ../schema, see its README) with
// ajv, and ajv's errors made human: file:line:column, the key path, and what was expected, one error at a time.

import { readFileSync } from 'node:fs';
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { StackError } from './errors.js';
import { at, formatPath, type KeyPath, type PositionIndex } from './load-yaml.js';

type JsonSchema = { [key: string]: unknown };

// ajv and ajv-formats are CommonJS with `exports.default`; under NodeNext the default import is the module object.
const Ajv = ((AjvModule as unknown as { default?: typeof AjvModule }).default ?? AjvModule) as unknown as typeof AjvModule.default;
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as typeof addFormatsModule.default;

let compiled: { schema: JsonSchema; validate: ValidateFunction } | null = null;

/** The vendored schema, read and compiled once (dist/src/schema.js -> packages/stack/schema/compose-spec.json). */
export function composeSchema(): { schema: JsonSchema; validate: ValidateFunction } {
  if (compiled !== null) return compiled;
  const schema = JSON.parse(readFileSync(new URL('../../schema/compose-spec.json', import.meta.url), 'utf8')) as JsonSchema;
  // The file names draft-07 by an https URL ajv does not know; the content is plain draft-07.
  delete schema['$schema'];
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  compiled = { schema, validate: ajv.compile(schema) };
  return compiled;
}

/** Throws the most telling schema error of one file's (interpolated) value as a StackError. */
export function validateAgainstSchema(value: unknown, positions: PositionIndex): void {
  const { validate } = composeSchema();
  if (validate(value)) return;
  const errors = validate.errors ?? [];
  const best = pickError(errors, value);
  if (best === null) throw new StackError('invalid', `${positions.file}: does not match the Compose Specification`);
  const pos = best.keyPosition ? positions.key(best.path) : positions.value(best.path);
  const where = formatPath(best.reportPath);
  throw new StackError('invalid', `${at(pos, positions.file)}: ${where === '' ? '' : `${where}: `}${best.message}`, pos, where);
}

interface Explained {
  /** Where to point: the offending key for an unknown key, else the value. */
  path: KeyPath;
  keyPosition: boolean;
  /** The path named in the message: the mapping that has the unknown key, or the value itself. */
  reportPath: KeyPath;
  message: string;
  depth: number;
  isType: boolean;
}

function pickError(errors: readonly ErrorObject[], value: unknown): Explained | null {
  const explained = errors.filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'anyOf' && e.keyword !== 'if').map((e) => explain(e, value));
  if (explained.length === 0) {
    const first = errors[0];
    return first === undefined ? null : explain(first, value);
  }
  const deepest = Math.max(...explained.map((e) => e.depth));
  const candidates = explained.filter((e) => e.depth === deepest);
  const specific = candidates.find((e) => !e.isType);
  if (specific !== undefined) return specific;
  // Several branches of a oneOf each wanted a type: say them all ("must be string or integer").
  const first = candidates[0];
  if (first === undefined) return null;
  const types: string[] = [];
  for (const c of candidates) {
    const samePlace = JSON.stringify(c.path) === JSON.stringify(first.path);
    if (!samePlace) continue;
    for (const t of c.message.replace(/^must be /, '').split(/, | or /)) if (!types.includes(t)) types.push(t);
  }
  return { ...first, message: `must be ${joinOr(types)}` };
}

function explain(e: ErrorObject, value: unknown): Explained {
  const path = pointerToPath(e.instancePath, value);
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params['additionalProperty']);
      // Under services, networks, volumes, … the key is a name the schema restricts: say so rather than "unknown".
      const named = path.length === 1 && NAMED_SECTIONS.includes(String(path[0])) && !NAME.test(key);
      const message = named ? `the name '${key}' is not allowed: use letters, digits, '.', '_' and '-'` : `additional property '${key}' is not allowed`;
      return { path: [...path, key], keyPosition: true, reportPath: path, message, depth: path.length + 1, isType: false };
    }
    case 'required': {
      const key = String(params['missingProperty']);
      return { path, keyPosition: false, reportPath: path, message: `missing required property '${key}'`, depth: path.length + 1, isType: false };
    }
    case 'type': {
      const t = params['type'];
      const types = (Array.isArray(t) ? t.map(String) : String(t).split(',')).map((x) => YAML_TYPE_NAMES[x] ?? x);
      return { path, keyPosition: false, reportPath: path, message: `must be ${joinOr(types)}`, depth: path.length, isType: true };
    }
    case 'enum': {
      const allowed = Array.isArray(params['allowedValues']) ? (params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)) : [];
      return { path, keyPosition: false, reportPath: path, message: `must be one of ${allowed.join(', ')}`, depth: path.length, isType: false };
    }
    case 'uniqueItems': {
      const [a, b] = [Number(params['i']), Number(params['j'])].sort((x, y) => x - y);
      return { path, keyPosition: false, reportPath: path, message: `must not have duplicate items (items ${a} and ${b} are the same)`, depth: path.length, isType: false };
    }
    case 'pattern': {
      return { path, keyPosition: false, reportPath: path, message: `must match the pattern ${JSON.stringify(params['pattern'])}`, depth: path.length, isType: false };
    }
    default:
      return { path, keyPosition: false, reportPath: path, message: e.message ?? `fails the ${e.keyword} rule`, depth: path.length, isType: false };
  }
}

const NAMED_SECTIONS = ['services', 'networks', 'volumes', 'secrets', 'configs', 'models'];
const NAME = /^[a-zA-Z0-9._-]+$/;

/** JSON Schema's type names in the words of a YAML file. */
const YAML_TYPE_NAMES: Record<string, string> = { object: 'a mapping', array: 'a list', string: 'a string', integer: 'an integer', number: 'a number', boolean: 'a boolean', null: 'null' };

function joinOr(items: readonly string[]): string {
  if (items.length <= 1) return items[0] ?? '';
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1] ?? ''}`;
}

/** `/services/web/ports/0` -> ['services', 'web', 'ports', 0], using the data to tell indices from keys. */
function pointerToPath(pointer: string, root: unknown): (string | number)[] {
  if (pointer === '') return [];
  const out: (string | number)[] = [];
  let cur: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      const i = Number(seg);
      out.push(i);
      cur = cur[i];
    } else {
      out.push(seg);
      cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
    }
  }
  return out;
}

/**
 * A copy without `x-` extension fields wherever the schema allows them (top level, services, deploy, long-syntax
 * items, …), keeping `x-…` keys in free-form mappings such as labels and environment, where they are data.
 */
export function stripExtensions<T>(value: T): T {
  const { schema } = composeSchema();
  return strip(value, schema, schema) as T;
}

function strip(value: unknown, node: JsonSchema | undefined, root: JsonSchema): unknown {
  const schema = node === undefined ? undefined : pickBranch(resolveRef(node, root), value, root);
  if (Array.isArray(value)) {
    const items = schema?.['items'];
    return value.map((v) => strip(v, isSchema(items) ? items : undefined, root));
  }
  if (value === null || typeof value !== 'object') return value;
  const props = isSchema(schema?.['properties']) ? (schema?.['properties'] as Record<string, JsonSchema>) : {};
  const patterns = isSchema(schema?.['patternProperties']) ? (schema?.['patternProperties'] as Record<string, JsonSchema>) : {};
  const dropsExtensions = Object.hasOwn(patterns, '^x-');
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (dropsExtensions && k.startsWith('x-')) continue;
    let child: JsonSchema | undefined = Object.hasOwn(props, k) ? props[k] : undefined;
    if (child === undefined) {
      for (const [p, s] of Object.entries(patterns)) {
        if (p !== '^x-' && safeTest(p, k)) {
          child = s;
          break;
        }
      }
    }
    Object.defineProperty(out, k, { value: strip(v, child, root), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function safeTest(pattern: string, key: string): boolean {
  try {
    return new RegExp(pattern, 'u').test(key);
  } catch {
    return false;
  }
}

function isSchema(v: unknown): v is JsonSchema {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function resolveRef(node: JsonSchema, root: JsonSchema): JsonSchema {
  let cur = node;
  for (let hops = 0; hops < 16; hops++) {
    const ref = cur['$ref'];
    if (typeof ref !== 'string' || !ref.startsWith('#/definitions/')) return cur;
    const defs = root['definitions'];
    const target = isSchema(defs) ? (defs as Record<string, unknown>)[ref.slice('#/definitions/'.length)] : undefined;
    if (!isSchema(target)) return cur;
    cur = target;
  }
  return cur;
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** For a oneOf, the branch whose type fits the data (the only one that can have matched). */
function pickBranch(node: JsonSchema, value: unknown, root: JsonSchema): JsonSchema {
  const branches = node['oneOf'] ?? node['anyOf'];
  if (!Array.isArray(branches)) return node;
  const t = jsonType(value);
  for (const b of branches) {
    if (!isSchema(b)) continue;
    const r = resolveRef(b, root);
    const bt = r['type'];
    const types = Array.isArray(bt) ? bt : [bt];
    if (types.includes(t) || (t === 'integer' && types.includes('number'))) return pickBranch(r, value, root);
  }
  return node;
}
