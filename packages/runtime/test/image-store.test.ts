// The image store against a real registry (Debian's docker-registry, one per file): build, push, pull into an
// empty store and unpack with owners/modes/links/devices; whiteouts under a real overlayfs mount; a multi-platform
// index; resolve; a corrupt blob refused; a download cut half way resumed; single-flight pulls; mirrors.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RuntimeError } from '../src/runtime.js';
import { buildImage, buildLayer, imageDocuments } from '../src/image/build.js';
import { MEDIA, hostPlatform, type Platform } from '../src/image/oci.js';
import { parseReference } from '../src/image/reference.js';
import { ImageStore, type PullProgress, type PushProgress } from '../src/image/store.js';
import { freePort, imageTest, missing, startProxy, startRegistry, tmp, type TestProxy, type TestRegistry } from './image-helpers.js';

const why = missing();
const itest = imageTest();
let reg: TestRegistry | null = null;
let proxy: TestProxy | null = null;

test.before(async () => {
  if (why !== null) return;
  reg = await startRegistry();
  proxy = await startProxy(reg.addr);
});

test.after.always(async () => {
  await proxy?.close();
  await reg?.stop();
});

function registry(): TestRegistry {
  if (reg === null) throw new Error('registry not started');
  return reg;
}

function counting(): TestProxy {
  if (proxy === null) throw new Error('proxy not started');
  return proxy;
}

function newStore(t: { teardown: (fn: () => void) => void }, opts: Partial<ConstructorParameters<typeof ImageStore>[0]> = {}): ImageStore {
  const dir = tmp('images');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return new ImageStore({ rootDir: dir, retryDelayMs: 20, ...opts });
}

/** A layer whose content no other test has, so registry and store state from other tests cannot help it. */
async function uniqueLayer(sizeBytes = 64) {
  return buildLayer([{ type: 'file', path: `data/${randomBytes(4).toString('hex')}`, content: randomBytes(sizeBytes) }]);
}

itest('build, push, pull into an empty store: layers unpacked with owners, modes, symlinks, hardlinks and devices', async (t) => {
  const name = `${registry().addr}/test/tree:v1`;
  const layer = await buildLayer([
    { type: 'dir', path: 'app', mode: 0o750, uid: 1000, gid: 1001 },
    { type: 'file', path: 'app/run', content: '#!/bin/sh\necho hi\n', mode: 0o4755, uid: 1000, gid: 1001 },
    { type: 'symlink', path: 'app/link', target: 'run' },
    { type: 'symlink', path: 'abs', target: '/etc/shadow' },
    { type: 'hardlink', path: 'app/hard', target: 'app/run' },
    { type: 'dir', path: 'scratch', mode: 0o1777 },
    { type: 'device', path: 'dev/null', kind: 'char', major: 1, minor: 3, mode: 0o666 },
    { type: 'file', path: 'owned', content: 'x', uid: 65534, gid: 65534, mode: 0o600 },
  ]);
  const second = await uniqueLayer();
  const src = newStore(t);
  const built = await buildImage(src, { layers: [layer, second], config: { cmd: ['sh'], env: ['A=1'], workingDir: '/app', exposedPorts: ['80/tcp'] } }, [name]);
  const pushEvents: PushProgress[] = [];
  const pushed = await src.push(name, { onProgress: (p) => pushEvents.push(p) });
  t.is(pushed.digest, built);
  t.true(pushEvents.some((e) => e.status === 'pushed'));
  t.is(await src.registry.resolve(name), pushed.digest, 'resolve gives the digest push reported');

  // Pushing again uploads nothing: every blob exists (HEAD).
  const again: PushProgress[] = [];
  await src.push(name, { onProgress: (p) => again.push(p) });
  t.deepEqual(
    again.filter((e) => e.status !== 'pushing').map((e) => e.status),
    ['exists', 'exists', 'exists'],
  );

  const dst = newStore(t);
  const events: PullProgress[] = [];
  const pulled = await dst.pull(name, { onProgress: (e) => events.push(e) });
  t.true(pulled.downloaded);
  t.is(pulled.digest, pushed.digest);
  t.true(events.some((e) => e.type === 'resolved' && e.layers.length === 2));
  t.is(events.filter((e) => e.type === 'layer' && e.status === 'complete').length, 2);
  const img = pulled.image;
  t.is(img.manifestDigest, built);
  t.is(img.reference, `${registry().addr}/test/tree:v1`);
  t.deepEqual(img.config.cmd, ['sh']);
  t.deepEqual(img.config.env, ['A=1']);
  t.is(img.config.workingDir, '/app');
  t.deepEqual(img.config.exposedPorts, ['80/tcp']);
  t.is(img.layerDirs.length, 2);
  const root = img.layerDirs[0] as string;
  const app = statSync(join(root, 'app'));
  t.is(app.mode & 0o7777, 0o750);
  t.is(app.uid, 1000);
  t.is(app.gid, 1001);
  const run = statSync(join(root, 'app/run'));
  t.is(run.mode & 0o7777, 0o4755, 'setuid bit kept (chmod after chown)');
  t.is(run.uid, 1000);
  t.is(readlinkSync(join(root, 'app/link')), 'run');
  t.is(readlinkSync(join(root, 'abs')), '/etc/shadow', 'absolute symlink kept as written, not followed');
  t.is(statSync(join(root, 'app/hard')).ino, run.ino, 'hardlink shares the inode');
  t.is(statSync(join(root, 'scratch')).mode & 0o7777, 0o1777);
  const dev = lstatSync(join(root, 'dev/null'));
  t.true(dev.isCharacterDevice());
  t.is(dev.rdev, (1 << 8) | 3);
  const owned = statSync(join(root, 'owned'));
  t.deepEqual([owned.uid, owned.gid, owned.mode & 0o777], [65534, 65534, 0o600]);
  t.is(statSync(join(root, 'app/run')).mtime.getTime(), Date.UTC(2024, 0, 1));
  // Short layer directory names: twenty of them fit an overlay's one-page option string.
  t.true(img.layerDirs.every((d) => d.length - dst.rootDir.length < 30));

  // A second pull finds everything; Docker's "Image is up to date".
  const up = await dst.pull(name);
  t.false(up.downloaded);
  t.deepEqual(dst.inspect(name).repoTags, [`${registry().addr}/test/tree:v1`]);
});

