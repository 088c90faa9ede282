// Single flight for the image store: callers asking for the same key (an image, a blob, a layer) share one running
// operation and its progress; it is aborted only when every caller waiting on it has given up. And a semaphore
// bounding how many downloads run at once.

import { assert } from '../runtime.js';

interface Flight<T, E> {
  readonly promise: Promise<T>;
  readonly ctl: AbortController;
  waiters: number;
  readonly listeners: Set<(e: E) => void>;
}

export class SharedFlights<T, E = never> {
  private readonly flights = new Map<string, Flight<T, E>>();

  /** Number of operations running now (for tests and bounds). */
  get size(): number {
    return this.flights.size;
  }

  has(key: string): boolean {
    return this.flights.has(key);
  }

  /**
   * Joins the operation running for `key`, or starts it with `start`. The caller's signal rejects only this call;
   * the operation's own signal fires when the last waiter leaves.
   */
  run(key: string, start: (signal: AbortSignal, emit: (e: E) => void) => Promise<T>, opts: { signal?: AbortSignal | undefined; onEvent?: ((e: E) => void) | undefined } = {}): Promise<T> {
    if (opts.signal?.aborted === true) return Promise.reject(reasonOf(opts.signal));
    let f = this.flights.get(key);
    if (f === undefined) {
      const ctl = new AbortController();
      const listeners = new Set<(e: E) => void>();
      const emit = (e: E): void => {
        for (const l of listeners) l(e);
      };
      // start runs on a later tick, so this flight is in the map before any of its work can look for it.
      const promise = Promise.resolve()
        .then(() => start(ctl.signal, emit))
        .finally(() => {
          if (this.flights.get(key) === created) this.flights.delete(key);
        });
      const created: Flight<T, E> = { promise, ctl, waiters: 0, listeners };
      f = created;
      this.flights.set(key, f);
    }
    return this.wait(f, opts.signal, opts.onEvent);
  }

  private wait(f: Flight<T, E>, signal: AbortSignal | undefined, onEvent: ((e: E) => void) | undefined): Promise<T> {
    f.waiters++;
    if (onEvent !== undefined) f.listeners.add(onEvent);
    return new Promise<T>((resolve, reject) => {
      let left = false;
      const leave = (): void => {
        if (left) return;
        left = true;
        f.waiters--;
        assert(f.waiters >= 0, 'flight waiters below zero');
        if (onEvent !== undefined) f.listeners.delete(onEvent);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        leave();
        if (f.waiters === 0) f.ctl.abort(reasonOf(signal as AbortSignal));
        reject(reasonOf(signal as AbortSignal));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      f.promise.then(
        (v) => {
          leave();
          resolve(v);
        },
        (err: unknown) => {
          leave();
          reject(err);
        },
      );
    });
  }
}

function reasonOf(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted');
}

/** At most `limit` holders at once; the rest queue in arrival order. */
export class Semaphore {
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly limit: number) {
    assert(limit >= 1, 'a semaphore needs a limit of at least 1');
  }

  async use<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.active >= this.limit) {
      await new Promise<void>((resolve, reject) => {
        const go = (): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const i = this.queue.indexOf(go);
          if (i >= 0) this.queue.splice(i, 1);
          reject(reasonOf(signal as AbortSignal));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.queue.push(go);
      });
    } else {
      this.active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      // The slot passes straight to the next in line, so `active` does not change.
      if (next !== undefined) next();
      else this.active--;
    }
  }
}
