// Several `-c` files merged in order, with docker/cli's rules (cli/compose/loader/merge.go): services merged by
// name, mappings recursively, most lists appended; ports, volumes, secrets, configs and networks merged by their key;
// environment and labels merged whether written as a list or a mapping; command and entrypoint replaced; top-level
// networks, volumes, secrets and configs replaced by name.

import { setOwn } from './load-yaml.js';

type Mapping = Record<string, unknown>;

function isMapping(v: unknown): v is Mapping {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `override` merged onto `base`; neither is changed. */
export function mergeComposeFiles(base: Mapping, override: Mapping): Mapping {
  const out: Mapping = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const prior = out[key];
    if (key === 'services' && isMapping(prior) && isMapping(value)) {
      const services: Mapping = { ...prior };
      for (const [name, service] of Object.entries(value)) {
        const before = services[name];
        setOwn(services, name, isMapping(before) && isMapping(service) ? mergeMapping(before, service, []) : service);
      }
      setOwn(out, key, services);
    } else if (['networks', 'volumes', 'secrets', 'configs'].includes(key) && isMapping(prior) && isMapping(value)) {
      // As Docker: a definition in a later file replaces the earlier one with that name whole.
      setOwn(out, key, { ...prior, ...value });
    } else if (value !== null || !Object.hasOwn(out, key)) {
      setOwn(out, key, value);
    }
  }
  return out;
}

/** A service key (path relative to the service) whose list-or-mapping value merges by variable or label name. */
const KEYED_MAPPINGS = new Set(['environment', 'labels', 'annotations', 'sysctls', 'deploy.labels', 'build.args', 'build.labels']);
const REPLACED = new Set(['command', 'entrypoint', 'healthcheck.test']);

function mergeMapping(base: Mapping, override: Mapping, path: readonly string[]): Mapping {
  const out: Mapping = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const prior = out[key];
    const at = [...path, key];
    const name = at.join('.');
    // An empty value in a later file changes nothing, as with Docker's merge (it skips zero values).
    if (value === null || value === undefined) {
      if (!Object.hasOwn(out, key)) setOwn(out, key, value);
      continue;
    }
    if (prior === null || prior === undefined || REPLACED.has(name)) {
      setOwn(out, key, value);
      continue;
    }
    if (KEYED_MAPPINGS.has(name)) {
      setOwn(out, key, { ...listOrDict(prior), ...listOrDict(value) });
      continue;
    }
    if (path.length === 0) {
      const special = mergeServiceKey(key, prior, value);
      if (special !== undefined) {
        setOwn(out, key, special);
        continue;
      }
    }
    if (isMapping(prior) && isMapping(value)) {
      setOwn(out, key, mergeMapping(prior, value, at));
    } else if (Array.isArray(prior) && Array.isArray(value)) {
      setOwn(out, key, unionBy(prior, value, (v) => JSON.stringify(v)));
    } else if (['dns', 'dns_search', 'tmpfs', 'env_file'].includes(name) && (Array.isArray(prior) || Array.isArray(value))) {
      setOwn(out, key, unionBy(asList(prior), asList(value), (v) => JSON.stringify(v)));
    } else {
      setOwn(out, key, value);
    }
  }
  return out;
}

function mergeServiceKey(key: string, prior: unknown, value: unknown): unknown {
  switch (key) {
    case 'ports':
      if (!Array.isArray(prior) || !Array.isArray(value)) return undefined;
      return sortBy(unionBy(prior, value, portKey), (p) => portField(p, 'published'));
    case 'volumes':
      if (!Array.isArray(prior) || !Array.isArray(value)) return undefined;
      return sortBy(unionBy(prior, value, volumeTarget), volumeTarget);
    case 'secrets':
    case 'configs':
      if (!Array.isArray(prior) || !Array.isArray(value)) return undefined;
      return sortBy(unionBy(prior, value, sourceOf), sourceOf);
    case 'networks':
      return mergeServiceNetworks(prior, value);
    case 'logging':
      return mergeLogging(prior, value);
    case 'ulimits':
      // Each limit in a later file replaces that limit whole (soft and hard together).
      return isMapping(prior) && isMapping(value) ? { ...prior, ...value } : undefined;
    default:
      return undefined;
  }
}

/** KEY=VALUE list or mapping, as a mapping (a bare KEY maps to null: its value comes from the environment). */
export function listOrDict(v: unknown): Mapping {
  if (isMapping(v)) return { ...v };
  const out: Mapping = {};
  if (Array.isArray(v)) {
    for (const item of v) {
      const s = String(item);
      const eq = s.indexOf('=');
      setOwn(out, eq < 0 ? s : s.slice(0, eq), eq < 0 ? null : s.slice(eq + 1));
    }
  }
  return out;
}

