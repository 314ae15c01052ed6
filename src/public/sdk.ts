// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm-ts/sdk`: the public SDK, for writing your own endpoints, clients and chains.
 *
 * The surface is this explicit list; everything else in the package is internal and may change.
 *
 * - **Run a process** as upstream's cmds do, configured by the same `NSM_*` environment, with
 *   your own elements in the chain: {@link runEndpoint}, {@link runClient}.
 * - **Write an element**: an object with `request(req, ctx, next)` and `close(conn, ctx, next)`
 *   ({@link NetworkServiceElement}); compose with {@link chain}.
 * - **Build chains** in process: {@link createEndpoint}, {@link createClient}, with the standard
 *   elements below in their `additional` slots.
 * - **The wire API** types (generated from NSM's .proto files): {@link Connection},
 *   {@link NetworkServiceRequest}, {@link IPContext}, {@link DNSContext}…, built with
 *   {@link create} and their `…Schema`.
 * - **Errors**: {@link NsmError} with a gRPC {@link Code}.
 * - **Testing**: {@link createSandbox}, a registry, nodes, endpoints and clients in one process.
 *
 * A custom endpoint in about 30 lines is in `examples/sdk/endpoint`; one composed from the
 * standard pieces ({@link createEndpoint} with {@link onIdleServer}, {@link point2pointIpamServer},
 * {@link clientAddressesServer}, {@link mechanismsServer} and an element of your own), run in the
 * {@link createSandbox | sandbox}, in `examples/sdk/compose`.
 *
 * @packageDocumentation
 */

// --- The wire API (generated from NSM's .proto files)
export {
  Cls,
  type Connection,
  type ConnectionContext,
  type ConnectionEvent,
  ConnectionEventType,
  ConnectionSchema,
  clone,
  create,
  DEFAULT_NETNS_URL,
  type DNSConfig,
  DNSConfigSchema,
  type DNSContext,
  DNSContextSchema,
  type EthernetContext,
  type ExtraPrefixRequest,
  type IPContext,
  type IpFamily,
  IpFamily_Family,
  type IpNeighbor,
  type Mechanism,
  MechanismType,
  type MonitorScopeSelector,
  type NetworkServiceRequest,
  NetworkServiceRequestSchema,
  newMechanism,
  type Path,
  type PathSegment,
  Payload,
  type PolicyRoute,
  type Route,
  RouteSchema,
  /** The registry wire API: NetworkService and NetworkServiceEndpoint records, queries, matches. */
  registry,
  State,
} from "../api/index.js";
// --- Running processes configured by NSM_* env, with your elements
export { type RunClientOptions, runClient } from "../cmd/nsc.js";
export { type RunEndpointOptions, runEndpoint } from "../cmd/nse.js";
// --- Elements and chains: the core
export type {
  NetworkServiceClient,
  NetworkServiceElement,
  NetworkServiceHandler,
  NetworkServiceServer,
} from "../sdk/core/chain.js";
export { bind, chain, passThrough, tail } from "../sdk/core/chain.js";
export { CallContext, type CallContextInit, type ContextKey, createContextKey } from "../sdk/core/context.js";
// --- Errors
export { Code, NsmError, type NsmErrorOptions } from "../sdk/core/errors.js";
export { type LogFn, type Logger, type LogLevel, silentLogger } from "../sdk/core/logger.js";
// --- Standard chains
export { type ClientOptions, createClient } from "../sdk/networkservice/chains/client/index.js";
export {
  createEndpoint,
  type Endpoint,
  type EndpointOptions,
  type MonitorConnectionService,
} from "../sdk/networkservice/chains/endpoint/index.js";
export {
  type AwarenessGroups,
  type AwarenessKey,
  awarenessGroupOf,
  parseAwarenessGroups,
} from "../sdk/networkservice/common/awarenessgroups/index.js";
// --- Standard elements for the `additional` slots
export { type ClientInfoOptions, clientInfoClient } from "../sdk/networkservice/common/clientinfo/index.js";
export {
  CREATED_BY_LABEL,
  type CreatePodOptions,
  createPodServer,
  NODE_NAME_LABEL,
  type PodLauncher,
  type PodManifest,
  type ReapOptions,
  reapCompletedPods,
  renderPod,
  type SuppliedPod,
} from "../sdk/networkservice/common/createpod/index.js";
export {
  DnsConfigStore,
  type DnsContextClientOptions,
  type DnsContextServerOptions,
  DnsProxy,
  type DnsProxyOptions,
  type DnsServer,
  dnsContextClient,
  dnsContextServer,
  parseDnsConfigs,
} from "../sdk/networkservice/common/dnscontext/index.js";
export {
  EXCLUDED_PREFIXES_FILE,
  type ExcludedPrefixesClientOptions,
  type ExcludedPrefixesServerOptions,
  excludedPrefixesClient,
  excludedPrefixesServer,
} from "../sdk/networkservice/common/excludedprefixes/index.js";
export {
  ClientAddresses,
  clientAddressesServer,
  type HttpReverseProxy,
  type HttpReverseProxyOptions,
  httpReverseProxy,
} from "../sdk/networkservice/common/httpgateway/index.js";
export {
  type KernelMechanismOptions,
  kernelMechanismClient,
  kernelMechanismServer,
} from "../sdk/networkservice/common/kernelmechanism/index.js";
export {
  type MechanismElements,
  mechanismsClient,
  mechanismsServer,
} from "../sdk/networkservice/common/mechanisms/index.js";
export { ConnectionMonitor } from "../sdk/networkservice/common/monitor/index.js";
export { type OnIdleOptions, onIdleServer } from "../sdk/networkservice/common/onidle/index.js";
export {
  type Point2PointIpamOptions,
  point2pointIpamServer,
} from "../sdk/networkservice/common/point2pointipam/index.js";
export {
  type PolicyRoutesSource,
  parsePolicyRoutes,
  policyRouteServer,
  watchPolicyRoutes,
} from "../sdk/networkservice/common/policyroute/index.js";
export { type StrictIpamOptions, strictIpamServer } from "../sdk/networkservice/common/strictipam/index.js";
// --- Registries, as the testing sandbox exposes them
export type { NseRegistry, NsRegistry } from "../sdk/registry/api.js";
// --- Testing
export {
  type ClientSpec,
  createSandbox,
  type EndpointSpec,
  RestartableServer,
  type Sandbox,
  type SandboxNode,
  type SandboxOptions,
} from "../sdk/testing/sandbox.js";
// --- Tools and logging
export { generateInterfaceName } from "../sdk/tools/ifname.js";
export { createLogger, type LoggerOptions } from "../sdk/tools/logger.js";
