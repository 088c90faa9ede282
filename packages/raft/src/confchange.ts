// Encoding of membership changes carried in 'conf-change' log entries, and the pure rule that applies one
// change to a ConfState. Both must be deterministic: every node applies the same bytes to the same state.

import { RaftError, type ConfChange, type ConfState, type NodeId } from './types.js';

const MAGIC = 0x43; // 'C'
const VERSION = 1;
const TYPE_CODES: Readonly<Record<ConfChange['type'], number>> = { 'add-voter': 1, 'add-learner': 2, 'remove-node': 3 };
/** Bound on an encoded node id, so a corrupt entry cannot make us decode megabytes as an id. */
const MAX_NODE_ID_BYTES = 1024;
export const MAX_CONF_CHANGE_CONTEXT_BYTES = 64 * 1024;
const HEADER_BYTES = 6;
const FLAG_HAS_CONTEXT = 1;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** Layout: magic, version, type code, flags, node id length (u16 BE), node id (UTF-8), then the context bytes. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  if (cc.nodeId === '') throw new RaftError('invalid_config', 'a conf change needs a non-empty nodeId');
  const id = utf8Encoder.encode(cc.nodeId);
  if (id.length > MAX_NODE_ID_BYTES) throw new RaftError('invalid_config', `nodeId is longer than ${MAX_NODE_ID_BYTES} bytes`);
  const ctx = cc.context;
  if (ctx !== undefined && ctx.length > MAX_CONF_CHANGE_CONTEXT_BYTES) {
    throw new RaftError('invalid_config', `conf change context is longer than ${MAX_CONF_CHANGE_CONTEXT_BYTES} bytes`);
  }
  const out = new Uint8Array(HEADER_BYTES + id.length + (ctx?.length ?? 0));
  out[0] = MAGIC;
  out[1] = VERSION;
  out[2] = TYPE_CODES[cc.type];
  out[3] = ctx === undefined ? 0 : FLAG_HAS_CONTEXT;
  out[4] = id.length >>> 8;
  out[5] = id.length & 0xff;
  out.set(id, HEADER_BYTES);
  if (ctx !== undefined) out.set(ctx, HEADER_BYTES + id.length);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.length < HEADER_BYTES + 1 || data.length > HEADER_BYTES + MAX_NODE_ID_BYTES + MAX_CONF_CHANGE_CONTEXT_BYTES) {
    throw new RaftError('corrupt', `conf change entry has an impossible length ${data.length}`);
  }
  if (data[0] !== MAGIC || data[1] !== VERSION) throw new RaftError('corrupt', 'conf change entry has a bad header');
  const flags = data[3] ?? 0;
  if ((flags & ~FLAG_HAS_CONTEXT) !== 0) throw new RaftError('corrupt', 'conf change entry has unknown flags');
  const idLen = ((data[4] ?? 0) << 8) | (data[5] ?? 0);
  if (idLen === 0 || idLen > MAX_NODE_ID_BYTES || HEADER_BYTES + idLen > data.length) {
    throw new RaftError('corrupt', `conf change entry has a bad node id length ${idLen}`);
  }
  const hasContext = (flags & FLAG_HAS_CONTEXT) !== 0;
  if (!hasContext && HEADER_BYTES + idLen !== data.length) throw new RaftError('corrupt', 'conf change entry has trailing bytes');
  let nodeId: string;
  try {
    nodeId = utf8Decoder.decode(data.subarray(HEADER_BYTES, HEADER_BYTES + idLen));
  } catch {
    throw new RaftError('corrupt', 'conf change entry has a node id that is not UTF-8');
  }
  const extra = hasContext ? { context: data.slice(HEADER_BYTES + idLen) } : {};
  switch (data[2]) {
    case 1:
      return { type: 'add-voter', nodeId, ...extra };
    case 2:
      return { type: 'add-learner', nodeId, ...extra };
    case 3:
      return { type: 'remove-node', nodeId, ...extra };
    default:
      throw new RaftError('corrupt', `conf change entry has an unknown type code ${String(data[2])}`);
  }
}

/**
 * The membership after applying cc to cs. Total (never throws) so that every replica applying a committed entry
 * agrees; validity is checked when the change is proposed. Output lists are sorted for a canonical form.
 */
export function applyConfChangeToState(cs: ConfState, cc: ConfChange): ConfState {
  const voters = new Set<NodeId>(cs.voters);
  const learners = new Set<NodeId>(cs.learners);
  switch (cc.type) {
    case 'add-voter':
      learners.delete(cc.nodeId);
      voters.add(cc.nodeId);
      break;
    case 'add-learner':
      voters.delete(cc.nodeId);
      learners.add(cc.nodeId);
      break;
    case 'remove-node':
      voters.delete(cc.nodeId);
      learners.delete(cc.nodeId);
      break;
  }
  return { voters: [...voters].sort(), learners: [...learners].sort() };
}

/** Throws invalid_config when cc must not be proposed against the current membership cs. */
export function validateConfChange(cs: ConfState, cc: ConfChange): void {
  if (cc.nodeId === '') throw new RaftError('invalid_config', 'a conf change needs a non-empty nodeId');
  const isVoter = cs.voters.includes(cc.nodeId);
  if (cc.type === 'add-learner' && isVoter) {
    throw new RaftError('invalid_config', `${cc.nodeId} is a voter; demoting a voter to learner is not supported: remove it first`);
  }
  if (cc.type === 'remove-node' && isVoter && cs.voters.length === 1) {
    throw new RaftError('invalid_config', `${cc.nodeId} is the only voter; removing it would leave no quorum`);
  }
}
