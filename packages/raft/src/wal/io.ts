// Small file-system helpers for the WAL: full positional writes (no silent short writes) and directory fsync,
// which makes a create, rename or unlink inside the directory durable.

import { open, type FileHandle } from 'node:fs/promises';

/** Bound on write() calls for one buffer: a regular file that keeps accepting 0 bytes is an I/O failure. */
const MAX_WRITE_CALLS = 1024;

/** Writes all of `buf` at `position`, looping over short writes. */
export async function writeFully(fh: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  for (let calls = 0; done < buf.length; calls++) {
    if (calls >= MAX_WRITE_CALLS) throw new Error(`write made no progress after ${calls} calls`);
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
