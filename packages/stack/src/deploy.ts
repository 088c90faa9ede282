// Deploying a converted stack against a StackBackend (the CLI's is the API client; tests use a fake): read what
// exists, check and plan everything, and only then change the cluster. Also `stack rm`, `stack ls` and the diff
// that makes a redeploy of the same file change nothing.

import { defaultUpdateConfig, type Labels, type NetworkSpec, type ServiceSpec } from '@swarm/store';
import { StackError } from './errors.js';
import { LABEL_NAMESPACE, type ConvertedStack, type StackFileObject } from './convert.js';

/** A service of the cluster as the backend reads it (the store's spec, with network ids as targets). */
export interface ExistingService {
  id: string;
  /** The version an update must name (optimistic concurrency). */
  version: number;
  spec: ServiceSpec;
}

/** A network, secret or config of the cluster, as much as deploy and rm need of it. */
export interface ExistingObject {
  id: string;
  name: string;
  labels: Labels;
  /** The data, where the cluster shows it (configs; a secret's never leaves the managers). */
  data?: Uint8Array;
}

export interface FileObjectSpec {
  name: string;
  labels: Labels;
  data: Uint8Array;
}

/** Secrets or configs: optional on a backend, since a cluster (or client) may not have them. */
export interface FileObjectBackend {
  list(): Promise<ExistingObject[]>;
  create(spec: FileObjectSpec): Promise<string>;
  remove(id: string): Promise<void>;
}

export interface ServiceWriteOptions {
  /** Send this node's registry login with the service (Docker's --with-registry-auth). */
  withRegistryAuth: boolean;
  /**
   * Docker's --resolve-image: pin the image to its registry digest on every create and update (always), only when
   * the image changed (changed), or never. Absent: always.
   */
  resolveImage?: 'always' | 'changed' | 'never';
}

/** What deploy and rm need of a cluster. Every method may throw; deploy lets the error through unchanged. */
export interface StackBackend {
  /** Every service of the cluster (the stack's are told by their namespace label). */
  listServices(): Promise<ExistingService[]>;
  /** Returns the new service's id and the daemon's warnings. */
  createService(spec: ServiceSpec, opts: ServiceWriteOptions): Promise<{ id: string; warnings: string[] }>;
  updateService(id: string, version: number, spec: ServiceSpec, opts: ServiceWriteOptions): Promise<string[]>;
  removeService(id: string): Promise<void>;
  listNetworks(): Promise<ExistingObject[]>;
  createNetwork(spec: NetworkSpec): Promise<string>;
  removeNetwork(id: string): Promise<void>;
  secrets?: FileObjectBackend;
  configs?: FileObjectBackend;
  /** What is wrong with an image reference, or null; checked for every service before any change. */
  checkImage?(image: string): string | null;
  /**
   * The name the daemon records for an image reference, without a digest (`docker.io/library/busybox` and
   * `busybox` are `busybox:latest`); absent, references are compared as written.
   */
  imageName?(image: string): string;
}

/** How two image references are compared: by the name the daemon records for them. */
export type ImageName = (image: string) => string;
const asWritten: ImageName = (image) => image;

export interface DeployOptions extends ServiceWriteOptions {
  /** Remove the stack's services that the file no longer has (Docker's --prune). */
  prune: boolean;
  /** Progress lines, Docker's words: "Creating network shop_default", "Updating service shop_api (id: …)". */
  log?: (line: string) => void;
}

export interface DeployResult {
  networksCreated: string[];
  secretsCreated: string[];
  configsCreated: string[];
  /** Service names, with ids. */
  servicesCreated: Array<{ name: string; id: string }>;
  servicesUpdated: Array<{ name: string; id: string }>;
  servicesUnchanged: Array<{ name: string; id: string }>;
  servicesRemoved: Array<{ name: string; id: string }>;
  /** The daemon's warnings (image digests it could not record, say). */
  warnings: string[];
}

// ---------------------------------------------------------------- the diff

/** Sorted keys, so two equal objects print the same. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/**
 * A spec as the diff compares it: what the daemon fills in or keeps for itself (the registry login, the force
 * counter, secret and config ids) left out, and lists whose order means nothing sorted.
 */
