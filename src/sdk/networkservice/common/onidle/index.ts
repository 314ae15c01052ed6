// SPDX-License-Identifier: Apache-2.0
/**
 * onidle: tells its owner when an endpoint has had no connection for a while (upstream `onidle`).
 *
 * Purpose: an endpoint started on demand (scale from zero, `NSM_IDLE_TIMEOUT`) stops itself when
 * nobody uses it. A timer of `timeoutMs` starts when the element is made and again whenever the
 * last connection closes; a new connection stops it. When it fires with no connection, `onIdle`
 * is called once, and every later Request fails with Unavailable ("endpoint expired"), so a
 * client does not get a connection from an endpoint that is going away.
 * Chain placement: endpoint chains, in the `additional` slot, before the elements that build the
 * connection (IPAM, mechanisms). A refresh of a known connection passes without touching the
 * timer; a failed Request of a new connection forgets it (and may start the timer again).
 * Per-connection state: the set of active connection ids.
 * Options: {@link OnIdleOptions}; `timeoutMs` 0 makes a pass-through element (as upstream).
 * Failure behaviour: Unavailable after the idle notification; otherwise none of its own.
 */
import type { NetworkServiceElement } from "../../../core/chain.js";
import { passThrough } from "../../../core/chain.js";
import { unavailable } from "../../../core/errors.js";
import { requestConnection } from "../../../core/request.js";

/** Options of {@link onIdleServer}. */
export interface OnIdleOptions {
  /** How long without connections counts as idle (ms); 0 turns the element off. */
  readonly timeoutMs: number;
  /** Called once, when the endpoint has been idle for `timeoutMs`. */
  readonly onIdle: () => void;
  /** Stops watching (no notification after it aborts). @default never */
  readonly signal?: AbortSignal;
}

/** Idle detection for an endpoint (see the module doc). */
export function onIdleServer(options: Readonly<OnIdleOptions>): NetworkServiceElement {
  const { timeoutMs, onIdle, signal } = options;
  if (timeoutMs <= 0) return passThrough("onidle");
  const active = new Set<string>();
  let fired = false;
  let timer: NodeJS.Timeout | undefined;
  const fire = () => {
    timer = undefined;
    if (fired || active.size > 0 || signal?.aborted) return;
    fired = true;
    onIdle();
  };
  const arm = () => {
    clearTimeout(timer);
    if (!signal?.aborted) timer = setTimeout(fire, timeoutMs);
  };
  const forget = (id: string) => {
    if (active.delete(id) && active.size === 0) arm();
  };
  signal?.addEventListener("abort", () => clearTimeout(timer), { once: true });
  arm();
  return {
    name: "onidle",
    async request(req, ctx, next) {
      if (fired) throw unavailable("endpoint expired: it has been idle and is stopping", { reason: "idle" });
      const { id } = requestConnection(req);
      const refresh = active.has(id);
      if (!refresh) {
        active.add(id);
        clearTimeout(timer);
      }
      try {
        return await next.request(req, ctx);
      } catch (err) {
        if (!refresh) forget(id);
        throw err;
      }
    },
    async close(conn, ctx, next) {
      forget(conn.id);
      return next.close(conn, ctx);
    },
  };
}
