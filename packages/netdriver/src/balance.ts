// How connections are spread over a service's tasks, shared by the VIP tables and the routing mesh: each ready task
// gets a weight from its service's strategy, its host's spare capacity (load-aware) and its circuit (a task that
// kept refusing connections gets none while open, a trickle while half-open), and the kernel picks by weight.

import type { LbStrategy } from '@swarm/store';
import type { Endpoint } from './endpoints.js';
import { isIPv4 } from './ipam.js';

/** A full share: a closed circuit on an idle host. A half-open circuit gets one of these parts. */
export const FULL_WEIGHT = 10;

/** A task behind a VIP or a published port, and its share of the connections (a positive integer). */
export interface WeightedBackend {
  ip: string;
  weight: number;
}

/**
 * An endpoint's share under a strategy: 0 when it is not ready or its circuit is open; 1 (a trickle) while its
 * circuit is half-open; else FULL_WEIGHT, or with load-aware its host's spare capacity (1-10, as it publishes it).
 */
export function endpointWeight(e: Endpoint, strategy: LbStrategy): number {
  if (!e.ready || e.circuit === 'open') return 0;
  if (e.circuit === 'half-open') return 1;
  if (strategy !== 'load-aware') return FULL_WEIGHT;
  const capacity = e.capacity ?? FULL_WEIGHT;
  return Math.min(FULL_WEIGHT, Math.max(1, Math.round(capacity)));
}

/** Spare capacity 1-10 from a host's load per CPU (the 1-minute load average over the CPU count). */
export function capacityFromLoad(loadPerCpu: number): number {
  if (!Number.isFinite(loadPerCpu) || loadPerCpu < 0) return FULL_WEIGHT;
  return Math.max(1, Math.round(FULL_WEIGHT * (1 - Math.min(loadPerCpu, 0.9))));
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * The nft expression choosing one backend address: `numgen inc` (round robin) or `numgen random` over the sum of
 * the weights (divided by their common divisor: equal weights are one slot each), each backend holding a range as
 * wide as its weight. A lone backend needs no choice.
 */
export function chooseExpression(backends: readonly WeightedBackend[], strategy: LbStrategy): string {
  if (backends.length === 0 || !backends.every((b) => isIPv4(b.ip) && Number.isInteger(b.weight) && b.weight > 0)) {
    throw new Error(`netdriver invariant: backends ${JSON.stringify(backends)} are IPv4 addresses with positive weights`);
  }
  const [only] = backends;
  if (backends.length === 1 && only !== undefined) return only.ip;
  const divisor = backends.reduce((g, b) => gcd(g, b.weight), 0);
  const total = backends.reduce((s, b) => s + b.weight / divisor, 0);
  const gen = strategy === 'round-robin' ? 'numgen inc' : 'numgen random';
  let at = 0;
  const entries = backends.map((b) => {
    const from = at;
    at += b.weight / divisor;
    return at - from === 1 ? `${from} : ${b.ip}` : `${from}-${at - 1} : ${b.ip}`;
  });
  return `${gen} mod ${total} map { ${entries.join(', ')} }`;
}
