// The compose model after loading: interpolated, merged and validated against the Compose Specification schema.
// Field names are the compose file's own (snake_case), so an error can name the key the user wrote.
// Only the loader produces values of this type; the converter reads them.

/** A whole compose project: what every `-c` file merged into. Fields are filled in by the converter's slice. */
export interface ComposeModel {
  services: Record<string, Record<string, unknown>>;
  networks?: Record<string, Record<string, unknown> | null>;
  volumes?: Record<string, Record<string, unknown> | null>;
  secrets?: Record<string, Record<string, unknown>>;
  configs?: Record<string, Record<string, unknown>>;
  [extension: `x-${string}`]: unknown;
}
