// SPDX-License-Identifier: Apache-2.0
/**
 * Policy-based routing handed out by endpoints: the policyroute server element, the config
 * file format of `NSM_PBR_CONFIG_PATH` and its watcher, and the policy field parsers the
 * kernel element shares.
 */
export { DEFAULT_PBR_CONFIG_PATH, parsePolicyRoutes } from "./config.js";
export { type PolicyRoutesSource, watchPolicyRoutes } from "./file.js";
export {
  checkPolicyRoute,
  type PolicyPortRange,
  parseIpProto,
  parsePolicyFrom,
  parsePortRange,
} from "./policy.js";
export { policyRouteServer } from "./server.js";
