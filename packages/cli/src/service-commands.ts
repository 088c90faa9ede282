// `swarm service create|ls|ps|inspect|scale|rm`: Docker's flags turned into a ServiceSpec, Docker's tables and
// `--format json` lines, and (unless --detach) the wait for a service to converge, one progress line per change.

import type { Command } from 'commander';
import { ApiError, checkUlimit, isUlimitName, LB_STRATEGIES, ULIMIT_NAMES, type ApiClient, type UlimitDocument, type ConfigReferenceDocument, type FileTargetDocument, type SecretReferenceDocument, type MountDocument, type NetworkAttachmentDocument, type PortConfigDocument, type ServiceDocument, type ServiceSpecDocument, type TaskDocument, type UpdateConfigDocument } from '@swarm/api/client';
import { clientFor, CliError, parseFormat, collect, parseKeyValues } from './context.js';
import { capitalize, jsonLines, table, writeOut } from './output.js';

/** How long `create`/`scale` wait for convergence before giving up (the service stays; only the wait ends). */
const CONVERGE_TIMEOUT_MS = 120_000;
const CONVERGE_POLL_MS = 250;

// ---------------------------------------------------------------- flag parsing

/** Go durations as Docker takes them: "10s", "1m30s", "500ms", "2h"; returns nanoseconds. */
export function parseDuration(value: string, flag: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(value); m !== null; m = re.exec(value)) {
    total += Number(m[1]) * (units[m[2] ?? ''] ?? 0);
    matched = re.lastIndex;
  }
  if (value === '0') return 0;
  if (matched !== value.length || value.length === 0) throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: a duration like 10s, 1m30s or 500ms`);
  return Math.round(total);
}

/** Docker's RAMInBytes: "64M", "1g", "512k", "1024" (bytes); binary multiples. */
export function parseBytes(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(value.trim());
  if (m === null) throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: a size like 64M or 1G`);
  const power = { '': 0, k: 1, m: 2, g: 3, t: 4 }[(m[2] ?? '').toLowerCase()] ?? 0;
  return Math.round(Number(m[1]) * 1024 ** power);
}

/** CPUs as a decimal ("0.5", "2") -> nano CPUs. */
export function parseCpus(value: string, flag: string): number {
  if (!/^\d+(\.\d+)?$/.test(value)) throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: a number of CPUs like 0.5 or 2`);
  return Math.round(Number(value) * 1e9);
}


/** Flags that set one value of the spec: the same on create and update (update changes only what is given). */
export interface SpecFlags {
  reserveCpu?: string;
  reserveMemory?: string;
  limitCpu?: string;
  limitMemory?: string;
  restartCondition?: string;
  restartDelay?: string;
  restartMaxAttempts?: string;
  restartWindow?: string;
  workdir?: string;
  user?: string;
  stopGracePeriod?: string;
  stopSignal?: string;
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthRetries?: string;
  healthStartPeriod?: string;
  /** Commander's negatable option: false when --no-healthcheck is given. */
  healthcheck?: boolean;
  /** False when --no-resolve-image is given. */
  resolveImage?: boolean;
  withRegistryAuth?: boolean;
  /** --endpoint-mode: vip or dnsrr. */
  endpointMode?: string;
  /** --lb-strategy: round-robin, random or load-aware. */
  lbStrategy?: string;
  limitPids?: string;
  hostname?: string;
  init?: boolean;
  readOnly?: boolean;
  updateParallelism?: string;
  updateDelay?: string;
  updateFailureAction?: string;
  updateMonitor?: string;
  updateMaxFailureRatio?: string;
  updateOrder?: string;
  rollbackParallelism?: string;
  rollbackDelay?: string;
  rollbackFailureAction?: string;
  rollbackMonitor?: string;
  rollbackMaxFailureRatio?: string;
  rollbackOrder?: string;
}

export interface CreateFlags extends SpecFlags {
  name?: string;
  replicas?: string;
  mode?: string;
  constraint: string[];
  placementPref: string[];
  env: string[];
  label: string[];
  containerLabel: string[];
  mount: string[];
  capAdd: string[];
  capDrop: string[];
  network: string[];
  /** --publish/-p, Docker's short or long syntax (repeatable). */
  publish: string[];
  /** --secret / --config: NAME, or source=NAME,target=T[,uid=U][,gid=G][,mode=M] (repeatable). */
  secret: string[];
  config: string[];
  /** --ulimit NAME=SOFT[:HARD] (repeatable). */
  ulimit: string[];
}

const PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;

function portNumber(value: string, what: string, flag: string, spec: string, min = 1): number {
  const n = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= 65535)) throw new CliError(`invalid ${flag} ${JSON.stringify(spec)}: ${what} ${JSON.stringify(value)} is not a port (${min}-65535)`);
  return n;
}

function protocolOf(value: string, flag: string, spec: string): PortConfigDocument['Protocol'] & string {
  const p = PROTOCOLS.find((x) => x === value.toLowerCase());
  if (p === undefined) throw new CliError(`invalid ${flag} ${JSON.stringify(spec)}: protocol is tcp, udp or sctp`);
  return p;
}

/** A --publish value as its fields, each undefined when not given (what --publish-rm matches on). */
interface PortFields {
  published?: number;
  target?: number;
  protocol?: 'tcp' | 'udp' | 'sctp';
  mode?: 'ingress' | 'host';
}

/**
 * Docker's two syntaxes: short `[PUBLISHED:]TARGET[/PROTOCOL]` (`8080:80`, `53:53/udp`, `80`), long
 * `published=8080,target=80,protocol=udp,mode=host`. A host IP and port ranges, which Docker's short form also
 * takes, are refused by name.
 */
function portFields(value: string, flag: string): PortFields {
  if (value.includes('=')) {
    const f: PortFields = {};
    for (const part of value.split(',')) {
      const eq = part.indexOf('=');
      const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
      const v = eq < 0 ? '' : part.slice(eq + 1).trim();
      if (v === '') throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: ${key === '' ? 'empty field' : `${key} needs a value`}`);
      if (key === 'published') f.published = portNumber(v, 'published', flag, value, 0);
      else if (key === 'target') f.target = portNumber(v, 'target', flag, value);
      else if (key === 'protocol') f.protocol = protocolOf(v, flag, value);
      else if (key === 'mode') {
        if (v !== 'ingress' && v !== 'host') throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: mode is ingress or host`);
        f.mode = v;
      } else throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: unknown field ${JSON.stringify(key)} (use published, target, protocol, mode)`);
    }
    return f;
  }
  if (value.includes('-')) throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: port ranges are not supported; give each port its own ${flag}`);
  const slash = value.indexOf('/');
  const ports = slash < 0 ? value : value.slice(0, slash);
  const parts = ports.split(':');
  if (parts.length > 2) throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: a host IP cannot be given (a published port is on every node, or on its task's node in mode=host)`);
  const f: PortFields = {};
  if (slash >= 0) f.protocol = protocolOf(value.slice(slash + 1), flag, value);
  const [first = '', second] = parts;
  if (second === undefined) f.target = portNumber(first, 'target', flag, value);
  else {
    f.published = portNumber(first, 'published', flag, value);
    f.target = portNumber(second, 'target', flag, value);
  }
  return f;
}

