// Compose model -> the cluster's objects, as `docker stack deploy` converts: names prefixed `<stack>_`, the
// namespace label on everything, a `<stack>_default` overlay for services that name no network. Pure but for reads.

import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { checkUlimit, defaultUpdateConfig, fileTargetPath, type Ulimit, type ContainerSpec, type HealthConfig, type Labels, type Mount, type NetworkSpec, type PortConfig, type RestartPolicy, type ServiceMode, type ServiceSpec, type UpdateConfig } from '@swarm/store';
import { StackError } from './errors.js';
import { DEPRECATED_SERVICE_KEYS, fileModeOf, FORBIDDEN_SERVICE_KEYS, UNSUPPORTED_SERVICE_KEYS as LOADER_UNSUPPORTED_KEYS } from './load-checks.js';
import { parseDotEnvEntries } from './load-dotenv.js';
import { bool, bytes, commandWords, show, durationMs, invalid, keyValues, labelMap, nanoCpus, parsePort, ratio, str, stringList, wholeNumber } from './convert-values.js';
import type { ComposeDeploy, ComposeExternal, ComposeFileObject, ComposeFileReference, ComposeFileReferenceLong, ComposeHealthcheck, ComposeModel, ComposeNetwork, ComposeService, ComposeServiceNetwork, ComposeServiceVolume, ComposeServiceVolumeLong, ComposeUpdateConfig, ComposeVolume } from './model.js';

/** Docker's labels: which stack an object belongs to, and the image the file named (before digest pinning). */
export const LABEL_NAMESPACE = 'com.docker.stack.namespace';
export const LABEL_IMAGE = 'com.docker.stack.image';

/** Docker's limit on a stack name (it becomes a prefix of service names, which are at most 63 characters). */
const STACK_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
/** The cluster's rule for service and network names: checked here so the daemon never refuses one half-way. */
const OBJECT_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const NETWORK_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export interface ConvertOptions {
  /** Where relative paths (env_file, bind sources, secret and config files) start: the first file's directory. */
  workingDir: string;
  /** Reads a file; default node's readFileSync. Tests give a fake. */
  readFile?: (path: string) => Uint8Array;
  /** For `environment: [KEY]` without a value and secrets/configs from `environment:`; default none. */
  environment?: Readonly<Record<string, string | undefined>>;
}

/** A network the stack's services attach to: one to create, or an external one that must exist. */
export type StackNetwork =
  | { key: string; name: string; external: false; spec: NetworkSpec }
  | { key: string; name: string; external: true };

/** A secret or config: one to create with its data, or an external one that must exist. */
export type StackFileObject =
  | { key: string; name: string; external: false; labels: Labels; data: Uint8Array }
  | { key: string; name: string; external: true };

/** A named volume: volumes live on each node and are made there when a task mounts one (as Docker's local driver). */
export interface StackVolume {
  key: string;
  name: string;
  external: boolean;
}

export interface ConvertedStack {
  namespace: string;
  /** Sorted by name. Network and secret/config references are by NAME; deploy resolves them to ids. */
  services: ServiceSpec[];
  networks: StackNetwork[];
  volumes: StackVolume[];
  secrets: StackFileObject[];
  configs: StackFileObject[];
  /** What the cluster ignores of the file, each naming its key path. */
  warnings: string[];
}

/** Keys the loader warns about (a swarm ignores them) or refuses: the converter says nothing more of them. */
const LOADER_REPORTED_KEYS: ReadonlySet<string> = new Set([...LOADER_UNSUPPORTED_KEYS, ...Object.keys(DEPRECATED_SERVICE_KEYS), ...Object.keys(FORBIDDEN_SERVICE_KEYS)]);

/** Keys Docker's stack deploy converts but this cluster's service spec has no field for: warned about by name. */
const UNSUPPORTED_SERVICE_KEYS = new Set(['sysctls', 'dns', 'dns_search', 'dns_opt', 'extra_hosts', 'logging', 'tty', 'isolation', 'oom_score_adj', 'credential_spec', 'annotations']);

const CONVERTED_SERVICE_KEYS = new Set([
  'image', 'command', 'entrypoint', 'environment', 'env_file', 'labels', 'hostname', 'user', 'working_dir', 'stop_grace_period',
  'stop_signal', 'init', 'read_only', 'cap_add', 'cap_drop', 'tmpfs', 'healthcheck', 'ports', 'networks', 'volumes', 'secrets',
  'configs', 'deploy', 'ulimits',
]);

type Shape = 'map' | 'list' | 'list or map' | 'string or list';

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A mapping whose keys have the shapes given: a key set to null is as if absent (YAML's `key:`), anything else of
 * the wrong shape is an error naming its path. Scalars are checked where they are read.
 */
function shaped<T>(value: unknown, path: string, shapes: Readonly<Record<string, Shape>>): T {
  if (value === undefined || value === null) return {} as T;
  if (!isMapping(value)) throw invalid(path, `${show(value)} is not a mapping`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === null && k !== 'command' && k !== 'entrypoint') continue;
    const shape = shapes[k];
    const ok =
      shape === undefined ||
      v === null ||
      (shape === 'map' && isMapping(v)) ||
      (shape === 'list' && Array.isArray(v)) ||
      (shape === 'list or map' && (isMapping(v) || Array.isArray(v))) ||
      (shape === 'string or list' && (typeof v === 'string' || Array.isArray(v)));
    if (!ok) throw invalid(`${path}.${k}`, `is not a ${shape}`);
    out[k] = v;
  }
  return out as T;
}

const SERVICE_SHAPES: Record<string, Shape> = {
  deploy: 'map', healthcheck: 'map', ulimits: 'map', ports: 'list', volumes: 'list', secrets: 'list', configs: 'list', cap_add: 'list', cap_drop: 'list',
  networks: 'list or map', environment: 'list or map', labels: 'list or map', env_file: 'string or list', tmpfs: 'string or list',
};
const DEPLOY_SHAPES: Record<string, Shape> = { placement: 'map', resources: 'map', restart_policy: 'map', update_config: 'map', rollback_config: 'map', labels: 'list or map' };
const NETWORK_SHAPES: Record<string, Shape> = { ipam: 'map', driver_opts: 'map', labels: 'list or map' };

