// Our own checks beyond the schema, as `docker stack deploy` makes them: keys a stack refuses (errors), keys Swarm
// ignores (warnings naming key and services), Docker's type casts after interpolation, and relative paths made
// absolute against the project directory.

import { isAbsolute, resolve } from 'node:path';
import { StackError } from './errors.js';
import { at, formatPath, setOwn, type KeyPath, type PositionIndex } from './load-yaml.js';

type Mapping = Record<string, unknown>;

function isMapping(v: unknown): v is Mapping {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Service keys a stack refuses, with Docker's advice (docker/cli's forbidden properties). */
export const FORBIDDEN_SERVICE_KEYS: Readonly<Record<string, string>> = {
  extends: 'support for `extends` is not implemented: write the service out in full or merge a second -c file',
  volume_driver: 'instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there',
  volumes_from: 'to share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option',
  cpu_quota: 'set resource limits using deploy.resources',
  cpu_shares: 'set resource limits using deploy.resources',
  cpuset: 'set resource limits using deploy.resources',
  mem_limit: 'set resource limits using deploy.resources',
  memswap_limit: 'set resource limits using deploy.resources',
};

/**
 * Service keys a swarm ignores: docker/cli's unsupported list (build … userns_mode), depends_on (Docker ignores
 * it silently; we say so), and the Compose Specification's
 * keys that the v3 format never had and a swarm service cannot honour. The converter reads none of these.
 */
export const UNSUPPORTED_SERVICE_KEYS: readonly string[] = [
  'attach', 'blkio_config', 'build', 'cgroup', 'cgroup_parent', 'cgroupns_mode', 'cpu_count', 'cpu_percent',
  'cpu_period', 'cpu_rt_period', 'cpu_rt_runtime', 'cpus', 'depends_on', 'develop', 'device_cgroup_rules', 'devices', 'domainname',
  'external_links', 'gpus', 'ipc', 'label_file', 'links', 'mac_address', 'mem_reservation', 'mem_swappiness', 'models',
  'network_mode', 'oom_kill_disable', 'oom_score_adj', 'pid', 'platform', 'post_start', 'pre_stop', 'privileged', 'profiles',
  'provider', 'pull_policy', 'pull_refresh_after', 'restart', 'runtime', 'scale', 'security_opt', 'shm_size', 'stdin_open',
  'storage_opt', 'use_api_socket', 'userns_mode', 'uts',
];

/** Service keys docker/cli calls deprecated, ignored too, each with Docker's reason. */
export const DEPRECATED_SERVICE_KEYS: Readonly<Record<string, string>> = {
  container_name: 'setting the container name is not supported',
  expose: "exposing ports is unnecessary: services on the same network can reach each other's containers on any port",
};

/** Top-level keys a stack does not use; `version` is accepted silently, as Docker does. */
const IGNORED_TOP_LEVEL = ['name', 'models'];

/** Refuses `include` and the forbidden service keys, pointing at the key in the file. */
export function checkForbidden(value: Mapping, positions: PositionIndex): void {
  if (Object.hasOwn(value, 'include')) {
    const pos = positions.key(['include']);
    throw new StackError('unsupported', `${at(pos, positions.file)}: include: not supported in a stack: pass each file with -c instead`, pos, 'include');
  }
  const services = value['services'];
  if (!isMapping(services)) return;
  for (const [name, service] of Object.entries(services)) {
    if (!isMapping(service)) continue;
    for (const key of Object.keys(service)) {
      const advice = FORBIDDEN_SERVICE_KEYS[key];
      if (advice === undefined || !Object.hasOwn(FORBIDDEN_SERVICE_KEYS, key)) continue;
      const path = ['services', name, key];
      const pos = positions.key(path);
      throw new StackError('unsupported', `${at(pos, positions.file)}: ${formatPath(path)}: not supported in a stack: ${advice}`, pos, formatPath(path));
    }
  }
}

