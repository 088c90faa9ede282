// Public surface of @swarm/gossip: the SWIM state machine, its messages, the libp2p host and membership.
// Everything else in src/ is internal.
export * from './messages.js';
export * from './swim.js';
export * from './host.js';
export * from './membership.js';
