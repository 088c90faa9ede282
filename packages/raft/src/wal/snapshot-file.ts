// Snapshot files `snap-<term>-<index>.snap`: a checksummed header + msgpack meta + the raw state-machine image,
// written atomically (tmp file, fsync, rename, fsync dir) so a crash leaves either the old or the new file.

import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { pack, unpack } from 'msgpackr';
import type { NodeId, Snapshot } from '../types.js';
import { fsyncDir, writeFully } from './io.js';
import { snapshotFileName, writeU64 } from './format.js';

const SNAPSHOT_MAGIC = Buffer.from('RAFTSNP\0', 'latin1');
const SNAPSHOT_VERSION = 1;
/** magic(8) | version u32 | crc32 u32 over bytes 16.. | metaLen u32 | dataLen u64 */
const HEADER_BYTES = 8 + 4 + 4 + 4 + 8;
const CRC_FROM = 16;
/** Membership lists are small; a bigger meta length is corruption. */
const MAX_META_BYTES = 16 * 1024 * 1024;

export class SnapshotFileError extends Error {}

export function encodeSnapshotHead(snap: Snapshot): Buffer {
  const meta = pack({
    index: snap.meta.index,
    term: snap.meta.term,
    voters: [...snap.meta.confState.voters],
    learners: [...snap.meta.confState.learners],
  });
  const head = Buffer.alloc(HEADER_BYTES + meta.length);
  SNAPSHOT_MAGIC.copy(head, 0);
  head.writeUInt32LE(SNAPSHOT_VERSION, 8);
  head.writeUInt32LE(meta.length, 16);
  writeU64(head, 20, snap.data.length);
  meta.copy(head, HEADER_BYTES);
  const crc = crc32(snap.data, crc32(head.subarray(CRC_FROM)));
  head.writeUInt32LE(crc, 12);
  return head;
}

function isIdList(v: unknown): v is NodeId[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string' && x !== '');
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Parses and verifies a whole snapshot file; throws SnapshotFileError naming what is wrong. */
export function decodeSnapshotFile(buf: Buffer): Snapshot {
  if (buf.length < HEADER_BYTES) throw new SnapshotFileError(`file is ${buf.length} bytes, shorter than the header`);
  if (!buf.subarray(0, 8).equals(SNAPSHOT_MAGIC)) throw new SnapshotFileError('bad magic');
  const version = buf.readUInt32LE(8);
  if (version !== SNAPSHOT_VERSION) throw new SnapshotFileError(`unknown version ${version}`);
  const metaBytes = buf.readUInt32LE(16);
  if (metaBytes > MAX_META_BYTES) throw new SnapshotFileError(`meta length ${metaBytes} exceeds the bound`);
  const hi = buf.readUInt32LE(20);
  const dataBytes = hi * 0x1_0000_0000 + buf.readUInt32LE(24);
  if (HEADER_BYTES + metaBytes + dataBytes !== buf.length) {
    throw new SnapshotFileError(`lengths (meta ${metaBytes}, data ${dataBytes}) do not match the file size ${buf.length}`);
  }
  if (crc32(buf.subarray(CRC_FROM)) !== buf.readUInt32LE(12)) throw new SnapshotFileError('checksum mismatch');
  let meta: unknown;
  try {
    meta = unpack(buf.subarray(HEADER_BYTES, HEADER_BYTES + metaBytes));
  } catch (err) {
    throw new SnapshotFileError(`meta is not msgpack: ${(err as Error).message}`);
  }
  if (typeof meta !== 'object' || meta === null) throw new SnapshotFileError('meta is not a map');
  const { index, term, voters, learners } = meta as Record<string, unknown>;
  if (!isNonNegativeInt(index) || !isNonNegativeInt(term) || !isIdList(voters) || !isIdList(learners)) {
    throw new SnapshotFileError('meta fields have the wrong shape');
  }
  const start = HEADER_BYTES + metaBytes;
  const data = new Uint8Array(buf.buffer, buf.byteOffset + start, dataBytes);
  return { meta: { index, term, confState: { voters, learners } }, data };
}

export async function readSnapshotFile(path: string, expect: { term: number; index: number }): Promise<Snapshot> {
  const snap = decodeSnapshotFile(await readFile(path));
  if (snap.meta.index !== expect.index || snap.meta.term !== expect.term) {
    throw new SnapshotFileError(
      `holds (term ${snap.meta.term}, index ${snap.meta.index}) but is named for (term ${expect.term}, index ${expect.index})`,
    );
  }
  return snap;
}

/** Writes the snapshot durably under its final name and returns that name. */
export async function writeSnapshotFile(dir: string, snap: Snapshot): Promise<string> {
  const name = snapshotFileName(snap.meta.term, snap.meta.index);
  const tmp = join(dir, `${name}.tmp`);
  const head = encodeSnapshotHead(snap);
  try {
    const fh = await open(tmp, 'w');
    try {
      await writeFully(fh, head, 0);
      await writeFully(fh, snap.data, head.length);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(dir, name));
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
  return name;
}
