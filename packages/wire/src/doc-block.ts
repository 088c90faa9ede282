// The benchmarks' results writer: a block between two markers in a markdown file (docs/benchmarks.md) is
// replaced by each run; a file without the markers gets the intro and the block appended.

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

export function writeDocBlock(path: string, markers: { start: string; end: string }, intro: string, body: string): void {
  const block = `${markers.start}\n${body}\n${markers.end}`;
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const start = text.indexOf(markers.start);
  const end = text.indexOf(markers.end);
  const next = start >= 0 && end > start ? text.slice(0, start) + block + text.slice(end + markers.end.length) : `${text.trimEnd()}\n\n${intro}\n${block}\n`;
  // Write and rename: a reader (or a second benchmark) never sees half a file.
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, next);
  renameSync(tmp, path);
}
