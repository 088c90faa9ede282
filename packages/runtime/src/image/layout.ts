// An OCI image-layout directory (`oci-layout`, `index.json`, `blobs/sha256/<hex>`): content-addressed blobs written
// through a temp file and renamed into place only when their sha256 (and size) match, and an atomically replaced index.

import { createHash, randomBytes, type Hash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError, assert } from '../runtime.js';
import { isDigest } from './reference.js';
import { MAX_MANIFEST_BYTES, parseManifest, type Descriptor, type ImageIndex } from './oci.js';

export const OCI_LAYOUT_VERSION = '1.0.0';

export function hexOf(digest: string): string {
  assert(isDigest(digest), `not a sha256 digest: ${digest}`);
  return digest.slice('sha256:'.length);
}

/** Writes a file so readers see the old content or the new, never a part. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** A blob on its way in: hashed as it is written, renamed into blobs/ by commit() only if it is what was expected. */
export class BlobWriter {
  private hash: Hash = createHash('sha256');
  private written = 0;
  private done = false;

  private constructor(
    private readonly fh: FileHandle,
    private readonly tmpPath: string,
    private readonly finalPath: string,
    readonly expected: { readonly digest: string; readonly size: number | null },
  ) {}

  static async open(layout: OciLayout, expected: { digest: string; size: number | null }): Promise<BlobWriter> {
    const tmpPath = join(layout.tmpDir, `${hexOf(expected.digest).slice(0, 16)}.${randomBytes(6).toString('hex')}`);
    const fh = await open(tmpPath, 'w', 0o644);
    return new BlobWriter(fh, tmpPath, layout.blobPath(expected.digest), expected);
  }

  get bytesWritten(): number {
    return this.written;
  }

  async write(chunk: Uint8Array): Promise<void> {
    assert(!this.done, 'write after commit/abort');
    if (this.expected.size !== null && this.written + chunk.byteLength > this.expected.size) {
      throw new RuntimeError(
        'image_unavailable',
        `blob ${this.expected.digest} is longer than the ${this.expected.size} bytes its descriptor says: the source sent corrupt data; nothing of it was kept`,
      );
    }
    let off = 0;
    while (off < chunk.byteLength) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.byteLength - off, this.written + off);
      off += bytesWritten;
    }
    this.hash.update(chunk);
    this.written += chunk.byteLength;
  }

  /** Start again from byte 0 (a resumed download the server answered from the beginning). */
  async reset(): Promise<void> {
    assert(!this.done, 'reset after commit/abort');
    await this.fh.truncate(0);
    this.hash = createHash('sha256');
    this.written = 0;
  }

  /** Verifies size and digest, then renames into place; on a mismatch deletes the temp file and throws. */
  async commit(): Promise<void> {
    assert(!this.done, 'commit twice');
    this.done = true;
    const actual = `sha256:${this.hash.digest('hex')}`;
    try {
      await this.fh.sync();
    } finally {
      await this.fh.close();
    }
    if (this.expected.size !== null && this.written !== this.expected.size) {
      await rm(this.tmpPath, { force: true });
      throw new RuntimeError(
        'image_unavailable',
        `blob ${this.expected.digest} has ${this.written} bytes, not the ${this.expected.size} its descriptor says: nothing of it was kept`,
      );
    }
    if (actual !== this.expected.digest) {
      await rm(this.tmpPath, { force: true });
      throw new RuntimeError(
        'image_unavailable',
        `blob ${this.expected.digest} failed verification (its content hashes to ${actual}): the source sent corrupt data; nothing of it was kept`,
      );
    }
    await rename(this.tmpPath, this.finalPath);
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.fh.close().catch(() => undefined);
    await rm(this.tmpPath, { force: true });
  }
}

/** The directory itself: blobs, index.json, and a tmp/ for blobs in flight (emptied when opened). */
export class OciLayout {
  readonly blobsDir: string;
  readonly tmpDir: string;
  readonly indexPath: string;

  constructor(readonly root: string) {
    this.blobsDir = join(root, 'blobs', 'sha256');
    this.tmpDir = join(root, 'tmp');
    this.indexPath = join(root, 'index.json');
    mkdirSync(this.blobsDir, { recursive: true });
    // Temp files of a process that died mid-write are garbage: nothing refers to them.
    rmSync(this.tmpDir, { recursive: true, force: true });
    mkdirSync(this.tmpDir, { recursive: true });
    const layoutFile = join(root, 'oci-layout');
    if (!existsSync(layoutFile)) writeFileAtomic(layoutFile, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
    if (!existsSync(this.indexPath)) this.writeIndex([]);
  }

  blobPath(digest: string): string {
    return join(this.blobsDir, hexOf(digest));
  }

  has(digest: string): boolean {
    return existsSync(this.blobPath(digest));
  }

  blobSize(digest: string): number | null {
    try {
      return statSync(this.blobPath(digest)).size;
    } catch {
      return null;
    }
  }

  /** A small blob (manifest, config) read whole; bounded so a bad blob cannot eat the heap. */
  readSmall(digest: string, maxBytes = MAX_MANIFEST_BYTES): Buffer {
    const size = this.blobSize(digest);
    if (size === null) throw new RuntimeError('not_found', `blob ${digest} is missing from the image store at ${this.root}: pull the image again`);
    if (size > maxBytes) throw new RuntimeError('image_unavailable', `blob ${digest} is ${size} bytes, more than the ${maxBytes} a manifest or config may have`);
    return readFileSync(this.blobPath(digest));
  }

  async writeBytes(bytes: Uint8Array, digest: string): Promise<void> {
    if (this.has(digest)) return;
    const w = await BlobWriter.open(this, { digest, size: bytes.byteLength });
    try {
      await w.write(bytes);
      await w.commit();
    } catch (err) {
      await w.abort();
      throw err;
    }
  }

  async writer(expected: { digest: string; size: number | null }): Promise<BlobWriter> {
    return BlobWriter.open(this, expected);
  }

  listBlobs(): string[] {
    return readdirSync(this.blobsDir)
      .filter((n) => /^[a-f0-9]{64}$/.test(n))
      .map((n) => `sha256:${n}`);
  }

  deleteBlob(digest: string): void {
    rmSync(this.blobPath(digest), { force: true });
  }

  readIndex(): Descriptor[] {
    const parsed = parseManifest(readFileSync(this.indexPath), null, `${this.indexPath}`);
    if (parsed.kind !== 'index') throw new RuntimeError('image_unavailable', `${this.indexPath} is not an OCI image index`);
    return [...parsed.index.manifests];
  }

  writeIndex(manifests: readonly Descriptor[]): void {
    const index: ImageIndex = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests };
    writeFileAtomic(this.indexPath, JSON.stringify(index, null, 1));
  }
}
