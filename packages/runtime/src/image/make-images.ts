// `node make-images.js OUTDIR [BUSYBOX]`: the images the lab and the tests run (busybox, swarm/httpd,
// swarm/crasher), built from Debian's static busybox into OUTDIR/oci (an OCI image layout) and OUTDIR/images.tar.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RuntimeError } from '../runtime.js';
import { buildImage, buildLayer, DEFAULT_PATH_ENV, type BuiltLayer, type TreeEntry } from './build.js';
import { ImageStore } from './store.js';

export const BUSYBOX_BIN = '/usr/bin/busybox';
export const LAB_IMAGES = ['busybox:latest', 'swarm/httpd:latest', 'swarm/crasher:latest'] as const;

/** / of a busybox image: the binary, a symlink per applet, passwd/group with root and nobody, /tmp, /root. */
export async function busyboxLayer(busyboxPath = BUSYBOX_BIN): Promise<BuiltLayer> {
  let binary: Buffer;
  try {
    binary = readFileSync(busyboxPath);
  } catch {
    throw new RuntimeError('invalid_config', `${busyboxPath} is missing: apt-get install busybox-static`);
  }
  const applets = execFileSync(busyboxPath, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '' && s !== 'busybox' && !s.includes('/'));
  const entries: TreeEntry[] = [
    { type: 'dir', path: 'bin' },
    { type: 'file', path: 'bin/busybox', content: binary, mode: 0o755 },
    ...applets.map((a): TreeEntry => ({ type: 'symlink', path: `bin/${a}`, target: 'busybox' })),
    { type: 'dir', path: 'etc' },
    { type: 'file', path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' },
    { type: 'file', path: 'etc/group', content: 'root:x:0:\nnobody:x:65534:\n' },
    { type: 'dir', path: 'home' },
    { type: 'dir', path: 'root', mode: 0o700 },
    { type: 'dir', path: 'tmp', mode: 0o1777 },
    { type: 'dir', path: 'usr' },
    { type: 'dir', path: 'usr/bin' },
    { type: 'dir', path: 'var' },
  ];
  return buildLayer(entries);
}

const HOST_CGI = '#!/bin/sh\necho "Content-Type: text/plain"\necho ""\nhostname\n';
/** `?key=NAME` of the query string (letters, digits, `_.-` only), as the tiers below read it. */
const KEY_OF_QUERY = String.raw`key=$(echo "$QUERY_STRING" | sed -n 's/^.*key=\([A-Za-z0-9_.-]*\).*$/\1/p')`;
/** The body of an HTTP answer read from nc: what follows the first empty line. */
const BODY_OF_ANSWER = String.raw`tr -d '\r' | sed '1,/^$/d'`;
/**
 * The example stack's three tiers, all CGI scripts of this one image (examples/stack.yml): `kv` keeps values in
 * files under $KV_DIR (a named volume); `api` reads and writes them through the kv service and says whether its
 * secret is there (never what it holds); `web` answers through the api service. GET ?key=K reads, POST ?key=K
 * with a body writes.
 */
const KV_CGI = [
  '#!/bin/sh',
  KEY_OF_QUERY,
  'dir="${KV_DIR:-/data}"',
  'echo "Content-Type: text/plain"',
  'echo ""',
  '[ -n "$key" ] || { echo "kv $(hostname): no key"; exit 0; }',
  'if [ "$REQUEST_METHOD" = POST ]; then head -c "${CONTENT_LENGTH:-0}" > "$dir/$key" && echo "kv $(hostname): stored $key"; exit 0; fi',
  'if [ -f "$dir/$key" ]; then echo "kv $(hostname): $key=$(cat "$dir/$key")"; else echo "kv $(hostname): $key is not set"; fi',
  '',
].join('\n');
/** A tier that says who it is (`lines`), then passes the request on to `path` of the host in `hostVar`. */
function forwardingCgi(lines: readonly string[], hostVar: string, path: string): string {
  const to = `nc -w 5 "\${${hostVar}}" 80 | ${BODY_OF_ANSWER}`;
  return [
    '#!/bin/sh',
    KEY_OF_QUERY,
    'echo "Content-Type: text/plain"',
    'echo ""',
    ...lines,
    'if [ "$REQUEST_METHOD" = POST ]; then',
    '  body=$(head -c "${CONTENT_LENGTH:-0}")',
    `  printf 'POST ${path}?key=%s HTTP/1.0\\r\\nContent-Length: %s\\r\\n\\r\\n%s' "$key" "\${#body}" "$body" | ${to}`,
    'else',
    `  printf 'GET ${path}?key=%s HTTP/1.0\\r\\n\\r\\n' "$key" | ${to}`,
    'fi',
    '',
  ].join('\n');
}
const API_CGI = forwardingCgi(
  ['token=missing', '[ -f /run/secrets/api_token ] && token="set ($(wc -c < /run/secrets/api_token) bytes)"', 'echo "api $(hostname): secret api_token $token"'],
  'KV_HOST:-kv',
  '/cgi-bin/kv',
);
const WEB_CGI = forwardingCgi(['echo "web $(hostname)"'], 'API_HOST:-api', '/cgi-bin/api');
const INDEX_HTML = '<!DOCTYPE html>\n<html><body><h1>swarm httpd</h1><p>GET /cgi-bin/host for the container\'s hostname.</p></body></html>\n';
const CRASH_SCRIPT = 'echo starting; sleep ${CRASH_AFTER:-2}; echo crashing >&2; exit ${EXIT_CODE:-1}';

/** Builds the three lab images into `store`, sharing the busybox layer; returns their references. */
export async function buildLabImages(store: ImageStore, busyboxPath = BUSYBOX_BIN): Promise<string[]> {
  const base = await busyboxLayer(busyboxPath);
  await buildImage(store, { layers: [base], config: { env: [DEFAULT_PATH_ENV], cmd: ['sh'] } }, ['busybox:latest']);
  const www = await buildLayer([
    { type: 'dir', path: 'www' },
    { type: 'file', path: 'www/index.html', content: INDEX_HTML },
    { type: 'dir', path: 'www/cgi-bin' },
    { type: 'file', path: 'www/cgi-bin/host', content: HOST_CGI, mode: 0o755 },
    { type: 'file', path: 'www/cgi-bin/kv', content: KV_CGI, mode: 0o755 },
    { type: 'file', path: 'www/cgi-bin/api', content: API_CGI, mode: 0o755 },
    { type: 'file', path: 'www/cgi-bin/web', content: WEB_CGI, mode: 0o755 },
    { type: 'dir', path: 'data' },
  ]);
  await buildImage(
    store,
    { layers: [base, www], config: { env: [DEFAULT_PATH_ENV], entrypoint: ['httpd', '-f', '-v', '-p', '80', '-h', '/www'], exposedPorts: ['80/tcp'] } },
    ['swarm/httpd:latest'],
  );
  const crash = await buildLayer([
    { type: 'dir', path: 'usr/share' },
    { type: 'dir', path: 'usr/share/swarm' },
    { type: 'file', path: 'usr/share/swarm/crasher', content: `${CRASH_SCRIPT}\n` },
  ]);
  await buildImage(store, { layers: [base, crash], config: { env: [DEFAULT_PATH_ENV], entrypoint: ['sh', '-c', CRASH_SCRIPT] } }, ['swarm/crasher:latest']);
  return [...LAB_IMAGES];
}

/** OUTDIR/oci (image layout) and OUTDIR/images.tar (archive) holding the lab images. */
export async function makeImages(outDir: string, busyboxPath = BUSYBOX_BIN): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  const scratch = mkdtempSync(join(outDir, '.build-'));
  try {
    const store = new ImageStore({ rootDir: scratch });
    const refs = await buildLabImages(store, busyboxPath);
    await store.saveLayout(refs, join(outDir, 'oci'));
    await store.save(refs, join(outDir, 'images.tar'));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const entry = process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname);
if (entry) {
  const [outDir, busybox] = process.argv.slice(2);
  if (outDir === undefined) {
    process.stderr.write('usage: make-images.js OUTDIR [BUSYBOX]\n');
    process.exit(2);
  }
  makeImages(resolve(outDir), busybox ?? BUSYBOX_BIN).then(
    () => process.stdout.write(`${LAB_IMAGES.join(' ')} -> ${resolve(outDir)}/oci and ${resolve(outDir)}/images.tar\n`),
    (err: unknown) => {
      process.stderr.write(`make-images: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
