// SPDX-License-Identifier: Apache-2.0
/**
 * vl3 (server): the addresses and routes a vL3 endpoint gives (upstream sdk
 * `connectioncontext/ipcontext/vl3` server, with the differences below).
 *
 * A client gets one address of the endpoint's block (`src_ip_addrs`), the endpoint's address
 * (`dst_ip_addrs`) and routes to the block and to the whole vL3 network through the endpoint
 * (`src_routes`, next hop the endpoint's address); the endpoint gets a route to the client's
 * address (`dst_routes`). The client keeps its address across refreshes, and gets it back from an
 * endpoint that restarted with the same block (the address in the request is taken when free).
 * Addresses and routes inside the vL3 network that the endpoint did not give (a client healing
 * from another vL3 endpoint brings them) are replaced: upstream sdk#1393 left them.
 *
 * Another vL3 endpoint (a *peer*, see ./client.ts) is recognised by what it announces: a route
 * in `dst_routes` to a whole block through one of its own `src_ip_addrs` (upstream guesses from
 * the DNS context). A peer keeps its addresses and routes; it gets the endpoint's address and a
 * route to the endpoint's block (not to the whole network: each peer routes only its own block).
 *
 * Chain placement: endpoint chains, after metadata (`requires: ["metadata"]`), before the
 * mechanisms. Per-connection state: the client's address (server metadata), released on Close
 * and when the first Request fails downstream.
 * Failure behaviour: Unavailable before the IPAM assigned a block; ResourceExhausted when the
 * block has no free address; a malformed excluded prefix is InvalidArgument.
 */
import {
  ConnectionContextSchema,
  ConnectionSchema,
  clone,
  create,
  type IPContext,
  IPContextSchema,
  RouteSchema,
} from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { requestConnection } from "../../../core/request.js";
import { addressOf, formatIp, hostPrefix, type IpAddress, tryParseCidr } from "../../../tools/cidr.js";
import { createMetadataKey, metadataOf } from "../metadata/index.js";
import type { Vl3Network, Vl3Share } from "./network.js";

/** The client address a connection holds, and the block it came from. */
interface Lease {
  readonly ip: IpAddress;
  readonly prefix: string;
}

function addAddr(list: string[], addr: string): void {
  if (!list.includes(addr)) list.push(addr);
}

function addRoute(ipc: IPContext, which: "srcRoutes" | "dstRoutes", prefix: string, nextHop = ""): void {
  if (!ipc[which].some((r) => r.prefix === prefix)) ipc[which].push(create(RouteSchema, { prefix, nextHop }));
}

/** True when the request announces a block behind one of its own addresses (a vL3 peer). */
export function announcesBlock(ipc: IPContext | undefined): boolean {
  if (!ipc) return false;
  const own = new Set(
    ipc.srcIpAddrs
      .map((a) => addressOf(a))
      .filter((a) => a !== undefined)
      .map(formatIp),
  );
  return ipc.dstRoutes.some((r) => {
    const c = tryParseCidr(r.prefix);
    const hop = addressOf(r.nextHop);
    return (
      c !== undefined &&
      hop !== undefined &&
      own.has(formatIp(hop)) &&
      c.first <= hop.value &&
      hop.value <= c.last &&
      c.prefixLength < (c.family === "ipv4" ? 32 : 128)
    );
  });
}

/** Drops addresses and routes inside the vL3 network (what another vL3 endpoint gave). */
function dropVl3(ipc: IPContext, net: Vl3Network): void {
  const inside = (text: string) => {
    const ip = addressOf(text);
    return ip !== undefined && net.inNetwork(ip);
  };
  ipc.srcIpAddrs = ipc.srcIpAddrs.filter((a) => !inside(a));
  ipc.dstIpAddrs = ipc.dstIpAddrs.filter((a) => !inside(a));
  ipc.srcRoutes = ipc.srcRoutes.filter((r) => !inside(r.prefix));
  ipc.dstRoutes = ipc.dstRoutes.filter((r) => !inside(r.prefix));
}

function giveClient(ipc: IPContext, share: Vl3Share, ip: IpAddress): void {
  addAddr(ipc.srcIpAddrs, hostPrefix(ip));
  addAddr(ipc.dstIpAddrs, share.self);
  addRoute(ipc, "srcRoutes", share.prefix, share.selfIp);
  addRoute(ipc, "srcRoutes", share.network, share.selfIp);
  addRoute(ipc, "dstRoutes", hostPrefix(ip));
}

function givePeer(ipc: IPContext, share: Vl3Share): void {
  addAddr(ipc.dstIpAddrs, share.self);
  addRoute(ipc, "srcRoutes", share.prefix, share.selfIp);
}

/** The vL3 endpoint's IP context (see the module doc). */
export function vl3Server(net: Vl3Network): NetworkServiceElement {
  const key = createMetadataKey<Lease>("vl3.lease");
  return {
    name: "vl3",
    requires: ["metadata"],
    async request(req, ctx, next) {
      const share = net.share;
      const connection = clone(ConnectionSchema, requestConnection(req));
      connection.context ??= create(ConnectionContextSchema);
      connection.context.ipContext ??= create(IPContextSchema);
      const ipc = connection.context.ipContext;
      if (announcesBlock(ipc)) {
        givePeer(ipc, share);
        const conn = await next.request({ ...req, connection }, ctx);
        net.setPeer(conn.id, ipc.srcIpAddrs[0]?.split("/")[0]);
        return conn;
      }
      const md = metadataOf(ctx, false);
      let lease = md.load(key);
      if (lease && lease.prefix !== share.prefix) lease = undefined;
      const fresh = !lease;
      if (!lease) {
        const wanted = ipc.srcIpAddrs.map((a) => addressOf(a)).filter((a) => a !== undefined && net.inBlock(a));
        lease = { ip: net.allocate(wanted as IpAddress[], ipc.excludedPrefixes), prefix: share.prefix };
      }
      dropVl3(ipc, net);
      giveClient(ipc, share, lease.ip);
      md.store(key, lease);
      try {
        return await next.request({ ...req, connection }, ctx);
      } catch (err) {
        if (fresh) {
          net.release(lease.ip);
          md.delete(key);
        }
        throw err;
      }
    },
    async close(conn, ctx, next) {
      net.setPeer(conn.id, undefined);
      const lease = metadataOf(ctx, false).loadAndDelete(key);
      if (lease && lease.prefix === net.share.prefix) net.release(lease.ip);
      await next.close(conn, ctx);
    },
  };
}