export function normaliseSpec(spec: ServiceSpec): unknown {
  const s = structuredClone(spec);
  const c = s.taskTemplate.containerSpec;
  c.registryAuth = null;
  s.taskTemplate.forceUpdate = 0;
  c.secrets = c.secrets.map((x) => ({ ...x, secretId: '' })).sort((a, b) => a.secretName.localeCompare(b.secretName) || a.target.localeCompare(b.target));
  c.configs = c.configs.map((x) => ({ ...x, configId: '' })).sort((a, b) => a.configName.localeCompare(b.configName) || a.target.localeCompare(b.target));
  // Absent and empty are both none; a ulimit's name is its identity, so their order means nothing.
  if ((c.ulimits ?? []).length === 0) delete c.ulimits;
  else c.ulimits = [...(c.ulimits ?? [])].sort((a, b) => a.name.localeCompare(b.name));
  s.taskTemplate.networks = s.taskTemplate.networks.map((n) => ({ target: n.target, aliases: [...new Set(n.aliases)].sort() })).sort((a, b) => a.target.localeCompare(b.target));
  s.endpointSpec.ports = [...s.endpointSpec.ports].sort((a, b) => a.publishedPort - b.publishedPort || a.targetPort - b.targetPort || a.protocol.localeCompare(b.protocol) || a.publishMode.localeCompare(b.publishMode));
  if (s.endpointSpec.lbStrategy === 'round-robin') delete s.endpointSpec.lbStrategy; // absent means round-robin
  s.updateConfig ??= defaultUpdateConfig();
  s.rollbackConfig ??= defaultUpdateConfig();
  return canonical(s);
}

/**
 * Whether the cluster's service already is what the file asks for. An image the daemon pinned to its digest
 * (`busybox:1.36@sha256:…`) matches the file's `busybox:1.36`: a redeploy does not ask the registry again
 * (Docker's `--resolve-image changed`).
 */
export function sameSpec(existing: ServiceSpec, desired: ServiceSpec, imageName: ImageName = asWritten): boolean {
  return JSON.stringify(normaliseSpec(unpinned(existing, desired, imageName))) === JSON.stringify(normaliseSpec(desired));
}

/** Whether the cluster's image, less the digest it was pinned to, is the one the file names. */
function sameImage(have: string, want: string, imageName: ImageName): boolean {
  if (want.includes('@')) return have === want;
  const at = have.indexOf('@');
  return imageName(at < 0 ? have : have.slice(0, at)) === imageName(want);
}

/**
 * The cluster's spec with its image as the file wrote it when the only difference is the digest the daemon pinned
 * (`swarm/httpd:latest@sha256:…` is the file's `swarm/httpd` or `swarm/httpd:latest`).
 */
function unpinned(existing: ServiceSpec, desired: ServiceSpec, imageName: ImageName): ServiceSpec {
  const e = structuredClone(existing);
  const want = desired.taskTemplate.containerSpec.image;
  if (sameImage(e.taskTemplate.containerSpec.image, want, imageName)) e.taskTemplate.containerSpec.image = want;
  return e;
}

/** Paths of what differs, for the debug of a redeploy that updates (`taskTemplate.containerSpec.env`). */
export function specDifferences(existing: ServiceSpec, desired: ServiceSpec, imageName: ImageName = asWritten): string[] {
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string): void => {
    if (JSON.stringify(a) === JSON.stringify(b)) return;
    if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && !Array.isArray(a) && !Array.isArray(b)) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path === '' ? k : `${path}.${k}`);
      return;
    }
    out.push(path);
  };
  walk(normaliseSpec(unpinned(existing, desired, imageName)), normaliseSpec(desired), '');
  return out;
}

// ---------------------------------------------------------------- deploy

/**
 * The daemon refuses a published port another service holds (any mode against ingress, as SwarmKit): checked for
 * the whole stack up front, so that a clash never leaves a deploy half done. `others` are the services the deploy
 * keeps that are not in the file.
 */
function checkPublishedPorts(stack: ConvertedStack, others: readonly ExistingService[]): void {
  const holders = new Map<string, { name: string; mode: 'ingress' | 'host' }[]>();
  const hold = (name: string, port: { publishedPort: number; protocol: string; publishMode: 'ingress' | 'host' }): void => {
    if (port.publishedPort === 0) return;
    const key = `${port.publishedPort}/${port.protocol}`;
    holders.set(key, [...(holders.get(key) ?? []), { name, mode: port.publishMode }]);
  };
  for (const o of others) for (const p of o.spec.endpointSpec.ports) hold(o.spec.name, p);
  for (const spec of stack.services) {
    const short = spec.name.slice(stack.namespace.length + 1);
    for (const p of spec.endpointSpec.ports) {
      if (p.publishedPort === 0) continue;
      const key = `${p.publishedPort}/${p.protocol}`;
      const clash = (holders.get(key) ?? []).find((h) => h.name !== spec.name && (p.publishMode === 'ingress' || h.mode === 'ingress'));
      if (clash !== undefined) {
        throw new StackError('invalid', `services.${short}.ports: port ${key} is already in use by service ${clash.name}${clash.mode === 'host' ? ' (in host mode)' : ''}: publish another`, null, `services.${short}.ports`);
      }
    }
    for (const p of spec.endpointSpec.ports) hold(spec.name, p);
  }
}

