// The registry client against a fake registry (node:http on 127.0.0.1) that misbehaves on purpose: Docker's
// manifest list and schema2 media types, a body that stalls (idle timeout, then resume), 503s (retried with
// backoff), and a pull aborted by one caller while another still waits for it.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { RuntimeError } from '../src/runtime.js';
import { buildLayer, imageDocuments, type BuiltLayer } from '../src/image/build.js';
import { MEDIA, hostPlatform, sha256Digest } from '../src/image/oci.js';
import { ImageStore } from '../src/image/store.js';
import { imageTest, tmp } from './image-helpers.js';

const itest = imageTest();

interface Fake {
  readonly addr: string;
  readonly hits: { method: string; url: string; range: string | null }[];
  manifests: Map<string, { body: Buffer; mediaType: string }>;
  blobs: Map<string, Buffer>;
  /** Called for each blob GET; returns true when it answered itself. */
  onBlob: (digest: string, req: IncomingMessage, res: ServerResponse, nth: number) => boolean;
  close(): Promise<void>;
}

async function fakeRegistry(t: { teardown: (fn: () => Promise<void> | void) => void }): Promise<Fake> {
  const blobCount = new Map<string, number>();
  const fake: Omit<Fake, 'addr' | 'close'> = { hits: [], manifests: new Map(), blobs: new Map(), onBlob: () => false };
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    fake.hits.push({ method: req.method ?? '', url, range: typeof req.headers.range === 'string' ? req.headers.range : null });
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url);
    if (url === '/v2/') return void res.writeHead(200).end('{}');
    if (m === null) return void res.writeHead(404).end();
    const [, , kind, ref] = m as unknown as [string, string, string, string];
    if (kind === 'manifests') {
      const man = fake.manifests.get(ref);
      if (man === undefined) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
      res.writeHead(200, { 'content-type': man.mediaType, 'docker-content-digest': sha256Digest(man.body), 'content-length': man.body.byteLength });
      return void res.end(req.method === 'HEAD' ? undefined : man.body);
    }
    const nth = (blobCount.get(ref) ?? 0) + 1;
    blobCount.set(ref, nth);
    if (fake.onBlob(ref, req, res, nth)) return;
    const blob = fake.blobs.get(ref);
    if (blob === undefined) return void res.writeHead(404).end();
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    if (range !== null) {
      const from = Number(range[1]);
      res.writeHead(206, { 'content-range': `bytes ${from}-${blob.byteLength - 1}/${blob.byteLength}`, 'content-length': blob.byteLength - from });
      return void res.end(blob.subarray(from));
    }
    res.writeHead(200, { 'content-length': blob.byteLength });
    res.end(req.method === 'HEAD' ? undefined : blob);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  t.teardown(close);
  return Object.assign(fake, { addr: `127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}`, close });
}

/** Puts an image (Docker schema2 media types when docker is set) into the fake under `tag`. */
function serveImage(fake: Fake, tag: string, layers: BuiltLayer[], docker = false): string {
  const docs = imageDocuments({ layers });
  let manifest = docs.manifest;
  if (docker) {
    const m = JSON.parse(manifest.toString()) as { mediaType: string; config: { mediaType: string }; layers: { mediaType: string }[] };
    m.mediaType = MEDIA.dockerManifest;
    m.config.mediaType = MEDIA.dockerConfig;
    for (const l of m.layers) l.mediaType = MEDIA.dockerLayer;
    manifest = Buffer.from(JSON.stringify(m));
  }
  fake.blobs.set(sha256Digest(docs.config), docs.config);
  for (const l of layers) fake.blobs.set(l.digest, l.bytes);
  const digest = sha256Digest(manifest);
  const entry = { body: manifest, mediaType: docker ? MEDIA.dockerManifest : MEDIA.ociManifest };
  fake.manifests.set(tag, entry);
  fake.manifests.set(digest, entry);
  return digest;
}

function newStore(t: { teardown: (fn: () => void) => void }, opts: Partial<ConstructorParameters<typeof ImageStore>[0]> = {}): ImageStore {
  const dir = tmp('images');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return new ImageStore({ rootDir: dir, retryDelayMs: 10, ...opts });
}

itest('a Docker manifest list with schema2 manifests: our platform is picked and pulled', async (t) => {
  const fake = await fakeRegistry(t);
  const layer = await buildLayer([{ type: 'file', path: 'hello', content: 'docker' }]);
  const digest = serveImage(fake, 'inner', [layer], true);
  const size = fake.manifests.get(digest)?.body.byteLength ?? 0;
  const list = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.dockerList,
      manifests: [
        { mediaType: MEDIA.dockerManifest, digest: `sha256:${'0'.repeat(64)}`, size: 10, platform: { os: 'windows', architecture: hostPlatform().architecture } },
        { mediaType: MEDIA.dockerManifest, digest, size, platform: hostPlatform() },
      ],
    }),
  );
  fake.manifests.set('v1', { body: list, mediaType: MEDIA.dockerList });
  const store = newStore(t);
  const img = await store.ensure(`${fake.addr}/lib/app:v1`);
  t.is(img.manifestDigest, digest);
  t.is(readFileSync(join(img.layerDirs[0] as string, 'hello'), 'utf8'), 'docker');
  t.is(store.inspect(`${fake.addr}/lib/app:v1`).manifestMediaType, MEDIA.dockerManifest);
  t.deepEqual(store.inspect(`${fake.addr}/lib/app:v1`).repoDigests, [`${fake.addr}/lib/app@${sha256Digest(list)}`]);
});

