import test from 'ava';
import { X509Certificate, createHash, webcrypto } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import {
  PkiError,
  createRootCA,
  loadRootCA,
  parseRootCACertificate,
  certificateFingerprint,
  generateNodeKeyPair,
  issueNodeCertificate,
  verifyNodeCertificate,
  newId,
  DEFAULT_NODE_CERT_VALIDITY_MS,
  ROOT_CA_VALIDITY_MS,
  CERT_BACKDATE_MS,
  type RootCA,
} from '../src/index.js';
import { seededRandom } from './seeded-random.js';

const NOW_MS = Date.UTC(2026, 10, 24, 12, 0, 0);
const DAY_MS = 24 * 60 * 60 * 1000;
const PEER_A = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo';
const PEER_B = '12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp';
const CLUSTER = 'cluster0000000000000000001';

let caPromise: Promise<RootCA> | undefined;
function sharedCA(): Promise<RootCA> {
  caPromise ??= createRootCA({ clusterId: CLUSTER, nowMs: NOW_MS, random: seededRandom('ca') });
  return caPromise;
}

async function issue(ca: RootCA, overrides: Partial<Parameters<typeof issueNodeCertificate>[1]> = {}): Promise<string> {
  const keys = await generateNodeKeyPair();
  return issueNodeCertificate(ca, {
    nodeId: 'node1',
    role: 'worker',
    clusterId: ca.clusterId,
    publicKey: keys.publicKeyPem,
    libp2pPeerId: PEER_A,
    nowMs: NOW_MS,
    random: seededRandom('serial'),
    ...overrides,
  });
}

async function pkiCode(t: { throwsAsync: (fn: () => Promise<unknown>, exp: object) => Promise<unknown> }, fn: () => Promise<unknown>): Promise<string> {
  const err = (await t.throwsAsync(fn, { instanceOf: PkiError })) as PkiError | undefined;
  return err?.code ?? 'no error';
}

test('the root CA is a self-signed P-256 CA named swarm-ca/<cluster>, valid 20 years, that may only sign', async (t) => {
  const ca = await sharedCA();
  const cert = new x509.X509Certificate(ca.certPem);
  t.is(cert.subject, `CN=swarm-ca, O=${CLUSTER}`);
  t.is(cert.issuer, cert.subject);
  t.true(await cert.isSelfSigned());
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  t.true(basic?.ca);
  t.true(basic?.critical);
  const usage = cert.getExtension(x509.KeyUsagesExtension);
  t.truthy(usage);
  t.true(((usage?.usages ?? 0) & x509.KeyUsageFlags.keyCertSign) !== 0);
  t.is((usage?.usages ?? 0) & x509.KeyUsageFlags.digitalSignature, 0);
  t.is(cert.notAfter.getTime(), NOW_MS + ROOT_CA_VALIDITY_MS);
  t.is(cert.notBefore.getTime(), NOW_MS - CERT_BACKDATE_MS);
  t.is((cert.publicKey.algorithm as { namedCurve?: string }).namedCurve, 'P-256');
  // Node's own X.509 parser agrees it is a CA.
  t.true(new X509Certificate(ca.certPem).ca);
});

test('the CA fingerprint is sha256 of the certificate DER, as an independent parser computes it', async (t) => {
  const ca = await sharedCA();
  const expected = new X509Certificate(ca.certPem).fingerprint256.replaceAll(':', '').toLowerCase();
  t.is(ca.fingerprint, expected);
  t.is(certificateFingerprint(ca.certPem), expected);
  t.is(ca.fingerprint, createHash('sha256').update(new X509Certificate(ca.certPem).raw).digest('hex'));
  t.deepEqual(await parseRootCACertificate(ca.certPem), {
    clusterId: CLUSTER,
    fingerprint: expected,
    notAfterMs: NOW_MS + ROOT_CA_VALIDITY_MS,
  });
});

