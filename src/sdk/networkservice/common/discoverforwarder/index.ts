// SPDX-License-Identifier: Apache-2.0
/**
 * discoverforwarder: chooses the local forwarder for a connection (nsmgr side; upstream
 * `discoverforwarder`).
 *
 * Purpose: forwarders are NSEs of the service `forwarder` registered through this nsmgr (their
 * URL contains the nsmgr URL). The network service's `matches[].metadata.labels` (default
 * `{p2p: "true"}`) select the forwarders whose labels for the forwarder service contain them,
 * with the same source_selector/fallthrough rules as endpoint selection ({@link matchForwarders}).
 * The forwarder named in the next path segment is preferred, so that a re-request after an
 * nsmgr restart keeps its forwarder; the choice is remembered, and a remembered forwarder is the
 * only one tried until the client asks to reselect (`RESELECT_REQUESTED` forgets it). Otherwise
 * candidates are tried in order until one accepts. The chosen forwarder's URL goes into the
 * context as the client URL.
 * Chain placement: nsmgr server chain, after metadata (`requires: ["metadata"]`), before connect.
 * Per-connection state: the chosen forwarder's name (server-side metadata).
 * Options: {@link DiscoverForwarderOptions}.
 * Failure behaviour: an unknown network service is NotFound; no matching forwarder is NotFound
 * "no forwarder available" (reason `no-forwarder`); a remembered forwarder that is gone is
 * NotFound; when every forwarder fails, the last failure's code with each error listed. On Close,
 * look-up failures are logged and Close goes on without a URL.
 */

import type { NetworkService, NetworkServiceEndpoint } from "../../../../api/gen/registry_pb.js";
import { type Connection, ConnectionSchema, clone, nextSegment, State } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { invalidArgument, NsmError, notFound } from "../../../core/errors.js";
import { requestConnection } from "../../../core/request.js";
import type { NseRegistry, NsRegistry } from "../../../registry/api.js";
import { withClientUrl } from "../clienturl/index.js";
import { dropExpired, findEndpoints, findNetworkService, isSubset } from "../discover/index.js";
import { createMetadataKey, metadataOf } from "../metadata/index.js";

/** The forwarder service name upstream uses (`NSM_FORWARDER_NETWORK_SERVICE_NAME`). */
export const DEFAULT_FORWARDER_SERVICE_NAME = "forwarder";

/** Labels a forwarder must have when a match has no metadata labels. */
export const DEFAULT_FORWARDER_LABELS: Readonly<Record<string, string>> = Object.freeze({ p2p: "true" });

export interface DiscoverForwarderOptions {
  /** Where network services are looked up. Required. */
  nsRegistry: NsRegistry;
  /** Where forwarders are looked up. Required. */
  nseRegistry: NseRegistry;
  /** The service forwarders register for. @default "forwarder" */
  forwarderServiceName?: string;
  /**
   * This nsmgr's URL: only forwarders whose URL contains it are local.
   * @default "" (every forwarder)
   */
  nsmgrUrl?: string;
  /** Current time in epoch milliseconds, to drop expired registrations. @default Date.now */
  nowMs?: () => number;
}

/**
 * The forwarders the service's matches allow for a request with `labels` (upstream
 * `matchForwarders`): no matches → all; else the first match whose source selector fits decides,
 * with its metadata labels (default `{p2p: "true"}`) as the selector on each forwarder's labels
 * for `forwarderServiceName`; a `fallthrough` match that selects none passes on to the next.
 */
export function matchForwarders(
  labels: Readonly<Record<string, string>>,
  ns: NetworkService,
  forwarders: readonly NetworkServiceEndpoint[],
  forwarderServiceName: string = DEFAULT_FORWARDER_SERVICE_NAME,
): NetworkServiceEndpoint[] {
  if (ns.matches.length === 0) return [...forwarders];
  let result: NetworkServiceEndpoint[] = [];
  for (const match of ns.matches) {
    if (!isSubset(labels, match.sourceSelector, labels)) continue;
    const metadataLabels = match.metadata?.labels ?? {};
    const wanted = Object.keys(metadataLabels).length ? metadataLabels : DEFAULT_FORWARDER_LABELS;
    result = forwarders.filter((f) => {
      const own = f.networkServiceLabels[forwarderServiceName];
      return own !== undefined && isSubset(own.labels, wanted, labels);
    });
    if (match.fallthrough && result.length === 0) continue;
    break;
  }
  return result;
}

