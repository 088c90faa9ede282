// The daemon's startup errors (a locked data dir, unreadable state) and its invariant assertion.
// Request-time failures are ApiErrors from @swarm/api: they travel to the CLI as {error: {code, message}}.

export type DaemonErrorCode =
  | 'locked'
  | 'corrupt_state'
  | 'invalid_config'
  | 'invalid_request'
  | 'join_refused'
  | 'join_unreachable'
  // a peer refused, or did not answer, a role change or a leave
  | 'peer_refused'
  | 'peer_unreachable';

export class DaemonError extends Error {
  constructor(
    readonly code: DaemonErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DaemonError';
  }
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`daemon invariant violated: ${message}`);
}