test('the CA key is PKCS#8 and reloads with its certificate; a key from another CA is refused', async (t) => {
  const ca = await sharedCA();
  t.true(ca.keyPem.startsWith('-----BEGIN PRIVATE KEY-----'));
  const loaded = await loadRootCA(ca.certPem, ca.keyPem);
  t.is(loaded.fingerprint, ca.fingerprint);
  t.is(loaded.clusterId, CLUSTER);
  const other = await createRootCA({ clusterId: CLUSTER, nowMs: NOW_MS });
  t.is(await pkiCode(t, () => loadRootCA(ca.certPem, other.keyPem)), 'key_invalid');
  t.is(await pkiCode(t, () => loadRootCA(ca.certPem, 'not a key')), 'key_invalid');
});

test('a node certificate round-trips: CN node id, OU role, O cluster, libp2p peer id in a SAN URI', async (t) => {
  const ca = await sharedCA();
  const certPem = await issue(ca, { nodeId: 'n0de1d', role: 'manager' });
  const identity = await verifyNodeCertificate(ca.certPem, certPem, { nowMs: NOW_MS, expectedPeerId: PEER_A });
  t.like(identity, { nodeId: 'n0de1d', role: 'manager', clusterId: CLUSTER, peerId: PEER_A });
  t.is(identity.notAfterMs, NOW_MS + DEFAULT_NODE_CERT_VALIDITY_MS);

  const cert = new X509Certificate(certPem);
  t.is(cert.subject, `CN=n0de1d\nOU=swarm-manager\nO=${CLUSTER}`);
  t.true(cert.subjectAltName?.includes(`URI:libp2p:${PEER_A}`));
  t.false(cert.ca);
  // Node's own verifier agrees the CA signed it.
  t.true(cert.checkIssued(new X509Certificate(ca.certPem)));
  t.true(cert.verify(new X509Certificate(ca.certPem).publicKey));
});

test('the role in a verified certificate is the role it was issued for', async (t) => {
  const ca = await sharedCA();
  const worker = await verifyNodeCertificate(ca.certPem, await issue(ca, { role: 'worker' }), { nowMs: NOW_MS });
  const manager = await verifyNodeCertificate(ca.certPem, await issue(ca, { role: 'manager' }), { nowMs: NOW_MS });
  t.is(worker.role, 'worker');
  t.is(manager.role, 'manager');
});

test('a WebCrypto public key is accepted as well as SPKI PEM; a non-P-256 key is refused', async (t) => {
  const ca = await sharedCA();
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const certPem = await issue(ca, { publicKey: keys.publicKey });
  t.is((await verifyNodeCertificate(ca.certPem, certPem, { nowMs: NOW_MS })).nodeId, 'node1');
  const p384 = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify']);
  t.is(await pkiCode(t, () => issue(ca, { publicKey: p384.publicKey })), 'key_invalid');
  t.is(await pkiCode(t, () => issue(ca, { publicKey: 'garbage' })), 'key_invalid');
});

test('a certificate from another CA of the same cluster name is cert_wrong_ca (the signature decides)', async (t) => {
  const ca = await sharedCA();
  const impostor = await createRootCA({ clusterId: CLUSTER, nowMs: NOW_MS });
  const certPem = await issue(impostor);
  t.is(await pkiCode(t, () => verifyNodeCertificate(ca.certPem, certPem, { nowMs: NOW_MS })), 'cert_wrong_ca');
  // And the other way round: our certificate does not pass the impostor's CA.
  const ours = await issue(ca);
  t.is(await pkiCode(t, () => verifyNodeCertificate(impostor.certPem, ours, { nowMs: NOW_MS })), 'cert_wrong_ca');
});

test('a certificate past its notAfter is cert_expired; one millisecond before is still valid', async (t) => {
  const ca = await sharedCA();
  const validityMs = 2 * DAY_MS;
  const certPem = await issue(ca, { validityMs });
  const notAfterMs = NOW_MS + validityMs;
  t.is((await verifyNodeCertificate(ca.certPem, certPem, { nowMs: notAfterMs - 1 })).notAfterMs, notAfterMs);
  t.is(await pkiCode(t, () => verifyNodeCertificate(ca.certPem, certPem, { nowMs: notAfterMs + 1000 })), 'cert_expired');
  const longLived = await issue(ca);
  t.is(
    await pkiCode(t, () => verifyNodeCertificate(ca.certPem, longLived, { nowMs: NOW_MS + DEFAULT_NODE_CERT_VALIDITY_MS + 1000 })),
    'cert_expired',
  );
});

