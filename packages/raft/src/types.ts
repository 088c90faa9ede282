// The data model of raft-consensus-ts: entries, hard state, snapshots, messages and the Ready hand-off.
// Everything here is plain data (msgpack-encodable), shared by the core, storage, transport and simulator.

/** A member's id. Opaque to Raft; the cluster uses its node id (hex). Never the empty string. */
export type NodeId = string;

/** What a log entry carries. `conf-change` data is an encoded ConfChange (see encodeConfChange). */
export type EntryType = 'normal' | 'conf-change';

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** Opaque command bytes; an empty array for the no-op entry a new leader appends. */
  readonly data: Uint8Array;
}

/** What must be on stable storage before any message that depends on it leaves the node. */
export interface HardState {
  readonly term: number;
  /** Who this node voted for in `term`, or null. */
  readonly vote: NodeId | null;
  readonly commit: number;
}

export const emptyHardState: HardState = Object.freeze({ term: 0, vote: null, commit: 0 });

/** Membership: voters decide; learners only receive the log. A node is never in both. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** One membership change at a time (Raft thesis §4.1, single-server changes), applied when committed. */
export type ConfChange =
  | { readonly type: 'add-voter'; readonly nodeId: NodeId; readonly context?: Uint8Array }
  | { readonly type: 'add-learner'; readonly nodeId: NodeId; readonly context?: Uint8Array }
  | { readonly type: 'remove-node'; readonly nodeId: NodeId; readonly context?: Uint8Array };
// `context` (optional, opaque to Raft, at most 64 KiB) rides along with the change, e.g. the new member's address.

export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** The application's state machine image at meta.index. */
  readonly data: Uint8Array;
}

export const emptySnapshot: Snapshot = Object.freeze({
  meta: Object.freeze({ index: 0, term: 0, confState: Object.freeze({ voters: [], learners: [] }) }),
  data: new Uint8Array(0),
});

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  /** Sender's term. 0 only for local messages that never cross the network. */
  readonly term: number;
}

/**
 * Messages between Raft peers, a discriminated union on `type`.
 * - append: AppendEntries; (logTerm, index) is the entry preceding `entries`.
 * - append-resp: on success `index` is the last index the follower now matches;
 *   on reject `index` echoes the probe index and (rejectHint, logTerm) let the
 *   leader skip a whole conflicting term at once.
 * - vote / pre-vote: RequestVote (pre-vote uses term+1 without bumping the term).
 *   `transfer` marks a campaign started by leadership transfer (ignores leases).
 * - heartbeat carries `context` for ReadIndex rounds (null otherwise).
 * - snapshot: InstallSnapshot, whole (chunking is the transport's business).
 * - timeout-now: leadership transfer, "campaign now".
 * - read-index / read-index-resp: a follower asks the leader for a read index.
 */
export type Message =
  | (MessageBase & {
      readonly type: 'append';
      readonly logTerm: number;
      readonly index: number;
      readonly entries: readonly Entry[];
      readonly commit: number;
    })
  | (MessageBase & {
      readonly type: 'append-resp';
      readonly index: number;
      readonly reject: boolean;
      readonly rejectHint: number;
      readonly logTerm: number;
    })
  | (MessageBase & {
      readonly type: 'vote' | 'pre-vote';
      readonly logTerm: number;
      readonly index: number;
      readonly transfer: boolean;
    })
  | (MessageBase & { readonly type: 'vote-resp' | 'pre-vote-resp'; readonly reject: boolean })
  | (MessageBase & { readonly type: 'heartbeat'; readonly commit: number; readonly context: Uint8Array | null })
  | (MessageBase & { readonly type: 'heartbeat-resp'; readonly context: Uint8Array | null })
  | (MessageBase & { readonly type: 'snapshot'; readonly snapshot: Snapshot })
  | (MessageBase & { readonly type: 'timeout-now' })
  | (MessageBase & { readonly type: 'read-index'; readonly context: Uint8Array })
  | (MessageBase & { readonly type: 'read-index-resp'; readonly index: number; readonly context: Uint8Array });

export type MessageType = Message['type'];

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** Volatile state worth telling the host about when it changes. */
export interface SoftState {
  readonly leader: NodeId | null;
  readonly role: Role;
}

/** A ReadIndex request that is now safe to serve once applied index >= index. */
export interface ReadState {
  readonly index: number;
  readonly context: Uint8Array;
}

/**
 * The hand-off from the pure state machine to its host. The host must, in order:
 * 1. persist `snapshot` (if any), `entries` and `hardState` (if any), with one fsync when `mustSync`;
 * 2. then send `messages`;
 * 3. apply `snapshot` then `committedEntries` to the application state machine;
 * 4. call `advance(ready)`.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
  readonly mustSync: boolean;
}

/**
 * The log as the core reads it: synchronous, so it must be backed by memory
 * (MemoryStorage, loaded from the WAL on start). Mirrors etcd's raft.Storage.
 */
export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at most maxBytes of data (always at least one if any). Throws RaftError 'compacted' | 'unavailable'. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry i; valid for firstIndex()-1 ..= lastIndex(). Throws RaftError 'compacted' | 'unavailable'. */
  term(i: number): number;
  lastIndex(): number;
  /** Index of the first entry still held (snapshot index + 1). */
  firstIndex(): number;
  snapshot(): Snapshot;
}

/** Whatever the host logs through; pino's logger fits. */
export interface RaftLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: RaftLogger = { debug() {}, info() {}, warn() {}, error() {} };

export interface RaftConfig {
  readonly id: NodeId;
  readonly storage: Storage;
  /** Ticks without hearing from a leader before campaigning; randomized in [electionTick, 2*electionTick). */
  readonly electionTick: number;
  /** Ticks between leader heartbeats; must be < electionTick. */
  readonly heartbeatTick: number;
  /** Last applied index on restart (0 = from the snapshot). */
  readonly applied?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  /** Upper bound on bytes of entry data in one append message. */
  readonly maxSizePerMsg?: number;
  /** Upper bound on append messages in flight to one follower (pipelining window). */
  readonly maxInflightMsgs?: number;
  /** Upper bound on bytes of committed entries handed out in one Ready. */
  readonly maxCommittedSizePerReady?: number;
  /** Upper bound on uncommitted entries the leader accepts before dropping proposals. */
  readonly maxUncommittedEntries?: number;
  /** Injected randomness in [0, 1) (election timeout jitter). Deterministic in the simulator. */
  readonly random: () => number;
  readonly logger?: RaftLogger;
}

export type RaftErrorCode =
  | 'compacted'
  | 'unavailable'
  | 'snapshot_out_of_date'
  | 'not_leader'
  | 'proposal_dropped'
  | 'conf_change_pending'
  | 'invalid_config'
  | 'corrupt'
  | 'io';

export class RaftError extends Error {
  constructor(
    readonly code: RaftErrorCode,
    message: string,
    /** For not_leader: the leader this node knows of, if any. */
    readonly leaderHint: NodeId | null = null,
  ) {
    super(message);
    this.name = 'RaftError';
  }
}

/** Where a proposal landed in the log: applied with this term at this index means committed as proposed. */
export interface ProposalPosition {
  readonly index: number;
  readonly term: number;
}

export interface Status {
  readonly id: NodeId;
  readonly role: Role;
  readonly leader: NodeId | null;
  readonly term: number;
  readonly vote: NodeId | null;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly confState: ConfState;
  /** Leader only: each peer's match index. */
  readonly progress: Readonly<Record<NodeId, { match: number; next: number; state: 'probe' | 'replicate' | 'snapshot' }>>;
  readonly leadTransferee: NodeId | null;
}
