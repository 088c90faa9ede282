// Shape checks for Raft messages that arrive from the network, before Raft ever sees them.
// A peer is trusted to be a peer, not to be bug-free: a bad field is a protocol error, never a crash.

import type { ConfState, Entry, Message, MessageType, Snapshot } from '../types.js';

export class MessageShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MessageShapeError';
  }
}

const messageTypes: ReadonlySet<string> = new Set<MessageType>([
  'append',
  'append-resp',
  'vote',
  'pre-vote',
  'vote-resp',
  'pre-vote-resp',
  'heartbeat',
  'heartbeat-resp',
  'snapshot',
  'timeout-now',
  'read-index',
  'read-index-resp',
]);

/** Upper bound on entries in one append message; far above what any sane maxSizePerMsg produces. */
export const MAX_ENTRIES_PER_MESSAGE = 1_000_000;

type Fields = Record<string, unknown>;

function isRecord(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function fail(what: string): never {
  throw new MessageShapeError(what);
}

function index(o: Fields, key: string, where: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${where}.${key} must be a non-negative integer`);
  return v;
}

function bool(o: Fields, key: string, where: string): boolean {
  const v = o[key];
  if (typeof v !== 'boolean') fail(`${where}.${key} must be a boolean`);
  return v;
}

function id(o: Fields, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > 256) fail(`${where}.${key} must be a non-empty node id`);
  return v;
}

function bytes(o: Fields, key: string, where: string): Uint8Array {
  const v = o[key];
  if (!(v instanceof Uint8Array)) fail(`${where}.${key} must be bytes`);
  return v;
}

function bytesOrNull(o: Fields, key: string, where: string): Uint8Array | null {
  return o[key] === null || o[key] === undefined ? null : bytes(o, key, where);
}

function idList(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || v.length > 10_000) fail(`${where} must be a list of node ids`);
  return v.map((x, i) => {
    if (typeof x !== 'string' || x.length === 0) fail(`${where}[${i}] must be a non-empty node id`);
    return x;
  });
}

function confState(v: unknown, where: string): ConfState {
  if (!isRecord(v)) fail(`${where} must be an object`);
  return { voters: idList(v['voters'], `${where}.voters`), learners: idList(v['learners'], `${where}.learners`) };
}

function entry(v: unknown, where: string): Entry {
  if (!isRecord(v)) fail(`${where} must be an object`);
  const type = v['type'];
  if (type !== 'normal' && type !== 'conf-change') fail(`${where}.type must be 'normal' or 'conf-change'`);
  return { term: index(v, 'term', where), index: index(v, 'index', where), type, data: bytes(v, 'data', where) };
}

function snapshot(v: unknown, where: string): Snapshot {
  if (!isRecord(v)) fail(`${where} must be an object`);
  const meta = v['meta'];
  if (!isRecord(meta)) fail(`${where}.meta must be an object`);
  return {
    meta: {
      index: index(meta, 'index', `${where}.meta`),
      term: index(meta, 'term', `${where}.meta`),
      confState: confState(meta['confState'], `${where}.meta.confState`),
    },
    data: bytes(v, 'data', where),
  };
}

/**
 * Returns a freshly built Message holding only the known fields, or throws MessageShapeError
 * naming the first bad field. Rebuilding (rather than casting) keeps stray fields out of Raft.
 */
export function validateMessage(v: unknown): Message {
  if (!isRecord(v)) fail('message must be an object');
  const type = v['type'];
  if (typeof type !== 'string' || !messageTypes.has(type)) fail(`message.type ${JSON.stringify(type)} is not a Raft message type`);
  const base = { from: id(v, 'from', 'message'), to: id(v, 'to', 'message'), term: index(v, 'term', 'message') };
  const w = `message(${type})`;
  switch (type as MessageType) {
    case 'append': {
      const entries = v['entries'];
      if (!Array.isArray(entries) || entries.length > MAX_ENTRIES_PER_MESSAGE) fail(`${w}.entries must be a list`);
      return {
        ...base,
        type: 'append',
        logTerm: index(v, 'logTerm', w),
        index: index(v, 'index', w),
        commit: index(v, 'commit', w),
        entries: entries.map((e, i) => entry(e, `${w}.entries[${i}]`)),
      };
    }
    case 'append-resp':
      return {
        ...base,
        type: 'append-resp',
        index: index(v, 'index', w),
        reject: bool(v, 'reject', w),
        rejectHint: index(v, 'rejectHint', w),
        logTerm: index(v, 'logTerm', w),
      };
    case 'vote':
    case 'pre-vote':
      return {
        ...base,
        type: type as 'vote' | 'pre-vote',
        logTerm: index(v, 'logTerm', w),
        index: index(v, 'index', w),
        transfer: bool(v, 'transfer', w),
      };
    case 'vote-resp':
    case 'pre-vote-resp':
      return { ...base, type: type as 'vote-resp' | 'pre-vote-resp', reject: bool(v, 'reject', w) };
    case 'heartbeat':
      return { ...base, type: 'heartbeat', commit: index(v, 'commit', w), context: bytesOrNull(v, 'context', w) };
    case 'heartbeat-resp':
      return { ...base, type: 'heartbeat-resp', context: bytesOrNull(v, 'context', w) };
    case 'snapshot':
      return { ...base, type: 'snapshot', snapshot: snapshot(v['snapshot'], `${w}.snapshot`) };
    case 'timeout-now':
      return { ...base, type: 'timeout-now' };
    case 'read-index':
      return { ...base, type: 'read-index', context: bytes(v, 'context', w) };
    case 'read-index-resp':
      return { ...base, type: 'read-index-resp', index: index(v, 'index', w), context: bytes(v, 'context', w) };
  }
}