/** Docker's warnings for what a swarm ignores, one line per kind, naming each key and the services that set it. */
export function unsupportedWarnings(model: Mapping): string[] {
  const byKey = new Map<string, string[]>();
  const deployByKey = new Map<string, string[]>();
  const deprecatedByKey = new Map<string, string[]>();
  const services = model['services'];
  if (isMapping(services)) {
    for (const [name, service] of Object.entries(services)) {
      if (!isMapping(service)) continue;
      for (const key of Object.keys(service)) {
        if (UNSUPPORTED_SERVICE_KEYS.includes(key)) byKey.set(key, [...(byKey.get(key) ?? []), name]);
        if (Object.hasOwn(DEPRECATED_SERVICE_KEYS, key)) deprecatedByKey.set(key, [...(deprecatedByKey.get(key) ?? []), name]);
      }
      const deploy = service['deploy'];
      const reservations = isMapping(deploy) && isMapping(deploy['resources']) ? deploy['resources']['reservations'] : undefined;
      if (isMapping(reservations) && reservations['devices'] !== undefined) {
        deployByKey.set('deploy.resources.reservations.devices', [...(deployByKey.get('deploy.resources.reservations.devices') ?? []), name]);
      }
    }
  }
  const warnings: string[] = [];
  const describe = (m: Map<string, string[]>): string =>
    [...m.keys()]
      .sort()
      .map((k) => `${k} (${(m.get(k) ?? []).join(', ')})`)
      .join(', ');
  if (byKey.size > 0) warnings.push(`Ignoring unsupported options: ${describe(byKey)}`);
  for (const key of [...deprecatedByKey.keys()].sort()) {
    warnings.push(`Ignoring deprecated option ${key} (${(deprecatedByKey.get(key) ?? []).join(', ')}): ${DEPRECATED_SERVICE_KEYS[key] ?? ''}`);
  }
  if (deployByKey.size > 0) warnings.push(`Ignoring unsupported deploy options: ${describe(deployByKey)}`);
  const top = IGNORED_TOP_LEVEL.filter((k) => Object.hasOwn(model, k));
  if (top.length > 0) warnings.push(`Ignoring unsupported top-level options: ${top.join(', ')} (the stack's name is the one given to stack deploy)`);
  return warnings;
}

type Cast = 'int' | 'mode' | 'float' | 'bool';

/** docker/cli's casts after interpolation (its interpolateTypeCastMapping), as path patterns; `*` is any key or index. */
const CASTS: ReadonlyArray<[readonly string[], Cast]> = [
  [['services', '*', 'configs', '*', 'mode'], 'mode'],
  [['services', '*', 'secrets', '*', 'mode'], 'mode'],
  [['services', '*', 'healthcheck', 'retries'], 'int'],
  [['services', '*', 'healthcheck', 'disable'], 'bool'],
  [['services', '*', 'deploy', 'replicas'], 'int'],
  [['services', '*', 'deploy', 'update_config', 'parallelism'], 'int'],
  [['services', '*', 'deploy', 'update_config', 'max_failure_ratio'], 'float'],
  [['services', '*', 'deploy', 'rollback_config', 'parallelism'], 'int'],
  [['services', '*', 'deploy', 'rollback_config', 'max_failure_ratio'], 'float'],
  [['services', '*', 'deploy', 'restart_policy', 'max_attempts'], 'int'],
  [['services', '*', 'deploy', 'placement', 'max_replicas_per_node'], 'int'],
  [['services', '*', 'ports', '*', 'target'], 'int'],
  [['services', '*', 'ports', '*', 'published'], 'int'],
  [['services', '*', 'ulimits', '*'], 'int'],
  [['services', '*', 'ulimits', '*', 'hard'], 'int'],
  [['services', '*', 'ulimits', '*', 'soft'], 'int'],
  [['services', '*', 'privileged'], 'bool'],
  [['services', '*', 'read_only'], 'bool'],
  [['services', '*', 'stdin_open'], 'bool'],
  [['services', '*', 'tty'], 'bool'],
  [['services', '*', 'init'], 'bool'],
  [['services', '*', 'volumes', '*', 'read_only'], 'bool'],
  [['services', '*', 'volumes', '*', 'volume', 'nocopy'], 'bool'],
  [['networks', '*', 'external'], 'bool'],
  [['networks', '*', 'internal'], 'bool'],
  [['networks', '*', 'attachable'], 'bool'],
  [['volumes', '*', 'external'], 'bool'],
  [['secrets', '*', 'external'], 'bool'],
  [['configs', '*', 'external'], 'bool'],
];

/**
 * Strings at the places above become the integers, floats and booleans they spell, as Docker does after
 * interpolation (so `replicas: ${N}` deploys N replicas). A string that spells no such value is an error there;
 * `published: "8000-8010"` (a range) stays a string. Changes `value` in place.
 */
export function castTypes(value: Mapping, positions: PositionIndex): void {
  for (const [pattern, cast] of CASTS) visit(value, pattern, [], (parent, key, path) => {
    const v = parent[key as never] as unknown;
    if (typeof v !== 'string') return;
    const out = castString(v, cast, path);
    if (out === undefined) {
      const pos = positions.value(path);
      const want = cast === 'bool' ? 'a boolean (true or false)' : cast === 'float' ? 'a number' : 'an integer';
      throw new StackError('invalid', `${at(pos, positions.file)}: ${formatPath(path)}: must be ${want}, not ${JSON.stringify(v)}`, pos, formatPath(path));
    }
    if (Array.isArray(parent)) parent[key as number] = out;
    else setOwn(parent as Mapping, key as string, out);
  });
}