const NOT_SUPPORTED = (kind: string): StackError => new StackError('unsupported', `the stack uses ${kind}, which this client cannot manage yet (${kind} are not supported yet)`);

function byName<T extends { name: string }>(items: readonly T[]): Map<string, T> {
  return new Map(items.map((i) => [i.name, i]));
}

/** The file's service spec with network names as the cluster's ids, where the network exists. */
function withNetworkIds(spec: ServiceSpec, networkIds: ReadonlyMap<string, string>): ServiceSpec {
  const s = structuredClone(spec);
  s.taskTemplate.networks = s.taskTemplate.networks.map((n) => ({ target: networkIds.get(n.target) ?? n.target, aliases: n.aliases }));
  return s;
}

function withObjectIds(spec: ServiceSpec, secretIds: ReadonlyMap<string, string>, configIds: ReadonlyMap<string, string>): ServiceSpec {
  const s = structuredClone(spec);
  const c = s.taskTemplate.containerSpec;
  c.secrets = c.secrets.map((x) => ({ ...x, secretId: secretIds.get(x.secretName) ?? '' }));
  c.configs = c.configs.map((x) => ({ ...x, configId: configIds.get(x.configName) ?? '' }));
  return s;
}

/**
 * Deploys a converted stack. Everything is read and checked first (external networks, secrets and configs exist;
 * no service would change mode); a failed check throws before the cluster is touched. Then networks, secrets and
 * configs are created, new services created, changed ones updated, and (with prune) services no longer in the
 * file removed. Deploying the same stack twice changes nothing the second time.
 */
