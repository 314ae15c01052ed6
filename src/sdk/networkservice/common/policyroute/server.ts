// SPDX-License-Identifier: Apache-2.0
/**
 * policyroute (server): puts the endpoint's routing policies into the connection's IP context
 * (upstream `common/policyroute`).
 *
 * Purpose: policy-based routing handed out by an endpoint (`NSM_PBR_CONFIG_PATH`). On every
 * Request the current policies replace `ip_context.policies`, and each policy's `from` becomes
 * a client address (`src_ip_addrs`), so traffic from it exists; the `from` addresses of the
 * policies it replaces are taken out first. The forwarder programs the policies in the
 * client's netns as ip rules and routing tables (`kernel/networkservice/pbr`).
 * Chain placement: endpoint chains, after IPAM, before the mechanisms.
 * Per-connection state: none (the previous policies travel in the connection).
 * Options: a function giving the current policies (e.g. `watchPolicyRoutes(path).get`).
 * Failure behaviour: none of its own; policies are checked when they are loaded.
 */
import {
  ConnectionContextSchema,
  clone,
  create,
  IPContextSchema,
  type PolicyRoute,
  PolicyRouteSchema,
} from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { requestConnection } from "../../../core/request.js";

/** Creates the policyroute server; `policies` is called on every Request. */
export function policyRouteServer(policies: () => readonly PolicyRoute[]): NetworkServiceElement {
  return {
    name: "policyroute",
    request(req, ctx, next) {
      const conn = requestConnection(req);
      conn.context ??= create(ConnectionContextSchema);
      conn.context.ipContext ??= create(IPContextSchema);
      const ipc = conn.context.ipContext;
      const oldFrom = new Set(ipc.policies.map((p) => p.from).filter((f) => f !== ""));
      ipc.srcIpAddrs = ipc.srcIpAddrs.filter((a) => !oldFrom.has(a));
      ipc.policies = policies().map((p) => clone(PolicyRouteSchema, p));
      for (const p of ipc.policies) {
        if (p.from !== "" && !ipc.srcIpAddrs.includes(p.from)) ipc.srcIpAddrs.push(p.from);
      }
      return next.request(req, ctx);
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}
