// SPDX-License-Identifier: Apache-2.0
/**
 * point2pointipam: gives each connection a pair of host addresses (upstream
 * `ipam/point2pointipam` and `ipam/groupipam`, configured like `NSM_CIDR_PREFIX`).
 *
 * Purpose: an endpoint hands out, per connection and per CIDR group, two /32 (or /128)
 * addresses: the first free one for itself (dst), the next for the client (src), e.g.
 * `172.16.1.100/31` → NSE `172.16.1.100/32`, NSC `172.16.1.101/32`. It adds
 * `src_ip_addrs += src`, `src_routes += {prefix: dst}`, `dst_ip_addrs += dst` and
 * `dst_routes += {prefix: src}` (never twice). Each group gets its own pair, so
 * `["10.0.0.0/24", "fd00::/64"]` gives a dual-stack connection; inside a group (`[a, b]`)
 * the first prefix with two free addresses is used.
 * Addresses already in the request (a client re-requesting after the endpoint restarted, or
 * healing to another endpoint of the same pool) are recovered when they are free; on a reselect
 * (state RESELECT_REQUESTED) addresses outside this endpoint's prefixes, and the routes to them,
 * are dropped (they came from the endpoint the client left). Addresses in
 * `ip_context.excluded_prefixes` are never handed out; an address that becomes excluded on a
 * refresh is replaced.
 * Chain placement: endpoint chains, after metadata (`requires: ["metadata"]`), before the
 * mechanisms.
 * Per-connection state: the pairs in use (server-side metadata). Released on Close and when
 * the first Request fails downstream.
 * Options: {@link Point2PointIpamOptions}.
 * Failure behaviour: bad prefixes are InvalidArgument when the element is built; a bad excluded
 * prefix in a request is InvalidArgument; no free pair left is ResourceExhausted. Nothing stays
 * allocated after a failed Request.
 */
import {
  ConnectionContextSchema,
  ConnectionSchema,
  clone,
  create,
  type IPContext,
  IPContextSchema,
  RouteSchema,
  State,
} from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { Code, invalidArgument, NsmError } from "../../../core/errors.js";
import { requestConnection } from "../../../core/request.js";
import { addressOf, hostPrefix, type IpAddress, IpPool, PrefixSet } from "../../../tools/cidr.js";
import { createMetadataKey, metadataOf } from "../metadata/index.js";

/** Options of {@link point2pointIpamServer}. */
export interface Point2PointIpamOptions {
  /**
   * CIDR groups to allocate from, as in `NSM_CIDR_PREFIX`: a string is a group of one prefix,
   * an array is one group of several prefixes (`[a,b],c` → `[["a","b"], "c"]`, see
   * `parseCidrGroups`). Each group gives every connection one address pair.
   * Required, at least one prefix.
   */
  prefixes: readonly (string | readonly string[])[];
}

interface Allocation {
  readonly pool: IpPool;
  readonly src: IpAddress;
  readonly dst: IpAddress;
  /** `src` as it appears in ip_context (`a.b.c.d/32`). */
  readonly srcText: string;
  readonly dstText: string;
}

type Allocations = (Allocation | undefined)[];

function buildGroups(options: Readonly<Point2PointIpamOptions>): IpPool[][] {
  const groups = (options.prefixes ?? []).map((g) => (typeof g === "string" ? [g] : [...g]));
  if (groups.length === 0 || groups.some((g) => g.length === 0)) {
    throw invalidArgument("point2pointipam needs at least one prefix in every group", { reason: "bad-cidr" });
  }
  return groups.map((g) =>
    g.map((cidr) => {
      try {
        return new IpPool([cidr]);
      } catch (err) {
        const e = NsmError.from(err, Code.InvalidArgument);
        throw new NsmError(`point2pointipam: ${e.rawMessage}`, Code.InvalidArgument, { cause: e, reason: "bad-cidr" });
      }
    }),
  );
}

function makeAllocation(pool: IpPool, src: IpAddress, dst: IpAddress): Allocation {
  return { pool, src, dst, srcText: hostPrefix(src), dstText: hostPrefix(dst) };
}

function release(a: Allocation): void {
  a.pool.release(a.src);
  a.pool.release(a.dst);
}

/** Takes the first src and the first dst address of the request that one pool of the group can give back. */
function recover(group: readonly IpPool[], ipc: IPContext, exclude: PrefixSet): Allocation | undefined {
  if (ipc.srcIpAddrs.length === 0 || ipc.dstIpAddrs.length === 0) return undefined;
  const pullFirst = (pool: IpPool, addrs: readonly string[]) => {
    for (const text of addrs) {
      const ip = addressOf(text);
      if (ip && pool.tryPull(ip, exclude)) return ip;
    }
    return undefined;
  };
  for (const pool of group) {
    const src = pullFirst(pool, ipc.srcIpAddrs);
    const dst = pullFirst(pool, ipc.dstIpAddrs);
    if (src && dst) return makeAllocation(pool, src, dst);
    if (src) pool.release(src);
    if (dst) pool.release(dst);
  }
  return undefined;
}

