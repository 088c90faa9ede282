// What the lab tests need from the machine, checked once, and a `serial` that skips with the reason in
// the title when it is missing (scripts/test fails any skip on CI, where everything must be present).

import test, { type ImplementationFn } from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliLab {
  name: string;
  root: string;
  /** `swarm ARGS` on this machine, with the lab root of this test file. */
  swarm(args: readonly string[], timeoutMs?: number): Promise<Run>;
  /** `swarm ARGS` run inside a lab host, against that host's daemon. */
  on(node: string, args: readonly string[], timeoutMs?: number): Promise<Run>;
}

/**
 * One lab per test file, driven through the CLI: its own lab root and name, and hooks that take it down after the
 * file (SWARM_TEST_KEEP_LAB=1 keeps a failed run's lab and daemon logs for a post-mortem; `swarm lab down` it after).
 */
export function cliLab(prefix: string, missing: string | null, defaultTimeoutMs = 120_000): CliLab {
  const root = mkdtempSync(join(tmpdir(), `swlab-${prefix}-`));
  const name = `${prefix}${process.pid % 1000}`;
  const swarm = (args: readonly string[], timeoutMs = defaultTimeoutMs): Promise<Run> =>
    new Promise((resolve) => {
      execFile(process.execPath, [SWARM_BIN, ...args], { env: { ...process.env, SWARM_LAB_ROOT: root }, timeout: timeoutMs }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr });
      });
    });
  const on = (node: string, args: readonly string[], timeoutMs = defaultTimeoutMs): Promise<Run> =>
    swarm(['lab', 'exec', `${name}/${node}`, '--', process.execPath, SWARM_BIN, ...args], timeoutMs);
  let failed = false;
  test.afterEach.always((t) => {
    if (!t.passed) failed = true;
  });
  test.after.always(async () => {
    if (failed && process.env['SWARM_TEST_KEEP_LAB'] === '1') {
      console.error(`kept lab ${name} under SWARM_LAB_ROOT=${root}`);
      return;
    }
    if (missing === null) await swarm(['lab', 'down', name]);
    rmSync(root, { recursive: true, force: true });
  });
  return { name, root, swarm, on };
}
