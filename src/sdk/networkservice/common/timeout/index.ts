// SPDX-License-Identifier: Apache-2.0
/**
 * timeout (server): closes a connection whose client stopped refreshing it.
 *
 * Purpose: a client that dies never says Close; every server therefore closes the connection
 * itself (and the forwarder removes the data plane) when the previous hop's token expires
 * without a refresh, so a dead client leaks nothing.
 * Timing (upstream): at `path_segments[index-1].expires − the request's own timeout`, re-armed
 * by every successful Request (a refresh).
 * Chain placement: endpoint chains, after begin and metadata (the endpoint chain's `timeout` slot).
 * Per-connection state: the pending timer (server metadata); cancelled by Close.
 * Failure behaviour: never fails a Request; a connection without a previous segment expiry time
 * gets no timer.
 */
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { prevSegment } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { eventFactoryOf } from "../begin/index.js";
import { createMetadataKey, metadataOf } from "../metadata/index.js";

export interface TimeoutServerOptions {
  /** Stops all timers when aborted (the server's lifetime). */
  signal?: AbortSignal;
}

const timerKey = createMetadataKey<NodeJS.Timeout>("timeout");

export function timeoutServer(options: TimeoutServerOptions = {}): NetworkServiceElement {
  const timers = new Set<NodeJS.Timeout>();
  options.signal?.addEventListener("abort", () => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
  });
  return {
    name: "timeout",
    requires: ["metadata"],
    async request(req, ctx, next) {
      const md = metadataOf(ctx, false);
      const conn = await next.request(req, ctx);
      const old = md.loadAndDelete(timerKey);
      if (old) {
        clearTimeout(old);
        timers.delete(old);
      }
      const expires = prevSegment(conn)?.expires;
      if (!expires || options.signal?.aborted) return conn;
      const requestMs = ctx.deadline === undefined ? 0 : Math.max(0, ctx.deadline - Date.now());
      const delay = Math.max(0, timestampMs(expires) - Date.now() - requestMs);
      const factory = eventFactoryOf(ctx);
      const timer = setTimeout(() => {
        timers.delete(timer);
        ctx.log.info({ connId: conn.id }, "the previous hop's token expired without a refresh: closing");
        factory
          .close()
          .catch((err: unknown) => ctx.log.warn({ connId: conn.id, err: String(err) }, "timeout close failed"));
      }, delay);
      timers.add(timer);
      md.store(timerKey, timer);
      return conn;
    },
    async close(conn, ctx, next) {
      const t = metadataOf(ctx, false).loadAndDelete(timerKey);
      if (t) {
        clearTimeout(t);
        timers.delete(t);
      }
      await next.close(conn, ctx);
    },
  };
}