/** Local forwarder selection (see the module doc). */
export function discoverForwarderServer(options: Readonly<DiscoverForwarderOptions>): NetworkServiceElement {
  const { nsRegistry, nseRegistry } = options;
  if (!nsRegistry || !nseRegistry) throw invalidArgument("discoverforwarder needs nsRegistry and nseRegistry");
  const service = options.forwarderServiceName || DEFAULT_FORWARDER_SERVICE_NAME;
  const nsmgrUrl = options.nsmgrUrl ?? "";
  const now = options.nowMs ?? Date.now;
  const chosenKey = createMetadataKey<string>("discoverforwarder");

  const preferNextSegment = (conn: Connection, list: NetworkServiceEndpoint[]) => {
    const preferred = nextSegment(conn)?.name;
    const i = preferred ? list.findIndex((f) => f.name === preferred) : -1;
    if (i > 0) list.unshift(...list.splice(i, 1));
  };

  return {
    name: "discoverforwarder",
    requires: ["metadata"],
    async request(req, ctx, next) {
      const conn = requestConnection(req);
      const md = metadataOf(ctx, false);
      const reselect = conn.state === State.RESELECT_REQUESTED;
      if (reselect) md.delete(chosenKey);
      const remembered = md.load(chosenKey);
      const ns = await findNetworkService(nsRegistry, conn.networkService, conn.payload, ctx);
      const found = await findEndpoints(
        nseRegistry,
        { name: remembered, networkServiceNames: [service], url: nsmgrUrl },
        ctx,
      );
      const candidates = matchForwarders(conn.labels, ns, dropExpired(found, now()), service);
      if (candidates.length === 0) {
        if (remembered) throw notFound(`forwarder "${remembered}" is not available`, { reason: "no-forwarder" });
        throw notFound(`no forwarder available for network service "${ns.name}"`, { reason: "no-forwarder" });
      }
      if (!remembered && !reselect) preferNextSegment(conn, candidates);
      const failures: string[] = [];
      let last: NsmError | undefined;
      for (const fwd of candidates) {
        try {
          const out = await next.request(
            { ...req, connection: clone(ConnectionSchema, conn) },
            withClientUrl(ctx, fwd.url),
          );
          md.store(chosenKey, fwd.name);
          return out;
        } catch (err) {
          ctx.throwIfDone();
          last = NsmError.from(err);
          failures.push(`${fwd.name} (${fwd.url}): ${last.rawMessage}`);
          ctx.log.debug({ connId: conn.id, forwarder: fwd.name, err: String(err) }, "forwarder failed");
        }
      }
      throw new NsmError(`all forwarders have failed: ${failures.join("; ")}`, last!.code, {
        cause: last,
        reason: "all-forwarders-failed",
      });
    },
    async close(conn, ctx, next) {
      const md = metadataOf(ctx, false);
      const name = md.loadAndDelete(chosenKey) ?? nextSegment(conn)?.name;
      if (!name) {
        ctx.log.warn({ connId: conn.id }, "the connection has no forwarder to close");
        return next.close(conn, ctx);
      }
      try {
        const [fwd] = await findEndpoints(nseRegistry, { name, url: nsmgrUrl }, ctx);
        if (fwd?.url) return next.close(conn, withClientUrl(ctx, fwd.url));
        ctx.log.warn({ connId: conn.id, forwarder: name }, "forwarder not found for close");
      } catch (err) {
        ctx.log.warn({ connId: conn.id, forwarder: name, err: String(err) }, "cannot find the forwarder to close");
      }
      return next.close(conn, ctx);
    },
  };
}
