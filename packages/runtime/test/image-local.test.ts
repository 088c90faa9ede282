// The store without a registry: the lab images built from Debian's busybox (and run under chroot on an overlay of
// their layers), save/load of OCI archives, tag, remove with garbage collection that keeps shared layers, the
// in-use refusal, prune, and layers that try to escape their directory.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RuntimeError } from '../src/runtime.js';
import { buildImage, buildLayer } from '../src/image/build.js';
import { buildLabImages, makeImages } from '../src/image/make-images.js';
import { ImageStore } from '../src/image/store.js';
import { imageTest, tmp } from './image-helpers.js';
import tar from 'tar-stream';
import { gzipSync } from 'node:zlib';

const itest = imageTest();

function newStore(t: { teardown: (fn: () => void) => void }, inUse?: (d: string) => boolean): ImageStore {
  const dir = tmp('images');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return new ImageStore({ rootDir: dir, ...(inUse !== undefined ? { inUse } : {}) });
}

function files(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

itest('make-images writes an OCI layout and archive; the busybox images run under chroot on an overlay of their layers', async (t) => {
  const out = tmp('make-images');
  const mnt = tmp('lab-root');
  let mounted = false;
  t.teardown(() => {
    if (mounted) execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  });
  await makeImages(out);
  const index = JSON.parse(readFileSync(join(out, 'oci/index.json'), 'utf8')) as { manifests: { annotations: Record<string, string> }[] };
  t.deepEqual(
    index.manifests.map((m) => m.annotations['io.containerd.image.name']),
    ['docker.io/library/busybox:latest', 'docker.io/swarm/httpd:latest', 'docker.io/swarm/crasher:latest'],
  );
  t.is(JSON.parse(readFileSync(join(out, 'oci/oci-layout'), 'utf8')).imageLayoutVersion, '1.0.0');

  const store = newStore(t);
  const loaded = await store.load(join(out, 'images.tar'));
  t.deepEqual(loaded.map((l) => l.references[0]), ['busybox:latest', 'swarm/httpd:latest', 'swarm/crasher:latest']);
  const busybox = await store.ensure('busybox');
  const httpd = await store.ensure('swarm/httpd:latest');
  const crasher = await store.ensure('swarm/crasher');
  t.is(httpd.layerDirs[0], busybox.layerDirs[0], 'one shared busybox layer');
  t.is(crasher.layerDirs[0], busybox.layerDirs[0]);
  t.is(busybox.layerDirs.length, 1);
  t.deepEqual(busybox.config.cmd, ['sh']);
  t.deepEqual(httpd.config.entrypoint, ['httpd', '-f', '-v', '-p', '80', '-h', '/www']);
  t.deepEqual(httpd.config.exposedPorts, ['80/tcp']);
  t.deepEqual(crasher.config.entrypoint.slice(0, 2), ['sh', '-c']);
  const base = busybox.layerDirs[0] as string;
  t.is(readlinkOrNull(join(base, 'bin/sh')), 'busybox');
  t.is(statSync(join(base, 'tmp')).mode & 0o7777, 0o1777);
  t.regex(readFileSync(join(base, 'etc/passwd'), 'utf8'), /^root:x:0:0:.*\nnobody:x:65534:65534:/);

  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${[...httpd.layerDirs].reverse().join(':')}`, mnt]);
  mounted = true;
  t.is(execFileSync('chroot', [mnt, '/bin/sh', '-c', 'echo $((40 + 2)); ls /www/cgi-bin'], { encoding: 'utf8' }), '42\napi\nhost\nkv\nweb\n');
  const cgi = execFileSync('chroot', [mnt, '/www/cgi-bin/host'], { encoding: 'utf8' });
  t.regex(cgi, /^Content-Type: text\/plain\n\n.+\n$/);
  const crash = spawnSync('/usr/sbin/chroot', [mnt, ...crasher.config.entrypoint], { env: { PATH: '/bin', CRASH_AFTER: '0', EXIT_CODE: '3' }, encoding: 'utf8' });
  t.is(crash.status, 3);
  t.is(crash.stdout, 'starting\n');
  t.is(crash.stderr, 'crashing\n');
});

function readlinkOrNull(p: string): string | null {
  try {
    return execFileSync('readlink', [p], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

itest('save then load into another store gives the same images, and saving again the same bytes', async (t) => {
  const a = newStore(t);
  await buildLabImages(a);
  const out = tmp('archive');
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  await a.save(['busybox', 'swarm/httpd:latest'], join(out, 'a.tar'));
  const b = newStore(t);
  const loaded = await b.load(join(out, 'a.tar'));
  t.deepEqual(loaded.map((l) => l.references), [['busybox:latest'], ['swarm/httpd:latest']]);
  for (const ref of ['busybox', 'swarm/httpd']) {
    const ia = a.inspect(ref);
    const ib = b.inspect(ref);
    t.deepEqual(ib, ia);
  }
  t.false(b.has('swarm/crasher'));
  await b.save(['busybox', 'swarm/httpd:latest'], join(out, 'b.tar'));
  t.deepEqual(readFileSync(join(out, 'b.tar')), readFileSync(join(out, 'a.tar')));
  // A gzipped archive (`docker save | gzip`) loads too, from a stream.
  const gz = gzipSync(readFileSync(join(out, 'a.tar')));
  const c = newStore(t);
  const { Readable } = await import('node:stream');
  t.is((await c.load(Readable.from([gz]))).length, 2);
  t.is((await c.ensure('swarm/httpd')).layerDirs.length, 2);
  // Not an archive: a clear error.
  const err = await t.throwsAsync(c.load(Readable.from([Buffer.from('not a tar at all')])), { instanceOf: RuntimeError });
  t.regex(err?.message ?? '', /index\.json|not a readable image archive/);
});

itest('remove untags, deletes blobs and layer dirs no image uses, keeps the shared ones; in-use images are refused', async (t) => {
  let used = new Set<string>();
  const store = newStore(t, (d) => used.has(d));
  await buildLabImages(store);
  const busybox = await store.ensure('busybox');
  const httpd = await store.ensure('swarm/httpd');
  await store.ensure('swarm/crasher');
  const layers = join(store.rootDir, 'layers');
  const blobs = join(store.rootDir, 'blobs/sha256');
  const httpdOwn = httpd.layerDirs[1] as string;
  const httpdBlobs = [httpd.manifestDigest, store.inspect('swarm/httpd').configDigest, store.inspect('swarm/httpd').layers[1]?.digest ?? ''];

  // A second tag: removing one name only untags.
  await store.tag('swarm/httpd', '127.0.0.1:5000/web:v1');
  t.deepEqual([...store.inspect('swarm/httpd').repoTags].sort(), ['127.0.0.1:5000/web:v1', 'swarm/httpd:latest']);
  t.deepEqual(await store.remove('127.0.0.1:5000/web:v1'), [{ untagged: '127.0.0.1:5000/web:v1' }]);
  t.true(existsSync(httpdOwn));

  // By digest while two names point at it: refused unless forced.
  await store.tag('swarm/httpd', 'web:v2');
  const multi = await t.throwsAsync(store.remove(httpd.manifestDigest), { instanceOf: RuntimeError });
  t.regex(multi?.message ?? '', /referenced in 2 repositories/);
  await store.remove('web:v2');

  // In use: refused; the message says what to do.
  used = new Set([httpd.manifestDigest]);
  const busy = await t.throwsAsync(store.remove('swarm/httpd'), { instanceOf: RuntimeError });
  t.is(busy?.code, 'invalid_state');
  t.regex(busy?.message ?? '', /used by a container.*force/);
  // Forced while in use: untagged, kept as a dangling image with its files.
  t.deepEqual(await store.remove('swarm/httpd', { force: true }), [{ untagged: 'swarm/httpd:latest' }]);
  t.true(existsSync(httpdOwn));
  t.true(store.list().some((r) => r.repository === '<none>' && r.manifestDigest === httpd.manifestDigest));
  t.deepEqual(await store.prune(), [], 'prune leaves an image a container uses');

  // No longer used: removing by id (a digest prefix) deletes it and what only it used.
  used = new Set();
  const removed = await store.remove(httpd.manifestDigest.slice(7, 19));
  t.deepEqual(removed, [{ deleted: httpd.manifestDigest }]);
  t.false(existsSync(httpdOwn), "httpd's own layer dir is gone");
  t.false(existsSync(`${httpdOwn}.json`));
  for (const d of httpdBlobs) t.false(existsSync(join(blobs, d.slice(7))), `blob ${d} deleted`);
  t.true(existsSync(busybox.layerDirs[0] as string), 'the shared busybox layer stays');
  t.deepEqual((await store.ensure('busybox')).layerDirs, busybox.layerDirs);
  t.deepEqual(store.list().map((r) => `${r.repository}:${r.tag}`).sort(), ['busybox:latest', 'swarm/crasher:latest']);

  await store.remove('swarm/crasher');
  await store.remove('busybox:latest');
  t.deepEqual(files(layers), []);
  t.deepEqual(files(blobs), []);
  const gone = await t.throwsAsync(store.remove('busybox'), { instanceOf: RuntimeError });
  t.is(gone?.code, 'not_found');
  t.regex(gone?.message ?? '', /no such image: busybox/);
});

itest('a new store over the same directory sees the images and their unpacked layers', async (t) => {
  const store = newStore(t);
  await buildLabImages(store);
  const img = await store.ensure('swarm/httpd');
  const again = new ImageStore({ rootDir: store.rootDir });
  t.deepEqual(again.list(), store.list());
  t.deepEqual(await again.ensure('swarm/httpd'), img);
});

async function tarOf(entries: { name: string; type?: 'file' | 'symlink' | 'link' | 'directory'; linkname?: string; body?: string }[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      const h = { name: e.name, type: e.type ?? 'file', mode: 0o644, ...(e.linkname !== undefined ? { linkname: e.linkname } : {}) };
      if ((e.type ?? 'file') === 'file') pack.entry(h, e.body ?? 'x', cb);
      else pack.entry(h, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

for (const [title, entries, why] of [
  ['a .. path', [{ name: '../../escaped' }], /points outside the layer directory/],
  ['a file through a symlink the layer made', [{ name: 'etc', type: 'symlink', linkname: '/etc' }, { name: 'etc/swarm-escape-test' }], /goes through the symlink etc/],
  ['a hardlink to a file outside', [{ name: 'h', type: 'link', linkname: '../../../etc/passwd' }], /hardlink h points outside/],
] as const) {
  itest(`a layer with ${title} is refused and leaves nothing`, async (t) => {
    const store = newStore(t);
    const raw = await tarOf([...entries]);
    const layer = { bytes: raw, digest: '', diffId: '', mediaType: 'application/vnd.oci.image.layer.v1.tar' };
    const { sha256Digest } = await import('../src/image/oci.js');
    const d = sha256Digest(raw);
    await buildImage(store, { layers: [{ ...layer, digest: d, diffId: d }] }, ['evil:1']);
    const err = await t.throwsAsync(store.ensure('evil:1'), { instanceOf: RuntimeError });
    t.is(err?.code, 'image_unavailable');
    t.regex(err?.message ?? '', why);
    t.deepEqual(files(join(store.rootDir, 'layers')), []);
    t.false(existsSync('/etc/swarm-escape-test'));
    t.false(existsSync(join(store.rootDir, '..', 'escaped')));
  });
}

itest('a layer whose content does not match the config diff_id is refused', async (t) => {
  const store = newStore(t);
  const real = await buildLayer([{ type: 'file', path: 'f', content: 'real' }]);
  const other = await buildLayer([{ type: 'file', path: 'f', content: 'other' }]);
  await buildImage(store, { layers: [{ ...real, diffId: other.diffId }] }, ['lie:1']);
  const err = await t.throwsAsync(store.ensure('lie:1'), { instanceOf: RuntimeError });
  t.regex(err?.message ?? '', /does not match its config/);
  t.deepEqual(files(join(store.rootDir, 'layers')), []);
});