function asList(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === null || v === undefined ? [] : [v];
}

/** Items of both lists, one per key; an item of the later list replaces the earlier one with the same key. */
function unionBy(base: readonly unknown[], override: readonly unknown[], key: (v: unknown) => string): unknown[] {
  const byKey = new Map<string, unknown>();
  for (const item of base) byKey.set(key(item), item);
  // A replaced item keeps the earlier one's place.
  for (const item of override) byKey.set(key(item), item);
  return [...byKey.values()];
}

function sortBy(items: unknown[], key: (v: unknown) => string | number): unknown[] {
  return items
    .map((item, i) => ({ item, i, k: key(item) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : a.i - b.i))
    .map((e) => e.item);
}

/** A port's identity: the whole mapping, short or long syntax alike ("8080:80" and {target: 80, published: 8080}). */
function portKey(p: unknown): string {
  return ['host_ip', 'published', 'target', 'protocol', 'mode'].map((f) => String(portField(p, f))).join('|');
}

function portField(p: unknown, field: string): string | number {
  if (typeof p === 'number') return field === 'target' ? p : field === 'protocol' ? 'tcp' : field === 'mode' ? 'ingress' : '';
  if (isMapping(p)) {
    const v = p[field];
    if (v === undefined || v === null) return field === 'protocol' ? 'tcp' : field === 'mode' ? 'ingress' : '';
    return typeof v === 'number' ? v : String(v);
  }
  // [HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]; HOST_IP may be [v6] with colons of its own.
  let s = String(p);
  let protocol = 'tcp';
  const slash = s.lastIndexOf('/');
  if (slash >= 0) {
    protocol = s.slice(slash + 1);
    s = s.slice(0, slash);
  }
  const lastColon = s.lastIndexOf(':');
  const target = s.slice(lastColon + 1);
  const rest = lastColon < 0 ? '' : s.slice(0, lastColon);
  const ipColon = rest.lastIndexOf(':');
  const published = ipColon < 0 ? rest : rest.slice(ipColon + 1);
  const hostIp = ipColon < 0 ? '' : rest.slice(0, ipColon);
  const fields: Record<string, string | number> = { host_ip: hostIp, published: numeric(published), target: numeric(target), protocol, mode: 'ingress' };
  return fields[field] ?? '';
}

function numeric(s: string): string | number {
  return /^\d+$/.test(s) ? Number(s) : s;
}

/** A mount's identity is its path in the container. */
function volumeTarget(v: unknown): string {
  if (isMapping(v)) return String(v['target'] ?? '');
  const parts = String(v).split(':');
  return parts.length === 1 ? (parts[0] ?? '') : (parts[1] ?? '');
}

function sourceOf(v: unknown): string {
  return isMapping(v) ? String(v['source'] ?? '') : String(v);
}

function mergeServiceNetworks(prior: unknown, value: unknown): unknown {
  if (Array.isArray(prior) && Array.isArray(value)) return unionBy(prior, value, String);
  const base = networksMapping(prior);
  const over = networksMapping(value);
  if (base === null || over === null) return undefined;
  const out: Mapping = { ...base };
  for (const [name, cfg] of Object.entries(over)) {
    const before = out[name];
    if (cfg === null || cfg === undefined) {
      if (!Object.hasOwn(out, name)) setOwn(out, name, null);
    } else if (isMapping(before) && isMapping(cfg)) {
      setOwn(out, name, { ...before, ...cfg });
    } else {
      setOwn(out, name, cfg);
    }
  }
  return out;
}

function networksMapping(v: unknown): Mapping | null {
  if (isMapping(v)) return v;
  if (!Array.isArray(v)) return null;
  const out: Mapping = {};
  for (const name of v) setOwn(out, String(name), null);
  return out;
}

/** The same driver (or one side without a driver): options merge. Another driver: the later logging replaces. */
function mergeLogging(prior: unknown, value: unknown): unknown {
  if (!isMapping(prior) || !isMapping(value)) return undefined;
  const a = prior['driver'];
  const b = value['driver'];
  if (a !== undefined && b !== undefined && a !== b) return value;
  const options = { ...(isMapping(prior['options']) ? prior['options'] : {}), ...(isMapping(value['options']) ? value['options'] : {}) };
  return { ...prior, ...value, options };
}
