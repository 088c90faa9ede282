// Store objects -> the API's Docker-shaped documents, and resolving a user's node reference (id, prefix, hostname).
// Pure functions: the server calls them on what the backend returned.

import type { Cluster, Node } from '@swarm/store';
import { ApiError, assert } from './errors.js';
import type { NodeDocument, SwarmDocument } from './types.js';

const NS_PER_MS = 1_000_000;

function time(ms: number): string {
  return new Date(ms).toISOString();
}

export function nodeDocument(node: Node): NodeDocument {
  const doc: NodeDocument = {
    ID: node.id,
    Version: { Index: node.meta.version.index },
    CreatedAt: time(node.meta.createdAtMs),
    UpdatedAt: time(node.meta.updatedAtMs),
    Spec: {
      Role: node.spec.role,
      Availability: node.spec.availability,
      Labels: { ...node.spec.labels },
    },
    Description: {
      Hostname: node.description.hostname,
      Platform: { Architecture: node.description.platform.arch, OS: node.description.platform.os },
      Resources: { NanoCPUs: node.description.resources.nanoCpus, MemoryBytes: node.description.resources.memoryBytes },
      Engine: { EngineVersion: node.description.engineVersion },
    },
    Status: { State: node.status.state, Addr: node.status.addr },
  };
  if (node.spec.name !== '') doc.Spec.Name = node.spec.name;
  if (Object.keys(node.description.engineLabels).length > 0) doc.Description.Engine.Labels = { ...node.description.engineLabels };
  if (node.status.message !== '') doc.Status.Message = node.status.message;
  if (node.managerStatus !== null) {
    doc.ManagerStatus = {
      Leader: node.managerStatus.leader,
      Reachability: node.managerStatus.reachability,
      Addr: node.managerStatus.addr,
    };
  }
  return doc;
}

export function swarmDocument(cluster: Cluster): SwarmDocument {
  const spec = cluster.spec;
  return {
    ID: cluster.id,
    Version: { Index: cluster.meta.version.index },
    CreatedAt: time(cluster.meta.createdAtMs),
    UpdatedAt: time(cluster.meta.updatedAtMs),
    Spec: {
      Name: spec.name,
      Labels: { ...spec.labels },
      Orchestration: { TaskHistoryRetentionLimit: spec.orchestration.taskHistoryRetentionLimit },
      Raft: {
        SnapshotInterval: spec.raft.snapshotInterval,
        KeepOldSnapshots: spec.raft.keepOldSnapshots,
        LogEntriesForSlowFollowers: spec.raft.logEntriesForSlowFollowers,
        ElectionTick: spec.raft.electionTick,
        HeartbeatTick: spec.raft.heartbeatTick,
      },
      Dispatcher: { HeartbeatPeriod: spec.dispatcher.heartbeatPeriodMs * NS_PER_MS },
      CAConfig: { NodeCertExpiry: spec.caConfig.nodeCertExpiryMs * NS_PER_MS },
      EncryptionConfig: { AutoLockManagers: spec.encryptionConfig.autoLockManagers },
    },
    TLSInfo: { TrustRoot: cluster.rootCA.certPem, CertFingerprint: cluster.rootCA.fingerprint },
    RootRotationInProgress: false,
    DefaultAddrPool: [...cluster.defaultAddrPool],
    SubnetSize: cluster.subnetSize,
    DataPathPort: cluster.dataPathPort,
    JoinTokens: { Worker: cluster.joinTokens.worker, Manager: cluster.joinTokens.manager },
  };
}

/** Bound on ids listed in an "ambiguous" message, so one bad prefix cannot produce a huge error. */
const MAX_IDS_IN_MESSAGE = 5;

/**
 * Docker's order: an exact id, then an exact hostname, then a unique id prefix. Two nodes with the hostname,
 * or a prefix of several ids, is an error that names the candidates rather than a guess.
 */
export function resolveNode(nodes: readonly Node[], ref: string): Node {
  assert(typeof ref === 'string', 'node reference is a string');
  if (ref === '') throw new ApiError('invalid_argument', 'a node id, id prefix or hostname is needed');
  const exact = nodes.find((n) => n.id === ref);
  if (exact !== undefined) return exact;
  const named = nodes.filter((n) => n.description.hostname === ref);
  if (named.length === 1 && named[0] !== undefined) return named[0];
  if (named.length > 1) {
    throw new ApiError('ambiguous', `hostname ${ref} matches ${named.length} nodes (${idList(named)}): use a node id`);
  }
  const prefixed = nodes.filter((n) => n.id.startsWith(ref));
  if (prefixed.length === 1 && prefixed[0] !== undefined) return prefixed[0];
  if (prefixed.length > 1) {
    throw new ApiError('ambiguous', `node id prefix ${ref} is ambiguous: it matches ${prefixed.length} nodes (${idList(prefixed)}); give more characters`);
  }
  throw new ApiError('not_found', `no such node: ${ref}`);
}

function idList(nodes: readonly Node[]): string {
  const ids = nodes.slice(0, MAX_IDS_IN_MESSAGE).map((n) => n.id);
  return nodes.length > MAX_IDS_IN_MESSAGE ? `${ids.join(', ')}, ...` : ids.join(', ');
}

/** Docker's node ls order: by hostname, then id so that equal hostnames list stably. */
export function sortNodes(nodes: readonly Node[]): Node[] {
  return [...nodes].sort((a, b) => {
    const h = a.description.hostname.localeCompare(b.description.hostname);
    return h !== 0 ? h : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
}
