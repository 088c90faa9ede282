// Whatever a (validated or not) model holds, the converter answers with a spec or a StackError naming a key:
// never a TypeError. fast-check puts arbitrary values under every key the converter reads.

import test from 'ava';
import fc from 'fast-check';
import { convertStack, StackError, type ComposeModel } from '../src/index.js';

const SERVICE_KEYS = [
  'image', 'command', 'entrypoint', 'environment', 'env_file', 'labels', 'hostname', 'user', 'working_dir', 'stop_grace_period',
  'stop_signal', 'init', 'read_only', 'cap_add', 'cap_drop', 'tmpfs', 'healthcheck', 'ports', 'networks', 'volumes', 'secrets',
  'configs', 'deploy', 'restart', 'ulimits', 'build',
];
const DEPLOY_KEYS = ['mode', 'replicas', 'labels', 'endpoint_mode', 'placement', 'resources', 'restart_policy', 'update_config', 'rollback_config'];

const value = fc.oneof(
  fc.anything({ maxDepth: 3 }),
  fc.constantFrom('8080:80', '1m30s', '512M', 'data:/data', '/x', 'front', 's', { target: 80 }, { type: 'volume', source: 'data', target: '/d' }, ['CMD', 'true'], null),
);

const model = fc.record({
  svc: fc.dictionary(fc.constantFrom(...SERVICE_KEYS), value, { maxKeys: 6 }),
  deploy: fc.dictionary(fc.constantFrom(...DEPLOY_KEYS), value, { maxKeys: 4 }),
  networks: fc.oneof(fc.constant(undefined), fc.dictionary(fc.constantFrom('front', 'default'), value, { maxKeys: 2 })),
  volumes: fc.oneof(fc.constant(undefined), fc.dictionary(fc.constantFrom('data'), value, { maxKeys: 1 })),
  secrets: fc.oneof(fc.constant(undefined), fc.dictionary(fc.constantFrom('s'), value, { maxKeys: 1 })),
});

test('arbitrary values under every key give a spec or a StackError, never another error', (t) => {
  fc.assert(
    fc.property(model, (m) => {
      const svc: Record<string, unknown> = { image: 'x', ...m.svc };
      if (Object.keys(m.deploy).length > 0 && svc['deploy'] === undefined) svc['deploy'] = m.deploy;
      const compose = { services: { web: svc }, networks: m.networks, volumes: m.volumes, secrets: m.secrets } as unknown as ComposeModel;
      try {
        convertStack('shop', compose, { workingDir: '/nowhere', readFile: () => Buffer.from('x') });
      } catch (err) {
        if (!(err instanceof StackError)) throw err;
        if (err.message.includes('\n')) throw new Error(`a multi-line message: ${err.message}`);
      }
    }),
    { numRuns: 3000 },
  );
  t.pass();
});