/** --publish / --publish-add: one published port (target required; protocol tcp and mode ingress by default, as Docker's). */
export function parsePublish(value: string, flag = '--publish'): PortConfigDocument {
  const f = portFields(value, flag);
  if (f.target === undefined) throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: target is required`);
  return { Protocol: f.protocol ?? 'tcp', TargetPort: f.target, ...(f.published !== undefined && f.published !== 0 ? { PublishedPort: f.published } : {}), PublishMode: f.mode ?? 'ingress' };
}

/**
 * --publish-rm: Docker removes by target port (`80`, `80/udp`); ours also takes what identifies one port more
 * closely (`8080:80`, `published=8080`, `target=80,mode=host`), and removes every port whose given fields match.
 */
function publishRemoval(value: string): (p: PortConfigDocument) => boolean {
  const f = portFields(value, '--publish-rm');
  if (f.target === undefined && f.published === undefined) throw new CliError(`invalid --publish-rm ${JSON.stringify(value)}: give the target port, or published=PORT`);
  const protocol = f.protocol ?? 'tcp';
  return (p) =>
    (p.Protocol ?? 'tcp') === protocol &&
    (f.target === undefined || p.TargetPort === f.target) &&
    (f.published === undefined || (p.PublishedPort ?? 0) === f.published) &&
    (f.mode === undefined || (p.PublishMode ?? 'ingress') === f.mode);
}

/** The same port twice: one published number and protocol, or the very same config (two picked ports for one target). */
function samePort(a: PortConfigDocument, b: PortConfigDocument): boolean {
  const protocol = (a.Protocol ?? 'tcp') === (b.Protocol ?? 'tcp');
  const published = a.PublishedPort ?? 0;
  if (published !== 0) return protocol && published === (b.PublishedPort ?? 0);
  return protocol && (b.PublishedPort ?? 0) === 0 && a.TargetPort === b.TargetPort && (a.PublishMode ?? 'ingress') === (b.PublishMode ?? 'ingress');
}

/**
 * Docker's --network: a network's name or id, or the long form `name=web,alias=w1[,alias=w2]` (name|target).
 * driver-opt is refused by name: the overlay takes none per attachment.
 */
export function parseNetwork(value: string, flag = '--network'): NetworkAttachmentDocument {
  if (!value.includes('=')) {
    if (value === '' || value.includes(',')) throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: a network name or id, or name=NAME,alias=ALIAS`);
    return { Target: value };
  }
  let target = '';
  const aliases: string[] = [];
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const v = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (v === '') throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: ${key === '' ? 'empty field' : `${key} needs a value`}`);
    if (key === 'name' || key === 'target') target = v;
    else if (key === 'alias') {
      if (!aliases.includes(v)) aliases.push(v);
    } else throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: unknown field ${JSON.stringify(key)} (use name and alias)`);
  }
  if (target === '') throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: name is required`);
  return aliases.length > 0 ? { Target: target, Aliases: aliases } : { Target: target };
}

/**
 * Docker's --mount CSV: type=bind|volume|tmpfs, source|src, target|dst|destination, readonly|ro[=true|false],
 * tmpfs-size. Options Docker has that we do not (volume-driver, bind-propagation, ...) are refused by name.
 */
export function parseMount(value: string, flag = '--mount'): MountDocument {
  const fields = new Map<string, string>();
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (key === '') throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: empty field`);
    fields.set(key, eq < 0 ? '' : part.slice(eq + 1).trim());
  }
  const m: MountDocument = { Type: 'volume', Target: '' };
  for (const [key, v] of fields) {
    switch (key) {
      case 'type':
        if (v !== 'bind' && v !== 'volume' && v !== 'tmpfs') throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: type is bind, volume or tmpfs`);
        m.Type = v;
        break;
      case 'source':
      case 'src':
        m.Source = v;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.Target = v;
        break;
      case 'readonly':
      case 'ro':
        if (!['', 'true', 'false', '1', '0'].includes(v)) throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: ${key} is true or false`);
        m.ReadOnly = v === '' || v === 'true' || v === '1';
        break;
      case 'tmpfs-size':
        m.TmpfsOptions = { SizeBytes: parseBytes(v, `${flag} tmpfs-size`) };
        break;
      default:
        throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: unknown field ${JSON.stringify(key)} (use type, source, target, readonly, tmpfs-size)`);
    }
  }
  if (m.Target === '') throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: target is required`);
  if (!m.Target.startsWith('/')) throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: target must be an absolute path`);
  if (m.TmpfsOptions !== undefined && m.Type !== 'tmpfs') throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: tmpfs-size is only for type=tmpfs`);
  return m;
}

/**
 * Docker's --secret and --config: NAME alone, or CSV fields source|src, target, uid, gid, mode. The mode is read as
 * Docker reads it (a leading 0 is octal: 0400; 0x is hex; else decimal). The daemon resolves the name to an id.
 */
export function parseFileReference(kind: 'secret', value: string, flag?: string): SecretReferenceDocument;
export function parseFileReference(kind: 'config', value: string, flag?: string): ConfigReferenceDocument;
export function parseFileReference(kind: 'secret' | 'config', value: string, flag = `--${kind}`): SecretReferenceDocument | ConfigReferenceDocument {
  const bad = (why: string): CliError => new CliError(`invalid ${flag} ${JSON.stringify(value)}: ${why}`);
  let source = '';
  const file: FileTargetDocument = {};
  if (!value.includes('=')) source = value.trim();
  else {
    for (const part of value.split(',')) {
      const eq = part.indexOf('=');
      if (eq < 0) throw bad(`field ${JSON.stringify(part)} must be a key=value pair`);
      const key = part.slice(0, eq).trim().toLowerCase();
      const v = part.slice(eq + 1).trim();
      switch (key) {
        case 'source':
        case 'src':
          source = v;
          break;
        case 'target':
          file.Name = v;
          break;
        case 'uid':
        case 'gid':
          if (!/^[0-9]{1,10}$/.test(v)) throw bad(`${key} must be a numeric id`);
          if (key === 'uid') file.UID = v;
          else file.GID = v;
          break;
        case 'mode': {
          const mode = /^0[xX][0-9a-fA-F]+$/.test(v) ? parseInt(v.slice(2), 16) : /^0[oO]?[0-7]+$/.test(v) ? parseInt(v.replace(/^0[oO]?/, '') || '0', 8) : /^[0-9]+$/.test(v) ? Number(v) : NaN;
          if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw bad('mode must be permission bits, e.g. 0400');
          file.Mode = mode;
          break;
        }
        default:
          throw bad(`unknown field ${JSON.stringify(key)} (use source, target, uid, gid, mode)`);
      }
    }
  }
  if (source === '') throw bad(`the ${kind} name (source) is required`);
  if (file.Name === '') throw bad('target is empty');
  const hasFile = Object.keys(file).length > 0;
  return kind === 'secret' ? { SecretName: source, ...(hasFile ? { File: file } : {}) } : { ConfigName: source, ...(hasFile ? { File: file } : {}) };
}

/**
 * Docker's --ulimit: NAME=SOFT[:HARD], e.g. `nofile=1024:2048`; `nofile=1024` sets soft and hard alike; -1 is
 * unlimited. The names and the soft <= hard rule are the API's (checked here too, to name the flag).
 */
export function parseUlimit(value: string, flag = '--ulimit'): UlimitDocument {
  const m = /^([^=\s]+)=(-?\d+)(?::(-?\d+))?$/.exec(value.trim());
  if (m === null || m[1] === undefined || m[2] === undefined) throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: use NAME=SOFT[:HARD], e.g. nofile=1024:2048`);
  const soft = Number(m[2]);
  const hard = m[3] === undefined ? soft : Number(m[3]);
  const checked = checkUlimit(m[1], soft, hard);
  if (!checked.ok) throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: ${checked.message}`);
  return { Name: checked.ulimit.name, Soft: checked.ulimit.soft, Hard: checked.ulimit.hard };
}

