// The cluster's root CA and the node certificates it issues (SwarmKit's ca package, redone on WebCrypto):
// CN = node id, OU = role, O = cluster id, and the node's libp2p peer id bound in a SAN URI.
import { createHash, createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import { PkiError, assert } from './errors.js';
import { bytesToBigInt, cryptoRandom, takeRandom, type RandomBytes } from './random.js';
import { x509 } from './x509.js';

type WebCryptoKey = webcrypto.CryptoKey;

export type NodeRole = 'manager' | 'worker';

/** The OU values SwarmKit writes into node certificates; TLS peers authorize by them. */
export const MANAGER_OU = 'swarm-manager';
export const WORKER_OU = 'swarm-worker';
export const CA_COMMON_NAME = 'swarm-ca';
/** Scheme of the SAN URI that carries the libp2p peer id: `libp2p:<peerId>`. */
export const PEER_ID_URI_SCHEME = 'libp2p:';

const DAY_MS = 24 * 60 * 60 * 1000;
/** SwarmKit's root CA lives 20 years; rotating it is a separate, explicit operation. */
export const ROOT_CA_VALIDITY_MS = 20 * 365 * DAY_MS;
/** SwarmKit's default node certificate expiry (2160h); nodes renew before it runs out. */
export const DEFAULT_NODE_CERT_VALIDITY_MS = 90 * DAY_MS;
/** Minimum validity accepted, so a typo cannot issue certificates that die before the node starts. */
export const MIN_NODE_CERT_VALIDITY_MS = 60 * 60 * 1000;
/** notBefore is set this far in the past so a node whose clock lags a little still accepts a new cert. */
export const CERT_BACKDATE_MS = 60 * 60 * 1000;

const EC_KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
const SERIAL_BYTES = 16;
// Ids are written into distinguished names and SAN entries: keep them to a charset that needs no escaping.
const NAME_SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
// libp2p peer ids are base58btc multihashes (12D3KooW…, Qm…) or base32 CIDs (bafz…).
const PEER_ID_SAFE = /^[A-Za-z0-9]{16,128}$/;

export interface RootCA {
  readonly clusterId: string;
  readonly certPem: string;
  /** PKCS#8 PEM of the CA's ECDSA P-256 private key. Only managers hold it. */
  readonly keyPem: string;
  /** sha256 of the CA certificate's DER, lowercase hex (64 chars); join tokens pin it. */
  readonly fingerprint: string;
}

export interface NodeKeyPair {
  /** SPKI PEM: what a joining node sends to be certified. */
  readonly publicKeyPem: string;
  /** PKCS#8 PEM: stays on the node. */
  readonly privateKeyPem: string;
}

/** What a valid node certificate proves. */
export interface NodeIdentity {
  readonly nodeId: string;
  readonly role: NodeRole;
  readonly clusterId: string;
  /** The libp2p peer id bound at issue, or undefined if the certificate carries none. */
  readonly peerId: string | undefined;
  readonly notAfterMs: number;
  readonly serialNumber: string;
}

export interface CreateRootCAOptions {
  readonly clusterId: string;
  readonly nowMs: number;
  /** Source for the serial number; keys always come from WebCrypto's own CSPRNG. */
  readonly random?: RandomBytes;
}

export interface IssueNodeCertificateOptions {
  readonly nodeId: string;
  readonly role: NodeRole;
  readonly clusterId: string;
  /** The node's ECDSA P-256 public key: SPKI PEM or a WebCrypto public key. */
  readonly publicKey: string | WebCryptoKey;
  /**
   * The libp2p peer id to bind. The issuer must take it from the authenticated libp2p connection the join
   * request arrived on (noise proves the sender holds that peer's private key), never from the request body.
   */
  readonly libp2pPeerId?: string;
  readonly nowMs: number;
  readonly validityMs?: number;
  readonly random?: RandomBytes;
}

export interface VerifyNodeCertificateOptions {
  readonly nowMs: number;
  /** The peer id libp2p authenticated on the connection; the certificate must name the same one. */
  readonly expectedPeerId?: string;
}

export function roleToOU(role: NodeRole): string {
  return role === 'manager' ? MANAGER_OU : WORKER_OU;
}

function ouToRole(ou: string): NodeRole | undefined {
  if (ou === MANAGER_OU) return 'manager';
  if (ou === WORKER_OU) return 'worker';
  return undefined;
}

function checkName(what: string, value: string): void {
  if (!NAME_SAFE.test(value)) {
    throw new PkiError('invalid_argument', `${what} ${JSON.stringify(value)} must be 1-128 characters of [A-Za-z0-9._-]`);
  }
}

function checkPeerId(peerId: string): void {
  if (!PEER_ID_SAFE.test(peerId)) {
    throw new PkiError('invalid_argument', `libp2p peer id ${JSON.stringify(peerId)} is not a base58/base32 peer id`);
  }
}

function checkTime(what: string, ms: number): void {
  assert(Number.isSafeInteger(ms) && ms >= 0, `${what} must be a non-negative integer of milliseconds, got ${ms}`);
}

/** A positive serial of SERIAL_BYTES random bytes (RFC 5280: positive, at most 20 octets). */
function newSerialHex(random: RandomBytes): string {
  const bytes = takeRandom(random, SERIAL_BYTES);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01; // clear the sign bit; never all-zero
  const hex = Buffer.from(bytes).toString('hex');
  assert(bytesToBigInt(bytes) > 0n && hex.length === SERIAL_BYTES * 2, 'serial number must be positive');
  return hex;
}

function toPem(der: ArrayBuffer, label: string): string {
  return x509.PemConverter.encode(der, label);
}

/** sha256 of the certificate's DER, lowercase hex. Throws cert_invalid on anything that is not one certificate. */
export function certificateFingerprint(certPem: string): string {
  const cert = parseCertificate(certPem, 'certificate');
  return sha256Hex(cert);
}

function sha256Hex(cert: x509.X509Certificate): string {
  return createHash('sha256').update(new Uint8Array(cert.rawData)).digest('hex');
}

function parseCertificate(pem: string, what: string): x509.X509Certificate {
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new PkiError('cert_invalid', `the ${what} is not a PEM certificate (expected "-----BEGIN CERTIFICATE-----")`);
  }
  try {
    return new x509.X509Certificate(pem);
  } catch (err) {
    throw new PkiError('cert_invalid', `the ${what} cannot be parsed as X.509: ${(err as Error).message}`, { cause: err });
  }
}

