// Majority arithmetic over the voter set: the highest index a quorum has matched, and the outcome of a vote.
// Learners never appear here; callers pass voters only.

import type { NodeId } from './types.js';

export type VoteResult = 'won' | 'lost' | 'pending';

export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

const scratch: number[] = [];

/** The largest index matched by a majority of voters (0 with no voters). */
export function committedIndex(voters: ReadonlySet<NodeId>, matchOf: (id: NodeId) => number): number {
  const n = voters.size;
  if (n === 0) return 0;
  if (n === 1) {
    for (const id of voters) return matchOf(id);
  }
  // Called on every append ack: insertion sort (descending) into a reused buffer, no allocation per call.
  const matches = scratch;
  let k = 0;
  for (const id of voters) {
    const v = matchOf(id);
    let j = k++;
    while (j > 0 && (matches[j - 1] ?? 0) < v) {
      matches[j] = matches[j - 1] ?? 0;
      j--;
    }
    matches[j] = v;
  }
  return matches[quorumSize(n) - 1] ?? 0;
}

/** Outcome of an election given the votes received so far (absent voters count as undecided). */
export function voteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const n = voters.size;
  if (n === 0) return 'lost';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = quorumSize(n);
  if (granted >= q) return 'won';
  if (granted + missing >= q) return 'pending';
  return 'lost';
}

/** True when the voters for which `active` holds form a majority. */
export function hasQuorum(voters: ReadonlySet<NodeId>, active: (id: NodeId) => boolean): boolean {
  let count = 0;
  for (const id of voters) if (active(id)) count++;
  return voters.size > 0 && count >= quorumSize(voters.size);
}
