// SPDX-License-Identifier: Apache-2.0
/**
 * Programs an {@link IpDiff} on one interface of one netns (the kernel half of the
 * `connectioncontextkernel` elements), for the remote cross-connects: stale routes, neighbours
 * and addresses out, then the new addresses, routes and neighbours in. Also the "gone"
 * tolerance shared by their cleanup paths.
 */
import { Code, NsmError } from "../../sdk/core/errors.js";
import type { KernelApi, LinkRef, NetnsPath } from "../api.js";
import { hasIpv6Address, type IpDiff } from "./ip-plan.js";

/** True for an error that means "it is not there any more" (link, netns, address, route, neighbour). */
export function isGone(err: unknown): boolean {
  if (!(err instanceof NsmError)) return false;
  return err.code === Code.NotFound || err.reason === "EADDRNOTAVAIL";
}

/** Runs `op`; "already gone" counts as done. */
export async function tolerateGone<T>(op: Promise<T>): Promise<T | undefined> {
  try {
    return await op;
  } catch (err) {
    if (!isGone(err)) throw err;
    return undefined;
  }
}

/** Removals first (a changed route is replaced, not removed), then addresses, routes, neighbours. */
export async function applyIpDiff(
  kernel: KernelApi,
  netns: NetnsPath,
  name: string,
  link: LinkRef,
  d: IpDiff,
): Promise<void> {
  for (const r of d.removeRoutes)
    await tolerateGone(kernel.deleteRoute(netns, { dst: r.dst, gateway: r.gateway, link }));
  for (const n of d.removeNeighbors) await tolerateGone(kernel.deleteNeighbor(netns, { link, address: n.address }));
  for (const a of d.removeAddresses) await tolerateGone(kernel.deleteAddress(netns, link, a));
  if (hasIpv6Address({ addresses: d.addAddresses })) {
    // A link moved or created into a netns may come with IPv6 disabled; the kernel refuses v6 addresses then.
    await kernel.writeSysctl(netns, `net/ipv6/conf/${name}/disable_ipv6`, "0");
  }
  for (const a of d.addAddresses) await kernel.replaceAddress(netns, link, a);
  for (const r of d.addRoutes) {
    await kernel.replaceRoute(netns, { dst: r.dst, link, scope: r.scope, gateway: r.gateway, onlink: !!r.gateway });
  }
  for (const n of d.addNeighbors) {
    await kernel.replaceNeighbor(netns, { link, address: n.address, mac: n.mac, state: "reachable" });
  }
}
