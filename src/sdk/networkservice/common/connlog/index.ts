// SPDX-License-Identifier: Apache-2.0
/**
 * connlog: every log line written while a Request or Close of a connection runs carries that
 * connection's end-to-end id as `connection` (the id of the path's first segment, which is the
 * client's connection id on every hop; `connId`, where elements log it, is the id at that hop).
 * So `grep alpine-0` finds a connection's lines in the logs of the client, every nsmgr, every
 * forwarder and the endpoint.
 *
 * Chain placement: first in a role's chain (the endpoint chain puts it there), so that every
 * element below logs through the bound logger. No per-connection state; no effect on the call.
 */
import type { Connection } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";

/** The end-to-end id of a connection: the first path segment's id, else the connection's id. */
export function endToEndId(conn: Connection | undefined): string | undefined {
  return conn?.path?.pathSegments[0]?.id || conn?.id || undefined;
}

export function connLogServer(): NetworkServiceElement {
  return {
    name: "connlog",
    request(req, ctx, next) {
      const id = endToEndId(req.connection);
      return next.request(req, id ? ctx.withFields({ connection: id }) : ctx);
    },
    close(conn, ctx, next) {
      const id = endToEndId(conn);
      return next.close(conn, id ? ctx.withFields({ connection: id }) : ctx);
    },
  };
}
