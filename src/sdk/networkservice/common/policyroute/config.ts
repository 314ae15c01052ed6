// SPDX-License-Identifier: Apache-2.0
/**
 * The policy-based-routing config file of upstream's endpoints (`NSM_PBR_CONFIG_PATH`, default
 * `/etc/policy-based-routing/config.yaml`): a YAML list of policies with the keys upstream's
 * YAML decoder accepts (field names lower-cased), e.g.
 *
 * ```yaml
 * - from: 172.16.2.201/24
 *   proto: 6
 *   dstport: 6666
 *   routes:
 *     - prefix: 172.16.3.0/24
 *       nexthop: 172.16.2.200
 * - proto: 17
 *   dstport: 6667-6670
 * ```
 *
 * Keys are matched without regard to case or `_` (`dstPort`, `dst_port`); an unknown key, a
 * wrong type or a bad value is an error naming the policy and the field.
 */
import { parse } from "yaml";
import { create, type PolicyRoute, PolicyRouteSchema, RouteSchema } from "../../../../api/index.js";
import { invalidArgument, NsmError } from "../../../core/errors.js";
import { checkPolicyRoute } from "./policy.js";

/** Upstream's default `NSM_PBR_CONFIG_PATH`. */
export const DEFAULT_PBR_CONFIG_PATH = "/etc/policy-based-routing/config.yaml";

const normalKey = (k: string) => k.toLowerCase().replaceAll("_", "");

type Fields = Record<string, unknown>;

function fieldsOf(value: unknown, where: string, known: readonly string[]): Fields {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalidArgument(`${where}: expected a mapping`);
  }
  const out: Fields = {};
  for (const [k, v] of Object.entries(value)) {
    const key = normalKey(k);
    if (!known.includes(key)) throw invalidArgument(`${where}: unknown key ${JSON.stringify(k)}`);
    out[key] = v;
  }
  return out;
}

/** A scalar field as text (YAML gives `6666` as a number, `6667-6670` as a string). */
function text(fields: Fields, key: string, where: string): string {
  const v = fields[key];
  if (v === undefined || v === null) return "";
  if (typeof v === "string" || typeof v === "number") return String(v);
  throw invalidArgument(`${where}: ${key} must be a string or a number`);
}

function routesOf(fields: Fields, where: string) {
  const list = fields.routes ?? [];
  if (!Array.isArray(list)) throw invalidArgument(`${where}: routes must be a list`);
  return list.map((r, j) => {
    const rw = `${where} route ${j + 1}`;
    const f = fieldsOf(r, rw, ["prefix", "nexthop"]);
    return create(RouteSchema, { prefix: text(f, "prefix", rw), nextHop: text(f, "nexthop", rw) });
  });
}

/** Parses the config file's text; InvalidArgument naming the policy and the field. Empty text is no policies. */
export function parsePolicyRoutes(source: string): PolicyRoute[] {
  let doc: unknown;
  try {
    doc = parse(source);
  } catch (err) {
    throw invalidArgument(`not YAML: ${String((err as Error).message).split("\n")[0]}`);
  }
  if (doc === null || doc === undefined) return [];
  if (!Array.isArray(doc)) throw invalidArgument("expected a list of policies");
  return doc.map((item, i) => {
    const where = `policy ${i + 1}`;
    const f = fieldsOf(item, where, ["from", "proto", "dstport", "srcport", "routes"]);
    const policy = create(PolicyRouteSchema, {
      from: text(f, "from", where),
      proto: text(f, "proto", where),
      dstPort: text(f, "dstport", where),
      srcPort: text(f, "srcport", where),
      routes: routesOf(f, where),
    });
    try {
      checkPolicyRoute(policy);
    } catch (err) {
      throw invalidArgument(`${where}: ${NsmError.from(err).rawMessage}`);
    }
    return policy;
  });
}
