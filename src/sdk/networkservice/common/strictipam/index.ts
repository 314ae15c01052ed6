// SPDX-License-Identifier: Apache-2.0
/**
 * strictipam: the `strict` IPAM policy of upstream's endpoints (`NSM_IPAM_POLICY=strict`,
 * upstream `ipam/strictipam`); the default, `polite`, is the IPAM alone.
 *
 * Purpose: a client may bring addresses of an earlier connection (another endpoint, a heal). The
 * polite IPAM keeps addresses it did not give when it cannot recover them; strict resets them:
 * before the IPAM runs, every client (src) or endpoint (dst) address of the request that is not
 * inside this endpoint's prefixes, or that another connection of this endpoint holds, is taken
 * out of the IP context with the route to it (`dst_routes` for a src address, `src_routes` for a
 * dst address). The IPAM then recovers what is left or allocates anew.
 * Chain placement: endpoint chains, just before the IPAM element.
 * Per-connection state: the addresses each connection got (element state keyed by connection id),
 * released on Close and when the Request fails.
 * Options: the prefixes the IPAM allocates from (`NSM_CIDR_PREFIX` groups).
 * Failure behaviour: bad prefixes are InvalidArgument when the element is built.
 */
import { create, type IPContext, IPContextSchema } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { requestConnection } from "../../../core/request.js";
import { addressOf, formatIp, PrefixSet } from "../../../tools/cidr.js";

export interface StrictIpamOptions {
  /** The IPAM's prefixes, as point2pointipam takes them. */
  prefixes: readonly (string | readonly string[])[];
}

const keyOf = (text: string) => {
  const ip = addressOf(text);
  return ip ? formatIp(ip) : undefined;
};

/** Removes the addresses `invalid` says no to, with the routes to them; returns what was removed. */
function dropInvalid(ipc: IPContext, invalid: (text: string) => boolean): string[] {
  const badSrc = ipc.srcIpAddrs.filter(invalid);
  const badDst = ipc.dstIpAddrs.filter(invalid);
  ipc.srcIpAddrs = ipc.srcIpAddrs.filter((a) => !badSrc.includes(a));
  ipc.dstIpAddrs = ipc.dstIpAddrs.filter((a) => !badDst.includes(a));
  ipc.dstRoutes = ipc.dstRoutes.filter((r) => !badSrc.includes(r.prefix));
  ipc.srcRoutes = ipc.srcRoutes.filter((r) => !badDst.includes(r.prefix));
  return [...badSrc, ...badDst];
}

/** Creates the strict IPAM policy element; see the module doc. */
export function strictIpamServer(options: Readonly<StrictIpamOptions>): NetworkServiceElement {
  const ours = new PrefixSet(options.prefixes.flat());
  /** Address → the connection holding it. */
  const held = new Map<string, string>();
  const release = (connId: string) => {
    for (const [a, id] of held) if (id === connId) held.delete(a);
  };
  return {
    name: "strictipam",
    async request(req, ctx, next) {
      const conn = requestConnection(req);
      const ipc = conn.context?.ipContext ?? create(IPContextSchema);
      const invalid = (text: string) => {
        const ip = addressOf(text);
        const holder = ip && held.get(formatIp(ip));
        return !ip || !ours.contains(ip) || (holder !== undefined && holder !== conn.id);
      };
      const dropped = dropInvalid(ipc, invalid);
      if (dropped.length > 0) ctx.log.debug({ connId: conn.id, dropped }, "strict IPAM: addresses reset");
      const out = await next.request(req, ctx);
      release(conn.id);
      const got = out.context?.ipContext;
      for (const a of [...(got?.srcIpAddrs ?? []), ...(got?.dstIpAddrs ?? [])]) {
        const k = keyOf(a);
        if (k) held.set(k, out.id);
      }
      return out;
    },
    async close(conn, ctx, next) {
      release(conn.id);
      return next.close(conn, ctx);
    },
  };
}
