// The `.env` file beside the first compose file: KEY=VALUE lines that give interpolation its defaults (the process
// environment wins). The same syntax as Compose's: comments, `export `, single and double quotes.

import { StackError } from './errors.js';
import { interpolate, InterpolationError } from './interpolate.js';

const KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * One KEY=VALUE line of a .env file: `literal` for a single-quoted value, which is never interpolated; a bare KEY
 * has the value null (it names a variable without giving it a value: Compose leaves it to the environment).
 */
export interface DotEnvEntry {
  key: string;
  value: string | null;
  literal: boolean;
  line: number;
}

/** Parses .env text into its entries in order; a malformed line is an error naming file:line. */
export function parseDotEnvEntries(text: string, file = '.env'): DotEnvEntry[] {
  const out: DotEnvEntry[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const line = (lines[n] ?? '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const body = line.startsWith('export ') ? line.slice('export '.length).trimStart() : line;
    const eq = body.indexOf('=');
    const key = (eq < 0 ? body : body.slice(0, eq)).trim();
    if (!KEY.test(key)) {
      throw new StackError('parse', `${file}:${n + 1}:1: invalid variable name ${JSON.stringify(key)}: use KEY=VALUE`, { file, line: n + 1, column: 1 });
    }
    if (eq < 0) {
      out.push({ key, value: null, literal: false, line: n + 1 });
      continue;
    }
    const raw = body.slice(eq + 1).trim();
    out.push({ key, value: dotEnvValue(raw, file, n + 1), literal: raw.startsWith("'"), line: n + 1 });
  }
  return out;
}

/**
 * Parses .env text into variables. With `lookup`, unquoted and double-quoted values are interpolated as Compose
 * does (`URL=http://${HOST}:80`), seeing the environment first and then the lines above; without it, values are
 * taken as written.
 */
export function parseDotEnv(text: string, file = '.env', lookup?: (name: string) => string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of parseDotEnvEntries(text, file)) {
    if (entry.value === null) continue;
    let value = entry.value;
    if (lookup !== undefined && !entry.literal) {
      try {
        value = interpolate(value, (name) => lookup(name) ?? (Object.hasOwn(out, name) ? out[name] : undefined)).value;
      } catch (err) {
        if (!(err instanceof InterpolationError)) throw err;
        const position = { file, line: entry.line, column: 1 };
        throw new StackError('interpolation', `${file}:${entry.line}:1: ${entry.key}: ${err.message}`, position, entry.key);
      }
    }
    Object.defineProperty(out, entry.key, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function dotEnvValue(raw: string, file: string, line: number): string {
  const quote = raw[0];
  if (quote === "'" || quote === '"') {
    let out = '';
    for (let i = 1; i < raw.length; i++) {
      const c = raw[i] ?? '';
      if (c === quote) return out;
      if (quote === '"' && c === '\\' && i + 1 < raw.length) {
        const e = raw[++i] ?? '';
        out += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
        continue;
      }
      out += c;
    }
    throw new StackError('parse', `${file}:${line}:1: unterminated ${quote === '"' ? 'double' : 'single'}-quoted value`, { file, line, column: 1 });
  }
  // An unquoted value ends at a ` #` comment.
  const hash = raw.search(/\s#/);
  return (hash < 0 ? raw : raw.slice(0, hash)).trim();
}
