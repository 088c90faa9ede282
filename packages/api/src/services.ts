// Services and tasks in Docker's Engine API shapes: the ServiceSpec a client sends (checked by JSON schema, then
// converted to the store's spec with durations from nanoseconds to ms), and the Service and Task documents.

import { defaultUpdateConfig, fileTargetPath, isUlimitName, LB_STRATEGIES, ULIMIT_NAMES, checkUlimit, type Ulimit, type LbStrategy, type ConfigReference, type SecretReference, type FileTarget, type EndpointSpec, type HealthConfig, type Mount, type Placement, type PortConfig, type RestartPolicy, type Service, type ServiceSpec, type Task, type TaskSpec, type UpdateConfig } from '@swarm/store';
import { ApiError } from './errors.js';

export { checkUlimit, isUlimitName, LB_STRATEGIES, ULIMIT_NAMES, type LbStrategy };

const NS_PER_MS = 1_000_000;

/** Docker's ServiceSpec as `service create` sends it (the fields we implement; unknown ones are refused). */
export interface ServiceSpecDocument {
  Name?: string;
  Labels?: Record<string, string>;
  TaskTemplate: {
    ContainerSpec: {
      Image: string;
      Command?: string[];
      Args?: string[];
      Env?: string[];
      Dir?: string;
      User?: string;
      Labels?: Record<string, string>;
      Hostname?: string;
      StopSignal?: string;
      /** Nanoseconds. */
      StopGracePeriod?: number;
      Healthcheck?: HealthcheckDocument;
      Mounts?: MountDocument[];
      Init?: boolean;
      ReadOnly?: boolean;
      CapabilityAdd?: string[];
      CapabilityDrop?: string[];
      /** Secrets as files in the containers: SecretName (or SecretID) names it; the daemon resolves the other. */
      Secrets?: SecretReferenceDocument[];
      Configs?: ConfigReferenceDocument[];
      /** Resource limits of the task's processes (Docker's --ulimit); -1 is unlimited. */
      Ulimits?: UlimitDocument[];
    };
    Resources?: { Limits?: ResourcesDocument; Reservations?: ResourcesDocument };
    RestartPolicy?: { Condition?: 'none' | 'on-failure' | 'any'; Delay?: number; MaxAttempts?: number; Window?: number };
    Placement?: { Constraints?: string[]; Preferences?: Array<{ Spread: { SpreadDescriptor: string } }>; MaxReplicas?: number };
    /** Overlay networks: Target is a network id, name or unique id prefix; the service stores the id. */
    Networks?: NetworkAttachmentDocument[];
    ForceUpdate?: number;
  };
  /** Deprecated in Docker's API in favour of TaskTemplate.Networks; still taken, as Docker does. */
  Networks?: NetworkAttachmentDocument[];
  Mode?: { Replicated?: { Replicas?: number }; Global?: Record<string, never> };
  UpdateConfig?: UpdateConfigDocument;
  RollbackConfig?: UpdateConfigDocument;
  /** How the service is reached: a virtual IP (vip, the default) or DNS round robin (dnsrr), and published ports. */
  EndpointSpec?: EndpointSpecDocument;
}

/** Docker's Ulimit: Name is one of ULIMIT_NAMES; Soft <= Hard; -1 is unlimited. */
export interface UlimitDocument {
  Name: string;
  Soft: number;
  Hard: number;
}

/** Docker's File of a secret or config reference: the file's name (or absolute path), owner and mode. */
export interface FileTargetDocument {
  Name?: string;
  UID?: string;
  GID?: string;
  /** Permission bits (Docker's JSON carries them as a decimal number: 0444 is 292). */
  Mode?: number;
}

/** Docker's SecretReference; File.Name defaults to the secret's name (under /run/secrets/). */
export interface SecretReferenceDocument {
  File?: FileTargetDocument;
  SecretID?: string;
  SecretName: string;
}

/** Docker's ConfigReference; File.Name defaults to `/` + the config's name. */
export interface ConfigReferenceDocument {
  File?: FileTargetDocument;
  ConfigID?: string;
  ConfigName: string;
}

export interface EndpointSpecDocument {
  Mode?: 'vip' | 'dnsrr';
  Ports?: PortConfigDocument[];
  /** Ours, not Docker's: how connections are spread over the tasks (VIP and routing mesh); round-robin by default. */
  LbStrategy?: LbStrategy;
}

/**
 * Docker's PortConfig: TargetPort is the port inside the tasks; PublishedPort 0 (or absent) in ingress mode lets the
 * leader pick one from 30000-32767; host mode publishes on the nodes that run a task.
 */
export interface PortConfigDocument {
  Name?: string;
  Protocol?: 'tcp' | 'udp' | 'sctp';
  TargetPort: number;
  PublishedPort?: number;
  PublishMode?: 'ingress' | 'host';
}

/** Docker's NetworkAttachmentConfig (without DriverOpts). */
export interface NetworkAttachmentDocument {
  Target: string;
  Aliases?: string[];
}

