// SWIM wire messages, member metadata and the validation of everything that arrives from the network.
// Pure data (msgpack-encodable plain objects); swim.ts consumes them, membership.ts moves them.

/** Errors of this package; `code` says which rule was broken, the message says what to do. */
export type GossipErrorCode = 'invalid_message' | 'invalid_config' | 'invalid_address' | 'stopped' | 'dial_failed';

export class GossipError extends Error {
  constructor(
    readonly code: GossipErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'GossipError';
  }
}

export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`gossip invariant: ${msg}`);
}

/** The member's transport identity (the libp2p peer id string on a real network). */
export type MemberId = string;
export type Incarnation = number;
export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';
export type NodeRole = 'manager' | 'worker';

/** What a node tells the cluster about itself; carried with every alive update. */
export interface MemberMeta {
  /** The swarm node id (may equal the member id). */
  readonly nodeId: string;
  /** Multiaddrs (with /p2p/<peer id>) at which the member accepts connections. */
  readonly addrs: readonly string[];
  readonly hostname: string;
  readonly role: NodeRole;
  readonly cpus: number;
  readonly memoryBytes: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly version: string;
}

/** Membership updates, disseminated by piggyback, gossip and gossipsub. */
export type Update =
  | { readonly kind: 'alive'; readonly id: MemberId; readonly incarnation: Incarnation; readonly meta: MemberMeta }
  | { readonly kind: 'suspect'; readonly id: MemberId; readonly incarnation: Incarnation; readonly from: MemberId }
  | { readonly kind: 'dead'; readonly id: MemberId; readonly incarnation: Incarnation; readonly from: MemberId }
  | { readonly kind: 'left'; readonly id: MemberId; readonly incarnation: Incarnation };

/** One row of a full-state exchange (join and periodic anti-entropy). */
export interface SyncEntry {
  readonly id: MemberId;
  readonly incarnation: Incarnation;
  readonly state: MemberState;
  readonly meta: MemberMeta;
}

export type SwimMessage =
  | { readonly type: 'ping'; readonly seq: number; readonly target: MemberId; readonly updates: readonly Update[] }
  | { readonly type: 'ack'; readonly seq: number; readonly updates: readonly Update[] }
  | {
      readonly type: 'ping-req';
      readonly seq: number;
      readonly target: MemberId;
      readonly targetAddrs: readonly string[];
      readonly updates: readonly Update[];
    }
  | { readonly type: 'nack'; readonly seq: number; readonly updates: readonly Update[] }
  | { readonly type: 'gossip'; readonly updates: readonly Update[] }
  /** Full state; `reply: false` asks the receiver to answer with its own full state. */
  | { readonly type: 'sync'; readonly reply: boolean; readonly members: readonly SyncEntry[] };

/** Bounds on what we accept from the network: anything larger is refused, not allocated. */
export const LIMITS = {
  maxIdChars: 128,
  maxStringChars: 256,
  maxAddrs: 16,
  maxLabels: 64,
  maxUpdatesPerMessage: 64,
  maxSyncEntries: 4096,
} as const;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(field: string, why: string): never {
  throw new GossipError('invalid_message', `swim message field ${field}: ${why}`);
}

function str(o: Obj, field: string, maxChars: number = LIMITS.maxStringChars): string {
  const v = o[field];
  if (typeof v !== 'string') fail(field, 'expected a string');
  if (v.length > maxChars) fail(field, `longer than ${maxChars} characters`);
  return v;
}

function id(o: Obj, field: string): MemberId {
  const v = str(o, field, LIMITS.maxIdChars);
  if (v.length === 0) fail(field, 'empty id');
  return v;
}

function nat(o: Obj, field: string): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(field, 'expected a non-negative integer');
  return v;
}

function strList(o: Obj, field: string, maxItems: number): string[] {
  const v = o[field];
  if (!Array.isArray(v)) fail(field, 'expected a list');
  if (v.length > maxItems) fail(field, `more than ${maxItems} items`);
  return v.map((item, i) => {
    if (typeof item !== 'string' || item.length > LIMITS.maxStringChars) fail(`${field}[${i}]`, 'expected a short string');
    return item;
  });
}

