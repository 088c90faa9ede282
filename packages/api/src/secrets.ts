// Secrets and configs in Docker's Engine API shapes: the create request's schema and checks (name rule, 500 KB),
// the documents (a secret's never carries its data; a config's carries it in base64, as Docker's), `ls` filters,
// and resolving a user's reference (id, name, unique id prefix).

import type { Config, Labels, Secret } from '@swarm/store';
import { ApiError } from './errors.js';

/** Docker's (SwarmKit's) bound on a secret's or config's data. */
export const MAX_SECRET_BYTES = 500 * 1024;
/** The request body of a create: the data in base64 (4/3 of it) and the rest. */
export const MAX_SECRET_REQUEST_BYTES = 1024 * 1024;
/** SwarmKit's rule for secret and config names. */
export const SECRET_NAME_PATTERN = /^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$/;
export const MAX_SECRET_NAME_LENGTH = 64;
/** Bound on ids listed in an "ambiguous" message. */
const MAX_IDS_IN_MESSAGE = 5;

export type FileObjectKind = 'secret' | 'config';

/** `POST /secrets/create`, `POST /configs/create`: Docker's SecretSpec / ConfigSpec. */
export interface SecretCreateRequest {
  Name: string;
  Labels?: Record<string, string>;
  /** The data, base64-encoded (Docker's). */
  Data: string;
}

export type ConfigCreateRequest = SecretCreateRequest;

/** The request as the backend takes it: the name checked, the data decoded and within the bound. */
export interface FileObjectSpec {
  name: string;
  labels: Labels;
  data: Uint8Array;
}

/** Docker's Secret document: never the data. */
export interface SecretDocument {
  ID: string;
  Version: { Index: number };
  CreatedAt: string;
  UpdatedAt: string;
  Spec: { Name: string; Labels: Record<string, string> };
}

/** Docker's Config document: the data in base64 (configs are not secret). */
export interface ConfigDocument {
  ID: string;
  Version: { Index: number };
  CreatedAt: string;
  UpdatedAt: string;
  Spec: { Name: string; Labels: Record<string, string>; Data: string };
}

/** Filters of `secret ls` / `config ls` (Docker's `filters` query, decoded): each list is OR'ed, the kinds AND'ed. */
export interface FileObjectFilters {
  id?: string[];
  name?: string[];
  /** `key` or `key=value`. */
  label?: string[];
}

const stringMap = { type: 'object', maxProperties: 256, propertyNames: { type: 'string', minLength: 1, maxLength: 1024, pattern: '^[^=]+$' }, additionalProperties: { type: 'string', maxLength: 4096 } } as const;

export const secretCreateSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['Name', 'Data'],
  properties: {
    Name: { type: 'string', maxLength: 1024 },
    Labels: stringMap,
    Data: { type: 'string', maxLength: MAX_SECRET_REQUEST_BYTES },
  },
} as const;

export const fileObjectParamsSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;

export const fileObjectListQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { filters: { type: 'string', maxLength: 65536 } },
} as const;

/** Docker's message, with the kind. */
export function checkSecretName(kind: FileObjectKind, name: string): void {
  if (name.length === 0 || name.length > MAX_SECRET_NAME_LENGTH || !SECRET_NAME_PATTERN.test(name)) {
    throw new ApiError(
      'invalid_argument',
      `Name: invalid ${kind} name ${JSON.stringify(name)}: only ${MAX_SECRET_NAME_LENGTH} [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]`,
    );
  }
}

/** Strict base64 (the standard alphabet, padded as encoders pad it): a typo must not silently drop bytes. */
function decodeBase64(text: string): Uint8Array | null {
  const clean = text.replace(/\s+/g, '');
  if (clean.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) return null;
  return new Uint8Array(Buffer.from(clean, 'base64'));
}

/** A create request as the backend takes it; ApiError('invalid_argument') naming the field otherwise. */
export function toFileObjectSpec(kind: FileObjectKind, request: SecretCreateRequest): FileObjectSpec {
  checkSecretName(kind, request.Name);
  const data = decodeBase64(request.Data);
  if (data === null) throw new ApiError('invalid_argument', `Data: the ${kind}'s data is not valid base64`);
  if (data.length === 0) throw new ApiError('invalid_argument', `Data: a ${kind} needs data (it is empty)`);
  if (data.length > MAX_SECRET_BYTES) {
    throw new ApiError('invalid_argument', `Data: ${kind} data must be larger than 0 and less than ${MAX_SECRET_BYTES} bytes (it is ${data.length})`);
  }
  return { name: request.Name, labels: { ...(request.Labels ?? {}) }, data };
}