/** Ulimits by name (a later one of the same name replaces an earlier one, as Docker's), sorted by name as Docker's. */
function ulimitsByName(ulimits: readonly UlimitDocument[]): UlimitDocument[] {
  const byName = new Map<string, UlimitDocument>();
  for (const u of ulimits) byName.set(u.Name, u);
  return [...byName.values()].sort((a, b) => a.Name.localeCompare(b.Name));
}

function capabilityNames(items: readonly string[], flag: string): string[] {
  const out: string[] = [];
  for (const item of items) {
    for (const name of item.split(',')) {
      const n = name.trim().toUpperCase();
      if (!/^[A-Z_]+$/.test(n)) throw new CliError(`invalid ${flag} ${JSON.stringify(item)}: a capability name like NET_ADMIN or CAP_NET_ADMIN, or ALL`);
      if (!out.includes(n)) out.push(n);
    }
  }
  return out;
}

function wholeNumber(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new CliError(`invalid ${flag} ${JSON.stringify(value)}: a whole number`);
  return Number(value);
}

function checkEnv(items: readonly string[], flag: string): void {
  for (const e of items) if (!e.includes('=') || e.startsWith('=')) throw new CliError(`invalid ${flag} ${JSON.stringify(e)}: use KEY=value`);
}

function preferencesOf(items: readonly string[], flag: string): Array<{ Spread: { SpreadDescriptor: string } }> {
  return items.map((p) => {
    const m = /^spread=(.+)$/.exec(p);
    if (m === null || m[1] === undefined) throw new CliError(`invalid ${flag} ${JSON.stringify(p)}: use spread=node.labels.KEY`);
    return { Spread: { SpreadDescriptor: m[1] } };
  });
}

/** --update-* or --rollback-* flags over a config (fields not given stay as they are). */
function updateConfigFlags(prefix: 'update' | 'rollback', f: SpecFlags, base: UpdateConfigDocument | undefined): UpdateConfigDocument | undefined {
  const v = {
    parallelism: prefix === 'update' ? f.updateParallelism : f.rollbackParallelism,
    delay: prefix === 'update' ? f.updateDelay : f.rollbackDelay,
    failureAction: prefix === 'update' ? f.updateFailureAction : f.rollbackFailureAction,
    monitor: prefix === 'update' ? f.updateMonitor : f.rollbackMonitor,
    maxFailureRatio: prefix === 'update' ? f.updateMaxFailureRatio : f.rollbackMaxFailureRatio,
    order: prefix === 'update' ? f.updateOrder : f.rollbackOrder,
  };
  if (Object.values(v).every((x) => x === undefined)) return base;
  const c: UpdateConfigDocument = { ...base };
  if (v.parallelism !== undefined) c.Parallelism = wholeNumber(v.parallelism, `--${prefix}-parallelism`);
  if (v.delay !== undefined) c.Delay = parseDuration(v.delay, `--${prefix}-delay`);
  if (v.monitor !== undefined) c.Monitor = parseDuration(v.monitor, `--${prefix}-monitor`);
  if (v.failureAction !== undefined) {
    const allowed = prefix === 'update' ? ['pause', 'continue', 'rollback'] : ['pause', 'continue'];
    if (!allowed.includes(v.failureAction)) throw new CliError(`invalid --${prefix}-failure-action ${JSON.stringify(v.failureAction)}: use ${allowed.join(', ')}`);
    c.FailureAction = v.failureAction as UpdateConfigDocument['FailureAction'];
  }
  if (v.maxFailureRatio !== undefined) {
    const r = Number(v.maxFailureRatio);
    if (!/^\d*\.?\d+$/.test(v.maxFailureRatio) || r > 1) throw new CliError(`invalid --${prefix}-max-failure-ratio ${JSON.stringify(v.maxFailureRatio)}: a number from 0 to 1`);
    c.MaxFailureRatio = r;
  }
  if (v.order !== undefined) {
    if (v.order !== 'stop-first' && v.order !== 'start-first') throw new CliError(`invalid --${prefix}-order ${JSON.stringify(v.order)}: use stop-first or start-first`);
    c.Order = v.order;
  }
  return c;
}

/** --health-* flags over a container spec; --no-healthcheck turns the check off (Docker's ["NONE"]). */
function applyHealthFlags(c: ServiceSpecDocument['TaskTemplate']['ContainerSpec'], f: SpecFlags): void {
  const given = [f.healthCmd, f.healthInterval, f.healthTimeout, f.healthRetries, f.healthStartPeriod].some((v) => v !== undefined);
  if (f.healthcheck === false) {
    if (given) throw new CliError('--no-healthcheck conflicts with the --health-* options');
    c.Healthcheck = { Test: ['NONE'] };
    return;
  }
  if (!given) return;
  const h = { ...c.Healthcheck };
  if (f.healthCmd !== undefined) h.Test = ['CMD-SHELL', f.healthCmd];
  if (f.healthInterval !== undefined) h.Interval = parseDuration(f.healthInterval, '--health-interval');
  if (f.healthTimeout !== undefined) h.Timeout = parseDuration(f.healthTimeout, '--health-timeout');
  if (f.healthStartPeriod !== undefined) h.StartPeriod = parseDuration(f.healthStartPeriod, '--health-start-period');
  if (f.healthRetries !== undefined) h.Retries = wholeNumber(f.healthRetries, '--health-retries');
  c.Healthcheck = h;
}

/** The single-value flags applied over a spec (create: an empty one; update: the service's current one). */
export function applySpecFlags(spec: ServiceSpecDocument, f: SpecFlags): void {
  const t = spec.TaskTemplate;
  const c = t.ContainerSpec;
  if (f.workdir !== undefined) c.Dir = f.workdir;
  if (f.user !== undefined) c.User = f.user;
  if (f.stopSignal !== undefined) c.StopSignal = f.stopSignal;
  if (f.stopGracePeriod !== undefined) c.StopGracePeriod = parseDuration(f.stopGracePeriod, '--stop-grace-period');
  applyHealthFlags(c, f);
  const limits = { ...t.Resources?.Limits };
  const reservations = { ...t.Resources?.Reservations };
  if (f.limitCpu !== undefined) limits.NanoCPUs = parseCpus(f.limitCpu, '--limit-cpu');
  if (f.limitMemory !== undefined) limits.MemoryBytes = parseBytes(f.limitMemory, '--limit-memory');
  if (f.reserveCpu !== undefined) reservations.NanoCPUs = parseCpus(f.reserveCpu, '--reserve-cpu');
  if (f.reserveMemory !== undefined) reservations.MemoryBytes = parseBytes(f.reserveMemory, '--reserve-memory');
  if (f.limitPids !== undefined) limits.Pids = wholeNumber(f.limitPids, '--limit-pids');
  if (f.hostname !== undefined) c.Hostname = f.hostname;
  if (f.init !== undefined) c.Init = f.init;
  if (f.readOnly !== undefined) c.ReadOnly = f.readOnly;
  if (f.endpointMode !== undefined) {
    if (f.endpointMode !== 'vip' && f.endpointMode !== 'dnsrr') throw new CliError(`invalid --endpoint-mode ${JSON.stringify(f.endpointMode)}: use vip or dnsrr`);
    spec.EndpointSpec = { ...spec.EndpointSpec, Mode: f.endpointMode };
  }
  if (f.lbStrategy !== undefined) {
    const strategy = LB_STRATEGIES.find((x) => x === f.lbStrategy);
    if (strategy === undefined) throw new CliError(`invalid --lb-strategy ${JSON.stringify(f.lbStrategy)}: use ${LB_STRATEGIES.join(', ')}`);
    spec.EndpointSpec = { ...spec.EndpointSpec, LbStrategy: strategy };
  }
  if (Object.keys(limits).length > 0 || Object.keys(reservations).length > 0) t.Resources = { Limits: limits, Reservations: reservations };
  const restart: NonNullable<ServiceSpecDocument['TaskTemplate']['RestartPolicy']> = { ...t.RestartPolicy };
  if (f.restartCondition !== undefined) {
    if (f.restartCondition !== 'none' && f.restartCondition !== 'on-failure' && f.restartCondition !== 'any') {
      throw new CliError(`invalid --restart-condition ${JSON.stringify(f.restartCondition)}: use none, on-failure or any`);
    }
    restart.Condition = f.restartCondition;
  }
  if (f.restartDelay !== undefined) restart.Delay = parseDuration(f.restartDelay, '--restart-delay');
  if (f.restartWindow !== undefined) restart.Window = parseDuration(f.restartWindow, '--restart-window');
  if (f.restartMaxAttempts !== undefined) restart.MaxAttempts = wholeNumber(f.restartMaxAttempts, '--restart-max-attempts');
  if (Object.keys(restart).length > 0) t.RestartPolicy = restart;
  const update = updateConfigFlags('update', f, spec.UpdateConfig);
  if (update !== undefined) spec.UpdateConfig = update;
  const rollback = updateConfigFlags('rollback', f, spec.RollbackConfig);
  if (rollback !== undefined) spec.RollbackConfig = rollback;
}

