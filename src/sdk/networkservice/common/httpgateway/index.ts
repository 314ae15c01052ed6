// SPDX-License-Identifier: Apache-2.0
/**
 * httpgateway: an HTTP gateway endpoint's pieces (the mission's "Proxy" example; the idea of
 * upstream's cmd-nse-l7-proxy). Workloads that serve HTTP inside the mesh connect to the gateway
 * as clients; the gateway listens where callers outside the mesh reach it and forwards each HTTP
 * request, over the NSM connection, to one of them.
 *
 * - {@link clientAddressesServer}: the element. Purpose: remembers the address each live
 *   connection gave its client (the first `src_ip_addrs`, set by IPAM downstream) and forgets it
 *   on Close. Chain placement: endpoint chain, `additional` slot, anywhere (it reads the
 *   connection `next` returns). Per-connection state: connection id → address. Options: none.
 *   Failure behaviour: none of its own; a failed Request records nothing.
 * - {@link httpReverseProxy} (./proxy.ts): the HTTP side, a reverse proxy on node:http that picks
 *   a backend from those addresses in turn.
 */
import type { NetworkServiceElement } from "../../../core/chain.js";

export { type HttpReverseProxy, type HttpReverseProxyOptions, httpReverseProxy } from "./proxy.js";

/** The clients' addresses, in connection order; {@link ClientAddresses.next} takes them in turn. */
export class ClientAddresses {
  readonly #byConnection = new Map<string, string>();
  #turn = 0;

  /** Every address, one per live connection. */
  list(): string[] {
    return [...this.#byConnection.values()];
  }

  /** The next address in turn (round robin), or undefined when no client is connected. */
  next(): string | undefined {
    const all = this.list();
    if (all.length === 0) return undefined;
    return all[this.#turn++ % all.length];
  }

  set(connectionId: string, address: string): void {
    this.#byConnection.set(connectionId, address);
  }

  delete(connectionId: string): void {
    this.#byConnection.delete(connectionId);
  }
}

/** Records each connection's client address in `addresses` (see the module doc). */
export function clientAddressesServer(addresses: ClientAddresses): NetworkServiceElement {
  return {
    name: "clientaddresses",
    async request(req, ctx, next) {
      const conn = await next.request(req, ctx);
      const src = conn.context?.ipContext?.srcIpAddrs[0];
      if (src) addresses.set(conn.id, src.split("/")[0]!);
      return conn;
    },
    async close(conn, ctx, next) {
      addresses.delete(conn.id);
      return next.close(conn, ctx);
    },
  };
}
