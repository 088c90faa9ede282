// The OCI runtime spec (config.json, version 1.0.2 as runc 1.1 takes it) of a task's container, built as a pure
// function of its ContainerConfig and its image's config: what runs (Docker's entrypoint/cmd rules), as whom
// (resolved against the image's /etc/passwd and /etc/group), with which namespaces, mounts, limits and
// security settings.

import { capabilities, defaultSeccompProfile, MASKED_PATHS, READONLY_PATHS, type OciSeccomp } from './runc/security.js';
import { rlimitType, rlimitValue } from './rlimits.js';
import { RuntimeError, type ContainerConfig, type ImageConfig } from './runtime.js';
// Every task process carries it, whichever the runtime: the lab (and `ps e`) recognise a task's processes by it.
import { TASK_ID_ENV } from './process-runtime.js';

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Docker's default /dev/shm size. */
export const SHM_SIZE_BYTES = 64 * 1024 * 1024;
/** Where --init's tini is bind-mounted, as Docker does. */
export const INIT_PATH = '/sbin/docker-init';
/** Docker's cpu period; a CPU limit is a quota of it. */
const CPU_PERIOD_US = 100_000;
/** Docker's cpu shares: 1024 per reserved CPU, at least 2 (the kernel's minimum). */
const SHARES_PER_CPU = 1024;

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective: string[]; permitted: string[] };
    /** Values are the kernel's: a bigint only for RLIM_INFINITY (2^64 - 1), which ociSpecJson writes exactly. */
    rlimits: Array<{ type: string; hard: number | bigint; soft: number | bigint }>;
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  linux: {
    resources: {
      devices: Array<{ allow: boolean; access: string }>;
      memory?: { limit: number; swap: number };
      cpu?: { quota?: number; period?: number; shares?: number };
      pids?: { limit: number };
    };
    cgroupsPath: string;
    namespaces: Array<{ type: string; path?: string }>;
    maskedPaths: string[];
    readonlyPaths: string[];
    seccomp?: OciSeccomp;
  };
}

/** The files of the image a spec needs (read from the container's root filesystem). */
export interface RootfsFiles {
  /** /etc/passwd and /etc/group of the image, '' when it has none. */
  passwd: string;
  group: string;
}

/** Host paths the spec points at. */
export interface SpecPaths {
  /** The container's /etc/hosts, /etc/hostname, /etc/resolv.conf, written by the runtime. */
  hosts: string;
  hostname: string;
  resolvConf: string;
  /** Host directory of each volume mount, by volume name. */
  volumes: ReadonlyMap<string, string>;
  /** tini-static on the host (for --init). */
  init: string;
  /** Host files of the task's secrets and configs (on its tmpfs), mounted read-only at their targets. */
  files?: ReadonlyArray<{ target: string; source: string }>;
}

/** Docker's rules: the service's command replaces ENTRYPOINT, its args replace CMD. */
export function processArgs(config: Pick<ContainerConfig, 'command' | 'args'>, image: Pick<ImageConfig, 'entrypoint' | 'cmd'>): string[] {
  const entrypoint = config.command.length > 0 ? config.command : image.entrypoint;
  // A command given without args does not take the image's CMD (Docker drops CMD when ENTRYPOINT is overridden).
  const cmd = config.args.length > 0 ? config.args : config.command.length > 0 ? [] : image.cmd;
  return [...entrypoint, ...cmd];
}

/** Image env, then the service's (a service KEY replaces the image's), PATH by default, HOSTNAME and HOME. */
export function processEnv(config: Pick<ContainerConfig, 'env' | 'hostname' | 'id'>, image: Pick<ImageConfig, 'env'>, home: string): string[] {
  const out = new Map<string, string>();
  const put = (entry: string): void => {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new RuntimeError('invalid_config', `invalid environment entry ${JSON.stringify(entry)}: use KEY=value`);
    out.set(entry.slice(0, eq), entry);
  };
  put(DEFAULT_PATH);
  put(`HOSTNAME=${config.hostname}`);
  for (const e of image.env) put(e);
  for (const e of config.env) put(e);
  if (!out.has('HOME')) put(`HOME=${home}`);
  put(`${TASK_ID_ENV}=${config.id}`);
  return [...out.values()];
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || line.startsWith('#')) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (Number.isInteger(uid) && Number.isInteger(gid)) out.push({ name: f[0] ?? '', uid, gid, home: f[5] ?? '/' });
  }
  return out;
}

function parseGroups(text: string): Array<{ name: string; gid: number; members: string[] }> {
  const out: Array<{ name: string; gid: number; members: string[] }> = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || line.startsWith('#')) continue;
    const gid = Number(f[2]);
    if (Number.isInteger(gid)) out.push({ name: f[0] ?? '', gid, members: (f[3] ?? '').split(',').filter((m) => m !== '') });
  }
  return out;
}

/**
 * Docker's user resolution: `name`, `uid`, `name:group`, `uid:gid` against the image's files. A numeric user
 * need not exist (gid 0 then); a name must. Additional groups are the ones that list the user by name.
 */
