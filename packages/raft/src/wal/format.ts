// On-disk format of the write-ahead log: file names, record framing (length + CRC32 + type) and the
// payload codecs for segment headers, entries, hard states and snapshot markers. Pure functions, no I/O.

import { crc32 } from 'node:zlib';
import { pack, unpack } from 'msgpackr';
import type { Entry, EntryType, HardState } from '../types.js';
import { assert } from '../assert.js';

/**
 * A record is `crc32 u32le | payloadLength u32le | type u8 | payload`. The CRC covers the type byte and the
 * payload (bytes 8 .. 9+payloadLength), so a flipped type, payload or length (which moves the range) fails it.
 * An all-zero header never passes (crc32 of a zero type byte is not zero): zeros mark the preallocated tail.
 */
export const RECORD_HEADER_BYTES = 9;

/** A length field above this is corruption, not a request to allocate. Entries bigger than it are refused on save. */
export const MAX_RECORD_PAYLOAD_BYTES = 64 * 1024 * 1024;

export const RecordType = {
  segmentHeader: 1,
  entry: 2,
  hardState: 3,
  /** saveSnapshot(index, term) happened here: the log after it restarts at index+1 unless entry index has that term. */
  snapshotMarker: 4,
} as const;
export type RecordTypeCode = (typeof RecordType)[keyof typeof RecordType];

const SEGMENT_MAGIC = Buffer.from('RAFTWAL\0', 'latin1');
export const SEGMENT_VERSION = 1;
/** magic(8) + version u32 + seq u64 + firstIndex u64 */
const SEGMENT_HEADER_PAYLOAD_BYTES = 8 + 4 + 8 + 8;
export const SEGMENT_HEADER_RECORD_BYTES = RECORD_HEADER_BYTES + SEGMENT_HEADER_PAYLOAD_BYTES;

/** type u8 + term u64 + index u64, then the data bytes */
const ENTRY_FIXED_BYTES = 1 + 8 + 8;
const MARKER_PAYLOAD_BYTES = 8 + 8;

const TWO_POW_32 = 0x1_0000_0000;