/** `service create` flags and IMAGE [COMMAND [ARG...]] as Docker's ServiceSpec (COMMAND and ARGs go to Args, as Docker). */
export function specFromFlags(image: string, args: readonly string[], f: CreateFlags): ServiceSpecDocument {
  const mode = f.mode ?? 'replicated';
  if (mode !== 'replicated' && mode !== 'global') throw new CliError(`invalid --mode ${JSON.stringify(mode)}: use replicated or global`);
  if (mode === 'global' && f.replicas !== undefined) throw new CliError('--replicas can only be used with replicated mode');
  const replicas = f.replicas === undefined ? 1 : wholeNumber(f.replicas, '--replicas');
  const spec: ServiceSpecDocument = {
    TaskTemplate: { ContainerSpec: { Image: image } },
    Mode: mode === 'global' ? { Global: {} } : { Replicated: { Replicas: replicas } },
  };
  const c = spec.TaskTemplate.ContainerSpec;
  if (f.name !== undefined) spec.Name = f.name;
  if (f.label.length > 0) spec.Labels = parseKeyValues(f.label, '--label');
  if (args.length > 0) c.Args = [...args];
  checkEnv(f.env, '--env');
  if (f.env.length > 0) c.Env = [...f.env];
  if (f.containerLabel.length > 0) c.Labels = parseKeyValues(f.containerLabel, '--container-label');
  if (f.mount.length > 0) c.Mounts = f.mount.map((m) => parseMount(m));
  if (f.capAdd.length > 0) c.CapabilityAdd = capabilityNames(f.capAdd, '--cap-add');
  if (f.capDrop.length > 0) c.CapabilityDrop = capabilityNames(f.capDrop, '--cap-drop');
  if (f.network.length > 0) spec.TaskTemplate.Networks = f.network.map((n) => parseNetwork(n));
  if (f.publish.length > 0) spec.EndpointSpec = { Ports: f.publish.map((p) => parsePublish(p)) };
  if (f.secret.length > 0) c.Secrets = f.secret.map((x) => parseFileReference('secret', x));
  if (f.config.length > 0) c.Configs = f.config.map((x) => parseFileReference('config', x));
  if (f.ulimit.length > 0) c.Ulimits = ulimitsByName(f.ulimit.map((u) => parseUlimit(u)));
  applySpecFlags(spec, f);
  const preferences = preferencesOf(f.placementPref, '--placement-pref');
  if (f.constraint.length > 0 || preferences.length > 0) {
    spec.TaskTemplate.Placement = { ...(f.constraint.length > 0 ? { Constraints: [...f.constraint] } : {}), ...(preferences.length > 0 ? { Preferences: preferences } : {}) };
  }
  return spec;
}

export interface UpdateFlags extends SpecFlags {
  image?: string;
  replicas?: string;
  args?: string;
  envAdd: string[];
  envRm: string[];
  labelAdd: string[];
  labelRm: string[];
  containerLabelAdd: string[];
  containerLabelRm: string[];
  constraintAdd: string[];
  constraintRm: string[];
  placementPrefAdd: string[];
  placementPrefRm: string[];
  mountAdd: string[];
  mountRm: string[];
  capAdd: string[];
  capDrop: string[];
  networkAdd: string[];
  /** Network names or ids; the service stores ids, so the command adds the ids of the names before calling updatedSpec. */
  networkRm: string[];
  publishAdd: string[];
  publishRm: string[];
  /** Docker's order: --secret-rm (by name or id) first, then --secret-add; the same for configs. */
  secretAdd: string[];
  secretRm: string[];
  configAdd: string[];
  configRm: string[];
  /** Docker's order: --ulimit-rm (by name) first, then --ulimit-add (replacing a ulimit of the same name). */
  ulimitAdd: string[];
  ulimitRm: string[];
  force?: boolean;
}

