// What only the Raft leader does, as a loop over the store: keeps Raft's members equal to the manager Nodes (learner,
// then voter; removal after demote or leave), tells nodes their new role, and turns gossip's verdicts and missed
// agent heartbeats into Node status.

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
/** A node that did not take its new role is asked again after this long. */
export const ROLE_RETRY_MS = 2_000;
const MAX_ROLE_CHANGES_IN_FLIGHT = 4;

export interface LeaderLoopDeps {
  store: Store;
  raft: RaftNode<ApplyResult>;
  membership: Membership;
  selfPeerId: string;
  propose(ops: Op[]): Promise<number>;
  /** Tells the node its new role (promote: resolves with its manager address host:port); throws if it did not take it. */
  changeRole(node: Node, role: 'manager' | 'worker'): Promise<string>;
  /** Nodes whose agent session with this leader missed its heartbeats (Down even while gossip says alive). */
  silentNodes?(): ReadonlySet<string>;
  logger: Logger;
}

export class LeaderLoop {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  /** Role changes under way, and when each node was last asked. */
  private readonly roleInFlight = new Set<string>();
  private readonly roleAskedAtMs = new Map<string, number>();

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
    await this.clearDemotedManagerStatus(nodes);
    this.reconcileRoles(nodes);
    const ops: Op[] = [];
    const silent = this.deps.silentNodes?.() ?? new Set<string>();
    for (const n of nodes) {
      const peer = n.description.engineLabels[PEER_ID_LABEL];
      if (peer === undefined || peer === this.deps.selfPeerId) continue;
      const member = membership.member(peer);
      if (member === undefined) continue;
      // Suspect keeps the last verdict: Lifeguard's suspicion is exactly where false Downs would come from. An
      // alive member whose agent stopped heartbeating is Down too (SwarmKit's rule): its tasks go elsewhere.
      const gossip = member.state === 'dead' || member.state === 'left' ? 'down' : member.state === 'alive' ? 'ready' : null;
      const desired = gossip === 'ready' && silent.has(n.id) ? 'down' : gossip;
      if (desired === null || desired === n.status.state) continue;
      ops.push({ op: 'update', kind: 'node', object: { ...n, status: { ...n.status, state: desired, message: desired === 'down' ? 'heartbeat failure' : '' } } });
      if (ops.length >= MAX_STATUS_UPDATES_PER_PASS) break;
    }
    if (ops.length > 0) {
      await this.deps.propose(ops);
      this.deps.logger.info({ updates: ops.length }, 'node status from gossip written');
    }
  }

  /**
   * One Raft membership change per pass. A manager Node (spec.role manager, ManagerStatus set) becomes a learner,
   * then a voter once caught up; a member without one (demoted, left) is removed, the leader itself last: it hands
   * leadership to a caught-up voter first, and the new leader removes it.
   */
  private async reconcileRaftMembers(nodes: Node[]): Promise<void> {
    const { raft } = this.deps;
    const status = raft.status();
    const voters = new Set(status.confState.voters);
    const learners = new Set(status.confState.learners);
    const wanted = new Set(nodes.flatMap((n) => (n.spec.role === 'manager' && n.managerStatus !== null ? [n.managerStatus.raftId] : [])));
    for (const id of [...voters, ...learners]) {
      if (wanted.has(id)) continue;
      if (id !== status.id) {
        this.deps.logger.info({ node: id }, 'removing a member that is no longer a manager from raft');
        await raft.removeNode(id);
        return;
      }
      const heir = [...voters].find((v) => v !== status.id && wanted.has(v) && (status.progress[v]?.match ?? 0) >= status.commit);
      if (heir !== undefined) {
        this.deps.logger.info({ to: heir }, 'this leader is no longer a manager: handing leadership over before leaving raft');
        await raft.transferLeadership(heir);
      }
      return;
    }
    for (const n of nodes) {
      if (n.managerStatus === null || n.spec.role !== 'manager') continue;
      const id = n.managerStatus.raftId;
      const addr = n.description.engineLabels[LIBP2P_ADDR_LABEL];
      if (voters.has(id) || addr === undefined) continue;
      if (!learners.has(id)) {
        this.deps.logger.info({ node: id, addr }, 'adding a manager to raft as a learner');
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

  /** A demoted manager out of Raft is a worker in node ls, whether or not it has heard of its demotion yet. */
  private async clearDemotedManagerStatus(nodes: Node[]): Promise<void> {
    const conf = this.deps.raft.status().confState;
    const members = new Set([...conf.voters, ...conf.learners]);
    const ops: Op[] = nodes
      .filter((n) => n.spec.role === 'worker' && n.managerStatus !== null && !members.has(n.managerStatus.raftId))
      .map((n) => ({ op: 'update', kind: 'node', object: { ...n, managerStatus: null } }));
    if (ops.length > 0) await this.deps.propose(ops);
  }

  /**
   * A live node whose gossip role differs from its spec is told its new role (in the background, a few at a time,
   * retried every ROLE_RETRY_MS). A demoted manager is told only once Raft no longer counts it. A promoted node's
   * ManagerStatus is written once it runs as a manager; reconcileRaftMembers then adds it to Raft.
   */
  private reconcileRoles(nodes: Node[]): void {
    const { membership, raft, logger } = this.deps;
    const conf = raft.status().confState;
    const members = new Set([...conf.voters, ...conf.learners]);
    const nowMs = Date.now();
    for (const n of nodes) {
      if (this.roleInFlight.size >= MAX_ROLE_CHANGES_IN_FLIGHT) return;
      const peer = n.description.engineLabels[PEER_ID_LABEL];
      if (peer === undefined || peer === this.deps.selfPeerId || this.roleInFlight.has(n.id)) continue;
      const member = membership.member(peer);
      // A promoted manager without ManagerStatus is asked again (idempotent): a leader may have died between its
      // restart as a manager and the write that lets Raft add it.
      const pending = member?.meta.role !== n.spec.role || (n.spec.role === 'manager' && n.managerStatus === null);
      if (member === undefined || member.state !== 'alive' || !pending) continue;
      if (n.spec.role === 'worker' && members.has(n.id)) continue;
      if (nowMs - (this.roleAskedAtMs.get(n.id) ?? 0) < ROLE_RETRY_MS) continue;
      this.roleAskedAtMs.set(n.id, nowMs);
      this.roleInFlight.add(n.id);
      const role = n.spec.role;
      this.deps
        .changeRole(n, role)
        .then(async (managerAddr) => {
          logger.info({ node: n.id, role }, 'the node took its new role');
          if (role !== 'manager') return;
          const current = this.deps.store.view((tx) => tx.get('node', n.id));
          if (current === undefined || current.spec.role !== 'manager' || current.managerStatus !== null) return;
          await this.deps.propose([
            { op: 'update', kind: 'node', object: { ...current, managerStatus: { raftId: current.id, addr: managerAddr, leader: false, reachability: 'unknown' } } },
          ]);
        })
        .catch((err: unknown) => logger.info({ node: n.id, role, err: (err as Error).message }, 'the role change did not complete; retrying'))
        .finally(() => this.roleInFlight.delete(n.id));
    }
  }
}