test('a certificate used before its (backdated) notBefore is refused with a clock hint', async (t) => {
  const ca = await sharedCA();
  const certPem = await issue(ca);
  t.truthy(await verifyNodeCertificate(ca.certPem, certPem, { nowMs: NOW_MS - CERT_BACKDATE_MS + 1000 }));
  const err = await t.throwsAsync(() => verifyNodeCertificate(ca.certPem, certPem, { nowMs: NOW_MS - CERT_BACKDATE_MS - 1000 }), {
    instanceOf: PkiError,
  });
  t.is(err?.code, 'cert_invalid');
  t.regex(err?.message ?? '', /clock/);
});

test('a peer presenting another peer id than the one bound in its certificate is peer_mismatch', async (t) => {
  const ca = await sharedCA();
  const certPem = await issue(ca, { libp2pPeerId: PEER_A });
  t.is(await pkiCode(t, () => verifyNodeCertificate(ca.certPem, certPem, { nowMs: NOW_MS, expectedPeerId: PEER_B })), 'peer_mismatch');
  const unbound = await issue(ca, { libp2pPeerId: undefined });
  t.is((await verifyNodeCertificate(ca.certPem, unbound, { nowMs: NOW_MS })).peerId, undefined);
  t.is(await pkiCode(t, () => verifyNodeCertificate(ca.certPem, unbound, { nowMs: NOW_MS, expectedPeerId: PEER_A })), 'peer_mismatch');
});

test('garbage and the CA certificate itself are not valid node certificates', async (t) => {
  const ca = await sharedCA();
  t.is(await pkiCode(t, () => verifyNodeCertificate(ca.certPem, 'hello', { nowMs: NOW_MS })), 'cert_invalid');
  const truncated = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  t.is(await pkiCode(t, () => verifyNodeCertificate(ca.certPem, truncated, { nowMs: NOW_MS })), 'cert_invalid');
  t.is(await pkiCode(t, () => verifyNodeCertificate(ca.certPem, ca.certPem, { nowMs: NOW_MS })), 'cert_invalid');
});

test('the CA refuses to issue for another cluster id or with names that would need escaping', async (t) => {
  const ca = await sharedCA();
  t.is(await pkiCode(t, () => issue(ca, { clusterId: 'othercluster' })), 'invalid_argument');
  t.is(await pkiCode(t, () => issue(ca, { nodeId: 'a,OU=swarm-manager' })), 'invalid_argument');
  t.is(await pkiCode(t, () => issue(ca, { libp2pPeerId: 'x y' })), 'invalid_argument');
});

test('serial numbers come from the injected random source', async (t) => {
  const ca = await sharedCA();
  const a = new X509Certificate(await issue(ca, { random: seededRandom('s1') })).serialNumber;
  const b = new X509Certificate(await issue(ca, { random: seededRandom('s1') })).serialNumber;
  const c = new X509Certificate(await issue(ca, { random: seededRandom('s2') })).serialNumber;
  t.is(a, b);
  t.not(a, c);
});

test('ids are 25 lowercase base36 characters and reproducible from a seed', (t) => {
  const id = newId(seededRandom('id'));
  t.regex(id, /^[0-9a-z]{25}$/);
  t.is(newId(seededRandom('id')), id);
  t.not(newId(seededRandom('id2')), id);
});

test('a certificate flagged as a CA is refused as a node certificate even when its subject looks like a node', async (t) => {
  const ca = await sharedCA();
  const signingKey = await webcrypto.subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(ca.keyPem),
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  );
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const caCert = new x509.X509Certificate(ca.certPem);
  const sub = await x509.X509CertificateGenerator.create({
    serialNumber: '01',
    subject: [{ CN: ['node1'] }, { OU: ['swarm-manager'] }, { O: [CLUSTER] }],
    issuer: caCert.subjectName,
    notBefore: new Date(NOW_MS - 1000),
    notAfter: new Date(NOW_MS + DAY_MS),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    publicKey: keys.publicKey,
    signingKey,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true)],
  });
  const err = await t.throwsAsync(() => verifyNodeCertificate(ca.certPem, sub.toString('pem'), { nowMs: NOW_MS }), { instanceOf: PkiError });
  t.is(err?.code, 'cert_invalid');
  t.regex(err?.message ?? '', /CA certificate/);
});
