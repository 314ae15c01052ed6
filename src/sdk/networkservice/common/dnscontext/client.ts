// SPDX-License-Identifier: Apache-2.0
/**
 * dnscontext (client): collects the DNS configs the endpoints return (upstream
 * `dnscontext.NewClient`).
 *
 * Purpose: after each successful Request, stores the connection's
 * `context.dns_context.configs` under its id in a {@link DnsConfigStore}; a Close removes them.
 * The client's DNS proxy (`DnsProxy`) and resolv.conf writer listen to that store. One store
 * serves all of a client's connections.
 * Chain placement: client chains (NSC), after the mechanisms, before connect.
 * Per-connection state: the configs in the store, keyed by connection id.
 * Options: {@link DnsContextClientOptions}.
 * Failure behaviour: none of its own; a failed Request changes nothing.
 */
import type { NetworkServiceElement } from "../../../core/chain.js";
import type { DnsConfigStore } from "./configs.js";

/** Options of {@link dnsContextClient}. */
export interface DnsContextClientOptions {
  /** Where the configs go (shared by the chains of all the client's connections). */
  readonly store: DnsConfigStore;
}

/** Records the DNS configs of the client's connections (see the module doc). */
export function dnsContextClient(options: DnsContextClientOptions): NetworkServiceElement {
  const { store } = options;
  return {
    name: "dnscontext",
    async request(req, ctx, next) {
      const conn = await next.request(req, ctx);
      store.set(conn.id, conn.context?.dnsContext?.configs ?? []);
      return conn;
    },
    async close(conn, ctx, next) {
      store.delete(conn.id);
      await next.close(conn, ctx);
    },
  };
}