/** `service update` flags over the service's current spec: only what a flag names changes, as in Docker. */
export function updatedSpec(current: ServiceSpecDocument, f: UpdateFlags): ServiceSpecDocument {
  const spec = structuredClone(current);
  const t = spec.TaskTemplate;
  const c = t.ContainerSpec;
  if (f.image !== undefined) c.Image = f.image;
  if (f.replicas !== undefined) {
    if (spec.Mode?.Replicated === undefined) throw new CliError('--replicas can only be used with replicated mode');
    spec.Mode = { Replicated: { Replicas: wholeNumber(f.replicas, '--replicas') } };
  }
  if (f.args !== undefined) c.Args = f.args.trim() === '' ? [] : f.args.trim().split(/\s+/);
  checkEnv(f.envAdd, '--env-add');
  if (f.envAdd.length > 0 || f.envRm.length > 0) {
    const keyOf = (e: string): string => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e);
    const drop = new Set([...f.envRm, ...f.envAdd.map(keyOf)]);
    c.Env = [...(c.Env ?? []).filter((e) => !drop.has(keyOf(e))), ...f.envAdd];
  }
  if (f.labelAdd.length > 0 || f.labelRm.length > 0) {
    spec.Labels = { ...spec.Labels };
    for (const k of f.labelRm) delete spec.Labels[k];
    Object.assign(spec.Labels, parseKeyValues(f.labelAdd, '--label-add'));
  }
  if (f.containerLabelAdd.length > 0 || f.containerLabelRm.length > 0) {
    c.Labels = { ...c.Labels };
    for (const k of f.containerLabelRm) delete c.Labels[k];
    Object.assign(c.Labels, parseKeyValues(f.containerLabelAdd, '--container-label-add'));
  }
  if (f.constraintAdd.length > 0 || f.constraintRm.length > 0 || f.placementPrefAdd.length > 0 || f.placementPrefRm.length > 0) {
    const placement = { ...t.Placement };
    const rmPrefs = new Set(preferencesOf(f.placementPrefRm, '--placement-pref-rm').map((p) => p.Spread.SpreadDescriptor));
    placement.Constraints = [...(placement.Constraints ?? []).filter((x) => !f.constraintRm.includes(x)), ...f.constraintAdd.filter((x) => !(placement.Constraints ?? []).includes(x))];
    placement.Preferences = [...(placement.Preferences ?? []).filter((p) => !rmPrefs.has(p.Spread.SpreadDescriptor)), ...preferencesOf(f.placementPrefAdd, '--placement-pref-add')];
    t.Placement = placement;
  }
  if (f.mountAdd.length > 0 || f.mountRm.length > 0) {
    // Docker: --mount-rm names targets; an added mount replaces one with the same target.
    const added = f.mountAdd.map((m) => parseMount(m, '--mount-add'));
    const drop = new Set([...f.mountRm, ...added.map((m) => m.Target)]);
    c.Mounts = [...(c.Mounts ?? []).filter((m) => !drop.has(m.Target)), ...added];
  }
  if (f.capAdd.length > 0 || f.capDrop.length > 0) {
    // Docker's update: a capability added is taken off the drop list and the other way round.
    const add = capabilityNames(f.capAdd, '--cap-add');
    const drop = capabilityNames(f.capDrop, '--cap-drop');
    c.CapabilityAdd = [...(c.CapabilityAdd ?? []).filter((x) => !drop.includes(x)), ...add.filter((x) => !(c.CapabilityAdd ?? []).includes(x))];
    c.CapabilityDrop = [...(c.CapabilityDrop ?? []).filter((x) => !add.includes(x)), ...drop.filter((x) => !(c.CapabilityDrop ?? []).includes(x))];
  }
  if (f.networkAdd.length > 0 || f.networkRm.length > 0) {
    // As Docker's: an added network replaces an attachment to the same target (the daemon merges the same network
    // named two ways); --network-rm takes attachments off by target.
    const added = f.networkAdd.map((n) => parseNetwork(n, '--network-add'));
    const drop = new Set([...f.networkRm, ...added.map((n) => n.Target)]);
    t.Networks = [...(t.Networks ?? []).filter((n) => !drop.has(n.Target)), ...added];
  }
  if (f.publishAdd.length > 0 || f.publishRm.length > 0) {
    // Docker's order: removals first, then additions; an added port replaces one published on the same number.
    const removals = f.publishRm.map(publishRemoval);
    const added: PortConfigDocument[] = [];
    for (const p of f.publishAdd.map((x) => parsePublish(x, '--publish-add'))) if (!added.some((a) => samePort(a, p))) added.push(p);
    const kept = (spec.EndpointSpec?.Ports ?? []).filter((p) => !removals.some((rm) => rm(p)) && !added.some((a) => samePort(a, p)));
    spec.EndpointSpec = { ...spec.EndpointSpec, Ports: [...kept, ...added] };
  }
  if (f.secretAdd.length > 0 || f.secretRm.length > 0) {
    const drop = new Set(f.secretRm);
    c.Secrets = [...(c.Secrets ?? []).filter((r) => !drop.has(r.SecretName) && !drop.has(r.SecretID ?? '')), ...f.secretAdd.map((x) => parseFileReference('secret', x, '--secret-add'))];
  }
  if (f.configAdd.length > 0 || f.configRm.length > 0) {
    const drop = new Set(f.configRm);
    c.Configs = [...(c.Configs ?? []).filter((r) => !drop.has(r.ConfigName) && !drop.has(r.ConfigID ?? '')), ...f.configAdd.map((x) => parseFileReference('config', x, '--config-add'))];
  }
  if (f.ulimitAdd.length > 0 || f.ulimitRm.length > 0) {
    // Docker takes any name here; a typo would silently remove nothing.
    const unknown = f.ulimitRm.find((name) => !isUlimitName(name));
    if (unknown !== undefined) throw new CliError(`invalid --ulimit-rm ${JSON.stringify(unknown)}: not a ulimit name (${ULIMIT_NAMES.join(', ')})`);
    const kept = (c.Ulimits ?? []).filter((u) => !f.ulimitRm.includes(u.Name));
    const ulimits = ulimitsByName([...kept, ...f.ulimitAdd.map((u) => parseUlimit(u, '--ulimit-add'))]);
    if (ulimits.length > 0) c.Ulimits = ulimits;
    else delete c.Ulimits;
  }
  applySpecFlags(spec, f);
  // --force: a new ForceUpdate value changes the template, so every task is replaced even if nothing else changed.
  if (f.force === true) t.ForceUpdate = (t.ForceUpdate ?? 0) + 1;
  return spec;
}

// ---------------------------------------------------------------- rendering

export interface ServiceRow {
  ID: string;
  Name: string;
  Mode: string;
  Replicas: string;
  Image: string;
  Ports: string;
}

export function serviceRow(s: ServiceDocument): ServiceRow {
  const global = s.Spec.Mode.Global !== undefined;
  const status = s.ServiceStatus;
  return {
    ID: s.ID.slice(0, 12),
    Name: s.Spec.Name,
    Mode: global ? 'global' : 'replicated',
    Replicas: status === undefined ? '' : `${status.RunningTasks}/${status.DesiredTasks}`,
    Image: shortImage(s.Spec.TaskTemplate.ContainerSpec.Image),
    Ports: publishedPorts(s),
  };
}

/**
 * Docker's PORTS column of `service ls`: the ingress ports as allocated, `*:8080->80/tcp` (every node answers them);
 * host-mode ports belong to tasks, and Docker shows them in `service ps` only.
 */
export function publishedPorts(s: ServiceDocument): string {
  return (s.Endpoint.Ports ?? [])
    .filter((p) => p.PublishMode === 'ingress')
    .map((p) => `*:${p.PublishedPort}->${p.TargetPort}/${p.Protocol}`)
    .join(', ');
}

/** As Docker's tables show a pinned image: without its digest (`busybox:latest@sha256:…` -> `busybox:latest`). */
export function shortImage(image: string): string {
  const at = image.indexOf('@');
  return at < 0 ? image : image.slice(0, at);
}

export interface TaskRow {
  ID: string;
  Name: string;
  Image: string;
  Node: string;
  DesiredState: string;
  CurrentState: string;
  Error: string;
  Ports: string;
}

