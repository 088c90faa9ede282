// The store's own tests use the same builders other packages import as `@swarm/store/testing`.
export * from '../src/testing.js';
