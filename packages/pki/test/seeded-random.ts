// A deterministic random source for tests: sha256(seed || counter) blocks, so every run issues the same
// tokens, serials and pnet keys and a failure replays exactly.
import { createHash } from 'node:crypto';
import type { RandomBytes } from '../src/index.js';

export function seededRandom(seed: string): RandomBytes {
  let counter = 0;
  return (byteCount) => {
    const out = new Uint8Array(byteCount);
    for (let filled = 0; filled < byteCount; ) {
      const block = createHash('sha256').update(`${seed}/${counter++}`).digest();
      const take = Math.min(block.length, byteCount - filled);
      out.set(block.subarray(0, take), filled);
      filled += take;
    }
    return out;
  };
}
