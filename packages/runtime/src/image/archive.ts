// The tar side of `image load` / `image save`: reading an OCI image-layout archive entry by entry (blobs streamed
// out, small files kept) and writing one deterministically (sorted, fixed mtimes) to a file renamed into place.

import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { RuntimeError } from '../runtime.js';
import { MAX_MANIFEST_BYTES } from './oci.js';
import { cleanEntryPath, decompressor } from './unpack.js';
import { feedExtract } from './fs-tools.js';

/** mtime of every entry we write: archives of the same images are byte-identical. */
export const FIXED_MTIME = new Date(0);

export interface ArchiveVisitor {
  /** A `blobs/sha256/<hex>` entry; the body must be consumed. */
  blob(digest: string, sizeBytes: number, body: AsyncIterable<Uint8Array>): Promise<void>;
  /** Any other regular file up to MAX_MANIFEST_BYTES (index.json, oci-layout, manifest.json). */
  file(path: string, bytes: Buffer): void;
}

interface EntryBody extends AsyncIterable<Uint8Array> {
  resume(): unknown;
}

/** Reads a (possibly gzip-compressed) tar archive from a path or a stream. */
export async function readArchive(source: string | Readable, what: string, visit: ArchiveVisitor): Promise<void> {
  const input = typeof source === 'string' ? createReadStream(source) : source;
  const extract = tar.extract();
  // Sniff gzip on the first chunk: `docker save | gzip` archives are common.
  const feed = async function* (src: AsyncIterable<Buffer>): AsyncGenerator<never> {
    let inner: AsyncIterable<Buffer> = src;
    const it = src[Symbol.asyncIterator]();
    const first = await it.next();
    if (first.done === true) {
      extract.end(undefined as unknown as Buffer);
      return;
    }
    const head = first.value;
    const rest = (async function* () {
      yield head;
      for (let r = await it.next(); r.done !== true; r = await it.next()) yield r.value;
    })();
    if (head[0] === 0x1f && head[1] === 0x8b) {
      const gunzip = decompressor('gzip', what);
      if (gunzip !== null) inner = Readable.from(rest).pipe(gunzip);
    } else {
      inner = rest;
    }
    for await (const chunk of inner) {
      await feedExtract(extract, chunk);
    }
    extract.end(undefined as unknown as Buffer);
  };
  const feeding = pipeline(input, feed).then(
    () => null,
    (err: unknown) => {
      extract.destroy(err as Error);
      return err as Error;
    },
  );
  try {
    for await (const entry of extract) {
      const body = entry as unknown as EntryBody;
      const h = entry.header;
      const path = cleanEntryPath(h.name);
      if (h.type !== 'file' || path === null) {
        body.resume();
        continue;
      }
      const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(path);
      if (m !== null) {
        await visit.blob(`sha256:${m[1] as string}`, h.size, body);
      } else if (h.size <= MAX_MANIFEST_BYTES) {
        const parts: Buffer[] = [];
        for await (const c of body) parts.push(Buffer.from(c));
        visit.file(path, Buffer.concat(parts));
      } else {
        body.resume();
      }
    }
  } catch (err) {
    extract.destroy(err as Error);
    input.destroy();
    await feeding;
    if (err instanceof RuntimeError) throw err;
    throw new RuntimeError('invalid_config', `${what} is not a readable image archive: ${(err as Error).message}`);
  }
  const fed = await feeding;
  if (fed !== null) throw new RuntimeError('invalid_config', `${what} is not a readable image archive: ${fed.message}`);
}

export type ArchiveEntry = { path: string; bytes: Buffer } | { path: string; sizeBytes: number; file: string } | { path: string; dir: true };

/** Writes entries (in the order given) as a tar at `dest`, through a temp file renamed into place. */
export async function writeArchive(dest: string, entries: readonly ArchiveEntry[]): Promise<void> {
  const tmp = `${dest}.${randomBytes(4).toString('hex')}.tmp`;
  const pack = tar.pack();
  const writing = pipeline(async function* () {
    for await (const chunk of pack as unknown as AsyncIterable<Buffer>) yield chunk;
  }, createWriteStream(tmp, { mode: 0o644 }));
  try {
    for (const e of entries) await addEntry(pack, e);
    pack.finalize();
    await writing;
    await rename(tmp, dest);
  } catch (err) {
    pack.destroy(err as Error);
    await writing.catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}

/** One entry; resolves when tar-stream has taken all of it. */
export function addEntry(pack: tar.Pack, e: ArchiveEntry): Promise<void> {
  const base = { name: e.path, mtime: FIXED_MTIME, uid: 0, gid: 0, uname: '', gname: '' };
  return new Promise<void>((resolve, reject) => {
    const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
    if ('dir' in e) {
      pack.entry({ ...base, type: 'directory', mode: 0o755 }, cb);
    } else if ('bytes' in e) {
      pack.entry({ ...base, type: 'file', mode: 0o644 }, e.bytes, cb);
    } else {
      const sink = pack.entry({ ...base, type: 'file', mode: 0o644, size: e.sizeBytes }, cb);
      (async () => {
        for await (const chunk of createReadStream(e.file)) {
          if (!sink.write(chunk)) await new Promise<void>((r) => sink.once('drain', () => r()));
        }
        sink.end(undefined);
      })().catch((err: unknown) => {
        sink.destroy(err as Error);
        reject(err as Error);
      });
    }
  });
}
