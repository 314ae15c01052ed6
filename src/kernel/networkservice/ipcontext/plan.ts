// SPDX-License-Identifier: Apache-2.0
/**
 * What the IP context of a connection means for each netns, as plain data that can be
 * compared and diffed (pure logic: no kernel access).
 *
 * The route helpers follow the upstream `IPContext` helpers (api `ipcontext_helpers.go`), which
 * the upstream `connectioncontextkernel` elements program:
 * - the client (NSC) netns gets `src_ip_addrs`, link routes for {@link dstIpRoutes}, then
 *   {@link srcRoutesWithExplicitNextHop} (scope universe, on-link gateway), and `ip_neighbors`;
 * - the endpoint (NSE) netns gets `dst_ip_addrs`, link routes for {@link srcIpRoutes}, then
 *   {@link dstRoutesWithExplicitNextHop}.
 *
 * Upstream skips entries it cannot parse; here a malformed address, prefix, next hop or MAC is
 * InvalidArgument, so a bad IP context fails the Request before anything is created.
 */
import type { IPContext } from "../../../api/index.js";
import { invalidArgument } from "../../../sdk/core/errors.js";
import {
  type Cidr,
  cidrContains,
  formatIp,
  IP_BITS,
  type IpAddress,
  tryParseCidr,
  tryParseIp,
} from "../../../sdk/tools/cidr.js";

/** A route as the IPContext carries it: `prefix` (CIDR) and an optional `nextHop` ("" = none). */
export interface IpRoute {
  prefix: string;
  nextHop: string;
}

/** An interface address with its prefix: the host part is kept (`172.16.1.101/24`). */
interface IfAddress {
  ip: IpAddress;
  net: Cidr;
  /** Canonical `address/prefixLength`. */
  text: string;
}

function parseIfAddress(text: string, field: string): IfAddress {
  const slash = text.indexOf("/");
  const ip = tryParseIp(slash < 0 ? text : text.slice(0, slash));
  const net = slash < 0 ? ip && tryParseCidr(`${formatIp(ip)}/${IP_BITS[ip.family]}`) : tryParseCidr(text);
  if (!ip || !net) throw invalidArgument(`ip_context.${field}: ${JSON.stringify(text)} is not an address/prefix`);
  return { ip, net, text: `${formatIp(ip)}/${net.prefixLength}` };
}

const parseAll = (list: readonly string[], field: string) => list.map((t) => parseIfAddress(t, field));

const contains = (nets: readonly IfAddress[], ip: IpAddress) => nets.some((n) => cidrContains(n.net, ip));

/** Host routes for the `addrs` not inside any of `others`' prefixes (upstream GetSrcIPRoutes/GetDstIPRoutes). */
function uncoveredRoutes(addrs: readonly IfAddress[], others: readonly IfAddress[]): IpRoute[] {
  return addrs.filter((a) => !contains(others, a.ip)).map((a) => ({ prefix: a.text, nextHop: "" }));
}

/**
 * Routes with an empty next hop get the first address of the same family in `toward` as
 * gateway, unless the route's prefix address is inside one of `toward`'s prefixes (upstream
 * getRoutesWithExplicitNextHop).
 */
function withExplicitNextHop(
  routes: readonly { prefix: string; nextHop: string }[],
  toward: readonly IfAddress[],
  field: string,
): IpRoute[] {
  return routes.map((r) => {
    const dst = parseIfAddress(r.prefix, `${field}.prefix`);
    if (r.nextHop) {
      const gw = tryParseIp(r.nextHop);
      if (!gw || gw.family !== dst.ip.family) {
        throw invalidArgument(
          `ip_context.${field}: next hop ${JSON.stringify(r.nextHop)} of ${r.prefix} is not an address of its family`,
        );
      }
      return { prefix: r.prefix, nextHop: formatIp(gw) };
    }
    const sameFamily = toward.filter((a) => a.ip.family === dst.ip.family);
    const first = sameFamily[0];
    if (!first || contains(sameFamily, dst.ip)) return { prefix: r.prefix, nextHop: "" };
    return { prefix: r.prefix, nextHop: formatIp(first.ip) };
  });
}

