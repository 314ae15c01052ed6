// SPDX-License-Identifier: Apache-2.0
/**
 * clientinfo: stamps where a request comes from onto its labels (upstream `clientinfo`).
 *
 * Purpose: adds the labels `nodeName`, `podName` and `clusterName` so that network service
 * `matches` can route by them (e.g. `nodeName: "{{.nodeName}}"`). Upstream reads the env vars
 * `NODE_NAME`, `POD_NAME`, `CLUSTER_NAME`; here `src/cmd` reads them and passes the values in.
 * A label the request already has is never overwritten.
 * Chain placement: client chains (NSC) and, through the client-to-server adapter, the nsmgr
 * server chain before discoverforwarder.
 * Per-connection state: none.
 * Options: {@link ClientInfoOptions}; an unset value adds no label (an empty string does, as
 * an env var set to "" does upstream).
 * Failure behaviour: none of its own.
 */
import { ConnectionSchema, clone } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { requestConnection } from "../../../core/request.js";

/** Options of {@link clientInfoClient}. */
export interface ClientInfoOptions {
  /** Label `nodeName` (upstream env `NODE_NAME`). @default unset: no label */
  nodeName?: string;
  /** Label `podName` (upstream env `POD_NAME`). @default unset: no label */
  podName?: string;
  /** Label `clusterName` (upstream env `CLUSTER_NAME`). @default unset: no label */
  clusterName?: string;
}

/** Adds node/pod/cluster labels that are not there yet. */
export function clientInfoClient(options: Readonly<ClientInfoOptions> = {}): NetworkServiceElement {
  const add = Object.entries({
    nodeName: options.nodeName,
    podName: options.podName,
    clusterName: options.clusterName,
  }).filter((e): e is [string, string] => e[1] !== undefined);
  return {
    name: "clientinfo",
    async request(req, ctx, next) {
      const requested = requestConnection(req);
      const missing = add.filter(([k]) => !Object.hasOwn(requested.labels, k));
      if (missing.length === 0) return next.request(req, ctx);
      const connection = clone(ConnectionSchema, requested);
      for (const [k, v] of missing) connection.labels[k] = v;
      return next.request({ ...req, connection }, ctx);
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}