const DEFAULT_NETWORK = 'default';
/** Docker's overlay option for the VXLAN id, which the cluster chooses (as netdriver's VXLANID_OPTION). */
const VXLANID_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';
/** Docker's mode of a secret or config file: readable by all, writable by none. */
const DEFAULT_FILE_MODE = 0o444;

interface FileReference {
  name: string;
  target: string;
  uid: string;
  gid: string;
  mode: number;
}

/** A file mode: numbers as they are, text by the loader's rule (the loader casts it; with --skip-interpolation it cannot). */
function fileMode(value: unknown, at: string): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? (fileModeOf(value) ?? NaN) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 0o777) throw invalid(at, `${show(value)} is not a file mode like 0440`);
  return n;
}

const DEFAULT_STOP_GRACE_MS = 10_000;
const DEFAULT_RESTART_DELAY_MS = 5_000;

/** The whole stack converted, or a StackError naming the first bad key; nothing is read from the cluster. */
export function convertStack(namespace: string, model: ComposeModel, opts: ConvertOptions): ConvertedStack {
  if (!STACK_NAME_PATTERN.test(namespace)) {
    throw new StackError('invalid', `stack name ${show(namespace)} is not valid: letters, digits, '_', '.' and '-', starting with a letter or digit`);
  }
  if (!isMapping(model)) throw invalid('services', 'the file is not a mapping with services');
  for (const key of ['services', 'networks', 'volumes', 'secrets', 'configs'] as const) {
    if (model[key] !== undefined && model[key] !== null && !isMapping(model[key])) throw invalid(key, 'is not a mapping');
  }
  const ctx = new Context(namespace, model, opts);
  const serviceNames = Object.keys(model.services ?? {}).sort();
  if (serviceNames.length === 0) throw invalid('services', 'the file defines no service');
  const services = serviceNames.map((name) => ctx.service(name, model.services[name]));
  const secrets = ctx.fileObjects('secrets', model.secrets ?? {});
  const configs = ctx.fileObjects('configs', model.configs ?? {});
  const volumes = Object.entries(model.volumes ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, v]) => ctx.volume(key, v));
  return { namespace, services, networks: ctx.usedNetworks(), volumes, secrets, configs, warnings: ctx.warnings };
}

function externalName(external: ComposeExternal | undefined, key: string, name: string | undefined, path: string): string | null {
  if (external === undefined || external === false) return null;
  if (external === true) return name ?? key;
  if (typeof external === 'object' && external !== null) {
    const old = external.name;
    if (old !== undefined && name !== undefined && old !== name) throw invalid(`${path}.external.name`, `conflicts with ${path}.name (${show(name)})`);
    return old ?? name ?? key;
  }
  throw invalid(`${path}.external`, `${show(external)} is not true or false`);
}

class Context {
  readonly warnings: string[] = [];
  private readonly networksUsed = new Map<string, StackNetwork>();

  constructor(
    private readonly namespace: string,
    private readonly model: ComposeModel,
    private readonly opts: ConvertOptions,
  ) {}

  private scope(name: string): string {
    return `${this.namespace}_${name}`;
  }

  private stackLabels(labels: Labels): Labels {
    return { ...labels, [LABEL_NAMESPACE]: this.namespace };
  }

  private warn(path: string, message: string): void {
    this.warnings.push(`${path}: ${message}`);
  }

  private path(p: string): string {
    return isAbsolute(p) ? p : resolve(this.opts.workingDir, p);
  }

  private read(file: string, path: string): Uint8Array {
    const full = this.path(file);
    try {
      return (this.opts.readFile ?? readFileSync)(full);
    } catch (err) {
      throw new StackError('not_found', `${path}: cannot read ${full}: ${(err as Error).message}`, null, path);
    }
  }

  // ------------------------------------------------------------ services

