// The node's container engine: the runtime its tasks run on, its named volumes, and (with runc) its image store.
// It belongs to the machine, not to a swarm membership: volumes and images are there before `swarm init` and
// after `swarm leave`, and containers an earlier run left are found again at start.

import { accessSync, constants as fsConstants, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from '@swarm/agent';
import { OverlayDriver } from '@swarm/netdriver';
import { familiarReference, ImageStore, LocalVolumes, parseReference, ProcessRuntime, RuncRuntime, type Runtime } from '@swarm/runtime';
import type { Logger } from '@swarm/wire';
import { DaemonError } from './errors.js';
import type { TaskStatusUpdate } from './dispatcher.js';
import type { TaskAgent } from './daemon.js';

export type RuntimeChoice = 'auto' | 'runc' | 'process';

export interface EngineOptions {
  dataDir: string;
  logger: Logger;
  /** auto: runc when this is Linux, we are root and runc + conmon are installed; else the process runtime. */
  runtime: RuntimeChoice;
  registryMirrors: string[];
  insecureRegistries: string[];
}

export interface NodeEngine {
  readonly runtime: Runtime;
  readonly volumes: LocalVolumes;
  /** The node's images (an OCI layout under the data dir), pulled from registries; kept with either runtime. */
  readonly images: ImageStore;
  /**
   * The overlay network driver (with runc: tasks need their own network namespace); null with the process
   * runtime, whose tasks share the host's network.
   */
  readonly overlay: OverlayDriver | null;
  /** `swarm login`: checks the credentials with the registry, then keeps them for this node's pulls and pushes. */
  login(registryHost: string, creds: { username: string; password: string }): Promise<void>;
  /** The login this node holds for a registry, or null. */
  credentials(registryHost: string): { username: string; password: string } | null;
  /** `swarm logout`: forgets them; false when there were none. */
  logout(registryHost: string): boolean;
  /** `image:tag` -> `image:tag@sha256:...` as the registry answers now; null when this node keeps no images. */
  readonly resolveImage: ((reference: string) => Promise<string>) | null;
  /** The task runner for one swarm membership, on this engine's runtime. */
  agentFor(nodeId: string, report: (updates: TaskStatusUpdate[]) => void, logger: Logger): TaskAgent;
  close(): Promise<void>;
}

function readAuths(path: string): Record<string, { username: string; password: string }> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, { username: string; password: string }>;
  } catch {
    return {};
  }
}

/** Why runc cannot be used here, or null when it can. */
export function runcUnavailableReason(): string | null {
  if (process.platform !== 'linux') return `this is ${process.platform}, not Linux`;
  if (process.getuid?.() !== 0) return 'the daemon is not running as root';
  for (const bin of ['/usr/sbin/runc', '/usr/bin/conmon']) {
    try {
      accessSync(bin, fsConstants.X_OK);
    } catch {
      return `${bin} is missing (apt-get install runc conmon)`;
    }
  }
  return null;
}

export async function createEngine(opts: EngineOptions): Promise<NodeEngine> {
  const log = opts.logger;
  let agent: Agent | null = null;
  const volumes = new LocalVolumes({
    rootDir: join(opts.dataDir, 'volumes'),
    inUse: (name) => agent?.volumesInUse().has(name) ?? false,
  });
  // Registry credentials given by `swarm login`, kept in the data dir (0600, like Docker's config.json).
  const authPath = join(opts.dataDir, 'registry-auth.json');
  const auths = new Map<string, { username: string; password: string }>(Object.entries(readAuths(authPath)));
  const saveAuths = (): void => {
    const tmp = `${authPath}.tmp`;
    writeFileSync(tmp, JSON.stringify(Object.fromEntries(auths)), { mode: 0o600 });
    renameSync(tmp, authPath);
  };
  // Logins that came with tasks' services (--with-registry-auth), by registry, for the pulls of those tasks.
  const taskAuths = new Map<string, { username: string; password: string }>();
  const images: ImageStore = new ImageStore({
    auth: (host) => auths.get(host) ?? taskAuths.get(host) ?? null,
    rootDir: join(opts.dataDir, 'images'),
    registryMirrors: opts.registryMirrors,
    insecureRegistries: opts.insecureRegistries,
    logger: log.child({ component: 'images' }),
    // An image is in use while a container this node holds was made from it (remove refuses, unless forced).
    inUse: (digest) => [...(agent?.imagesInUse() ?? [])].some((ref) => images.has(ref) && images.inspect(ref).manifestDigest === digest),
  });
  const why = runcUnavailableReason();
  if (opts.runtime === 'runc' && why !== null) throw new DaemonError('invalid_config', `--runtime runc: ${why}`);
  let runtime: Runtime;
  if (opts.runtime === 'process' || why !== null) {
    if (opts.runtime === 'auto') {
      log.warn({ reason: why }, 'containers are not available, so tasks run as plain processes (no image, no isolation, no limits): run the daemon as root on Linux with runc and conmon installed');
    }
    runtime = new ProcessRuntime({ rootDir: join(opts.dataDir, 'runtime'), logger: log.child({ component: 'runtime' }) });
  } else {
    // The runtime's image provider hands a task's registry login (if its service carries one) to the store's auth.
    const provider = {
      ensure: (reference: string, o: { signal?: AbortSignal; credentials?: { username: string; password: string } | null } = {}) => {
        if (o.credentials !== undefined && o.credentials !== null) taskAuths.set(parseReference(reference).registry, o.credentials);
        return images.ensure(reference, o.signal === undefined ? {} : { signal: o.signal });
      },
    };
    const runc = new RuncRuntime({ rootDir: join(opts.dataDir, 'runc'), images: provider, volumes, logger: log.child({ component: 'runtime' }) });
    // Containers an earlier run left: running ones are adopted, ended ones report their exit, half-made ones go.
    await runc.recover();
    runtime = runc;
  }
  const adoptable = await runtime.list();
  let overlay: OverlayDriver | null = null;
  if (runtime instanceof RuncRuntime) {
    overlay = new OverlayDriver({ stateDir: join(opts.dataDir, 'net'), logger: log.child({ component: 'netdriver' }) });
    // The network namespaces of containers still there are kept (their tasks may be adopted); the rest go.
    await overlay.recover(new Set(adoptable));
  } else {
    log.warn('overlay networks are not wired on this node (no runc): tasks share the host network, and their network attachments are addresses only');
  }
  return {
    runtime,
    volumes,
    images,
    overlay,
    async login(host, creds) {
      await images.registry.checkLogin(host, creds);
      auths.set(host, { username: creds.username, password: creds.password });
      saveAuths();
    },
    credentials: (host) => auths.get(host) ?? null,
    logout(host) {
      const had = auths.delete(host);
      if (had) saveAuths();
      return had;
    },
    resolveImage: async (reference) => {
      const ref = parseReference(reference);
      const digest = await images.registry.resolve(ref);
      return familiarReference({ ...ref, digest });
    },
    agentFor(nodeId, report, logger) {
      const a = new Agent({ nodeId, runtime, report, logger, networking: overlay });
      // Containers an earlier run left are the first agent's to take over; later memberships start empty.
      a.adopt(agent === null ? adoptable : []);
      agent = a;
      return {
        nodeId,
        setAssignments: (tasks, files) => a.setAssignments(tasks, files),
        setIngress: (ingress) => a.setIngress(ingress),
        statuses: () => a.statuses(),
        logs: (taskId, o) => a.logs(taskId, o),
        close: async () => {
          await a.close();
          await a.stopAll();
        },
      };
    },
    async close() {
      overlay?.close();
      await runtime.close();
    },
  };
}
