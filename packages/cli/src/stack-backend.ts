// The stack package's StackBackend over the API client: the store's specs to and from Docker's documents, and
// networks, secrets and configs by name, id and labels.

import { specDocument, toServiceSpec, type ApiClient, type NetworkCreateRequest } from '@swarm/api/client';
import { familiarReference, parseReference, RuntimeError } from '@swarm/runtime';
import { type ExistingService, type StackBackend } from '@swarm/stack';

export function apiStackBackend(client: ApiClient): StackBackend {
  return {
    async listServices() {
      return (await client.listServices(false)).map((d): ExistingService => ({ id: d.ID, version: d.Version.Index, spec: toServiceSpec(d.Spec, d.Spec.Name) }));
    },
    async createService(spec, opts) {
      const { ID, Warnings } = await client.createService(specDocument(spec), { withRegistryAuth: opts.withRegistryAuth, resolveImage: opts.resolveImage !== 'never' });
      return { id: ID, warnings: Warnings ?? [] };
    },
    updateService(id, version, spec, opts) {
      return client.updateService(id, specDocument(spec), version, { withRegistryAuth: opts.withRegistryAuth, resolveImage: opts.resolveImage !== 'never' });
    },
    removeService: (id) => client.removeService(id),
    async listNetworks() {
      return (await client.listNetworks()).map((n) => ({ id: n.Id, name: n.Name, labels: n.Labels }));
    },
    async createNetwork(spec) {
      const request: NetworkCreateRequest = { Name: spec.name, Driver: spec.driver, Internal: spec.internal, Attachable: spec.attachable, Labels: spec.labels };
      if (Object.keys(spec.driverOptions).length > 0) request.Options = spec.driverOptions;
      if (spec.ipam.configs.length > 0) {
        request.IPAM = {
          Driver: spec.ipam.driver,
          Config: spec.ipam.configs.map((c) => ({ ...(c.subnet !== '' ? { Subnet: c.subnet } : {}), ...(c.gateway !== '' ? { Gateway: c.gateway } : {}), ...(c.range !== '' ? { IPRange: c.range } : {}) })),
        };
      }
      return (await client.createNetwork(request)).Id;
    },
    removeNetwork: (id) => client.removeNetwork(id),
    checkImage(image) {
      try {
        parseReference(image);
        return null;
      } catch (err) {
        if (err instanceof RuntimeError) return err.message;
        throw err;
      }
    },
    // As the daemon pins a service's image: the familiar reference with its tag (checkImage ran first).
    imageName: (image) => familiarReference({ ...parseReference(image), digest: null }),
    secrets: {
      list: async () => (await client.listSecrets()).map((d) => ({ id: d.ID, name: d.Spec.Name, labels: d.Spec.Labels })),
      create: (spec) => client.createSecret(spec.name, spec.data, spec.labels),
      remove: (id) => client.removeSecret(id),
    },
    configs: {
      list: async () => (await client.listConfigs()).map((d) => ({ id: d.ID, name: d.Spec.Name, labels: d.Spec.Labels, data: Buffer.from(d.Spec.Data, 'base64') })),
      create: (spec) => client.createConfig(spec.name, spec.data, spec.labels),
      remove: (id) => client.removeConfig(id),
    },
  };
}
