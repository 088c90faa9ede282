// The write format: a transaction is a list of create/update/delete ops that the leader encodes and proposes to Raft.
// decodeTransaction checks only the shape; whether the ops fit the current state is decided by Store.apply.

import { decodeStoreData, encodeStoreData } from './codec.js';
import { StoreError } from './errors.js';
import { isObjectKind, type Meta, type ObjectKind, type ObjectsByKind, type Version } from './objects.js';

/** Bound on ops per entry: 10,000-task scheduler batches fit with room; larger batches must be split. */
export const MAX_OPS_PER_TRANSACTION = 100_000;

const TRANSACTION_FORMAT = 1;

/** An object as a proposer hands it to create: meta is set by the store when the entry applies. */
export type NewObject<K extends ObjectKind> = Omit<ObjectsByKind[K], 'meta'> & { meta?: Meta };

export type Op = {
  [K in ObjectKind]:
    | { op: 'create'; kind: K; object: NewObject<K> }
    /** object.meta.version must be the version the proposer read: optimistic concurrency. */
    | { op: 'update'; kind: K; object: ObjectsByKind[K] }
    /** With version, the delete only applies if the object was not written since it was read. */
    | { op: 'delete'; kind: K; id: string; version?: Version };
}[ObjectKind];

export interface Transaction {
  /** The proposer's clock when it built the transaction: becomes createdAtMs/updatedAtMs, so replicas agree. */
  timestampMs: number;
  ops: Op[];
}

interface EncodedTransaction {
  format: number;
  timestampMs: number;
  ops: Op[];
}

export function encodeTransaction(tx: Transaction): Uint8Array {
  if (tx.ops.length === 0 || tx.ops.length > MAX_OPS_PER_TRANSACTION) {
    throw new StoreError('invalid', `a transaction carries 1 to ${MAX_OPS_PER_TRANSACTION} ops, not ${tx.ops.length}: split the batch`);
  }
  if (!Number.isFinite(tx.timestampMs)) throw new StoreError('invalid', 'transaction timestampMs must be a finite number');
  const body: EncodedTransaction = { format: TRANSACTION_FORMAT, timestampMs: tx.timestampMs, ops: tx.ops };
  return encodeStoreData(body);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Bytes from the log are outside data: a malformed entry is refused as 'invalid', never thrown past apply. */
export function decodeTransaction(bytes: Uint8Array): Transaction {
  let raw: unknown;
  try {
    raw = decodeStoreData(bytes);
  } catch (err) {
    throw new StoreError('invalid', `log entry is not a store transaction (undecodable: ${(err as Error).message})`);
  }
  if (!isRecord(raw) || raw['format'] !== TRANSACTION_FORMAT) {
    throw new StoreError('invalid', `log entry is not a store transaction of format ${TRANSACTION_FORMAT}`);
  }
  const timestampMs = raw['timestampMs'];
  const ops = raw['ops'];
  if (typeof timestampMs !== 'number' || !Number.isFinite(timestampMs)) {
    throw new StoreError('invalid', 'transaction timestampMs is not a finite number');
  }
  if (!Array.isArray(ops) || ops.length === 0 || ops.length > MAX_OPS_PER_TRANSACTION) {
    throw new StoreError('invalid', `transaction must carry 1 to ${MAX_OPS_PER_TRANSACTION} ops`);
  }
  for (let i = 0; i < ops.length; i++) {
    const op: unknown = ops[i];
    if (!isRecord(op) || !isObjectKind(op['kind'])) {
      throw new StoreError('invalid', `op ${i}: not an op on a known object kind`, i);
    }
    const kind = op['kind'];
    switch (op['op']) {
      case 'create':
      case 'update': {
        const object = op['object'];
        if (!isRecord(object) || typeof object['id'] !== 'string' || object['id'] === '') {
          throw new StoreError('invalid', `op ${i}: ${op['op']} ${kind} needs an object with a non-empty string id`, i);
        }
        break;
      }
      case 'delete': {
        if (typeof op['id'] !== 'string' || op['id'] === '') {
          throw new StoreError('invalid', `op ${i}: delete ${kind} needs a non-empty string id`, i);
        }
        const version = op['version'];
        if (version !== undefined && version !== null && !(isRecord(version) && typeof version['index'] === 'number')) {
          throw new StoreError('invalid', `op ${i}: delete ${kind} version must be {index: number}`, i);
        }
        break;
      }
      default:
        throw new StoreError('invalid', `op ${i}: unknown op ${JSON.stringify(op['op'])} (create, update or delete)`, i);
    }
  }
  return { timestampMs, ops: ops as Op[] };
}