  service(name: string, raw: unknown): ServiceSpec {
    const at = `services.${name}`;
    if (!isMapping(raw)) throw invalid(at, 'is not a mapping');
    const svc = shaped<ComposeService>(raw, at, SERVICE_SHAPES);
    svc.deploy = shaped<ComposeDeploy>(svc.deploy, `${at}.deploy`, DEPLOY_SHAPES);
    const deploy = svc.deploy;
    deploy.placement = shaped<NonNullable<ComposeDeploy['placement']>>(deploy.placement, `${at}.deploy.placement`, { constraints: 'list', preferences: 'list' });
    deploy.resources = shaped<NonNullable<ComposeDeploy['resources']>>(deploy.resources, `${at}.deploy.resources`, { limits: 'map', reservations: 'map' });
    this.reportKeys(at, svc);
    if (svc.image === undefined || svc.image === '') throw invalid(`${at}.image`, 'is required (stacks do not build images: build and push it, then name it here)');
    const image = str(svc.image, `${at}.image`);
    if (!OBJECT_NAME_PATTERN.test(this.scope(name))) throw invalid(at, `the service's name ${show(this.scope(name))} is not valid: letters, digits, '_', '.' and '-', at most 63 in all`);
    const d = `${at}.deploy`;
    const resources = this.resources(svc, d);
    const containerSpec: ContainerSpec = {
      image,
      command: commandWords(svc.entrypoint, `${at}.entrypoint`),
      args: commandWords(svc.command, `${at}.command`),
      env: this.environment(svc, at),
      user: svc.user === undefined ? '' : str(svc.user, `${at}.user`),
      dir: svc.working_dir === undefined ? '' : str(svc.working_dir, `${at}.working_dir`),
      labels: this.stackLabels(labelMap(svc.labels, `${at}.labels`)),
      hostname: svc.hostname === undefined ? '' : str(svc.hostname, `${at}.hostname`),
      tty: false,
      stopSignal: svc.stop_signal === undefined ? '' : signalName(svc.stop_signal, `${at}.stop_signal`),
      stopGracePeriodMs: svc.stop_grace_period === undefined ? DEFAULT_STOP_GRACE_MS : durationMs(svc.stop_grace_period, `${at}.stop_grace_period`),
      healthcheck: svc.healthcheck === undefined ? null : this.healthcheck(svc.healthcheck, `${at}.healthcheck`),
      secrets: this.references('secrets', svc.secrets, at).map(({ name: secretName, ...file }) => ({ secretId: '', secretName, ...file })),
      configs: this.references('configs', svc.configs, at).map(({ name: configName, ...file }) => ({ configId: '', configName, ...file })),
      mounts: this.mounts(svc, at),
      init: svc.init === undefined ? false : bool(svc.init, `${at}.init`),
      readOnly: svc.read_only === undefined ? false : bool(svc.read_only, `${at}.read_only`),
      capabilityAdd: svc.cap_add === undefined ? [] : capabilities(svc.cap_add, `${at}.cap_add`),
      capabilityDrop: svc.cap_drop === undefined ? [] : capabilities(svc.cap_drop, `${at}.cap_drop`),
      pidsLimit: resources.pids,
      ...ulimitsField(svc.ulimits, `${at}.ulimits`),
      registryAuth: null,
    };
    // Docker's rule, the daemon's too: no two files at one path in the container (secrets go under /run/secrets/).
    const paths = new Map<string, string>();
    const files = [
      ...containerSpec.secrets.map((r) => ({ kind: 'secret' as const, name: r.secretName, target: r.target })),
      ...containerSpec.configs.map((r) => ({ kind: 'config' as const, name: r.configName, target: r.target })),
    ];
    for (const f of files) {
      const path = fileTargetPath(f.kind, f.target);
      const other = paths.get(path);
      if (other !== undefined) throw invalid(`${at}.${f.kind}s`, `${path} is the target of both ${other} and ${f.kind} ${f.name}: give one of them another target`);
      paths.set(path, `${f.kind} ${f.name}`);
    }
    const placement = deploy.placement ?? {};
    const endpointMode = deploy.endpoint_mode === undefined ? 'vip' : str(deploy.endpoint_mode, `${d}.endpoint_mode`).toLowerCase();
    if (endpointMode !== 'vip' && endpointMode !== 'dnsrr') throw invalid(`${d}.endpoint_mode`, `${show(deploy.endpoint_mode)} is not vip or dnsrr`);
    const ports = this.ports(svc, at);
    if (endpointMode === 'dnsrr') {
      const i = ports.findIndex((p) => p.publishMode === 'ingress');
      if (i >= 0) throw invalid(`${at}.ports`, "a port published in ingress mode can't be used with deploy.endpoint_mode dnsrr: publish it with mode: host, or use endpoint_mode vip");
    }
    return {
      name: this.scope(name),
      labels: { ...labelMap(deploy.labels, `${d}.labels`), [LABEL_NAMESPACE]: this.namespace, [LABEL_IMAGE]: image },
      taskTemplate: {
        containerSpec,
        resources: { limits: resources.limits, reservations: resources.reservations },
        restartPolicy: this.restartPolicy(svc, at),
        placement: {
          constraints: placement.constraints === undefined ? [] : stringList(placement.constraints, `${d}.placement.constraints`).map((c, i) => checkConstraint(c, `${d}.placement.constraints[${i}]`)),
          preferences: (placement.preferences ?? []).map((p, i) => {
            const spread = isMapping(p) ? p['spread'] : undefined;
            if (typeof spread !== 'string' || spread === '') throw invalid(`${d}.placement.preferences[${i}].spread`, 'is required, e.g. node.labels.zone');
            return { spread };
          }),
          maxReplicas: placement.max_replicas_per_node === undefined ? 0 : wholeNumber(placement.max_replicas_per_node, `${d}.placement.max_replicas_per_node`),
          platforms: [],
        },
        networks: this.serviceNetworks(name, svc, at),
        forceUpdate: 0,
      },
      mode: this.mode(deploy.mode, deploy.replicas, d),
      updateConfig: this.updateConfig(deploy.update_config, `${d}.update_config`, false),
      rollbackConfig: this.updateConfig(deploy.rollback_config, `${d}.rollback_config`, true),
      endpointSpec: { mode: endpointMode, ports },
    };
  }

  /**
   * Keys this cluster has no setting for are warnings naming them. The keys a swarm ignores or refuses whatever the
   * cluster (Docker's "Ignoring unsupported options", `build`, `container_name`, …) are the loader's to report, so
   * they are silent here; `restart` is read as Docker's fallback for deploy.restart_policy.
   */
  private reportKeys(at: string, svc: ComposeService): void {
    for (const key of Object.keys(svc)) {
      if (CONVERTED_SERVICE_KEYS.has(key) || key.startsWith('x-') || key === 'restart') continue;
      if (LOADER_REPORTED_KEYS.has(key)) continue;
      if (UNSUPPORTED_SERVICE_KEYS.has(key)) this.warn(`${at}.${key}`, 'this cluster has no such setting: ignored');
      else this.warn(`${at}.${key}`, 'unknown key: ignored');
    }
    const deploy = svc.deploy ?? {};
    for (const key of Object.keys(deploy)) {
      if (!['mode', 'replicas', 'labels', 'endpoint_mode', 'placement', 'resources', 'restart_policy', 'update_config', 'rollback_config'].includes(key) && !key.startsWith('x-')) {
        this.warn(`${at}.deploy.${key}`, 'this cluster has no such setting: ignored');
      }
    }
    const placement = deploy.placement as Record<string, unknown> | undefined;
    for (const key of Object.keys(placement ?? {})) {
      if (!['constraints', 'preferences', 'max_replicas_per_node'].includes(key)) this.warn(`${at}.deploy.placement.${key}`, 'this cluster has no such setting: ignored');
    }
  }

  /** env_file first (in order), then environment over it; values from the environment for bare keys; sorted, as Docker's. */
  private environment(svc: ComposeService, at: string): string[] {
    const env = new Map<string, string>();
    const set = (key: string, value: string | null): void => {
      const v = value ?? this.opts.environment?.[key];
      // A key without a value that the environment does not have either: the container gets no such variable.
      if (v === undefined) env.delete(key);
      else env.set(key, v);
    };
    const files = svc.env_file === undefined ? [] : Array.isArray(svc.env_file) ? svc.env_file : [svc.env_file];
    files.forEach((f, i) => {
      const p = Array.isArray(svc.env_file) ? `${at}.env_file[${i}]` : `${at}.env_file`;
      if (typeof f !== 'string' && !isMapping(f)) throw invalid(p, 'is neither a file name nor a mapping with path');
      const file = typeof f === 'string' ? f : str(f.path, `${p}.path`);
      const required = typeof f === 'string' ? true : f.required === undefined || f.required === null ? true : bool(f.required, `${p}.required`);
      let text: string;
      try {
        text = Buffer.from((this.opts.readFile ?? readFileSync)(this.path(file))).toString('utf8');
      } catch (err) {
        if (!required) return;
        throw new StackError('not_found', `${p}: cannot read ${this.path(file)}: ${(err as Error).message}`, null, p);
      }
      // The same syntax as the .env file's (Compose's): errors name the file and line.
      for (const { key, value } of parseDotEnvEntries(text, this.path(file))) set(key, value);
    });
    for (const [key, value] of keyValues(svc.environment, `${at}.environment`)) set(key, value);
    return [...env].map(([k, v]) => `${k}=${v}`).sort();
  }

