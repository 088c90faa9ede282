// The Store: in-memory tables and indexes of the cluster's objects, changed only by apply(index, bytes) of committed entries.
// Deterministic and all-or-nothing per entry, so every manager that applies the same log holds the same bytes.

import { decodeStoreData, encodeStoreData } from './codec.js';
import { assert, StoreError, WatchClosedError } from './errors.js';
import {
  canTransitionTask,
  isObjectKind,
  isTaskState,
  OBJECT_KINDS,
  UNIQUE_NAME_KINDS,
  type Meta,
  type Node,
  type ObjectKind,
  type ObjectsByKind,
  type StoreObject,
  type Task,
} from './objects.js';
import { decodeTransaction, type Op } from './transaction.js';
import { DEFAULT_MAX_QUEUED_EVENTS, Watcher, type StoreEvent, type WatchFilter, type WatchOptions } from './watch.js';

export type ApplyResult =
  | { ok: true; index: number; events: StoreEvent[] }
  | { ok: false; index: number; error: StoreError };

export interface StoreOptions {
  /** Events kept for watch({sinceIndex}); older ones are compacted and such a watcher must re-list. */
  maxHistoryEvents?: number;
}

export const DEFAULT_MAX_HISTORY_EVENTS = 50_000;

/** Consistent reads: what view() hands its callback. Returned objects are frozen; copy (structuredClone) to change. */
export interface ReadTx {
  /** The Raft index of the last applied entry: every object's version is at most this. */
  readonly index: number;
  get<K extends ObjectKind>(kind: K, id: string): ObjectsByKind[K] | undefined;
  /** All objects of a kind, in no particular order. */
  list<K extends ObjectKind>(kind: K): ObjectsByKind[K][];
  count(kind: ObjectKind): number;
  /** Case-insensitive, for kinds with unique names (not nodes: see nodesByHostname). */
  getByName<K extends ObjectKind>(kind: K, name: string): ObjectsByKind[K] | undefined;
  nodesByHostname(hostname: string): Node[];
  tasksByService(serviceId: string): Task[];
  tasksByNode(nodeId: string): Task[];
  tasksBySlot(serviceId: string, slot: number): Task[];
}

type Tables = { [K in ObjectKind]: Map<string, ObjectsByKind[K]> };
type AnyTable = Map<string, StoreObject>;

interface Undo {
  kind: ObjectKind;
  id: string;
  previous: StoreObject | undefined;
}

const SNAPSHOT_FORMAT = 1;

function emptyTables(): Tables {
  return {
    cluster: new Map(),
    node: new Map(),
    service: new Map(),
    task: new Map(),
    network: new Map(),
    secret: new Map(),
    config: new Map(),
    volume: new Map(),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Stored objects are frozen so a reader cannot change the store behind Raft's back. Decoding already froze
 * everything below the top level (codec.ts); this freezes what apply built on top and checks the rest.
 */
function freezeStored(object: StoreObject): void {
  Object.freeze(object.meta.version);
  for (const value of Object.values(object)) {
    if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value)) Object.freeze(value);
  }
  Object.freeze(object);
  const spec: unknown = (object as { spec?: unknown }).spec;
  assert(spec === undefined || Object.isFrozen(spec), `${object.id}: spec was not frozen by decode`);
}