/** Host routes to the src addresses not inside a dst prefix (upstream `GetSrcIPRoutes`). */
export function srcIpRoutes(ipc: IPContext | undefined): IpRoute[] {
  return uncoveredRoutes(
    parseAll(ipc?.srcIpAddrs ?? [], "src_ip_addrs"),
    parseAll(ipc?.dstIpAddrs ?? [], "dst_ip_addrs"),
  );
}

/** Host routes to the dst addresses not inside a src prefix (upstream `GetDstIPRoutes`). */
export function dstIpRoutes(ipc: IPContext | undefined): IpRoute[] {
  return uncoveredRoutes(
    parseAll(ipc?.dstIpAddrs ?? [], "dst_ip_addrs"),
    parseAll(ipc?.srcIpAddrs ?? [], "src_ip_addrs"),
  );
}

/** `src_routes`, gateway defaulting to the first dst address of the family (upstream `GetSrcRoutesWithExplicitNextHop`). */
export function srcRoutesWithExplicitNextHop(ipc: IPContext | undefined): IpRoute[] {
  return withExplicitNextHop(ipc?.srcRoutes ?? [], parseAll(ipc?.dstIpAddrs ?? [], "dst_ip_addrs"), "src_routes");
}

/** `dst_routes`, gateway defaulting to the first src address of the family (upstream `GetDstRoutesWithExplicitNextHop`). */
export function dstRoutesWithExplicitNextHop(ipc: IPContext | undefined): IpRoute[] {
  return withExplicitNextHop(ipc?.dstRoutes ?? [], parseAll(ipc?.srcIpAddrs ?? [], "src_ip_addrs"), "dst_routes");
}

// ------------------------------------------------------------------ per-netns plan

/** One route to program: `dst` masked; a gateway means scope universe and on-link. */
export interface RoutePlan {
  dst: string;
  gateway?: string;
  scope: "link" | "universe";
}

export interface NeighborPlan {
  address: string;
  /** Lower-case `aa:bb:cc:dd:ee:ff`. */
  mac: string;
}

/** What one netns gets on its interface. Lists are sorted and de-duplicated, so plans compare as JSON. */
export interface IpPlan {
  /** `address/prefixLength`, host part kept. */
  addresses: string[];
  routes: RoutePlan[];
  neighbors: NeighborPlan[];
}

function normalizeMac(text: string): string {
  const mac = text.trim().toLowerCase().replaceAll("-", ":");
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) {
    throw invalidArgument(`ip_context.ip_neighbors: ${JSON.stringify(text)} is not a MAC address`);
  }
  return mac;
}

const byKey =
  <T>(key: (x: T) => string) =>
  (a: T, b: T) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;

/**
 * Link routes first, then the others; one route per destination, the later winning, as
 * successive `RouteReplace`s upstream leave it in the kernel.
 */
function routePlans(linkRoutes: readonly IpRoute[], routes: readonly IpRoute[]): RoutePlan[] {
  const out = new Map<string, RoutePlan>();
  const add = (r: IpRoute, scope: RoutePlan["scope"]) => {
    const dst = parseIfAddress(r.prefix, "route prefix").net.text;
    out.delete(dst);
    out.set(dst, r.nextHop ? { dst, gateway: r.nextHop, scope } : { dst, scope });
  };
  for (const r of linkRoutes) add(r, "link");
  for (const r of routes) add(r, "universe");
  return [...out.values()].sort(byKey((r) => r.dst));
}

function addressPlans(list: readonly string[], field: string): string[] {
  return [...new Set(parseAll(list, field).map((a) => a.text))].sort();
}

/** What the client (NSC) netns gets. */
export function clientIpPlan(ipc: IPContext | undefined): IpPlan {
  const neighbors = new Map<string, NeighborPlan>();
  for (const n of ipc?.ipNeighbors ?? []) {
    const ip = tryParseIp(n.ip);
    if (!ip) throw invalidArgument(`ip_context.ip_neighbors: ${JSON.stringify(n.ip)} is not an IP address`);
    const address = formatIp(ip);
    neighbors.set(address, { address, mac: normalizeMac(n.hardwareAddress) });
  }
  return {
    addresses: addressPlans(ipc?.srcIpAddrs ?? [], "src_ip_addrs"),
    routes: routePlans(dstIpRoutes(ipc), srcRoutesWithExplicitNextHop(ipc)),
    neighbors: [...neighbors.values()].sort(byKey((n) => n.address)),
  };
}