export async function deployStack(backend: StackBackend, stack: ConvertedStack, opts: DeployOptions): Promise<DeployResult> {
  const log = opts.log ?? (() => undefined);
  const imageName: ImageName = (image) => backend.imageName?.(image) ?? image;
  const ns = stack.namespace;
  const result: DeployResult = { networksCreated: [], secretsCreated: [], configsCreated: [], servicesCreated: [], servicesUpdated: [], servicesUnchanged: [], servicesRemoved: [], warnings: [] };

  // ---- read
  const allServices = await backend.listServices();
  const existingServices = allServices.filter((s) => isStack(ns)(s.spec));
  const networks = byName(await backend.listNetworks());
  const usesSecrets = stack.secrets.length > 0 || stack.services.some((s) => s.taskTemplate.containerSpec.secrets.length > 0);
  const usesConfigs = stack.configs.length > 0 || stack.services.some((s) => s.taskTemplate.containerSpec.configs.length > 0);
  if (usesSecrets && backend.secrets === undefined) throw NOT_SUPPORTED('secrets');
  if (usesConfigs && backend.configs === undefined) throw NOT_SUPPORTED('configs');
  const secrets = byName(usesSecrets && backend.secrets !== undefined ? await backend.secrets.list() : []);
  const configs = byName(usesConfigs && backend.configs !== undefined ? await backend.configs.list() : []);

  // ---- check: every external object exists, nothing would change a service's mode
  for (const n of stack.networks) {
    if (n.external && !networks.has(n.name)) {
      throw new StackError('not_found', `network ${JSON.stringify(n.name)} is declared as external, but could not be found: create it first (swarm network create -d overlay ${n.name})`, null, `networks.${n.key}`);
    }
  }
  const checkExternal = (kind: 'secret' | 'config', objs: readonly StackFileObject[], have: ReadonlyMap<string, ExistingObject>): void => {
    for (const o of objs) {
      if (o.external && !have.has(o.name)) throw new StackError('not_found', `${kind} ${JSON.stringify(o.name)} is declared as external, but could not be found: create it first (swarm ${kind} create ${o.name} FILE)`, null, `${kind}s.${o.key}`);
    }
  };
  checkExternal('secret', stack.secrets, secrets);
  checkExternal('config', stack.configs, configs);
  // As Docker's (SwarmKit allows only label updates): a config of the stack whose bytes the file changed cannot be
  // updated in place; said before any change. A secret's bytes cannot be read back, so an existing one is kept.
  for (const c of stack.configs) {
    const have = c.external ? undefined : configs.get(c.name);
    if (have?.data !== undefined && !c.external && !Buffer.from(have.data).equals(Buffer.from(c.data))) {
      throw new StackError('invalid', `configs.${c.key}: config ${c.name} exists with other data, and a config cannot change: give the new one another name (configs.${c.key}.name), or remove the stack's services that use it and the config first`, null, `configs.${c.key}`);
    }
  }
  const current = byName(existingServices.map((s) => ({ ...s, name: s.spec.name })));
  const others = new Set(allServices.filter((s) => s.spec.labels[LABEL_NAMESPACE] !== ns).map((s) => s.spec.name.toLowerCase()));
  for (const spec of stack.services) {
    if (others.has(spec.name.toLowerCase())) {
      const short = spec.name.slice(ns.length + 1);
      throw new StackError('invalid', `services.${short}: a service named ${spec.name} exists that is not part of stack ${ns}: remove or rename it, or give the stack another name`, null, `services.${short}`);
    }
    const problem = backend.checkImage?.(spec.taskTemplate.containerSpec.image) ?? null;
    if (problem !== null) {
      const short = spec.name.slice(ns.length + 1);
      throw new StackError('invalid', `services.${short}.image: ${problem}`, null, `services.${short}.image`);
    }
    const have = current.get(spec.name);
    if (have !== undefined && (have.spec.mode.global !== undefined) !== (spec.mode.global !== undefined)) {
      const short = spec.name.slice(ns.length + 1);
      throw new StackError('invalid', `services.${short}.deploy.mode: service ${spec.name} exists in ${have.spec.mode.global !== undefined ? 'global' : 'replicated'} mode, and the mode of a service cannot change: remove the service first (swarm service rm ${spec.name})`, null, `services.${short}.deploy.mode`);
    }
  }

  // ---- plan
  const networkIds = new Map([...networks].map(([name, n]) => [name, n.id]));
  const secretIds = new Map([...secrets].map(([name, s]) => [name, s.id]));
  const configIds = new Map([...configs].map(([name, c]) => [name, c.id]));
  const wanted = new Set(stack.services.map((s) => s.name));
  const toRemove = opts.prune ? existingServices.filter((s) => !wanted.has(s.spec.name)).sort((a, b) => a.spec.name.localeCompare(b.spec.name)) : [];
  const removing = new Set(toRemove.map((s) => s.id));
  checkPublishedPorts(stack, allServices.filter((s) => !wanted.has(s.spec.name) && !removing.has(s.id)));

  // ---- apply
  const resolveImage = opts.resolveImage ?? 'always';
  const write = (imageChanged: boolean): ServiceWriteOptions => ({ withRegistryAuth: opts.withRegistryAuth, resolveImage: resolveImage === 'always' || (resolveImage === 'changed' && imageChanged) ? 'always' : 'never' });
  // Docker's order: prune, networks, secrets, configs, services; pruned services go first, so a port they held is free.
  for (const s of toRemove) {
    log(`Removing service ${s.spec.name}`);
    await backend.removeService(s.id);
    result.servicesRemoved.push({ name: s.spec.name, id: s.id });
  }
  for (const n of stack.networks) {
    if (n.external || networks.has(n.name)) continue;
    log(`Creating network ${n.name}`);
    networkIds.set(n.name, await backend.createNetwork(n.spec));
    result.networksCreated.push(n.name);
  }
  for (const [kind, objs, have, ids, created, b] of [
    ['secret', stack.secrets, secrets, secretIds, result.secretsCreated, backend.secrets],
    ['config', stack.configs, configs, configIds, result.configsCreated, backend.configs],
  ] as const) {
    for (const o of objs) {
      if (o.external || have.has(o.name)) continue;
      if (b === undefined) throw NOT_SUPPORTED(`${kind}s`); // checked above; kept for the type
      log(`Creating ${kind} ${o.name}`);
      ids.set(o.name, await b.create({ name: o.name, labels: o.labels, data: o.data }));
      created.push(o.name);
    }
  }
  for (const spec of stack.services) {
    const desired = withObjectIds(withNetworkIds(spec, networkIds), secretIds, configIds);
    const have = current.get(spec.name);
    if (have === undefined) {
      log(`Creating service ${spec.name}`);
      const { id, warnings } = await backend.createService(desired, write(true));
      result.warnings.push(...warnings);
      result.servicesCreated.push({ name: spec.name, id });
    } else if (sameSpec(have.spec, desired, imageName)) {
      result.servicesUnchanged.push({ name: spec.name, id: have.id });
    } else {
      log(`Updating service ${spec.name} (id: ${have.id})`);
      // As Docker's: the force counter stays the service's own, so a redeploy never restarts tasks by itself.
      desired.taskTemplate.forceUpdate = have.spec.taskTemplate.forceUpdate;
      const imageChanged = !sameImage(have.spec.taskTemplate.containerSpec.image, desired.taskTemplate.containerSpec.image, imageName);
      result.warnings.push(...(await backend.updateService(have.id, have.version, desired, write(imageChanged))));
      result.servicesUpdated.push({ name: spec.name, id: have.id });
    }
  }
  return result;
}

