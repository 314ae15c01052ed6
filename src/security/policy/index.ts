// SPDX-License-Identifier: Apache-2.0
/**
 * Authorization policies: the seven upstream defaults as TypeScript predicates, their
 * selection by upstream file masks (env vars), user policy modules, and the check itself.
 */
export {
  BUILTIN_POLICIES,
  monitorServiceConnection,
  nextTokenSigned,
  prevTokenSigned,
  registryClientAllowed,
  tokensChained,
  tokensExpired,
  tokensValid,
} from "./builtin.js";
export type { LoadPoliciesOptions } from "./load.js";
export { builtinPolicies, DEFAULT_POLICY_MASKS, loadPolicies, parsePolicyList } from "./load.js";
export type { Policy, PolicyInput, PolicyPathSegment } from "./policy.js";
export { checkPolicies, PERMISSION_DENIED_MESSAGE, toOpaInput } from "./policy.js";
