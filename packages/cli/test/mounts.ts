// Mounts below a test's temp dir (a daemon killed while its tasks use secrets leaves their tmpfs mounted): the
// teardown unmounts them, deepest first.

import { readFileSync } from 'node:fs';

export function mountsUnder(root: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p.startsWith(`${root}/`))
    .sort()
    .reverse();
}
