// The converter's scalar parsers: durations, byte sizes, CPUs, whole numbers, shell words, KEY=value lists and
// published ports in compose's short and long syntax. Each failure is a StackError naming the key path.

import { StackError } from './errors.js';
import type { ComposePort, ListOrDict } from './model.js';

export function invalid(path: string, message: string): StackError {
  return new StackError('invalid', `${path}: ${message}`, null, path);
}

/** A value as an error message quotes it: JSON, cut short so that a whole mapping never floods the line. */
export function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

const DURATION_UNITS_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

/** Go's duration syntax ("1m30s", "500ms", "2h"; "0"); a bare number is seconds, as compose takes it. In ms. */
export function durationMs(value: unknown, path: string): number {
  if (typeof value === 'number') {
    if (!(value >= 0) || !Number.isFinite(value)) throw invalid(path, `${show(value)} is not a duration like 10s, 1m30s or 500ms`);
    return Math.round(value * 1000);
  }
  if (typeof value !== 'string') throw invalid(path, `${show(value)} is not a duration like 10s, 1m30s or 500ms`);
  const text = value.trim();
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * (DURATION_UNITS_MS[m[2] ?? ''] ?? 0);
    at = re.lastIndex;
  }
  if (text === '' || at !== text.length) throw invalid(path, `${show(value)} is not a duration like 10s, 1m30s or 500ms`);
  return Math.round(total);
}

/** Docker's RAMInBytes: "512M", "1g", "1.5GB", "64KiB", or a number of bytes; binary multiples. */
export function bytes(value: unknown, path: string): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw invalid(path, `${show(value)} is not a size like 512M or 1G`);
    return value;
  }
  const m = typeof value === 'string' ? /^(\d+(?:\.\d+)?) ?([kmgtp])?(i?b)?$/i.exec(value.trim()) : null;
  if (m === null) throw invalid(path, `${show(value)} is not a size like 512M or 1G`);
  const power = { '': 0, k: 1, m: 2, g: 3, t: 4, p: 5 }[(m[2] ?? '').toLowerCase()] ?? 0;
  return Math.round(Number(m[1]) * 1024 ** power);
}

/** CPUs as a decimal ("0.5", 2) -> nano CPUs. */
export function nanoCpus(value: unknown, path: string): number {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || !/^\d+(\.\d+)?$|^\.\d+$/.test(text.trim())) throw invalid(path, `${show(value)} is not a number of CPUs like 0.5 or 2`);
  return Math.round(Number(text) * 1e9);
}

/** A whole number, given as one or as a string (interpolation leaves strings). */
export function wholeNumber(value: unknown, path: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 0 || n > max) throw invalid(path, `${show(value)} is not a whole number${max < Number.MAX_SAFE_INTEGER ? ` from 0 to ${max}` : ''}`);
  return n;
}

export function ratio(value: unknown, path: string): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!(n >= 0 && n <= 1)) throw invalid(path, `${show(value)} is not a number from 0 to 1`);
  return n;
}

export function bool(value: unknown, path: string): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw invalid(path, `${show(value)} is not true or false`);
}

export function str(value: unknown, path: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw invalid(path, `${show(value)} is not a string`);
}

export function stringList(value: unknown, path: string): string[] {
  if (!Array.isArray(value)) throw invalid(path, `${show(value)} is not a list`);
  return value.map((v, i) => str(v, `${path}[${i}]`));
}

/**
 * A command string split into words as a POSIX shell would (Docker uses go-shellwords): blanks separate words,
 * '…' keeps everything literally, "…" keeps blanks and lets \ escape " \ $ `, and \ outside quotes escapes any char.
 */
export function shellSplit(text: string, path: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? '';
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < text.length && '"\\$`\n'.includes(text[i + 1] ?? '')) word += text[++i] ?? '';
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 >= text.length) throw invalid(path, `${show(text)} ends with a lone backslash`);
      word += text[++i] ?? '';
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote !== null) throw invalid(path, `${show(text)} has an unclosed ${quote} quote`);
  if (inWord) words.push(word);
  return words;
}

/** A `string | string[]` command: a string is shell-split, a list taken as it is. */
export function commandWords(value: unknown, path: string): string[] {
  if (value === null || value === undefined) return [];
  if (typeof value === 'string') return shellSplit(value, path);
  return stringList(value, path);
}

/**
 * environment / labels as pairs in order: the list form's `KEY=value` items (a bare `KEY` has no value: null), or
 * the map form (numbers and booleans as their text, null for no value).
 */
export function keyValues(value: ListOrDict | undefined, path: string): Array<[string, string | null]> {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) {
    return value.map((item, i) => {
      const text = str(item, `${path}[${i}]`);
      const eq = text.indexOf('=');
      const key = eq < 0 ? text : text.slice(0, eq);
      if (key === '') throw invalid(`${path}[${i}]`, `${show(text)} has no name before "="`);
      return [key, eq < 0 ? null : text.slice(eq + 1)];
    });
  }
  if (typeof value !== 'object') throw invalid(path, `${show(value)} is neither a list of KEY=value nor a map`);
  return Object.entries(value).map(([k, v]) => [k, v === null ? null : str(v, `${path}.${k}`)]);
}