/** Docker's "Running 5 seconds ago". */
export function ago(timestamp: string, nowMs: number): string {
  const seconds = Math.max(0, Math.round((nowMs - Date.parse(timestamp)) / 1000));
  if (seconds < 1) return 'Less than a second ago';
  if (seconds < 60) return `${seconds} second${seconds === 1 ? '' : 's'} ago`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} minute${minutes === 1 ? '' : 's'} ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} hour${hours === 1 ? '' : 's'} ago`;
  return `${Math.round(hours / 24)} days ago`;
}

export function taskRows(tasks: readonly TaskDocument[], hostnames: ReadonlyMap<string, string>, nowMs: number): TaskRow[] {
  let previousName = '';
  return tasks.map((t) => {
    // Docker indents older tasks of the same slot under the newest: "\_ web.1".
    const name = t.Name === previousName ? ` \\_ ${t.Name}` : t.Name;
    previousName = t.Name;
    return {
      ID: t.ID.slice(0, 12),
      Name: name,
      Image: shortImage(t.Spec.ContainerSpec.Image),
      Node: t.NodeID === undefined ? '' : (hostnames.get(t.NodeID) ?? t.NodeID),
      DesiredState: capitalize(t.DesiredState),
      CurrentState: `${capitalize(t.Status.State)} ${ago(t.Status.Timestamp, nowMs)}`,
      Error: t.Status.Err === undefined ? '' : `"${t.Status.Err}"`,
      // Docker's: the host-mode ports the task holds, `*:8080->80/tcp`.
      Ports: (t.Status.PortStatus?.Ports ?? []).map((p) => `*:${p.PublishedPort}->${p.TargetPort}/${p.Protocol}`).join(', '),
    };
  });
}

/** Docker's `service ps --filter`: values of one key are alternatives, different keys must all hold. */
export function taskFilter(filters: readonly string[]): (t: TaskDocument, hostnames: ReadonlyMap<string, string>) => boolean {
  const byKey = new Map<string, string[]>();
  for (const f of filters) {
    const eq = f.indexOf('=');
    const key = eq < 0 ? f : f.slice(0, eq);
    const value = eq < 0 ? '' : f.slice(eq + 1);
    if (!['desired-state', 'node', 'name', 'id'].includes(key) || value === '') {
      throw new CliError(`invalid filter ${JSON.stringify(f)}: use desired-state=running|shutdown|accepted, node=NODE, name=NAME or id=ID`);
    }
    if (key === 'desired-state' && !['running', 'shutdown', 'accepted'].includes(value)) {
      throw new CliError(`invalid filter ${JSON.stringify(f)}: desired-state is running, shutdown or accepted`);
    }
    byKey.set(key, [...(byKey.get(key) ?? []), value]);
  }
  return (t, hostnames) =>
    [...byKey].every(([key, values]) =>
      values.some((v) => {
        switch (key) {
          case 'desired-state':
            // Any desired state past running (shutdown, or an end state) is "shutdown" to the filter.
            return v === 'shutdown' ? ['complete', 'shutdown', 'failed', 'rejected', 'orphaned'].includes(t.DesiredState) : t.DesiredState === v;
          case 'node':
            return t.NodeID === v || (t.NodeID !== undefined && hostnames.get(t.NodeID) === v);
          case 'name':
            return t.Name === v || t.Name.startsWith(`${v}.`);
          default:
            return t.ID.startsWith(v);
        }
      }),
    );
}

// ---------------------------------------------------------------- convergence

/**
 * Waits until the service runs what it wants, printing a line whenever the count changes (Docker draws bars on a
 * terminal; lines work everywhere). A task that fails is shown with its error, and the wait goes on: the
 * orchestrator replaces it. Throws CliError at the deadline.
 */
async function waitConverged(client: ApiClient, ref: string, timeoutMs = CONVERGE_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  const seenErrors = new Set<string>();
  const replicaStates = new Map<string, string>();
  for (;;) {
    const service = await client.inspectService(ref, true);
    const status = service.ServiceStatus;
    const tasks = await client.listTasks({ service: service.ID });
    // A line per replica whenever its state changes, as Docker's per-replica progress ("2/6: running"); a global
    // service's replicas are its nodes.
    const live = tasks.filter((t) => t.DesiredState === 'running').sort((a, b) => (a.Slot ?? 0) - (b.Slot ?? 0) || a.Name.localeCompare(b.Name));
    live.forEach((t, i) => {
      const key = t.Slot !== undefined ? `${t.Slot}` : `${i + 1}`;
      const state = t.Status.State;
      if (replicaStates.get(key) !== state) {
        replicaStates.set(key, state);
        writeOut(`${key}/${Math.max(status?.DesiredTasks ?? 0, live.length)}: ${state}`);
      }
    });
    for (const t of tasks) {
      if (t.Status.Err !== undefined && !seenErrors.has(t.ID)) {
        seenErrors.add(t.ID);
        writeOut(`${t.Name}: ${t.Status.State}: ${t.Status.Err}`);
      }
    }
    if (status !== undefined) {
      const line = `overall progress: ${status.RunningTasks} out of ${status.DesiredTasks} tasks`;
      if (line !== last) writeOut(line);
      last = line;
      if (status.RunningTasks === status.DesiredTasks && live.length === status.DesiredTasks) {
        writeOut('verify: Service converged');
        return;
      }
    }
    if (Date.now() > deadline) {
      throw new CliError(`service ${ref} did not converge within ${Math.round(timeoutMs / 1000)} s; see \`swarm service ps ${ref}\` (it keeps trying)`);
    }
    await new Promise((resolve) => setTimeout(resolve, CONVERGE_POLL_MS));
  }
}

// ---------------------------------------------------------------- commands


/** The options of SpecFlags, shared by create and update. */
function specOptions(command: Command): Command {
  command
    .option('--reserve-cpu <cpus>', 'CPUs reserved for each task')
    .option('--reserve-memory <bytes>', 'memory reserved for each task (e.g. 64M)')
    .option('--limit-cpu <cpus>', 'CPU limit of each task')
    .option('--limit-memory <bytes>', 'memory limit of each task')
    .option('--restart-condition <c>', 'none, on-failure or any (default any)')
    .option('--restart-delay <duration>', 'delay between restart attempts (default 5s)')
    .option('--restart-max-attempts <n>', 'maximum restarts before giving up (default unlimited)')
    .option('--restart-window <duration>', 'window used to evaluate the restart policy')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user>', 'user to run as')
    .option('--stop-grace-period <duration>', 'time to wait before killing a task (default 10s)')
    .option('--stop-signal <signal>', 'signal to stop a task')
    .option('--health-cmd <command>', 'command to run to check health (a shell command)')
    .option('--health-interval <duration>', 'time between health checks (default 30s)')
    .option('--health-timeout <duration>', 'maximum time one check may take (default 30s)')
    .option('--health-retries <n>', 'consecutive failures that make a task unhealthy (default 3)')
    .option('--health-start-period <duration>', 'time for the task to start before failed checks count')
    .option('--no-healthcheck', 'disable any health check')
    .option('--limit-pids <n>', 'most processes a task may hold (default unlimited)')
    .option('--hostname <name>', "the containers' hostname (default: the task id's start)")
    .option('--init', 'run an init (tini) as pid 1 that forwards signals and reaps processes')
    .option('--read-only', "mount the containers' root filesystem read-only")
    .option('--endpoint-mode <mode>', 'vip (default: a virtual IP) or dnsrr (DNS round robin over the tasks)')
    .option('--lb-strategy <strategy>', `how connections to the VIP and published ports are spread: ${LB_STRATEGIES.join(', ')} (default round-robin)`)
    .option('--cap-add <cap>', 'add a Linux capability (repeatable)', collect, [])
    .option('--cap-drop <cap>', 'drop a Linux capability, or ALL (repeatable)', collect, [])
    .option('--no-resolve-image', "do not pin the image to its registry digest (each node then resolves the tag itself)")
    .option('--with-registry-auth', "send this node's registry login (swarm login) with the service, so every node can pull its image");
  for (const [prefix, what] of [
    ['update', 'an update'],
    ['rollback', 'a rollback'],
  ] as const) {
    command
      .option(`--${prefix}-parallelism <n>`, `tasks replaced at a time in ${what} (0: all at once; default 1)`)
      .option(`--${prefix}-delay <duration>`, `delay between batches of ${what} (default 0s)`)
      .option(`--${prefix}-failure-action <action>`, `on failure of ${what}: pause, continue${prefix === 'update' ? ' or rollback' : ''} (default pause)`)
      .option(`--${prefix}-monitor <duration>`, `how long a new task is watched for failure in ${what} (default 5s)`)
      .option(`--${prefix}-max-failure-ratio <ratio>`, `failure rate tolerated in ${what} (default 0)`)
      .option(`--${prefix}-order <order>`, `stop-first (default) or start-first in ${what}`);
  }
  return command;
}

const ROLLOUT_TIMEOUT_MS = 600_000;

/**
 * After an update or rollback: waits for the rollout the manager runs (UpdateStatus), one progress line per change,
 * then for convergence. A paused update, or one the manager rolled back, ends with an error naming the reason.
 */
