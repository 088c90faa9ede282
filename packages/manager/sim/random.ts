// The manager simulator's only source of randomness: @swarm/wire's seeded PRNG with the few draws the world needs.
// Every choice in a run (faults, timings, user actions) comes from one Rng, so a seed replays the whole run.

import { seededRandom } from '@swarm/wire';

export class Rng {
  private readonly next: () => number;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
    // mulberry32 keeps 32 bits of state: fold the high half in so seeds above 2^32 differ too.
    this.next = seededRandom((seed >>> 0) ^ Math.imul(Math.floor(seed / 0x1_0000_0000), 0x27d4eb2d));
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next();
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Uniform integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi < lo) throw new RangeError(`int(${lo}, ${hi}): need integers with lo <= hi`);
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick() from an empty list');
    return items[Math.floor(this.next() * items.length)] as T;
  }
}