/** Labels as a map (a label without value is the empty string, as in Docker). */
export function labelMap(value: ListOrDict | undefined, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of keyValues(value, path)) out[k] = v ?? '';
  return out;
}

// ---------------------------------------------------------------- ports

export interface ParsedPort {
  protocol: 'tcp' | 'udp' | 'sctp';
  targetPort: number;
  /** 0: none given (the leader picks one in ingress mode). */
  publishedPort: number;
  publishMode: 'ingress' | 'host';
  name: string;
  /** A host IP the short or long form named; the cluster publishes on every address, so the converter warns. */
  hostIp: string;
}

function protocolOf(value: string, path: string): ParsedPort['protocol'] {
  const p = value.toLowerCase();
  if (p !== 'tcp' && p !== 'udp' && p !== 'sctp') throw invalid(path, `protocol ${show(value)} is not tcp, udp or sctp`);
  return p;
}

/** "80" or "8000-8010" as [first, last]. */
function portRange(text: string, what: string, path: string, min: number): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  const first = m === null ? NaN : Number(m[1]);
  const last = m === null ? NaN : m[2] === undefined ? first : Number(m[2]);
  if (!(first >= min && first <= 65535 && last >= first && last <= 65535)) throw invalid(path, `${what} ${show(text)} is not a port (${min}-65535) or a range like 8000-8010`);
  return [first, last];
}

/**
 * Compose's short syntax, `[[HOST_IP:]PUBLISHED:]TARGET[/PROTOCOL]`, ranges included (`9000-9002:9000-9002`): one
 * port each, as Docker expands them. Published ports are in ingress mode, as `docker stack deploy` makes them.
 */
function shortPort(text: string, path: string): ParsedPort[] {
  let spec = text.trim();
  let protocol: ParsedPort['protocol'] = 'tcp';
  const slash = spec.lastIndexOf('/');
  if (slash >= 0) {
    protocol = protocolOf(spec.slice(slash + 1), path);
    spec = spec.slice(0, slash);
  }
  // An IPv6 host address comes in brackets: [::1]:8080:80.
  let hostIp = '';
  const bracket = /^\[([^\]]+)\]:(.*)$/.exec(spec);
  if (bracket !== null) {
    hostIp = bracket[1] ?? '';
    spec = bracket[2] ?? '';
  }
  const parts = spec.split(':');
  if (parts.length > 3 || (hostIp !== '' && parts.length !== 2)) throw invalid(path, `${show(text)} is not [[HOST_IP:]PUBLISHED:]TARGET[/PROTOCOL]`);
  if (parts.length === 3) hostIp = parts.shift() ?? '';
  const [first = '', second] = parts;
  const target = portRange(second ?? first, 'target', path, 1);
  const published = second === undefined || first === '' ? null : portRange(first, 'published', path, 1);
  const count = target[1] - target[0] + 1;
  if (published !== null && published[1] - published[0] + 1 !== count && published[0] !== published[1]) {
    throw invalid(path, `${show(text)}: the published range and the target range are not the same size`);
  }
  const out: ParsedPort[] = [];
  for (let i = 0; i < count; i++) {
    // A single published port with a target range: Docker publishes each target on it in turn; keep it to one.
    const publishedPort = published === null ? 0 : published[0] === published[1] ? published[0] : published[0] + i;
    out.push({ protocol, targetPort: target[0] + i, publishedPort, publishMode: 'ingress', name: '', hostIp });
  }
  return out;
}

/** One entry of a service's `ports`, either syntax, as the ports it publishes. */
export function parsePort(value: ComposePort, path: string): ParsedPort[] {
  if (typeof value === 'number') return shortPort(String(value), path);
  if (typeof value === 'string') return shortPort(value, path);
  if (typeof value !== 'object' || value === null) throw invalid(path, `${show(value)} is neither a port string nor a mapping with target`);
  if (value.target === undefined) throw invalid(`${path}.target`, 'is required');
  const target = portRange(str(value.target, `${path}.target`), 'target', `${path}.target`, 1);
  if (target[0] !== target[1]) throw invalid(`${path}.target`, 'a range is only taken in the short syntax');
  let publishedPort = 0;
  if (value.published !== undefined && value.published !== '') {
    const p = portRange(str(value.published, `${path}.published`), 'published', `${path}.published`, 0);
    if (p[0] !== p[1]) throw invalid(`${path}.published`, 'a range is only taken in the short syntax');
    publishedPort = p[0];
  }
  const mode = value.mode === undefined ? 'ingress' : str(value.mode, `${path}.mode`);
  if (mode !== 'ingress' && mode !== 'host') throw invalid(`${path}.mode`, `${show(mode)} is not ingress or host`);
  return [
    {
      protocol: value.protocol === undefined ? 'tcp' : protocolOf(str(value.protocol, `${path}.protocol`), `${path}.protocol`),
      targetPort: target[0],
      publishedPort,
      publishMode: mode,
      name: value.name === undefined ? '' : str(value.name, `${path}.name`),
      hostIp: value.host_ip === undefined ? '' : str(value.host_ip, `${path}.host_ip`),
    },
  ];
}
