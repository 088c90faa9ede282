// Loading a stack: each `-c` file parsed (positions kept), interpolated, type-cast, checked and validated against
// the Compose Specification on its own, as docker/cli does, then merged in order into one ComposeModel.

import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Document, visit } from 'yaml';
import { positionLocator } from './convert-positions.js';
import { StackError, type SourcePosition } from './errors.js';
import { interpolate, InterpolationError } from './interpolate.js';
import { castTypes, checkForbidden, checkReferences, checkShortSyntax, resolvePaths, unsupportedWarnings } from './load-checks.js';
import { parseDotEnv } from './load-dotenv.js';
import { at, formatPath, parseComposeYaml, setOwn, type PositionIndex } from './load-yaml.js';
import { mergeComposeFiles } from './merge.js';
import type { ComposeModel } from './model.js';
import { stripExtensions, validateAgainstSchema } from './schema.js';

/** One compose file's text and the name errors call it by (its path as given, or `<stdin>`). */
export interface StackSource {
  name: string;
  text: string;
}

export interface LoadSourcesOptions {
  /** The `.env` file's text: defaults for interpolation; `env` wins over it. */
  dotEnv?: StackSource | null;
  /** Where relative paths point from; default: the first source's directory. */
  workingDir?: string;
  /** `stack config --skip-interpolation`: leave `$VAR` as written (and skip Docker's type casts that follow it). */
  skipInterpolation?: boolean;
  /** Keep `x-` extension fields (as `stack config` prints them); by default they are removed for the converter. */
  keepExtensions?: boolean;
}

export interface LoadStackOptions extends Omit<LoadSourcesOptions, 'dotEnv'> {
  /** Compose file paths in merge order; `-` reads standard input. */
  files: readonly string[];
  /** The environment for interpolation (usually process.env). */
  env: Readonly<Record<string, string | undefined>>;
  /** Reads standard input for `-` (injected by tests); default: process.stdin. */
  readStdin?: () => Promise<string>;
}

export interface LoadedStack {
  /** Interpolated, merged, validated; close to the files (short syntax stays short), relative paths made absolute. */
  model: ComposeModel;
  /** For the user, one line each: ignored keys, unset variables, YAML warnings. */
  warnings: string[];
  /** The directory relative paths were resolved against. */
  workingDir: string;
  /** Where a key path of the model was written (the last file that writes it), for errors found after loading. */
  locate(path: string): SourcePosition | null;
}

/** Reads the files (and `.env` beside the first) and loads them; every failure is a StackError naming file:line:column. */
export async function loadStack(options: LoadStackOptions): Promise<LoadedStack> {
  if (options.files.length === 0) throw new StackError('not_found', 'no compose file: give one with -c FILE');
  const sources: StackSource[] = [];
  let stdinUsed = false;
  for (const file of options.files) {
    if (file === '-') {
      if (stdinUsed) throw new StackError('not_found', 'standard input (-) can be given once');
      stdinUsed = true;
      sources.push({ name: '<stdin>', text: await (options.readStdin ?? readProcessStdin)() });
    } else {
      sources.push({ name: file, text: await readText(file) });
    }
  }
  const first = options.files[0] ?? '-';
  const workingDir = resolve(options.workingDir ?? (first === '-' ? process.cwd() : dirname(resolve(first))));
  const dotEnvPath = join(workingDir, '.env');
  let dotEnv: StackSource | null = null;
  try {
    dotEnv = { name: dotEnvPath, text: await readFile(dotEnvPath, 'utf8') };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new StackError('not_found', `${dotEnvPath}: cannot read: ${(err as Error).message}`);
  }
  return loadStackFromSources(sources, options.env, { ...options, workingDir, dotEnv });
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOENT') throw new StackError('not_found', `${file}: no such file`);
    if (code === 'EISDIR') throw new StackError('not_found', `${file}: is a directory, not a compose file`);
    throw new StackError('not_found', `${file}: cannot read: ${(err as Error).message}`);
  }
}