function singleField(name: x509.Name, field: string): string | undefined {
  const values = name.getField(field);
  return values.length === 1 ? values[0] : undefined;
}

/** A fresh ECDSA P-256 key pair for a node's certificate. */
export async function generateNodeKeyPair(): Promise<NodeKeyPair> {
  const keys = await webcrypto.subtle.generateKey(EC_KEY_ALGORITHM, true, ['sign', 'verify']);
  const spki = await webcrypto.subtle.exportKey('spki', keys.publicKey);
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { publicKeyPem: toPem(spki, 'PUBLIC KEY'), privateKeyPem: toPem(pkcs8, 'PRIVATE KEY') };
}

/** Makes the cluster's root CA at `swarm init`: self-signed, ECDSA P-256, 20 years, may only sign certificates. */
export async function createRootCA(options: CreateRootCAOptions): Promise<RootCA> {
  checkName('cluster id', options.clusterId);
  checkTime('nowMs', options.nowMs);
  const keys = await webcrypto.subtle.generateKey(EC_KEY_ALGORITHM, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: newSerialHex(options.random ?? cryptoRandom),
    name: [{ CN: [CA_COMMON_NAME] }, { O: [options.clusterId] }],
    notBefore: new Date(options.nowMs - CERT_BACKDATE_MS),
    notAfter: new Date(options.nowMs + ROOT_CA_VALIDITY_MS),
    signingAlgorithm: SIGNING_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const ca: RootCA = {
    clusterId: options.clusterId,
    certPem: cert.toString('pem'),
    keyPem: toPem(pkcs8, 'PRIVATE KEY'),
    fingerprint: sha256Hex(cert),
  };
  assert(ca.fingerprint.length === 64, 'a sha256 fingerprint is 64 hex characters');
  return ca;
}

/** Facts read from a root CA certificate; the joining side uses this after checking the fingerprint. */
export interface RootCAInfo {
  readonly clusterId: string;
  readonly fingerprint: string;
  readonly notAfterMs: number;
}

/** Reads a root CA certificate and checks it is one: self-signed, a CA, named like ours. */
export async function parseRootCACertificate(certPem: string): Promise<RootCAInfo> {
  const cert = parseCertificate(certPem, 'root CA certificate');
  return checkRootCA(cert);
}

async function checkRootCA(cert: x509.X509Certificate): Promise<RootCAInfo> {
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  if (basic === null || !basic.ca) {
    throw new PkiError('cert_invalid', 'the root CA certificate is not a CA certificate (basicConstraints CA is not set)');
  }
  const clusterId = singleField(cert.subjectName, 'O');
  if (singleField(cert.subjectName, 'CN') !== CA_COMMON_NAME || clusterId === undefined) {
    throw new PkiError('cert_invalid', `the root CA certificate's subject "${cert.subject}" is not CN=${CA_COMMON_NAME}, O=<cluster id>`);
  }
  if (!(await cert.isSelfSigned())) {
    throw new PkiError('cert_invalid', 'the root CA certificate is not self-signed');
  }
  return { clusterId, fingerprint: sha256Hex(cert), notAfterMs: cert.notAfter.getTime() };
}

/** Loads a root CA from its PEM files (daemon restart) and checks the private key belongs to the certificate. */
export async function loadRootCA(certPem: string, keyPem: string): Promise<RootCA> {
  const cert = parseCertificate(certPem, 'root CA certificate');
  const info = await checkRootCA(cert);
  let publicDer: Buffer;
  try {
    publicDer = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  } catch (err) {
    throw new PkiError('key_invalid', `the root CA key cannot be read as a PKCS#8 PEM private key: ${(err as Error).message}`, { cause: err });
  }
  if (!Buffer.from(cert.publicKey.rawData).equals(publicDer)) {
    throw new PkiError('key_invalid', 'the root CA key does not belong to the root CA certificate');
  }
  return { clusterId: info.clusterId, certPem: cert.toString('pem'), keyPem, fingerprint: info.fingerprint };
}

async function importCASigningKey(keyPem: string): Promise<WebCryptoKey> {
  try {
    const der = x509.PemConverter.decodeFirst(keyPem);
    return await webcrypto.subtle.importKey('pkcs8', der, EC_KEY_ALGORITHM, false, ['sign']);
  } catch (err) {
    throw new PkiError('key_invalid', `the root CA key is not an ECDSA P-256 PKCS#8 key: ${(err as Error).message}`, { cause: err });
  }
}

async function importNodePublicKey(publicKey: string | WebCryptoKey): Promise<WebCryptoKey> {
  if (typeof publicKey !== 'string') {
    const algorithm = publicKey.algorithm as { name?: string; namedCurve?: string };
    if (publicKey.type !== 'public' || algorithm.name !== 'ECDSA' || algorithm.namedCurve !== 'P-256') {
      throw new PkiError('key_invalid', 'the node public key must be an ECDSA P-256 public key');
    }
    return publicKey;
  }
  try {
    const der = x509.PemConverter.decodeFirst(publicKey);
    return await webcrypto.subtle.importKey('spki', der, EC_KEY_ALGORITHM, true, ['verify']);
  } catch (err) {
    throw new PkiError('key_invalid', `the node public key is not an ECDSA P-256 SPKI PEM: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Signs a node's certificate. The caller has already matched the join token (which decides `role`) or, for a
 * renewal or promote/demote, looked the node up in the store.
 */
export async function issueNodeCertificate(ca: RootCA, options: IssueNodeCertificateOptions): Promise<string> {
  checkName('node id', options.nodeId);
  checkName('cluster id', options.clusterId);
  checkTime('nowMs', options.nowMs);
  if (options.clusterId !== ca.clusterId) {
    throw new PkiError('invalid_argument', `cluster id ${options.clusterId} is not this CA's cluster (${ca.clusterId})`);
  }
  if (options.libp2pPeerId !== undefined) checkPeerId(options.libp2pPeerId);
  const validityMs = options.validityMs ?? DEFAULT_NODE_CERT_VALIDITY_MS;
  if (!Number.isSafeInteger(validityMs) || validityMs < MIN_NODE_CERT_VALIDITY_MS || validityMs > ROOT_CA_VALIDITY_MS) {
    throw new PkiError('invalid_argument', `certificate validity ${validityMs} ms must be between 1 hour and 20 years`);
  }
  const caCert = parseCertificate(ca.certPem, 'root CA certificate');
  const signingKey = await importCASigningKey(ca.keyPem);
  const publicKey = await importNodePublicKey(options.publicKey);
  const ou = roleToOU(options.role);
  // SwarmKit puts the node id and the role in DNS SANs so TLS clients can verify "swarm-manager" as a server name.
  const sans: { type: 'dns' | 'url'; value: string }[] = [
    { type: 'dns', value: options.nodeId },
    { type: 'dns', value: ou },
  ];
  if (options.libp2pPeerId !== undefined) sans.push({ type: 'url', value: PEER_ID_URI_SCHEME + options.libp2pPeerId });
  // Expiry never outlives the CA: a chain check would refuse such a certificate anyway.
  const notAfterMs = Math.min(options.nowMs + validityMs, caCert.notAfter.getTime());
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: newSerialHex(options.random ?? cryptoRandom),
    subject: [{ CN: [options.nodeId] }, { OU: [ou] }, { O: [options.clusterId] }],
    issuer: caCert.subjectName,
    notBefore: new Date(options.nowMs - CERT_BACKDATE_MS),
    notAfter: new Date(notAfterMs),
    signingAlgorithm: SIGNING_ALGORITHM,
    publicKey,
    signingKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(sans),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
    ],
  });
  return cert.toString('pem');
}

