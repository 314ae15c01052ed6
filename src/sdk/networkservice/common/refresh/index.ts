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
 * Per-connection state: the pending timer (client metadata); cancelled by Close and by the next
 * Request (which schedules anew).
 * Failure behaviour: never fails a Request; paths without expiry times are not refreshed.
 */
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Connection } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { eventFactoryOf } from "../begin/index.js";
import { createMetadataKey, metadataOf } from "../metadata/index.js";

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

interface RefreshState {
  timer: NodeJS.Timeout | undefined;
  closed: boolean;
}

const stateKey = createMetadataKey<RefreshState>("refresh");

export function refreshClient(options: RefreshClientOptions = {}): NetworkServiceElement {
  const retryMs = options.retryIntervalMs ?? DEFAULT_REFRESH_RETRY_INTERVAL_MS;
  const live = new Set<RefreshState>();
  options.signal?.addEventListener("abort", () => {
    for (const st of live) {
      st.closed = true;
      clearTimeout(st.timer);
    }
    live.clear();
  });
  return {
    name: "refresh",
    requires: ["metadataClient"],
    async request(req, ctx, next) {
      const state = metadataOf(ctx, true).loadOrStore(stateKey, () => ({ timer: undefined, closed: false }));
      clearTimeout(state.timer);
      state.timer = undefined;
      const factory = eventFactoryOf(ctx);
      const schedule = (delay: number) => {
        if (state.closed || options.signal?.aborted) return;
        live.add(state);
        state.timer = setTimeout(() => {
          state.timer = undefined;
          // A successful refresh re-enters this element and schedules the next one.
          factory.request().catch((err: unknown) => {
            // The re-entered Request may already have scheduled the retry.
            if (state.closed || state.timer || factory.state !== "established") return;
            ctx.log.warn({ connId: req.connection?.id, err: String(err) }, "refresh failed, retrying");
            schedule(retryMs);
          });
        }, delay);
      };
      let conn: Awaited<ReturnType<typeof next.request>>;
      try {
        conn = await next.request(req, ctx);
      } catch (err) {
        if (factory.state === "established") schedule(retryMs);
        throw err;
      }
      const delay = refreshDelayMs(conn);
      if (delay !== undefined) schedule(delay);
      return conn;
    },
    async close(conn, ctx, next) {
      const state = metadataOf(ctx, true).loadAndDelete(stateKey);
      if (state) {
        state.closed = true;
        clearTimeout(state.timer);
        live.delete(state);
      }
      await next.close(conn, ctx);
    },
  };
}
