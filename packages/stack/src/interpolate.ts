// Docker Compose's variable substitution in string values: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
// ${VAR:?err}, ${VAR?err}, ${VAR:+alt}, ${VAR+alt}, and $$ for a literal $. Defaults may themselves hold ${…}.

export interface InterpolationResult {
  value: string;
  /** Variables that were unset and had no default; they became "" (Docker warns about each). */
  unset: string[];
}

/** Why a template could not be substituted: a bad `$` form, or a `${VAR:?err}` whose variable is missing. */
export class InterpolationError extends Error {
  constructor(
    readonly kind: 'syntax' | 'required',
    message: string,
    readonly variable: string | null = null,
  ) {
    super(message);
    this.name = 'InterpolationError';
  }
}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;
/** Nesting bound for defaults inside defaults: plenty for real files, and no stack overflow on hostile input. */
const MAX_DEPTH = 32;

export function interpolate(template: string, lookup: (name: string) => string | undefined): InterpolationResult {
  const unset: string[] = [];
  const value = substitute(template, lookup, unset, 0);
  return { value, unset };
}

function substitute(s: string, lookup: (name: string) => string | undefined, unset: string[], depth: number): string {
  if (depth > MAX_DEPTH) throw new InterpolationError('syntax', `invalid interpolation format: defaults nested more than ${MAX_DEPTH} deep`);
  let out = '';
  let i = 0;
  while (i < s.length) {
    const dollar = s.indexOf('$', i);
    if (dollar < 0) {
      out += s.slice(i);
      break;
    }
    out += s.slice(i, dollar);
    const next = s[dollar + 1];
    if (next === '$') {
      out += '$';
      i = dollar + 2;
      continue;
    }
    if (next !== undefined && NAME_START.test(next)) {
      let end = dollar + 2;
      while (end < s.length && NAME_CHAR.test(s[end] ?? '')) end++;
      const name = s.slice(dollar + 1, end);
      out += resolvePlain(name, lookup, unset);
      i = end;
      continue;
    }
    if (next === '{') {
      const close = matchingBrace(s, dollar + 2);
      if (close < 0) throw syntax(s, dollar);
      out += braced(s.slice(dollar + 2, close), s, dollar, lookup, unset, depth);
      i = close + 1;
      continue;
    }
    throw syntax(s, dollar);
  }
  return out;
}

/** Index of the `}` closing a `${` whose body starts at `from`, counting nested `${…}`; -1 when unclosed. */
function matchingBrace(s: string, from: number): number {
  let depth = 0;
  for (let i = from; i < s.length; i++) {
    const c = s[i];
    if (c === '$' && s[i + 1] === '$') {
      i++;
      continue;
    }
    if (c === '$' && s[i + 1] === '{') {
      depth++;
      i++;
      continue;
    }
    if (c === '}') {
      if (depth === 0) return i;
      depth--;
    }
  }
  return -1;
}

function braced(body: string, whole: string, at: number, lookup: (name: string) => string | undefined, unset: string[], depth: number): string {
  let end = 0;
  if (!NAME_START.test(body[0] ?? '')) throw syntax(whole, at);
  while (end < body.length && NAME_CHAR.test(body[end] ?? '')) end++;
  const name = body.slice(0, end);
  if (end === body.length) return resolvePlain(name, lookup, unset);
  const colon = body[end] === ':';
  const op = body[colon ? end + 1 : end];
  const arg = body.slice(colon ? end + 2 : end + 1);
  if (op !== '-' && op !== '?' && op !== '+') throw syntax(whole, at);
  const raw = lookup(name);
  const isSet = raw !== undefined;
  const present = colon ? isSet && raw !== '' : isSet;
  switch (op) {
    case '-':
      return present ? (raw ?? '') : substitute(arg, lookup, unset, depth + 1);
    case '+':
      return present ? substitute(arg, lookup, unset, depth + 1) : '';
    default: {
      if (present) return raw ?? '';
      const reason = substitute(arg, lookup, unset, depth + 1);
      throw new InterpolationError('required', `required variable ${name} is missing a value${reason === '' ? '' : `: ${reason}`}`, name);
    }
  }
}

function resolvePlain(name: string, lookup: (name: string) => string | undefined, unset: string[]): string {
  const v = lookup(name);
  if (v !== undefined) return v;
  if (!unset.includes(name)) unset.push(name);
  return '';
}

/** Longer values (scripts in a command) are quoted around the offending `$` only, so the error stays readable. */
const EXCERPT_CHARS = 24;

function syntax(template: string, at: number): InterpolationError {
  const short = template.length <= 2 * EXCERPT_CHARS + 8;
  const start = short ? 0 : Math.max(0, at - EXCERPT_CHARS);
  const end = short ? template.length : Math.min(template.length, at + EXCERPT_CHARS);
  const excerpt = `${start > 0 ? '…' : ''}${template.slice(start, end)}${end < template.length ? '…' : ''}`;
  return new InterpolationError('syntax', `invalid interpolation format in ${JSON.stringify(excerpt)}: you may need to escape any $ with another $`);
}