/** Docker's HealthConfig: Test is ["NONE"], ["CMD", arg...] or ["CMD-SHELL", command]; times in ns. */
export interface HealthcheckDocument {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  Retries?: number;
}

export interface ResourcesDocument {
  NanoCPUs?: number;
  MemoryBytes?: number;
  /** Limits only: the most processes a task may hold; 0 means unlimited. */
  Pids?: number;
}

/** Docker's mount: Source is a host path (bind), a volume name (volume), absent (tmpfs). */
export interface MountDocument {
  Type: 'bind' | 'volume' | 'tmpfs';
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  TmpfsOptions?: { SizeBytes?: number };
}

export interface UpdateConfigDocument {
  Parallelism?: number;
  Delay?: number;
  FailureAction?: 'pause' | 'continue' | 'rollback';
  Monitor?: number;
  MaxFailureRatio?: number;
  Order?: 'stop-first' | 'start-first';
}

export interface ServiceDocument {
  ID: string;
  Version: { Index: number };
  CreatedAt: string;
  UpdatedAt: string;
  Spec: Required<Pick<ServiceSpecDocument, 'Name' | 'Labels' | 'TaskTemplate' | 'Mode' | 'EndpointSpec'>> & Pick<ServiceSpecDocument, 'UpdateConfig' | 'RollbackConfig'>;
  PreviousSpec?: ServiceDocument['Spec'];
  Endpoint: {
    /** The endpoint spec the ports below were allocated from. */
    Spec: EndpointSpecDocument;
    /** As allocated: PublishedPort filled in where the spec left it 0 (ingress mode). */
    Ports?: Array<Required<Omit<PortConfigDocument, 'Name'>> & Pick<PortConfigDocument, 'Name'>>;
    /** One per network the service attaches to in vip mode (Docker's field names). */
    VirtualIPs?: Array<{ NetworkID: string; Addr: string }>;
  };
  UpdateStatus?: { State: string; StartedAt: string; CompletedAt?: string; Message: string };
  /** With `?status=true`, as Docker: tasks running and desired. */
  ServiceStatus?: { RunningTasks: number; DesiredTasks: number; CompletedTasks: number };
}

export interface TaskDocument {
  ID: string;
  Version: { Index: number };
  CreatedAt: string;
  UpdatedAt: string;
  Labels: Record<string, string>;
  Spec: ServiceSpecDocument['TaskTemplate'];
  ServiceID: string;
  /** Docker's task name: service.slot (replicated) or service.node-id (global). */
  Name: string;
  Slot?: number;
  NodeID?: string;
  Status: {
    Timestamp: string;
    State: string;
    Message: string;
    Err?: string;
    ContainerStatus?: { ContainerID: string; PID: number; ExitCode: number };
    /** The host-mode ports the task holds on its node while it runs. */
    PortStatus?: { Ports: Array<Required<Omit<PortConfigDocument, 'Name'>> & Pick<PortConfigDocument, 'Name'>> };
  };
  DesiredState: string;
  /** The task's addresses on its overlay networks, once the allocator gave them (Docker's shape, abridged). */
  NetworksAttachments?: Array<{
    Network: { ID: string; Spec: { Name: string; Internal: boolean; Ingress: boolean } };
    Addresses: string[];
    Aliases?: string[];
  }>;
}

// ---------------------------------------------------------------- schema

const stringMap = { type: 'object', maxProperties: 256, additionalProperties: { type: 'string', maxLength: 4096 } } as const;
const stringList = (maxItems: number) => ({ type: 'array', maxItems, items: { type: 'string', maxLength: 4096 } }) as const;
const nonNegative = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;
const resources = { type: 'object', additionalProperties: false, properties: { NanoCPUs: nonNegative, MemoryBytes: nonNegative, Pids: nonNegative } } as const;
const networkAttachments = {
  type: 'array',
  maxItems: 64,
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['Target'],
    properties: {
      Target: { type: 'string', minLength: 1, maxLength: 256 },
      Aliases: { type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 253, pattern: '^[^\\s,]+$' } },
    },
  },
} as const;
/** Published ports of one service; a bound, as every list the API takes has one. */
export const MAX_PORTS = 256;
const portNumber = { type: 'integer', minimum: 1, maximum: 65535 } as const;
const endpointSpec = {
  type: 'object',
  additionalProperties: false,
  properties: {
    Mode: { type: 'string', enum: ['vip', 'dnsrr'] },
    LbStrategy: { type: 'string', enum: LB_STRATEGIES },
    Ports: {
      type: 'array',
      maxItems: MAX_PORTS,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['TargetPort'],
        properties: {
          Name: { type: 'string', maxLength: 256 },
          Protocol: { type: 'string', enum: ['tcp', 'udp', 'sctp'] },
          TargetPort: portNumber,
          PublishedPort: { type: 'integer', minimum: 0, maximum: 65535 },
          PublishMode: { type: 'string', enum: ['ingress', 'host'] },
        },
      },
    },
  },
} as const;
const capabilityList = { type: 'array', maxItems: 64, items: { type: 'string', pattern: '^[A-Za-z_]+$', maxLength: 64 } } as const;
const mount = {
  type: 'object',
  additionalProperties: false,
  required: ['Type', 'Target'],
  properties: {
    Type: { type: 'string', enum: ['bind', 'volume', 'tmpfs'] },
    Source: { type: 'string', maxLength: 4096 },
    Target: { type: 'string', pattern: '^/', maxLength: 4096 },
    ReadOnly: { type: 'boolean' },
    TmpfsOptions: { type: 'object', additionalProperties: false, properties: { SizeBytes: nonNegative } },
  },
} as const;
/** Docker's default mode of a secret or config file: readable by all, writable by none. */
export const DEFAULT_FILE_MODE = 0o444;
const fileTarget = {
  type: 'object',
  additionalProperties: false,
  properties: {
    Name: { type: 'string', minLength: 1, maxLength: 4096 },
    UID: { type: 'string', pattern: '^[0-9]{1,10}$' },
    GID: { type: 'string', pattern: '^[0-9]{1,10}$' },
    Mode: { type: 'integer', minimum: 0, maximum: 0o777 },
  },
} as const;
const fileRefs = (kind: 'Secret' | 'Config') =>
  ({
    type: 'array',
    maxItems: 256,
    items: {
      type: 'object',
      additionalProperties: false,
      required: [`${kind}Name`],
      properties: {
        File: fileTarget,
        [`${kind}ID`]: { type: 'string', maxLength: 256 },
        [`${kind}Name`]: { type: 'string', minLength: 1, maxLength: 256 },
      },
    },
  }) as const;
