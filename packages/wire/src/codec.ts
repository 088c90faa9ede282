// msgpackr codecs and length-prefixed framing for every byte stream in swarm.
// A frame is a 4-byte big-endian length then that many bytes of msgpack.

import { Packr, Unpackr } from 'msgpackr';

/** Upper bound on one frame; anything larger is a protocol error, not an allocation. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

// Records off: our messages are plain objects read by peers that may not share a structure table.
const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number' });
const unpackr = new Unpackr({ useRecords: false, moreTypes: false, int64AsType: 'number' });

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decode<T = unknown>(bytes: Uint8Array): T {
  return unpackr.unpack(bytes) as T;
}

export class FrameError extends Error {
  constructor(readonly code: 'frame_too_large' | 'frame_undecodable', message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

export function encodeFrame(value: unknown): Buffer {
  const body = packr.pack(value);
  if (body.length > MAX_FRAME_BYTES) {
    throw new FrameError('frame_too_large', `frame of ${body.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  }
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/**
 * Accumulates stream chunks and yields whole decoded frames. Keeps at most one
 * partial frame buffered; a length over MAX_FRAME_BYTES throws before buffering it.
 */
export class FrameDecoder {
  private buffered: Buffer = Buffer.alloc(0);

  push(chunk: Uint8Array): unknown[] {
    this.buffered = this.buffered.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buffered, chunk]);
    const frames: unknown[] = [];
    let offset = 0;
    while (this.buffered.length - offset >= 4) {
      const length = this.buffered.readUInt32BE(offset);
      if (length > MAX_FRAME_BYTES) {
        throw new FrameError('frame_too_large', `peer sent a frame of ${length} bytes (limit ${MAX_FRAME_BYTES})`);
      }
      if (this.buffered.length - offset - 4 < length) break;
      const body = this.buffered.subarray(offset + 4, offset + 4 + length);
      try {
        frames.push(unpackr.unpack(body));
      } catch (err) {
        throw new FrameError('frame_undecodable', `peer sent a frame that is not msgpack: ${(err as Error).message}`);
      }
      offset += 4 + length;
    }
    this.buffered = offset === this.buffered.length ? Buffer.alloc(0) : this.buffered.subarray(offset);
    return frames;
  }

  get pendingBytes(): number {
    return this.buffered.length;
  }
}
