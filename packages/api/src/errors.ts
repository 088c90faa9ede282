// The API's typed errors: a code the client can branch on, the HTTP status it travels with, and a message for people.
// Backends throw ApiError; the server turns anything else into 'internal' without leaking a stack trace.

export type ApiErrorCode =
  | 'invalid_argument'
  | 'not_found'
  | 'ambiguous'
  | 'already_in_swarm'
  | 'not_in_swarm'
  | 'permission_denied'
  | 'conflict'
  | 'unavailable'
  | 'internal';

const STATUS: Record<ApiErrorCode, number> = {
  invalid_argument: 400,
  not_found: 404,
  ambiguous: 409,
  already_in_swarm: 409,
  not_in_swarm: 503,
  permission_denied: 403,
  conflict: 409,
  unavailable: 503,
  internal: 500,
};

const CODES = new Set<string>(Object.keys(STATUS));

export function isApiErrorCode(value: unknown): value is ApiErrorCode {
  return typeof value === 'string' && CODES.has(value);
}

export function httpStatusOf(code: ApiErrorCode): number {
  return STATUS[code];
}

/** What every failed request answers: {error: {code, message}}. */
export interface ApiErrorBody {
  error: { code: ApiErrorCode; message: string };
}

export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get status(): number {
    return httpStatusOf(this.code);
  }

  toBody(): ApiErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

/** The daemon did not answer at all (no socket, nobody listening, connection reset): the CLI says so plainly. */
export class DaemonUnreachableError extends Error {
  constructor(
    readonly socketPath: string,
    override readonly cause: Error,
  ) {
    super(`cannot reach the swarm daemon at ${socketPath}: is \`swarm daemon\` running?`);
    this.name = 'DaemonUnreachableError';
  }
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`api invariant violated: ${message}`);
}
