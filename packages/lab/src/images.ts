// The lab's images: built here from Debian's busybox-static (busybox, swarm/httpd, swarm/crasher; see
// @swarm/runtime's make-images) and pushed to the lab registry under Docker Hub's names (library/busybox,
// swarm/httpd, ...), so daemons that use the registry as their Docker Hub mirror run `busybox` by its short name.

import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildLabImages, familiarName, ImageStore, parseReference } from '@swarm/runtime';

/** Builds the lab images in a scratch store under `scratchParent` and pushes them to `registryAddr`; answers their names. */
export async function seedLabImages(registryAddr: string, scratchParent: string): Promise<string[]> {
  const scratch = mkdtempSync(join(scratchParent, '.images-'));
  try {
    const store = new ImageStore({ rootDir: scratch, insecureRegistries: [registryAddr] });
    const refs = await buildLabImages(store);
    for (const ref of refs) {
      const r = parseReference(ref);
      // docker.io/library/busybox:latest -> ADDR/library/busybox:latest: the path a mirror serves Docker Hub's under.
      const target = `${registryAddr}/${r.repository}:${r.tag ?? 'latest'}`;
      await store.tag(ref, target);
      await store.push(target);
    }
    return refs.map((ref) => familiarName(parseReference(ref)));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