/** A ulimit's value: a whole number, or -1 for unlimited (the rest is checked by name in toUlimits). */
const ulimitValue = { type: 'integer', minimum: -1, maximum: Number.MAX_SAFE_INTEGER } as const;
const ulimits = {
  type: 'array',
  maxItems: ULIMIT_NAMES.length,
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['Name', 'Soft', 'Hard'],
    properties: { Name: { type: 'string', maxLength: 64 }, Soft: ulimitValue, Hard: ulimitValue },
  },
} as const;
const updateConfig = {
  type: 'object',
  additionalProperties: false,
  properties: {
    Parallelism: nonNegative,
    Delay: nonNegative,
    FailureAction: { type: 'string', enum: ['pause', 'continue', 'rollback'] },
    Monitor: nonNegative,
    MaxFailureRatio: { type: 'number', minimum: 0, maximum: 1 },
    Order: { type: 'string', enum: ['stop-first', 'start-first'] },
  },
} as const;

/** Names as Docker takes them: letters, digits, '-', '_' and '.', starting with a letter or digit; at most 63. */
export const SERVICE_NAME_PATTERN = '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$';
/** One service's replicas; a bound so that a typo (1e9) is an error rather than a billion tasks. */
export const MAX_REPLICAS = 100_000;

export const serviceSpecSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['TaskTemplate'],
  properties: {
    Name: { type: 'string', pattern: SERVICE_NAME_PATTERN },
    Labels: stringMap,
    TaskTemplate: {
      type: 'object',
      additionalProperties: false,
      required: ['ContainerSpec'],
      properties: {
        ContainerSpec: {
          type: 'object',
          additionalProperties: false,
          required: ['Image'],
          properties: {
            Image: { type: 'string', minLength: 1, maxLength: 1024 },
            Command: stringList(1024),
            Args: stringList(1024),
            Env: { type: 'array', maxItems: 1024, items: { type: 'string', pattern: '^[^=]+=', maxLength: 65536 } },
            Dir: { type: 'string', maxLength: 4096 },
            User: { type: 'string', maxLength: 256 },
            Labels: stringMap,
            Hostname: { type: 'string', maxLength: 253 },
            StopSignal: { type: 'string', pattern: '^(SIG)?[A-Z0-9]+$' },
            StopGracePeriod: nonNegative,
            Healthcheck: {
              type: 'object',
              additionalProperties: false,
              properties: {
                Test: stringList(1024),
                Interval: nonNegative,
                Timeout: nonNegative,
                StartPeriod: nonNegative,
                Retries: nonNegative,
              },
            },
            Mounts: { type: 'array', maxItems: 64, items: mount },
            Init: { type: 'boolean' },
            ReadOnly: { type: 'boolean' },
            CapabilityAdd: capabilityList,
            CapabilityDrop: capabilityList,
            Secrets: fileRefs('Secret'),
            Configs: fileRefs('Config'),
            Ulimits: ulimits,
          },
        },
        Resources: { type: 'object', additionalProperties: false, properties: { Limits: resources, Reservations: resources } },
        RestartPolicy: {
          type: 'object',
          additionalProperties: false,
          properties: {
            Condition: { type: 'string', enum: ['none', 'on-failure', 'any'] },
            Delay: nonNegative,
            MaxAttempts: nonNegative,
            Window: nonNegative,
          },
        },
        Placement: {
          type: 'object',
          additionalProperties: false,
          properties: {
            Constraints: stringList(64),
            Preferences: {
              type: 'array',
              maxItems: 16,
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['Spread'],
                properties: { Spread: { type: 'object', additionalProperties: false, required: ['SpreadDescriptor'], properties: { SpreadDescriptor: { type: 'string', minLength: 1, maxLength: 1024 } } } },
              },
            },
            MaxReplicas: nonNegative,
          },
        },
        Networks: networkAttachments,
        ForceUpdate: nonNegative,
      },
    },
    Networks: networkAttachments,
    Mode: {
      type: 'object',
      additionalProperties: false,
      maxProperties: 1,
      properties: {
        Replicated: { type: 'object', additionalProperties: false, properties: { Replicas: { type: 'integer', minimum: 0, maximum: MAX_REPLICAS } } },
        Global: { type: 'object', additionalProperties: false, maxProperties: 0 },
      },
    },
    UpdateConfig: updateConfig,
    RollbackConfig: updateConfig,
    EndpointSpec: endpointSpec,
  },
} as const;

