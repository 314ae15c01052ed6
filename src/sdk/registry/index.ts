// SPDX-License-Identifier: Apache-2.0
/**
 * The registry SDK: elements written once for the NS and NSE registries, the standard chains
 * (memory registry, nsmgr, client); their gRPC serving and clients are re-exported from ../grpc.
 */

export type { Registries } from "../grpc/registry.js";
export { registryClients, serveRegistry } from "../grpc/registry.js";
export type { NseRegistry, NsRegistry } from "./api.js";
export type { RegistryClientOptions } from "./chains/client/index.js";
export { registryClient } from "./chains/client/index.js";
export type { MemoryRegistryOptions } from "./chains/memory/index.js";
export { memoryRegistry } from "./chains/memory/index.js";
export type { NsmgrRegistryOptions } from "./chains/nsmgr/index.js";
export { nsmgrRegistry } from "./chains/nsmgr/index.js";
export type { RegistryChains, RegistrySecurity } from "./chains/slots.js";
export type {
  RegistrationState,
  RegistryEventFactory,
  RegistryEventOptions,
  RegistryRegisterEventOptions,
} from "./common/begin/index.js";
export {
  DEFAULT_REGISTRY_EVENT_TIMEOUT_MS,
  isRegistryEvent,
  registryBegin,
  registryEventFactoryOf,
} from "./common/begin/index.js";
export type { RegistryClientInfoOptions } from "./common/clientinfo/index.js";
export { registryClientInfo } from "./common/clientinfo/index.js";
export { registryConnect } from "./common/connect/index.js";
export type { RegistryExpireOptions } from "./common/expire/index.js";
export { DEFAULT_NSE_EXPIRATION_MS, registryExpire } from "./common/expire/index.js";
export type { RegistryHealOptions } from "./common/heal/index.js";
export { DEFAULT_HEAL_RETRY_INTERVAL_MS, registryHeal } from "./common/heal/index.js";
export { registryLocalBypass } from "./common/localbypass/index.js";
export type { RegistryMemoryOptions } from "./common/memory/index.js";
export { DEFAULT_MAX_PENDING_EVENTS, registryMemory } from "./common/memory/index.js";
export type { RegistryRefreshOptions } from "./common/refresh/index.js";
export { DEFAULT_REFRESH_RETRY_INTERVAL_MS, registryRefresh } from "./common/refresh/index.js";
export { DEFAULT_NS_PAYLOAD, registrySetPayload } from "./common/setpayload/index.js";
export { registrySetRegistrationTime } from "./common/setregistrationtime/index.js";
export { nsmUrlProblem, registryValidation } from "./common/validation/index.js";
export type {
  NseTypes,
  NsTypes,
  QueryOf,
  RecordOf,
  RegistryClient,
  RegistryElement,
  RegistryHandler,
  RegistryKind,
  RegistryTypes,
  ResponseOf,
} from "./core/index.js";
export {
  bindRegistry,
  collectRecords,
  matchNetworkService,
  matchNetworkServiceEndpoint,
  nseKind,
  nseRegistryFromChain,
  nsKind,
  nsRegistryFromChain,
  registryChain,
  registryPassThrough,
  registryServerToClient,
  registryTail,
} from "./core/index.js";
