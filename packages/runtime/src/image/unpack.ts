// Unpacks one layer tar (plain, gzip or zstd) into its own directory, ready to be an overlayfs lower dir: owners,
// modes, mtimes, symlinks, hardlinks and device nodes kept; OCI whiteouts turned into overlayfs ones; entries that
// would land outside the directory (`..`, or through a symlink the layer itself made) refused.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, chown, lchown, link, lstat, lutimes, mkdir, open, rm, symlink, utimes } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import tar from 'tar-stream';
import { RuntimeError } from '../runtime.js';
import { feedExtract, markOpaque, mknod } from './fs-tools.js';

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';

export type Compression = 'gzip' | 'zstd' | 'none';

/** Sniffs the compression from the first bytes: media types lie often enough (docker's `tar.gzip` on plain tars). */
export async function detectCompression(path: string): Promise<Compression> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
    if (bytesRead === 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    return 'none';
  } finally {
    await fh.close();
  }
}

/** A stream of the layer's uncompressed tar. */
export function decompressor(kind: Compression, what: string): Transform | null {
  if (kind === 'gzip') return zlib.createGunzip();
  if (kind === 'zstd') {
    const make = (zlib as unknown as { createZstdDecompress?: () => Transform }).createZstdDecompress;
    if (make === undefined) throw new RuntimeError('image_unavailable', `${what} is zstd-compressed, which this Node cannot decompress: use a gzip image`);
    return make();
  }
  return null;
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar: the layer's diff_id. */
  readonly diffId: string;
  /** Sum of the regular files' sizes. */
  readonly sizeBytes: number;
}

/** A tar entry's content (a streamx Readable). */
interface EntryBody extends AsyncIterable<Uint8Array> {
  resume(): unknown;
}

interface DirMeta {
  readonly abs: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: Date;
}

