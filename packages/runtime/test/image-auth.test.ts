// Registry authentication against real docker-registry instances (one of each, started once for the file):
// Basic (htpasswd with bcrypt) and Bearer tokens from a token server in this test that signs JWTs with a
// self-signed certificate the registry trusts; right, wrong and missing credentials; tokens cached per scope.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createSign, randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { RuntimeError } from '../src/runtime.js';
import { buildImage, buildLayer } from '../src/image/build.js';
import type { RegistryCredentials } from '../src/image/registry.js';
import { ImageStore } from '../src/image/store.js';
import { imageTest, missing, startRegistry, tmp, type TestRegistry } from './image-helpers.js';

const EXTRA = ['/usr/bin/htpasswd', '/usr/bin/openssl'];
const why = missing(EXTRA);
const itest = imageTest(EXTRA);
const USER = 'alice';
const PASSWORD = 'correct horse';
const SERVICE = 'swarm-test-registry';
const ISSUER = 'swarm-test-issuer';

let basic: TestRegistry | null = null;
let bearer: TestRegistry | null = null;
let tokenServer: Server | null = null;
let dir = '';
const tokenRequests: { scope: string[]; user: string | null }[] = [];

function b64url(v: Buffer | string): string {
  return Buffer.from(v).toString('base64url');
}

/** A JWT the registry accepts: RS256, the signing certificate in x5c (it chains to the rootcertbundle, itself). */
function signToken(key: string, certDer: Buffer, sub: string, access: { type: string; name: string; actions: string[] }[]): string {
  const now = Math.floor(Date.now() / 1000);
  const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
  const claims = { iss: ISSUER, sub, aud: SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = createSign('RSA-SHA256').update(input).sign(key);
  return `${input}.${b64url(sig)}`;
}

test.before(async () => {
  if (why !== null) return;
  dir = tmp('auth');
  // Basic: an htpasswd file with a bcrypt hash, as the registry requires.
  writeFileSync(join(dir, 'htpasswd'), execFileSync('htpasswd', ['-Bbn', USER, PASSWORD]));
  basic = await startRegistry(['auth:', '  htpasswd:', '    realm: basic-realm', `    path: ${join(dir, 'htpasswd')}`].join('\n'));

  // Bearer: a self-signed certificate; its key signs the tokens, the registry trusts it as the root bundle.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=swarm-test-token'], {
    stdio: 'ignore',
  });
  const key = readFileSync(join(dir, 'key.pem'), 'utf8');
  const certDer = Buffer.from(readFileSync(join(dir, 'cert.pem'), 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  tokenServer = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scopes = url.searchParams.getAll('scope');
    let user: string | null = null;
    const authz = req.headers.authorization;
    if (authz !== undefined) {
      const [u, ...rest] = Buffer.from(authz.replace(/^Basic /, ''), 'base64').toString().split(':');
      if (u !== USER || rest.join(':') !== PASSWORD) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
        tokenRequests.push({ scope: scopes, user: u ?? '' });
        return;
      }
      user = USER;
    }
    tokenRequests.push({ scope: scopes, user });
    // Alice may do what she asks; anonymous callers get nothing (the registry then answers 401).
    const access =
      user === null
        ? []
        : scopes.map((s) => {
            const [type, name, actions] = s.split(':');
            return { type: type ?? '', name: name ?? '', actions: (actions ?? '').split(',') };
          });
    const token = signToken(key, certDer, user ?? '', access);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => tokenServer?.listen(0, '127.0.0.1', resolve));
  const a = tokenServer.address();
  const realm = `http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}/token`;
  bearer = await startRegistry(
    ['auth:', '  token:', `    realm: ${realm}`, `    service: ${SERVICE}`, `    issuer: ${ISSUER}`, `    rootcertbundle: ${join(dir, 'cert.pem')}`].join('\n'),
  );
});

test.after.always(async () => {
  await basic?.stop();
  await bearer?.stop();
  if (tokenServer !== null) {
    tokenServer.closeAllConnections();
    await new Promise<void>((resolve) => tokenServer?.close(() => resolve()));
  }
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

function store(t: { teardown: (fn: () => void) => void }, creds: RegistryCredentials | null): ImageStore {
  const root = tmp('images');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return new ImageStore({ rootDir: root, auth: () => creds, retryDelayMs: 20 });
}

async function pushOne(t: { teardown: (fn: () => void) => void }, name: string): Promise<string> {
  const src = store(t, { username: USER, password: PASSWORD });
  const layer = await buildLayer([{ type: 'file', path: 'who', content: randomBytes(16).toString('hex') }]);
  const digest = await buildImage(src, { layers: [layer] }, [name]);
  const pushed = await src.push(name);
  return pushed.digest === digest ? digest : '';
}

itest('Basic auth: the right credentials push and pull; wrong ones and none are refused with a clear error', async (t) => {
  if (basic === null) throw new Error('no registry');
  const name = `${basic.addr}/team/app:v1`;
  const digest = await pushOne(t, name);
  t.not(digest, '');
  t.is((await store(t, { username: USER, password: PASSWORD }).ensure(name)).manifestDigest, digest);
  t.is(await store(t, { username: USER, password: PASSWORD }).registry.resolve(name), digest);

  const wrong = await t.throwsAsync(store(t, { username: USER, password: 'nope' }).ensure(name), { instanceOf: RuntimeError });
  t.is(wrong?.code, 'image_unavailable');
  t.regex(wrong?.message ?? '', new RegExp(`registry ${basic.addr} refused access for alice`));
  const none = await t.throwsAsync(store(t, null).ensure(name), { instanceOf: RuntimeError });
  t.regex(none?.message ?? '', new RegExp(`registry ${basic.addr} requires a login`));
});

itest('Bearer auth: tokens from the realm with Basic credentials, cached per scope; wrong and missing credentials refused', async (t) => {
  if (bearer === null) throw new Error('no registry');
  const name = `${bearer.addr}/team/app:v1`;
  const before = tokenRequests.length;
  const digest = await pushOne(t, name);
  t.not(digest, '');
  const pushTokens = tokenRequests.slice(before);
  t.true(pushTokens.length >= 1 && pushTokens.every((r) => r.user === USER));
  t.true(pushTokens.some((r) => r.scope.includes('repository:team/app:pull,push')));

  const s = store(t, { username: USER, password: PASSWORD });
  const mark = tokenRequests.length;
  const img = await s.ensure(name);
  t.is(img.manifestDigest, digest);
  const pullTokens = tokenRequests.slice(mark);
  t.is(pullTokens.length, 1, 'one token for the whole pull (manifest, config, layer)');
  t.deepEqual(pullTokens[0]?.scope, ['repository:team/app:pull']);
  // The same scope again: the cached token is used.
  const mark2 = tokenRequests.length;
  t.is(await s.registry.resolve(name), digest);
  await s.pull(name);
  t.is(tokenRequests.length, mark2, 'no new token while the cached one is valid');

  const wrong = await t.throwsAsync(store(t, { username: USER, password: 'nope' }).ensure(name), { instanceOf: RuntimeError });
  t.regex(wrong?.message ?? '', new RegExp(`registry ${bearer.addr} refused the credentials of alice`));
  const none = await t.throwsAsync(store(t, null).ensure(name), { instanceOf: RuntimeError });
  t.is(none?.code, 'image_unavailable');
  t.regex(none?.message ?? '', /requires a login/);
});
