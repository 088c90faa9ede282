// The node's image store: an OCI image layout (blobs + index.json naming the images) with each layer unpacked once
// into its own short-named directory for overlayfs. Pulls (single flight per image, per blob, per layer), push,
// tag, remove with garbage collection, list, inspect, and load/save of OCI archives.

import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { chmod, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { silentLogger, type Logger } from '@swarm/wire';
import { RuntimeError, assert, type ImageConfig, type ImageProvider, type LocalImage } from '../runtime.js';
import { readArchive, writeArchive, type ArchiveEntry } from './archive.js';
import { SharedFlights, Semaphore } from './flights.js';
import { OciLayout, hexOf, writeFileAtomic } from './layout.js';
import {
  CONTAINERD_NAME_ANNOTATION,
  MEDIA,
  REF_NAME_ANNOTATION,
  hostPlatform,
  imageConfigOf,
  isIndexType,
  parseConfigBlob,
  parseManifest,
  selectPlatform,
  sha256Digest,
  type Descriptor,
  type ImageConfigBlob,
  type ImageManifest,
  type Platform,
} from './oci.js';
import {
  canonicalReference,
  familiarName,
  familiarReference,
  isDigest,
  parseReference,
  repositoryName,
  type ImageReference,
} from './reference.js';
import { RegistryClient, type RegistryClientOptions } from './registry.js';
import { unpackLayer } from './unpack.js';

/** Annotations of our index.json entries beyond the OCI ref.name (the full `registry/repo:tag`). */
const NAME_ANNOTATION = 'io.swarm.image.name';
const INDEX_DIGEST_ANNOTATION = 'io.swarm.image.index.digest';
/** Hex digits of a layer's diff_id naming its directory: short, so ~20 lowerdirs fit an overlay's option page. */
const LAYER_DIR_HEX = 16;
export const DEFAULT_MAX_CONCURRENT_DOWNLOADS = 3;
/** How often (in bytes) a downloading layer reports progress. */
const PROGRESS_STEP_BYTES = 256 * 1024;

export interface ImageStoreOptions extends Omit<RegistryClientOptions, 'logger'> {
  /** The node's `<data dir>/images`: an OCI image layout plus `layers/`. */
  rootDir: string;
  /** Whether a container uses the image with this manifest digest: `remove` refuses then unless forced. */
  inUse?: (manifestDigest: string) => boolean;
  /** A client to use instead of one built from the registry options here. */
  registry?: RegistryClient;
  maxConcurrentDownloads?: number;
  logger?: Logger;
}

export type LayerStatus = 'waiting' | 'downloading' | 'verifying' | 'downloaded' | 'extracting' | 'complete' | 'exists';

export type PullProgress =
  | { readonly type: 'resolved'; readonly reference: string; readonly digest: string; readonly layers: readonly { digest: string; sizeBytes: number }[] }
  | { readonly type: 'layer'; readonly digest: string; readonly status: LayerStatus; readonly currentBytes: number; readonly totalBytes: number };

export type PushProgress = { readonly type: 'layer'; readonly digest: string; readonly status: 'pushing' | 'pushed' | 'exists'; readonly totalBytes: number };

export interface PullResult {
  readonly image: LocalImage;
  /** What the reference resolved to on the registry (the index's digest for a multi-platform image). */
  readonly digest: string;
  /** false when the store had this image already (Docker's "Image is up to date"). */
  readonly downloaded: boolean;
}

export interface ImageSummary {
  /** `busybox`, `127.0.0.1:5000/app`, or `<none>`. */
  readonly repository: string;
  /** `latest` or `<none>`. */
  readonly tag: string;
  /** The image's id: its manifest digest. */
  readonly manifestDigest: string;
  /** The config's `created` (RFC 3339), or '' when it has none. */
  readonly created: string;
  /** Unpacked size when the layers are unpacked, else the compressed size. */
  readonly sizeBytes: number;
}

export interface ImageLayerInfo {
  readonly digest: string;
  readonly diffId: string;
  readonly mediaType: string;
  readonly sizeBytes: number;
}

export interface ImageInspect {
  readonly id: string;
  readonly manifestDigest: string;
  readonly manifestMediaType: string;
  readonly configDigest: string;
  /** `busybox:latest` */
  readonly repoTags: readonly string[];
  /** `busybox@sha256:…` (the index digest when it came from a multi-platform index). */
  readonly repoDigests: readonly string[];
  readonly created: string;
  readonly os: string;
  readonly architecture: string;
  readonly variant: string;
  readonly sizeBytes: number;
  readonly config: ImageConfig;
  readonly layers: readonly ImageLayerInfo[];
}

export type RemoveResult = { readonly untagged: string } | { readonly deleted: string };

export interface LoadedImage {
  readonly manifestDigest: string;
  /** Familiar names it was tagged with (`busybox:latest`); empty for an image loaded without a name. */
  readonly references: readonly string[];
}

/** One image name (or none) in index.json. */
interface Entry {
  readonly manifestDigest: string;
  readonly manifestSize: number;
  readonly mediaType: string;
  /** `registry/repo`, or null for an image with no name (dangling). */
  readonly name: string | null;
  readonly tag: string | null;
  readonly indexDigest: string | null;
}

interface LayerMeta {
  readonly diffId: string;
  readonly sizeBytes: number;
}

interface Resolved {
  readonly manifestDigest: string;
  /** The entries the reference itself named (for untagging). */
  readonly named: readonly Entry[];
  readonly byTag: boolean;
}

export class ImageStore implements ImageProvider {
  readonly rootDir: string;
  readonly registry: RegistryClient;
  private readonly layout: OciLayout;
  private readonly layersDir: string;
  private readonly inUse: (manifestDigest: string) => boolean;
  private readonly log: Logger;
  private readonly platform: Platform;
  private entries: Entry[];
  private readonly pulls = new SharedFlights<PullResult, PullProgress>();
  private readonly blobFetches = new SharedFlights<void, PullProgress>();
  private readonly unpacks = new SharedFlights<string>();
  private readonly downloads: Semaphore;
  /** Blobs and diff_ids an operation in flight is using: garbage collection leaves them alone. */
  private readonly leases = new Map<string, number>();
  /** index.json changes and garbage collection one at a time. */
  private indexLock: Promise<void> = Promise.resolve();

  constructor(opts: ImageStoreOptions) {
    this.rootDir = opts.rootDir;
    this.layout = new OciLayout(opts.rootDir);
    this.layersDir = join(opts.rootDir, 'layers');
    mkdirSync(this.layersDir, { recursive: true });
    for (const n of readdirSync(this.layersDir)) if (n.startsWith('tmp-')) rmSync(join(this.layersDir, n), { recursive: true, force: true });
    this.log = opts.logger ?? silentLogger();
    this.platform = opts.platform ?? hostPlatform();
    this.registry = opts.registry ?? new RegistryClient({ ...opts, logger: this.log });
    this.inUse = opts.inUse ?? (() => false);
    this.downloads = new Semaphore(opts.maxConcurrentDownloads ?? DEFAULT_MAX_CONCURRENT_DOWNLOADS);
    this.entries = this.layout.readIndex().map(entryOf);
  }

  // ---- ImageProvider ----

  /** The image with its layers unpacked, pulled first when the store does not have it. */
  async ensure(reference: string, opts: { signal?: AbortSignal } = {}): Promise<LocalImage> {
    const ref = parseReference(reference);
    const local = this.findByReference(ref);
    if (local !== null) {
      try {
        return await this.materialize(local.manifestDigest, canonicalReference(ref));
      } catch (err) {
        // Blobs gone from under us (deleted by hand): fall through to a pull.
        if (!(err instanceof RuntimeError && err.code === 'not_found')) throw err;
      }
    }
    return (await this.pull(reference, opts)).image;
  }

  /** Pulls from the registry (always asks it, as `docker pull` does); concurrent pulls of one reference share one. */
  pull(reference: string, opts: { onProgress?: (p: PullProgress) => void; signal?: AbortSignal } = {}): Promise<PullResult> {
    const ref = parseReference(reference);
    const key = canonicalReference(ref);
    return this.pulls.run(key, (signal, emit) => this.doPull(ref, signal, emit), { signal: opts.signal, onEvent: opts.onProgress });
  }

  /** Pulls running now (for tests and the daemon's status). */
  get pullsInFlight(): number {
    return this.pulls.size;
  }

  private async doPull(ref: ImageReference, signal: AbortSignal, emit: (p: PullProgress) => void): Promise<PullResult> {
    const name = familiarReference(ref);
    const fetched = await this.registry.fetchImage(ref, { signal });
    const manifest = fetched.manifest.parsed;
    const layers = manifest.layers;
    emit({ type: 'resolved', reference: name, digest: fetched.topDigest, layers: layers.map((l) => ({ digest: l.digest, sizeBytes: l.size })) });
    const leased = [fetched.manifest.digest, manifest.config.digest, ...layers.map((l) => l.digest)];
    if (fetched.index !== null) leased.push(fetched.index.digest);
    this.lease(leased);
    let diffIds: readonly string[] = [];
    try {
      const had = this.entries.some((e) => e.manifestDigest === fetched.manifest.digest);
      for (const l of layers) {
        if (l.mediaType === MEDIA.dockerForeignLayer) throw new RuntimeError('image_unavailable', `${name} has a foreign (Windows) layer ${l.digest}: it cannot run on Linux`);
      }
      await this.fetchBlob(ref, manifest.config, signal, () => undefined);
      const config = this.readConfig(manifest, fetched.manifest.digest);
      diffIds = config.rootfs.diff_ids;
      this.lease(diffIds);
      let downloaded = !had;
      // One layer failing stops this pull's other downloads (a download another pull shares goes on for it).
      const layerCtl = new AbortController();
      const stopLayers = (): void => layerCtl.abort(signal.reason);
      signal.addEventListener('abort', stopLayers, { once: true });
      await Promise.all(
        layers.map(async (l, i) => {
          const diffId = diffIds[i] as string;
          if (existsSync(this.layerDir(diffId)) && this.layout.has(l.digest)) {
            emit({ type: 'layer', digest: l.digest, status: 'exists', currentBytes: l.size, totalBytes: l.size });
            return;
          }
          downloaded = true;
          try {
            await this.fetchBlob(ref, l, layerCtl.signal, emit);
            emit({ type: 'layer', digest: l.digest, status: 'extracting', currentBytes: 0, totalBytes: l.size });
            await this.unpack(l, diffId, name);
          } catch (err) {
            layerCtl.abort(err);
            throw err;
          }
          emit({ type: 'layer', digest: l.digest, status: 'complete', currentBytes: l.size, totalBytes: l.size });
        }),
      ).finally(() => signal.removeEventListener('abort', stopLayers));
      await this.layout.writeBytes(fetched.manifest.bytes, fetched.manifest.digest);
      if (fetched.index !== null) await this.layout.writeBytes(fetched.index.bytes, fetched.index.digest);
      const entry: Entry = {
        manifestDigest: fetched.manifest.digest,
        manifestSize: fetched.manifest.bytes.byteLength,
        mediaType: fetched.manifest.mediaType,
        name: repositoryName(ref),
        tag: ref.digest === null ? ref.tag : null,
        indexDigest: fetched.index?.digest ?? null,
      };
      await this.withIndex(() => this.addEntry(entry));
      const image = await this.materialize(fetched.manifest.digest, canonicalReference(ref));
      this.log.info({ image: name, digest: fetched.topDigest, downloaded }, 'image pulled');
      return { image, digest: fetched.topDigest, downloaded };
    } finally {
      this.release(leased);
      this.release(diffIds);
    }
  }

  /** A blob into the layout, downloaded once however many pulls want it at the same time. */
  private async fetchBlob(ref: ImageReference, desc: Descriptor, signal: AbortSignal, emit: (p: PullProgress) => void): Promise<void> {
    if (this.layout.has(desc.digest)) return;
    emit({ type: 'layer', digest: desc.digest, status: 'waiting', currentBytes: 0, totalBytes: desc.size });
    await this.blobFetches.run(
      desc.digest,
      async (flightSignal, flightEmit) => {
        if (this.layout.has(desc.digest)) return;
        this.lease([desc.digest]);
        try {
          await this.downloads.use(async () => {
            const writer = await this.layout.writer({ digest: desc.digest, size: desc.size });
            let reported = 0;
            try {
              await this.registry.downloadBlob(ref, desc, writer, {
                signal: flightSignal,
                onBytes: (n) => {
                  if (n - reported < PROGRESS_STEP_BYTES && n !== desc.size) return;
                  reported = n;
                  flightEmit({ type: 'layer', digest: desc.digest, status: 'downloading', currentBytes: n, totalBytes: desc.size });
                },
              });
              flightEmit({ type: 'layer', digest: desc.digest, status: 'verifying', currentBytes: desc.size, totalBytes: desc.size });
              await writer.commit();
            } catch (err) {
              await writer.abort();
              throw err;
            }
            flightEmit({ type: 'layer', digest: desc.digest, status: 'downloaded', currentBytes: desc.size, totalBytes: desc.size });
          }, flightSignal);
        } finally {
          this.release([desc.digest]);
        }
      },
      { signal, onEvent: emit },
    );
  }

  // ---- layers ----

  private layerDir(diffId: string): string {
    return join(this.layersDir, hexOf(diffId).slice(0, LAYER_DIR_HEX));
  }

  private layerMeta(diffId: string): LayerMeta | null {
    try {
      const m = JSON.parse(readFileSync(`${this.layerDir(diffId)}.json`, 'utf8')) as LayerMeta;
      return m;
    } catch {
      return null;
    }
  }

  /** The layer's directory, unpacked from its blob once (shared by every image and caller that needs it). */
  private unpack(layer: Descriptor, diffId: string, imageName: string): Promise<string> {
    const dir = this.layerDir(diffId);
    if (existsSync(dir)) return Promise.resolve(dir);
    return this.unpacks.run(diffId, async () => {
      if (existsSync(dir)) return dir;
      if (!this.layout.has(layer.digest)) {
        throw new RuntimeError('not_found', `layer ${layer.digest} of ${imageName} is missing from the image store: pull the image again`);
      }
      this.lease([diffId, layer.digest]);
      const tmp = join(this.layersDir, `tmp-${randomBytes(6).toString('hex')}`);
      try {
        await mkdir(tmp);
        await chmod(tmp, 0o755);
        const result = await unpackLayer(this.layout.blobPath(layer.digest), tmp, { what: `layer ${layer.digest} of ${imageName}`, expectedDiffId: diffId });
        const meta: LayerMeta = { diffId, sizeBytes: result.sizeBytes };
        const existing = this.layerMeta(diffId);
        assert(existing === null || existing.diffId === diffId, `layer directory name collision for ${diffId} and ${existing?.diffId}`);
        writeFileAtomic(`${dir}.json`, JSON.stringify(meta));
        await rename(tmp, dir);
        return dir;
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw err;
      } finally {
        this.release([diffId, layer.digest]);
      }
    });
  }

  // ---- reading what the store has ----

  private readManifest(manifestDigest: string): ImageManifest {
    const parsed = parseManifest(this.layout.readSmall(manifestDigest), null, `manifest ${manifestDigest}`);
    if (parsed.kind !== 'manifest') throw new RuntimeError('image_unavailable', `${manifestDigest} in the image store is not an image manifest`);
    return parsed.manifest;
  }

  private readConfig(manifest: ImageManifest, manifestDigest: string): ImageConfigBlob {
    return parseConfigBlob(this.layout.readSmall(manifest.config.digest), manifest.layers.length, `the config of image ${manifestDigest}`);
  }

  /** Every layer unpacked (from blobs the store has), and the LocalImage a runtime needs. */
  private async materialize(manifestDigest: string, reference: string): Promise<LocalImage> {
    const manifest = this.readManifest(manifestDigest);
    const config = this.readConfig(manifest, manifestDigest);
    const diffIds = config.rootfs.diff_ids;
    this.lease(diffIds);
    try {
      const layerDirs = await Promise.all(manifest.layers.map((l, i) => this.unpack(l, diffIds[i] as string, reference)));
      return { reference, manifestDigest, layerDirs, config: imageConfigOf(config) };
    } finally {
      this.release(diffIds);
    }
  }

  private findByReference(ref: ImageReference): Resolved | null {
    if (ref.digest !== null) {
      const hit = this.entries.find((e) => e.manifestDigest === ref.digest || e.indexDigest === ref.digest);
      if (hit === undefined) return null;
      const name = repositoryName(ref);
      return { manifestDigest: hit.manifestDigest, named: this.entries.filter((e) => e.manifestDigest === hit.manifestDigest && e.name === name && e.tag === null), byTag: false };
    }
    const name = repositoryName(ref);
    const hit = this.entries.find((e) => e.name === name && e.tag === ref.tag);
    return hit === undefined ? null : { manifestDigest: hit.manifestDigest, named: [hit], byTag: true };
  }

  /** A reference, or an image id (manifest digest, with or without `sha256:`, or a unique prefix of 4+ hex digits). */
  private resolveLocal(reference: string): Resolved {
    let ref: ImageReference | null = null;
    try {
      ref = parseReference(reference);
    } catch (err) {
      if (!/^(sha256:)?[a-f0-9]{4,64}$/.test(reference)) throw err;
    }
    const found = ref !== null ? this.findByReference(ref) : null;
    if (found !== null) return found;
    const m = /^(?:sha256:)?([a-f0-9]{4,64})$/.exec(reference);
    if (m !== null) {
      const ids = [...new Set(this.entries.map((e) => e.manifestDigest))].filter((d) => hexOf(d).startsWith(m[1] as string));
      if (ids.length > 1) throw new RuntimeError('invalid_config', `image id ${reference} is ambiguous: it starts ${ids.length} images; give more digits`);
      const id = ids[0];
      if (id !== undefined) return { manifestDigest: id, named: [], byTag: false };
    }
    throw new RuntimeError('not_found', `no such image: ${reference} (swarm image ls shows what this node has; swarm image pull ${reference} fetches it)`);
  }

  has(reference: string): boolean {
    try {
      this.resolveLocal(reference);
      return true;
    } catch {
      return false;
    }
  }

  private sizeOf(manifest: ImageManifest, config: ImageConfigBlob): number {
    let total = 0;
    manifest.layers.forEach((l, i) => {
      const diffId = config.rootfs.diff_ids[i] as string;
      const meta = existsSync(this.layerDir(diffId)) ? this.layerMeta(diffId) : null;
      total += meta?.sizeBytes ?? l.size;
    });
    return total;
  }

  /** Docker's `image ls`: a row per tag, one `<none>` row for an image with no tag. Newest first, then by name. */
  list(): ImageSummary[] {
    const rows: ImageSummary[] = [];
    const byManifest = new Map<string, Entry[]>();
    for (const e of this.entries) byManifest.set(e.manifestDigest, [...(byManifest.get(e.manifestDigest) ?? []), e]);
    for (const [digest, entries] of byManifest) {
      let created = '';
      let sizeBytes = 0;
      try {
        const manifest = this.readManifest(digest);
        const config = this.readConfig(manifest, digest);
        created = typeof config.created === 'string' ? config.created : '';
        sizeBytes = this.sizeOf(manifest, config);
      } catch (err) {
        this.log.warn({ digest, err: (err as Error).message }, 'image in index.json cannot be read');
      }
      const tagged = entries.filter((e) => e.name !== null && e.tag !== null);
      const named = entries.find((e) => e.name !== null);
      const shown =
        tagged.length > 0
          ? tagged.map((e) => ({ repository: displayName(e.name as string), tag: e.tag as string }))
          : [{ repository: named?.name != null ? displayName(named.name) : '<none>', tag: '<none>' }];
      for (const s of shown) rows.push({ ...s, manifestDigest: digest, created, sizeBytes });
    }
    return rows.sort((a, b) => (a.created === b.created ? (a.repository + a.tag < b.repository + b.tag ? -1 : 1) : a.created < b.created ? 1 : -1));
  }

  inspect(reference: string): ImageInspect {
    const { manifestDigest } = this.resolveLocal(reference);
    const manifest = this.readManifest(manifestDigest);
    const config = this.readConfig(manifest, manifestDigest);
    const entries = this.entries.filter((e) => e.manifestDigest === manifestDigest);
    const repoTags = entries.filter((e) => e.name !== null && e.tag !== null).map((e) => `${displayName(e.name as string)}:${e.tag as string}`);
    const repoDigests = [...new Set(entries.filter((e) => e.name !== null).map((e) => `${displayName(e.name as string)}@${e.indexDigest ?? e.manifestDigest}`))];
    const mediaType = entries[0]?.mediaType ?? manifest.mediaType ?? MEDIA.ociManifest;
    return {
      id: manifestDigest,
      manifestDigest,
      manifestMediaType: mediaType,
      configDigest: manifest.config.digest,
      repoTags,
      repoDigests,
      created: typeof config.created === 'string' ? config.created : '',
      os: config.os,
      architecture: config.architecture,
      variant: config.variant ?? '',
      sizeBytes: this.sizeOf(manifest, config),
      config: imageConfigOf(config),
      layers: manifest.layers.map((l, i) => ({ digest: l.digest, diffId: config.rootfs.diff_ids[i] as string, mediaType: l.mediaType, sizeBytes: l.size })),
    };
  }

  // ---- names ----

  /** `docker tag`: dst (a name with a tag) now names the image src names; dst's old image keeps its other names. */
  async tag(source: string, target: string): Promise<void> {
    const { manifestDigest } = this.resolveLocal(source);
    const dst = parseReference(target);
    if (dst.digest !== null) throw new RuntimeError('invalid_config', `cannot tag with a digest reference ${target}: give name:tag`);
    const from = this.entries.find((e) => e.manifestDigest === manifestDigest);
    assert(from !== undefined, 'a resolved image has an entry');
    await this.withIndex(() =>
      this.addEntry({ manifestDigest, manifestSize: from.manifestSize, mediaType: from.mediaType, name: repositoryName(dst), tag: dst.tag, indexDigest: null }),
    );
  }

  /** Adds an entry, moving the tag (or repo digest) off any other image; an image left with no name stays, dangling. */
  private addEntry(entry: Entry): void {
    const next: Entry[] = [];
    const orphaned = new Set<string>();
    for (const e of this.entries) {
      if (e.name === entry.name && e.tag === entry.tag && (entry.tag !== null || e.manifestDigest === entry.manifestDigest)) {
        if (e.manifestDigest !== entry.manifestDigest) orphaned.add(e.manifestDigest);
        continue;
      }
      // The image now has a name: its dangling entry goes.
      if (e.manifestDigest === entry.manifestDigest && e.name === null) continue;
      next.push(e);
    }
    next.push(entry);
    for (const d of orphaned) {
      const old = this.entries.find((e) => e.manifestDigest === d);
      if (old !== undefined && !next.some((e) => e.manifestDigest === d)) next.push({ ...old, name: null, tag: null, indexDigest: null });
    }
    this.entries = next;
    this.layout.writeIndex(this.entries.map(descriptorOf));
  }

  /**
   * `docker rmi`: a tag reference untags; the image (and blobs and layer directories no other image uses) goes
   * when its last name goes. Refused while a container uses it, unless forced (then it is only untagged, and stays
   * as a dangling image until it is removed again).
   */
  async remove(reference: string, opts: { force?: boolean } = {}): Promise<RemoveResult[]> {
    return this.withIndex(async () => {
      const force = opts.force === true;
      const r = this.resolveLocal(reference);
      const all = this.entries.filter((e) => e.manifestDigest === r.manifestDigest);
      const tagged = all.filter((e) => e.tag !== null);
      let drop: Entry[];
      if (r.byTag && tagged.length > 1) {
        drop = [...r.named];
      } else {
        if (!r.byTag && tagged.length > 1 && !force) {
          throw new RuntimeError(
            'invalid_state',
            `unable to remove ${reference}: the image is referenced in ${tagged.length} repositories (${tagged.map(entryName).join(', ')}); remove them by name, or force`,
          );
        }
        drop = all;
      }
      const deleting = drop.length === all.length;
      const busy = deleting && this.inUse(r.manifestDigest);
      if (busy && !force) {
        throw new RuntimeError(
          'invalid_state',
          `unable to remove ${reference}: image ${r.manifestDigest} is used by a container on this node; remove the tasks that use it first, or force (the image is then only untagged)`,
        );
      }
      const results: RemoveResult[] = drop.filter((e) => e.name !== null).map((e) => ({ untagged: entryName(e) }));
      this.entries = this.entries.filter((e) => !drop.includes(e));
      if (busy) {
        const first = all[0] as Entry;
        this.entries.push({ ...first, name: null, tag: null, indexDigest: null });
      }
      this.layout.writeIndex(this.entries.map(descriptorOf));
      if (deleting && !busy) {
        results.push({ deleted: r.manifestDigest });
        await this.collect();
      }
      return results;
    });
  }

  /** Deletes images with no name that no container uses (Docker's `image prune`); returns their digests. */
  async prune(): Promise<string[]> {
    return this.withIndex(async () => {
      const gone = this.entries.filter((e) => e.name === null && !this.inUse(e.manifestDigest));
      this.entries = this.entries.filter((e) => !gone.includes(e));
      this.layout.writeIndex(this.entries.map(descriptorOf));
      await this.collect();
      return gone.map((e) => e.manifestDigest);
    });
  }

  /** Garbage collection, under the index lock: blobs and layer directories that no named image and no operation in flight uses. */
  private async collect(): Promise<void> {
    const blobs = new Set<string>(this.leases.keys());
    const diffIds = new Set<string>(this.leases.keys());
    for (const e of this.entries) {
      blobs.add(e.manifestDigest);
      if (e.indexDigest !== null) blobs.add(e.indexDigest);
      try {
        const m = this.readManifest(e.manifestDigest);
        blobs.add(m.config.digest);
        for (const l of m.layers) blobs.add(l.digest);
        for (const d of this.readConfig(m, e.manifestDigest).rootfs.diff_ids) diffIds.add(d);
      } catch (err) {
        // Keep what we cannot read rather than guess.
        this.log.warn({ digest: e.manifestDigest, err: (err as Error).message }, 'garbage collection: image unreadable');
      }
    }
    for (const d of this.layout.listBlobs()) if (!blobs.has(d)) this.layout.deleteBlob(d);
    const keepDirs = new Set([...diffIds].filter(isDigest).map((d) => hexOf(d).slice(0, LAYER_DIR_HEX)));
    for (const n of readdirSync(this.layersDir)) {
      const base = n.endsWith('.json') ? n.slice(0, -5) : n;
      if (n.startsWith('tmp-') || keepDirs.has(base)) continue;
      await rm(join(this.layersDir, n), { recursive: true, force: true });
    }
  }

  private lease(digests: readonly string[]): void {
    for (const d of digests) this.leases.set(d, (this.leases.get(d) ?? 0) + 1);
  }

  private release(digests: readonly string[]): void {
    for (const d of digests) {
      const n = (this.leases.get(d) ?? 0) - 1;
      assert(n >= 0, `lease of ${d} released more often than taken`);
      if (n === 0) this.leases.delete(d);
      else this.leases.set(d, n);
    }
  }

  private withIndex<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.indexLock.then(fn);
    this.indexLock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  // ---- images made here (build, load) ----

  /** Stores a blob (the builder's layers and configs); returns its digest. */
  async putBlob(bytes: Uint8Array): Promise<string> {
    const digest = sha256Digest(bytes);
    await this.layout.writeBytes(bytes, digest);
    return digest;
  }

  /**
   * Adds an image whose config and layer blobs are already in the store, under the given references (none: an
   * image with no name). Returns the manifest digest.
   */
  async addImage(manifestBytes: Uint8Array, references: readonly string[]): Promise<string> {
    const digest = sha256Digest(manifestBytes);
    const parsed = parseManifest(manifestBytes, null, `manifest ${digest}`);
    if (parsed.kind !== 'manifest') throw new RuntimeError('invalid_config', `addImage takes an image manifest, not ${parsed.mediaType}`);
    for (const d of [parsed.manifest.config, ...parsed.manifest.layers]) {
      if (!this.layout.has(d.digest)) throw new RuntimeError('invalid_config', `image ${digest} refers to blob ${d.digest}, which the store does not have`);
    }
    const refs = references.map(parseReference);
    await this.layout.writeBytes(manifestBytes, digest);
    this.parseConfigOf(parsed.manifest, digest);
    await this.withIndex(() => {
      const base = { manifestDigest: digest, manifestSize: manifestBytes.byteLength, mediaType: parsed.mediaType, indexDigest: null };
      if (refs.length === 0 && !this.entries.some((e) => e.manifestDigest === digest)) this.addEntry({ ...base, name: null, tag: null });
      for (const r of refs) this.addEntry({ ...base, name: repositoryName(r), tag: r.digest === null ? r.tag : null });
    });
    return digest;
  }

  private parseConfigOf(manifest: ImageManifest, digest: string): ImageConfigBlob {
    return this.readConfig(manifest, digest);
  }

  // ---- push ----

  /** Uploads the image's blobs the registry lacks, then its manifest under the reference's tag (or digest). */
  async push(reference: string, opts: { onProgress?: (p: PushProgress) => void; signal?: AbortSignal; chunkBytes?: number } = {}): Promise<{ digest: string; reference: string }> {
    const ref = parseReference(reference);
    const { manifestDigest } = this.resolveLocal(reference);
    const manifest = this.readManifest(manifestDigest);
    const entry = this.entries.find((e) => e.manifestDigest === manifestDigest);
    const bytes = this.layout.readSmall(manifestDigest);
    this.lease([manifestDigest]);
    try {
      for (const d of [...manifest.layers, manifest.config]) {
        opts.onProgress?.({ type: 'layer', digest: d.digest, status: 'pushing', totalBytes: d.size });
        if (!this.layout.has(d.digest)) throw new RuntimeError('not_found', `blob ${d.digest} of ${reference} is missing from the image store: pull the image again`);
        const how = await this.registry.uploadBlob(ref, d, () => createReadStream(this.layout.blobPath(d.digest)), {
          ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
          ...(opts.chunkBytes !== undefined ? { chunkBytes: opts.chunkBytes } : {}),
        });
        opts.onProgress?.({ type: 'layer', digest: d.digest, status: how === 'exists' ? 'exists' : 'pushed', totalBytes: d.size });
      }
      const mediaType = entry?.mediaType ?? manifest.mediaType ?? MEDIA.ociManifest;
      const digest = await this.registry.putManifest(ref, ref.digest ?? ref.tag ?? 'latest', bytes, mediaType, opts.signal !== undefined ? { signal: opts.signal } : {});
      assert(digest === manifestDigest, 'pushed manifest bytes are the stored ones');
      return { digest, reference: familiarReference(ref) };
    } finally {
      this.release([manifestDigest]);
    }
  }

  // ---- load / save ----

  /**
   * Loads an OCI image-layout archive (`docker save` of Docker 25+, `skopeo copy … oci-archive:`), plain or
   * gzipped. Every blob is verified against its name; names come from `io.containerd.image.name`, or a ref.name
   * that is a full reference. A multi-platform entry loads this node's platform.
   */
  async load(source: string | Readable): Promise<LoadedImage[]> {
    const what = typeof source === 'string' ? source : 'the image archive';
    const files = new Map<string, Buffer>();
    const leased: string[] = [];
    try {
      await readArchive(source, what, {
        blob: async (digest, sizeBytes, body) => {
          this.lease([digest]);
          leased.push(digest);
          if (this.layout.has(digest)) {
            for await (const _ of body) void _;
            return;
          }
          const w = await this.layout.writer({ digest, size: sizeBytes });
          try {
            for await (const chunk of body) await w.write(chunk);
            await w.commit();
          } catch (err) {
            await w.abort();
            throw err;
          }
        },
        file: (path, bytes) => files.set(path, bytes),
      });
      const indexBytes = files.get('index.json');
      if (indexBytes === undefined) {
        throw new RuntimeError(
          'invalid_config',
          `${what} has no index.json, so it is not an OCI image archive (archives of docker save before Docker 25 are not supported: save with Docker 25+ or skopeo copy … oci-archive:)`,
        );
      }
      const index = parseManifest(indexBytes, MEDIA.ociIndex, `index.json of ${what}`);
      if (index.kind !== 'index') throw new RuntimeError('invalid_config', `index.json of ${what} is not an OCI image index`);
      const loaded: LoadedImage[] = [];
      for (const d of index.index.manifests) {
        let desc: Descriptor = d;
        let indexDigest: string | null = null;
        if (isIndexType(d.mediaType)) {
          const inner = parseManifest(this.layout.readSmall(d.digest), d.mediaType, `${d.digest} in ${what}`);
          if (inner.kind !== 'index') throw new RuntimeError('invalid_config', `${d.digest} in ${what} is not an index`);
          desc = selectPlatform(inner.index, this.platform, `${annotatedName(d) ?? d.digest} in ${what}`);
          indexDigest = d.digest;
        }
        const name = annotatedName(d);
        const manifestBytes = this.layout.readSmall(desc.digest);
        const digest = await this.addImage(manifestBytes, name !== null ? [name] : []);
        if (indexDigest !== null && name !== null) {
          const ref = parseReference(name);
          await this.withIndex(() => {
            this.entries = this.entries.map((e) => (e.manifestDigest === digest && e.name === repositoryName(ref) ? { ...e, indexDigest } : e));
            this.layout.writeIndex(this.entries.map(descriptorOf));
          });
        }
        loaded.push({ manifestDigest: digest, references: name !== null ? [familiarReference(parseReference(name))] : [] });
      }
      return loaded;
    } finally {
      this.release(leased);
      await this.withIndex(() => this.collect());
    }
  }

  /** The index.json entries and blobs that `save` writes for the references. */
  private exportSet(references: readonly string[]): { descriptors: Descriptor[]; blobs: string[] } {
    const descriptors: Descriptor[] = [];
    const blobs = new Set<string>();
    for (const reference of references) {
      const r = this.resolveLocal(reference);
      const manifest = this.readManifest(r.manifestDigest);
      const entry = this.entries.find((e) => e.manifestDigest === r.manifestDigest);
      assert(entry !== undefined, 'a resolved image has an entry');
      for (const d of [r.manifestDigest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) blobs.add(d);
      const named = r.byTag ? r.named[0] : (r.named[0] ?? this.entries.find((e) => e.manifestDigest === r.manifestDigest && e.name !== null));
      const annotations: Record<string, string> = {};
      if (named?.name != null) {
        annotations[CONTAINERD_NAME_ANNOTATION] = named.tag !== null ? `${named.name}:${named.tag}` : `${named.name}@${r.manifestDigest}`;
        if (named.tag !== null) annotations[REF_NAME_ANNOTATION] = named.tag;
      }
      descriptors.push({ mediaType: entry.mediaType, digest: r.manifestDigest, size: entry.manifestSize, ...(Object.keys(annotations).length > 0 ? { annotations } : {}) });
    }
    return { descriptors, blobs: [...blobs].sort() };
  }

  /** `docker save`: an OCI image-layout archive (tar) of the images, written to `path` atomically. */
  async save(references: readonly string[], path: string): Promise<void> {
    const { descriptors, blobs } = this.exportSet(references);
    this.lease(blobs);
    try {
      const entries: ArchiveEntry[] = [
        { path: 'oci-layout', bytes: Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })) },
        { path: 'index.json', bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: descriptors })) },
        { path: 'blobs/', dir: true },
        { path: 'blobs/sha256/', dir: true },
        ...blobs.map((d) => ({ path: `blobs/sha256/${hexOf(d)}`, sizeBytes: statSync(this.layout.blobPath(d)).size, file: this.layout.blobPath(d) })),
      ];
      await writeArchive(path, entries);
    } finally {
      this.release(blobs);
    }
  }

  /** The same as save, as an OCI image-layout directory (created, or added to when it is one already). */
  async saveLayout(references: readonly string[], dir: string): Promise<void> {
    const { descriptors, blobs } = this.exportSet(references);
    const out = new OciLayout(dir);
    for (const d of blobs) {
      if (out.has(d)) continue;
      const w = await out.writer({ digest: d, size: null });
      try {
        for await (const chunk of createReadStream(this.layout.blobPath(d))) await w.write(chunk as Buffer);
        await w.commit();
      } catch (err) {
        await w.abort();
        throw err;
      }
    }
    const names = new Set(descriptors.map((d) => d.annotations?.[CONTAINERD_NAME_ANNOTATION]).filter((n): n is string => n !== undefined));
    const kept = out.readIndex().filter((d) => !names.has(d.annotations?.[CONTAINERD_NAME_ANNOTATION] ?? ''));
    out.writeIndex([...kept, ...descriptors]);
    rmSync(out.tmpDir, { recursive: true, force: true });
  }
}