async function waitRolledOut(client: ApiClient, ref: string, startedAfter: string | undefined, rollback: boolean): Promise<void> {
  const deadline = Date.now() + ROLLOUT_TIMEOUT_MS;
  let last = '';
  for (;;) {
    const s = await client.inspectService(ref, true);
    const u = s.UpdateStatus;
    if (u === undefined || u.StartedAt === startedAfter) break; // the template did not change: nothing rolls out
    const template = JSON.stringify(s.Spec.TaskTemplate);
    const tasks = (await client.listTasks({ service: s.ID })).filter((t) => t.DesiredState === 'running');
    const done = tasks.filter((t) => t.Status.State === 'running' && JSON.stringify(t.Spec) === template).length;
    const line = `${rollback || u.State.startsWith('rollback') ? 'rollback' : 'update'}: ${u.Message}; ${done} out of ${s.ServiceStatus?.DesiredTasks ?? tasks.length} tasks`;
    if (line !== last) writeOut(line);
    last = line;
    if (u.State === 'completed' || (u.State === 'rollback_completed' && rollback)) break;
    if (u.State === 'paused' || u.State === 'rollback_paused') throw new CliError(`service ${s.Spec.Name}: ${u.Message}; see \`swarm service ps ${s.Spec.Name}\`, fix and update again`);
    if (u.State === 'rollback_completed') throw new CliError(`service ${s.Spec.Name} rolled back: ${u.Message}`);
    if (Date.now() > deadline) throw new CliError(`service ${s.Spec.Name}: the rollout did not finish within ${ROLLOUT_TIMEOUT_MS / 1000} s (it goes on; see \`swarm service inspect ${s.Spec.Name}\`)`);
    await new Promise((resolve) => setTimeout(resolve, CONVERGE_POLL_MS));
  }
  await waitConverged(client, ref);
}

