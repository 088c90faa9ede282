// Public surface of @swarm/netdriver: the TaskNetworking interface the agent uses, the overlay driver (kernel
// VXLAN data plane), the endpoint tables and their gossip. Everything else in src/ is internal.
export { ENCRYPTED_OPTION, HOST_NETWORK, VXLANID_OPTION, type TaskNetworking } from './networking.js';
export { EmbeddedDns, resolveName, upstreamServers, type EmbeddedDnsOptions } from './dns.js';
export { OverlayDriver, DEFAULT_DATA_PATH_PORT, DEFAULT_GATEWAY_SUBNET, GATEWAY_BRIDGE, VXLAN_OVERHEAD_BYTES, type OverlayDriverOptions, type PublishedPort, type TaskNames } from './overlay.js';
export { EndpointTable, macForIp, MAX_ENDPOINTS_PER_TABLE, type Circuit, type Endpoint, type PublishedTable, type RemoteEndpoint } from './endpoints.js';
export { EndpointGossip, endpointTopic, parseMessage, DEFAULT_REPUBLISH_MS, ENDPOINT_TOPIC_PREFIX, type EndpointGossipOptions, type EndpointSource } from './gossip.js';
export { NetError, type NetErrorCode } from './errors.js';
export { NetnsDir, ipBatch, bridgeBatch, inNetns, destroyNetState, type Netns } from './netns.js';
export { runTool, systemTool, type ToolOptions, type ToolResult } from './tool.js';
export * from './ipam.js';
export { lbRuleset, vipBackends, LB_TABLE, type VipBackends } from './vip.js';
export { portClash, publishRuleset, PUBLISH_TABLE, type HostPort } from './publish.js';
export { hostIngressRuleset, ingressBackends, sandboxRuleset, INGRESS_ENDPOINT_NAME, INGRESS_SANDBOX, INGRESS_TABLE, type IngressBackends, type IngressConfig, type IngressPort, type IngressService } from './ingress.js';
export { capacityFromLoad, chooseExpression, endpointWeight, FULL_WEIGHT, type WeightedBackend } from './balance.js';
