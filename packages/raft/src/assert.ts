// Invariant checks for the Raft core: a broken invariant means a bug (or corrupted storage), never bad input,
// so it throws a plain Error that the host must treat as fatal for this node.

/** Throws Error('raft invariant: <msg>') when cond is falsy. */
export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`raft invariant: ${msg}`);
}
