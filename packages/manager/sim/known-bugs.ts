// Bugs the simulator found in the reconcilers and that are not fixed yet, with the fault kinds that trigger them.
// `--skip-known-bugs` leaves those kinds out so the other invariants stay checked; delete an entry once it is fixed.

import type { FaultKind } from './simulation.js';

export interface KnownBug {
  id: string;
  /** Leaving these fault kinds out keeps the bug from being hit. */
  skip: readonly FaultKind[];
  /** A run that shows it (default steps and nodes): the seed, and the kinds skipped to keep the other bugs out. */
  reproduce: { seed: number; skip: readonly FaultKind[] };
  summary: string;
}

// None open: every bug the simulator found so far is fixed (see git log of packages/manager/src).
export const KNOWN_BUGS: readonly KnownBug[] = [];

export const KNOWN_BUG_SKIPS: ReadonlySet<FaultKind> = new Set(KNOWN_BUGS.flatMap((b) => b.skip));
