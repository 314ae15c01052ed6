// SPDX-License-Identifier: Apache-2.0
/**
 * heal (client): notices that a connection broke and repairs it (upstream semantics).
 *
 * Purpose: after every successful Request the client watches its connection on the next hop's
 * MonitorConnections stream (selector: its own path segment), and optionally checks the data
 * plane with a liveness check (cmd-nsc: ping every 200 ms, 1 s timeout).
 * - Control plane down (the stream breaks, unless this element cancelled it, or shows the
 *   connection DOWN or deleted; upstream ignores Canceled, but grpc-js reports a server that
 *   shut down that way): with a liveness check, check once; alive → re-request on the same path
 *   (keeps the data plane across an nsmgr or forwarder restart); dead → reselect. Without a
 *   liveness check → reselect.
 * - REFRESH_REQUESTED on the stream (upstream's upstreamrefresh, folded in here because it
 *   needs the same stream) → one plain re-request; the new Request watches again.
 * - Data plane down (the liveness check fails) → reselect; also when the check fails between
 *   two attempts of a same-path re-request.
 * Re-requests go through begin's event factory and are retried every `retryIntervalMs` until
 * they succeed, the connection is closed, or the client's lifetime ends. Reselect = close the old
 * path (best effort), forget mechanism and endpoint, request with RESELECT_REQUESTED.
 * Chain placement: client chains, after begin/metadata and before dial (the client chain's
 * `heal` slot), so that it sees the channel dial keeps for the connection.
 * Per-connection state: the watcher (client metadata), stopped by Close.
 * Failure behaviour: never fails a Request.
 */

import {
  type Connection,
  ConnectionEventType,
  create,
  MonitorConnection,
  MonitorScopeSelectorSchema,
  PathSegmentSchema,
  State,
} from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { type CallContext, sleep } from "../../../core/context.js";
import { grpcClient } from "../../../grpc/service.js";
import { type EventFactory, eventFactoryOf } from "../begin/index.js";
import { storedChannelOf } from "../dial/index.js";
import { createMetadataKey, metadataOf } from "../metadata/index.js";

/** Resolves true when the data plane of `conn` works (e.g. every src address pings every dst). */
export type LivenessCheck = (conn: Connection, signal: AbortSignal) => Promise<boolean>;

export interface HealClientOptions {
  /** Stops all healing when aborted (the client's lifetime). */
  signal?: AbortSignal;
  /** Data-plane check; omitted → control-plane healing only (always reselect). */
  livenessCheck?: LivenessCheck;
  /** @default 200 */
  livenessCheckIntervalMs?: number;
  /** @default 1000 */
  livenessCheckTimeoutMs?: number;
  /** Delay between heal attempts. @default 200 */
  retryIntervalMs?: number;
  /** Called after each successful heal (for logs and figures). */
  onHealed?: (conn: Connection, how: "re-request" | "reselect") => void;
}

export const DEFAULT_LIVENESS_CHECK_INTERVAL_MS = 200;
export const DEFAULT_LIVENESS_CHECK_TIMEOUT_MS = 1000;

interface Watcher {
  /** Aborts the current monitor stream and liveness loop (replaced after every Request). */
  current: AbortController;
  healing: boolean;
  closed: boolean;
  /** Closed by its own reselect: a new watcher takes over once the new path is up. */
  replaced: boolean;
  conn: Connection;
}

const watcherKey = createMetadataKey<Watcher>("heal");

