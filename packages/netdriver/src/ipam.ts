// Address management for overlay networks, as pure functions over IPv4 numbers: CIDR parsing and overlap, cutting
// subnets from the cluster's default pools, VXLAN ids, and the next free task address in a subnet. The leader's
// allocator (in @swarm/manager) decides with them; the data plane uses the same arithmetic.

import type { Vni } from '@swarm/store';

/** An IPv4 CIDR: `base` is the network address as an unsigned 32-bit number. */
export interface Cidr {
  base: number;
  prefix: number;
}

/** Docker's overlay VXLAN ids start here; ingress takes the first. */
export const FIRST_VNI: Vni = 4096;
export const MAX_VNI: Vni = (1 << 24) - 1;
/** The ingress network as Docker makes it at init. */
export const INGRESS_SUBNET = '10.0.0.0/24';
/** The smallest and largest overlay subnets we accept: a /29 has 5 task addresses; /8 is Docker's pool size. */
export const MIN_PREFIX = 8;
export const MAX_PREFIX = 29;

export class IpamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IpamError';
  }
}

export function parseIp(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)) {
    throw new IpamError(`${JSON.stringify(text)} is not an IPv4 address`);
  }
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

/** A dotted quad with every part 0-255 (what may go into an ip, nft or DNS answer). */
export function isIPv4(text: string): boolean {
  try {
    parseIp(text);
    return true;
  } catch {
    return false;
  }
}

export function formatIp(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new IpamError(`${n} is not an IPv4 address number`);
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Strict: the address must be the network address (`10.0.1.0/24`, not `10.0.1.5/24`), as Docker requires. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  if (slash < 0) throw new IpamError(`${JSON.stringify(text)} is not a CIDR (use ADDRESS/PREFIX, e.g. 10.0.9.0/24)`);
  const base = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,2}$/.test(prefixText) || Number(prefixText) > 32) throw new IpamError(`${JSON.stringify(text)}: the prefix length must be 0-32`);
  const prefix = Number(prefixText);
  if ((base & ~maskOf(prefix)) >>> 0 !== 0) {
    throw new IpamError(`${JSON.stringify(text)} has host bits set: did you mean ${formatCidr({ base: (base & maskOf(prefix)) >>> 0, prefix })}?`);
  }
  return { base, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.prefix}`;
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function contains(c: Cidr, ip: number): boolean {
  return ip >= c.base && ip < c.base + size(c);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base < b.base + size(b) && b.base < a.base + size(a);
}

/** Checks an overlay subnet a user gave: a CIDR of a size we serve. */
export function checkSubnet(text: string): Cidr {
  const c = parseCidr(text);
  if (c.prefix < MIN_PREFIX || c.prefix > MAX_PREFIX) throw new IpamError(`subnet ${text}: the prefix length must be between /${MIN_PREFIX} and /${MAX_PREFIX}`);
  return c;
}

/** The gateway of a subnet: the given one (inside it, not its network or broadcast address) or its first host. */
export function gatewayFor(subnet: Cidr, given: string): string {
  if (given === '') return formatIp(subnet.base + 1);
  const ip = parseIp(given);
  if (!contains(subnet, ip) || ip === subnet.base || ip === subnet.base + size(subnet) - 1) {
    throw new IpamError(`gateway ${given} is not a host address of subnet ${formatCidr(subnet)}`);
  }
  return given;
}

/**
 * The first `prefix`-sized subnet of the pools (in order) that overlaps none of `used`, or null when the pools are
 * full. Walks candidates, jumping past a used range at once, so a full /8 of /24s costs at most 2^16 steps.
 */
export function cutSubnet(pools: readonly string[], prefix: number, used: readonly Cidr[]): Cidr | null {
  for (const poolText of pools) {
    const pool = parseCidr(poolText);
    if (prefix < pool.prefix) continue;
    const step = 2 ** (32 - prefix);
    let candidate = pool.base;
    const end = pool.base + size(pool);
    while (candidate + step <= end) {
      const c = { base: candidate, prefix };
      const clash = used.find((u) => overlaps(u, c));
      if (clash === undefined) return c;
      // Next aligned candidate at or after the end of the clashing range.
      const clashEnd = clash.base + size(clash);
      candidate = Math.max(candidate + step, Math.ceil(clashEnd / step) * step);
    }
  }
  return null;
}

/** The lowest VXLAN id from FIRST_VNI up that is not in use, or null when all 2^24 are. */
export function nextVni(used: ReadonlySet<Vni>): Vni | null {
  for (let v = FIRST_VNI; v <= MAX_VNI; v++) if (!used.has(v)) return v;
  return null;
}

/**
 * The next free host number (offset from the subnet base) after `last`, wrapping, skipping the network address,
 * the gateway and the broadcast address; null when every address is taken.
 */
export function nextHost(subnet: Cidr, gateway: number, last: number, used: ReadonlySet<number>): number | null {
  const total = size(subnet);
  const gatewayHost = gateway - subnet.base;
  for (let i = 1; i <= total; i++) {
    const h = (last + i) % total;
    if (h === 0 || h === total - 1 || h === gatewayHost || used.has(h)) continue;
    return h;
  }
  return null;
}
