// SPDX-License-Identifier: Apache-2.0
/**
 * Policy-based routing in the client's netns: the forwarder's pbr element (`server.ts`) and the
 * pure mapping from `ip_context.policies` to ip rules and tables (`plan.ts`).
 */
export { type PbrPolicy, type PbrRoute, pbrPolicies, sameSelectors } from "./plan.js";
export { type PolicyRoutesServerOptions, policyRoutesServer } from "./server.js";
