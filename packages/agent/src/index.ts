// Public surface of @swarm/agent: the per-node task runner driven by the dispatcher's assignments.
export {};
