// The pino set-up every component uses: one logger per component with {node, component} bound.
// Level from SWARM_LOG_LEVEL (default info); output is JSON lines on stderr.

import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

let root: Logger | null = null;

function rootLogger(): Logger {
  if (root === null) {
    root = pino({ level: process.env['SWARM_LOG_LEVEL'] ?? 'info', base: { pid: process.pid } }, pino.destination(2));
  }
  return root;
}

export function componentLogger(node: string, component: string): Logger {
  return rootLogger().child({ node, component });
}

/** For tests and tools that must stay quiet. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** JSON lines to `sink` (tests that check what was, or was not, logged). */
export function captureLogger(sink: { write(line: string): void }, level = 'debug'): Logger {
  return pino({ level }, sink);
}
