// Public surface of @swarm/manager: the reconcilers only the Raft leader runs. Each is a function of a store
// snapshot to the ops of one transaction; they never call each other and meet only in the store.
export {};
