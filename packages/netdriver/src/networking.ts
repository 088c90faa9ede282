// What the agent needs of a network driver: a namespace for a task with its overlay legs, and its removal.
// The overlay driver implements it; a node without one runs tasks in the host's network namespace.

import type { LbStrategy, NetworkAttachment } from '@swarm/store';
import type { IngressConfig } from './ingress.js';

export interface TaskNetworking {
  /**
   * Makes the task's network namespace with one interface per attachment (eth0, eth1, …): the path to join, and
   * the embedded DNS server's address for its resolv.conf (null: keep the host's resolvers).
   */
  attach(
    taskId: string,
    attachments: readonly NetworkAttachment[],
    names: { service: string; task: string; lb?: LbStrategy },
    /** Host-mode published ports: this node's own addresses forward them to the task. */
    hostPorts: ReadonlyArray<{ protocol: 'tcp' | 'udp' | 'sctp'; publishedPort: number; targetPort: number }>,
  ): Promise<{ netnsPath: string; nameserver: string | null }>;
  /** The task is ready (running and healthy) or no longer: only ready tasks are in DNS answers. */
  setReady(taskId: string, ready: boolean): void;
  /** Removes what attach made; a task never attached (or already detached) is fine. */
  detach(taskId: string): Promise<void>;
  /** The routing mesh this node serves (its ingress address and the services publishing through it); null: none. */
  setIngress?(config: IngressConfig | null): Promise<void>;
}

/** The driver option that asks for an encrypted overlay (`--opt encrypted`), as Docker spells it. */
export const ENCRYPTED_OPTION = 'encrypted';

/** A network's VXLAN id as Docker's `network inspect` shows it among the options. */
export const VXLANID_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';

/** `--network host`: not a network object but the node's own stack; a task on it gets no attachment. */
export const HOST_NETWORK = 'host';