// ---------------------------------------------------------------- conversion

const ms = (ns: number | undefined, fallbackMs: number): number => (ns === undefined ? fallbackMs : Math.round(ns / NS_PER_MS));
const ns = (valueMs: number): number => valueMs * NS_PER_MS;

function toUpdateConfig(doc: UpdateConfigDocument | undefined): UpdateConfig {
  const d = defaultUpdateConfig();
  if (doc === undefined) return d;
  return {
    parallelism: doc.Parallelism ?? d.parallelism,
    delayMs: ms(doc.Delay, d.delayMs),
    failureAction: doc.FailureAction ?? d.failureAction,
    monitorMs: ms(doc.Monitor, d.monitorMs),
    maxFailureRatio: doc.MaxFailureRatio ?? d.maxFailureRatio,
    order: doc.Order ?? d.order,
  };
}

function fromUpdateConfig(c: UpdateConfig): UpdateConfigDocument {
  return { Parallelism: c.parallelism, Delay: ns(c.delayMs), FailureAction: c.failureAction, Monitor: ns(c.monitorMs), MaxFailureRatio: c.maxFailureRatio, Order: c.order };
}

/**
 * A checked Docker ServiceSpec -> the store's spec. `name` is the name to use when the spec has none (Docker
 * generates one). Semantic checks the schema cannot express throw ApiError('invalid_argument') naming the field.
 */
export function toServiceSpec(doc: ServiceSpecDocument, name: string): ServiceSpec {
  const t = doc.TaskTemplate;
  const c = t.ContainerSpec;
  if (doc.Mode?.Replicated !== undefined && doc.Mode.Global !== undefined) {
    throw new ApiError('invalid_argument', 'Mode: give Replicated or Global, not both');
  }
  const restart: RestartPolicy = {
    condition: t.RestartPolicy?.Condition ?? 'any',
    delayMs: ms(t.RestartPolicy?.Delay, 5_000),
    maxAttempts: t.RestartPolicy?.MaxAttempts ?? 0,
    windowMs: ms(t.RestartPolicy?.Window, 0),
  };
  const placement: Placement = {
    constraints: [...(t.Placement?.Constraints ?? [])],
    preferences: (t.Placement?.Preferences ?? []).map((p) => ({ spread: p.Spread.SpreadDescriptor })),
    maxReplicas: t.Placement?.MaxReplicas ?? 0,
    platforms: [],
  };
  if ((doc.Networks ?? []).length > 0 && (t.Networks ?? []).length > 0) {
    throw new ApiError('invalid_argument', 'Networks: give the networks in TaskTemplate.Networks only (the top-level Networks is deprecated)');
  }
  const networks = (t.Networks ?? doc.Networks ?? []).map((n) => ({ target: n.Target, aliases: [...(n.Aliases ?? [])] }));
  const { secrets, configs } = toFileReferences(c.Secrets ?? [], c.Configs ?? []);
  const taskTemplate: TaskSpec = {
    containerSpec: {
      image: c.Image,
      command: [...(c.Command ?? [])],
      args: [...(c.Args ?? [])],
      env: [...(c.Env ?? [])],
      user: c.User ?? '',
      dir: c.Dir ?? '',
      labels: { ...(c.Labels ?? {}) },
      hostname: c.Hostname ?? '',
      tty: false,
      stopSignal: c.StopSignal ?? '',
      stopGracePeriodMs: ms(c.StopGracePeriod, 10_000),
      healthcheck: toHealthConfig(c.Healthcheck),
      secrets,
      configs,
      mounts: toMounts(c.Mounts ?? []),
      init: c.Init ?? false,
      readOnly: c.ReadOnly ?? false,
      capabilityAdd: [...(c.CapabilityAdd ?? [])],
      capabilityDrop: [...(c.CapabilityDrop ?? [])],
      pidsLimit: t.Resources?.Limits?.Pids ?? 0,
      ...ulimitsField(c.Ulimits ?? []),
      registryAuth: null,
    },
    resources: {
      limits: { nanoCpus: t.Resources?.Limits?.NanoCPUs ?? 0, memoryBytes: t.Resources?.Limits?.MemoryBytes ?? 0 },
      reservations: { nanoCpus: t.Resources?.Reservations?.NanoCPUs ?? 0, memoryBytes: t.Resources?.Reservations?.MemoryBytes ?? 0 },
    },
    restartPolicy: restart,
    placement,
    networks,
    forceUpdate: t.ForceUpdate ?? 0,
  };
  return {
    name: doc.Name ?? name,
    labels: { ...(doc.Labels ?? {}) },
    taskTemplate,
    mode: doc.Mode?.Global !== undefined ? { global: {} } : { replicated: { replicas: doc.Mode?.Replicated?.Replicas ?? 1 } },
    updateConfig: toUpdateConfig(doc.UpdateConfig),
    rollbackConfig: toUpdateConfig(doc.RollbackConfig),
    endpointSpec: toEndpointSpec(doc.EndpointSpec),
  };
}

