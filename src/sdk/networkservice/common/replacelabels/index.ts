// SPDX-License-Identifier: Apache-2.0
/**
 * replacelabels: the labels a passthrough hop shows the next hop (upstream `replacelabels`).
 *
 * Purpose: a NetworkService's `matches` choose the next endpoint by the *source* labels of the
 * request. A hop in a composition (firewall, passthrough) requests the same service again with
 * its own labels (e.g. `app: firewall`), so the match for that hop picks the next one.
 * Chain placement: in the client chain a passthrough endpoint runs inside connect.
 * Per-connection state: none (the labels travel with each Request and Close).
 * Options: the labels to send.
 * Failure behaviour: none of its own. The connection handed back keeps the incoming labels.
 */
import { ConnectionSchema, clone } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { requestConnection } from "../../../core/request.js";

/** Replaces the connection's labels with `labels` towards the next hop and restores them on the way back. */
export function replaceLabelsClient(labels: Readonly<Record<string, string>>): NetworkServiceElement {
  return {
    name: "replacelabels",
    async request(req, ctx, next) {
      const incoming = requestConnection(req);
      const connection = clone(ConnectionSchema, incoming);
      connection.labels = { ...labels };
      const out = await next.request({ ...req, connection }, ctx);
      const back = clone(ConnectionSchema, out);
      back.labels = { ...incoming.labels };
      return back;
    },
    close(conn, ctx, next) {
      const c = clone(ConnectionSchema, conn);
      c.labels = { ...labels };
      return next.close(c, ctx);
    },
  };
}
