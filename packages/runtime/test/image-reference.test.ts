// Image references as Docker reads them: normalisation to registry/repository:tag, the canonical and familiar
// forms, and bad references refused with invalid_config naming the reference.

import test from 'ava';
import { RuntimeError } from '../src/runtime.js';
import { canonicalReference, familiarReference, parseReference } from '../src/image/reference.js';
import { RegistryClient, parseChallenge } from '../src/image/registry.js';
import { hostPlatform, selectPlatform, MEDIA } from '../src/image/oci.js';

const D = `sha256:${'ab'.repeat(32)}`;

const good: [string, string, string, string, string | null, string | null][] = [
  // input, canonical, familiar, repository, tag, digest
  ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest', 'library/busybox', 'latest', null],
  ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36', 'library/busybox', '1.36', null],
  ['library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest', 'library/busybox', 'latest', null],
  ['docker.io/library/busybox:1', 'docker.io/library/busybox:1', 'busybox:1', 'library/busybox', '1', null],
  ['index.docker.io/me/app', 'docker.io/me/app:latest', 'me/app:latest', 'me/app', 'latest', null],
  ['me/app:v2', 'docker.io/me/app:v2', 'me/app:v2', 'me/app', 'v2', null],
  ['host:5000/team/app:v1', 'host:5000/team/app:v1', 'host:5000/team/app:v1', 'team/app', 'v1', null],
  ['localhost/app', 'localhost/app:latest', 'localhost/app:latest', 'app', 'latest', null],
  ['127.0.0.1:5000/a/b/c', '127.0.0.1:5000/a/b/c:latest', '127.0.0.1:5000/a/b/c:latest', 'a/b/c', 'latest', null],
  ['quay.io/x_y/a-b.c__d', 'quay.io/x_y/a-b.c__d:latest', 'quay.io/x_y/a-b.c__d:latest', 'x_y/a-b.c__d', 'latest', null],
  [`app@${D}`, `docker.io/library/app@${D}`, `app@${D}`, 'library/app', null, D],
  [`app:tag@${D}`, `docker.io/library/app:tag@${D}`, `app:tag@${D}`, 'library/app', 'tag', D],
  [`host:5000/app@${D}`, `host:5000/app@${D}`, `host:5000/app@${D}`, 'app', null, D],
];

for (const [input, canonical, familiar, repository, tag, digest] of good) {
  test(`parses ${input}`, (t) => {
    const r = parseReference(input);
    t.is(canonicalReference(r), canonical);
    t.is(familiarReference(r), familiar);
    t.is(r.repository, repository);
    t.is(r.tag, tag);
    t.is(r.digest, digest);
    // The canonical form parses back to itself.
    t.is(canonicalReference(parseReference(canonical)), canonical);
  });
}

const bad: [string, RegExp][] = [
  ['', /empty/],
  ['Busybox', /lowercase/],
  ['busybox:', /is not a tag/],
  ['busybox:-x', /is not a tag/],
  ['busybox@sha256:abc', /not a digest/],
  ['busybox@md5:' + 'a'.repeat(32), /not a digest/],
  ['host:99999/app', /not a port/],
  ['host:5000/', /no repository name/],
  ['a//b', /not a valid name component/],
  ['-app', /not a valid name component/],
  ['app_/x', /not a valid name component/],
  [' busybox', /spaces/],
  ['a'.repeat(64), /64-character hexadecimal/],
  [`x.io/${'a'.repeat(260)}`, /longer than 255/],
];

for (const [input, why] of bad) {
  test(`refuses ${JSON.stringify(input.slice(0, 40))}`, (t) => {
    const err = t.throws(() => parseReference(input), { instanceOf: RuntimeError });
    t.is(err?.code, 'invalid_config');
    t.regex(err?.message ?? '', why);
    t.true(err?.message.includes(`"${input}"`), 'the message names the reference');
  });
}

test('WWW-Authenticate challenges: Bearer with realm, service, scope; Basic; unknown schemes are null', (t) => {
  t.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'), {
    scheme: 'bearer',
    realm: 'https://auth.example/token',
    service: 'registry.example',
    scope: 'repository:a/b:pull,push',
  });
  t.deepEqual(parseChallenge('Basic realm="basic-realm"'), { scheme: 'basic', realm: 'basic-realm' });
  t.is(parseChallenge('Negotiate abc'), null);
  t.is(parseChallenge(null), null);
});

test('an index picks linux and this node architecture, or names the platforms it has', (t) => {
  const ours = hostPlatform();
  const d = (arch: string, n: string, variant?: string) => ({
    mediaType: MEDIA.ociManifest,
    digest: `sha256:${n.repeat(64)}`,
    size: 1,
    platform: { os: 'linux', architecture: arch, ...(variant ? { variant } : {}) },
  });
  const other = ours.architecture === 'amd64' ? 'arm64' : 'amd64';
  const index = { schemaVersion: 2 as const, manifests: [d('s390x', 'a'), d(other, 'b'), d(ours.architecture, 'c')] };
  t.is(selectPlatform(index, ours, 'img').digest, `sha256:${'c'.repeat(64)}`);
  const err = t.throws(() => selectPlatform({ schemaVersion: 2, manifests: [d('s390x', 'a'), d('ppc64le', 'b')] }, ours, 'img'));
  t.regex(err?.message ?? '', /linux\/s390x, linux\/ppc64le/);
  t.regex(err?.message ?? '', new RegExp(`platform linux/${ours.architecture}`));
  // arm64's v8 variant counts as arm64.
  t.is(selectPlatform({ schemaVersion: 2, manifests: [d('arm64', 'e', 'v8')] }, { os: 'linux', architecture: 'arm64' }, 'img').digest, `sha256:${'e'.repeat(64)}`);
});

test('plain http for the insecure registries given, loopback and localhost; https for the rest; mirrors must be URLs', (t) => {
  const c = new RegistryClient({ insecureRegistries: ['10.0.0.1:5000'] });
  t.is(c.schemeFor('10.0.0.1:5000'), 'http');
  t.is(c.schemeFor('10.0.0.1:5001'), 'https');
  t.is(c.schemeFor('127.0.0.5:5000'), 'http');
  t.is(c.schemeFor('localhost:5000'), 'http');
  t.is(c.schemeFor('localhost'), 'http');
  t.is(c.schemeFor('[::1]:5000'), 'http');
  t.is(c.schemeFor('registry.example.com'), 'https');
  t.throws(() => new RegistryClient({ registryMirrors: ['mirror.example.com'] }), { message: /not an http\(s\) URL/ });
});