/**
 * Docker's checks of Ulimits: a known name, given once, whole numbers (-1 for unlimited), soft <= hard. The field
 * is only there when there is a ulimit (absent means none, as in specs stored before it existed).
 */
function ulimitsField(docs: readonly UlimitDocument[]): { ulimits?: Ulimit[] } {
  const seen = new Map<string, number>();
  const out = docs.map((d, i): Ulimit => {
    const field = `TaskTemplate.ContainerSpec.Ulimits[${i}]`;
    const checked = checkUlimit(d.Name, d.Soft, d.Hard);
    if (!checked.ok) throw new ApiError('invalid_argument', `${field}.${capitalized(checked.part)}: ${checked.message}`);
    const first = seen.get(d.Name);
    if (first !== undefined) throw new ApiError('invalid_argument', `${field}.Name: ulimit ${d.Name} is also given by Ulimits[${first}]`);
    seen.set(d.Name, i);
    return checked.ulimit;
  });
  return out.length > 0 ? { ulimits: out } : {};
}

const capitalized = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

const isPort = (n: number, min: number): boolean => Number.isInteger(n) && n >= min && n <= 65535;

/**
 * Docker's EndpointSpec with its defaults (vip; tcp, ingress) and SwarmKit's checks: ports in range, no ingress
 * port in dnsrr mode (the routing mesh needs a virtual IP), and no published port + protocol given twice.
 */
export function toEndpointSpec(doc: EndpointSpecDocument | undefined): EndpointSpec {
  const mode = doc?.Mode ?? 'vip';
  const docs = doc?.Ports ?? [];
  if (doc?.LbStrategy !== undefined && !LB_STRATEGIES.includes(doc.LbStrategy)) {
    throw new ApiError('invalid_argument', `EndpointSpec.LbStrategy: ${JSON.stringify(doc.LbStrategy)} is not one of ${LB_STRATEGIES.join(', ')}`);
  }
  if (docs.length > MAX_PORTS) throw new ApiError('invalid_argument', `EndpointSpec.Ports: at most ${MAX_PORTS} ports`);
  const published = new Map<string, number>();
  const ports = docs.map((p, i): PortConfig => {
    const field = `EndpointSpec.Ports[${i}]`;
    if (!isPort(p.TargetPort, 1)) throw new ApiError('invalid_argument', `${field}.TargetPort: ${JSON.stringify(p.TargetPort)} is not a port (1-65535)`);
    const publishedPort = p.PublishedPort ?? 0;
    if (!isPort(publishedPort, 0)) throw new ApiError('invalid_argument', `${field}.PublishedPort: ${JSON.stringify(publishedPort)} is not a port (1-65535, or 0 to have one picked)`);
    const port: PortConfig = { name: p.Name ?? '', protocol: p.Protocol ?? 'tcp', targetPort: p.TargetPort, publishedPort, publishMode: p.PublishMode ?? 'ingress' };
    if (mode === 'dnsrr' && port.publishMode === 'ingress') {
      throw new ApiError('invalid_argument', `${field}.PublishMode: port published with ingress mode can't be used with dnsrr mode (publish it in host mode, or use endpoint mode vip)`);
    }
    if (publishedPort !== 0) {
      const key = `${publishedPort}/${port.protocol}`;
      const first = published.get(key);
      if (first !== undefined) throw new ApiError('invalid_argument', `${field}.PublishedPort: port ${key} is already published by EndpointSpec.Ports[${first}]`);
      published.set(key, i);
    }
    return port;
  });
  return { mode, ports, ...(doc?.LbStrategy !== undefined ? { lbStrategy: doc.LbStrategy } : {}) };
}

function endpointSpecDocument(e: EndpointSpec): EndpointSpecDocument {
  const doc: EndpointSpecDocument = { Mode: e.mode, ...(e.lbStrategy !== undefined ? { LbStrategy: e.lbStrategy } : {}) };
  if (e.ports.length > 0) {
    doc.Ports = e.ports.map((p) => ({
      ...(p.name !== '' ? { Name: p.name } : {}),
      Protocol: p.protocol,
      TargetPort: p.targetPort,
      ...(p.publishedPort !== 0 ? { PublishedPort: p.publishedPort } : {}),
      PublishMode: p.publishMode,
    }));
  }
  return doc;
}