  private healthcheck(raw: ComposeHealthcheck, at: string): HealthConfig {
    const h = shaped<ComposeHealthcheck>(raw, at, {});
    const test = h.test === undefined ? [] : typeof h.test === 'string' ? ['CMD-SHELL', h.test] : stringList(h.test, `${at}.test`);
    if (h.disable === true) {
      if (test.length > 0 && !(test.length === 1 && test[0] === 'NONE')) throw invalid(`${at}.disable`, 'test and disable cannot be set at the same time');
      return { test: ['NONE'], intervalMs: 0, timeoutMs: 0, startPeriodMs: 0, retries: 0 };
    }
    const [kind, ...rest] = test;
    if (kind !== undefined) {
      const ok = (kind === 'NONE' && rest.length === 0) || (kind === 'CMD' && rest.length > 0) || (kind === 'CMD-SHELL' && rest.length === 1);
      if (!ok) throw invalid(`${at}.test`, `${show(test)} is not a shell command string, ["CMD", command, args...], ["CMD-SHELL", command] or ["NONE"]`);
    }
    if (h.start_interval !== undefined) this.warn(`${at}.start_interval`, 'this cluster has no such setting: ignored');
    return {
      test,
      intervalMs: h.interval === undefined ? 0 : durationMs(h.interval, `${at}.interval`),
      timeoutMs: h.timeout === undefined ? 0 : durationMs(h.timeout, `${at}.timeout`),
      startPeriodMs: h.start_period === undefined ? 0 : durationMs(h.start_period, `${at}.start_period`),
      retries: h.retries === undefined ? 0 : wholeNumber(h.retries, `${at}.retries`),
    };
  }

  private resources(svc: ComposeService, d: string): { limits: { nanoCpus: number; memoryBytes: number }; reservations: { nanoCpus: number; memoryBytes: number }; pids: number } {
    const r = svc.deploy?.resources ?? {};
    // shaped() in service() made r a mapping of mappings.
    const out = { limits: { nanoCpus: 0, memoryBytes: 0 }, reservations: { nanoCpus: 0, memoryBytes: 0 }, pids: 0 };
    for (const which of ['limits', 'reservations'] as const) {
      const set = r[which];
      if (set === undefined || set === null) continue;
      const at = `${d}.resources.${which}`;
      if (set.cpus !== undefined) out[which].nanoCpus = nanoCpus(set.cpus, `${at}.cpus`);
      if (set.memory !== undefined) out[which].memoryBytes = bytes(set.memory, `${at}.memory`);
      if (set.pids !== undefined) {
        if (which === 'reservations') this.warn(`${at}.pids`, 'a pids reservation means nothing: ignored (use limits.pids)');
        else out.pids = wholeNumber(set.pids, `${at}.pids`);
      }
      for (const key of Object.keys(set)) {
        if (which === 'reservations' && key === 'devices') continue; // the loader reports it
        if (!['cpus', 'memory', 'pids'].includes(key)) this.warn(`${at}.${key}`, 'this cluster has no such setting: ignored');
      }
    }
    return out;
  }

  /** deploy.restart_policy, else Docker's fallback on `restart:` (no: the cluster's default; always: any). */
  private restartPolicy(svc: ComposeService, at: string): RestartPolicy {
    const p = svc.deploy?.restart_policy;
    const policy: RestartPolicy = { condition: 'any', delayMs: DEFAULT_RESTART_DELAY_MS, maxAttempts: 0, windowMs: 0 };
    if (p !== undefined && p !== null) {
      const r = `${at}.deploy.restart_policy`;
      if (p.condition !== undefined) {
        const c = str(p.condition, `${r}.condition`);
        if (c !== 'none' && c !== 'on-failure' && c !== 'any') throw invalid(`${r}.condition`, `${show(c)} is not none, on-failure or any`);
        policy.condition = c;
      }
      if (p.delay !== undefined) policy.delayMs = durationMs(p.delay, `${r}.delay`);
      if (p.max_attempts !== undefined) policy.maxAttempts = wholeNumber(p.max_attempts, `${r}.max_attempts`);
      if (p.window !== undefined) policy.windowMs = durationMs(p.window, `${r}.window`);
      if (svc.restart !== undefined) this.warn(`${at}.restart`, 'deploy.restart_policy is set too: restart is ignored');
      return policy;
    }
    if (svc.restart === undefined) return policy;
    const text = str(svc.restart, `${at}.restart`);
    const m = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/.exec(text);
    if (m === null) throw invalid(`${at}.restart`, `${show(text)} is not no, always, unless-stopped or on-failure[:MAX_RETRIES]`);
    if (m[1] === 'on-failure') policy.condition = 'on-failure';
    if (m[2] !== undefined && m[1] !== 'no') policy.maxAttempts = Number(m[2]);
    return policy;
  }

  private mode(mode: string | undefined, replicas: number | string | undefined, d: string): ServiceMode {
    const m = mode === undefined ? 'replicated' : str(mode, `${d}.mode`);
    if (m === 'global') {
      if (replicas !== undefined) throw invalid(`${d}.replicas`, 'can only be used with replicated mode');
      return { global: {} };
    }
    if (m === 'replicated') return { replicated: { replicas: replicas === undefined ? 1 : wholeNumber(replicas, `${d}.replicas`, 100_000) } };
    if (m === 'replicated-job' || m === 'global-job') throw new StackError('unsupported', `${d}.mode: ${m} services (jobs) are not supported by this cluster`, null, `${d}.mode`);
    throw invalid(`${d}.mode`, `${show(m)} is not replicated or global`);
  }

