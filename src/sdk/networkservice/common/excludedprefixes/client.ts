// SPDX-License-Identifier: Apache-2.0
/**
 * excludedprefixes (client): one client's connections never get overlapping addresses (upstream
 * `excludedprefixes.NewClient`).
 *
 * Purpose: a client with several connections (several NSURLs, possibly to endpoints that allocate
 * from the same CIDR) must not receive an address, or a route to a prefix, that one of its other
 * connections already uses. One instance is shared by the chains of all of a client's
 * connections: it remembers, per connection id, the addresses (src and dst) and route prefixes
 * each connection got, and adds those of the *other* connections to the request's
 * `ip_context.excluded_prefixes`, so the endpoint's IPAM skips them. A response that still holds
 * an excluded address is refused: the connection is closed downstream and the Request fails
 * with FailedPrecondition.
 * The returned connection carries the excluded prefixes it was requested with (what this element
 * added is not kept, so refreshes do not pile them up).
 * Chain placement: client chains (NSC), after the mechanisms, before connect.
 * Awareness groups (upstream `NSM_AWARENESS_GROUPS`, see ../awarenessgroups): connections whose
 * NSURLs are in one group do not exclude each other's prefixes (their endpoints know of each
 * other and may hand out overlapping addresses); they still exclude everyone else's.
 * Per-connection state: the prefixes each connection uses and its group, in the instance
 * (forgotten on Close).
 * Options: {@link ExcludedPrefixesClientOptions}.
 * Failure behaviour: an overlapping response fails the Request (see above) and changes nothing.
 */
import {
  type Connection,
  ConnectionContextSchema,
  ConnectionSchema,
  clone,
  create,
  type IPContext,
  IPContextSchema,
} from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { Code, NsmError } from "../../../core/errors.js";
import { requestConnection } from "../../../core/request.js";
import { addressOf, PrefixSet } from "../../../tools/cidr.js";
import { type AwarenessGroups, awarenessGroupOf } from "../awarenessgroups/index.js";

/** Options of {@link excludedPrefixesClient}. */
export interface ExcludedPrefixesClientOptions {
  /** Groups of NSURLs whose connections may overlap (parseAwarenessGroups). @default none */
  readonly awarenessGroups?: AwarenessGroups;
}

/** What one connection of the client uses, and the awareness group it is in (-1: none). */
interface Used {
  readonly prefixes: string[];
  readonly group: number;
}

/** Every address and route prefix of an IP context. */
function usedPrefixes(ipc: IPContext | undefined): string[] {
  if (!ipc) return [];
  return [
    ...ipc.srcIpAddrs,
    ...ipc.dstIpAddrs,
    ...ipc.srcRoutes.map((r) => r.prefix),
    ...ipc.dstRoutes.map((r) => r.prefix),
  ].filter((p) => p !== "");
}

/** The first src or dst address of `ipc` that `excluded` contains. */
function overlapping(ipc: IPContext | undefined, excluded: PrefixSet): string | undefined {
  for (const text of [...(ipc?.srcIpAddrs ?? []), ...(ipc?.dstIpAddrs ?? [])]) {
    const ip = addressOf(text);
    if (ip && excluded.contains(ip)) return text;
  }
  return undefined;
}

function withExcluded(conn: Connection, prefixes: readonly string[]): Connection {
  const out = clone(ConnectionSchema, conn);
  out.context ??= create(ConnectionContextSchema);
  out.context.ipContext ??= create(IPContextSchema);
  out.context.ipContext.excludedPrefixes = [...prefixes];
  return out;
}

/** Keeps a client's connections apart (see the module doc); share one instance across its chains. */
export function excludedPrefixesClient(options: ExcludedPrefixesClientOptions = {}): NetworkServiceElement {
  const groups = options.awarenessGroups ?? [];
  const used = new Map<string, Used>();
  /**
   * What the other connections use (those of its own awareness group aside), minus what this one
   * already has (a refresh keeps its addresses).
   */
  const othersOf = (conn: Connection, group: number): string[] => {
    const own = new Set(usedPrefixes(conn.context?.ipContext));
    const out = new Set<string>();
    for (const [id, other] of used) {
      if (id === conn.id || (group >= 0 && other.group === group)) continue;
      for (const p of other.prefixes) if (!own.has(p)) out.add(p);
    }
    return [...out];
  };
  return {
    name: "excludedprefixes",
    async request(req, ctx, next) {
      const requested = requestConnection(req);
      const group = groups.length > 0 ? awarenessGroupOf(req, groups) : -1;
      const original = requested.context?.ipContext?.excludedPrefixes ?? [];
      const added = othersOf(requested, group).filter((p) => !original.includes(p));
      const connection = added.length ? withExcluded(requested, [...original, ...added]) : requested;
      const conn = await next.request({ ...req, connection }, ctx);
      const clash = overlapping(conn.context?.ipContext, new PrefixSet(added));
      if (clash) {
        ctx.log.error({ connId: conn.id, address: clash, excluded: added }, "endpoint returned an excluded address");
        await next.close(conn, ctx.detached(5000)).catch(() => {});
        throw new NsmError(
          `endpoint returned ${clash}, which another connection of this client uses (excluded: ${added.join(", ")})`,
          Code.FailedPrecondition,
          { reason: "excluded-address" },
        );
      }
      used.set(conn.id, { prefixes: usedPrefixes(conn.context?.ipContext), group });
      return added.length ? withExcluded(conn, original) : conn;
    },
    async close(conn, ctx, next) {
      used.delete(conn.id);
      await next.close(conn, ctx);
    },
  };
}
