// SPDX-License-Identifier: Apache-2.0
/**
 * Programs an {@link IpDiff} on one interface of one netns (the kernel half of the
 * `connectioncontextkernel` elements), for the remote cross-connects: stale routes, neighbours
 * and addresses out, then the new addresses, routes and neighbours in.
 */
import { type KernelApi, type LinkRef, type NetnsPath, Scope } from "../../api.js";
import { tolerateGone } from "../xconnect/gone.js";
import { hasIpv6Address, type IpDiff, type IpPlan, ipPlanOf } from "./plan.js";

/** `RTPROT_BOOT`: the protocol of the routes we add (and of `ip route add` without `proto`). */
const RTPROT_BOOT = 3;
/** `RTN_UNICAST`. */
const RTN_UNICAST = 1;

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

/**
 * What one interface holds of what a plan programs, read from the kernel, for re-adopting an
 * interface of an earlier life: its global-scope addresses and the unicast routes of the main
 * table through it that are ours by protocol (`boot`: not the kernel's prefix routes). No
 * neighbours: ours cannot be told from learnt ones, so stale ones are left to age out.
 */
export async function observedIpPlan(kernel: KernelApi, netns: NetnsPath, index: number): Promise<IpPlan> {
  const [addresses, routes] = await Promise.all([
    kernel.listAddresses(netns, { link: index }),
    kernel.listRoutes(netns, { link: index }),
  ]);
  return ipPlanOf(
    addresses.filter((a) => a.scope === Scope.universe).map((a) => a.cidr),
    routes
      .filter((r) => r.protocol === RTPROT_BOOT && r.type === RTN_UNICAST)
      .map((r) => ({ dst: r.dst, gateway: r.gateway, scope: r.scope === Scope.link ? "link" : "universe" })),
  );
}