/** What the endpoint (NSE) netns gets. */
export function endpointIpPlan(ipc: IPContext | undefined): IpPlan {
  return {
    addresses: addressPlans(ipc?.dstIpAddrs ?? [], "dst_ip_addrs"),
    routes: routePlans(srcIpRoutes(ipc), dstRoutesWithExplicitNextHop(ipc)),
    neighbors: [],
  };
}

/** The changes that turn `from` into `to`. With `force`, everything in `to` is (re)applied. */
export interface IpDiff {
  removeAddresses: string[];
  addAddresses: string[];
  /** Routes whose destination is no longer wanted (a changed route is only in `addRoutes`: replace). */
  removeRoutes: RoutePlan[];
  addRoutes: RoutePlan[];
  removeNeighbors: NeighborPlan[];
  addNeighbors: NeighborPlan[];
}

export function diffIpPlans(from: IpPlan, to: IpPlan, force = false): IpDiff {
  const json = (x: unknown) => JSON.stringify(x);
  const missing = <T>(a: readonly T[], b: readonly T[], key: (x: T) => string) => {
    const keys = new Set(b.map(key));
    return a.filter((x) => !keys.has(key(x)));
  };
  const fresh = <T>(a: readonly T[], b: readonly T[]) => (force ? [...a] : missing(a, b, json));
  return {
    removeAddresses: missing(from.addresses, to.addresses, (a) => a),
    addAddresses: fresh(to.addresses, from.addresses),
    removeRoutes: missing(from.routes, to.routes, (r) => r.dst),
    addRoutes: fresh(to.routes, from.routes),
    removeNeighbors: missing(from.neighbors, to.neighbors, (n) => n.address),
    addNeighbors: fresh(to.neighbors, from.neighbors),
  };
}

/**
 * An {@link IpPlan} from what the kernel reports on one interface (addresses as
 * `address/prefixLength`, routes with a masked `dst`), in the plans' canonical text, so that
 * `diffIpPlans(observed, plan)` finds exactly what differs. Entries it cannot parse are dropped.
 */
export function ipPlanOf(
  addresses: readonly string[],
  routes: readonly { dst: string; gateway?: string; scope: "link" | "universe" }[],
): IpPlan {
  const canon = (text: string, field: string) => {
    try {
      return parseIfAddress(text, field);
    } catch {
      return undefined;
    }
  };
  const addrs = addresses.map((a) => canon(a, "address")?.text).filter((a): a is string => a !== undefined);
  const out = new Map<string, RoutePlan>();
  for (const r of routes) {
    const dst = canon(r.dst, "route")?.net.text;
    const gw = r.gateway === undefined ? undefined : tryParseIp(r.gateway);
    if (!dst || (r.gateway !== undefined && !gw)) continue;
    out.set(dst, gw ? { dst, gateway: formatIp(gw), scope: r.scope } : { dst, scope: r.scope });
  }
  return {
    addresses: [...new Set(addrs)].sort(),
    routes: [...out.values()].sort(byKey((r) => r.dst)),
    neighbors: [],
  };
}

/** Everything in either plan (what may be in the kernel after a diff failed halfway). */
export function unionIpPlans(a: IpPlan, b: IpPlan): IpPlan {
  const merge = <T>(x: readonly T[], y: readonly T[], key: (v: T) => string) => {
    const m = new Map<string, T>();
    for (const v of [...x, ...y]) m.set(key(v), v);
    return [...m.values()].sort(byKey(key));
  };
  return {
    addresses: merge(a.addresses, b.addresses, (v) => v),
    routes: merge(a.routes, b.routes, (r) => JSON.stringify(r)),
    neighbors: merge(a.neighbors, b.neighbors, (n) => JSON.stringify(n)),
  };
}

/** True if the plan has an IPv6 address (IPv6 must then be enabled on the interface first). */
export const hasIpv6Address = (plan: Pick<IpPlan, "addresses">): boolean => plan.addresses.some((a) => a.includes(":"));
