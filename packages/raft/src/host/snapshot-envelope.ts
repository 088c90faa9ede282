// The bytes RaftNode stores in a Raft snapshot: the application's image plus the members' transport
// addresses, so a node restored from a snapshot can still reach members that joined by conf change.

import { Packr, Unpackr } from 'msgpackr';
import type { NodeId } from '../types.js';
import { RaftError } from '../types.js';

const VERSION = 1;
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, moreTypes: false });

export interface SnapshotEnvelope {
  readonly addresses: Readonly<Record<NodeId, string>>;
  /** What StateMachine.snapshot() returned. */
  readonly app: Uint8Array;
}

export function encodeSnapshotEnvelope(env: SnapshotEnvelope): Uint8Array {
  return packr.pack([VERSION, env.addresses, env.app]);
}

/** Empty bytes (the bootstrap snapshot) decode to no addresses and an empty application image. */
export function decodeSnapshotEnvelope(data: Uint8Array): SnapshotEnvelope {
  if (data.length === 0) return { addresses: {}, app: new Uint8Array(0) };
  let v: unknown;
  try {
    v = unpackr.unpack(data);
  } catch (err) {
    throw new RaftError('corrupt', `snapshot data is not a RaftNode snapshot envelope: ${(err as Error).message}`);
  }
  if (!Array.isArray(v) || v[0] !== VERSION || typeof v[1] !== 'object' || v[1] === null || !(v[2] instanceof Uint8Array)) {
    throw new RaftError('corrupt', `snapshot data is not a version ${VERSION} RaftNode snapshot envelope`);
  }
  const addresses: Record<NodeId, string> = {};
  for (const [id, address] of Object.entries(v[1] as Record<string, unknown>)) {
    if (typeof address === 'string' && id.length > 0) addresses[id] = address;
  }
  return { addresses, app: v[2] };
}