  /** Absent: the cluster's default config; given: Docker's rule (parallelism 1 unless set), the rest defaults. */
  private updateConfig(u: ComposeUpdateConfig | undefined, at: string, rollback: boolean): UpdateConfig {
    const c = defaultUpdateConfig();
    if (u === undefined || u === null) return c;
    if (u.parallelism !== undefined) c.parallelism = wholeNumber(u.parallelism, `${at}.parallelism`);
    if (u.delay !== undefined) c.delayMs = durationMs(u.delay, `${at}.delay`);
    if (u.monitor !== undefined) c.monitorMs = durationMs(u.monitor, `${at}.monitor`);
    if (u.max_failure_ratio !== undefined) c.maxFailureRatio = ratio(u.max_failure_ratio, `${at}.max_failure_ratio`);
    if (u.failure_action !== undefined) {
      const a = str(u.failure_action, `${at}.failure_action`);
      const allowed = rollback ? ['pause', 'continue'] : ['pause', 'continue', 'rollback'];
      if (!allowed.includes(a)) throw invalid(`${at}.failure_action`, `${show(a)} is not ${allowed.join(', ')}`);
      c.failureAction = a as UpdateConfig['failureAction'];
    }
    if (u.order !== undefined) {
      const o = str(u.order, `${at}.order`);
      if (o !== 'stop-first' && o !== 'start-first') throw invalid(`${at}.order`, `${show(o)} is not stop-first or start-first`);
      c.order = o;
    }
    return c;
  }

  private ports(svc: ComposeService, at: string): PortConfig[] {
    if (svc.ports === undefined || svc.ports === null) return [];
    if (!Array.isArray(svc.ports)) throw invalid(`${at}.ports`, 'is not a list');
    const out: PortConfig[] = [];
    svc.ports.forEach((p, i) => {
      for (const port of parsePort(p, `${at}.ports[${i}]`)) {
        if (port.hostIp !== '' && port.hostIp !== '0.0.0.0' && port.hostIp !== '::') {
          this.warn(`${at}.ports[${i}]`, `host IP ${port.hostIp} is ignored: a published port is on every address of the node(s)`);
        }
        out.push({ name: port.name, protocol: port.protocol, targetPort: port.targetPort, publishedPort: port.publishedPort, publishMode: port.publishMode });
      }
    });
    // The daemon refuses one published port (and protocol) twice in a service.
    const seen = new Set<string>();
    for (const p of out) {
      const k = `${p.publishedPort}/${p.protocol}`;
      if (p.publishedPort !== 0 && seen.has(k)) throw invalid(`${at}.ports`, `port ${k} is published twice`);
      seen.add(k);
    }
    // Docker sorts them, so the order in the file does not make a redeploy differ.
    return out.sort((a, b) => a.publishedPort - b.publishedPort || a.targetPort - b.targetPort || a.protocol.localeCompare(b.protocol));
  }

  // ------------------------------------------------------------ networks

  private network(key: string, at: string): StackNetwork {
    const known = this.networksUsed.get(key);
    if (known !== undefined) return known;
    const defined = this.model.networks !== undefined && Object.hasOwn(this.model.networks, key);
    if (!defined && key !== DEFAULT_NETWORK) throw invalid(at, `network ${show(key)} is not defined under the top-level networks`);
    const np = `networks.${key}`;
    const n = shaped<ComposeNetwork>(defined ? this.model.networks?.[key] : null, np, NETWORK_SHAPES);
    if (n.ipam !== undefined) n.ipam = shaped<NonNullable<ComposeNetwork['ipam']>>(n.ipam, `${np}.ipam`, { config: 'list', options: 'map' });
    const name = n.name === undefined ? undefined : str(n.name, `${np}.name`);
    const ext = externalName(n.external, key, name, np);
    let out: StackNetwork;
    if (ext !== null) {
      out = { key, name: ext, external: true };
    } else {
      const driver = n.driver === undefined ? 'overlay' : str(n.driver, `${np}.driver`);
      if (driver !== 'overlay') throw invalid(`${np}.driver`, `${show(driver)}: a stack's networks are overlay networks (other drivers make one host's networks, which a service cannot span)`);
      const ipamConfigs = (n.ipam?.config ?? []).map((raw, i) => shaped<{ subnet?: string; ip_range?: string; gateway?: string }>(raw, `${np}.ipam.config[${i}]`, {})).map((c, i) => ({
        subnet: c.subnet === undefined ? '' : str(c.subnet, `${np}.ipam.config[${i}].subnet`),
        range: c.ip_range === undefined ? '' : str(c.ip_range, `${np}.ipam.config[${i}].ip_range`),
        gateway: c.gateway === undefined ? '' : str(c.gateway, `${np}.ipam.config[${i}].gateway`),
      }));
      if (!NETWORK_NAME_PATTERN.test(name ?? this.scope(key)) || name === 'host') throw invalid(name === undefined ? np : `${np}.name`, `the network's name ${show(name ?? this.scope(key))} is not valid: letters, digits, '_', '.' and '-', starting with a letter or digit, and not host`);
      // What the daemon refuses in a network, said here so that no network of the stack is made before a refusal.
      const ipamDriver = n.ipam?.driver === undefined ? 'default' : str(n.ipam.driver, `${np}.ipam.driver`);
      if (ipamDriver !== 'default' && ipamDriver !== '') throw new StackError('unsupported', `${np}.ipam.driver: only the default IPAM driver is supported, not ${show(ipamDriver)}`, null, `${np}.ipam.driver`);
      if (ipamConfigs.length > 1) throw new StackError('unsupported', `${np}.ipam.config: a swarm network takes at most one subnet (IPv4), got ${ipamConfigs.length}`, null, `${np}.ipam.config`);
      const ipam = ipamConfigs[0];
      if (ipam !== undefined) {
        const c = `${np}.ipam.config[0]`;
        if (ipam.range !== '') throw new StackError('unsupported', `${c}.ip_range: not supported: tasks take addresses from the whole subnet; give a smaller subnet instead`, null, `${c}.ip_range`);
        if (ipam.subnet === '' && ipam.gateway !== '') throw invalid(`${c}.gateway`, 'a gateway needs the subnet it is in');
        if (ipam.subnet !== '' && !/^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/.test(ipam.subnet)) throw invalid(`${c}.subnet`, `${show(ipam.subnet)} is not an IPv4 subnet like 10.20.0.0/24`);
        if (ipam.gateway !== '' && !/^(\d{1,3}\.){3}\d{1,3}$/.test(ipam.gateway)) throw invalid(`${c}.gateway`, `${show(ipam.gateway)} is not an IPv4 address`);
      }
      if (n.driver_opts !== undefined && Object.hasOwn(n.driver_opts, VXLANID_OPTION)) throw invalid(`${np}.driver_opts`, `${VXLANID_OPTION} is chosen by the cluster, not given`);
      if (n.enable_ipv6 === true) throw new StackError('unsupported', `${np}.enable_ipv6: IPv6 overlays are not supported by this cluster`, null, `${np}.enable_ipv6`);
      for (const k of Object.keys(n)) {
        if (!['name', 'driver', 'driver_opts', 'ipam', 'external', 'internal', 'attachable', 'labels', 'enable_ipv6'].includes(k) && !k.startsWith('x-')) this.warn(`${np}.${k}`, 'this cluster has no such setting: ignored');
      }
      out = {
        key,
        name: name ?? this.scope(key),
        external: false,
        spec: {
          name: name ?? this.scope(key),
          labels: this.stackLabels(labelMap(n.labels, `${np}.labels`)),
          driver,
          driverOptions: Object.fromEntries(Object.entries(n.driver_opts ?? {}).map(([k, v]) => [k, str(v, `${np}.driver_opts.${k}`)])),
          ipam: { driver: n.ipam?.driver === undefined ? 'default' : str(n.ipam.driver, `${np}.ipam.driver`), configs: ipamConfigs },
          internal: n.internal === undefined ? false : bool(n.internal, `${np}.internal`),
          attachable: n.attachable === undefined ? false : bool(n.attachable, `${np}.attachable`),
          ingress: false,
        },
      };
    }
    this.networksUsed.set(key, out);
    return out;
  }

