// SPDX-License-Identifier: Apache-2.0
/**
 * What the policies of an IP context mean for the client's netns (pure logic): one ip rule and
 * one routing table per policy, as upstream's `iprule` element programs them.
 *
 * - the rule selects by `from` (source prefix), `proto` (IP protocol), `srcport` / `dstport`
 *   (port ranges) and looks the table up;
 * - the table holds the policy's routes through the client's interface (a next hop is an onlink
 *   gateway), or, for a policy without routes, a default route through it;
 * - the family is that of `from`, else of the first route, else IPv4 (upstream's netlink
 *   default for a rule without source).
 */
import type { IPContext } from "../../../api/index.js";
import { invalidArgument, NsmError } from "../../../sdk/core/errors.js";
import {
  checkPolicyRoute,
  parseIpProto,
  parsePolicyFrom,
  parsePortRange,
} from "../../../sdk/networkservice/common/policyroute/policy.js";
import { formatIp, parseCidr, tryParseIp } from "../../../sdk/tools/cidr.js";
import type { PortRange, RuleInfo, RuleSpec } from "../../api.js";

/** A route of a policy's table. */
export interface PbrRoute {
  dst: string;
  gateway?: string;
}

/** One policy: its rule (without table) and the routes of its table. */
export interface PbrPolicy {
  /** Identity of the policy: selectors and routes (a changed policy is another policy). */
  key: string;
  rule: Omit<RuleSpec, "table" | "priority">;
  routes: PbrRoute[];
}

const familyNumber = (f: "ipv4" | "ipv6"): 4 | 6 => (f === "ipv4" ? 4 : 6);

function policyOf(p: IPContext["policies"][number], index: number): PbrPolicy {
  try {
    checkPolicyRoute(p);
  } catch (err) {
    throw invalidArgument(`ip_context.policies[${index}]: ${NsmError.from(err).rawMessage}`);
  }
  const from = parsePolicyFrom(p.from);
  const routes = p.routes.map((r) => {
    const dst = parseCidr(r.prefix);
    const hop = r.nextHop ? tryParseIp(r.nextHop) : undefined;
    return { family: dst.family, route: hop ? { dst: dst.text, gateway: formatIp(hop) } : { dst: dst.text } };
  });
  const family = familyNumber(from?.family ?? routes[0]?.family ?? "ipv4");
  const rule: PbrPolicy["rule"] = { family };
  if (from) rule.src = from.text;
  const ipProto = parseIpProto(p.proto);
  if (ipProto !== undefined) rule.ipProto = ipProto;
  const sport = parsePortRange(p.srcPort, "srcport");
  if (sport) rule.sport = sport;
  const dport = parsePortRange(p.dstPort, "dstport");
  if (dport) rule.dport = dport;
  const table = routes.length > 0 ? routes.map((r) => r.route) : [{ dst: family === 4 ? "0.0.0.0/0" : "::/0" }];
  return { key: JSON.stringify([rule, table]), rule, routes: table };
}

/** The policies of an IP context, in order; InvalidArgument naming a malformed one. */
export function pbrPolicies(ipc: IPContext | undefined): PbrPolicy[] {
  const out = new Map<string, PbrPolicy>();
  (ipc?.policies ?? []).forEach((p, i) => {
    const plan = policyOf(p, i);
    out.set(plan.key, plan);
  });
  return [...out.values()];
}

const sameRange = (a: PortRange | undefined, b: PortRange | undefined) => a?.start === b?.start && a?.end === b?.end;

/** The kernel's rule selects what `rule` selects (its table aside). */
export function sameSelectors(listed: RuleInfo, rule: PbrPolicy["rule"]): boolean {
  return (
    listed.family === rule.family &&
    listed.src === rule.src &&
    listed.ipProto === rule.ipProto &&
    sameRange(listed.sport, rule.sport) &&
    sameRange(listed.dport, rule.dport)
  );
}
