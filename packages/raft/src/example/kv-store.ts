// The example's replicated state machine: a map of string keys to byte values, and its command encoding.
// Deterministic (every replica applies the same bytes the same way); snapshots are msgpack of the pairs.

import { Packr, Unpackr } from 'msgpackr';
import type { StateMachine } from '../host/raft-node.js';

export type Command = ['put', string, Uint8Array] | ['del', string];

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

export function encodeCommand(cmd: Command): Uint8Array {
  return packr.pack(cmd);
}

export class KvStateMachine implements StateMachine<number> {
  readonly data = new Map<string, Uint8Array>();

  apply(bytes: Uint8Array, index: number): number {
    const cmd = unpackr.unpack(bytes) as unknown;
    if (!Array.isArray(cmd) || typeof cmd[1] !== 'string') throw new Error(`entry ${index} is not a kv command`);
    if (cmd[0] === 'put' && cmd[2] instanceof Uint8Array) this.data.set(cmd[1], cmd[2]);
    else if (cmd[0] === 'del') this.data.delete(cmd[1]);
    else throw new Error(`entry ${index} has unknown kv op ${String(cmd[0])}`);
    return index;
  }

  snapshot(): Uint8Array {
    return packr.pack([...this.data.entries()]);
  }

  restore(bytes: Uint8Array): void {
    this.data.clear();
    // The bootstrap snapshot carries no application image: empty state.
    if (bytes.length === 0) return;
    const pairs = unpackr.unpack(bytes) as [string, Uint8Array][];
    for (const [k, v] of pairs) this.data.set(k, v);
  }
}
