// OCI and Docker image documents (index, manifest, config): media types, checked parsing of what a registry or an
// archive hands us, the node's platform, and the ImageConfig a container uses.

import { createHash } from 'node:crypto';
import { RuntimeError, type ImageConfig } from '../runtime.js';
import { isDigest } from './reference.js';

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

/** What we ask a registry for, most preferred first. */
export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerList, MEDIA.dockerManifest].join(', ');

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
/** Docker's (containerd's) full image name in archives it saves. */
export const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';

/** Manifests and configs are small; anything bigger is refused before it is read (distribution's own limit). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly platform?: Platform;
  readonly urls?: readonly string[];
}

export interface ImageIndex {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly manifests: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface ImageManifest {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

/** The image config blob; fields we do not use are kept as they came. */
export interface ImageConfigBlob {
  readonly created?: string;
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
  readonly config?: {
    readonly User?: string;
    readonly ExposedPorts?: Readonly<Record<string, object>>;
    readonly Env?: readonly string[];
    readonly Entrypoint?: readonly string[] | null;
    readonly Cmd?: readonly string[] | null;
    readonly Volumes?: Readonly<Record<string, object>>;
    readonly WorkingDir?: string;
    readonly Labels?: Readonly<Record<string, string>> | null;
    readonly StopSignal?: string;
  };
  readonly rootfs: { readonly type: 'layers'; readonly diff_ids: readonly string[] };
  readonly history?: readonly unknown[];
}

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

const NODE_ARCH: Readonly<Record<string, string>> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/** This node's platform in OCI's words (process.arch x64 -> amd64). */
export function hostPlatform(): Platform {
  return { os: 'linux', architecture: NODE_ARCH[process.arch] ?? process.arch };
}

export function platformString(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant !== undefined && p.variant !== '' ? `/${p.variant}` : ''}`;
}

/**
 * The index entry for `want`, or an error naming the platforms the index has. A variant in the index must match
 * ours when we name one; arm64's `v8` counts as no variant (containerd's normalisation).
 */
export function selectPlatform(index: ImageIndex, want: Platform, what: string): Descriptor {
  const norm = (p: Platform): string => (p.architecture === 'arm64' && p.variant === 'v8' ? '' : (p.variant ?? ''));
  const candidates = index.manifests.filter(
    (d) => d.platform !== undefined && d.platform.os === want.os && d.platform.architecture === want.architecture && isManifestType(d.mediaType),
  );
  const exact = candidates.find((d) => d.platform !== undefined && norm(d.platform) === norm(want));
  const chosen = exact ?? (want.variant === undefined ? candidates[0] : undefined);
  if (chosen !== undefined) return chosen;
  const have = index.manifests
    .filter((d) => d.platform !== undefined && d.platform.os !== 'unknown')
    .map((d) => platformString(d.platform as Platform));
  throw new RuntimeError(
    'image_unavailable',
    `${what} has no image for this node's platform ${platformString(want)}; it has ${have.length > 0 ? have.join(', ') : 'no platform entries'}: ` +
      'use an image built for this platform',
  );
}

export function isIndexType(mediaType: string): boolean {
  return mediaType === MEDIA.ociIndex || mediaType === MEDIA.dockerList;
}

export function isManifestType(mediaType: string): boolean {
  return mediaType === MEDIA.ociManifest || mediaType === MEDIA.dockerManifest;
}