function toMounts(docs: readonly MountDocument[]): Mount[] {
  const seen = new Set<string>();
  return docs.map((d, i) => {
    const m = toMount(d, i);
    const target = m.target.replace(/\/+$/, '') || '/';
    if (seen.has(target)) throw new ApiError('invalid_argument', `TaskTemplate.ContainerSpec.Mounts[${i}].Target: ${target} is mounted twice`);
    seen.add(target);
    return m;
  });
}

/** Docker's rules: a bind needs an absolute host path, a volume a name, a tmpfs no source; targets are unique. */
function toMount(m: MountDocument, i: number): Mount {
  const field = `TaskTemplate.ContainerSpec.Mounts[${i}]`;
  const source = m.Source ?? '';
  if (m.Type === 'bind' && !source.startsWith('/')) throw new ApiError('invalid_argument', `${field}.Source: a bind mount needs an absolute host path, got ${JSON.stringify(source)}`);
  if (m.Type === 'volume' && source !== '' && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(source)) {
    throw new ApiError('invalid_argument', `${field}.Source: ${JSON.stringify(source)} is not a volume name (letters, digits, _ . -)`);
  }
  if (m.Type === 'volume' && source === '') throw new ApiError('invalid_argument', `${field}.Source: a volume mount needs a volume name (anonymous volumes are not supported)`);
  if (m.Type === 'tmpfs' && source !== '') throw new ApiError('invalid_argument', `${field}.Source: a tmpfs mount takes no source`);
  if (m.TmpfsOptions !== undefined && m.Type !== 'tmpfs') throw new ApiError('invalid_argument', `${field}.TmpfsOptions: only for Type tmpfs`);
  return { type: m.Type, source, target: m.Target, readOnly: m.ReadOnly ?? false, tmpfsSizeBytes: m.TmpfsOptions?.SizeBytes ?? 0 };
}

function toFileTarget(doc: FileTargetDocument | undefined, name: string, field: string): FileTarget {
  const target = doc?.Name ?? name;
  const parts = target.split('/');
  if (target === '' || target === '/' || target.endsWith('/') || target.includes('\0') || parts.some((p) => p === '..' || p === '.')) {
    throw new ApiError('invalid_argument', `${field}.File.Name: ${JSON.stringify(target)} is not a file name or absolute file path`);
  }
  return { target, uid: doc?.UID ?? '0', gid: doc?.GID ?? '0', mode: doc?.Mode ?? DEFAULT_FILE_MODE };
}

/**
 * Docker's checks: a secret or config is given once per service, and no two files share a path in the container.
 * Ids are what the user gave (usually none): the daemon resolves names to ids.
 */
function toFileReferences(secretDocs: readonly SecretReferenceDocument[], configDocs: readonly ConfigReferenceDocument[]): { secrets: SecretReference[]; configs: ConfigReference[] } {
  const paths = new Map<string, string>();
  const claim = (path: string, field: string): void => {
    const other = paths.get(path);
    if (other !== undefined) throw new ApiError('invalid_argument', `${field}.File.Name: ${path} is also the target of ${other}`);
    paths.set(path, field);
  };
  const secretNames = new Set<string>();
  const secrets = secretDocs.map((d, i): SecretReference => {
    const field = `TaskTemplate.ContainerSpec.Secrets[${i}]`;
    if (secretNames.has(d.SecretName)) throw new ApiError('invalid_argument', `${field}.SecretName: secret ${d.SecretName} is given twice`);
    secretNames.add(d.SecretName);
    const file = toFileTarget(d.File, d.SecretName, field);
    claim(fileTargetPath('secret', file.target), field);
    return { secretId: d.SecretID ?? '', secretName: d.SecretName, ...file };
  });
  const configNames = new Set<string>();
  const configs = configDocs.map((d, i): ConfigReference => {
    const field = `TaskTemplate.ContainerSpec.Configs[${i}]`;
    if (configNames.has(d.ConfigName)) throw new ApiError('invalid_argument', `${field}.ConfigName: config ${d.ConfigName} is given twice`);
    configNames.add(d.ConfigName);
    const file = toFileTarget(d.File, d.ConfigName, field);
    claim(fileTargetPath('config', file.target), field);
    return { configId: d.ConfigID ?? '', configName: d.ConfigName, ...file };
  });
  return { secrets, configs };
}

const fileTargetDocument = (f: FileTarget): Required<FileTargetDocument> => ({ Name: f.target, UID: f.uid, GID: f.gid, Mode: f.mode });

function mountDocument(m: Mount): MountDocument {
  const d: MountDocument = { Type: m.type, Target: m.target };
  if (m.source !== '') d.Source = m.source;
  if (m.readOnly) d.ReadOnly = true;
  if (m.tmpfsSizeBytes > 0) d.TmpfsOptions = { SizeBytes: m.tmpfsSizeBytes };
  return d;
}