  /** Attachments by network name, sorted; each with the service's own name as an alias, as Docker adds. */
  private serviceNetworks(name: string, svc: ComposeService, at: string): Array<{ target: string; aliases: string[] }> {
    const entries: Array<[string, ComposeServiceNetwork | null, string]> = [];
    const given = svc.networks;
    if (given === undefined || given === null) entries.push([DEFAULT_NETWORK, null, `${at}.networks`]);
    else if (Array.isArray(given)) given.forEach((n, i) => entries.push([str(n, `${at}.networks[${i}]`), null, `${at}.networks[${i}]`]));
    else if (typeof given === 'object') for (const [k, v] of Object.entries(given)) entries.push([k, v === null ? null : shaped<ComposeServiceNetwork>(v, `${at}.networks.${k}`, { aliases: 'list', driver_opts: 'map' }), `${at}.networks.${k}`]);
    else throw invalid(`${at}.networks`, 'is neither a list nor a mapping');
    if (entries.length === 0) entries.push([DEFAULT_NETWORK, null, `${at}.networks`]);
    const out = entries.map(([key, cfg, p]) => {
      const network = this.network(key, p);
      const aliases = cfg?.aliases === undefined ? [] : stringList(cfg.aliases, `${p}.aliases`);
      for (const k of Object.keys(cfg ?? {})) {
        if (k !== 'aliases' && !k.startsWith('x-')) this.warn(`${p}.${k}`, 'this cluster has no such setting: ignored');
      }
      return { target: network.name, aliases: [...new Set([...aliases, name])] };
    });
    return out.sort((a, b) => a.target.localeCompare(b.target));
  }

