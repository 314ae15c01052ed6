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
 * Per-connection state: the pending close (one task per connection id); cancelled by Close.
 * Failure behaviour: never fails a Request; a connection without a previous segment expiry time
 * gets no timer.
 */
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { prevSegment } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import type { Logger } from "../../../core/logger.js";
import { KeyedTimers, type ScheduledTask } from "../../../tools/timers.js";
import { type EventFactory, eventFactoryOf } from "../begin/index.js";

export interface TimeoutServerOptions {
  /** Stops all timers when aborted (the server's lifetime). */
  signal?: AbortSignal;
}

/**
 * The task that closes connection `connId` when its timer fires. It holds only the id, the
 * event factory and the logger: not the Request's context or connection, which would stay in
 * memory for the whole life of every connection.
 */
function expiryClose(connId: string, factory: EventFactory, log: Logger): (task: ScheduledTask<undefined>) => void {
  return (task) => {
    task.done();
    log.info({ connId }, "the previous hop's token expired without a refresh: closing");
    factory.close().catch((err: unknown) => log.warn({ connId, err: String(err) }, "timeout close failed"));
  };
}

export function timeoutServer(options: TimeoutServerOptions = {}): NetworkServiceElement {
  // Per connection id: the pending close. Re-armed by every successful Request, cancelled by Close.
  const timers = new KeyedTimers<string>({ signal: options.signal });
  return {
    name: "timeout",
    requires: ["metadata"],
    async request(req, ctx, next) {
      const conn = await next.request(req, ctx);
      timers.cancel(conn.id);
      const expires = prevSegment(conn)?.expires;
      if (!expires) return conn;
      const requestMs = ctx.deadline === undefined ? 0 : Math.max(0, ctx.deadline - Date.now());
      const closeExpired = expiryClose(conn.id, eventFactoryOf(ctx), ctx.log);
      timers.schedule(conn.id, timestampMs(expires) - Date.now() - requestMs, closeExpired, undefined);
      return conn;
    },
    async close(conn, ctx, next) {
      timers.cancel(conn.id);
      await next.close(conn, ctx);
    },
  };
}
