// Length-prefixed msgpack frames for Raft over byte streams: 4-byte big-endian length, then msgpack.
// Kept inside raft-consensus-ts (not @swarm/wire) so the library publishes on its own.

import { Packr, Unpackr } from 'msgpackr';

/** Default upper bound on one frame (a whole snapshot travels in one frame). */
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024;

// Records off: peers may not share a structure table. copyBuffers: decoded entry data outlives the
// socket chunk it arrived in (it sits in the log), so it must not pin that chunk.
const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number' });
const unpackr = new Unpackr({ useRecords: false, moreTypes: false, int64AsType: 'number', copyBuffers: true });

export class FrameError extends Error {
  constructor(
    readonly code: 'frame_too_large' | 'frame_undecodable',
    message: string,
  ) {
    super(message);
    this.name = 'FrameError';
  }
}

export function encodeFrame(value: unknown, maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES): Buffer {
  const body = packr.pack(value);
  if (body.length > maxFrameBytes) {
    throw new FrameError('frame_too_large', `frame of ${body.length} bytes exceeds the limit of ${maxFrameBytes}`);
  }
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/**
 * Turns stream chunks into decoded frame values. Holds at most one partial frame; a declared
 * length above the limit throws before anything is buffered for it.
 */
export class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(private readonly maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {}

  push(chunk: Buffer): unknown[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const values: unknown[] = [];
    let offset = 0;
    while (this.buffered.length - offset >= 4) {
      const length = this.buffered.readUInt32BE(offset);
      if (length > this.maxFrameBytes) {
        throw new FrameError('frame_too_large', `peer sent a frame of ${length} bytes (limit ${this.maxFrameBytes})`);
      }
      if (this.buffered.length - offset - 4 < length) break;
      const body = this.buffered.subarray(offset + 4, offset + 4 + length);
      offset += 4 + length;
      try {
        values.push(unpackr.unpack(body));
      } catch (err) {
        throw new FrameError('frame_undecodable', `peer sent a frame that is not msgpack: ${(err as Error).message}`);
      }
    }
    // Copy the tail so a partial frame never pins the (possibly large) chunk it came in.
    this.buffered = offset === this.buffered.length ? Buffer.alloc(0) : Buffer.from(this.buffered.subarray(offset));
    return values;
  }

  get pendingBytes(): number {
    return this.buffered.length;
  }
}