  usedNetworks(): StackNetwork[] {
    return [...this.networksUsed.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  // ------------------------------------------------------------ volumes and mounts

  volume(key: string, raw: ComposeVolume | null): StackVolume {
    const at = `volumes.${key}`;
    const v = shaped<ComposeVolume>(raw, at, { driver_opts: 'map', labels: 'list or map' });
    const name = v.name === undefined ? undefined : str(v.name, `${at}.name`);
    const ext = externalName(v.external, key, name, at);
    if (ext === null) {
      if (v.driver !== undefined && v.driver !== 'local') this.warn(`${at}.driver`, 'volumes are made by each node with the local driver: ignored');
      for (const k of ['driver_opts', 'labels'] as const) if (v[k] !== undefined) this.warn(`${at}.${k}`, 'volumes are made by each node with no options or labels: ignored');
    }
    const full = ext ?? name ?? this.scope(key);
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(full)) throw invalid(name !== undefined ? `${at}.name` : at, `the volume's name ${show(full)} is not valid: letters, digits, '_', '.' and '-', starting with a letter or digit`);
    return { key, name: full, external: ext !== null };
  }

  private volumeName(source: string, at: string): string {
    const vols = this.model.volumes;
    if (vols === undefined || !Object.hasOwn(vols, source)) throw invalid(at, `volume ${show(source)} is not defined under the top-level volumes`);
    return this.volume(source, vols[source] ?? null).name;
  }

  private mounts(svc: ComposeService, at: string): Mount[] {
    const out: Mount[] = [];
    (svc.volumes ?? []).forEach((v, i) => out.push(this.mount(v, `${at}.volumes[${i}]`)));
    const tmpfs = svc.tmpfs === undefined ? [] : typeof svc.tmpfs === 'string' ? [svc.tmpfs] : stringList(svc.tmpfs, `${at}.tmpfs`);
    tmpfs.forEach((t, i) => {
      const p = typeof svc.tmpfs === 'string' ? `${at}.tmpfs` : `${at}.tmpfs[${i}]`;
      const [target = '', options = ''] = t.split(':', 2);
      if (!target.startsWith('/')) throw invalid(p, `${show(t)}: the target must be an absolute path`);
      let size = 0;
      for (const o of options === '' ? [] : options.split(',')) {
        if (o.startsWith('size=')) size = bytes(o.slice(5), p);
        else this.warn(p, `tmpfs option ${show(o)} is not supported: ignored`);
      }
      out.push({ type: 'tmpfs', source: '', target, readOnly: false, tmpfsSizeBytes: size });
    });
    const targets = new Set<string>();
    for (const m of out) {
      if (targets.has(m.target)) throw invalid(`${at}.volumes`, `${m.target} is mounted twice`);
      targets.add(m.target);
    }
    return out;
  }

  private mount(raw: ComposeServiceVolume, at: string): Mount {
    if (typeof raw === 'string') return this.shortMount(raw, at);
    if (!isMapping(raw)) throw invalid(at, `${show(raw)} is neither a volume string nor a mapping`);
    const v = shaped<ComposeServiceVolumeLong>(raw, at, { bind: 'map', volume: 'map', tmpfs: 'map' });
    const type = str(v.type, `${at}.type`);
    const target = v.target === undefined ? '' : str(v.target, `${at}.target`);
    if (!target.startsWith('/')) throw invalid(`${at}.target`, 'is required and must be an absolute path');
    const readOnly = v.read_only === undefined ? false : bool(v.read_only, `${at}.read_only`);
    const source = v.source === undefined ? '' : str(v.source, `${at}.source`);
    const others = (['bind', 'volume', 'tmpfs'] as const).filter((k) => k !== type && v[k] !== undefined);
    if (others.length > 0) throw invalid(`${at}.${others[0]}`, `${others[0]} options are incompatible with type ${type}`);
    if (v.consistency !== undefined) this.warn(`${at}.consistency`, 'has no meaning on Linux: ignored');
    switch (type) {
      case 'volume':
        if (source === '') throw new StackError('unsupported', `${at}.source: anonymous volumes are not supported: name the volume (and define it under the top-level volumes)`, null, `${at}.source`);
        if (v.volume !== undefined) this.warn(`${at}.volume`, 'volume options (nocopy, subpath) are not supported: ignored');
        return { type: 'volume', source: this.volumeName(source, `${at}.source`), target, readOnly, tmpfsSizeBytes: 0 };
      case 'bind':
        if (source === '') throw invalid(`${at}.source`, 'a bind mount needs a host path');
        if (v.bind !== undefined) this.warn(`${at}.bind`, 'bind options (propagation, create_host_path, selinux) are not supported: ignored');
        return { type: 'bind', source: this.path(source), target, readOnly, tmpfsSizeBytes: 0 };
      case 'tmpfs': {
        if (source !== '') throw invalid(`${at}.source`, 'a tmpfs mount takes no source');
        const size = v.tmpfs?.size === undefined ? 0 : bytes(v.tmpfs.size, `${at}.tmpfs.size`);
        if (v.tmpfs?.mode !== undefined) this.warn(`${at}.tmpfs.mode`, 'is not supported: ignored');
        return { type: 'tmpfs', source: '', target, readOnly, tmpfsSizeBytes: size };
      }
      default:
        throw new StackError('unsupported', `${at}.type: ${show(type)} mounts are not supported (use volume, bind or tmpfs)`, null, `${at}.type`);
    }
  }

  /** `[SOURCE:]TARGET[:MODE]`: a source that is a path is a bind (relative to the working dir), else a named volume. */
  private shortMount(text: string, at: string): Mount {
    const parts = text.split(':');
    if (parts.length === 1) {
      throw new StackError('unsupported', `${at}: ${show(text)} is an anonymous volume, which is not supported: name the volume (and define it under the top-level volumes)`, null, at);
    }
    if (parts.length > 3) throw invalid(at, `${show(text)} is not [SOURCE:]TARGET[:MODE]`);
    const [source = '', target = '', mode = ''] = parts;
    if (!target.startsWith('/')) throw invalid(at, `${show(text)}: the target must be an absolute path`);
    let readOnly = false;
    for (const o of mode === '' ? [] : mode.split(',')) {
      if (o === 'ro') readOnly = true;
      else if (o === 'rw') readOnly = false;
      else if (['z', 'Z', 'nocopy', 'consistent', 'cached', 'delegated'].includes(o)) this.warn(at, `mode ${show(o)} is not supported: ignored`);
      else throw invalid(at, `${show(text)}: mode ${show(o)} is not ro or rw`);
    }
    const isPath = source.startsWith('/') || source.startsWith('.') || source.startsWith('~');
    if (isPath) {
      const host = source.startsWith('~') ? `${process.env['HOME'] ?? '/root'}${source.slice(1)}` : this.path(source);
      return { type: 'bind', source: host, target, readOnly, tmpfsSizeBytes: 0 };
    }
    return { type: 'volume', source: this.volumeName(source, at), target, readOnly, tmpfsSizeBytes: 0 };
  }

  // ------------------------------------------------------------ secrets and configs

  /**
   * A service's secrets or configs by name, with the file's target (default: the source's key), owner and mode
   * (Docker's defaults: 0, 0, 0444); sorted by name, as Docker's, so order never makes a redeploy differ.
   */
  private references(kind: 'secrets' | 'configs', refs: ComposeFileReference[] | undefined, at: string): FileReference[] {
    if (refs === undefined || refs === null) return [];
    if (!Array.isArray(refs)) throw invalid(`${at}.${kind}`, 'is not a list');
    const defined = this.model[kind] ?? {};
    const names = new Map<string, string>();
    const out = refs.map((r, i): FileReference => {
      const p = `${at}.${kind}[${i}]`;
      if (typeof r !== 'string' && !isMapping(r)) throw invalid(p, 'is neither a name nor a mapping with source');
      const long = typeof r === 'string' ? { source: r } : shaped<ComposeFileReferenceLong>(r, p, {});
      const source = str(long.source, `${p}.source`);
      if (!Object.hasOwn(defined, source)) throw invalid(p, `${kind === 'secrets' ? 'secret' : 'config'} ${show(source)} is not defined under the top-level ${kind}`);
      const obj = shaped<ComposeFileObject>(defined[source], `${kind}.${source}`, {});
      const name = this.fileObjectName(source, obj, `${kind}.${source}`);
      const first = names.get(name);
      if (first !== undefined) throw invalid(p, `${kind === 'secrets' ? 'secret' : 'config'} ${show(source)} is already given by ${first}: a service takes each once`);
      names.set(name, p);
      const target = long.target === undefined ? source : str(long.target, `${p}.target`);
      const parts = target.split('/');
      if (target === '' || target.endsWith('/') || parts.some((x) => x === '..' || x === '.')) throw invalid(`${p}.target`, `${show(target)} is not a file name or absolute file path`);
      const id = (v: unknown, key: 'uid' | 'gid'): string => {
        if (v === undefined) return '0';
        const text = str(v, `${p}.${key}`);
        if (!/^[0-9]{1,10}$/.test(text)) throw invalid(`${p}.${key}`, `${show(v)} is not a numeric ${key === 'uid' ? 'user' : 'group'} id`);
        return text;
      };
      return { name, target, uid: id(long.uid, 'uid'), gid: id(long.gid, 'gid'), mode: long.mode === undefined ? DEFAULT_FILE_MODE : fileMode(long.mode, `${p}.mode`) };
    });
    return out.sort((a, b) => a.name.localeCompare(b.name) || a.target.localeCompare(b.target));
  }


  private fileObjectName(key: string, obj: ComposeFileObject, at: string): string {
    const name = obj.name === undefined ? undefined : str(obj.name, `${at}.name`);
    return externalName(obj.external, key, name, at) ?? name ?? this.scope(key);
  }

  fileObjects(kind: 'secrets' | 'configs', objs: Record<string, ComposeFileObject>): StackFileObject[] {
    return Object.entries(objs)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, raw]): StackFileObject => {
        const at = `${kind}.${key}`;
        if (!isMapping(raw)) throw invalid(at, 'is not a mapping');
        const o = shaped<ComposeFileObject>(raw, at, { labels: 'list or map' });
        const name = this.fileObjectName(key, o, at);
        if (externalName(o.external, key, o.name, at) !== null) return { key, name, external: true };
        if (o.driver !== undefined) throw new StackError('unsupported', `${at}.driver: secret drivers are not supported by this cluster`, null, `${at}.driver`);
        if (o.template_driver !== undefined) this.warn(`${at}.template_driver`, 'templating is not supported by this cluster: the data is used as it is');
        const sources = (['file', 'environment', 'content'] as const).filter((k) => o[k] !== undefined);
        if (kind === 'secrets' && o.content !== undefined) throw invalid(`${at}.content`, 'secrets take file or environment (content is for configs)');
        if (sources.length !== 1) throw invalid(at, `give exactly one of file, environment${kind === 'configs' ? ', content' : ''} or external: true`);
        let data: Uint8Array;
        if (o.file !== undefined) data = this.read(str(o.file, `${at}.file`), `${at}.file`);
        else if (o.environment !== undefined) {
          const v = this.opts.environment?.[str(o.environment, `${at}.environment`)];
          if (v === undefined) throw new StackError('not_found', `${at}.environment: the environment variable ${o.environment} is not set`, null, `${at}.environment`);
          data = Buffer.from(v, 'utf8');
        } else data = Buffer.from(str(o.content, `${at}.content`), 'utf8');
        return { key, name, external: false, labels: this.stackLabels(labelMap(o.labels, `${at}.labels`)), data };
      });
  }
}

