// Every call of iproute2's `ip` the lab makes: namespaces, bridge, veth pairs, addresses, netns exec.
// Arguments are arrays; names are checked against the lab's own prefixes before anything is deleted.

import { randomBytes } from 'node:crypto';
import { LabError, assert } from './errors.js';
import { run as runTool, systemTool, type RunOptions, type RunResult } from './run.js';

function run(tool: 'ip', args: readonly string[], opts?: RunOptions): Promise<RunResult> {
  return runTool(systemTool(tool), args, opts);
}

/** Namespaces the lab creates start with this; links (bridge, root-side veths) with LINK_PREFIX. */
export const NETNS_PREFIX = 'swlab-';
export const LINK_PREFIX = 'swlb-';
/** Linux refuses interface names longer than this (IFNAMSIZ - 1). */
export const MAX_IFNAME_CHARS = 15;

function ownNetns(name: string): void {
  assert(name.startsWith(NETNS_PREFIX), `namespace ${name} is not a lab namespace`);
}
function ownLink(name: string): void {
  assert(name.startsWith(LINK_PREFIX) && name.length <= MAX_IFNAME_CHARS, `link ${name} is not a lab link`);
}

function parseJsonArray(text: string, what: string): unknown[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const v: unknown = JSON.parse(trimmed);
  if (!Array.isArray(v)) throw new LabError('command_failed', `ip -j ${what} did not print a JSON array`);
  return v;
}

function field(o: unknown, key: string): unknown {
  return typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[key] : undefined;
}

export async function netnsList(): Promise<string[]> {
  const res = await run('ip', ['-j', 'netns', 'list']);
  return parseJsonArray(res.stdout, 'netns list')
    .map((e) => field(e, 'name'))
    .filter((n): n is string => typeof n === 'string');
}

export async function netnsExists(name: string): Promise<boolean> {
  return (await netnsList()).includes(name);
}

export async function netnsAdd(name: string): Promise<void> {
  ownNetns(name);
  await run('ip', ['netns', 'add', name]);
}

/** Deletes a lab namespace; a namespace that is already gone is not an error (down is idempotent). */
export async function netnsDelete(name: string): Promise<boolean> {
  ownNetns(name);
  if (!(await netnsExists(name))) return false;
  const res = await run('ip', ['netns', 'delete', name], { allowFailure: true });
  if (res.code === 0) return true;
  if (!(await netnsExists(name))) return false; // removed by a concurrent down
  throw new LabError('command_failed', `ip netns delete ${name} exited with ${res.code}: ${res.stderr.trim()}`);
}

/** Pids of the processes whose network namespace is this one. */
export async function netnsPids(name: string): Promise<number[]> {
  ownNetns(name);
  const res = await run('ip', ['netns', 'pids', name], { allowFailure: true });
  if (res.code !== 0) return [];
  return res.stdout
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map((s) => Number(s));
}

/** The argv that runs `argv` inside namespace `ns` (ip netns exec execs, so the pid is the command's). */
export function netnsExecArgv(ns: string, argv: readonly string[]): { file: string; args: string[] } {
  ownNetns(ns);
  assert(argv.length > 0, 'netns exec needs a command');
  // nsenter switches only the network namespace: `ip netns exec` would also remount /sys for the namespace,
  // hiding the cgroup mounts that runc needs for the containers a host's daemon runs.
  return { file: systemTool('nsenter'), args: [`--net=/run/netns/${ns}`, '--', ...argv] };
}

export async function netnsExec(ns: string, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const { file, args } = netnsExecArgv(ns, argv);
  return await runTool(file, args, opts);
}

/** Sets a sysctl inside a lab namespace; the root namespace is never written. */
export async function netnsSysctl(ns: string, key: string, value: string): Promise<void> {
  assert(/^[a-z0-9_.]+$/.test(key), `sysctl key ${key}`);
  await netnsExec(ns, [systemTool('sysctl'), '-q', '-w', `${key}=${value}`]);
}

export async function linkExists(name: string, ns?: string): Promise<boolean> {
  const res = await run('ip', [...nsArgs(ns), '-j', 'link', 'show', 'dev', name], { allowFailure: true });
  return res.code === 0;
}

function nsArgs(ns: string | undefined): string[] {
  if (ns === undefined) return [];
  ownNetns(ns);
  return ['-n', ns];
}

