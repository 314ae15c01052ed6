// SPDX-License-Identifier: Apache-2.0
/**
 * refresh (client): re-requests a connection before the tokens on its path expire.
 *
 * Purpose: only the NSC refreshes (passthrough hops are built without it); its refresh walks the
 * whole path, re-authorizing every hop and re-issuing every token, and proves to every server's
 * `timeout` that the client is alive.
 * Timing (upstream): the shortest remaining lifetime over the path's segments, scaled by 1/3 for
 * a one-segment path and by `0.2 + 0.2 × index / segments` otherwise (0.2 for an NSC). A failed
 * refresh is retried every 200 ms until the connection is closed or the chain's lifetime ends.
 * Chain placement: client chains, after begin and metadata.
 * Per-connection state: the pending refresh (one task per connection id); cancelled by Close and
 * by the next Request (which schedules anew).
 * Failure behaviour: never fails a Request; paths without expiry times are not refreshed.
 */
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Connection } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { requestConnection } from "../../../core/request.js";
import { KeyedTimers, type ScheduledTask } from "../../../tools/timers.js";
import { eventFactoryOf } from "../begin/index.js";

export interface RefreshClientOptions {
  /** Stops all refreshing when aborted (the client's lifetime). */
  signal?: AbortSignal;
  /** Delay between attempts after a failed refresh. @default 200 */
  retryIntervalMs?: number;
}

export const DEFAULT_REFRESH_RETRY_INTERVAL_MS = 200;

/** When to refresh, in ms from now, or undefined when no segment carries an expiry time. */
export function refreshDelayMs(conn: Connection, now = Date.now()): number | undefined {
  const segments = conn.path?.pathSegments ?? [];
  let min: number | undefined;
  for (const s of segments) {
    if (!s.expires) continue;
    const left = timestampMs(s.expires) - now;
    min = min === undefined ? left : Math.min(min, left);
  }
  if (min === undefined) return undefined;
  const scale = segments.length <= 1 ? 1 / 3 : 0.2 + (0.2 * (conn.path?.index ?? 0)) / segments.length;
  return Math.max(0, Math.floor(min * scale));
}

export function refreshClient(options: RefreshClientOptions = {}): NetworkServiceElement {
  const retryMs = options.retryIntervalMs ?? DEFAULT_REFRESH_RETRY_INTERVAL_MS;
  // Per connection id: the next refresh. Replaced by every Request, cancelled by Close.
  const timers = new KeyedTimers<string>({ signal: options.signal });
  return {
    name: "refresh",
    requires: ["metadataClient"],
    async request(req, ctx, next) {
      const id = requestConnection(req).id;
      timers.cancel(id);
      const factory = eventFactoryOf(ctx);
      const refresh = (task: ScheduledTask<undefined>) => {
        // A successful refresh re-enters this element and schedules the next one.
        factory.request().catch((err: unknown) => {
          // The re-entered Request may already have scheduled the retry (then this task is replaced).
          if (task.signal.aborted || factory.state !== "established") return;
          ctx.log.warn({ connId: id, err: String(err) }, "refresh failed, retrying");
          task.retry(retryMs);
        });
      };
      let conn: Awaited<ReturnType<typeof next.request>>;
      try {
        conn = await next.request(req, ctx);
      } catch (err) {
        if (factory.state === "established") timers.schedule(id, retryMs, refresh, undefined);
        throw err;
      }
      const delay = refreshDelayMs(conn);
      if (delay !== undefined) timers.schedule(id, delay, refresh, undefined);
      return conn;
    },
    async close(conn, ctx, next) {
      timers.cancel(conn.id);
      await next.close(conn, ctx);
    },
  };
}