export function healClient(options: HealClientOptions = {}): NetworkServiceElement {
  const retryMs = options.retryIntervalMs ?? 200;
  const intervalMs = options.livenessCheckIntervalMs ?? DEFAULT_LIVENESS_CHECK_INTERVAL_MS;
  const timeoutMs = options.livenessCheckTimeoutMs ?? DEFAULT_LIVENESS_CHECK_TIMEOUT_MS;
  const watchers = new Set<Watcher>();
  options.signal?.addEventListener("abort", () => {
    for (const w of watchers) stop(w);
    watchers.clear();
  });

  function stop(w: Watcher): void {
    w.closed = true;
    w.current.abort();
  }

  async function alive(conn: Connection): Promise<boolean> {
    if (!options.livenessCheck) return false;
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      return await options.livenessCheck(conn, signal);
    } catch {
      return false;
    }
  }

  async function heal(w: Watcher, factory: EventFactory, reason: "control-plane" | "data-plane", ctx: CallContext) {
    if (w.healing || w.closed) return;
    w.healing = true;
    w.current.abort();
    try {
      let reselect = reason === "data-plane" || !(await alive(w.conn));
      let checked = Date.now();
      ctx.log.warn({ connId: w.conn.id, reason, reselect }, "connection broke: healing");
      for (let attempt = 1; !w.closed && !options.signal?.aborted; attempt++) {
        try {
          // The data plane may die while the same path is retried (an endpoint pod going away
          // after its process): then reselect. Checked at the liveness interval, as while the
          // connection is up (the liveness loop stops while healing).
          if (!reselect && options.livenessCheck && Date.now() - checked >= intervalMs) {
            checked = Date.now();
            if (!(await alive(w.conn))) {
              reselect = true;
              ctx.log.warn({ connId: w.conn.id, attempt }, "the data plane died while healing: reselecting");
            }
          }
          // A failed reselect leaves the old endpoint in the stored request: every attempt
          // reselects until one gets a new path.
          const conn = await factory.request({ reselect });
          options.onHealed?.(conn, reselect ? "reselect" : "re-request");
          ctx.log.info(
            { connId: conn.id, attempt, reselect, endpoint: conn.networkServiceEndpointName },
            "connection healed",
          );
          return;
        } catch (err) {
          if (factory.state !== "established") return;
          ctx.log.debug({ connId: w.conn.id, attempt, err: String(err) }, "heal attempt failed");
          await sleep(retryMs, options.signal).catch(() => {});
        }
      }
    } finally {
      w.healing = false;
      if (w.replaced) watchers.delete(w);
    }
  }

  function watch(w: Watcher, factory: EventFactory, ctx: CallContext): void {
    const channel = storedChannelOf(ctx);
    const own = w.conn.path?.pathSegments[w.conn.path.index];
    if (!channel || !own) return;
    const ac = new AbortController();
    w.current = ac;
    const streamCtx = ctx.detached().withCancel({ signal: ac.signal });
    const selector = create(MonitorScopeSelectorSchema, {
      pathSegments: [create(PathSegmentSchema, { id: own.id, name: own.name })],
    });
    void (async () => {
      try {
        for await (const event of grpcClient(MonitorConnection, channel).monitorConnections(selector, streamCtx)) {
          if (event.type === ConnectionEventType.INITIAL_STATE_TRANSFER) continue;
          const mine = Object.values(event.connections).find(
            (c) => c.path?.pathSegments[0]?.id === w.conn.path?.pathSegments[0]?.id,
          );
          if (!mine) continue;
          if (event.type === ConnectionEventType.DELETE || mine.state === State.DOWN) {
            void heal(w, factory, "control-plane", ctx);
            return;
          }
          if (mine.state === State.REFRESH_REQUESTED && !w.healing) {
            // Upstream's upstreamrefresh: the endpoint (or a hop) wants the client to come back.
            ctx.log.info({ connId: w.conn.id }, "refresh requested by the path: re-requesting");
            factory.request().catch((err: unknown) => {
              // The watch ended with this event: heal (with retries) takes over.
              ctx.log.warn({ connId: w.conn.id, err: String(err) }, "requested refresh failed: healing");
              void heal(w, factory, "control-plane", ctx);
            });
            return;
          }
        }
        if (!ac.signal.aborted) void heal(w, factory, "control-plane", ctx);
      } catch {
        // Only our own cancel ends the watch quietly: grpc-js also reports a server that shut
        // down (SIGTERM: its streams are cancelled) as Canceled.
        if (ac.signal.aborted) return;
        void heal(w, factory, "control-plane", ctx);
      }
    })();
    if (options.livenessCheck) {
      void (async () => {
        while (!ac.signal.aborted) {
          try {
            await sleep(intervalMs, ac.signal);
          } catch {
            return;
          }
          if (!(await alive(w.conn)) && !ac.signal.aborted) {
            void heal(w, factory, "data-plane", ctx);
            return;
          }
        }
      })();
    }
  }

  return {
    name: "heal",
    requires: ["metadataClient"],
    async request(req, ctx, next) {
      const md = metadataOf(ctx, true);
      const conn = await next.request(req, ctx);
      let w = md.load(watcherKey);
      if (!w) {
        w = { current: new AbortController(), healing: false, closed: false, replaced: false, conn };
        md.store(watcherKey, w);
        watchers.add(w);
      }
      w.current.abort();
      w.conn = conn;
      if (!options.signal?.aborted) watch(w, eventFactoryOf(ctx), ctx);
      return conn;
    },
    async close(conn, ctx, next) {
      const w = metadataOf(ctx, true).loadAndDelete(watcherKey);
      if (w?.healing) {
        // Our own reselect closes the old path: keep healing.
        w.current.abort();
        w.replaced = true;
      } else if (w) {
        stop(w);
        watchers.delete(w);
      }
      await next.close(conn, ctx);
    },
  };
}
