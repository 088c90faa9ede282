// Image references as Docker reads them (`busybox`, `host:5000/team/app:v1`, `app@sha256:…`): parsing, Docker's
// normalisation (docker.io, library/, latest), the canonical form the store keys on and the short form users see.

import { RuntimeError } from '../runtime.js';

export const DOCKER_HUB = 'docker.io';
export const DEFAULT_TAG = 'latest';

/** A parsed, normalised reference: registry and repository always set; a tag, a digest, or both. */
export interface ImageReference {
  /** `docker.io`, `quay.io`, `127.0.0.1:5000`. */
  readonly registry: string;
  /** `library/busybox`, `team/app`. */
  readonly repository: string;
  /** null only when the reference names a digest and no tag. */
  readonly tag: string | null;
  /** `sha256:<64 hex>` or null. */
  readonly digest: string | null;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const TAG = /^[\w][\w.-]{0,127}$/;
// One path component: lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-` (distribution's grammar).
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PORT = /^[0-9]+$/;
const MAX_NAME_CHARS = 255;

export function isDigest(s: string): boolean {
  return DIGEST.test(s);
}

function bad(reference: string, why: string): RuntimeError {
  return new RuntimeError('invalid_config', `invalid image reference "${reference}": ${why}`);
}

function checkDomain(reference: string, domain: string): void {
  let host = domain;
  const ipv6 = /^\[([0-9a-fA-F:.]+)\](?::([0-9]+))?$/.exec(domain);
  if (ipv6 !== null) return;
  const colon = domain.lastIndexOf(':');
  if (colon >= 0) {
    const port = domain.slice(colon + 1);
    if (!PORT.test(port) || Number(port) > 65535) throw bad(reference, `"${port}" is not a port number`);
    host = domain.slice(0, colon);
  }
  if (host === '' || !host.split('.').every((c) => DOMAIN_COMPONENT.test(c))) {
    throw bad(reference, `"${domain}" is not a registry host name`);
  }
}

/** Docker's rule: the first component is a registry when it has a `.` or a `:`, or is `localhost`. */
function looksLikeRegistry(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[');
}

/** Parses and normalises; throws RuntimeError('invalid_config') naming the reference and what is wrong. */
export function parseReference(reference: string): ImageReference {
  if (reference === '') throw bad(reference, 'it is empty (give an image like busybox or busybox:1.36)');
  if (reference.trim() !== reference) throw bad(reference, 'it has leading or trailing spaces');
  let rest = reference;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(reference, `"${digest}" is not a digest (sha256: followed by 64 lowercase hex digits)`);
  }
  let tag: string | null = null;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(reference, `"${tag}" is not a tag (letters, digits, _ . -, at most 128, not starting with . or -)`);
  }
  if (rest === '') throw bad(reference, 'it has no repository name');
  let registry = DOCKER_HUB;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0 && looksLikeRegistry(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    path = rest.slice(slash + 1);
    checkDomain(reference, registry);
    if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  }
  if (path === '') throw bad(reference, 'it has no repository name after the registry');
  if (path.toLowerCase() !== path) throw bad(reference, 'repository name must be lowercase');
  for (const c of path.split('/')) {
    if (!PATH_COMPONENT.test(c)) {
      throw bad(reference, `"${c}" is not a valid name component (lowercase letters, digits, separated by . _ __ or -)`);
    }
  }
  if (/^[a-f0-9]{64}$/.test(path)) throw bad(reference, 'a repository name cannot be a 64-character hexadecimal string');
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  if (registry.length + 1 + path.length > MAX_NAME_CHARS) throw bad(reference, `the name is longer than ${MAX_NAME_CHARS} characters`);
  if (tag === null && digest === null) tag = DEFAULT_TAG;
  return { registry, repository: path, tag, digest };
}

/** `registry/repository`, the name without tag or digest. */
export function repositoryName(ref: Pick<ImageReference, 'registry' | 'repository'>): string {
  return `${ref.registry}/${ref.repository}`;
}

/** `docker.io/library/busybox:latest`, `host:5000/app@sha256:…`, or both `:tag@digest`. */
export function canonicalReference(ref: ImageReference): string {
  let s = repositoryName(ref);
  if (ref.tag !== null) s += `:${ref.tag}`;
  if (ref.digest !== null) s += `@${ref.digest}`;
  return s;
}

/** Docker's familiar name for display: `docker.io/library/busybox` -> `busybox`, `docker.io/me/app` -> `me/app`. */
export function familiarName(ref: Pick<ImageReference, 'registry' | 'repository'>): string {
  if (ref.registry !== DOCKER_HUB) return repositoryName(ref);
  return ref.repository.startsWith('library/') && ref.repository.indexOf('/', 8) < 0 ? ref.repository.slice(8) : ref.repository;
}

/** `busybox:latest`, `127.0.0.1:5000/app@sha256:…`. */
export function familiarReference(ref: ImageReference): string {
  let s = familiarName(ref);
  if (ref.tag !== null) s += `:${ref.tag}`;
  if (ref.digest !== null) s += `@${ref.digest}`;
  return s;
}

/** The same repository with another tag or digest. */
export function withTag(ref: ImageReference, tag: string): ImageReference {
  return { registry: ref.registry, repository: ref.repository, tag, digest: null };
}

export function withDigest(ref: ImageReference, digest: string): ImageReference {
  return { registry: ref.registry, repository: ref.repository, tag: null, digest };
}
