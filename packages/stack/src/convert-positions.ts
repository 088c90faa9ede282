// Where a key path of the merged model was written, so the converter's and deploy's errors (which know the key
// path, not the text) can point at file:line:column as the loader's do. Later files win, as in the merge.

import type { SourcePosition } from './errors.js';
import { parseComposeYaml, type KeyPath, type PositionIndex } from './load-yaml.js';
import type { StackSource } from './load.js';

/** `services.web.ports[0].published` -> ['services', 'web', 'ports', 0, 'published']. */
export function parseKeyPath(path: string): KeyPath {
  const out: Array<string | number> = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : (m[1] ?? ''));
  return out;
}

/**
 * A lookup over the compose files' texts (in merge order): the position of the path in the last file that writes it,
 * else of its nearest enclosing key there. Texts that do not parse are skipped (the loader has reported them).
 */
export function sourceLocator(sources: readonly StackSource[]): (path: string) => SourcePosition | null {
  const indexes: PositionIndex[] = [];
  for (const s of sources) {
    try {
      indexes.push(parseComposeYaml(s.name, s.text).positions);
    } catch {
      // not this lookup's business
    }
  }
  return positionLocator(indexes);
}

/** The same lookup over position indexes the loader already made (one per file, in merge order). */
export function positionLocator(indexes: readonly PositionIndex[]): (path: string) => SourcePosition | null {
  return (path) => {
    const keyPath = parseKeyPath(path);
    for (let n = keyPath.length; n > 0; n--) {
      const prefix = keyPath.slice(0, n);
      for (let i = indexes.length - 1; i >= 0; i--) {
        const index = indexes[i];
        // Where the key is written: the line a user looks for, whether its value is a scalar or a block.
        if (index?.has(prefix) === true) return index.key(prefix);
      }
    }
    return null;
  };
}