export function parseMeta(v: unknown): MemberMeta {
  if (!isObj(v)) fail('meta', 'expected an object');
  const role = v['role'];
  if (role !== 'manager' && role !== 'worker') fail('meta.role', "expected 'manager' or 'worker'");
  const labelsRaw = v['labels'];
  if (!isObj(labelsRaw)) fail('meta.labels', 'expected an object');
  const entries = Object.entries(labelsRaw);
  if (entries.length > LIMITS.maxLabels) fail('meta.labels', `more than ${LIMITS.maxLabels} labels`);
  const labels: Record<string, string> = {};
  for (const [k, val] of entries) {
    if (k.length > LIMITS.maxStringChars || typeof val !== 'string' || val.length > LIMITS.maxStringChars) {
      fail(`meta.labels.${k.slice(0, 32)}`, 'expected a short string');
    }
    labels[k] = val;
  }
  return {
    nodeId: str(v, 'nodeId'),
    addrs: strList(v, 'addrs', LIMITS.maxAddrs),
    hostname: str(v, 'hostname'),
    role,
    cpus: nat(v, 'cpus'),
    memoryBytes: nat(v, 'memoryBytes'),
    labels,
    version: str(v, 'version'),
  };
}

function parseUpdate(v: unknown): Update {
  if (!isObj(v)) fail('update', 'expected an object');
  const kind = v['kind'];
  switch (kind) {
    case 'alive':
      return { kind, id: id(v, 'id'), incarnation: nat(v, 'incarnation'), meta: parseMeta(v['meta']) };
    case 'suspect':
    case 'dead':
      return { kind, id: id(v, 'id'), incarnation: nat(v, 'incarnation'), from: id(v, 'from') };
    case 'left':
      return { kind, id: id(v, 'id'), incarnation: nat(v, 'incarnation') };
    default:
      return fail('update.kind', 'unknown kind');
  }
}

function updates(o: Obj): Update[] {
  const v = o['updates'];
  if (!Array.isArray(v)) fail('updates', 'expected a list');
  if (v.length > LIMITS.maxUpdatesPerMessage) fail('updates', `more than ${LIMITS.maxUpdatesPerMessage} updates`);
  return v.map(parseUpdate);
}

function parseSyncEntry(v: unknown): SyncEntry {
  if (!isObj(v)) fail('members[]', 'expected an object');
  const state = v['state'];
  if (state !== 'alive' && state !== 'suspect' && state !== 'dead' && state !== 'left') fail('members[].state', 'unknown state');
  return { id: id(v, 'id'), incarnation: nat(v, 'incarnation'), state, meta: parseMeta(v['meta']) };
}

/** Validates a decoded message from the network; throws GossipError('invalid_message') naming the field. */
export function parseSwimMessage(v: unknown): SwimMessage {
  if (!isObj(v)) fail('message', 'expected an object');
  const type = v['type'];
  switch (type) {
    case 'ping':
      return { type, seq: nat(v, 'seq'), target: id(v, 'target'), updates: updates(v) };
    case 'ack':
    case 'nack':
      return { type, seq: nat(v, 'seq'), updates: updates(v) };
    case 'ping-req':
      return { type, seq: nat(v, 'seq'), target: id(v, 'target'), targetAddrs: strList(v, 'targetAddrs', LIMITS.maxAddrs), updates: updates(v) };
    case 'gossip':
      return { type, updates: updates(v) };
    case 'sync': {
      const reply = v['reply'];
      if (typeof reply !== 'boolean') fail('reply', 'expected a boolean');
      const members = v['members'];
      if (!Array.isArray(members)) fail('members', 'expected a list');
      if (members.length > LIMITS.maxSyncEntries) fail('members', `more than ${LIMITS.maxSyncEntries} entries`);
      return { type, reply, members: members.map(parseSyncEntry) };
    }
    default:
      return fail('type', 'unknown message type');
  }
}

export function metaEqual(a: MemberMeta, b: MemberMeta): boolean {
  if (a.nodeId !== b.nodeId || a.hostname !== b.hostname || a.role !== b.role || a.cpus !== b.cpus) return false;
  if (a.memoryBytes !== b.memoryBytes || a.version !== b.version) return false;
  if (a.addrs.length !== b.addrs.length || a.addrs.some((x, i) => x !== b.addrs[i])) return false;
  const ka = Object.keys(a.labels);
  if (ka.length !== Object.keys(b.labels).length) return false;
  return ka.every((k) => a.labels[k] === b.labels[k]);
}
