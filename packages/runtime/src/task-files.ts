// A task's secrets and configs on a tmpfs of its own (mode 0700, nosuid, nodev, noexec), so their bytes never
// reach the node's disk; unmounted and removed with the task. The files' contents are never logged.

import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { assert, RuntimeError, type FileMountConfig } from './runtime.js';

const PAGE_BYTES = 4096;
/** Room beyond the files' pages: directories and inodes. */
const SLACK_PAGES = 16;
const TOOL_TIMEOUT_MS = 10_000;

/** True when `path` is a mountpoint now (mountinfo's fifth field; octal escapes undone). */
export function isMountPoint(path: string): boolean {
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => unescape(l.split(' ')[4] ?? '') === path);
}

function tool(file: string, args: readonly string[]): { ok: boolean; stderr: string } {
  try {
    execFileSync(file, [...args], { timeout: TOOL_TIMEOUT_MS, stdio: ['ignore', 'ignore', 'pipe'] });
    return { ok: true, stderr: '' };
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString('utf8').trim() ?? '';
    return { ok: false, stderr: stderr === '' ? (err as Error).message : stderr };
  }
}

/** The tmpfs size that holds the files (whole pages each) and their directories. */
export function taskFilesSizeBytes(files: readonly FileMountConfig[]): number {
  const pages = files.reduce((n, f) => n + Math.max(1, Math.ceil(f.data.length / PAGE_BYTES)), 0);
  return (pages + SLACK_PAGES) * PAGE_BYTES;
}

/**
 * Mounts a tmpfs at `dir` and writes each file at `layout(file, i)` inside it with its owner and mode; answers the
 * host paths in the files' order. `owner` owns the tmpfs root (default root). Throws RuntimeError('start_failed')
 * when the tmpfs cannot be mounted (the daemon is not root), leaving nothing behind.
 */
export function mountTaskFiles(
  dir: string,
  files: readonly FileMountConfig[],
  layout: (file: FileMountConfig, index: number) => string,
  owner: { uid: number; gid: number } = { uid: 0, gid: 0 },
): string[] {
  assert(files.length > 0, 'a files tmpfs holds at least one file');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!isMountPoint(dir)) {
    const mount = tool('/bin/mount', ['-t', 'tmpfs', '-o', `size=${taskFilesSizeBytes(files)},mode=0700,uid=${owner.uid},gid=${owner.gid},nosuid,nodev,noexec`, 'tmpfs', dir]);
    if (!mount.ok) {
      rmSync(dir, { recursive: true, force: true });
      throw new RuntimeError('start_failed', `could not mount a tmpfs for the task's secrets and configs at ${dir}: ${mount.stderr}`);
    }
  }
  try {
    return files.map((f, i) => {
      if (!Number.isInteger(f.uid) || !Number.isInteger(f.gid) || f.uid < 0 || f.gid < 0) {
        throw new RuntimeError('invalid_config', `${f.kind} ${f.name}: invalid file owner ${f.uid}:${f.gid}`);
      }
      const path = join(dir, layout(f, i));
      assert(path.startsWith(`${dir}/`), `file path ${path} is inside ${dir}`);
      mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
      writeFileSync(path, f.data, { mode: 0o600 });
      chownSync(path, f.uid, f.gid);
      chmodSync(path, f.mode);
      return path;
    });
  } catch (err) {
    unmountTaskFiles(dir);
    throw err;
  }
}

/** Unmounts the tmpfs at `dir` (lazily if busy) and removes the directory; no-op when there is none. */
export function unmountTaskFiles(dir: string): void {
  if (!existsSync(dir)) return;
  if (isMountPoint(dir) && !tool('/bin/umount', [dir]).ok) {
    const lazy = tool('/bin/umount', ['-l', dir]);
    if (!lazy.ok) throw new RuntimeError('invalid_state', `could not unmount the secrets tmpfs at ${dir}: ${lazy.stderr}`);
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Every task's files tmpfs under `parent` (what an earlier run of the daemon left). */
export function unmountAllTaskFiles(parent: string): void {
  if (!existsSync(parent)) return;
  for (const name of readdirSync(parent)) unmountTaskFiles(join(parent, name));
}
