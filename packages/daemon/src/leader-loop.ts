// What only the Raft leader does, as a loop over the store: adds joined managers to Raft (learner, then voter once
// caught up) and turns gossip's verdicts into Node status (dead -> down, alive -> ready), writing only on change.

import type { Membership } from '@swarm/gossip';
import type { ApplyResult, Node, Op, Store } from '@swarm/store';
import type { Logger } from '@swarm/wire';
import type { RaftNode } from 'raft-consensus-ts';

/** Engine labels a node reports about its libp2p identity; set at init and join. */
export const PEER_ID_LABEL = 'swarm.libp2p.peer-id';
export const LIBP2P_ADDR_LABEL = 'swarm.libp2p.addr';
/** How often the leader compares the store with Raft's membership and gossip's. */
export const LEADER_LOOP_PERIOD_MS = 100;
/** Status writes per pass: a mass failure is written over a few passes rather than one huge transaction. */
const MAX_STATUS_UPDATES_PER_PASS = 64;

export interface LeaderLoopDeps {
  store: Store;
  raft: RaftNode<ApplyResult>;
  membership: Membership;
  selfPeerId: string;
  propose(ops: Op[]): Promise<number>;
  logger: Logger;
}

export class LeaderLoop {
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(private readonly deps: LeaderLoopDeps) {}

  start(periodMs = LEADER_LOOP_PERIOD_MS): void {
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = true;
      this.pass()
        .catch((err: unknown) => this.deps.logger.debug({ err: (err as Error).message }, 'leader loop pass failed; retrying'))
        .finally(() => {
          this.running = false;
        });
    }, periodMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  async pass(): Promise<void> {
    const { raft, store, membership } = this.deps;
    if (!raft.isLeader) return;
    const nodes = store.view((tx) => tx.list('node'));
    await this.reconcileRaftMembers(nodes);
    const ops: Op[] = [];
    for (const n of nodes) {
      const peer = n.description.engineLabels[PEER_ID_LABEL];
      if (peer === undefined || peer === this.deps.selfPeerId) continue;
      const member = membership.member(peer);
      if (member === undefined) continue;
      // Suspect keeps the last verdict: Lifeguard's suspicion is exactly where false Downs would come from.
      const desired = member.state === 'dead' || member.state === 'left' ? 'down' : member.state === 'alive' ? 'ready' : null;
      if (desired === null || desired === n.status.state) continue;
      ops.push({ op: 'update', kind: 'node', object: { ...n, status: { ...n.status, state: desired, message: desired === 'down' ? 'heartbeat failure' : '' } } });
      if (ops.length >= MAX_STATUS_UPDATES_PER_PASS) break;
    }
    if (ops.length > 0) {
      await this.deps.propose(ops);
      this.deps.logger.info({ updates: ops.length }, 'node status from gossip written');
    }
  }

  /** One Raft membership change per pass: a joined manager becomes a learner, then a voter once caught up. */
  private async reconcileRaftMembers(nodes: Node[]): Promise<void> {
    const { raft } = this.deps;
    const status = raft.status();
    const voters = new Set(status.confState.voters);
    const learners = new Set(status.confState.learners);
    for (const n of nodes) {
      if (n.managerStatus === null || n.spec.role !== 'manager') continue;
      const id = n.managerStatus.raftId;
      const addr = n.description.engineLabels[LIBP2P_ADDR_LABEL];
      if (voters.has(id) || addr === undefined) continue;
      if (!learners.has(id)) {
        this.deps.logger.info({ node: id, addr }, 'adding a joined manager to raft as a learner');
        await raft.addLearner(id, addr);
        return;
      }
      const progress = status.progress[id];
      if (progress !== undefined && progress.match >= status.commit) {
        this.deps.logger.info({ node: id }, 'promoting a caught-up learner to voter');
        await raft.addVoter(id, addr);
        return;
      }
    }
  }
}
