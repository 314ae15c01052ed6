// SPDX-License-Identifier: Apache-2.0
/**
 * vl3 (client): what a vL3 endpoint announces when it connects to another vL3 endpoint of the
 * same service (upstream sdk `connectioncontext/ipcontext/vl3` client): its own address as
 * `src_ip_addrs` and a route to its block through that address in `dst_routes`, so the other
 * endpoint routes the block back here. Stale entries of an earlier block are replaced.
 * Chain placement: the peer client chain, before the mechanisms.
 * Failure behaviour: Unavailable before the IPAM assigned a block.
 */
import {
  ConnectionContextSchema,
  ConnectionSchema,
  clone,
  create,
  IPContextSchema,
  RouteSchema,
} from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { requestConnection } from "../../../core/request.js";
import { addressOf } from "../../../tools/cidr.js";
import type { Vl3Network } from "./network.js";

/** The element a vL3 endpoint's peer connections carry. */
export function vl3Client(net: Vl3Network): NetworkServiceElement {
  return {
    name: "vl3Client",
    request(req, ctx, next) {
      const share = net.share;
      const connection = clone(ConnectionSchema, requestConnection(req));
      connection.context ??= create(ConnectionContextSchema);
      connection.context.ipContext ??= create(IPContextSchema);
      const ipc = connection.context.ipContext;
      const ours = (text: string) => {
        const ip = addressOf(text);
        return ip !== undefined && net.inBlock(ip);
      };
      const stale = (text: string) => {
        const ip = addressOf(text);
        return ip !== undefined && net.inNetwork(ip) && !net.inBlock(ip);
      };
      ipc.srcIpAddrs = [...ipc.srcIpAddrs.filter((a) => !stale(a) && !ours(a)), share.self];
      ipc.dstRoutes = [
        ...ipc.dstRoutes.filter((r) => !stale(r.nextHop) && !ours(r.nextHop)),
        create(RouteSchema, { prefix: share.prefix, nextHop: share.selfIp }),
      ];
      return next.request({ ...req, connection }, ctx);
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}
