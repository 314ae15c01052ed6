// SPDX-License-Identifier: Apache-2.0
/**
 * Registry core: kinds (NS vs NSE), chain composition and adapters. Elements written against
 * these types serve both registries.
 */

export { collectRecords, nseRegistryFromChain, nsRegistryFromChain, registryServerToClient } from "./adapters.js";
export type { RegistryClient, RegistryElement, RegistryHandler } from "./chain.js";
export {
  bindRegistry,
  registryChain,
  registryPassThrough,
  registryTail,
} from "./chain.js";
export type { NseTypes, NsTypes, QueryOf, RecordOf, RegistryKind, RegistryTypes, ResponseOf } from "./kind.js";
export {
  matchNetworkService,
  matchNetworkServiceEndpoint,
  nseKind,
  nsKind,
} from "./kind.js";
