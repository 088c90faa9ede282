// The leader's reconcilers come from @swarm/manager; the daemon gives them random task ids.

import { leaderReconcilers as managerReconcilers, type Reconciler } from '@swarm/manager';
import { newId } from '@swarm/pki';

export function leaderReconcilers(): Reconciler[] {
  return managerReconcilers({ newId: () => newId() });
}