function entryOf(d: Descriptor): Entry {
  const a = d.annotations ?? {};
  const name = a[NAME_ANNOTATION] ?? null;
  const refName = a[REF_NAME_ANNOTATION];
  let tag: string | null = null;
  if (name !== null && refName !== undefined && refName.startsWith(`${name}:`)) tag = refName.slice(name.length + 1);
  return { manifestDigest: d.digest, manifestSize: d.size, mediaType: d.mediaType, name, tag, indexDigest: a[INDEX_DIGEST_ANNOTATION] ?? null };
}

function descriptorOf(e: Entry): Descriptor {
  const annotations: Record<string, string> = {};
  if (e.name !== null) annotations[NAME_ANNOTATION] = e.name;
  if (e.name !== null && e.tag !== null) annotations[REF_NAME_ANNOTATION] = `${e.name}:${e.tag}`;
  if (e.indexDigest !== null) annotations[INDEX_DIGEST_ANNOTATION] = e.indexDigest;
  return { mediaType: e.mediaType, digest: e.manifestDigest, size: e.manifestSize, annotations };
}

/** `docker.io/library/busybox` -> `busybox`. */
function displayName(name: string): string {
  const slash = name.indexOf('/');
  return familiarName({ registry: name.slice(0, slash), repository: name.slice(slash + 1) });
}

function entryName(e: Entry): string {
  return e.tag !== null ? `${displayName(e.name ?? '<none>')}:${e.tag}` : `${displayName(e.name ?? '<none>')}@${e.indexDigest ?? e.manifestDigest}`;
}

/** The full name an archive gives an image entry, or null. */
function annotatedName(d: Descriptor): string | null {
  const a = d.annotations ?? {};
  const full = a[CONTAINERD_NAME_ANNOTATION];
  if (full !== undefined) return full;
  const ref = a[REF_NAME_ANNOTATION];
  // A bare tag (skopeo's `latest`) names no repository: such an image loads without a name.
  if (ref !== undefined && (ref.includes('/') || ref.includes(':'))) return ref;
  return null;
}
