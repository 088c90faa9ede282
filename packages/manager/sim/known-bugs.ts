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

// None open. Fixed so far (see the git log of packages/manager/src): unassigned tasks told to stop, start-first
// overlaps, a given-up slot blocking an update, stopping tasks on removed nodes, the rebalancer's outdated moves,
// constraint enforcement, and an update's failures reaped before the updater counted them.
export const KNOWN_BUGS: readonly KnownBug[] = [];

export const KNOWN_BUG_SKIPS: ReadonlySet<FaultKind> = new Set(KNOWN_BUGS.flatMap((b) => b.skip));
