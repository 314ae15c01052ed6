// SPDX-License-Identifier: Apache-2.0
/**
 * Token and SVID expiry of one role, as Prometheus gauges in seconds from now (negative once
 * expired), read at scrape time; the registry's default labels say the role and its name:
 * - `nsm_svid_expiry_seconds{spiffe_id}`: until the role's current X.509 SVID expires
 *   ({@link observeSvidExpiry}); absent when the role has no SVID (insecure).
 * - `nsm_token_expiry_seconds{segment}`: until the earliest expiry of the path tokens in this
 *   role's own path segment (named `segment`) of its live connections ({@link tokenExpiry}, an
 *   element); absent with no connection. A connection that is refreshed gets its new expiry; a
 *   closed one is forgotten.
 * (The labels also let a series be absent: prom-client shows 0 for an unlabelled gauge.)
 *
 * Chain placement of {@link tokenExpiry}: anywhere above the element that sets this role's path
 * segment token (it reads the connection the rest of the chain returned); the roles put it at the
 * top, with the metrics element. It never changes or delays a call.
 */
import { Gauge, type Registry } from "prom-client";
import type { Connection } from "../api/index.js";
import type { NetworkServiceElement } from "../sdk/core/chain.js";

/** Expired entries older than this are dropped at scrape (a connection that ended unseen). */
const FORGET_EXPIRED_AFTER_MS = 10 * 60_000;

/** Adds `nsm_svid_expiry_seconds`, read from the `current` SVID at each scrape. */
export function observeSvidExpiry(
  registry: Registry,
  current: () => { spiffeId: string; notAfter: Date } | undefined,
): void {
  new Gauge({
    name: "nsm_svid_expiry_seconds",
    help: "Seconds until this role's X.509 SVID expires (negative: expired)",
    labelNames: ["spiffe_id"],
    registers: [registry],
    collect() {
      this.reset();
      const svid = current();
      if (svid !== undefined) this.set({ spiffe_id: svid.spiffeId }, (svid.notAfter.getTime() - Date.now()) / 1000);
    },
  });
}

/** The expiry (epoch ms) of the token in `segmentName`'s path segment of `conn`, if any. */
export function segmentTokenExpiry(conn: Connection, segmentName: string): number | undefined {
  const segments = conn.path?.pathSegments ?? [];
  const own = segments.find((s) => s.name === segmentName && s.expires !== undefined);
  if (!own?.expires) return undefined;
  return Number(own.expires.seconds) * 1000 + Math.floor(own.expires.nanos / 1e6);
}

/**
 * The element feeding `nsm_token_expiry_seconds` (see the module doc): remembers, per live
 * connection, the expiry of the token in the path segment named `segmentName` (the role's name).
 */
export function tokenExpiry(registry: Registry, segmentName: string): NetworkServiceElement {
  const expiries = new Map<string, number>();
  new Gauge({
    name: "nsm_token_expiry_seconds",
    help: "Seconds until the earliest expiry of this role's path tokens in its live connections (negative: expired)",
    labelNames: ["segment"],
    registers: [registry],
    collect() {
      this.reset();
      const now = Date.now();
      let earliest = Number.POSITIVE_INFINITY;
      for (const [id, at] of expiries) {
        if (at < now - FORGET_EXPIRED_AFTER_MS) expiries.delete(id);
        else earliest = Math.min(earliest, at);
      }
      if (Number.isFinite(earliest)) this.set({ segment: segmentName }, (earliest - now) / 1000);
    },
  });
  return {
    name: "tokenExpiry",
    async request(request, ctx, next) {
      const conn = await next.request(request, ctx);
      const at = segmentTokenExpiry(conn, segmentName);
      const previous = request.connection?.id;
      if (previous && previous !== conn.id) expiries.delete(previous);
      if (at === undefined) expiries.delete(conn.id);
      else expiries.set(conn.id, at);
      return conn;
    },
    async close(conn, ctx, next) {
      expiries.delete(conn.id);
      return next.close(conn, ctx);
    },
  };
}
