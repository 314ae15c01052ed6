// SPDX-License-Identifier: Apache-2.0
/**
 * roundrobin: picks the endpoint among discover's candidates (upstream `roundrobin`).
 *
 * Purpose: spreads connections of one network service over its candidate endpoints with a
 * per-service counter (modulo the number of candidates), and moves on to the next candidate
 * when the chosen one fails downstream, trying each candidate once. Each try sets
 * `network_service_endpoint_name` and the client URL (the endpoint's URL) for the rest of the
 * chain. `Destination.weight` is ignored, as upstream does.
 * Chain placement: right after discover. A client URL already in the context (discover found
 * the endpoint by name) means the endpoint is chosen: roundrobin then does nothing.
 * Per-connection state: none (the counters are per network service, shared by all connections).
 * Options: none.
 * Failure behaviour: no candidates is NotFound; when every candidate fails, the error has the
 * code of the last failure and lists each endpoint's error.
 */
import { ConnectionSchema, clone } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { NsmError, notFound } from "../../../core/errors.js";
import { requestConnection } from "../../../core/request.js";
import { clientUrlOf, withClientUrl } from "../clienturl/index.js";
import { candidatesOf } from "../discover/index.js";

/** Round-robin endpoint selection (see the module doc). */
export function roundRobinServer(): NetworkServiceElement {
  const counters = new Map<string, number>();
  return {
    name: "roundrobin",
    async request(req, ctx, next) {
      if (clientUrlOf(ctx) !== undefined) return next.request(req, ctx);
      const requested = requestConnection(req);
      const candidates = candidatesOf(ctx);
      const endpoints = candidates?.endpoints ?? [];
      const service = candidates?.networkService.name ?? requested.networkService;
      if (endpoints.length === 0) {
        throw notFound(`no endpoint candidates for network service "${service}"`, { reason: "no-candidates" });
      }
      const failures: string[] = [];
      let last: NsmError | undefined;
      for (let attempt = 0; attempt < endpoints.length; attempt++) {
        const n = counters.get(service) ?? 0;
        counters.set(service, n + 1);
        const nse = endpoints[n % endpoints.length]!;
        const connection = clone(ConnectionSchema, requested);
        connection.networkServiceEndpointName = nse.name;
        try {
          return await next.request({ ...req, connection }, withClientUrl(ctx, nse.url));
        } catch (err) {
          ctx.throwIfDone();
          last = NsmError.from(err);
          failures.push(`${attempt}. ${nse.name} (${nse.url}): ${last.rawMessage}`);
          ctx.log.debug({ connId: requested.id, endpoint: nse.name, err: String(err) }, "endpoint failed");
        }
      }
      throw new NsmError(`all candidates have failed: ${failures.join("; ")}`, last!.code, {
        cause: last,
        reason: "all-candidates-failed",
      });
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}
