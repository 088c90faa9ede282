// Test builders for store objects and a helper that commits a transaction at a given index (`@swarm/store/testing`).
// Objects are minimal but complete, so tests read as "a service named web" rather than pages of fields.

import { seededRandom } from '@swarm/wire';
import {
  encodeTransaction,
  type ApplyResult,
  type Node,
  type NewObject,
  type Op,
  type Service,
  type Store,
  type Task,
  type TaskSpec,
  type TaskState,
} from './index.js';

export function taskSpec(image = 'nginx:1.27'): TaskSpec {
  return {
    containerSpec: {
      image,
      command: [],
      args: [],
      env: [],
      user: '',
      dir: '',
      labels: {},
      hostname: '',
      tty: false,
      stopSignal: '',
      stopGracePeriodMs: 10_000,
      healthcheck: null,
      secrets: [],
      configs: [],
      mounts: [],
      init: false,
      readOnly: false,
      capabilityAdd: [],
      capabilityDrop: [],
      pidsLimit: 0,
      registryAuth: null,
    },
    resources: { limits: { nanoCpus: 0, memoryBytes: 0 }, reservations: { nanoCpus: 0, memoryBytes: 0 } },
    restartPolicy: { condition: 'any', delayMs: 5_000, maxAttempts: 0, windowMs: 0 },
    placement: { constraints: [], preferences: [], maxReplicas: 0, platforms: [] },
    networks: [],
    forceUpdate: 0,
  };
}

export function newService(id: string, name: string, replicas = 3): NewObject<'service'> {
  const spec = {
    name,
    labels: {},
    taskTemplate: taskSpec(),
    mode: { replicated: { replicas } },
    updateConfig: null,
    rollbackConfig: null,
    endpointSpec: { mode: 'vip' as const, ports: [] },
  };
  return {
    id,
    spec,
    previousSpec: null,
    specVersion: { index: 0 },
    endpoint: { spec: spec.endpointSpec, ports: [], virtualIps: [] },
    updateStatus: null,
  };
}

export function newNode(id: string, hostname: string): NewObject<'node'> {
  return {
    id,
    spec: { name: '', labels: {}, role: 'worker', availability: 'active' },
    description: {
      hostname,
      platform: { os: 'linux', arch: 'x86_64' },
      resources: { nanoCpus: 4e9, memoryBytes: 8 * 2 ** 30 },
      engineVersion: '0.1.0',
      engineLabels: {},
    },
    status: { state: 'ready', addr: '10.0.0.1', message: '' },
    managerStatus: null,
    attachments: [],
  };
}

export function newTask(
  id: string,
  serviceId: string,
  slot: number,
  opts: { nodeId?: string; state?: TaskState; desired?: TaskState; timestampMs?: number } = {},
): NewObject<'task'> {
  return {
    id,
    serviceId,
    slot,
    nodeId: opts.nodeId ?? '',
    spec: taskSpec(),
    specVersion: { index: 1 },
    serviceName: 'web',
    desiredState: opts.desired ?? 'running',
    status: {
      state: opts.state ?? 'new',
      timestampMs: opts.timestampMs ?? 0,
      message: 'created',
      err: '',
      containerStatus: null,
      portStatus: [],
    },
    networksAttachments: [],
    endpoint: null,
  };
}

/** Commit ops at index (timestamp = index * 1000 so times are deterministic and distinct). */
export function commit(store: Store, index: number, ops: Op[]): ApplyResult {
  return store.apply(index, encodeTransaction({ timestampMs: index * 1000, ops }));
}

export function mustCommit(store: Store, index: number, ops: Op[]): void {
  const r = commit(store, index, ops);
  if (!r.ok) throw new Error(`expected entry ${index} to apply, got ${r.error.code}: ${r.error.message}`);
}

/** A changed copy of a stored object: stored objects are frozen. */
export function edit<T>(object: T, change: (copy: T) => void): T {
  const copy = structuredClone(object);
  change(copy);
  return copy;
}

export function requireObject<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} missing`);
  return value;
}

export type { Node, Service, Task };

/** A seeded PRNG so randomized tests replay. */
export const prng = seededRandom;
