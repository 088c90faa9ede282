// Watch streams: the events each applied transaction produced, delivered in log order through a bounded queue.
// A consumer that falls behind is closed (overflow), never buffered without end: reconcilers re-list and go on.

import { assert, WatchClosedError, type WatchCloseReason } from './errors.js';
import type { ObjectKind, ObjectsByKind } from './objects.js';

export type StoreEvent = {
  [K in ObjectKind]:
    | { action: 'create'; kind: K; object: ObjectsByKind[K]; index: number }
    | { action: 'update'; kind: K; object: ObjectsByKind[K]; previous: ObjectsByKind[K]; index: number }
    /** object is the last version before the delete. */
    | { action: 'delete'; kind: K; object: ObjectsByKind[K]; index: number };
}[ObjectKind];

export interface WatchFilter {
  kinds?: readonly ObjectKind[];
  /** Runs inside Store.apply: keep it cheap and pure. If it throws, the watcher is closed (filter_failed). */
  where?: (event: StoreEvent) => boolean;
}

export interface WatchOptions {
  /** Deliver events of entries after this index first (from the store's bounded history), then live ones. */
  sinceIndex?: number;
  /** Bound on undelivered events; one more closes the watcher with reason 'overflow'. */
  maxQueuedEvents?: number;
}

export const DEFAULT_MAX_QUEUED_EVENTS = 10_000;

type Waiter = { resolve: (r: IteratorResult<StoreEvent>) => void; reject: (e: Error) => void };

export class Watcher implements AsyncIterable<StoreEvent> {
  private queue: StoreEvent[] = [];
  private head = 0;
  private waiter: Waiter | null = null;
  private closedBy: 'consumer' | WatchClosedError | null = null;
  private readonly kinds: ReadonlySet<ObjectKind> | null;
  private lastIndex = 0;

  constructor(
    private readonly filter: WatchFilter,
    readonly maxQueuedEvents: number,
    private readonly onClose: (w: Watcher) => void,
  ) {
    assert(Number.isInteger(maxQueuedEvents) && maxQueuedEvents > 0, 'maxQueuedEvents must be a positive integer');
    this.kinds = filter.kinds === undefined ? null : new Set(filter.kinds);
  }

  /** Null while open or after close(); the reason when the store closed it. */
  get closeReason(): WatchCloseReason | null {
    return this.closedBy instanceof WatchClosedError ? this.closedBy.reason : null;
  }

  get closed(): boolean {
    return this.closedBy !== null;
  }

  get queuedEvents(): number {
    return this.queue.length - this.head;
  }

  /** Store side: offer one event; filtered, queued or handed to a waiting consumer. */
  deliver(event: StoreEvent): void {
    if (this.closedBy !== null) return;
    assert(event.index >= this.lastIndex, `watch events out of order: ${event.index} after ${this.lastIndex}`);
    this.lastIndex = event.index;
    if (this.kinds !== null && !this.kinds.has(event.kind)) return;
    if (this.filter.where !== undefined) {
      let keep: boolean;
      try {
        keep = this.filter.where(event);
      } catch (err) {
        this.terminate(new WatchClosedError('filter_failed', `watch filter threw: ${(err as Error).message}`));
        return;
      }
      if (!keep) return;
    }
    if (this.waiter !== null) {
      assert(this.queuedEvents === 0, 'a consumer waits while events are queued');
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: event, done: false });
      return;
    }
    if (this.queuedEvents >= this.maxQueuedEvents) {
      this.terminate(
        new WatchClosedError(
          'overflow',
          `watcher fell more than ${this.maxQueuedEvents} events behind at index ${event.index}: re-list from a view and watch again`,
        ),
      );
      return;
    }
    this.queue.push(event);
  }

  /** Store side: end the watch for a reason the consumer must act on. Queued events are dropped: it re-lists. */
  terminate(error: WatchClosedError): void {
    if (this.closedBy !== null) return;
    this.closedBy = error;
    this.queue = [];
    this.head = 0;
    this.onClose(this);
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(error);
    }
  }

  /** Consumer side: stop watching; a pending iteration ends normally. */
  close(): void {
    if (this.closedBy !== null) return;
    this.closedBy = 'consumer';
    this.queue = [];
    this.head = 0;
    this.onClose(this);
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: undefined, done: true });
    }
  }

  /**
   * Synchronous take of up to maxEvents queued events (for simulators and loops that poll).
   * Throws WatchClosedError once the store closed the watch; returns [] after close().
   */
  poll(maxEvents = Number.POSITIVE_INFINITY): StoreEvent[] {
    if (this.closedBy instanceof WatchClosedError) throw this.closedBy;
    const end = Math.min(this.queue.length, this.head + maxEvents);
    const out = this.queue.slice(this.head, end);
    this.head = end;
    this.compact();
    return out;
  }

  private compact(): void {
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  next(): Promise<IteratorResult<StoreEvent>> {
    if (this.closedBy instanceof WatchClosedError) return Promise.reject(this.closedBy);
    if (this.closedBy === 'consumer') return Promise.resolve({ value: undefined, done: true });
    if (this.head < this.queue.length) {
      const event = this.queue[this.head];
      this.head++;
      this.compact();
      assert(event !== undefined, 'queued event missing');
      return Promise.resolve({ value: event, done: false });
    }
    assert(this.waiter === null, 'one consumer at a time may wait on a watcher');
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<StoreEvent> {
    return {
      next: () => this.next(),
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
