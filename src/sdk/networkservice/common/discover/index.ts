// SPDX-License-Identifier: Apache-2.0
/**
 * discover: finds the endpoints that can serve a request (forwarder side; upstream `discover`).
 *
 * Purpose: a request that names an endpoint (`network_service_endpoint_name`, e.g. a refresh)
 * goes to that endpoint's URL. Otherwise the network service is looked up (by name and
 * payload), its endpoints are listed, expired registrations are dropped and the service's
 * `matches` select the candidates for the request's labels ({@link matchEndpoint}); the
 * candidates go into the context for roundrobin, and the service's payload into the connection.
 * Chain placement: forwarder (and nsmgr-proxy) server chains, after metadata, before roundrobin
 * and connect. A client URL already in the context means someone chose the next hop: discover
 * then does nothing.
 * Per-connection state: none.
 * Options: {@link DiscoverOptions}.
 * Failure behaviour: an unknown network service or endpoint is NotFound naming it; no candidate
 * is NotFound; registry failures keep their code (Unavailable by default). On Close a failed
 * look-up is logged and Close goes on without a URL.
 */

import type { NetworkService, NetworkServiceEndpoint } from "../../../../api/gen/registry_pb.js";
import { ConnectionSchema, clone } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { type CallContext, createContextKey } from "../../../core/context.js";
import { invalidArgument, notFound } from "../../../core/errors.js";
import { requestConnection } from "../../../core/request.js";
import type { NseRegistry, NsRegistry } from "../../../registry/api.js";
import { clientUrlOf, withClientUrl } from "../clienturl/index.js";
import { matchEndpoint } from "./match.js";
import { dropExpired, findEndpointByName, findEndpoints, findNetworkService } from "./registry.js";

export { isSubset, matchEndpoint, processLabelTemplate } from "./match.js";
export { dropExpired, findEndpointByName, findEndpoints, findNetworkService } from "./registry.js";

/** What discover found for a request: the service and the endpoints that may serve it. */
export interface Candidates {
  readonly networkService: NetworkService;
  readonly endpoints: readonly NetworkServiceEndpoint[];
}

const candidatesKey = createContextKey<Candidates | undefined>(undefined, "candidates");

/** The candidates discover put in the context, if any. */
export function candidatesOf(ctx: CallContext): Candidates | undefined {
  return ctx.get(candidatesKey);
}

/** A context carrying `candidates` (for tests and custom selectors). */
export function withCandidates(ctx: CallContext, candidates: Candidates): CallContext {
  return ctx.with(candidatesKey, candidates);
}

export interface DiscoverOptions {
  /** Where network services are looked up (usually the nsmgr's registry). Required. */
  nsRegistry: NsRegistry;
  /** Where endpoints are looked up. Required. */
  nseRegistry: NseRegistry;
  /** Current time in epoch milliseconds, to drop expired registrations. @default Date.now */
  nowMs?: () => number;
}

/** Endpoint discovery (see the module doc). */
export function discoverServer(options: Readonly<DiscoverOptions>): NetworkServiceElement {
  const { nsRegistry, nseRegistry } = options;
  if (!nsRegistry || !nseRegistry) throw invalidArgument("discover needs nsRegistry and nseRegistry");
  const now = options.nowMs ?? Date.now;
  return {
    name: "discover",
    async request(req, ctx, next) {
      if (clientUrlOf(ctx) !== undefined) return next.request(req, ctx);
      const conn = requestConnection(req);
      if (conn.networkServiceEndpointName) {
        const nse = await findEndpointByName(nseRegistry, conn.networkServiceEndpointName, ctx);
        if (!nse.url) throw notFound(`network service endpoint "${nse.name}" has no URL`, { reason: "no-endpoint" });
        return next.request(req, withClientUrl(ctx, nse.url));
      }
      if (!conn.networkService) throw invalidArgument("request names no network service");
      const ns = await findNetworkService(nsRegistry, conn.networkService, conn.payload, ctx);
      const all = await findEndpoints(nseRegistry, { networkServiceNames: [ns.name] }, ctx);
      const endpoints = matchEndpoint(conn.labels, ns, dropExpired(all, now()));
      if (endpoints.length === 0) {
        throw notFound(
          `network service endpoint candidates not found for network service "${ns.name}" ` +
            `(${all.length} registered, labels ${JSON.stringify(conn.labels)})`,
          { reason: "no-candidates" },
        );
      }
      const connection = clone(ConnectionSchema, conn);
      connection.payload = ns.payload;
      return next.request({ ...req, connection }, withCandidates(ctx, { networkService: ns, endpoints }));
    },
    async close(conn, ctx, next) {
      if (clientUrlOf(ctx) !== undefined || !conn.networkServiceEndpointName) return next.close(conn, ctx);
      try {
        const nse = await findEndpointByName(nseRegistry, conn.networkServiceEndpointName, ctx);
        if (nse.url) return next.close(conn, withClientUrl(ctx, nse.url));
      } catch (err) {
        ctx.log.warn({ connId: conn.id, err: String(err) }, "cannot find the endpoint to close");
      }
      return next.close(conn, ctx);
    },
  };
}
