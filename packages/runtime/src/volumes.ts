// Node-local named volumes (Docker's `local` driver): a directory per volume under the node's data dir that
// outlives the tasks using it, so the next task of a service on this node finds the data the last one left.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RuntimeError, type VolumeProvider } from './runtime.js';

/** Docker's volume name rule. */
export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;

export interface Volume {
  readonly name: string;
  readonly driver: 'local';
  /** The host directory a container mounts. */
  readonly mountpoint: string;
  readonly createdAtMs: number;
  readonly labels: Readonly<Record<string, string>>;
}

interface VolumeMeta {
  createdAtMs: number;
  labels: Record<string, string>;
}

export interface LocalVolumesOptions {
  /** Holds <name>/_data (the volume) and <name>/meta.json, as Docker lays them out. */
  rootDir: string;
  /** Whether a container holds the volume now (`volume rm` refuses then unless forced). */
  inUse?: (name: string) => boolean;
  nowMs?: () => number;
}

export class LocalVolumes implements VolumeProvider {
  private readonly rootDir: string;
  private readonly inUse: (name: string) => boolean;
  private readonly nowMs: () => number;

  constructor(opts: LocalVolumesOptions) {
    this.rootDir = opts.rootDir;
    this.inUse = opts.inUse ?? (() => false);
    this.nowMs = opts.nowMs ?? Date.now;
    mkdirSync(this.rootDir, { recursive: true, mode: 0o700 });
  }

  /** A task's mount: the volume, created on first use as Docker does. */
  async ensure(name: string, labels: Readonly<Record<string, string>> = {}): Promise<string> {
    return this.create(name, labels).mountpoint;
  }

  /** `volume create`: idempotent for an existing name (Docker answers the existing volume; labels are kept). */
  create(name: string, labels: Readonly<Record<string, string>> = {}): Volume {
    checkName(name);
    const dir = join(this.rootDir, name);
    const existing = this.read(name);
    if (existing !== null) return existing;
    mkdirSync(join(dir, '_data'), { recursive: true, mode: 0o755 });
    const meta: VolumeMeta = { createdAtMs: this.nowMs(), labels: { ...labels } };
    const tmp = join(dir, `meta.json.${process.pid}.tmp`);
    writeFileSync(tmp, JSON.stringify(meta));
    renameSync(tmp, join(dir, 'meta.json'));
    return this.volume(name, meta);
  }

  inspect(name: string): Volume {
    checkName(name);
    const v = this.read(name);
    if (v === null) throw new RuntimeError('not_found', `no such volume: ${name}`);
    return v;
  }

  list(): Volume[] {
    const out: Volume[] = [];
    for (const name of readdirSync(this.rootDir).sort()) {
      if (!VOLUME_NAME.test(name)) continue;
      const v = this.read(name);
      if (v !== null) out.push(v);
    }
    return out;
  }

  /** `volume rm`: refused while a container uses it, unless force (Docker's -f removes only unused ones too). */
  remove(name: string): void {
    checkName(name);
    if (this.read(name) === null) throw new RuntimeError('not_found', `no such volume: ${name}`);
    if (this.inUse(name)) throw new RuntimeError('invalid_state', `volume ${name} is in use by a running task: remove the service (or its tasks) first`);
    rmSync(join(this.rootDir, name), { recursive: true, force: true });
  }

  private read(name: string): Volume | null {
    const dir = join(this.rootDir, name);
    if (!existsSync(join(dir, '_data'))) return null;
    let meta: VolumeMeta;
    try {
      meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as VolumeMeta;
    } catch {
      // A volume whose metadata was lost (crash between mkdir and rename) is still a volume: its data matters.
      meta = { createdAtMs: statSync(join(dir, '_data')).mtimeMs, labels: {} };
    }
    return this.volume(name, meta);
  }

  private volume(name: string, meta: VolumeMeta): Volume {
    return { name, driver: 'local', mountpoint: join(this.rootDir, name, '_data'), createdAtMs: meta.createdAtMs, labels: meta.labels };
  }
}

function checkName(name: string): void {
  if (!VOLUME_NAME.test(name)) {
    throw new RuntimeError('invalid_config', `invalid volume name ${JSON.stringify(name)}: letters, digits, '_', '.' and '-', starting with a letter or digit`);
  }
}
