// The stack package's typed error: a code for callers and a message that names the file, line, column and key path.

export type StackErrorCode = 'not_found' | 'parse' | 'interpolation' | 'invalid' | 'unsupported';

export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

export class StackError extends Error {
  constructor(
    readonly code: StackErrorCode,
    message: string,
    /** Where in which file, when known. */
    readonly position: SourcePosition | null = null,
    /** The key path, e.g. `services.web.ports[0].published`, when known. */
    readonly path: string | null = null,
  ) {
    super(message);
    this.name = 'StackError';
  }
}
