// What the lab tests need from the machine, checked once, and a `serial` that skips with the reason in
// the title when it is missing (scripts/test fails any skip on CI, where everything must be present).

import test, { type ImplementationFn } from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// dist/test/ -> packages/lab -> packages/cli
export const SWARM_BIN = fileURLToPath(new URL('../../../cli/bin/swarm.js', import.meta.url));
export const SWARM_MAIN = fileURLToPath(new URL('../../../cli/dist/src/main.js', import.meta.url));

/** Returns why the lab cannot run here, or null. `tools` are checked with `TOOL --version`-style argv. */
export function missingPrerequisite(opts: { tools: ReadonlyArray<readonly [string, string]>; needCli: boolean }): string | null {
  if (process.getuid?.() !== 0) return 'not root: the lab creates network namespaces';
  for (const [tool, flag] of opts.tools) {
    try {
      execFileSync(tool, [flag], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed`;
    }
  }
  if (opts.needCli && (!existsSync(SWARM_BIN) || !existsSync(SWARM_MAIN))) return `the swarm CLI is not built (${SWARM_MAIN})`;
  return null;
}

/** test.serial when the machine has what the lab needs; otherwise a skip whose title says why. */
export function labSerial(missing: string | null): (title: string, fn: ImplementationFn<[]>) => void {
  return (title, fn) => {
    if (missing === null) test.serial(title, fn);
    else test.serial.skip(`${title} [skipped: ${missing}]`, fn);
  };
}
