// The network driver's typed error: a code for callers and a message that says what to do.

export type NetErrorCode = 'tool_missing' | 'command_failed' | 'timeout' | 'invalid' | 'exhausted' | 'closed' | 'unsupported';

export class NetError extends Error {
  constructor(
    readonly code: NetErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'NetError';
  }
}

export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`netdriver invariant: ${msg}`);
}
