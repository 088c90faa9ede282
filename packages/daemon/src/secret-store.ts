// Secrets and configs on the manager side: sealing a secret's bytes under the cluster's data key before they go to
// Raft, which services use which, and a service's references resolved from names to ids (as the store keeps them).

import { ApiError } from '@swarm/api';
import { openData, sealData } from '@swarm/pki';
import type { Config, Secret, Service, ServiceSpec } from '@swarm/store';
import { assert } from './errors.js';

/** What a sealed secret is bound to: moved onto another object, it does not open. */
export function secretContext(id: string): string {
  assert(id !== '', 'a secret has an id');
  return `secret/${id}`;
}

export function sealSecret(dataKey: Uint8Array, id: string, plaintext: Uint8Array): Uint8Array {
  return sealData(dataKey, plaintext, secretContext(id));
}

export function openSecret(dataKey: Uint8Array, secret: Secret): Uint8Array {
  return openData(dataKey, secret.spec.data, secretContext(secret.id));
}

/** Names of the services whose spec uses the secret or config, sorted. */
export function servicesUsing(kind: 'secret' | 'config', id: string, services: readonly Service[]): string[] {
  return services
    .filter((s) => {
      const c = s.spec.taskTemplate.containerSpec;
      return kind === 'secret' ? (c.secrets ?? []).some((r) => r.secretId === id) : (c.configs ?? []).some((r) => r.configId === id);
    })
    .map((s) => s.spec.name)
    .sort();
}

/** Docker's refusal of `secret rm` / `config rm` while services use it, naming them. */
export function inUseError(kind: 'secret' | 'config', name: string, users: readonly string[]): ApiError {
  assert(users.length > 0, 'in use by someone');
  return new ApiError('conflict', `${kind} '${name}' is in use by the following service${users.length === 1 ? '' : 's'}: ${users.join(', ')}`);
}

function resolveOne<T extends Secret | Config>(kind: 'secret' | 'config', objects: readonly T[], id: string, name: string, field: string): T {
  // An id given with the name must name the same object (Docker's clients send both); else the name decides.
  const byId = id === '' ? undefined : objects.find((o) => o.id === id);
  if (id !== '' && byId === undefined) throw new ApiError('invalid_argument', `${field}.${kind === 'secret' ? 'SecretID' : 'ConfigID'}: ${kind} ${id} not found`);
  const found = byId ?? objects.find((o) => o.spec.name === name);
  if (found === undefined) {
    throw new ApiError('invalid_argument', `${field}.${kind === 'secret' ? 'SecretName' : 'ConfigName'}: ${kind} not found: ${name} (create it first: \`swarm ${kind} create ${name} FILE\`)`);
  }
  if (found.spec.name !== name) throw new ApiError('invalid_argument', `${field}: ${kind} ${found.id} is named ${found.spec.name}, not ${name}`);
  return found;
}

/** Fills in each reference's id from its name (in place); an unknown name is invalid_argument naming the field. */
export function resolveServiceFiles(spec: ServiceSpec, secrets: readonly Secret[], configs: readonly Config[]): void {
  const c = spec.taskTemplate.containerSpec;
  c.secrets = (c.secrets ?? []).map((r, i) => ({ ...r, secretId: resolveOne('secret', secrets, r.secretId, r.secretName, `TaskTemplate.ContainerSpec.Secrets[${i}]`).id }));
  c.configs = (c.configs ?? []).map((r, i) => ({ ...r, configId: resolveOne('config', configs, r.configId, r.configName, `TaskTemplate.ContainerSpec.Configs[${i}]`).id }));
}