function capabilities(value: unknown, at: string): string[] {
  const out: string[] = [];
  stringList(value, at).forEach((c, i) => {
    const n = c.trim().toUpperCase();
    if (!/^[A-Z_]+$/.test(n)) throw invalid(`${at}[${i}]`, `${show(c)} is not a capability name like NET_ADMIN, or ALL`);
    if (!out.includes(n)) out.push(n);
  });
  return out;
}

/** A ulimit value: a whole number, or -1 for unlimited (as Docker takes it); strings are what interpolation leaves. */
function ulimitValue(value: unknown, at: string): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < -1) throw invalid(at, `${show(value)} is not a whole number (or -1 for unlimited)`);
  return n;
}

/**
 * Docker's conversion of `ulimits`: `nproc: 65535` sets soft and hard alike, `nofile: {soft, hard}` each; sorted by
 * name. The API's checks (a known name, soft <= hard) are made here, naming the key. None: no field, as the API.
 */
function ulimitsField(value: ComposeService['ulimits'] | undefined, at: string): { ulimits?: Ulimit[] } {
  if (value === undefined) return {};
  const out: Ulimit[] = [];
  for (const name of Object.keys(value).sort()) {
    const v: unknown = value[name];
    if (v === null || v === undefined) continue;
    let soft: number;
    let hard: number;
    if (isMapping(v)) {
      for (const key of Object.keys(v)) if (key !== 'soft' && key !== 'hard' && !key.startsWith('x-')) throw invalid(`${at}.${name}.${key}`, 'is not soft or hard');
      if (v['soft'] === undefined || v['soft'] === null) throw invalid(`${at}.${name}.soft`, 'is required with hard');
      if (v['hard'] === undefined || v['hard'] === null) throw invalid(`${at}.${name}.hard`, 'is required with soft');
      soft = ulimitValue(v['soft'], `${at}.${name}.soft`);
      hard = ulimitValue(v['hard'], `${at}.${name}.hard`);
    } else {
      soft = hard = ulimitValue(v, `${at}.${name}`);
    }
    const checked = checkUlimit(name, soft, hard);
    if (!checked.ok) throw invalid(checked.part === 'name' || !isMapping(v) ? `${at}.${name}` : `${at}.${name}.${checked.part}`, checked.message);
    out.push(checked.ulimit);
  }
  return out.length > 0 ? { ulimits: out } : {};
}

/** A signal as the daemon takes it: SIGTERM, TERM, SIGRTMIN+3 is not (Docker's numbers are, e.g. 9). */
function signalName(value: unknown, at: string): string {
  const text = str(value, at);
  if (!/^(SIG)?[A-Z0-9]+$/.test(text)) throw invalid(at, `${show(text)} is not a signal name like SIGTERM or SIGQUIT`);
  return text;
}

const CONSTRAINT_KEYS = 'node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<name>, engine.labels.<name>';

/** Docker's constraint syntax, as the scheduler reads it: checked here so the daemon never refuses one half-way. */
function checkConstraint(expression: string, at: string): string {
  const m = /^(.*?)(==|!=)(.*)$/.exec(expression);
  if (m === null) throw invalid(at, `${show(expression)} is not KEY==VALUE or KEY!=VALUE`);
  const key = (m[1] ?? '').trim().toLowerCase();
  const value = (m[3] ?? '').trim();
  const known = ['node.id', 'node.hostname', 'node.role', 'node.platform.os', 'node.platform.arch'].includes(key) || /^(node|engine)\.labels\.[A-Za-z0-9_.-]+$/.test(key);
  if (!known) throw invalid(at, `${show(expression)}: unknown key ${show((m[1] ?? '').trim())} (use ${CONSTRAINT_KEYS})`);
  if (value === '' || value.includes('==') || value.includes('!=') || !/^[A-Za-z0-9_.*\-/:@]+$/.test(value)) throw invalid(at, `${show(expression)}: invalid value ${show(value)}`);
  if (key === 'node.role' && !['manager', 'worker'].includes(value.toLowerCase())) throw invalid(at, `${show(expression)}: node.role is manager or worker`);
  return expression;
}

