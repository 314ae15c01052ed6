// SPDX-License-Identifier: Apache-2.0
/**
 * vl3dns (server): names for the clients of a vL3 endpoint (upstream sdk
 * `connectioncontext/dnscontext/vl3dns`, simplified). Each client gets a DNS config pointing at
 * the endpoint's address (`dns_context.configs`: server = the endpoint, search domain = the
 * network service), and once its Request succeeded the endpoint answers for the names its
 * templates make from the connection (e.g. `<podName>.<service>.` → the client's vL3 address).
 * Names of other endpoints' clients are asked of the peers (./dns.ts).
 * Peers (requests that announce a block, see ../vl3) get neither.
 * Chain placement: endpoint chains, after vl3Server (the client has its address).
 * Per-connection state: the connection's records, removed on Close.
 * Failure behaviour: none of its own.
 */
import {
  ConnectionContextSchema,
  ConnectionSchema,
  clone,
  create,
  DNSConfigSchema,
  DNSContextSchema,
} from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { requestConnection } from "../../../core/request.js";
import { addressOf } from "../../../tools/cidr.js";
import { announcesBlock, type Vl3Network } from "../vl3/index.js";
import type { Vl3DnsRecords } from "./records.js";
import type { DnsTemplate } from "./template.js";

/** Options of {@link vl3DnsServer}. */
export interface Vl3DnsServerOptions {
  readonly net: Vl3Network;
  readonly records: Vl3DnsRecords;
  /** Parsed NSM_DNS_TEMPLATES. */
  readonly templates: readonly DnsTemplate[];
}

/** The element (see the module doc). */
export function vl3DnsServer(o: Vl3DnsServerOptions): NetworkServiceElement {
  return {
    name: "vl3dns",
    async request(req, ctx, next) {
      const incoming = requestConnection(req);
      if (announcesBlock(incoming.context?.ipContext)) return next.request(req, ctx);
      const share = o.net.share;
      const connection = clone(ConnectionSchema, incoming);
      connection.context ??= create(ConnectionContextSchema);
      connection.context.dnsContext ??= create(DNSContextSchema);
      const dns = connection.context.dnsContext;
      if (!dns.configs.some((c) => c.dnsServerIps.includes(share.selfIp)))
        dns.configs.push(
          create(DNSConfigSchema, {
            dnsServerIps: [share.selfIp],
            searchDomains: [connection.networkService.toLowerCase()],
          }),
        );
      const conn = await next.request({ ...req, connection }, ctx);
      const addresses = (conn.context?.ipContext?.srcIpAddrs ?? []).filter((a) => {
        const ip = addressOf(a);
        return ip !== undefined && o.net.inBlock(ip);
      });
      const input = { labels: conn.labels, networkService: conn.networkService };
      const names = o.templates.map((t) => t(input)).filter((n) => n !== undefined);
      o.records.set(
        conn.id,
        names.flatMap((name) => addresses.map((address) => ({ name, address }))),
      );
      return conn;
    },
    async close(conn, ctx, next) {
      o.records.delete(conn.id);
      await next.close(conn, ctx);
    },
  };
}