/** The first two free addresses of the first pool of the group that has two: dst (NSE) first, then src. */
function allocate(group: readonly IpPool[], exclude: PrefixSet): Allocation {
  for (const pool of group) {
    const dst = pool.peek(exclude);
    if (!dst) continue;
    pool.pull(dst);
    const src = pool.peek(exclude);
    if (!src) {
      pool.release(dst);
      continue;
    }
    pool.pull(src);
    return makeAllocation(pool, src, dst);
  }
  const cidrs = group.flatMap((p) => p.cidrs).join(", ");
  throw new NsmError(`no free address pair left in ${cidrs}`, Code.ResourceExhausted, { reason: "pool-exhausted" });
}

function addAddr(list: string[], addr: string): void {
  if (!list.includes(addr)) list.push(addr);
}

function addRoute(ipc: IPContext, which: "srcRoutes" | "dstRoutes", prefix: string): void {
  if (!ipc[which].some((r) => r.prefix === prefix)) ipc[which].push(create(RouteSchema, { prefix }));
}

function addToContext(ipc: IPContext, a: Allocation): void {
  addAddr(ipc.srcIpAddrs, a.srcText);
  addRoute(ipc, "srcRoutes", a.dstText);
  addAddr(ipc.dstIpAddrs, a.dstText);
  addRoute(ipc, "dstRoutes", a.srcText);
}

function removeFromContext(ipc: IPContext, a: Allocation): void {
  ipc.srcIpAddrs = ipc.srcIpAddrs.filter((x) => x !== a.srcText);
  ipc.dstIpAddrs = ipc.dstIpAddrs.filter((x) => x !== a.dstText);
  ipc.srcRoutes = ipc.srcRoutes.filter((r) => r.prefix !== a.dstText);
  ipc.dstRoutes = ipc.dstRoutes.filter((r) => r.prefix !== a.srcText);
}

/** Removes addresses (and the routes to them) that no prefix of `ours` contains. */
function dropForeign(ipc: IPContext, ours: PrefixSet): void {
  const foreign = (text: string) => {
    const ip = addressOf(text);
    return ip !== undefined && !ours.contains(ip);
  };
  const gone = new Set([...ipc.srcIpAddrs, ...ipc.dstIpAddrs].filter(foreign));
  if (gone.size === 0) return;
  ipc.srcIpAddrs = ipc.srcIpAddrs.filter((x) => !gone.has(x));
  ipc.dstIpAddrs = ipc.dstIpAddrs.filter((x) => !gone.has(x));
  ipc.srcRoutes = ipc.srcRoutes.filter((r) => !gone.has(r.prefix));
  ipc.dstRoutes = ipc.dstRoutes.filter((r) => !gone.has(r.prefix));
}

function parseExcluded(prefixes: readonly string[]): PrefixSet {
  try {
    return new PrefixSet(prefixes);
  } catch (err) {
    const e = NsmError.from(err, Code.InvalidArgument);
    throw new NsmError(`bad excluded prefix: ${e.rawMessage}`, Code.InvalidArgument, { cause: e, reason: "bad-cidr" });
  }
}

/** Point-to-point address allocation per connection (see the module doc). */
export function point2pointIpamServer(options: Readonly<Point2PointIpamOptions>): NetworkServiceElement {
  const groups = buildGroups(options);
  const ours = new PrefixSet(groups.flat().flatMap((p) => p.cidrs));
  const key = createMetadataKey<Allocations>("point2pointipam");
  return {
    name: "point2pointipam",
    requires: ["metadata"],
    async request(req, ctx, next) {
      const connection = clone(ConnectionSchema, requestConnection(req));
      connection.context ??= create(ConnectionContextSchema);
      connection.context.ipContext ??= create(IPContextSchema);
      const ipc = connection.context.ipContext;
      const exclude = parseExcluded(ipc.excludedPrefixes);
      const md = metadataOf(ctx, false);
      const previous = md.load(key);
      // A client reselecting from another endpoint brings that endpoint's addresses: they mean
      // nothing here (and would leave the client routes to an endpoint it no longer reaches).
      if (!previous && connection.state === State.RESELECT_REQUESTED) dropForeign(ipc, ours);
      const current: Allocations = previous ? [...previous] : [];
      const fresh = new Set<number>();
      const undo = () => {
        for (const i of fresh) {
          release(current[i]!);
          current[i] = undefined;
        }
        if (previous) md.store(key, current);
        else md.delete(key);
      };
      try {
        groups.forEach((group, i) => {
          let a = current[i];
          if (a && (exclude.contains(a.src) || exclude.contains(a.dst))) {
            ctx.log.debug({ connId: connection.id, src: a.srcText, dst: a.dstText }, "addresses became excluded");
            removeFromContext(ipc, a);
            release(a);
            current[i] = a = undefined;
          }
          if (!a) {
            a = recover(group, ipc, exclude) ?? allocate(group, exclude);
            current[i] = a;
            fresh.add(i);
          }
          addToContext(ipc, a);
        });
      } catch (err) {
        undo();
        throw err;
      }
      md.store(key, current);
      try {
        return await next.request({ ...req, connection }, ctx);
      } catch (err) {
        undo();
        throw err;
      }
    },
    async close(conn, ctx, next) {
      for (const a of metadataOf(ctx, false).loadAndDelete(key) ?? []) if (a) release(a);
      await next.close(conn, ctx);
    },
  };
}