// ---------------------------------------------------------------- rm and ls

export interface RemoveOptions {
  log?: (line: string) => void;
  /** How long a network may refuse removal while its tasks stop (default 30 s). */
  networkWaitMs?: number;
  /** Injected for tests; default setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export interface RemoveResult {
  services: string[];
  networks: string[];
  secrets: string[];
  configs: string[];
}

const NETWORK_RETRY_MS = 200;

const isStack = (ns: string) => (o: { labels: Labels }): boolean => o.labels[LABEL_NAMESPACE] === ns;

/**
 * `stack rm`: the stack's services, then its networks (each retried while its tasks are still stopping), secrets
 * and configs, all found by the namespace label. Throws StackError('not_found') when the stack has nothing.
 */
export async function removeStack(backend: StackBackend, namespace: string, opts: RemoveOptions = {}): Promise<RemoveResult> {
  const log = opts.log ?? (() => undefined);
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = opts.now ?? Date.now;
  const services = (await backend.listServices()).filter((s) => isStack(namespace)(s.spec)).sort((a, b) => a.spec.name.localeCompare(b.spec.name));
  const networks = (await backend.listNetworks()).filter(isStack(namespace)).sort((a, b) => a.name.localeCompare(b.name));
  const secrets = backend.secrets === undefined ? [] : (await backend.secrets.list()).filter(isStack(namespace)).sort((a, b) => a.name.localeCompare(b.name));
  const configs = backend.configs === undefined ? [] : (await backend.configs.list()).filter(isStack(namespace)).sort((a, b) => a.name.localeCompare(b.name));
  if (services.length + networks.length + secrets.length + configs.length === 0) throw new StackError('not_found', `nothing found in stack: ${namespace}`);
  const result: RemoveResult = { services: [], networks: [], secrets: [], configs: [] };
  for (const s of services) {
    log(`Removing service ${s.spec.name}`);
    await backend.removeService(s.id);
    result.services.push(s.spec.name);
  }
  for (const n of networks) {
    log(`Removing network ${n.name}`);
    const deadline = now() + (opts.networkWaitMs ?? 30_000);
    for (;;) {
      try {
        await backend.removeNetwork(n.id);
        break;
      } catch (err) {
        // The services' tasks may still be stopping: the network is refused until they are gone.
        if (now() >= deadline) throw err;
        await sleep(NETWORK_RETRY_MS);
      }
    }
    result.networks.push(n.name);
  }
  for (const [kind, objs, b, done] of [
    ['secret', secrets, backend.secrets, result.secrets],
    ['config', configs, backend.configs, result.configs],
  ] as const) {
    for (const o of objs) {
      if (b === undefined) break;
      log(`Removing ${kind} ${o.name}`);
      await b.remove(o.id);
      done.push(o.name);
    }
  }
  return result;
}

/** `stack ls`: every namespace that labels a service, with its number of services, sorted by name. */
export async function listStacks(backend: StackBackend): Promise<Array<{ name: string; services: number }>> {
  const counts = new Map<string, number>();
  for (const s of await backend.listServices()) {
    const ns = s.spec.labels[LABEL_NAMESPACE];
    if (ns !== undefined) counts.set(ns, (counts.get(ns) ?? 0) + 1);
  }
  return [...counts].map(([name, services]) => ({ name, services })).sort((a, b) => a.name.localeCompare(b.name));
}