/**
 * Checks a node certificate against the cluster's CA at `nowMs` and, when given, against the libp2p peer id
 * the connection authenticated. Returns who the node is; throws PkiError otherwise.
 */
export async function verifyNodeCertificate(
  caCertPem: string,
  certPem: string,
  options: VerifyNodeCertificateOptions,
): Promise<NodeIdentity> {
  checkTime('nowMs', options.nowMs);
  const caCert = parseCertificate(caCertPem, 'root CA certificate');
  const caInfo = await checkRootCA(caCert);
  const cert = parseCertificate(certPem, 'node certificate');

  // The signature decides membership; names alone could be copied by another CA.
  let signedByCA = false;
  try {
    signedByCA = await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true });
  } catch {
    signedByCA = false;
  }
  if (!signedByCA) {
    throw new PkiError(
      'cert_wrong_ca',
      `the node certificate "${cert.subject}" was not issued by this cluster's CA (cluster ${caInfo.clusterId}); ` +
        'the node must leave and join this cluster again with `swarm join --token`',
    );
  }

  const nowDate = new Date(options.nowMs).toISOString();
  if (options.nowMs > caInfo.notAfterMs) {
    throw new PkiError('cert_expired', `this cluster's root CA expired at ${new Date(caInfo.notAfterMs).toISOString()} (now ${nowDate}); the CA must be rotated`);
  }
  if (options.nowMs > cert.notAfter.getTime()) {
    throw new PkiError(
      'cert_expired',
      `the node certificate expired at ${cert.notAfter.toISOString()} (now ${nowDate}); the node must renew it or rejoin the cluster`,
    );
  }
  if (options.nowMs < cert.notBefore.getTime()) {
    throw new PkiError(
      'cert_invalid',
      `the node certificate is not valid before ${cert.notBefore.toISOString()} (now ${nowDate}); check this host's clock`,
    );
  }

  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  if (basic !== null && basic.ca) {
    throw new PkiError('cert_invalid', 'a CA certificate cannot be used as a node certificate');
  }
  const nodeId = singleField(cert.subjectName, 'CN');
  const ou = singleField(cert.subjectName, 'OU');
  const clusterId = singleField(cert.subjectName, 'O');
  const role = ou === undefined ? undefined : ouToRole(ou);
  if (nodeId === undefined || role === undefined || clusterId === undefined) {
    throw new PkiError('cert_invalid', `the node certificate's subject "${cert.subject}" is not CN=<node id>, OU=swarm-manager|swarm-worker, O=<cluster id>`);
  }
  if (clusterId !== caInfo.clusterId) {
    throw new PkiError('cert_invalid', `the node certificate names cluster ${clusterId} but the CA is cluster ${caInfo.clusterId}`);
  }

  const peerIds: string[] = [];
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  for (const name of san?.names.items ?? []) {
    if (name.type === 'url' && name.value.startsWith(PEER_ID_URI_SCHEME)) peerIds.push(name.value.slice(PEER_ID_URI_SCHEME.length));
  }
  if (peerIds.length > 1) {
    throw new PkiError('cert_invalid', 'the node certificate binds more than one libp2p peer id');
  }
  const peerId = peerIds[0];
  if (options.expectedPeerId !== undefined && peerId !== options.expectedPeerId) {
    throw new PkiError(
      'peer_mismatch',
      peerId === undefined
        ? `node ${nodeId}'s certificate binds no libp2p identity, but the connection is from peer ${options.expectedPeerId}`
        : `node ${nodeId}'s certificate is bound to libp2p peer ${peerId}, but the connection is from peer ${options.expectedPeerId}; ` +
            'the certificate belongs to another node',
    );
  }
  return { nodeId, role, clusterId, peerId, notAfterMs: cert.notAfter.getTime(), serialNumber: cert.serialNumber };
}
