// Public surface of @swarm/pki: the cluster's root CA, node certificates bound to libp2p peer ids,
// SWMTKN-1 join tokens and the libp2p private-network key.
export { PkiError, type PkiErrorCode } from './errors.js';
export { cryptoRandom, newId, ID_LENGTH, type RandomBytes } from './random.js';
export {
  createRootCA,
  loadRootCA,
  parseRootCACertificate,
  certificateFingerprint,
  generateNodeKeyPair,
  issueNodeCertificate,
  verifyNodeCertificate,
  roleToOU,
  MANAGER_OU,
  WORKER_OU,
  CA_COMMON_NAME,
  PEER_ID_URI_SCHEME,
  ROOT_CA_VALIDITY_MS,
  DEFAULT_NODE_CERT_VALIDITY_MS,
  MIN_NODE_CERT_VALIDITY_MS,
  CERT_BACKDATE_MS,
  type RootCA,
  type RootCAInfo,
  type NodeRole,
  type NodeKeyPair,
  type NodeIdentity,
  type CreateRootCAOptions,
  type IssueNodeCertificateOptions,
  type VerifyNodeCertificateOptions,
} from './ca.js';
export {
  generateJoinToken,
  createJoinTokens,
  rotateJoinToken,
  parseJoinToken,
  matchJoinToken,
  checkTokenPinsCA,
  TOKEN_PREFIX,
  TOKEN_VERSION,
  TOKEN_FINGERPRINT_LENGTH,
  TOKEN_SECRET_LENGTH,
  type ParsedJoinToken,
  type JoinTokens,
} from './tokens.js';
export { generatePnetKey, derivePnetKey, encodePnetKey, decodePnetKey, PNET_KEY_BYTES } from './pnet.js';
export { generateDataKey, encodeDataKey, decodeDataKey, sealData, openData, DATA_KEY_BYTES } from './data-key.js';
