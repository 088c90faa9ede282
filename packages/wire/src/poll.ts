// Polling with a deadline, for tests and tools that wait for a state (never a fixed sleep).
// A probe returns the value once the state holds, or undefined/false/null while it does not yet.

export interface PollOptions {
  readonly deadlineMs: number;
  readonly intervalMs?: number;
  /** Treat a throwing probe as "not yet" (the last error is quoted on timeout) instead of failing at once. */
  readonly retryErrors?: boolean;
}

export async function pollUntil<T>(
  what: string,
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  opts: PollOptions,
): Promise<T> {
  const end = Date.now() + opts.deadlineMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (err) {
      if (opts.retryErrors !== true) throw err;
      lastError = err;
    }
    if (Date.now() > end) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${opts.deadlineMs} ms waiting for ${what}${cause}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
}