export function registerServiceCommands(program: Command): void {
  const service = program.command('service').description('manage services').enablePositionalOptions();

  const create = service
    .command('create')
    .description('create a service')
    .argument('<image>', 'the image to run')
    .argument('[command...]', 'the command and its arguments')
    .option('--name <name>', 'service name')
    .option('--replicas <n>', 'number of tasks (replicated mode)')
    .option('--mode <mode>', 'replicated (default) or global')
    .option('--constraint <expr>', 'placement constraint, e.g. node.role==worker (repeatable)', collect, [])
    .option('--placement-pref <pref>', 'placement preference, e.g. spread=node.labels.zone (repeatable)', collect, [])
    .option('-e, --env <KEY=value>', 'environment variable (repeatable)', collect, [])
    .option('-l, --label <key=value>', 'service label (repeatable)', collect, [])
    .option('--container-label <key=value>', 'container label (repeatable)', collect, [])
    .option('--mount <mount>', 'type=bind|volume|tmpfs,source=...,target=...[,readonly][,tmpfs-size=64M] (repeatable)', collect, [])
    .option('--network <network>', 'attach to an overlay network: NAME, or name=NAME,alias=ALIAS (repeatable)', collect, [])
    .option('--secret <secret>', 'give the tasks a secret: NAME, or source=NAME,target=FILE[,uid=0][,gid=0][,mode=0444] (at /run/secrets/FILE; repeatable)', collect, [])
    .option('--config <config>', 'give the tasks a config: NAME, or source=NAME,target=PATH[,uid=0][,gid=0][,mode=0444] (default target /NAME; repeatable)', collect, [])
    .option('-p, --publish <port>', 'publish a port: [PUBLISHED:]TARGET[/PROTOCOL], or published=P,target=T[,protocol=udp][,mode=host] (repeatable; no PUBLISHED: one of 30000-32767 is picked)', collect, [])
    .option('--ulimit <ulimit>', 'a resource limit of the tasks: NAME=SOFT[:HARD], e.g. nofile=1024:2048 (-1: unlimited; repeatable)', collect, []);
  specOptions(create)
    .option('-d, --detach', 'exit at once instead of waiting for the service to converge')
    .passThroughOptions()
    .action(async (image: string, args: string[], opts: CreateFlags & { detach?: boolean }, command: Command) => {
      const client = clientFor(command);
      const { ID, Warnings } = await client.createService(specFromFlags(image, args, opts), { resolveImage: opts.resolveImage !== false, withRegistryAuth: opts.withRegistryAuth === true });
      for (const w of Warnings ?? []) process.stderr.write(`${w}\n`);
      writeOut(ID);
      if (opts.detach !== true) await waitConverged(client, ID);
    });

  service
    .command('ls')
    .alias('list')
    .description('list services')
    .option('--format <format>', 'table (default) or json (one object per line)')
    .option('-q, --quiet', 'print IDs only')
    .action(async (opts: { format?: string; quiet?: boolean }, command: Command) => {
      const format = parseFormat(opts.format);
      const rows = (await clientFor(command).listServices(true)).map(serviceRow);
      if (opts.quiet === true) writeOut(rows.map((r) => r.ID).join('\n'));
      else if (format === 'json') writeOut(jsonLines(rows));
      else writeOut(table(['ID', 'NAME', 'MODE', 'REPLICAS', 'IMAGE', 'PORTS'], rows.map((r) => [r.ID, r.Name, r.Mode, r.Replicas, r.Image, r.Ports])));
    });

  service
    .command('ps')
    .description('list the tasks of services')
    .argument('<service...>', 'service names or ids')
    .option('--format <format>', 'table (default) or json (one object per line)')
    .option('-q, --quiet', 'print task IDs only')
    .option('-f, --filter <key=value>', 'desired-state=running|shutdown|accepted, node=NODE, name=NAME, id=ID (repeatable)', collect, [])
    .action(async (refs: string[], opts: { format?: string; quiet?: boolean; filter: string[] }, command: Command) => {
      const format = parseFormat(opts.format);
      const keep = taskFilter(opts.filter);
      const client = clientFor(command);
      const hostnames = new Map((await client.listNodes()).map((n) => [n.ID, n.Description.Hostname]));
      const rows: TaskRow[] = [];
      for (const ref of refs) rows.push(...taskRows((await client.listTasks({ service: ref })).filter((t) => keep(t, hostnames)), hostnames, Date.now()));
      if (opts.quiet === true) writeOut(rows.map((r) => r.ID).join('\n'));
      else if (format === 'json') writeOut(jsonLines(rows));
      else {
        writeOut(
          table(
            ['ID', 'NAME', 'IMAGE', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR', 'PORTS'],
            rows.map((r) => [r.ID, r.Name, r.Image, r.Node, r.DesiredState, r.CurrentState, r.Error, r.Ports]),
          ),
        );
      }
    });

  service
    .command('inspect')
    .description('show services in detail (Docker\'s JSON shape)')
    .argument('<service...>', 'service names or ids')
    .action(async (refs: string[], _opts: unknown, command: Command) => {
      const client = clientFor(command);
      const found: ServiceDocument[] = [];
      const errors: string[] = [];
      for (const ref of refs) {
        try {
          found.push(await client.inspectService(ref));
        } catch (err) {
          if (!(err instanceof ApiError) || (err.code !== 'not_found' && err.code !== 'ambiguous')) throw err;
          errors.push(err.message);
        }
      }
      if (found.length > 0) writeOut(JSON.stringify(found, null, 4));
      if (errors.length > 0) throw new CliError(errors.join('\nswarm: '));
    });

  service
    .command('scale')
    .description('set the number of replicas: scale web=5 api=2')
    .argument('<service=replicas...>', 'one or more SERVICE=REPLICAS')
    .option('-d, --detach', 'exit at once instead of waiting for the services to converge')
    .action(async (pairs: string[], opts: { detach?: boolean }, command: Command) => {
      const client = clientFor(command);
      const targets = pairs.map((p) => {
        const m = /^([^=]+)=(\d+)$/.exec(p);
        if (m === null || m[1] === undefined || m[2] === undefined) throw new CliError(`invalid scale specifier ${JSON.stringify(p)}: use SERVICE=REPLICAS`);
        return { ref: m[1], replicas: Number(m[2]) };
      });
      const errors: string[] = [];
      const scaled: string[] = [];
      for (const { ref, replicas } of targets) {
        try {
          const s = await client.inspectService(ref);
          if (s.Spec.Mode.Replicated === undefined) throw new CliError(`${ref}: scale can only be used with replicated mode`);
          const spec: ServiceSpecDocument = { ...s.Spec, Mode: { Replicated: { Replicas: replicas } } };
          await client.updateService(s.ID, spec, s.Version.Index);
          writeOut(`${ref} scaled to ${replicas}`);
          scaled.push(s.ID);
        } catch (err) {
          if (!(err instanceof ApiError) && !(err instanceof CliError)) throw err;
          errors.push(err.message);
        }
      }
      if (opts.detach !== true) for (const id of scaled) await waitConverged(client, id);
      if (errors.length > 0) throw new CliError(errors.join('\nswarm: '));
    });

  const update = service
    .command('update')
    .description('update a service: any create flag, --image, --replicas, the -add/-rm list flags, --force')
    .argument('<service>', 'service name or id')
    .option('--image <image>', 'the image to run')
    .option('--replicas <n>', 'number of tasks')
    .option('--args <command>', 'the command and its arguments, as one string')
    .option('--env-add <KEY=value>', 'add or change an environment variable (repeatable)', collect, [])
    .option('--env-rm <KEY>', 'remove an environment variable (repeatable)', collect, [])
    .option('--label-add <key=value>', 'add or change a service label (repeatable)', collect, [])
    .option('--label-rm <key>', 'remove a service label (repeatable)', collect, [])
    .option('--container-label-add <key=value>', 'add or change a container label (repeatable)', collect, [])
    .option('--container-label-rm <key>', 'remove a container label (repeatable)', collect, [])
    .option('--constraint-add <expr>', 'add a placement constraint (repeatable)', collect, [])
    .option('--constraint-rm <expr>', 'remove a placement constraint (repeatable)', collect, [])
    .option('--placement-pref-add <pref>', 'add a placement preference (repeatable)', collect, [])
    .option('--placement-pref-rm <pref>', 'remove a placement preference (repeatable)', collect, [])
    .option('--mount-add <mount>', 'add or replace a mount (same syntax as --mount; repeatable)', collect, [])
    .option('--mount-rm <target>', 'remove the mount at a target path (repeatable)', collect, [])
    .option('--network-add <network>', 'attach to a network: NAME, or name=NAME,alias=ALIAS (repeatable)', collect, [])
    .option('--network-rm <network>', 'detach from a network, by name or id (repeatable)', collect, [])
    .option('--publish-add <port>', 'publish a port (same syntax as --publish; repeatable)', collect, [])
    .option('--publish-rm <port>', 'remove a published port by its target port: TARGET[/PROTOCOL], or published=PORT (repeatable)', collect, [])
    .option('--secret-add <secret>', 'add a secret (same syntax as --secret; repeatable)', collect, [])
    .option('--secret-rm <secret>', 'remove a secret, by name or id (repeatable)', collect, [])
    .option('--config-add <config>', 'add a config (same syntax as --config; repeatable)', collect, [])
    .option('--config-rm <config>', 'remove a config, by name or id (repeatable)', collect, [])
    .option('--ulimit-add <ulimit>', 'add or change a resource limit: NAME=SOFT[:HARD] (repeatable)', collect, [])
    .option('--ulimit-rm <name>', 'remove a resource limit by name, e.g. nofile (repeatable)', collect, [])
    .option('--force', 'replace every task even if nothing changed')
    .option('--rollback', 'roll back to the previous spec (as `service rollback`)');
  specOptions(update)
    .option('-d, --detach', 'exit at once instead of waiting for the update to finish')
    .action(async (ref: string, opts: UpdateFlags & { detach?: boolean; rollback?: boolean }, command: Command) => {
      const client = clientFor(command);
      const s = await client.inspectService(ref);
      if (opts.rollback === true) {
        await client.rollbackService(s.ID, s.Spec, s.Version.Index);
      } else {
        // The spec holds network ids: a name given to --network-rm is looked up (an unknown one is an error, as Docker's).
        const networkRm = [...opts.networkRm];
        for (const ref of opts.networkRm) networkRm.push((await client.inspectNetwork(ref)).Id);
        const warnings = await client.updateService(s.ID, updatedSpec(s.Spec, { ...opts, networkRm }), s.Version.Index, { resolveImage: opts.resolveImage !== false, withRegistryAuth: opts.withRegistryAuth === true });
        for (const w of warnings) process.stderr.write(`${w}\n`);
      }
      writeOut(s.Spec.Name);
      if (opts.detach !== true) await waitRolledOut(client, s.ID, s.UpdateStatus?.StartedAt, opts.rollback === true);
    });

  service
    .command('rollback')
    .description("put a service's previous spec back, rolled out with its rollback config")
    .argument('<service>', 'service name or id')
    .option('-d, --detach', 'exit at once instead of waiting for the rollback to finish')
    .action(async (ref: string, opts: { detach?: boolean }, command: Command) => {
      const client = clientFor(command);
      const s = await client.inspectService(ref);
      await client.rollbackService(s.ID, s.Spec, s.Version.Index);
      writeOut(s.Spec.Name);
      if (opts.detach !== true) await waitRolledOut(client, s.ID, s.UpdateStatus?.StartedAt, true);
    });

  const logsAction = async (ref: string, opts: { follow?: boolean; tail?: string; timestamps?: boolean }, command: Command): Promise<void> => {
    let tail: number | undefined;
    if (opts.tail !== undefined && opts.tail !== 'all') {
      if (!/^\d+$/.test(opts.tail)) throw new CliError(`invalid --tail ${JSON.stringify(opts.tail)}: a number of lines, or all`);
      tail = Number(opts.tail);
    }
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    await clientFor(command).serviceLogs(
      ref,
      { follow: opts.follow === true, ...(tail === undefined ? {} : { tail }) },
      (l) => {
        // Docker's prefix: name.slot.taskid@node
        const prefix = `${l.TaskName}.${l.TaskID.slice(0, 12)}@${l.Hostname}`;
        const line = `${opts.timestamps === true ? `${l.Timestamp} ` : ''}${prefix}    | ${l.Line}\n`;
        (l.Stream === 'stderr' ? process.stderr : process.stdout).write(line);
      },
      controller.signal,
    );
  };
  const logsOptions = (c: Command): Command =>
    c
      .option('-f, --follow', 'keep printing new lines')
      .option('-n, --tail <n>', "lines from the end of each task's log (default all)")
      .option('-t, --timestamps', 'show timestamps');

  logsOptions(service.command('logs').description("show a service's task logs from every node (or one task's)").argument('<service|task>', 'service name or id, or a task id')).action(logsAction);

  // `swarm task logs TASK`: one task's log, wherever it ran (the same stream as `service logs TASK`).
  const task = program.command('task').description("a service's tasks");
  logsOptions(task.command('logs').description("show one task's log, from the node that ran it").argument('<task>', 'task id or unique prefix')).action(logsAction);

  service
    .command('rm')
    .alias('remove')
    .description('remove services (their tasks are stopped)')
    .argument('<service...>', 'service names or ids')
    .action(async (refs: string[], _opts: unknown, command: Command) => {
      const client = clientFor(command);
      const errors: string[] = [];
      for (const ref of refs) {
        try {
          await client.removeService(ref);
          writeOut(ref);
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          errors.push(err.message);
        }
      }
      if (errors.length > 0) throw new CliError(errors.join('\nswarm: '));
    });
}