itest('chunked upload of a bigger blob, pulled back intact', async (t) => {
  const name = `${registry().addr}/test/chunked:v1`;
  const content = randomBytes(300 * 1024);
  const layer = await buildLayer([{ type: 'file', path: 'blob.bin', content }]);
  const src = newStore(t);
  await buildImage(src, { layers: [layer] }, [name]);
  await src.push(name, { chunkBytes: 64 * 1024 });
  const img = await newStore(t).ensure(name);
  t.deepEqual(readFileSync(join(img.layerDirs[0] as string, 'blob.bin')), content);
});

itest('whiteouts and an opaque directory hide the lower layer under a real overlayfs mount', async (t) => {
  const name = `${registry().addr}/test/whiteout:v1`;
  const lower = await buildLayer([
    { type: 'dir', path: 'a' },
    { type: 'file', path: 'a/keep', content: 'keep' },
    { type: 'file', path: 'a/gone', content: 'gone' },
    { type: 'dir', path: 'b' },
    { type: 'file', path: 'b/old1', content: '1' },
    { type: 'dir', path: 'b/olddir' },
    { type: 'file', path: 'b/olddir/f', content: '2' },
    { type: 'file', path: 'top', content: 'top' },
    { type: 'file', path: `u-${randomBytes(4).toString('hex')}`, content: 'unique' },
  ]);
  const upper = await buildLayer([
    { type: 'whiteout', path: 'a/gone' },
    { type: 'dir', path: 'b' },
    { type: 'opaque', path: 'b' },
    { type: 'file', path: 'b/new', content: 'new' },
    { type: 'whiteout', path: 'top' },
  ]);
  const src = newStore(t);
  await buildImage(src, { layers: [lower, upper] }, [name]);
  await src.push(name);
  const img = await newStore(t).ensure(name);
  const [lowerDir, upperDir] = img.layerDirs as [string, string];
  const wh = lstatSync(join(upperDir, 'a/gone'));
  t.true(wh.isCharacterDevice() && wh.rdev === 0, 'a whiteout is a 0/0 character device');
  t.false(existsSync(join(upperDir, 'a/.wh.gone')));
  t.false(existsSync(join(upperDir, 'b/.wh..wh..opq')));
  t.regex(execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', 'trusted.overlay.opaque', join(upperDir, 'b')], { encoding: 'utf8' }), /^y/);

  const mnt = tmp('overlay');
  let mounted = false;
  t.teardown(() => {
    if (mounted) execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  // overlayfs lists lower dirs top first.
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${upperDir}:${lowerDir}`, mnt]);
  mounted = true;
  t.deepEqual(readdirSync(join(mnt, 'a')), ['keep']);
  t.deepEqual(readdirSync(join(mnt, 'b')), ['new']);
  t.false(existsSync(join(mnt, 'top')));
  t.is(readFileSync(join(mnt, 'b/new'), 'utf8'), 'new');
});

async function pushForPlatform(src: ImageStore, repo: string, platform: Platform): Promise<{ digest: string; size: number }> {
  const layer = await buildLayer([{ type: 'file', path: 'arch', content: platform.architecture }]);
  const digest = await buildImage(src, { layers: [layer], platform }, []);
  await src.push(`${repo}@${digest}`);
  return { digest, size: imageDocuments({ layers: [layer], platform }).manifest.byteLength };
}

itest('an image index with several platforms: the pull picks linux and this architecture; resolve pins the index', async (t) => {
  const repo = `${registry().addr}/test/multi`;
  const src = newStore(t);
  const ours = hostPlatform();
  const others: Platform[] = [
    { os: 'linux', architecture: ours.architecture === 'amd64' ? 'arm64' : 'amd64' },
    { os: 'linux', architecture: 's390x' },
  ];
  const entries: { p: Platform; digest: string; size: number }[] = [];
  for (const p of [others[0] as Platform, ours, others[1] as Platform]) entries.push({ p, ...(await pushForPlatform(src, repo, p)) });
  const index = (list: typeof entries) =>
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: list.map((e) => ({ mediaType: MEDIA.ociManifest, digest: e.digest, size: e.size, platform: e.p })) }));
  const ref = parseReference(`${repo}:v1`);
  const indexDigest = await src.registry.putManifest(ref, 'v1', index(entries), MEDIA.ociIndex);
  t.is(await src.registry.resolve(`${repo}:v1`), indexDigest, 'resolve gives the index digest, as Docker pins it');

  const dst = newStore(t);
  const img = await dst.ensure(`${repo}:v1`);
  t.is(img.manifestDigest, entries[1]?.digest ?? 'missing');
  t.is(readFileSync(join(img.layerDirs[0] as string, 'arch'), 'utf8'), ours.architecture);
  t.deepEqual(dst.inspect(`${repo}:v1`).repoDigests, [`${repo}@${indexDigest}`]);
  // Pinned by the index digest, the store answers from what it has.
  t.is((await dst.ensure(`${repo}:v1@${indexDigest}`)).manifestDigest, img.manifestDigest);

  const foreign = [entries[0], entries[2]].filter((e) => e !== undefined);
  await src.registry.putManifest(ref, 'foreign', index(foreign), MEDIA.ociIndex);
  const err = await t.throwsAsync(dst.ensure(`${repo}:foreign`), { instanceOf: RuntimeError });
  t.is(err?.code, 'image_unavailable');
  t.true(err?.message.includes(`linux/${others[0]?.architecture}, linux/s390x`), err?.message);
});

itest('a corrupt blob on the registry is refused naming its digest, and nothing of it is kept', async (t) => {
  const name = `${registry().addr}/test/corrupt:v1`;
  const layer = await uniqueLayer(4096);
  const src = newStore(t);
  await buildImage(src, { layers: [layer] }, [name]);
  await src.push(name);
  const file = registry().blobFile(layer.digest);
  const good = readFileSync(file);
  const bad = Buffer.from(good);
  bad[bad.length - 10] = (bad[bad.length - 10] ?? 0) ^ 0xff;
  writeFileSync(file, bad);
  t.teardown(() => writeFileSync(file, good));
  const dst = newStore(t);
  const err = await t.throwsAsync(dst.ensure(name), { instanceOf: RuntimeError });
  t.is(err?.code, 'image_unavailable');
  t.true(err?.message.includes(layer.digest), err?.message);
  t.regex(err?.message ?? '', /failed verification/);
  t.false(existsSync(join(dst.rootDir, 'blobs/sha256', layer.digest.slice(7))));
  t.deepEqual(readdirSync(join(dst.rootDir, 'tmp')), [], 'no partial blob left');
  t.deepEqual(readdirSync(join(dst.rootDir, 'layers')), []);
  t.deepEqual(dst.list(), []);
  // With the registry's blob mended, the same store pulls it.
  writeFileSync(file, good);
  t.is((await dst.ensure(name)).layerDirs.length, 1);
});

itest('a download cut half way is resumed with a Range request and succeeds', async (t) => {
  const p = counting();
  const name = `${p.addr}/test/resume:v1`;
  const content = randomBytes(512 * 1024);
  const layer = await buildLayer([{ type: 'file', path: 'big', content }]);
  const src = newStore(t);
  await buildImage(src, { layers: [layer] }, [name]);
  await src.push(name);
  p.cutNext(layer.digest);
  const before = p.requests.length;
  const img = await newStore(t).ensure(name);
  t.deepEqual(readFileSync(join(img.layerDirs[0] as string, 'big')), content);
  const gets = p.requests.slice(before).filter((r) => r.method === 'GET' && r.url.endsWith(layer.digest));
  t.is(gets.length, 2);
  t.is(gets[0]?.range, null);
  t.regex(gets[1]?.range ?? '', /^bytes=[1-9]\d*-$/, 'the second request asks for the rest only');
});

itest('ten concurrent ensure() of one image make one pull; two images sharing a layer download it once', async (t) => {
  const p = counting();
  const shared = await uniqueLayer(200 * 1024);
  const a = await uniqueLayer();
  const b = await uniqueLayer();
  const src = newStore(t);
  const nameA = `${p.addr}/test/conc-a:v1`;
  const nameB = `${p.addr}/test/conc-b:v1`;
  await buildImage(src, { layers: [shared, a] }, [nameA]);
  await buildImage(src, { layers: [shared, b] }, [nameB]);
  await src.push(nameA);
  await src.push(nameB);

  const dst = newStore(t);
  const before = p.requests.length;
  const images = await Promise.all(Array.from({ length: 10 }, () => dst.ensure(nameA)));
  t.true(images.every((i) => i.manifestDigest === images[0]?.manifestDigest && i.layerDirs.join() === images[0]?.layerDirs.join()));
  const reqs = p.requests.slice(before).filter((r) => r.method === 'GET');
  t.is(reqs.filter((r) => r.url.includes('/manifests/')).length, 1, 'one manifest fetch');
  t.is(reqs.filter((r) => r.url.endsWith(shared.digest)).length, 1, 'the layer is fetched once');
  t.is(reqs.filter((r) => r.url.includes('/blobs/')).length, 3, 'two layers and the config, once each');

  const other = newStore(t);
  const mark = p.requests.length;
  await Promise.all([other.pull(nameA), other.pull(nameB), other.ensure(nameB)]);
  const blobGets = p.requests.slice(mark).filter((r) => r.method === 'GET' && r.url.endsWith(shared.digest));
  t.is(blobGets.length, 1, 'a layer two concurrent pulls share is downloaded once');
  t.is(other.pullsInFlight, 0);
});

itest('registry mirrors are tried first for docker.io images, a dead one skipped', async (t) => {
  const src = newStore(t);
  const layer = await uniqueLayer();
  const digest = await buildImage(src, { layers: [layer], config: { cmd: ['sh'] } }, [`${registry().addr}/library/mirrored:latest`]);
  await src.push(`${registry().addr}/library/mirrored:latest`);
  const dead = await freePort();
  const dst = newStore(t, { registryMirrors: [`http://127.0.0.1:${dead}`, `http://${registry().addr}`], maxAttempts: 1 });
  const img = await dst.ensure('mirrored');
  t.is(img.manifestDigest, digest);
  t.is(img.reference, 'docker.io/library/mirrored:latest');
  t.deepEqual(dst.inspect('mirrored').repoTags, ['mirrored:latest']);
});

itest('a pull of a tag the registry does not have fails with image_unavailable naming it', async (t) => {
  const err = await t.throwsAsync(newStore(t).ensure(`${registry().addr}/test/nothing:here`), { instanceOf: RuntimeError });
  t.is(err?.code, 'image_unavailable');
  t.regex(err?.message ?? '', /manifest for .*test\/nothing:here not found/);
});