itest('a blob body that stalls is abandoned after the idle timeout and resumed from where it stopped', async (t) => {
  const fake = await fakeRegistry(t);
  const content = randomBytes(256 * 1024);
  const layer = await buildLayer([{ type: 'file', path: 'big', content }]);
  serveImage(fake, 'v1', [layer]);
  fake.onBlob = (digest, _req, res, nth) => {
    if (digest !== layer.digest || nth !== 1) return false;
    // Half the body, then silence (the connection stays open).
    res.writeHead(200, { 'content-length': layer.bytes.byteLength });
    res.write(layer.bytes.subarray(0, layer.bytes.byteLength / 2));
    return true;
  };
  const img = await newStore(t, { idleTimeoutMs: 300 }).ensure(`${fake.addr}/app:v1`);
  t.deepEqual(readFileSync(join(img.layerDirs[0] as string, 'big')), content);
  const gets = fake.hits.filter((h) => h.url.endsWith(layer.digest));
  t.is(gets.length, 2);
  t.regex(gets[1]?.range ?? '', /^bytes=\d+-$/);
});

itest('503 answers are retried with backoff; a registry that keeps failing gives up with a clear error', async (t) => {
  const fake = await fakeRegistry(t);
  const layer = await buildLayer([{ type: 'file', path: 'f', content: randomBytes(32) }]);
  serveImage(fake, 'v1', [layer]);
  let failing = 2;
  fake.onBlob = (digest, _req, res) => {
    if (digest !== layer.digest || failing <= 0) return false;
    failing--;
    res.writeHead(503).end();
    return true;
  };
  t.is((await newStore(t).ensure(`${fake.addr}/app:v1`)).layerDirs.length, 1);
  t.is(fake.hits.filter((h) => h.url.endsWith(layer.digest)).length, 3);

  failing = 100;
  const store = newStore(t, { maxAttempts: 3 });
  const err = await t.throwsAsync(store.ensure(`${fake.addr}/app:v1`), { instanceOf: RuntimeError });
  t.is(err?.code, 'image_unavailable');
  t.regex(err?.message ?? '', new RegExp(`downloading blob ${layer.digest} from ${fake.addr} failed after 3 attempts`));
  t.deepEqual(readdirSync(join(store.rootDir, 'tmp')), []);
});

itest('an aborted pull stops only when every caller has given up, and leaves nothing behind', async (t) => {
  const fake = await fakeRegistry(t);
  const layer = await buildLayer([{ type: 'file', path: 'f', content: randomBytes(64 * 1024) }]);
  serveImage(fake, 'v1', [layer]);
  let release: (() => void) | null = null;
  let started: () => void = () => undefined;
  const blobStarted = new Promise<void>((r) => (started = r));
  fake.onBlob = (digest, _req, res) => {
    if (digest !== layer.digest) return false;
    res.writeHead(200, { 'content-length': layer.bytes.byteLength });
    res.write(layer.bytes.subarray(0, 1000));
    release = () => res.end(layer.bytes.subarray(1000));
    started();
    return true;
  };
  const store = newStore(t);
  const name = `${fake.addr}/app:v1`;
  const first = new AbortController();
  const a = store.ensure(name, { signal: first.signal });
  const b = store.ensure(name);
  await blobStarted;
  first.abort(new Error('user gave up'));
  await t.throwsAsync(a, { message: 'user gave up' });
  // The other caller still gets the image.
  (release as (() => void) | null)?.();
  t.is((await b).layerDirs.length, 1);

  // Now a pull whose only caller aborts: the download stops and no partial blob stays.
  const other = await buildLayer([{ type: 'file', path: 'g', content: randomBytes(64 * 1024) }]);
  serveImage(fake, 'v2', [other]);
  const hung = new Promise<void>((r) => (started = r));
  fake.onBlob = (digest, _req, res) => {
    if (digest !== other.digest) return false;
    res.writeHead(200, { 'content-length': other.bytes.byteLength });
    res.write(other.bytes.subarray(0, 1000));
    started();
    return true;
  };
  const ctl = new AbortController();
  const c = store.ensure(`${fake.addr}/app:v2`, { signal: ctl.signal });
  await hung;
  ctl.abort(new Error('stop'));
  await t.throwsAsync(c, { message: 'stop' });
  // The flight winds down on its own; poll for the temp file to go.
  const deadline = Date.now() + 5_000;
  while ((readdirSync(join(store.rootDir, 'tmp')).length > 0 || store.pullsInFlight > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(readdirSync(join(store.rootDir, 'tmp')), []);
  t.false(existsSync(join(store.rootDir, 'blobs/sha256', other.digest.slice(7))));
  t.false(store.has(`${fake.addr}/app:v2`));
});

itest('a manifest whose bytes do not match the digest asked for is refused', async (t) => {
  const fake = await fakeRegistry(t);
  const layer = await buildLayer([{ type: 'file', path: 'f', content: 'x' }]);
  const digest = serveImage(fake, 'v1', [layer]);
  const wrong = `sha256:${'1'.repeat(64)}`;
  fake.manifests.set(wrong, fake.manifests.get(digest) as { body: Buffer; mediaType: string });
  const err = await t.throwsAsync(newStore(t).ensure(`${fake.addr}/app@${wrong}`), { instanceOf: RuntimeError });
  t.regex(err?.message ?? '', /failed verification: expected sha256:1111/);
});