export function resolveUser(user: string, files: RootfsFiles): { uid: number; gid: number; additionalGids: number[]; home: string } {
  const spec = user === '' ? 'root' : user;
  const [u = '', g] = spec.split(':', 2);
  const passwd = parsePasswd(files.passwd);
  const groups = parseGroups(files.group);
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    entry = passwd.find((p) => p.uid === uid);
  } else {
    entry = passwd.find((p) => p.name === u);
    if (entry === undefined) {
      if (u === 'root') return { uid: 0, gid: 0, additionalGids: [], home: '/root' };
      throw new RuntimeError('invalid_config', `unable to find user ${u}: no matching entries in the image's /etc/passwd`);
    }
    uid = entry.uid;
  }
  let gid = entry?.gid ?? 0;
  if (g !== undefined && g !== '') {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const group = groups.find((x) => x.name === g);
      if (group === undefined) throw new RuntimeError('invalid_config', `unable to find group ${g}: no matching entries in the image's /etc/group`);
      gid = group.gid;
    }
  }
  const name = entry?.name;
  const additionalGids = name === undefined ? [] : groups.filter((x) => x.members.includes(name) && x.gid !== gid).map((x) => x.gid);
  return { uid, gid, additionalGids, home: entry?.home ?? '/' };
}

const bind = (destination: string, source: string, readOnly: boolean): OciMount => ({
  destination,
  type: 'bind',
  source,
  options: ['rbind', 'rprivate', readOnly ? 'ro' : 'rw'],
});

/** The spec of a container; throws RuntimeError('invalid_config') for what cannot run (nothing to run, bad user). */
export function buildSpec(config: ContainerConfig, image: ImageConfig, files: RootfsFiles, paths: SpecPaths): OciSpec {
  const args = processArgs(config, image);
  if (args.length === 0) {
    throw new RuntimeError('invalid_config', `the image ${config.image} has no command and the service gives none: give one, e.g. \`swarm service create ${config.image} sleep 3600\``);
  }
  const user = resolveUser(config.user !== '' ? config.user : image.user, files);
  const caps = capabilities(config.capAdd, config.capDrop);
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${SHM_SIZE_BYTES}`] },
    // Docker writes these three per container; resolv.conf and hosts stay writable, as in Docker.
    bind('/etc/hosts', paths.hosts, false),
    bind('/etc/hostname', paths.hostname, false),
    bind('/etc/resolv.conf', paths.resolvConf, false),
  ];
  for (const m of config.mounts) {
    if (!m.target.startsWith('/')) throw new RuntimeError('invalid_config', `mount target ${JSON.stringify(m.target)} is not an absolute path`);
    if (m.type === 'tmpfs') {
      const size = m.tmpfsSizeBytes > 0 ? [`size=${m.tmpfsSizeBytes}`] : [];
      mounts.push({ destination: m.target, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', ...size, m.readOnly ? 'ro' : 'rw'] });
    } else if (m.type === 'volume') {
      const host = paths.volumes.get(m.source);
      if (host === undefined) throw new RuntimeError('invalid_config', `volume ${m.source} has no directory on this node`);
      mounts.push(bind(m.target, host, m.readOnly));
    } else {
      mounts.push(bind(m.target, m.source, m.readOnly));
    }
  }
  for (const f of paths.files ?? []) {
    if (!f.target.startsWith('/')) throw new RuntimeError('invalid_config', `secret or config target ${JSON.stringify(f.target)} is not an absolute path`);
    mounts.push(bind(f.target, f.source, true));
  }
  let processArgv = args;
  if (config.init) {
    mounts.push(bind(INIT_PATH, paths.init, true));
    processArgv = [INIT_PATH, '--', ...args];
  }
  const resources: OciSpec['linux']['resources'] = { devices: [{ allow: false, access: 'rwm' }] };
  if (config.limits.memoryBytes > 0) resources.memory = { limit: config.limits.memoryBytes, swap: config.limits.memoryBytes };
  const cpu: NonNullable<OciSpec['linux']['resources']['cpu']> = {};
  if (config.limits.nanoCpus > 0) {
    cpu.period = CPU_PERIOD_US;
    cpu.quota = Math.max(1_000, Math.round((config.limits.nanoCpus / 1e9) * CPU_PERIOD_US));
  }
  if (config.reservedNanoCpus > 0) cpu.shares = Math.max(2, Math.round((config.reservedNanoCpus / 1e9) * SHARES_PER_CPU));
  if (Object.keys(cpu).length > 0) resources.cpu = cpu;
  if (config.pidsLimit > 0) resources.pids = { limit: config.pidsLimit };
  const namespaces: OciSpec['linux']['namespaces'] = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (config.networkNamespacePath !== null) namespaces.push({ type: 'network', path: config.networkNamespacePath });
  const seccomp = defaultSeccompProfile(caps);
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length > 0 ? { additionalGids: user.additionalGids } : {}) },
      args: processArgv,
      env: processEnv(config, image, user.home),
      cwd: config.dir !== '' ? config.dir : image.workingDir !== '' ? image.workingDir : '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      // The service's ulimits; any other limit the container inherits from the daemon, as Docker's do without --ulimit.
      rlimits: config.ulimits.map((u) => ({ type: rlimitType(u.name), hard: rlimitValue(u.hard), soft: rlimitValue(u.soft) })),
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: config.readOnly },
    hostname: config.hostname,
    mounts,
    linux: {
      resources,
      cgroupsPath: `/swarm/${config.id}`,
      namespaces,
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
      ...(seccomp === null ? {} : { seccomp }),
    },
  };
}

/** JSON.rawJSON (Node 21+; not yet in TypeScript's lib): a number's digits written as they are. */
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/** config.json's text: as JSON.stringify, but a bigint (RLIM_INFINITY) written as its exact digits, which runc reads as a uint64. */
export function ociSpecJson(spec: OciSpec): string {
  return JSON.stringify(spec, (_key, value: unknown) => (typeof value === 'bigint' ? rawJSON(value.toString()) : value));
}

/** Docker's /etc/hosts of a container: localhost lines, then the container's own name on its first address. */
export function hostsFile(hostname: string, extra: readonly string[]): string {
  return [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
    `127.0.1.1\t${hostname}`,
    ...extra,
    '',
  ].join('\n');
}