/** Docker checks the test's form the same way: NONE alone, CMD with a command, CMD-SHELL with one string. */
function toHealthConfig(h: HealthcheckDocument | undefined): HealthConfig | null {
  if (h === undefined) return null;
  const test = [...(h.Test ?? [])];
  const [kind, ...rest] = test;
  if (kind !== undefined) {
    const ok = (kind === 'NONE' && rest.length === 0) || (kind === 'CMD' && rest.length > 0) || (kind === 'CMD-SHELL' && rest.length === 1);
    if (!ok) throw new ApiError('invalid_argument', `TaskTemplate.ContainerSpec.Healthcheck.Test: ${JSON.stringify(test)} is not ["NONE"], ["CMD", command, args...] or ["CMD-SHELL", command]`);
  }
  return { test, intervalMs: ms(h.Interval, 0), timeoutMs: ms(h.Timeout, 0), startPeriodMs: ms(h.StartPeriod, 0), retries: h.Retries ?? 0 };
}

function healthcheckDocument(h: HealthConfig): HealthcheckDocument {
  return { Test: [...h.test], Interval: ns(h.intervalMs), Timeout: ns(h.timeoutMs), StartPeriod: ns(h.startPeriodMs), Retries: h.retries };
}

function taskTemplateDocument(t: TaskSpec): ServiceSpecDocument['TaskTemplate'] {
  const c = t.containerSpec;
  const container: ServiceSpecDocument['TaskTemplate']['ContainerSpec'] = { Image: c.image };
  if (c.command.length > 0) container.Command = [...c.command];
  if (c.args.length > 0) container.Args = [...c.args];
  if (c.env.length > 0) container.Env = [...c.env];
  if (c.dir !== '') container.Dir = c.dir;
  if (c.user !== '') container.User = c.user;
  if (Object.keys(c.labels).length > 0) container.Labels = { ...c.labels };
  if (c.hostname !== '') container.Hostname = c.hostname;
  if (c.stopSignal !== '') container.StopSignal = c.stopSignal;
  container.StopGracePeriod = ns(c.stopGracePeriodMs);
  if (c.healthcheck !== null) container.Healthcheck = healthcheckDocument(c.healthcheck);
  if (c.mounts.length > 0) container.Mounts = c.mounts.map(mountDocument);
  if (c.init) container.Init = true;
  if (c.readOnly) container.ReadOnly = true;
  if (c.capabilityAdd.length > 0) container.CapabilityAdd = [...c.capabilityAdd];
  if (c.capabilityDrop.length > 0) container.CapabilityDrop = [...c.capabilityDrop];
  // Docker's field order: File, SecretID, SecretName.
  if (c.secrets.length > 0) container.Secrets = c.secrets.map((r) => ({ File: fileTargetDocument(r), SecretID: r.secretId, SecretName: r.secretName }));
  if (c.configs.length > 0) container.Configs = c.configs.map((r) => ({ File: fileTargetDocument(r), ConfigID: r.configId, ConfigName: r.configName }));
  if ((c.ulimits ?? []).length > 0) container.Ulimits = (c.ulimits ?? []).map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard }));
  const limits: ResourcesDocument = { NanoCPUs: t.resources.limits.nanoCpus, MemoryBytes: t.resources.limits.memoryBytes };
  if (c.pidsLimit > 0) limits.Pids = c.pidsLimit;
  return {
    ContainerSpec: container,
    Resources: {
      Limits: limits,
      Reservations: { NanoCPUs: t.resources.reservations.nanoCpus, MemoryBytes: t.resources.reservations.memoryBytes },
    },
    RestartPolicy: {
      Condition: t.restartPolicy.condition,
      Delay: ns(t.restartPolicy.delayMs),
      MaxAttempts: t.restartPolicy.maxAttempts,
      Window: ns(t.restartPolicy.windowMs),
    },
    Placement: {
      Constraints: [...t.placement.constraints],
      Preferences: t.placement.preferences.map((p) => ({ Spread: { SpreadDescriptor: p.spread } })),
      MaxReplicas: t.placement.maxReplicas,
    },
    ...(t.networks.length > 0 ? { Networks: t.networks.map((n) => ({ Target: n.target, ...(n.aliases.length > 0 ? { Aliases: [...n.aliases] } : {}) })) } : {}),
    ForceUpdate: t.forceUpdate,
  };
}

/** The store's spec as Docker's document: what `service inspect` shows, and what a client sends back to create or update. */
export function specDocument(s: ServiceSpec): ServiceDocument['Spec'] {
  const spec: ServiceDocument['Spec'] = {
    Name: s.name,
    Labels: { ...s.labels },
    TaskTemplate: taskTemplateDocument(s.taskTemplate),
    Mode: s.mode.global !== undefined ? { Global: {} } : { Replicated: { Replicas: s.mode.replicated.replicas } },
    EndpointSpec: endpointSpecDocument(s.endpointSpec),
  };
  if (s.updateConfig !== null) spec.UpdateConfig = fromUpdateConfig(s.updateConfig);
  if (s.rollbackConfig !== null) spec.RollbackConfig = fromUpdateConfig(s.rollbackConfig);
  return spec;
}