/** A file mode written as text: a leading 0 makes it octal ("0440" is 288), as YAML 1.1 reads an integer; other digits are decimal. */
export function fileModeOf(text: string): number | undefined {
  const s = text.trim();
  if (/^0[0-7]*$/.test(s)) return parseInt(s, 8);
  return /^\d+$/.test(s) ? Number(s) : undefined;
}

function castString(v: string, cast: Cast, path: KeyPath): unknown {
  const s = v.trim();
  switch (cast) {
    case 'bool': {
      const lower = s.toLowerCase();
      if (['true', 'yes', 'y', 'on', '1'].includes(lower)) return true;
      if (['false', 'no', 'n', 'off', '0'].includes(lower)) return false;
      return undefined;
    }
    case 'float':
      return /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s) ? Number(s) : undefined;
    case 'mode':
      return fileModeOf(s);
    default:
      if (/^[-+]?\d+$/.test(s)) return Number(s);
      // Port ranges and host-side specs stay strings for the converter to read.
      if (path.includes('ports') && /^\d+-\d+$/.test(s)) return v;
      return undefined;
  }
}

function visit(node: unknown, pattern: readonly string[], path: (string | number)[], fn: (parent: Mapping | unknown[], key: string | number, path: KeyPath) => void): void {
  const [head, ...rest] = pattern;
  if (head === undefined) return;
  const keys: Array<string | number> = Array.isArray(node)
    ? head === '*'
      ? node.map((_, i) => i)
      : []
    : isMapping(node)
      ? head === '*'
        ? Object.keys(node)
        : Object.hasOwn(node, head)
          ? [head]
          : []
      : [];
  for (const key of keys) {
    const childPath = [...path, key];
    if (rest.length === 0) fn(node as Mapping | unknown[], key, childPath);
    else visit((node as Record<string | number, unknown>)[key], rest, childPath, fn);
  }
}

/**
 * Relative paths become absolute against the project directory (the first file's): env_file entries, top-level
 * secrets/configs `file:`, and bind-mount sources that start with `.` or `~` (short and long syntax), as Docker's
 * loader does. Reading env_file contents is the converter's job. Changes `model` in place.
 */
export function resolvePaths(model: Mapping, workingDir: string, home: string | undefined): void {
  const abs = (p: string): string => {
    if (p === '~' || p.startsWith('~/')) return home === undefined ? p : resolve(home, p.slice(2));
    return isAbsolute(p) ? p : resolve(workingDir, p);
  };
  for (const section of ['secrets', 'configs']) {
    const defs = model[section];
    if (!isMapping(defs)) continue;
    for (const def of Object.values(defs)) {
      if (isMapping(def) && typeof def['file'] === 'string') def['file'] = abs(def['file']);
    }
  }
  const services = model['services'];
  if (!isMapping(services)) return;
  for (const service of Object.values(services)) {
    if (!isMapping(service)) continue;
    const envFile = service['env_file'];
    if (typeof envFile === 'string') service['env_file'] = abs(envFile);
    else if (Array.isArray(envFile)) {
      service['env_file'] = envFile.map((e) => (typeof e === 'string' ? abs(e) : isMapping(e) && typeof e['path'] === 'string' ? { ...e, path: abs(e['path']) } : e));
    }
    const volumes = service['volumes'];
    if (!Array.isArray(volumes)) continue;
    service['volumes'] = volumes.map((v) => {
      if (typeof v === 'string') {
        const colon = v.indexOf(':');
        if (colon <= 0) return v;
        const source = v.slice(0, colon);
        return source.startsWith('.') || source.startsWith('~') ? `${abs(source)}${v.slice(colon)}` : v;
      }
      if (isMapping(v) && v['type'] === 'bind' && typeof v['source'] === 'string') {
        const source = v['source'];
        return source.startsWith('.') || source.startsWith('~') ? { ...v, source: abs(source) } : v;
      }
      return v;
    });
  }
}

/**
 * Every network, named volume, secret and config a service of this file names must be declared at the top level of
 * the merged project (Docker refuses it at deploy, as "undefined network …"); the error points at the reference.
 * The network `default` needs no declaration: a stack makes it.
 */
