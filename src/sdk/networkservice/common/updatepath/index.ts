// SPDX-License-Identifier: Apache-2.0
/**
 * updatepath: maintains `connection.path` and the per-hop connection id (upstream rules).
 *
 * Purpose: every hop owns one path segment `{name, id}`; `connection.id` is the id of the
 * segment of the hop currently handling it.
 * Chain placement: first in every server and client chain.
 * Per-connection state: none (everything is in the path).
 * Failure behaviour: a path index out of range or a segment id that does not match the
 * connection id is InvalidArgument, before anything else in the chain runs.
 */
import { type Connection, ConnectionSchema, clone } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { invalidArgument } from "../../../core/errors.js";
import { requestConnection } from "../../../core/request.js";
import { restorePath, updatePath } from "./common.js";

export { restorePath, updatePath } from "./common.js";

function createUpdatePath(name: string, elementName: string): NetworkServiceElement {
  if (!name) throw invalidArgument("updatepath needs a non-empty name");
  return {
    name: elementName,
    async request(req, ctx, next) {
      const conn = clone(ConnectionSchema, requestConnection(req));
      const index = updatePath(conn, name);
      const out = await next.request({ ...req, connection: conn }, ctx);
      return restorePath(out, index);
    },
    async close(conn: Connection, ctx, next) {
      const c = clone(ConnectionSchema, conn);
      updatePath(c, name);
      await next.close(c, ctx);
    },
  };
}

export const updatePathServer = (name: string): NetworkServiceElement => createUpdatePath(name, "updatepath");
export const updatePathClient = (name: string): NetworkServiceElement => createUpdatePath(name, "updatepathClient");