async function readProcessStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Loads compose texts already in memory, in merge order. Synchronous: tests and fuzzing call it directly. */
export function loadStackFromSources(
  sources: readonly StackSource[],
  env: Readonly<Record<string, string | undefined>> = {},
  options: LoadSourcesOptions = {},
): LoadedStack {
  if (sources.length === 0) throw new StackError('not_found', 'no compose file: give one with -c FILE');
  const fromEnv = (name: string): string | undefined => (Object.hasOwn(env, name) ? env[name] : undefined);
  const dotEnv =
    options.dotEnv === null || options.dotEnv === undefined
      ? {}
      : parseDotEnv(options.dotEnv.text, options.dotEnv.name, options.skipInterpolation === true ? undefined : fromEnv);
  const lookup = (name: string): string | undefined => (Object.hasOwn(env, name) ? env[name] : Object.hasOwn(dotEnv, name) ? dotEnv[name] : undefined);
  const warnings: string[] = [];
  const unset = new Set<string>();
  let merged: Record<string, unknown> | null = null;
  const checked: Array<{ value: Record<string, unknown>; positions: PositionIndex }> = [];
  for (const source of sources) {
    const parsed = parseComposeYaml(source.name, source.text);
    warnings.push(...parsed.warnings);
    let value = parsed.value as Record<string, unknown>;
    if (options.skipInterpolation !== true) {
      value = interpolateTree(value, [], lookup, parsed.positions, unset) as Record<string, unknown>;
      castTypes(value, parsed.positions);
    }
    checkShortSyntax(value, parsed.positions);
    // `version: 3.8` unquoted is a YAML number; the key is ignored anyway, so take it as the string it means.
    if (typeof value['version'] === 'number') setOwn(value, 'version', String(value['version']));
    checkForbidden(value, parsed.positions);
    validateAgainstSchema(value, parsed.positions);
    checked.push({ value, positions: parsed.positions });
    merged = merged === null ? value : mergeComposeFiles(merged, value);
  }
  const model = merged ?? {};
  // References are checked per file against the merged declarations, so a later file may declare what an earlier
  // one uses and the error still points at the line that names it. With --skip-interpolation a $NAME stays unchecked.
  for (const file of checked) checkReferences(file.value, model, file.positions);
  if (model['services'] === undefined || model['services'] === null) setOwn(model, 'services', {});
  for (const name of unset) warnings.push(`The "${name}" variable is not set. Defaulting to a blank string.`);
  warnings.push(...unsupportedWarnings(model));
  const first = sources[0]?.name ?? '.';
  const workingDir = resolve(options.workingDir ?? dirname(resolve(first)));
  resolvePaths(model, workingDir, lookup('HOME'));
  const result = options.keepExtensions === true ? model : stripExtensions(model);
  return { model: result as unknown as ComposeModel, warnings, workingDir, locate: positionLocator(checked.map((c) => c.positions)) };
}

/** Substitutes variables in every string value (never in keys), naming file:line:column and the key on error. */
function interpolateTree(
  value: unknown,
  path: (string | number)[],
  lookup: (name: string) => string | undefined,
  positions: PositionIndex,
  unset: Set<string>,
): unknown {
  if (typeof value === 'string') {
    try {
      const r = interpolate(value, lookup);
      for (const u of r.unset) unset.add(u);
      return r.value;
    } catch (err) {
      if (!(err instanceof InterpolationError)) throw err;
      const pos = positions.value(path);
      const where = formatPath(path);
      throw new StackError('interpolation', `${at(pos, positions.file)}: ${where === '' ? '' : `${where}: `}${err.message}`, pos, where);
    }
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateTree(v, [...path, i], lookup, positions, unset));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) setOwn(out, k, interpolateTree(v, [...path, k], lookup, positions, unset));
    return out;
  }
  return value;
}

/** The model as YAML, as `stack config` prints it. */
export function stringifyStack(model: ComposeModel): string {
  const doc = new Document(model, { aliasDuplicateObjects: false });
  // `8080:80` is a string to YAML 1.2 but a base-60 number to YAML 1.1 readers: quote such strings, as Docker does.
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && /^[0-9][0-9:._-]*$/.test(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  return doc.toString({ lineWidth: 0 });
}
