// SPDX-License-Identifier: Apache-2.0
/**
 * subnetipam: every client of an endpoint gets an address in one shared subnet (an L2 bridge
 * service: clients reach each other on-link).
 *
 * Purpose: from a prefix such as `172.16.2.0/24` the endpoint keeps the first host address for
 * itself (the gateway: its bridge's address) and gives each connection the lowest free one, with
 * the prefix length of the subnet: `src_ip_addrs = [172.16.2.2/24]`, `dst_ip_addrs =
 * [172.16.2.1/24]`. No routes: the subnet is on-link for everyone. The network and broadcast
 * addresses of an IPv4 subnet are never handed out.
 * A client that asks for an address (`src_ip_addrs[0]` on its first Request, e.g. after the
 * endpoint restarted) keeps it when it is free; an address outside the subnet is refused.
 * Chain placement: endpoint chains, after metadata (`requires: ["metadata"]`), before the
 * mechanisms.
 * Per-connection state: the client's address (server metadata). Released on Close and when the
 * first Request fails downstream.
 * Options: the subnet and, for one endpoint of a bridge domain spread over several endpoints
 * (`nsm nse bridge` with peers), the range inside it this endpoint hands out: its own address
 * is then the range's first usable one and clients get the others, still with the subnet's
 * length, so endpoints sharing the subnet never hand out the same address.
 * Failure behaviour: a bad prefix is InvalidArgument when built; an address outside the subnet is
 * InvalidArgument; a taken one is replaced by a free one; an exhausted subnet is ResourceExhausted.
 * A range outside the subnet is InvalidArgument when built; an asked address inside the subnet
 * but outside this endpoint's range is InvalidArgument too (another endpoint owns it).
 */
import { ConnectionContextSchema, ConnectionSchema, clone, create, IPContextSchema } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { invalidArgument } from "../../../core/errors.js";
import { requestConnection } from "../../../core/request.js";
import {
  addressOf,
  type Cidr,
  cidrContains,
  formatIp,
  type IpAddress,
  IpPool,
  parseCidr,
} from "../../../tools/cidr.js";
import { createMetadataKey, metadataOf } from "../metadata/index.js";

/** A subnet IPAM: the element, and the endpoint's own address in the subnet. */
export interface SubnetIpam {
  readonly server: NetworkServiceElement;
  /** The endpoint's address with the subnet's length (`172.16.2.1/24`), for its bridge. */
  readonly gateway: string;
  /** The subnet (`172.16.2.0/24`). */
  readonly subnet: string;
}

const addressKey = createMetadataKey<IpAddress>("subnetipam.address");

/** The pool of `range` (default: all of `subnet`) without the subnet's network and broadcast addresses. */
function poolOf(subnet: Cidr, range: string | undefined): IpPool {
  const part = range === undefined ? subnet : parseCidr(range);
  if (
    part.family !== subnet.family ||
    part.prefixLength < subnet.prefixLength ||
    !cidrContains(subnet, { family: part.family, value: part.first })
  )
    throw invalidArgument(`range ${range} is not inside the subnet ${subnet.text}`);
  const pool = new IpPool([part.text]);
  if (subnet.family === "ipv4" && subnet.prefixLength < 31) {
    for (const value of [subnet.first, subnet.last]) {
      const ip: IpAddress = { family: "ipv4", value };
      if (pool.isFree(ip)) pool.pull(ip);
    }
  }
  return pool;
}

/** An IPAM over `prefix`, handing out `range` (default: the whole subnet; see the module doc). */
export function subnetIpam(prefix: string, range?: string): SubnetIpam {
  const cidr = parseCidr(prefix);
  const subnet = cidr.text;
  const pool = poolOf(cidr, range);
  const withLength = (ip: IpAddress) => `${formatIp(ip)}/${cidr.prefixLength}`;
  const gateway = withLength(pool.allocate());

  /** The address for a first Request: the one asked for when free, else the lowest free one. */
  const take = (asked: string | undefined): IpAddress => {
    const ip = asked ? addressOf(asked) : undefined;
    if (asked && (!ip || !cidrContains(cidr, ip)))
      throw invalidArgument(`ip_context.src_ip_addrs: ${asked} is outside the subnet ${subnet} of this endpoint`);
    if (ip && !pool.owns(ip))
      throw invalidArgument(`ip_context.src_ip_addrs: ${asked} is outside the range ${range} this endpoint hands out`);
    return ip && pool.tryPull(ip) ? ip : pool.allocate();
  };

  const server: NetworkServiceElement = {
    name: "subnetipam",
    requires: ["metadata"],
    async request(req, ctx, next) {
      const md = metadataOf(ctx, false);
      const connection = clone(ConnectionSchema, requestConnection(req));
      const known = md.load(addressKey);
      const ip = known ?? take(connection.context?.ipContext?.srcIpAddrs[0]);
      connection.context ??= create(ConnectionContextSchema, {});
      connection.context.ipContext ??= create(IPContextSchema, {});
      connection.context.ipContext.srcIpAddrs = [withLength(ip)];
      connection.context.ipContext.dstIpAddrs = [gateway];
      md.store(addressKey, ip);
      try {
        return await next.request({ ...req, connection }, ctx);
      } catch (err) {
        if (!known) {
          md.delete(addressKey);
          pool.release(ip);
        }
        throw err;
      }
    },
    async close(conn, ctx, next) {
      const ip = metadataOf(ctx, false).loadAndDelete(addressKey);
      if (ip) pool.release(ip);
      await next.close(conn, ctx);
    },
  };
  return { server, gateway, subnet };
}
