// Loads @peculiar/x509 with the Reflect polyfill its dependency injection (tsyringe) needs, bound to Node's
// WebCrypto. Every module of this package imports X.509 from here so the polyfill is evaluated first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
