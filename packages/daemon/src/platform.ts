// What this machine is, as a Node's description reports it (hostname, OS/arch, CPUs, memory, engine version),
// and which local address to advertise when the user gave none.

import { readFileSync } from 'node:fs';
import { cpus, hostname, machine, networkInterfaces, platform, totalmem } from 'node:os';
import { ApiError } from '@swarm/api';
import type { NodeDescription } from '@swarm/store';

const NANO_CPUS_PER_CPU = 1e9;

function readEngineVersion(): string {
  // dist/src/platform.js -> the package's own package.json
  const raw: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  const version = typeof raw === 'object' && raw !== null ? (raw as { version?: unknown }).version : undefined;
  return typeof version === 'string' ? version : '0.0.0';
}

export const ENGINE_VERSION = readEngineVersion();

export function describeLocalNode(hostnameOverride?: string): NodeDescription {
  return {
    hostname: hostnameOverride ?? hostname(),
    // Docker reports uname's machine (x86_64, aarch64), not Node's arch names.
    platform: { os: platform(), arch: machine() },
    resources: { nanoCpus: Math.max(1, cpus().length) * NANO_CPUS_PER_CPU, memoryBytes: totalmem() },
    engineVersion: ENGINE_VERSION,
    engineLabels: {},
  };
}

/**
 * Docker's rule: with a wildcard listen address and no --advertise-addr, use the machine's one external IPv4
 * address; if it has several on different interfaces, ask the user instead of guessing.
 */
export function chooseAdvertiseHost(listenHost: string): string {
  if (listenHost !== '0.0.0.0' && listenHost !== '::') return listenHost;
  const candidates: Array<{ iface: string; address: string }> = [];
  for (const [iface, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) candidates.push({ iface, address: a.address });
  }
  const first = candidates[0];
  if (first === undefined) return '127.0.0.1';
  const ifaces = new Set(candidates.map((c) => c.iface));
  if (ifaces.size > 1) {
    const list = candidates.map((c) => `${c.address} on ${c.iface}`).join(', ');
    throw new ApiError('invalid_argument', `could not choose an IP address to advertise: this machine has several (${list}); use --advertise-addr`);
  }
  return first.address;
}
