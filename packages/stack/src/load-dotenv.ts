// The `.env` file beside the first compose file: KEY=VALUE lines that give interpolation its defaults (the process
// environment wins). The same syntax as Compose's: comments, `export `, single and double quotes.

import { StackError } from './errors.js';

const KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** Parses .env text; a malformed line is an error naming file:line. */
export function parseDotEnv(text: string, file = '.env'): Record<string, string> {
  const out: Record<string, string> = {};
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
    // A bare KEY names a variable without giving it a value here; Compose leaves it to the environment.
    if (eq < 0) continue;
    Object.defineProperty(out, key, { value: dotEnvValue(body.slice(eq + 1).trim(), file, n + 1), enumerable: true, writable: true, configurable: true });
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
