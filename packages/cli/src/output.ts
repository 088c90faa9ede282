// Output helpers for the CLI: Docker-style tables (Go tabwriter with minwidth 10, padding 3), JSON lines for
// `--format json`, and binary byte sizes as Docker prints them (15.54GiB).

/** Docker's table writer settings: tabwriter.NewWriter(out, 10, 1, 3, ' ', 0). */
const MIN_COLUMN_WIDTH = 10;
const COLUMN_PADDING = 3;

/** Rows of cells; every column but the last is padded to its widest cell plus the padding. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const all = [header, ...rows];
  const columns = header.length;
  const widths: number[] = [];
  for (let c = 0; c < columns - 1; c++) {
    const widest = Math.max(...all.map((r) => (r[c] ?? '').length));
    widths.push(Math.max(widest + COLUMN_PADDING, MIN_COLUMN_WIDTH));
  }
  return all
    .map((r) =>
      r
        .map((cell, c) => (c < columns - 1 ? cell.padEnd(widths[c] ?? 0) : cell))
        .join('')
        .trimEnd(),
    )
    .join('\n');
}

export function jsonLines(objects: readonly unknown[]): string {
  return objects.map((o) => JSON.stringify(o)).join('\n');
}

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** docker/go-units BytesSize: 4 significant digits, binary units. */
export function bytesSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BINARY_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number(value.toPrecision(4))}${BINARY_UNITS[unit] ?? ''}`;
}

export function capitalize(word: string): string {
  return word === '' ? word : word[0]?.toUpperCase() + word.slice(1);
}

export function writeOut(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** docker/go-units HumanSize, as `docker image ls` prints sizes: 4 significant digits, decimal units (4.26MB). */
export function humanSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < DECIMAL_UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${Number(value.toPrecision(4))}${DECIMAL_UNITS[unit] ?? ''}`;
}