const time = (valueMs: number): string => new Date(valueMs).toISOString();

export function serviceDocument(service: Service, status?: ServiceDocument['ServiceStatus']): ServiceDocument {
  const doc: ServiceDocument = {
    ID: service.id,
    Version: { Index: service.meta.version.index },
    CreatedAt: time(service.meta.createdAtMs),
    UpdatedAt: time(service.meta.updatedAtMs),
    Spec: specDocument(service.spec),
    Endpoint: { Spec: endpointSpecDocument(service.endpoint.spec) },
  };
  if (service.previousSpec !== null) doc.PreviousSpec = specDocument(service.previousSpec);
  if (service.endpoint.virtualIps.length > 0) doc.Endpoint.VirtualIPs = service.endpoint.virtualIps.map((v) => ({ NetworkID: v.networkId, Addr: v.addr }));
  if (service.endpoint.ports.length > 0) {
    doc.Endpoint.Ports = service.endpoint.ports.map((p) => ({ ...(p.name !== '' ? { Name: p.name } : {}), Protocol: p.protocol, TargetPort: p.targetPort, PublishedPort: p.publishedPort, PublishMode: p.publishMode }));
  }
  const u = service.updateStatus;
  if (u !== null) {
    doc.UpdateStatus = { State: u.state, StartedAt: time(u.startedAtMs), Message: u.message };
    if (u.completedAtMs !== null) doc.UpdateStatus.CompletedAt = time(u.completedAtMs);
  }
  if (status !== undefined) doc.ServiceStatus = status;
  return doc;
}

export function taskDocument(task: Task): TaskDocument {
  const doc: TaskDocument = {
    ID: task.id,
    Version: { Index: task.meta.version.index },
    CreatedAt: time(task.meta.createdAtMs),
    UpdatedAt: time(task.meta.updatedAtMs),
    Labels: {},
    Spec: taskTemplateDocument(task.spec),
    ServiceID: task.serviceId,
    Name: task.slot > 0 ? `${task.serviceName}.${task.slot}` : `${task.serviceName}.${task.nodeId}`,
    Status: {
      Timestamp: time(task.status.timestampMs),
      State: task.status.state,
      Message: task.status.message,
    },
    DesiredState: task.desiredState,
  };
  if (task.slot > 0) doc.Slot = task.slot;
  if (task.nodeId !== '') doc.NodeID = task.nodeId;
  if (task.status.err !== '') doc.Status.Err = task.status.err;
  const cs = task.status.containerStatus;
  if (cs !== null) doc.Status.ContainerStatus = { ContainerID: cs.containerId, PID: cs.pid, ExitCode: cs.exitCode };
  if (task.status.portStatus.length > 0) {
    doc.Status.PortStatus = { Ports: task.status.portStatus.map((p) => ({ ...(p.name !== '' ? { Name: p.name } : {}), Protocol: p.protocol, TargetPort: p.targetPort, PublishedPort: p.publishedPort, PublishMode: p.publishMode })) };
  }
  if (task.networksAttachments.length > 0) {
    doc.NetworksAttachments = task.networksAttachments.map((a) => ({
      Network: { ID: a.networkId, Spec: { Name: a.network.name, Internal: a.network.internal, Ingress: a.network.ingress } },
      Addresses: [...a.addresses],
      ...(a.aliases.length > 0 ? { Aliases: [...a.aliases] } : {}),
    }));
  }
  return doc;
}

/** Docker's resolution for services: an exact id, then an exact name, then a unique id prefix. */
export function resolveService(services: readonly Service[], ref: string): Service {
  if (ref === '') throw new ApiError('invalid_argument', 'a service id, id prefix or name is needed');
  const exact = services.find((s) => s.id === ref) ?? services.find((s) => s.spec.name === ref);
  if (exact !== undefined) return exact;
  const prefixed = services.filter((s) => s.id.startsWith(ref));
  if (prefixed.length === 1 && prefixed[0] !== undefined) return prefixed[0];
  if (prefixed.length > 1) throw new ApiError('ambiguous', `service id prefix ${ref} matches ${prefixed.length} services: give more characters`);
  throw new ApiError('not_found', `service ${ref} not found`);
}

/** Running and desired task counts of a service (its tasks given), as `service ls` shows them. */
export function serviceStatus(service: Service, tasks: readonly Task[]): NonNullable<ServiceDocument['ServiceStatus']> {
  const own = tasks.filter((t) => t.serviceId === service.id);
  const running = own.filter((t) => t.status.state === 'running' && t.desiredState === 'running').length;
  const completed = own.filter((t) => t.status.state === 'complete').length;
  // A global service wants one task per eligible node: the orchestrator's running-desired tasks say how many.
  const desired = service.spec.mode.global !== undefined ? own.filter((t) => t.desiredState === 'running').length : service.spec.mode.replicated.replicas;
  return { RunningTasks: running, DesiredTasks: desired, CompletedTasks: completed };
}
