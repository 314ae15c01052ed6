// SPDX-License-Identifier: Apache-2.0
/**
 * dnscontext (server): an endpoint tells its clients which DNS servers and search domains serve
 * its network (upstream `dnscontext.NewServer`, fed by `NSM_DNS_CONFIGS`).
 *
 * Purpose: appends the configured DNSConfigs to `connection.context.dns_context.configs` (a
 * config already there is not added twice), so the DNSContext travels back through the path to
 * the client, whose DNS proxy then asks these servers.
 * Chain placement: endpoint chains, anywhere before the response returns (upstream: after the
 * mechanisms).
 * Per-connection state: none.
 * Options: {@link DnsContextServerOptions}.
 * Failure behaviour: none of its own.
 */
import {
  ConnectionContextSchema,
  ConnectionSchema,
  clone,
  create,
  type DNSConfig,
  DNSContextSchema,
} from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { requestConnection } from "../../../core/request.js";
import { sameDnsConfig } from "./configs.js";

/** Options of {@link dnsContextServer}. */
export interface DnsContextServerOptions {
  /** The configs to hand out (see `parseDnsConfigs` for `NSM_DNS_CONFIGS`). */
  readonly configs: readonly DNSConfig[];
}

/** Adds the endpoint's DNS configs to every connection (see the module doc). */
export function dnsContextServer(options: DnsContextServerOptions): NetworkServiceElement {
  const configs = options.configs.map((c) => c);
  return {
    name: "dnscontext",
    async request(req, ctx, next) {
      const requested = requestConnection(req);
      const have = requested.context?.dnsContext?.configs ?? [];
      const missing = configs.filter((c) => !have.some((h) => sameDnsConfig(h, c)));
      if (missing.length === 0) return next.request(req, ctx);
      const connection = clone(ConnectionSchema, requested);
      connection.context ??= create(ConnectionContextSchema);
      connection.context.dnsContext ??= create(DNSContextSchema);
      connection.context.dnsContext.configs.push(...missing);
      return next.request({ ...req, connection }, ctx);
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}