export function checkReferences(file: Mapping, project: Mapping, positions: PositionIndex): void {
  const services = file['services'];
  if (!isMapping(services)) return;
  const declared = (section: string): Mapping => (isMapping(project[section]) ? (project[section] as Mapping) : {});
  const fail = (path: KeyPath, kind: string, name: string): never => {
    const pos = positions.value(path);
    throw new StackError('invalid', `${at(pos, positions.file)}: ${formatPath(path)}: undefined ${kind} "${name}": declare it under the top-level ${kind}s:`, pos, formatPath(path));
  };
  for (const [service, spec] of Object.entries(services)) {
    if (!isMapping(spec)) continue;
    const base = ['services', service];
    const networks = spec['networks'];
    const networkNames: Array<[string, KeyPath]> = Array.isArray(networks)
      ? networks.map((n, i) => [String(n), [...base, 'networks', i]])
      : isMapping(networks)
        ? Object.keys(networks).map((n) => [n, [...base, 'networks', n]])
        : [];
    for (const [name, path] of networkNames) if (name !== 'default' && !Object.hasOwn(declared('networks'), name)) fail(path, 'network', name);
    for (const section of ['secrets', 'configs']) {
      const refs = spec[section];
      if (!Array.isArray(refs)) continue;
      refs.forEach((ref, i) => {
        const name = isMapping(ref) ? ref['source'] : ref;
        if (typeof name === 'string' && !Object.hasOwn(declared(section), name)) fail([...base, section, i], section.slice(0, -1), name);
      });
    }
    const volumes = spec['volumes'];
    if (!Array.isArray(volumes)) continue;
    volumes.forEach((v, i) => {
      const name = namedVolume(v);
      if (name !== null && !Object.hasOwn(declared('volumes'), name)) fail([...base, 'volumes', i], 'volume', name);
    });
  }
}

/** The named volume a mount uses, or null for binds, tmpfs and anonymous volumes. */
function namedVolume(v: unknown): string | null {
  if (isMapping(v)) {
    const source = v['source'];
    return (v['type'] ?? 'volume') === 'volume' && typeof source === 'string' && source !== '' ? source : null;
  }
  if (typeof v !== 'string') return null;
  const colon = v.indexOf(':');
  if (colon <= 0) return null;
  const source = v.slice(0, colon);
  return /^[./~]/.test(source) || source.includes('/') || source.includes('$') ? null : source;
}

/** `[HOST_IP:][PUBLISHED[-END]:]TARGET[-END][/PROTOCOL]`, the short port syntax Docker's loader accepts. */
const SHORT_PORT = /^(?:(?:\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(?:(?:\d+(?:-\d+)?)?:)?\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/;

/**
 * Short-syntax ports and volumes parse as Docker's loader parses them (`"8080:80/udp"`, `"data:/data:ro"`), so a
 * variable left empty (`":/media"`) fails here, at its line, rather than at deploy. Skipped for strings that still
 * hold a `$` (with --skip-interpolation).
 */
export function checkShortSyntax(file: Mapping, positions: PositionIndex): void {
  const services = file['services'];
  if (!isMapping(services)) return;
  const fail = (path: KeyPath, message: string): never => {
    const pos = positions.value(path);
    throw new StackError('invalid', `${at(pos, positions.file)}: ${formatPath(path)}: ${message}`, pos, formatPath(path));
  };
  for (const [service, spec] of Object.entries(services)) {
    if (!isMapping(spec)) continue;
    const ports = spec['ports'];
    if (Array.isArray(ports)) {
      ports.forEach((p, i) => {
        if (typeof p === 'string' && !p.includes('$') && !SHORT_PORT.test(p.trim())) {
          fail(['services', service, 'ports', i], `invalid port ${JSON.stringify(p)}: use [HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL], e.g. "8080:80" or "53:53/udp"`);
        }
      });
    }
    const volumes = spec['volumes'];
    if (!Array.isArray(volumes)) continue;
    volumes.forEach((v, i) => {
      if (typeof v !== 'string' || v.includes('$')) return;
      const parts = v.split(':');
      if (v === '' || parts.some((part) => part === '')) fail(['services', service, 'volumes', i], `invalid volume spec ${JSON.stringify(v)}: empty section between colons`);
      if (parts.length > 3) fail(['services', service, 'volumes', i], `invalid volume spec ${JSON.stringify(v)}: too many colons (use SOURCE:TARGET[:MODE])`);
      const target = parts.length === 1 ? parts[0] : parts[1];
      if (target !== undefined && !target.startsWith('/')) fail(['services', service, 'volumes', i], `invalid volume spec ${JSON.stringify(v)}: the mount point ${JSON.stringify(target)} must be an absolute path`);
    });
  }
}
