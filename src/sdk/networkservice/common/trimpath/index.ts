// SPDX-License-Identifier: Apache-2.0
/**
 * trimpath: hides the path beyond this hop from the caller, unless this hop forwards
 * (upstream `trimpath`).
 *
 * Purpose: an endpoint returns the path up to and including its own segment, so the path a
 * client sees ends at the last hop that answered. A hop that passes the request on (nsmgr,
 * forwarder, passthrough NSE) keeps the full path: the trimpath client at the end of its
 * connect client chain tells the server side, after a successful downstream Request, not to trim.
 * Chain placement: trimpathServer in the endpoint base chain (after monitor);
 * trimpathClient in client chains, just before connect.
 * Per-connection state: none. The "do not trim" signal is per call: the server puts a flag in
 * the context and the client (which runs inside the same call) sets it. Upstream keeps it in
 * client metadata; a per-call flag also works when the client chain has its own metadata.
 * Options: none.
 * Failure behaviour: none of its own; errors pass through.
 */
import { ConnectionSchema, clone } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { createContextKey } from "../../../core/context.js";

interface TrimFlag {
  passthrough: boolean;
}

const trimFlagKey = createContextKey<TrimFlag | undefined>(undefined, "trimpath");

/** Cuts the returned path after this hop's segment unless a trimpath client ran downstream. */
export function trimpathServer(): NetworkServiceElement {
  return {
    name: "trimpath",
    async request(req, ctx, next) {
      const flag: TrimFlag = { passthrough: false };
      const conn = await next.request(req, ctx.with(trimFlagKey, flag));
      const path = conn.path;
      if (flag.passthrough || !path || path.pathSegments.length <= path.index + 1) return conn;
      const out = clone(ConnectionSchema, conn);
      out.path!.pathSegments = out.path!.pathSegments.slice(0, path.index + 1);
      return out;
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}

/** Tells the trimpath server of this call that the path continues past this hop. */
export function trimpathClient(): NetworkServiceElement {
  return {
    name: "trimpathClient",
    async request(req, ctx, next) {
      const conn = await next.request(req, ctx);
      const flag = ctx.get(trimFlagKey);
      if (flag) flag.passthrough = true;
      return conn;
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}
