// The simulator's only source of randomness: a small seeded PRNG (xoshiro128**, seeded by splitmix32).
// Every random choice in a run comes from here, so a seed fully determines the run.

function assert(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new Error(`rng: ${msg}`);
}

/** splitmix32: spreads a 32-bit seed over the xoshiro state so that nearby seeds give unrelated streams. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    assert(Number.isInteger(seed), `seed must be an integer, got ${seed}`);
    // Mix both halves of seeds above 2^32 in, so every safe integer gives its own stream.
    const st = { s: (seed >>> 0) ^ Math.imul(Math.floor(seed / 0x100000000) | 0, 0x27d4eb2d) };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1; // the all-zero state is a fixed point
  }

  /** Next 32-bit unsigned integer (xoshiro128**). */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 0x100000000;
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    assert(Number.isInteger(lo) && Number.isInteger(hi) && lo <= hi, `bad range [${lo}, ${hi}]`);
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, 'pick from an empty list');
    const item = items[Math.floor(this.float() * items.length)];
    assert(item !== undefined, 'pick out of range');
    return item;
  }

  /** A new independent stream derived from this one (e.g. one per node), so adding draws in one place does not shift another. */
  fork(): Rng {
    return new Rng(this.u32() * 0x100000 + (this.u32() & 0xfffff));
  }

  /** Fisher-Yates, in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.float() * (i + 1));
      const x = items[i] as T;
      items[i] = items[j] as T;
      items[j] = x;
    }
    return items;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
