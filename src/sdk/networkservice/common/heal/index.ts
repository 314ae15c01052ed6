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
 * With `reselect: false` (a connection to one named endpoint, e.g. a vL3 peer) a broken connection
 * gets one re-request on the same path; if that fails, heal closes it and calls `onGaveUp`.
 * Chain placement: client chains, after begin/metadata and before dial (the client chain's
 * `heal` slot), so that it sees the channel dial keeps for the connection.
 * Per-connection state: the watcher (client metadata), stopped by Close.
 * Failure behaviour: never fails a Request.
 */

import {
  type Connection,
  type ConnectionEvent,
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
  /**
   * False: never reselect; a broken connection gets one same-path re-request, and if that
   * fails it is closed and {@link HealClientOptions.onGaveUp} is called. @default true
   */
  reselect?: boolean;
  /** Called after heal closed a connection it could not repair (only with `reselect: false`). */
  onGaveUp?: (conn: Connection) => void;
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

type HealReason = "control-plane" | "data-plane";

/** Where a heal stands between attempts: whether to reselect, and when the data plane was last checked. */
interface HealProgress {
  reselect: boolean;
  checkedAt: number;
}

/** The healing of all connections of one client: watches, liveness loops and heal attempts. */
class Healer {
  readonly watchers = new Set<Watcher>();
  readonly #options: HealClientOptions;
  readonly #retryMs: number;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;

  constructor(options: HealClientOptions) {
    this.#options = options;
    this.#retryMs = options.retryIntervalMs ?? 200;
    this.#intervalMs = options.livenessCheckIntervalMs ?? DEFAULT_LIVENESS_CHECK_INTERVAL_MS;
    this.#timeoutMs = options.livenessCheckTimeoutMs ?? DEFAULT_LIVENESS_CHECK_TIMEOUT_MS;
    options.signal?.addEventListener("abort", () => {
      for (const w of this.watchers) this.stop(w);
      this.watchers.clear();
    });
  }

  stop(w: Watcher): void {
    w.closed = true;
    w.current.abort();
  }

  async alive(conn: Connection): Promise<boolean> {
    if (!this.#options.livenessCheck) return false;
    const signal = AbortSignal.timeout(this.#timeoutMs);
    try {
      return await this.#options.livenessCheck(conn, signal);
    } catch {
      return false;
    }
  }

  async heal(w: Watcher, factory: EventFactory, reason: HealReason, ctx: CallContext): Promise<void> {
    if (w.healing || w.closed) return;
    w.healing = true;
    w.current.abort();
    try {
      await this.#healUntilDone(w, factory, reason, ctx);
    } finally {
      w.healing = false;
      if (w.replaced) this.watchers.delete(w);
    }
  }

  /** Re-requests (same path or reselect) every retry interval until one succeeds or the connection ends. */
  async #healUntilDone(w: Watcher, factory: EventFactory, reason: HealReason, ctx: CallContext): Promise<void> {
    const progress: HealProgress = {
      reselect: reason === "data-plane" || !(await this.alive(w.conn)),
      checkedAt: Date.now(),
    };
    ctx.log.warn({ connId: w.conn.id, reason, reselect: progress.reselect }, "connection broke: healing");
    for (let attempt = 1; !w.closed && !this.#options.signal?.aborted; attempt++) {
      try {
        await this.#recheckDataPlane(w, progress, attempt, ctx);
        // A failed reselect leaves the old endpoint in the stored request: every attempt
        // reselects until one gets a new path.
        const reselect = progress.reselect && this.#options.reselect !== false;
        const conn = await factory.request({ reselect });
        this.#options.onHealed?.(conn, reselect ? "reselect" : "re-request");
        ctx.log.info(
          { connId: conn.id, attempt, reselect, endpoint: conn.networkServiceEndpointName },
          "connection healed",
        );
        return;
      } catch (err) {
        if (factory.state !== "established") return;
        ctx.log.debug({ connId: w.conn.id, attempt, err: String(err) }, "heal attempt failed");
        if (this.#options.reselect === false) return await this.#giveUp(w, factory, ctx);
        await sleep(this.#retryMs, this.#options.signal).catch(() => {});
      }
    }
  }

  /** Closes a connection that cannot be repaired without a reselect, and says so. */
  async #giveUp(w: Watcher, factory: EventFactory, ctx: CallContext): Promise<void> {
    w.closed = true;
    ctx.log.warn({ connId: w.conn.id, endpoint: w.conn.networkServiceEndpointName }, "connection lost: closing it");
    await factory.close().catch((err: unknown) => {
      ctx.log.warn({ connId: w.conn.id, err: String(err) }, "could not close the lost connection");
    });
    this.#options.onGaveUp?.(w.conn);
  }

  /**
   * The data plane may die while the same path is retried (an endpoint pod going away after its
   * process): then reselect. Checked at the liveness interval, as while the connection is up (the
   * liveness loop stops while healing).
   */
  async #recheckDataPlane(w: Watcher, progress: HealProgress, attempt: number, ctx: CallContext): Promise<void> {
    if (progress.reselect || !this.#options.livenessCheck || Date.now() - progress.checkedAt < this.#intervalMs) return;
    progress.checkedAt = Date.now();
    if (!(await this.alive(w.conn))) {
      progress.reselect = true;
      ctx.log.warn({ connId: w.conn.id, attempt }, "the data plane died while healing: reselecting");
    }
  }

  watch(w: Watcher, factory: EventFactory, ctx: CallContext): void {
    const channel = storedChannelOf(ctx);
    const own = w.conn.path?.pathSegments[w.conn.path.index];
    if (!channel || !own) return;
    const ac = new AbortController();
    w.current = ac;
    const streamCtx = ctx.detached().withCancel({ signal: ac.signal });
    const selector = create(MonitorScopeSelectorSchema, {
      pathSegments: [create(PathSegmentSchema, { id: own.id, name: own.name })],
    });
    const openStream = () => grpcClient(MonitorConnection, channel).monitorConnections(selector, streamCtx);
    void this.#watchStream(openStream, ac.signal, w, factory, ctx);
    if (this.#options.livenessCheck) void this.#watchLiveness(ac.signal, w, factory, ctx);
  }

  async #watchStream(
    openStream: () => AsyncIterable<ConnectionEvent>,
    signal: AbortSignal,
    w: Watcher,
    factory: EventFactory,
    ctx: CallContext,
  ): Promise<void> {
    try {
      for await (const event of openStream()) {
        if (this.#onEvent(event, w, factory, ctx)) return;
      }
      if (!signal.aborted) void this.heal(w, factory, "control-plane", ctx);
    } catch {
      // Only our own cancel ends the watch quietly: grpc-js also reports a server that shut
      // down (SIGTERM: its streams are cancelled) as Canceled.
      if (signal.aborted) return;
      void this.heal(w, factory, "control-plane", ctx);
    }
  }

  /** Reacts to one monitor event; true when the watch ends with it. */
  #onEvent(event: ConnectionEvent, w: Watcher, factory: EventFactory, ctx: CallContext): boolean {
    if (event.type === ConnectionEventType.INITIAL_STATE_TRANSFER) return false;
    const mine = Object.values(event.connections).find(
      (c) => c.path?.pathSegments[0]?.id === w.conn.path?.pathSegments[0]?.id,
    );
    if (!mine) return false;
    if (event.type === ConnectionEventType.DELETE || mine.state === State.DOWN) {
      void this.heal(w, factory, "control-plane", ctx);
      return true;
    }
    if (mine.state === State.REFRESH_REQUESTED && !w.healing) {
      // Upstream's upstreamrefresh: the endpoint (or a hop) wants the client to come back.
      ctx.log.info({ connId: w.conn.id }, "refresh requested by the path: re-requesting");
      factory.request().catch((err: unknown) => {
        // The watch ended with this event: heal (with retries) takes over.
        ctx.log.warn({ connId: w.conn.id, err: String(err) }, "requested refresh failed: healing");
        void this.heal(w, factory, "control-plane", ctx);
      });
      return true;
    }
    return false;
  }

  async #watchLiveness(signal: AbortSignal, w: Watcher, factory: EventFactory, ctx: CallContext): Promise<void> {
    while (!signal.aborted) {
      try {
        await sleep(this.#intervalMs, signal);
      } catch {
        return;
      }
      if (!(await this.alive(w.conn)) && !signal.aborted) {
        void this.heal(w, factory, "data-plane", ctx);
        return;
      }
    }
  }
}

export function healClient(options: HealClientOptions = {}): NetworkServiceElement {
  const healer = new Healer(options);
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
        healer.watchers.add(w);
      }
      w.current.abort();
      w.conn = conn;
      if (!options.signal?.aborted) healer.watch(w, eventFactoryOf(ctx), ctx);
      return conn;
    },
    async close(conn, ctx, next) {
      const w = metadataOf(ctx, true).loadAndDelete(watcherKey);
      if (w?.healing) {
        // Our own reselect closes the old path: keep healing.
        w.current.abort();
        w.replaced = true;
      } else if (w) {
        healer.stop(w);
        healer.watchers.delete(w);
      }
      await next.close(conn, ctx);
    },
  };
}
