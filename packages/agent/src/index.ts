// Public surface of @swarm/agent: the per-node task runner driven by the dispatcher's assignments.
export {
  Agent,
  DEFAULT_HEALTH_INTERVAL_MS,
  DEFAULT_HEALTH_RETRIES,
  DEFAULT_HEALTH_TIMEOUT_MS,
  DEFAULT_MAX_CONCURRENT_STARTS,
  healthCommand,
  type HealthCheck,
  DEFAULT_MAX_REPORT_BATCH,
  DEFAULT_MAX_TASKS,
  type AgentOptions,
  type TaskStatusUpdate,
} from './agent.js';