const time = (ms: number): string => new Date(ms).toISOString();

/** What `inspect` shows of a secret: never its data. */
export function secretDocument(s: Secret): SecretDocument {
  return {
    ID: s.id,
    Version: { Index: s.meta.version.index },
    CreatedAt: time(s.meta.createdAtMs),
    UpdatedAt: time(s.meta.updatedAtMs),
    Spec: { Name: s.spec.name, Labels: { ...s.spec.labels } },
  };
}

/** A config's document: a secret's, with its data in base64 (configs are not secret, as Docker's). */
export function configDocument(c: Config): ConfigDocument {
  const doc = secretDocument(c);
  return { ...doc, Spec: { ...doc.Spec, Data: Buffer.from(c.spec.data).toString('base64') } };
}

/** Docker's `filters` query (`{"name":["db"]}`, or `{"name":{"db":true}}` as older clients send it). */
export function parseFileObjectFilters(text: string | undefined): FileObjectFilters {
  if (text === undefined || text === '') return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ApiError('invalid_argument', 'filters: not JSON (expected {"name":["..."]})');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ApiError('invalid_argument', 'filters: expected an object such as {"name":["..."]}');
  const out: FileObjectFilters = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (key !== 'id' && key !== 'name' && key !== 'label') throw new ApiError('invalid_argument', `filters: invalid filter ${JSON.stringify(key)} (id, name and label are)`);
    const list = Array.isArray(value) ? value : typeof value === 'object' && value !== null ? Object.keys(value) : null;
    if (list === null || !list.every((v): v is string => typeof v === 'string')) throw new ApiError('invalid_argument', `filters.${key}: expected a list of strings`);
    out[key] = list;
  }
  return out;
}

/** Docker's matching: id and name by prefix, label by key (any value) or key=value. */
export function matchesFilters(o: { id: string; spec: { name: string; labels: Labels } }, f: FileObjectFilters): boolean {
  if (f.id !== undefined && f.id.length > 0 && !f.id.some((p) => o.id.startsWith(p))) return false;
  if (f.name !== undefined && f.name.length > 0 && !f.name.some((p) => o.spec.name.startsWith(p))) return false;
  for (const l of f.label ?? []) {
    const eq = l.indexOf('=');
    const key = eq < 0 ? l : l.slice(0, eq);
    const value = o.spec.labels[key];
    if (value === undefined || (eq >= 0 && value !== l.slice(eq + 1))) return false;
  }
  return true;
}

/** `ls` order: by name (names are unique). */
export function sortByName<T extends { id: string; spec: { name: string } }>(objects: readonly T[]): T[] {
  return [...objects].sort((a, b) => a.spec.name.localeCompare(b.spec.name) || (a.id < b.id ? -1 : 1));
}

/** Docker's order: an exact id, then an exact name, then a unique id prefix; nothing is `KIND REF not found`. */
export function resolveFileObject<T extends { id: string; spec: { name: string } }>(kind: FileObjectKind, objects: readonly T[], ref: string): T {
  if (ref === '') throw new ApiError('invalid_argument', `a ${kind} id, id prefix or name is needed`);
  const exact = objects.find((o) => o.id === ref) ?? objects.find((o) => o.spec.name === ref);
  if (exact !== undefined) return exact;
  const prefixed = objects.filter((o) => o.id.startsWith(ref));
  if (prefixed.length === 1 && prefixed[0] !== undefined) return prefixed[0];
  if (prefixed.length > 1) {
    const ids = prefixed.slice(0, MAX_IDS_IN_MESSAGE).map((o) => `${o.id} (${o.spec.name})`);
    throw new ApiError('ambiguous', `${kind} id prefix ${ref} is ambiguous: it matches ${prefixed.length} ${kind}s (${ids.join(', ')}${prefixed.length > MAX_IDS_IN_MESSAGE ? ', ...' : ''}); give more characters or the name`);
  }
  throw new ApiError('not_found', `${kind} ${ref} not found`);
}
