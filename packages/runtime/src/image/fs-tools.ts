// The two things Node cannot do for layer unpacking, done by Debian's tools: mknod (device nodes, fifos, overlayfs
// whiteouts) and setfattr (the overlayfs opaque-directory xattr). Argument arrays only, exit codes checked.

import { execFile } from 'node:child_process';
import { RuntimeError } from '../runtime.js';

const MKNOD = 'mknod';
const SETFATTR = 'setfattr';
/** setfattr takes many files per call; this many keeps argv far below the kernel's limit. */
const SETFATTR_BATCH = 256;

function run(bin: string, args: readonly string[], hint: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: 30_000 }, (err, _stdout, stderr) => {
      if (err === null) return resolve();
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      reject(
        new RuntimeError(
          'image_unavailable',
          missing ? `${bin} is not installed: ${hint}` : `${bin} ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`,
        ),
      );
    });
  });
}

export type NodeKind = { type: 'char' | 'block'; major: number; minor: number } | { type: 'fifo' };

/** A device node or fifo with the given permission bits (needs root for devices). */
export function mknod(path: string, kind: NodeKind, mode: number): Promise<void> {
  const args = ['-m', (mode & 0o7777).toString(8), path];
  if (kind.type === 'fifo') args.push('p');
  else args.push(kind.type === 'char' ? 'c' : 'b', String(kind.major), String(kind.minor));
  return run(MKNOD, args, 'apt-get install coreutils');
}

/** Sets `trusted.overlay.opaque=y` on each directory, so an overlay does not show what lower layers have in it. */
export async function markOpaque(dirs: readonly string[]): Promise<void> {
  for (let i = 0; i < dirs.length; i += SETFATTR_BATCH) {
    await run(SETFATTR, ['-h', '-n', 'trusted.overlay.opaque', '-v', 'y', ...dirs.slice(i, i + SETFATTR_BATCH)], 'apt-get install attr');
  }
}

/** One chunk into a tar parser, waiting while it is full; fails once the parser has stopped (an error on its side). */
/** What feedExtract needs of a tar parser (tar-stream's extract is a streamx writable, not a Node one). */
export interface ExtractSink {
  readonly destroyed: boolean;
  write(chunk: Buffer): boolean;
  on(event: 'drain' | 'close', fn: () => void): unknown;
  off(event: 'drain' | 'close', fn: () => void): unknown;
}

export async function feedExtract(extract: ExtractSink, chunk: Buffer): Promise<void> {
  if (extract.destroyed) throw new Error('the tar parser stopped');
  if (extract.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      extract.off('drain', done);
      extract.off('close', done);
      resolve();
    };
    extract.on('drain', done);
    extract.on('close', done);
  });
}
