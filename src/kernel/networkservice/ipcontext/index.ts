// SPDX-License-Identifier: Apache-2.0
/**
 * The IP context of a connection as per-netns plans (`plan.ts`: pure, what each pod's interface
 * should hold) and their programming through the KernelApi (`apply.ts`: a diff at a time).
 */
export type { IpDiff, IpPlan, IpRoute, NeighborPlan, RoutePlan } from "./plan.js";
export {
  clientIpPlan,
  diffIpPlans,
  dstIpRoutes,
  dstRoutesWithExplicitNextHop,
  endpointIpPlan,
  srcIpRoutes,
  srcRoutesWithExplicitNextHop,
} from "./plan.js";
