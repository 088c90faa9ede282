// Randomized safety check of the core: message loss, duplication and reordering, partitions, crashes/restarts,
// compaction, proposals and leadership transfers, from fixed seeds. Checks Election Safety (one leader per term)
// and State Machine Safety (every node applies the same entry at each index) after every action.

import test from 'ava';
import { RawNode } from '../src/rawnode.js';
import { MemoryStorage, bootstrap } from '../src/memory-storage.js';
import { RaftError } from '../src/types.js';
import { decodeConfChange } from '../src/confchange.js';
import type { ConfChange } from '../src/types.js';
import { seededRandom } from './raft-harness.js';
import type { Message, NodeId } from '../src/types.js';

interface Node {
  rn: RawNode;
  storage: MemoryStorage;
  appliedIndex: number;
  up: boolean;
}

export function run(seed: number, nodeCount: number, steps: number, preVote: boolean, checkQuorum: boolean, withConfChanges = false): { commits: number; leaders: number; confApplied: number } {
  const rand = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => {
    const x = xs[Math.floor(rand() * xs.length)];
    if (x === undefined) throw new Error('empty pick');
    return x;
  };
  const names: NodeId[] = Array.from({ length: nodeCount }, (_, k) => `n${k + 1}`);
  const nodes = new Map<NodeId, Node>();
  const mk = (id: NodeId, storage: MemoryStorage): RawNode =>
    new RawNode({ id, storage, electionTick: 10, heartbeatTick: 2, preVote, checkQuorum, maxInflightMsgs: 4, maxSizePerMsg: 64, random: seededRandom(seed * 31 + id.length + id.charCodeAt(1)) });
  for (const id of names) {
    const storage = new MemoryStorage();
    bootstrap(storage, names);
    nodes.set(id, { rn: mk(id, storage), storage, appliedIndex: 1, up: true });
  }
  let net: Message[] = [];
  const leaderOfTerm = new Map<number, NodeId>();
  const committed = new Map<number, string>(); // index -> "term:data" as first applied anywhere
  const partitioned = new Set<NodeId>();
  let proposals = 0;
  let confApplied = 0;

  const drain = (id: NodeId, n: Node): void => {
    for (let g = 0; g < 100 && n.rn.hasReady(); g++) {
      const rd = n.rn.ready();
      if (rd.snapshot !== null) {
        n.storage.applySnapshot(rd.snapshot);
        n.appliedIndex = rd.snapshot.meta.index;
      }
      n.storage.append(rd.entries);
      if (rd.hardState !== null) n.storage.setHardState(rd.hardState);
      for (const m of rd.messages) if (net.length < 5000) net.push(m);
      for (const e of rd.committedEntries) {
        if (e.index !== n.appliedIndex + 1) throw new Error(`${id} applied ${e.index} after ${n.appliedIndex}`);
        n.appliedIndex = e.index;
        const key = `${e.term}:${new TextDecoder().decode(e.data)}`;
        const prev = committed.get(e.index);
        if (prev === undefined) committed.set(e.index, key);
        else if (prev !== key) throw new Error(`state machine safety: ${id} applied ${key} at ${e.index}, another node ${prev}`);
        if (e.type === 'conf-change') { n.rn.applyConfChange(decodeConfChange(e.data)); confApplied++; }
      }
      n.rn.advance(rd);
    }
    const st = n.rn.status();
    if (st.role === 'leader') {
      const other = leaderOfTerm.get(st.term);
      if (other !== undefined && other !== id) throw new Error(`election safety: ${other} and ${id} both lead term ${st.term}`);
      leaderOfTerm.set(st.term, id);
    }
  };

  for (let step = 0; step < steps; step++) {
    const r = rand();
    const id = pick([...nodes.keys()]);
    const n = nodes.get(id);
    if (n === undefined) throw new Error('missing node');
    if (r < 0.3) {
      if (n.up) n.rn.tick();
    } else if (r < 0.75) {
      // Deliver a random in-flight message (reordering); sometimes keep a copy (duplication).
      if (net.length > 0) {
        const k = Math.floor(rand() * net.length);
        const m = net[k];
        if (m !== undefined) {
          if (rand() > 0.05) net.splice(k, 1);
          const to = nodes.get(m.to);
          const cut = partitioned.has(m.from) !== partitioned.has(m.to);
          if (to !== undefined && to.up && !cut && rand() > 0.05) to.rn.step(m);
        }
      }
    } else if (r < 0.85) {
      if (n.up) {
        try {
          n.rn.propose(new TextEncoder().encode(`p${proposals++}`));
        } catch (e) {
          if (!(e instanceof RaftError)) throw e;
        }
      }
    } else if (r < 0.87) {
      // Crash and restart from persisted state (everything handed out was persisted by drain()).
      nodes.set(id, { rn: mk(id, n.storage), storage: n.storage, appliedIndex: n.storage.snapshot().meta.index, up: true });
    } else if (r < 0.89) {
      if (partitioned.size === 0) partitioned.add(id);
      else partitioned.clear();
    } else if (r < 0.91) {
      // Compact up to what this node applied (keeps a few entries).
      const snapAt = n.appliedIndex;
      if (snapAt > n.storage.snapshot().meta.index && snapAt <= n.storage.lastIndex()) {
        n.storage.createSnapshot(snapAt, n.rn.status().confState, new Uint8Array(0));
        if (snapAt - 3 >= n.storage.firstIndex()) n.storage.compact(snapAt - 3);
      }
    } else if (r < 0.92) {
      if (n.up && n.rn.status().role === 'leader') {
        try {
          n.rn.transferLeader(pick(names));
        } catch (e) {
          if (!(e instanceof RaftError && e.code === 'invalid_config')) throw e;
        }
      }
    } else if (r < 0.93) {
      n.rn.reportUnreachable(pick(names));
    } else if (r < 0.935 && withConfChanges) {
      // Single-server membership changes involving a sixth node and the original voters (keeping >= 3 voters).
      if (n.up && n.rn.status().role === 'leader') {
        const cs = n.rn.status().confState;
        const x = pick([...names, 'n6']);
        let cc: ConfChange;
        const kind = rand();
        if (kind < 0.4) cc = { type: 'add-learner', nodeId: x };
        else if (kind < 0.8) cc = { type: 'add-voter', nodeId: x };
        else cc = { type: 'remove-node', nodeId: x };
        const votersAfter = cc.type === 'add-voter' ? new Set([...cs.voters, x]).size : cs.voters.filter((v) => v !== x).length;
        if (votersAfter >= 3 && !(cc.type === 'add-learner' && cs.voters.includes(x))) {
          if (!nodes.has(x)) {
            const fresh = new MemoryStorage();
            nodes.set(x, { rn: mk(x, fresh), storage: fresh, appliedIndex: 0, up: true });
          }
          try {
            n.rn.proposeConfChange(cc);
          } catch (e) {
            if (!(e instanceof RaftError)) throw e;
          }
        }
      }
    } else if (r < 0.94) {
      try {
        n.rn.readIndex(new TextEncoder().encode(`r${step}`));
      } catch (e) {
        if (!(e instanceof RaftError)) throw e;
      }
    }
    for (const [nid, node] of nodes) if (node.up) drain(nid, node);
  }
  return { commits: committed.size, leaders: leaderOfTerm.size, confApplied };
}

for (const [seed, size, preVote, checkQuorum] of [
  [1, 3, false, false],
  [2, 3, true, true],
  [3, 5, true, false],
  [4, 5, false, true],
  [5, 3, true, true],
  [6, 5, true, true],
] as const) {
  test(`§4.1 safety with single-server membership changes under faults (seed ${seed}, ${size} nodes)`, (t) => {
    const res = run(seed + 100, size, 20000, preVote, checkQuorum, true);
    t.true(res.commits > 20, `only ${res.commits} entries committed: no progress`);
  });
  test(`§5.2/§5.4 safety under loss, reordering, duplication, partitions and crashes (seed ${seed}, ${size} nodes, preVote=${preVote}, checkQuorum=${checkQuorum})`, (t) => {
    const res = run(seed, size, 20000, preVote, checkQuorum);
    t.true(res.leaders >= 1, 'some leader was elected');
    t.true(res.commits > 20, `only ${res.commits} entries committed: no progress`);
  });
}