const SEGMENT_NAME = /^wal-([0-9a-f]{16})-([0-9a-f]{16})\.log$/;
const SNAPSHOT_NAME = /^snap-([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

export function hex16(n: number): string {
  assert(Number.isSafeInteger(n) && n >= 0, `file name number ${n} is not a non-negative safe integer`);
  return n.toString(16).padStart(16, '0');
}

export function segmentFileName(seq: number, firstIndex: number): string {
  return `wal-${hex16(seq)}-${hex16(firstIndex)}.log`;
}

export function snapshotFileName(term: number, index: number): string {
  return `snap-${hex16(term)}-${hex16(index)}.snap`;
}

function parseHex16(s: string): number | null {
  const n = Number.parseInt(s, 16);
  return Number.isSafeInteger(n) ? n : null;
}

export function parseSegmentFileName(name: string): { seq: number; firstIndex: number } | null {
  const m = SEGMENT_NAME.exec(name);
  if (m === null || m[1] === undefined || m[2] === undefined) return null;
  const seq = parseHex16(m[1]);
  const firstIndex = parseHex16(m[2]);
  return seq === null || firstIndex === null ? null : { seq, firstIndex };
}

export function parseSnapshotFileName(name: string): { term: number; index: number } | null {
  const m = SNAPSHOT_NAME.exec(name);
  if (m === null || m[1] === undefined || m[2] === undefined) return null;
  const term = parseHex16(m[1]);
  const index = parseHex16(m[2]);
  return term === null || index === null ? null : { term, index };
}

/** Thrown by decoders when a record passed its CRC but its payload makes no sense (a bug or a foreign file). */
export class RecordFormatError extends Error {}

export function writeU64(buf: Buffer, offset: number, n: number): void {
  assert(Number.isSafeInteger(n) && n >= 0, `u64 field ${n} is not a non-negative safe integer`);
  buf.writeUInt32LE(Math.floor(n / TWO_POW_32), offset);
  buf.writeUInt32LE(n >>> 0, offset + 4);
}

export function readU64(buf: Buffer, offset: number): number {
  const hi = buf.readUInt32LE(offset);
  const lo = buf.readUInt32LE(offset + 4);
  if (hi >= 0x20_0000) throw new RecordFormatError(`u64 field at ${offset} exceeds 2^53`);
  return hi * TWO_POW_32 + lo;
}

/** Fills the 9-byte header at `offset` for a payload already written at offset+9 and returns the record size. */
function sealRecord(buf: Buffer, offset: number, type: RecordTypeCode, payloadBytes: number): number {
  assert(payloadBytes <= MAX_RECORD_PAYLOAD_BYTES, `record payload ${payloadBytes} bytes over the bound`);
  buf.writeUInt32LE(payloadBytes, offset + 4);
  buf.writeUInt8(type, offset + 8);
  const crc = crc32(buf.subarray(offset + 8, offset + RECORD_HEADER_BYTES + payloadBytes));
  buf.writeUInt32LE(crc, offset);
  return RECORD_HEADER_BYTES + payloadBytes;
}

export function entryRecordBytes(e: Entry): number {
  return RECORD_HEADER_BYTES + ENTRY_FIXED_BYTES + e.data.length;
}

export function encodeEntryInto(buf: Buffer, offset: number, e: Entry): number {
  const p = offset + RECORD_HEADER_BYTES;
  buf.writeUInt8(e.type === 'conf-change' ? 1 : 0, p);
  writeU64(buf, p + 1, e.term);
  writeU64(buf, p + 9, e.index);
  buf.set(e.data, p + ENTRY_FIXED_BYTES);
  return sealRecord(buf, offset, RecordType.entry, ENTRY_FIXED_BYTES + e.data.length);
}

export function decodeEntry(payload: Buffer): Entry {
  if (payload.length < ENTRY_FIXED_BYTES) throw new RecordFormatError(`entry payload of ${payload.length} bytes`);
  const typeCode = payload.readUInt8(0);
  let type: EntryType;
  if (typeCode === 0) type = 'normal';
  else if (typeCode === 1) type = 'conf-change';
  else throw new RecordFormatError(`unknown entry type ${typeCode}`);
  const term = readU64(payload, 1);
  const index = readU64(payload, 9);
  if (index < 1) throw new RecordFormatError('entry index 0');
  // A copy, so the entry does not pin the whole segment buffer it was read from.
  const data = new Uint8Array(payload.subarray(ENTRY_FIXED_BYTES));
  return { term, index, type, data };
}

export function encodeHardStateRecord(hs: HardState): Buffer {
  const payload = pack({ term: hs.term, vote: hs.vote, commit: hs.commit });
  const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  payload.copy(buf, RECORD_HEADER_BYTES);
  sealRecord(buf, 0, RecordType.hardState, payload.length);
  return buf;
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function decodeHardState(payload: Buffer): HardState {
  let v: unknown;
  try {
    v = unpack(payload);
  } catch (err) {
    throw new RecordFormatError(`hard state is not msgpack: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null) throw new RecordFormatError('hard state is not a map');
  const { term, vote, commit } = v as Record<string, unknown>;
  if (!isNonNegativeInt(term) || !isNonNegativeInt(commit)) throw new RecordFormatError('hard state term/commit');
  if (vote !== null && (typeof vote !== 'string' || vote === '')) throw new RecordFormatError('hard state vote');
  return { term, vote, commit };
}

export function encodeSegmentHeaderRecord(seq: number, firstIndex: number): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_RECORD_BYTES);
  const p = RECORD_HEADER_BYTES;
  SEGMENT_MAGIC.copy(buf, p);
  buf.writeUInt32LE(SEGMENT_VERSION, p + 8);
  writeU64(buf, p + 12, seq);
  writeU64(buf, p + 20, firstIndex);
  sealRecord(buf, 0, RecordType.segmentHeader, SEGMENT_HEADER_PAYLOAD_BYTES);
  return buf;
}

export function decodeSegmentHeader(payload: Buffer): { version: number; seq: number; firstIndex: number } {
  if (payload.length !== SEGMENT_HEADER_PAYLOAD_BYTES) throw new RecordFormatError('segment header size');
  if (!payload.subarray(0, 8).equals(SEGMENT_MAGIC)) throw new RecordFormatError('segment header magic');
  return { version: payload.readUInt32LE(8), seq: readU64(payload, 12), firstIndex: readU64(payload, 20) };
}

export function encodeSnapshotMarkerRecord(index: number, term: number): Buffer {
  const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES + MARKER_PAYLOAD_BYTES);
  writeU64(buf, RECORD_HEADER_BYTES, index);
  writeU64(buf, RECORD_HEADER_BYTES + 8, term);
  sealRecord(buf, 0, RecordType.snapshotMarker, MARKER_PAYLOAD_BYTES);
  return buf;
}

export function decodeSnapshotMarker(payload: Buffer): { index: number; term: number } {
  if (payload.length !== MARKER_PAYLOAD_BYTES) throw new RecordFormatError('snapshot marker size');
  return { index: readU64(payload, 0), term: readU64(payload, 8) };
}

export interface RawRecord {
  readonly type: number;
  readonly payload: Buffer;
  /** Byte offset of the record's header in the file. */
  readonly offset: number;
}

export interface ScanResult {
  readonly records: RawRecord[];
  /** Offset just past the last good record. */
  readonly validBytes: number;
  /** Why scanning stopped before the end of the buffer, or null if it consumed every byte. */
  readonly stop: { readonly reason: string; readonly zeroTail: boolean } | null;
}

const ZEROS_64K = Buffer.alloc(64 * 1024);

function isAllZero(buf: Buffer): boolean {
  for (let off = 0; off < buf.length; off += ZEROS_64K.length) {
    const chunk = buf.subarray(off, Math.min(buf.length, off + ZEROS_64K.length));
    if (!chunk.equals(ZEROS_64K.subarray(0, chunk.length))) return false;
  }
  return true;
}

/**
 * Splits a segment's bytes into records, stopping at the first one that is short, has an absurd length or a bad
 * CRC. `zeroTail` says everything from the stop to the end is zero bytes (unused preallocated space).
 */
export function scanRecords(buf: Buffer): ScanResult {
  const records: RawRecord[] = [];
  let off = 0;
  const stopAt = (reason: string): ScanResult => ({
    records,
    validBytes: off,
    stop: { reason, zeroTail: isAllZero(buf.subarray(off)) },
  });
  while (off < buf.length) {
    const remaining = buf.length - off;
    if (remaining < RECORD_HEADER_BYTES) return stopAt(`short record header (${remaining} bytes left)`);
    const payloadBytes = buf.readUInt32LE(off + 4);
    if (payloadBytes > MAX_RECORD_PAYLOAD_BYTES) {
      return stopAt(`record length ${payloadBytes} exceeds the bound of ${MAX_RECORD_PAYLOAD_BYTES}`);
    }
    const end = off + RECORD_HEADER_BYTES + payloadBytes;
    if (end > buf.length) return stopAt(`short record (${payloadBytes} payload bytes announced, ${remaining} left)`);
    const want = buf.readUInt32LE(off);
    if (crc32(buf.subarray(off + 8, end)) !== want) return stopAt('record checksum mismatch');
    records.push({ type: buf.readUInt8(off + 8), payload: buf.subarray(off + RECORD_HEADER_BYTES, end), offset: off });
    off = end;
  }
  return { records, validBytes: off, stop: null };
}
