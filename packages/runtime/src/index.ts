// Public surface of @swarm/runtime: the Runtime interface and its implementations.
export {};