/** Order-insensitive structural equality, for "did the spec change" (key order may differ between proposers). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) {
    if (!ArrayBuffer.isView(a) || !ArrayBuffer.isView(b) || a.byteLength !== b.byteLength) return false;
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

function nameOf(kind: ObjectKind, object: StoreObject): string | null {
  if (!UNIQUE_NAME_KINDS.has(kind)) return null;
  const spec = (object as { spec?: unknown }).spec;
  return isRecord(spec) && typeof spec['name'] === 'string' ? spec['name'].toLowerCase() : null;
}

function slotKey(serviceId: string, slot: number): string {
  return `${serviceId}\u0000${slot}`;
}

function addTo(index: Map<string, Set<string>>, key: string, id: string): void {
  let set = index.get(key);
  if (set === undefined) {
    set = new Set();
    index.set(key, set);
  }
  set.add(id);
}

function removeFrom(index: Map<string, Set<string>>, key: string, id: string): void {
  const set = index.get(key);
  assert(set !== undefined && set.delete(id), `index entry ${key} -> ${id} missing`);
  if (set.size === 0) index.delete(key);
}

export class Store implements ReadTx {
  private tables: Tables = emptyTables();
  private names = new Map<ObjectKind, Map<string, string>>();
  private byHostname = new Map<string, Set<string>>();
  private byService = new Map<string, Set<string>>();
  private byNode = new Map<string, Set<string>>();
  private bySlot = new Map<string, Set<string>>();
  private applied = 0;
  private applying = false;

  /** Recent transactions' events, oldest first, for watch({sinceIndex}); historyFloor: all events after it are kept. */
  private history: Array<{ index: number; events: StoreEvent[] }> = [];
  private historyEvents = 0;
  private historyFloor = 0;
  private readonly maxHistoryEvents: number;
  private readonly watchers = new Set<Watcher>();

  constructor(options: StoreOptions = {}) {
    this.maxHistoryEvents = options.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
    assert(Number.isInteger(this.maxHistoryEvents) && this.maxHistoryEvents >= 0, 'maxHistoryEvents must be >= 0');
  }

  get appliedIndex(): number {
    return this.applied;
  }

  get index(): number {
    return this.applied;
  }

  get watcherCount(): number {
    return this.watchers.size;
  }

  // ------------------------------------------------------------ reads

  /** A consistent read: the callback must be synchronous, or it could see two versions across an await. */
  view<R>(fn: (tx: ReadTx) => R): R {
    assert(!this.applying, 'view() called from inside apply() (from a watch filter?)');
    const result = fn(this);
    assert(!(result instanceof Promise), 'view() callbacks must be synchronous');
    return result;
  }

  get<K extends ObjectKind>(kind: K, id: string): ObjectsByKind[K] | undefined {
    return (this.tables[kind] as Map<string, ObjectsByKind[K]>).get(id);
  }

  list<K extends ObjectKind>(kind: K): ObjectsByKind[K][] {
    return [...(this.tables[kind] as Map<string, ObjectsByKind[K]>).values()];
  }

  count(kind: ObjectKind): number {
    return this.tables[kind].size;
  }

  getByName<K extends ObjectKind>(kind: K, name: string): ObjectsByKind[K] | undefined {
    const id = this.names.get(kind)?.get(name.toLowerCase());
    return id === undefined ? undefined : this.get(kind, id);
  }

  nodesByHostname(hostname: string): Node[] {
    return this.resolve('node', this.byHostname.get(hostname));
  }

  tasksByService(serviceId: string): Task[] {
    return this.resolve('task', this.byService.get(serviceId));
  }

  tasksByNode(nodeId: string): Task[] {
    return this.resolve('task', this.byNode.get(nodeId));
  }

  tasksBySlot(serviceId: string, slot: number): Task[] {
    return this.resolve('task', this.bySlot.get(slotKey(serviceId, slot)));
  }

  private resolve<K extends ObjectKind>(kind: K, ids: Set<string> | undefined): ObjectsByKind[K][] {
    if (ids === undefined) return [];
    const out: ObjectsByKind[K][] = [];
    for (const id of ids) {
      const object = this.get(kind, id);
      assert(object !== undefined, `index names ${kind} ${id}, which is not in its table`);
      out.push(object);
    }
    return out;
  }

  // ------------------------------------------------------------ the write path

  /**
   * Apply one committed log entry. Every manager runs this for every entry in log order; it never throws on bad
   * entry content (the result says why it was refused), only on a host bug such as a non-increasing index.
   * Empty data is a no-op entry (a new leader's first entry, say) that only advances the index.
   */
  apply(index: number, data: Uint8Array): ApplyResult {
    assert(Number.isSafeInteger(index) && index > this.applied, `apply index ${index} must exceed applied index ${this.applied}`);
    assert(!this.applying, 'apply() re-entered');
    if (data.length === 0) {
      this.applied = index;
      return { ok: true, index, events: [] };
    }
    this.applying = true;
    const undo: Undo[] = [];
    let events: StoreEvent[];
    try {
      events = this.runOps(data, index, undo);
    } catch (err) {
      this.rollback(undo);
      this.applying = false;
      if (!(err instanceof StoreError)) throw err;
      this.applied = index;
      return { ok: false, index, error: err };
    }
    this.applied = index;
    this.applying = false;
    this.publish(index, events);
    return { ok: true, index, events };
  }

  /**
   * Would this transaction apply on the current state? The leader checks before proposing to fail fast; the
   * verdict at apply time may differ if other entries commit first.
   */
  check(data: Uint8Array): StoreError | null {
    assert(!this.applying, 'check() called from inside apply()');
    this.applying = true;
    const undo: Undo[] = [];
    try {
      this.runOps(data, this.applied + 1, undo);
      return null;
    } catch (err) {
      if (err instanceof StoreError) return err;
      throw err;
    } finally {
      this.rollback(undo);
      this.applying = false;
    }
  }

  /** Decode and apply every op to the live tables, logging undo steps; throws StoreError at the first bad op. */
  private runOps(data: Uint8Array, index: number, undo: Undo[]): StoreEvent[] {
    const tx = decodeTransaction(data);
    const touched = new Set<string>();
    const events: StoreEvent[] = [];
    for (let i = 0; i < tx.ops.length; i++) {
      const op = tx.ops[i];
      assert(op !== undefined, 'op missing');
      const key = `${op.kind}\u0000${op.op === 'delete' ? op.id : op.object.id}`;
      if (touched.has(key)) {
        throw new StoreError('invalid', `op ${i}: ${op.kind} is written twice in one transaction: merge the ops`, i);
      }
      touched.add(key);
      events.push(this.applyOp(op, i, index, tx.timestampMs, undo));
    }
    assert(undo.length === tx.ops.length, 'one undo step per applied op');
    return events;
  }

  private applyOp(op: Op, i: number, index: number, timestampMs: number, undo: Undo[]): StoreEvent {
    const table = this.tables[op.kind] as AnyTable;
    if (op.op === 'delete') {
      const current = table.get(op.id);
      if (current === undefined) throw new StoreError('not_found', `op ${i}: cannot delete ${op.kind} ${op.id}: it does not exist`, i);
      if (op.version !== undefined && op.version !== null && op.version.index !== current.meta.version.index) {
        throw this.conflict(op.kind, op.id, op.version.index, current, i);
      }
      undo.push({ kind: op.kind, id: op.id, previous: current });
      this.remove(op.kind, current);
      return { action: 'delete', kind: op.kind, object: current, index } as StoreEvent;
    }

    const proposed = op.object as unknown as Record<string, unknown>;
    const id = proposed['id'] as string;
    const current = table.get(id);
    let meta: Meta;
    if (op.op === 'create') {
      if (current !== undefined) throw new StoreError('exists', `op ${i}: ${op.kind} ${id} already exists`, i);
      meta = { version: { index }, createdAtMs: timestampMs, updatedAtMs: timestampMs };
    } else {
      if (current === undefined) throw new StoreError('not_found', `op ${i}: cannot update ${op.kind} ${id}: it does not exist`, i);
      const m = proposed['meta'];
      const v = isRecord(m) ? m['version'] : undefined;
      if (!isRecord(v) || typeof v['index'] !== 'number') {
        throw new StoreError('invalid', `op ${i}: update of ${op.kind} ${id} must carry meta.version as read`, i);
      }
      if (v['index'] !== current.meta.version.index) throw this.conflict(op.kind, id, v['index'], current, i);
      meta = { version: { index }, createdAtMs: current.meta.createdAtMs, updatedAtMs: timestampMs };
    }
    const object = { ...proposed, meta } as unknown as StoreObject;
    this.validate(op.kind, object, current, i);
    if (op.kind === 'service') {
      // The spec's own version: tasks record it, so the orchestrator knows which tasks run an older spec.
      const spec = (object as ObjectsByKind['service']).spec;
      const prev = current as ObjectsByKind['service'] | undefined;
      (object as ObjectsByKind['service']).specVersion =
        prev !== undefined && deepEqual(prev.spec, spec) ? prev.specVersion : { index };
    }
    const name = nameOf(op.kind, object);
    if (name !== null) {
      const holder = this.names.get(op.kind)?.get(name);
      if (holder !== undefined && holder !== id) {
        throw new StoreError('name_conflict', `op ${i}: ${op.kind} name "${name}" is already used by ${holder}: choose another name`, i);
      }
    }
    freezeStored(object);
    undo.push({ kind: op.kind, id, previous: current });
    if (current !== undefined) this.remove(op.kind, current);
    this.put(op.kind, object);
    return (current === undefined
      ? { action: 'create', kind: op.kind, object, index }
      : { action: 'update', kind: op.kind, object, previous: current, index }) as StoreEvent;
  }

  private conflict(kind: ObjectKind, id: string, readIndex: number, current: StoreObject, i: number): StoreError {
    return new StoreError(
      'version_conflict',
      `op ${i}: ${kind} ${id} was read at version ${readIndex} but is now at ${current.meta.version.index}: read it again and retry`,
      i,
    );
  }

  /** Shape checks the rest of the store relies on (indexes, task order); deep spec validation is the API's job. */
  private validate(kind: ObjectKind, object: StoreObject, current: StoreObject | undefined, i: number | null): void {
    const where = i === null ? 'snapshot' : `op ${i}`;
    const bad = (what: string): StoreError => new StoreError('invalid', `${where}: ${kind} ${object.id}: ${what}`, i);
    const spec = (object as { spec?: unknown }).spec;
    if (kind !== 'task' && !isRecord(spec)) throw bad('spec must be an object');
    if (UNIQUE_NAME_KINDS.has(kind) && (!isRecord(spec) || typeof spec['name'] !== 'string' || spec['name'] === '')) {
      throw bad('spec.name must be a non-empty string');
    }
    if (kind === 'node') {
      const d = (object as unknown as Record<string, unknown>)['description'];
      if (!isRecord(d) || typeof d['hostname'] !== 'string') throw bad('description.hostname must be a string');
    }
    if (kind === 'task') {
      const t = object as unknown as Record<string, unknown>;
      const status = t['status'];
      if (typeof t['serviceId'] !== 'string' || t['serviceId'] === '') throw bad('serviceId must be a non-empty string');
      if (typeof t['slot'] !== 'number' || !Number.isInteger(t['slot']) || t['slot'] < 0) throw bad('slot must be an integer >= 0');
      if (typeof t['nodeId'] !== 'string') throw bad('nodeId must be a string (empty while unassigned)');
      if (!isTaskState(t['desiredState'])) throw bad(`desiredState ${JSON.stringify(t['desiredState'])} is not a task state`);
      if (!isRecord(status) || !isTaskState(status['state'])) throw bad('status.state is not a task state');
      if (typeof status['timestampMs'] !== 'number') throw bad('status.timestampMs must be a number');
      if (current !== undefined) {
        const prev = current as Task;
        const next = object as Task;
        if (next.serviceId !== prev.serviceId || next.slot !== prev.slot) throw bad('serviceId and slot never change');
        if (prev.nodeId !== '' && next.nodeId !== prev.nodeId) {
          throw bad(`task is assigned to ${prev.nodeId} and cannot move to ${JSON.stringify(next.nodeId)}: create a new task`);
        }
        if (!canTransitionTask(prev.status.state, next.status.state)) {
          throw bad(`status cannot move backwards from ${prev.status.state} to ${next.status.state}`);
        }
      }
    }
  }

  private put(kind: ObjectKind, object: StoreObject): void {
    const table = this.tables[kind] as AnyTable;
    assert(!table.has(object.id), `put of ${kind} ${object.id} over a present object`);
    table.set(object.id, object);
    const name = nameOf(kind, object);
    if (name !== null) {
      let names = this.names.get(kind);
      if (names === undefined) {
        names = new Map();
        this.names.set(kind, names);
      }
      assert(!names.has(name), `name ${name} of ${kind} indexed twice`);
      names.set(name, object.id);
    }
    if (kind === 'node') addTo(this.byHostname, (object as Node).description.hostname, object.id);
    if (kind === 'task') {
      const t = object as Task;
      addTo(this.byService, t.serviceId, t.id);
      if (t.nodeId !== '') addTo(this.byNode, t.nodeId, t.id);
      addTo(this.bySlot, slotKey(t.serviceId, t.slot), t.id);
    }
  }

  private remove(kind: ObjectKind, object: StoreObject): void {
    const table = this.tables[kind] as AnyTable;
    assert(table.get(object.id) === object, `remove of ${kind} ${object.id} that is not the stored version`);
    table.delete(object.id);
    const name = nameOf(kind, object);
    if (name !== null) {
      const names = this.names.get(kind);
      assert(names?.get(name) === object.id, `name index of ${kind} lost ${name}`);
      names.delete(name);
    }
    if (kind === 'node') removeFrom(this.byHostname, (object as Node).description.hostname, object.id);
    if (kind === 'task') {
      const t = object as Task;
      removeFrom(this.byService, t.serviceId, t.id);
      if (t.nodeId !== '') removeFrom(this.byNode, t.nodeId, t.id);
      removeFrom(this.bySlot, slotKey(t.serviceId, t.slot), t.id);
    }
  }

  /** Undo in reverse order: each entry puts back what was there before that step. */
  private rollback(undo: Undo[]): void {
    for (let i = undo.length - 1; i >= 0; i--) {
      const step = undo[i];
      assert(step !== undefined, 'undo step missing');
      const table = this.tables[step.kind] as AnyTable;
      const present = table.get(step.id);
      if (present !== undefined) this.remove(step.kind, present);
      if (step.previous !== undefined) this.put(step.kind, step.previous);
    }
  }

  // ------------------------------------------------------------ watches

  /**
   * Events of every transaction applied from now on (or after sinceIndex, from the bounded history), filtered,
   * through a bounded queue. The watcher is closed with a reason when it falls behind, when sinceIndex is older
   * than the history, or when the store is restored from a snapshot: then re-list and watch again.
   */
  watch(filter: WatchFilter = {}, options: WatchOptions = {}): Watcher {
    assert(!this.applying, 'watch() called from inside apply()');
    const watcher = new Watcher(filter, options.maxQueuedEvents ?? DEFAULT_MAX_QUEUED_EVENTS, (w) => this.watchers.delete(w));
    const since = options.sinceIndex;
    this.watchers.add(watcher);
    if (since === undefined) return watcher;
    if (!Number.isInteger(since) || since > this.applied) {
      this.watchers.delete(watcher);
      throw new StoreError('invalid', `watch sinceIndex ${since} must be an integer at most the applied index ${this.applied}`);
    }
    if (since < this.historyFloor) {
      watcher.terminate(
        new WatchClosedError('compacted', `events after index ${since} are no longer kept (history starts after ${this.historyFloor}): re-list and watch again`),
      );
      return watcher;
    }
    for (const entry of this.history) {
      if (entry.index <= since) continue;
      for (const event of entry.events) watcher.deliver(event);
    }
    return watcher;
  }

  private publish(index: number, events: StoreEvent[]): void {
    if (events.length === 0) return;
    this.history.push({ index, events });
    this.historyEvents += events.length;
    while (this.historyEvents > this.maxHistoryEvents) {
      const dropped = this.history.shift();
      assert(dropped !== undefined, 'history accounting out of step');
      this.historyEvents -= dropped.events.length;
      this.historyFloor = dropped.index;
    }
    for (const watcher of [...this.watchers]) {
      for (const event of events) watcher.deliver(event);
    }
  }

  // ------------------------------------------------------------ snapshots

  /** The Raft snapshot data: every table sorted by id, so equal stores give equal bytes. */
  snapshot(): Uint8Array {
    assert(!this.applying, 'snapshot() called from inside apply()');
    const tables: Array<[ObjectKind, StoreObject[]]> = OBJECT_KINDS.map((kind) => {
      const objects = [...(this.tables[kind] as AnyTable).values()];
      objects.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return [kind, objects];
    });
    return encodeStoreData({ format: SNAPSHOT_FORMAT, appliedIndex: this.applied, tables });
  }

  /**
   * Replace the whole state with a snapshot's (a follower far behind, or a restart). All-or-nothing: bad bytes
   * throw StoreError('invalid') and leave the store as it was. Open watchers are closed: they must re-list.
   */
  restore(data: Uint8Array): void {
    assert(!this.applying, 'restore() called from inside apply()');
    let raw: unknown;
    try {
      raw = decodeStoreData(data);
    } catch (err) {
      throw new StoreError('invalid', `snapshot is undecodable: ${(err as Error).message}`);
    }
    if (!isRecord(raw) || raw['format'] !== SNAPSHOT_FORMAT || !Array.isArray(raw['tables'])) {
      throw new StoreError('invalid', `snapshot is not a store snapshot of format ${SNAPSHOT_FORMAT}`);
    }
    const appliedIndex = raw['appliedIndex'];
    if (typeof appliedIndex !== 'number' || !Number.isSafeInteger(appliedIndex) || appliedIndex < 0) {
      throw new StoreError('invalid', 'snapshot appliedIndex is not a non-negative integer');
    }
    const fresh = new Store({ maxHistoryEvents: this.maxHistoryEvents });
    for (const entry of raw['tables'] as unknown[]) {
      if (!Array.isArray(entry) || !isObjectKind(entry[0]) || !Array.isArray(entry[1])) {
        throw new StoreError('invalid', 'snapshot table entry is not [kind, objects]');
      }
      const kind = entry[0];
      for (const object of entry[1] as unknown[]) {
        const meta = isRecord(object) ? object['meta'] : undefined;
        const version = isRecord(meta) ? meta['version'] : undefined;
        if (!isRecord(object) || typeof object['id'] !== 'string' || !isRecord(version) || typeof version['index'] !== 'number') {
          throw new StoreError('invalid', `snapshot ${kind} without id or meta.version`);
        }
        const o = object as unknown as StoreObject;
        if ((fresh.tables[kind] as AnyTable).has(o.id)) throw new StoreError('invalid', `snapshot holds ${kind} ${o.id} twice`);
        if (o.meta.version.index > appliedIndex) {
          throw new StoreError('invalid', `snapshot ${kind} ${o.id} has version ${o.meta.version.index} beyond its index ${appliedIndex}`);
        }
        fresh.validate(kind, o, undefined, null);
        const name = nameOf(kind, o);
        if (name !== null && fresh.names.get(kind)?.has(name) === true) {
          throw new StoreError('invalid', `snapshot holds two ${kind}s named ${name}`);
        }
        freezeStored(o);
        fresh.put(kind, o);
      }
    }
    // Swap in the fully built state only now, so a bad snapshot changes nothing.
    this.tables = fresh.tables;
    this.names = fresh.names;
    this.byHostname = fresh.byHostname;
    this.byService = fresh.byService;
    this.byNode = fresh.byNode;
    this.bySlot = fresh.bySlot;
    this.applied = appliedIndex;
    this.history = [];
    this.historyEvents = 0;
    this.historyFloor = appliedIndex;
    for (const watcher of [...this.watchers]) {
      watcher.terminate(new WatchClosedError('restored', `store replaced by a snapshot at index ${appliedIndex}: re-list and watch again`));
    }
    assert(this.watchers.size === 0, 'a watcher survived restore');
  }
}
