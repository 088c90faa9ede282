// The lab's typed error: a code a caller can branch on and a message that says what to do.
// Thrown by every lab module; the CLI catches it at the boundary and prints the message.

export type LabErrorCode =
  | 'not_root'
  | 'tool_missing'
  | 'command_failed'
  | 'invalid_argument'
  | 'not_found'
  | 'exists'
  | 'busy'
  | 'no_subnet'
  | 'timeout'
  | 'cluster_failed';

export class LabError extends Error {
  readonly code: LabErrorCode;
  constructor(code: LabErrorCode, message: string) {
    super(message);
    this.name = 'LabError';
    this.code = code;
  }
}

/** An invariant of the lab's own bookkeeping; a failure is a bug in the lab, not a user error. */
export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`lab invariant violated: ${msg}`);
}
