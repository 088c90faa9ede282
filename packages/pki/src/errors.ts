// The typed error of @swarm/pki: every refusal (bad token, bad certificate) carries a code the daemon
// maps to its API error and a message that tells the user what to do next.

export type PkiErrorCode =
  | 'cert_invalid'
  | 'cert_expired'
  | 'cert_wrong_ca'
  | 'peer_mismatch'
  | 'key_invalid'
  | 'token_malformed'
  | 'token_invalid'
  | 'token_wrong_cluster'
  | 'pnet_key_invalid'
  | 'invalid_argument';

export class PkiError extends Error {
  readonly code: PkiErrorCode;

  constructor(code: PkiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PkiError';
    this.code = code;
  }
}

/** Invariant check for the control plane: a broken invariant is a bug in the caller, never user input. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new PkiError('invalid_argument', `pki invariant broken: ${message}`);
}
