// Public surface of @swarm/manager: the reconcilers only the Raft leader runs. Each is a function of a store
// snapshot to the ops of one transaction; they never call each other and meet only in the store.
export { perService, type Reconciler } from './reconciler.js';
export { allocate, allocateNetwork, allocatePorts, allocator, attachedNetwork, DYNAMIC_PORT_RANGE } from './allocator.js';
export { statusOps } from './status.js';
export {
  compileConstraints,
  ConstraintError,
  normalizeArch,
  constraintHolds,
  constraintsHold,
  parseConstraint,
  parseConstraints,
  type CompiledConstraints,
  type Constraint,
  type ConstraintKey,
} from './constraints.js';
export { byCreation, isLive, nodeOf, newTask, orchestrate, orchestrator, reconcileGlobal, reconcileReplicated, shutdownOp, type OrchestratorOptions } from './orchestrator.js';
export { DEFAULT_MAX_TASKS_PER_PASS, pendingReason, schedule, scheduler, type SchedulerOptions } from './scheduler.js';
export { taskReaper } from './reaper.js';
export { REBALANCE_LABEL, rebalanceService, rebalancer } from './rebalancer.js';
export { isCurrent, isRolloutUnfinished, isUpdating, updateService, updater } from './updater.js';

import type { Reconciler } from './reconciler.js';
import { orchestrator } from './orchestrator.js';
import { allocator } from './allocator.js';
import { scheduler } from './scheduler.js';
import { taskReaper } from './reaper.js';
import { rebalancer } from './rebalancer.js';
import { updater } from './updater.js';

/** The leader's reconcilers in the order one pass runs them: services -> tasks -> updates -> rebalancing -> addresses -> nodes -> history. */
export function leaderReconcilers(options: { newId: () => string }): Reconciler[] {
  return [orchestrator({ newId: options.newId }), updater({ newId: options.newId }), rebalancer({ newId: options.newId }), allocator(), scheduler(), taskReaper];
}