/** Normalises an archive path to one relative to the layer root; '' is the root; null means it escapes. */
export function cleanEntryPath(name: string): string | null {
  const n = posix.normalize(`./${name}`).replace(/\/+$/, '');
  if (n === '.' || n === '') return '';
  if (n === '..' || n.startsWith('../')) return null;
  return n.replace(/^\.\//, '').replace(/^\/+/, '');
}

class Unpacker {
  private readonly amRoot = process.getuid?.() === 0;
  /** Relative paths known to be real directories we may create entries in. */
  private readonly dirs = new Set<string>(['']);
  private readonly dirMeta = new Map<string, DirMeta>();
  private readonly opaque = new Set<string>();
  sizeBytes = 0;

  constructor(
    private readonly root: string,
    private readonly what: string,
  ) {}

  private refuse(why: string): RuntimeError {
    return new RuntimeError('image_unavailable', `${this.what} cannot be unpacked: ${why}`);
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
  }

  /** Every parent of rel is (made into) a real directory of this layer, never a symlink it planted. */
  private async ensureParents(rel: string): Promise<void> {
    const parts = rel.split('/');
    let cur = '';
    for (let i = 0; i < parts.length - 1; i++) {
      cur = cur === '' ? (parts[i] as string) : `${cur}/${parts[i] as string}`;
      if (this.dirs.has(cur)) continue;
      const st = await lstat(this.abs(cur)).catch(() => null);
      if (st === null) await mkdir(this.abs(cur), { mode: 0o755 });
      else if (st.isSymbolicLink()) throw this.refuse(`entry ${rel} goes through the symlink ${cur}, which could lead outside the layer`);
      else if (!st.isDirectory()) throw this.refuse(`entry ${rel} is under ${cur}, which is not a directory`);
      this.dirs.add(cur);
    }
  }

  /** Removes whatever is at rel (a later entry for the same path wins, as in tar). */
  private async clear(rel: string): Promise<void> {
    const st = await lstat(this.abs(rel)).catch(() => null);
    if (st === null) return;
    await rm(this.abs(rel), { recursive: true, force: true });
    for (const d of [...this.dirs]) if (d === rel || d.startsWith(`${rel}/`)) this.dirs.delete(d);
    for (const d of [...this.dirMeta.keys()]) if (d === rel || d.startsWith(`${rel}/`)) this.dirMeta.delete(d);
    for (const d of [...this.opaque]) if (d === rel || d.startsWith(`${rel}/`)) this.opaque.delete(d);
  }

  private async own(abs: string, uid: number, gid: number, symlinkItself: boolean): Promise<void> {
    if (!this.amRoot) return;
    await (symlinkItself ? lchown(abs, uid, gid) : chown(abs, uid, gid));
  }

  async entry(header: tar.Header, body: EntryBody): Promise<void> {
    const rel = cleanEntryPath(header.name);
    if (rel === null) throw this.refuse(`entry ${header.name} points outside the layer directory`);
    const mode = (header.mode ?? 0o644) & 0o7777;
    const uid = header.uid ?? 0;
    const gid = header.gid ?? 0;
    const mtime = header.mtime ?? new Date(0);
    const base = posix.basename(rel);
    const parent = posix.dirname(rel) === '.' ? '' : posix.dirname(rel);

    if (header.type !== 'file' && header.type !== 'contiguous-file') body.resume();
    if (rel === '') {
      if (header.type !== 'directory') throw this.refuse(`the root entry ${header.name} is not a directory`);
      this.dirMeta.set('', { abs: this.root, mode, uid, gid, mtime });
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      await this.ensureParents(`${rel}`);
      if (base === OPAQUE_MARKER) {
        this.opaque.add(parent);
      } else if (!base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) {
        // `.wh.name` hides `name` of the layers below: overlayfs's whiteout is a 0/0 character device.
        const target = parent === '' ? base.slice(WHITEOUT_PREFIX.length) : `${parent}/${base.slice(WHITEOUT_PREFIX.length)}`;
        await this.clear(target);
        await mknod(this.abs(target), { type: 'char', major: 0, minor: 0 }, 0);
        await this.own(this.abs(target), uid, gid, true);
      }
      // Other `.wh..wh.` names are aufs bookkeeping (hardlink dirs); overlayfs has no use for them.
      if (header.type === 'file') body.resume();
      return;
    }
    await this.ensureParents(rel);
    const abs = this.abs(rel);
    switch (header.type) {
      case 'directory': {
        const st = await lstat(abs).catch(() => null);
        if (st === null || !st.isDirectory()) {
          await this.clear(rel);
          await mkdir(abs, { mode: 0o700 });
        }
        this.dirs.add(rel);
        this.dirMeta.set(rel, { abs, mode, uid, gid, mtime });
        return;
      }
      case 'file':
      case 'contiguous-file': {
        await this.clear(rel);
        // O_EXCL: never writes through something that appeared at this path.
        const fh = await open(abs, 'wx', 0o600);
        try {
          for await (const chunk of body) await fh.write(chunk);
        } finally {
          await fh.close();
        }
        this.sizeBytes += header.size ?? 0;
        await this.own(abs, uid, gid, false);
        await chmod(abs, mode); // after chown, which clears setuid bits
        await utimes(abs, mtime, mtime);
        return;
      }
      case 'symlink': {
        await this.clear(rel);
        await symlink(header.linkname ?? '', abs);
        await this.own(abs, uid, gid, true);
        await lutimes(abs, mtime, mtime);
        return;
      }
      case 'link': {
        const target = cleanEntryPath(header.linkname ?? '');
        if (target === null || target === '') throw this.refuse(`hardlink ${rel} points outside the layer directory (${String(header.linkname)})`);
        await this.ensureParents(target);
        const st = await lstat(this.abs(target)).catch(() => null);
        if (st === null) throw this.refuse(`hardlink ${rel} points to ${target}, which the layer does not have before it`);
        if (st.isDirectory()) throw this.refuse(`hardlink ${rel} points to the directory ${target}`);
        await this.clear(rel);
        await link(this.abs(target), abs);
        return;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        await this.clear(rel);
        const kind =
          header.type === 'fifo'
            ? ({ type: 'fifo' } as const)
            : ({ type: header.type === 'character-device' ? 'char' : 'block', major: header.devmajor ?? 0, minor: header.devminor ?? 0 } as const);
        await mknod(abs, kind, mode);
        await this.own(abs, uid, gid, false);
        await chmod(abs, mode);
        await utimes(abs, mtime, mtime);
        return;
      }
      default:
        throw this.refuse(`entry ${rel} has the tar type ${String(header.type)}, which is not supported`);
    }
  }

  /** Directory modes, owners and mtimes last (their children changed the mtimes), deepest first; then opaque marks. */
  async finish(): Promise<void> {
    if (this.opaque.size > 0) await markOpaque([...this.opaque].map((d) => this.abs(d)));
    const metas = [...this.dirMeta.entries()].sort((a, b) => b[0].split('/').length - a[0].split('/').length || (a[0] < b[0] ? 1 : -1));
    for (const [, m] of metas) {
      await this.own(m.abs, m.uid, m.gid, false);
      await chmod(m.abs, m.mode);
      await utimes(m.abs, m.mtime, m.mtime);
    }
  }
}

/**
 * Unpacks the layer blob at `blobPath` into the existing, empty directory `dir`. Verifies the uncompressed digest
 * when `expectedDiffId` is given; the caller owns `dir` and deletes it when this throws.
 */
export async function unpackLayer(blobPath: string, dir: string, opts: { what: string; expectedDiffId: string | null }): Promise<UnpackResult> {
  const kind = await detectCompression(blobPath);
  const unzip = decompressor(kind, opts.what);
  const hash = createHash('sha256');
  const extract = tar.extract();
  const unpacker = new Unpacker(dir, opts.what);
  const source = createReadStream(blobPath);
  // Feeds the uncompressed tar to the parser (hashing it: the diff_id covers every byte, padding included) while
  // the loop below takes the entries out; either side failing stops the other.
  const feed = async function* (src: AsyncIterable<Buffer>): AsyncGenerator<never> {
    for await (const chunk of src) {
      hash.update(chunk);
      await feedExtract(extract, chunk);
    }
    extract.end(undefined as unknown as Buffer);
  };
  const feeding = (unzip === null ? pipeline(source, feed) : pipeline(source, unzip, feed)).then(
    () => null,
    (err: unknown) => {
      extract.destroy(err as Error);
      return err as Error;
    },
  );
  try {
    for await (const entry of extract) await unpacker.entry(entry.header, entry as unknown as EntryBody);
  } catch (err) {
    extract.destroy(err as Error);
    source.destroy();
    const fed = await feeding;
    if (err instanceof RuntimeError) throw err;
    throw new RuntimeError('image_unavailable', `${opts.what} cannot be unpacked: ${(fed ?? (err as Error)).message}`);
  }
  const fed = await feeding;
  if (fed !== null) throw new RuntimeError('image_unavailable', `${opts.what} cannot be unpacked: ${fed.message}`);
  await unpacker.finish();
  const diffId = `sha256:${hash.digest('hex')}`;
  if (opts.expectedDiffId !== null && diffId !== opts.expectedDiffId) {
    throw new RuntimeError(
      'image_unavailable',
      `${opts.what} does not match its config: its uncompressed content hashes to ${diffId}, the config says ${opts.expectedDiffId}`,
    );
  }
  return { diffId, sizeBytes: unpacker.sizeBytes };
}