function malformed(what: string, why: string): RuntimeError {
  return new RuntimeError('image_unavailable', `${what} is malformed: ${why}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkDescriptor(v: unknown, what: string): Descriptor {
  if (!isRecord(v)) throw malformed(what, 'a descriptor is not an object');
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string') throw malformed(what, 'a descriptor has no mediaType');
  if (typeof digest !== 'string' || !isDigest(digest)) throw malformed(what, `descriptor digest ${String(digest)} is not sha256:<64 hex>`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw malformed(what, `descriptor ${digest} has no valid size`);
  return v as unknown as Descriptor;
}

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw malformed(what, `not JSON (${(err as Error).message})`);
  }
  if (!isRecord(v)) throw malformed(what, 'not a JSON object');
  return v;
}

export type ParsedManifest = { kind: 'index'; mediaType: string; index: ImageIndex } | { kind: 'manifest'; mediaType: string; manifest: ImageManifest };

/**
 * An index or image manifest from its bytes. `contentType` (the registry's header, or the descriptor's mediaType)
 * is used when the document itself does not say; Docker's schema1 is refused.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | null, what: string): ParsedManifest {
  const v = parseJson(bytes, what);
  if (v['schemaVersion'] === 1) throw malformed(what, 'it is a Docker schema 1 manifest, which is not supported: push the image again with a current client');
  if (v['schemaVersion'] !== 2) throw malformed(what, `schemaVersion is ${String(v['schemaVersion'])}, not 2`);
  const declared = typeof v['mediaType'] === 'string' ? v['mediaType'] : null;
  const ct = contentType?.split(';')[0]?.trim() ?? null;
  let mediaType = declared ?? (ct !== null && (isIndexType(ct) || isManifestType(ct)) ? ct : null);
  if (mediaType === null) mediaType = Array.isArray(v['manifests']) ? MEDIA.ociIndex : MEDIA.ociManifest;
  if (isIndexType(mediaType)) {
    if (!Array.isArray(v['manifests'])) throw malformed(what, 'an index without a manifests list');
    const manifests = v['manifests'].map((d) => checkDescriptor(d, what));
    return { kind: 'index', mediaType, index: { ...(v as object), schemaVersion: 2, manifests } as ImageIndex };
  }
  if (!isManifestType(mediaType)) throw malformed(what, `unsupported media type ${mediaType}`);
  if (!Array.isArray(v['layers'])) throw malformed(what, 'a manifest without layers');
  const config = checkDescriptor(v['config'], what);
  const layers = v['layers'].map((d) => checkDescriptor(d, what));
  return { kind: 'manifest', mediaType, manifest: { ...(v as object), schemaVersion: 2, config, layers } as ImageManifest };
}

export function parseConfigBlob(bytes: Uint8Array, layerCount: number, what: string): ImageConfigBlob {
  const v = parseJson(bytes, what);
  const rootfs = v['rootfs'];
  if (!isRecord(rootfs) || !Array.isArray(rootfs['diff_ids'])) throw malformed(what, 'no rootfs.diff_ids');
  const diffIds = rootfs['diff_ids'];
  if (!diffIds.every((d) => typeof d === 'string' && isDigest(d))) throw malformed(what, 'a diff_id is not sha256:<64 hex>');
  if (diffIds.length !== layerCount) throw malformed(what, `it lists ${diffIds.length} diff_ids for ${layerCount} layers`);
  if (v['config'] !== undefined && v['config'] !== null && !isRecord(v['config'])) throw malformed(what, 'config is not an object');
  return v as unknown as ImageConfigBlob;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** The parts of the config a container uses. */
export function imageConfigOf(blob: ImageConfigBlob): ImageConfig {
  const c = blob.config ?? {};
  const labels: Record<string, string> = {};
  for (const [k, val] of Object.entries(c.Labels ?? {})) if (typeof val === 'string') labels[k] = val;
  return {
    entrypoint: strings(c.Entrypoint),
    cmd: strings(c.Cmd),
    env: strings(c.Env),
    workingDir: typeof c.WorkingDir === 'string' ? c.WorkingDir : '',
    user: typeof c.User === 'string' ? c.User : '',
    stopSignal: typeof c.StopSignal === 'string' ? c.StopSignal : '',
    labels,
    exposedPorts: Object.keys(c.ExposedPorts ?? {}).sort(),
  };
}

export function jsonBytes(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v));
}