/**
 * A bridge in the root namespace with IPv6 address generation off, so it emits no traffic of its own, and a MAC set
 * once: a bridge otherwise takes its lowest port's MAC and changes it as hosts come and go, and the hosts' cached
 * entry for its address (the registry's) would point at another host's veth.
 */
export async function bridgeAdd(name: string): Promise<void> {
  ownLink(name);
  await run('ip', ['link', 'add', 'name', name, 'type', 'bridge']);
  await run('ip', ['link', 'set', 'dev', name, 'address', localMac()]);
  await run('ip', ['link', 'set', 'dev', name, 'addrgenmode', 'none']);
}

/** A random unicast, locally administered MAC. */
function localMac(): string {
  const b = randomBytes(6);
  b[0] = ((b[0] ?? 0) & 0xfc) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** A veth pair: `rootName` in the root namespace, `peerName` created directly inside `ns`. */
export async function vethAdd(rootName: string, ns: string, peerName: string): Promise<void> {
  ownLink(rootName);
  ownNetns(ns);
  await run('ip', ['link', 'add', 'name', rootName, 'type', 'veth', 'peer', 'name', peerName, 'netns', ns]);
  await run('ip', ['link', 'set', 'dev', rootName, 'addrgenmode', 'none']);
  await run('ip', ['-n', ns, 'link', 'set', 'dev', peerName, 'addrgenmode', 'none']);
}

export async function linkSetMaster(name: string, master: string): Promise<void> {
  ownLink(name);
  ownLink(master);
  await run('ip', ['link', 'set', 'dev', name, 'master', master]);
}

export async function linkUp(name: string, ns?: string): Promise<void> {
  if (ns === undefined) ownLink(name);
  await run('ip', [...nsArgs(ns), 'link', 'set', 'dev', name, 'up']);
}

export async function addrAdd(dev: string, cidr: string, ns?: string): Promise<void> {
  if (ns === undefined) ownLink(dev);
  await run('ip', [...nsArgs(ns), 'addr', 'add', cidr, 'dev', dev]);
}

/** Deletes a lab link in the root namespace; one already gone is not an error. */
export async function linkDelete(name: string): Promise<boolean> {
  ownLink(name);
  if (!(await linkExists(name))) return false;
  const res = await run('ip', ['link', 'delete', 'dev', name], { allowFailure: true });
  if (res.code === 0) return true;
  // A veth whose peer's namespace was just deleted vanishes asynchronously (the kernel's netns cleanup
  // runs later): gone by now is success, anything else is a real failure.
  if (!(await linkExists(name))) return false;
  throw new LabError('command_failed', `ip link delete dev ${name} exited with ${res.code}: ${res.stderr.trim()}`);
}

/** Names of every link in the root namespace. */
export async function rootLinkNames(): Promise<string[]> {
  const res = await run('ip', ['-j', 'link', 'show']);
  return parseJsonArray(res.stdout, 'link show')
    .map((e) => field(e, 'ifname'))
    .filter((n): n is string => typeof n === 'string');
}

/** Every `local/prefixlen` in the JSON of `ip -j -4 addr show`. */
function addrPrefixes(json: string): string[] {
  const out: string[] = [];
  for (const link of parseJsonArray(json, 'addr show')) {
    const infos = field(link, 'addr_info');
    if (!Array.isArray(infos)) continue;
    for (const a of infos) {
      const local = field(a, 'local');
      const len = field(a, 'prefixlen');
      if (typeof local === 'string' && typeof len === 'number') out.push(`${local}/${len}`);
    }
  }
  return out;
}

/** IPv4 prefixes in use in the root namespace (addresses and routes), to pick a subnet that collides with none. */
export async function rootIpv4Prefixes(): Promise<string[]> {
  const addrs = await run('ip', ['-j', '-4', 'addr', 'show']);
  const out = addrPrefixes(addrs.stdout);
  const routes = await run('ip', ['-j', '-4', 'route', 'show', 'table', 'all']);
  for (const r of parseJsonArray(routes.stdout, 'route show')) {
    const dst = field(r, 'dst');
    if (typeof dst !== 'string' || dst === 'default') continue;
    out.push(dst.includes('/') ? dst : `${dst}/32`);
  }
  return out;
}

/** IPv4 addresses (CIDR form) configured inside a lab namespace. */
export async function netnsIpv4Addrs(ns: string): Promise<string[]> {
  const res = await run('ip', [...nsArgs(ns), '-j', '-4', 'addr', 'show']);
  return addrPrefixes(res.stdout);
}
