// A small image builder: OCI images from a file tree described in code and an ImageConfig, byte-for-byte the same
// on every run (sorted entries, fixed mtimes and owners, gzip without a timestamp), stored and tagged in an ImageStore.

import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { RuntimeError, type ImageConfig } from '../runtime.js';
import { MEDIA, hostPlatform, sha256Digest, type ImageConfigBlob, type ImageManifest, type Platform } from './oci.js';
import type { ImageStore } from './store.js';
import { cleanEntryPath } from './unpack.js';

/** What a layer holds. Paths are absolute or relative to the image root; owners default to root. */
export type TreeEntry =
  | { readonly type: 'file'; readonly path: string; readonly content: string | Uint8Array; readonly mode?: number; readonly uid?: number; readonly gid?: number }
  | { readonly type: 'dir'; readonly path: string; readonly mode?: number; readonly uid?: number; readonly gid?: number }
  | { readonly type: 'symlink'; readonly path: string; readonly target: string; readonly uid?: number; readonly gid?: number }
  | { readonly type: 'hardlink'; readonly path: string; readonly target: string }
  | { readonly type: 'device'; readonly path: string; readonly kind: 'char' | 'block'; readonly major: number; readonly minor: number; readonly mode?: number }
  /** Deletes `path` of the layers below (an OCI `.wh.` whiteout). */
  | { readonly type: 'whiteout'; readonly path: string }
  /** The directory `path` hides everything the layers below have in it (`.wh..wh..opq`). */
  | { readonly type: 'opaque'; readonly path: string };

export interface BuiltLayer {
  /** The blob (gzip unless built with compress: false). */
  readonly bytes: Buffer;
  readonly digest: string;
  /** sha256 of the uncompressed tar. */
  readonly diffId: string;
  readonly mediaType: string;
}

export interface ImageSpec {
  readonly layers: readonly BuiltLayer[];
  readonly config?: Partial<ImageConfig>;
  /** This node's platform by default. */
  readonly platform?: Platform;
  /** RFC 3339; a fixed default keeps builds reproducible. */
  readonly created?: string;
}

export const BUILD_MTIME = new Date(Date.UTC(2024, 0, 1));
export const BUILD_CREATED = BUILD_MTIME.toISOString().replace('.000Z', 'Z');
export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function entryName(path: string, what: string): string {
  const p = cleanEntryPath(path);
  if (p === null || p === '') throw new RuntimeError('invalid_config', `layer entry "${path}" ${p === null ? 'is outside the image root' : 'is the root itself'}`);
  return p + (what === 'dir' ? '/' : '');
}

function parentAndBase(p: string): [string, string] {
  const i = p.lastIndexOf('/');
  return i < 0 ? ['', p] : [p.slice(0, i + 1), p.slice(i + 1)];
}

