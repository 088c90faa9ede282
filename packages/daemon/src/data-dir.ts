// The node's files in its data dir: the libp2p key (made at first start), and after init the node state record,
// the CA and node certificates with their keys (0600) and the private-network key. Writes are atomic (tmp + rename).

import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { Logger } from '@swarm/wire';
import { DaemonError, assert } from './errors.js';

export const FILES = {
  libp2pKey: 'libp2p.key',
  state: 'node-state.json',
  caCert: 'certificates/swarm-root-ca.crt',
  caKey: 'certificates/swarm-root-ca.key',
  nodeCert: 'certificates/swarm-node.crt',
  nodeKey: 'certificates/swarm-node.key',
  pnetKey: 'certificates/swarm.psk',
  /** Managers only, like the CA key: what secrets are sealed under in the Raft log (see docs/security.md). */
  dataKey: 'certificates/swarm-data.key',
  raftDir: 'raft',
} as const;

const STATE_FORMAT = 1;
const SECRET_MODE = 0o600;
const PUBLIC_MODE = 0o644;

/** What makes a data dir "in a swarm". Written last at init, after the cluster's first transaction committed. */
export interface NodeState {
  format: typeof STATE_FORMAT;
  nodeId: string;
  clusterId: string;
  role: 'manager' | 'worker';
  listenHost: string;
  listenPort: number;
  advertiseHost: string;
  advertisePort: number;
  joinedAtMs: number;
  /** A manager that joined an existing group (its Raft log starts empty and waits for the leader); absent at init. */
  raftJoin?: boolean;
  /** libp2p addresses of the managers met at join: gossip seeds after a restart (workers know no others). */
  managerAddrs?: string[];
}

export interface NodeSecrets {
  caCertPem: string;
  /** Only managers hold the CA key. */
  caKeyPem: string | null;
  nodeCertPem: string;
  nodeKeyPem: string;
  /** The PSK file bytes (@swarm/pki encodePnetKey) that the gossip host takes as is. */
  pnetKeyFile: Uint8Array;
  /**
   * Managers only: the data key file (@swarm/pki encodeDataKey). null on workers, and on managers of a cluster made
   * before secrets existed (they cannot store secrets).
   */
  dataKeyFile: Uint8Array | null;
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = await open(tmp, 'w', mode);
  try {
    await fd.writeFile(data);
    await fd.chmod(mode); // the umask may have narrowed or the file pre-existed with another mode
    await fd.sync();
  } finally {
    await fd.close();
  }
  await rename(tmp, path);
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

async function readIfExists(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** The node's libp2p identity: its peer id is what the CA binds into the node certificate. */
export async function loadOrCreateLibp2pKey(dataDir: string, logger: Logger): Promise<{ privateKey: PrivateKey; peerId: string }> {
  const path = join(dataDir, FILES.libp2pKey);
  const bytes = await readIfExists(path);
  let privateKey: PrivateKey;
  if (bytes === null) {
    privateKey = await generateKeyPair('Ed25519');
    await writeFileAtomic(path, privateKeyToProtobuf(privateKey), SECRET_MODE);
    logger.info({ file: path }, 'created the node libp2p identity');
  } else {
    try {
      privateKey = privateKeyFromProtobuf(new Uint8Array(bytes));
    } catch (err) {
      throw new DaemonError('corrupt_state', `${path} is not a libp2p private key (${(err as Error).message}): restore it or remove the data dir's contents to start over`);
    }
  }
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey).toString() };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export async function loadNodeState(dataDir: string): Promise<NodeState | null> {
  const path = join(dataDir, FILES.state);
  const bytes = await readIfExists(path);
  if (bytes === null) return null;
  const bad = (why: string): DaemonError => new DaemonError('corrupt_state', `${path} is unreadable: ${why}; restore it from a backup, or leave the swarm and rejoin`);
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (!isRecord(raw) || raw['format'] !== STATE_FORMAT) throw bad(`not a format ${STATE_FORMAT} node state`);
  for (const key of ['nodeId', 'clusterId', 'listenHost', 'advertiseHost'] as const) {
    if (typeof raw[key] !== 'string' || raw[key] === '') throw bad(`${key} is missing`);
  }
  for (const key of ['listenPort', 'advertisePort', 'joinedAtMs'] as const) {
    if (typeof raw[key] !== 'number' || !Number.isInteger(raw[key])) throw bad(`${key} is not an integer`);
  }
  if (raw['role'] !== 'manager' && raw['role'] !== 'worker') throw bad('role is neither manager nor worker');
  const addrs = raw['managerAddrs'];
  if (addrs !== undefined && (!Array.isArray(addrs) || !addrs.every((a) => typeof a === 'string'))) throw bad('managerAddrs is not a list of strings');
  if (raw['raftJoin'] !== undefined && typeof raw['raftJoin'] !== 'boolean') throw bad('raftJoin is not a boolean');
  return raw as unknown as NodeState;
}

export async function saveNodeState(dataDir: string, state: NodeState): Promise<void> {
  assert(state.format === STATE_FORMAT && state.nodeId !== '' && state.clusterId !== '', 'node state is complete');
  await writeFileAtomic(join(dataDir, FILES.state), `${JSON.stringify(state, null, 2)}\n`, SECRET_MODE);
}

export async function saveSecrets(dataDir: string, secrets: NodeSecrets): Promise<void> {
  await writeFileAtomic(join(dataDir, FILES.caCert), secrets.caCertPem, PUBLIC_MODE);
  if (secrets.caKeyPem !== null) await writeFileAtomic(join(dataDir, FILES.caKey), secrets.caKeyPem, SECRET_MODE);
  await writeFileAtomic(join(dataDir, FILES.nodeCert), secrets.nodeCertPem, PUBLIC_MODE);
  await writeFileAtomic(join(dataDir, FILES.nodeKey), secrets.nodeKeyPem, SECRET_MODE);
  await writeFileAtomic(join(dataDir, FILES.pnetKey), secrets.pnetKeyFile, SECRET_MODE);
  if (secrets.dataKeyFile !== null) await writeFileAtomic(join(dataDir, FILES.dataKey), secrets.dataKeyFile, SECRET_MODE);
  else await rm(join(dataDir, FILES.dataKey), { force: true });
}

export async function loadSecrets(dataDir: string): Promise<NodeSecrets> {
  const need = async (file: string): Promise<Buffer> => {
    const bytes = await readIfExists(join(dataDir, file));
    if (bytes === null) {
      throw new DaemonError('corrupt_state', `${join(dataDir, file)} is missing although this node is in a swarm: restore it, or leave the swarm and rejoin`);
    }
    return bytes;
  };
  const caKey = await readIfExists(join(dataDir, FILES.caKey));
  const dataKey = await readIfExists(join(dataDir, FILES.dataKey));
  return {
    caCertPem: (await need(FILES.caCert)).toString('utf8'),
    caKeyPem: caKey === null ? null : caKey.toString('utf8'),
    nodeCertPem: (await need(FILES.nodeCert)).toString('utf8'),
    nodeKeyPem: (await need(FILES.nodeKey)).toString('utf8'),
    pnetKeyFile: new Uint8Array(await need(FILES.pnetKey)),
    dataKeyFile: dataKey === null ? null : new Uint8Array(dataKey),
  };
}

/** Removes what a failed init left (Raft log, certificates), never the libp2p identity or the lock. */
export async function removeSwarmState(dataDir: string): Promise<void> {
  await rm(join(dataDir, FILES.raftDir), { recursive: true, force: true });
  await rm(join(dataDir, 'certificates'), { recursive: true, force: true });
  await rm(join(dataDir, FILES.state), { force: true });
}
