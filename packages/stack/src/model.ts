// The compose model after loading: interpolated, merged and validated against the Compose Specification schema.
// Field names are the compose file's own (snake_case), so an error can name the key the user wrote. Where the file
// format has a short and a long syntax, both stay here as a union: the converter normalises them.
// Values that interpolation may have turned into strings (`replicas: ${N}`) are typed `number | string`.

/** `KEY=value` items, or a map whose null values mean "take it from the environment" (environment, labels). */
export type ListOrDict = string[] | Record<string, string | number | boolean | null>;

/** Go's duration syntax as compose takes it: "10s", "1m30s", "500ms"; a bare number is seconds. */
export type ComposeDuration = string | number;

/** Docker's byte sizes: "512M", "1g", or a number of bytes. */
export type ComposeBytes = string | number;

/** A port: `80`, `"8080:80"`, `"8080:80/udp"`, `"9000-9002:9000-9002"`, `"127.0.0.1:8080:80"`, or the long form. */
export type ComposePort = number | string | ComposePortLong;

export interface ComposePortLong {
  target: number | string;
  published?: number | string;
  protocol?: string;
  mode?: string;
  host_ip?: string;
  name?: string;
  app_protocol?: string;
}

/** `"data:/var/lib/data:ro"`, `"./html:/usr/share/nginx/html"`, `"/tmp"`, or the long form. */
export type ComposeServiceVolume = string | ComposeServiceVolumeLong;

export interface ComposeServiceVolumeLong {
  type: string;
  source?: string;
  target?: string;
  read_only?: boolean;
  consistency?: string;
  bind?: { propagation?: string; create_host_path?: boolean; selinux?: string };
  volume?: { nocopy?: boolean; subpath?: string };
  tmpfs?: { size?: ComposeBytes; mode?: number | string };
}

/** A secret or config a service uses: its name, or the long form. */
export type ComposeFileReference = string | ComposeFileReferenceLong;

export interface ComposeFileReferenceLong {
  source: string;
  target?: string;
  uid?: string | number;
  gid?: string | number;
  mode?: number | string;
}

export interface ComposeServiceNetwork {
  aliases?: string[];
  ipv4_address?: string;
  ipv6_address?: string;
  link_local_ips?: string[];
  driver_opts?: Record<string, string | number>;
  priority?: number;
  [key: string]: unknown;
}

export interface ComposeHealthcheck {
  /** `"curl -f http://localhost"` (CMD-SHELL), or `["CMD", ...]`, `["CMD-SHELL", cmd]`, `["NONE"]`. */
  test?: string | string[];
  interval?: ComposeDuration;
  timeout?: ComposeDuration;
  start_period?: ComposeDuration;
  start_interval?: ComposeDuration;
  retries?: number | string;
  disable?: boolean;
}

export interface ComposeResourceSet {
  cpus?: number | string;
  memory?: ComposeBytes;
  pids?: number | string;
  generic_resources?: unknown[];
  devices?: unknown[];
}

export interface ComposeUpdateConfig {
  parallelism?: number | string;
  delay?: ComposeDuration;
  failure_action?: string;
  monitor?: ComposeDuration;
  max_failure_ratio?: number | string;
  order?: string;
}

export interface ComposeDeploy {
  mode?: string;
  replicas?: number | string;
  labels?: ListOrDict;
  endpoint_mode?: string;
  placement?: {
    constraints?: string[];
    preferences?: Array<{ spread: string }>;
    max_replicas_per_node?: number | string;
  };
  resources?: { limits?: ComposeResourceSet; reservations?: ComposeResourceSet };
  restart_policy?: {
    condition?: string;
    delay?: ComposeDuration;
    max_attempts?: number | string;
    window?: ComposeDuration;
  };
  update_config?: ComposeUpdateConfig;
  rollback_config?: ComposeUpdateConfig;
  [key: string]: unknown;
}

export interface ComposeUlimit {
  soft: number | string;
  hard: number | string;
}

/** One service as compose describes it; the keys the converter reads are typed, the rest it reports by name. */
export interface ComposeService {
  image?: string;
  command?: string | string[] | null;
  entrypoint?: string | string[] | null;
  environment?: ListOrDict;
  /** `env_file: .env`, a list, or `{path, required}` items (paths relative to the stack's working directory). */
  env_file?: string | Array<string | { path: string; required?: boolean; format?: string }>;
  labels?: ListOrDict;
  hostname?: string;
  user?: string;
  working_dir?: string;
  stop_grace_period?: ComposeDuration;
  stop_signal?: string;
  init?: boolean;
  read_only?: boolean;
  tty?: boolean;
  cap_add?: string[];
  cap_drop?: string[];
  tmpfs?: string | string[];
  ulimits?: Record<string, number | string | ComposeUlimit>;
  healthcheck?: ComposeHealthcheck;
  ports?: ComposePort[];
  networks?: string[] | Record<string, ComposeServiceNetwork | null>;
  volumes?: ComposeServiceVolume[];
  secrets?: ComposeFileReference[];
  configs?: ComposeFileReference[];
  restart?: string;
  deploy?: ComposeDeploy;
  [key: string]: unknown;
}

/** `external: true`, or the old `external: {name: x}` form. */
export type ComposeExternal = boolean | { name?: string };

export interface ComposeNetwork {
  name?: string;
  driver?: string;
  driver_opts?: Record<string, string | number>;
  ipam?: { driver?: string; config?: Array<{ subnet?: string; ip_range?: string; gateway?: string; aux_addresses?: Record<string, string> }>; options?: Record<string, string> };
  external?: ComposeExternal;
  internal?: boolean;
  attachable?: boolean;
  enable_ipv6?: boolean;
  labels?: ListOrDict;
  [key: string]: unknown;
}

export interface ComposeVolume {
  name?: string;
  driver?: string;
  driver_opts?: Record<string, string | number>;
  external?: ComposeExternal;
  labels?: ListOrDict;
  [key: string]: unknown;
}

/** A top-level secret or config: its data from a file, an environment variable or (configs) inline content. */
export interface ComposeFileObject {
  name?: string;
  file?: string;
  environment?: string;
  /** Configs only. */
  content?: string;
  external?: ComposeExternal;
  labels?: ListOrDict;
  driver?: string;
  driver_opts?: Record<string, string | number>;
  template_driver?: string;
  [key: string]: unknown;
}

/** A whole compose project: what every `-c` file merged into. */
export interface ComposeModel {
  name?: string;
  version?: string;
  services: Record<string, ComposeService>;
  networks?: Record<string, ComposeNetwork | null>;
  volumes?: Record<string, ComposeVolume | null>;
  secrets?: Record<string, ComposeFileObject>;
  configs?: Record<string, ComposeFileObject>;
  [extension: `x-${string}`]: unknown;
}