/** A layer tar with entries sorted by path (hardlinks after the files they point to), then gzipped. */
export async function buildLayer(entries: readonly TreeEntry[], opts: { compress?: boolean } = {}): Promise<BuiltLayer> {
  const sorted = [...entries].sort((a, b) => {
    const ha = a.type === 'hardlink' ? 1 : 0;
    const hb = b.type === 'hardlink' ? 1 : 0;
    return ha - hb || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  });
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const reading = (async () => {
    for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const e of sorted) {
    const base = { mtime: BUILD_MTIME, uid: 0, gid: 0, uname: '', gname: '' };
    switch (e.type) {
      case 'file': {
        const content = typeof e.content === 'string' ? Buffer.from(e.content) : Buffer.from(e.content);
        await addRaw(pack, { ...base, name: entryName(e.path, 'file'), type: 'file', mode: e.mode ?? 0o644, uid: e.uid ?? 0, gid: e.gid ?? 0 }, content);
        break;
      }
      case 'dir':
        await addRaw(pack, { ...base, name: entryName(e.path, 'dir'), type: 'directory', mode: e.mode ?? 0o755, uid: e.uid ?? 0, gid: e.gid ?? 0 });
        break;
      case 'symlink':
        await addRaw(pack, { ...base, name: entryName(e.path, 'symlink'), type: 'symlink', linkname: e.target, mode: 0o777, uid: e.uid ?? 0, gid: e.gid ?? 0 });
        break;
      case 'hardlink':
        await addRaw(pack, { ...base, name: entryName(e.path, 'link'), type: 'link', linkname: entryName(e.target, 'file'), mode: 0o644 });
        break;
      case 'device':
        await addRaw(pack, {
          ...base,
          name: entryName(e.path, 'device'),
          type: e.kind === 'char' ? 'character-device' : 'block-device',
          devmajor: e.major,
          devminor: e.minor,
          mode: e.mode ?? 0o666,
        });
        break;
      case 'whiteout': {
        const [dir, name] = parentAndBase(entryName(e.path, 'whiteout'));
        await addRaw(pack, { ...base, name: `${dir}.wh.${name}`, type: 'file', mode: 0o644 }, Buffer.alloc(0));
        break;
      }
      case 'opaque':
        await addRaw(pack, { ...base, name: `${entryName(e.path, 'dir')}.wh..wh..opq`, type: 'file', mode: 0o644 }, Buffer.alloc(0));
        break;
    }
  }
  pack.finalize();
  await reading;
  const raw = Buffer.concat(chunks);
  const diffId = sha256Digest(raw);
  if (opts.compress === false) return { bytes: raw, digest: diffId, diffId, mediaType: MEDIA.ociLayer };
  const bytes = gzipSync(raw, { level: 9 });
  return { bytes, digest: sha256Digest(bytes), diffId, mediaType: MEDIA.ociLayerGzip };
}

function addRaw(pack: tar.Pack, header: Parameters<tar.Pack['entry']>[0], content?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
    if (content !== undefined) pack.entry(header, content, cb);
    else pack.entry(header, cb);
  });
}

/** The config and manifest documents of an image (deterministic JSON). */
export function imageDocuments(spec: ImageSpec): { config: Buffer; manifest: Buffer } {
  const platform = spec.platform ?? hostPlatform();
  const c = spec.config ?? {};
  const cfg: Record<string, unknown> = { Env: c.env !== undefined ? [...c.env] : [DEFAULT_PATH_ENV] };
  if (c.entrypoint !== undefined && c.entrypoint.length > 0) cfg['Entrypoint'] = [...c.entrypoint];
  if (c.cmd !== undefined && c.cmd.length > 0) cfg['Cmd'] = [...c.cmd];
  if (c.workingDir !== undefined && c.workingDir !== '') cfg['WorkingDir'] = c.workingDir;
  if (c.user !== undefined && c.user !== '') cfg['User'] = c.user;
  if (c.stopSignal !== undefined && c.stopSignal !== '') cfg['StopSignal'] = c.stopSignal;
  if (c.labels !== undefined && Object.keys(c.labels).length > 0) cfg['Labels'] = { ...c.labels };
  if (c.exposedPorts !== undefined && c.exposedPorts.length > 0) cfg['ExposedPorts'] = Object.fromEntries([...c.exposedPorts].sort().map((p) => [p, {}]));
  const created = spec.created ?? BUILD_CREATED;
  const configBlob: ImageConfigBlob = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
    config: cfg,
    rootfs: { type: 'layers', diff_ids: spec.layers.map((l) => l.diffId) },
    history: spec.layers.map(() => ({ created, created_by: 'swarm image builder' })),
  };
  const config = Buffer.from(JSON.stringify(configBlob));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: { mediaType: MEDIA.ociConfig, digest: sha256Digest(config), size: config.byteLength },
    layers: spec.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.byteLength })),
  };
  return { config, manifest: Buffer.from(JSON.stringify(manifest)) };
}

/** Builds the image into the store under `references`; returns its manifest digest. */
export async function buildImage(store: ImageStore, spec: ImageSpec, references: readonly string[]): Promise<string> {
  const docs = imageDocuments(spec);
  for (const l of spec.layers) await store.putBlob(l.bytes);
  await store.putBlob(docs.config);
  return store.addImage(docs.manifest, references);
}
