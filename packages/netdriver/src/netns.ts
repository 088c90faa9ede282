// Network namespaces as files in a directory this node owns (not /run/netns, which every lab host shares):
// `unshare --net=FILE` keeps a new namespace alive by a bind mount on FILE; `umount FILE` lets it go.
// Commands run inside one with `nsenter --net=FILE`; `ip` takes FILE where it names a target namespace.

import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@swarm/wire';
import { runTool, systemTool, type ToolOptions, type ToolResult } from './tool.js';

/** Where commands run: null is the daemon's own (host) namespace, else a namespace file. */
export type Netns = string | null;

export class NetnsDir {
  constructor(
    readonly dir: string,
    private readonly log: Logger,
  ) {}

  path(name: string): string {
    return join(this.dir, name);
  }

  async create(name: string): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const path = this.path(name);
    await writeFile(path, '', { flag: 'w' });
    await runTool(this.log, 'unshare', [`--net=${path}`, 'true']);
    return path;
  }

  /** Lets the namespace go (it dies once no process or device holds it) and removes its file; absent is fine. */
  async remove(name: string): Promise<void> {
    const path = this.path(name);
    await runTool(this.log, 'umount', [path], { allowFailure: true });
    await rm(path, { force: true });
  }

  async list(): Promise<string[]> {
    try {
      return await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }
}

/** `TOOL -batch -` in a namespace: one process for many commands. With force, a failing line does not stop the rest. */
async function batch(log: Logger, tool: 'ip' | 'bridge', netns: Netns, lines: readonly string[], opts: { force?: boolean }): Promise<ToolResult | null> {
  if (lines.length === 0) return null;
  const args = [...(opts.force === true ? ['-force'] : []), '-batch', '-'];
  return await inNetns(log, netns, tool, args, { input: lines.join('\n') + '\n', ...(opts.force === true ? { allowFailure: true } : {}) });
}

/** `ip -batch -` in a namespace (links, addresses, routes, neighbours). */
export function ipBatch(log: Logger, netns: Netns, lines: readonly string[], opts: { force?: boolean } = {}): Promise<ToolResult | null> {
  return batch(log, 'ip', netns, lines, opts);
}

/** `bridge -batch -` in a namespace (FDB entries). */
export function bridgeBatch(log: Logger, netns: Netns, lines: readonly string[], opts: { force?: boolean } = {}): Promise<ToolResult | null> {
  return batch(log, 'bridge', netns, lines, opts);
}

/**
 * Any tool inside a namespace (sysctl, nft, ip -j …), by its absolute path: under npx, PATH starts with
 * node_modules/.bin, where a JavaScript package ships a binary named `nft`.
 */
export async function inNetns(log: Logger, netns: Netns, name: string, args: readonly string[], opts: ToolOptions = {}): Promise<ToolResult> {
  return netns === null ? await runTool(log, name, args, opts) : await runTool(log, 'nsenter', [`--net=${netns}`, name.startsWith('/') ? name : systemTool(name), ...args], opts);
}

/**
 * Lets go of every namespace file under a node's network state directory and removes the directory: for a node's
 * data dir being deleted (the lab's `down`), when no daemon runs there any more. The devices inside go with them.
 */
export async function destroyNetState(dir: string, log: Logger): Promise<void> {
  const ns = new NetnsDir(dir, log);
  for (const f of await ns.list()) {
    if (f.endsWith('.json')) await rm(ns.path(f), { force: true });
    else await ns.remove(f);
  }
  await rm(dir, { recursive: true, force: true });
}
