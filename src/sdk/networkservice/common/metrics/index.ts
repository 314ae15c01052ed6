// SPDX-License-Identifier: Apache-2.0
/**
 * metrics: counts and times every Request and Close that passes, by result code, and keeps the
 * set of live connections; what it sees goes to a {@link CallObserver} (prom-client in
 * `src/observe`, anything else in tests).
 *
 * Chain placement: first in a role's chain (before validate), so that refused Requests are
 * counted too and the time covers the whole chain. A Request that returns a connection makes it
 * live (a refresh of a live one changes nothing); a Close, successful or not, ends it, as the
 * connection is gone for its caller either way. A Request that returns a connection whose id is
 * not the requested one (the path's first id changed) counts as a reselect.
 *
 * Failure behaviour: the observer is called synchronously and its errors are swallowed: a
 * broken metrics backend never fails or slows a Request.
 */
import type { NetworkServiceElement } from "../../../core/chain.js";
import { codeName, NsmError } from "../../../core/errors.js";

export type CallOp = "request" | "close";

export interface CallObserver {
  /** One finished call: its gRPC code name (`OK`, `NotFound`…) and how long it took, in seconds. */
  observeCall(op: CallOp, code: string, seconds: number): void;
  /** The number of live connections changed. */
  liveConnections(count: number): void;
  /** A Request of an existing connection came back under another id. */
  reselected?(): void;
  /** A client's heal succeeded (reported by the heal element's `onHealed`, not by this element). */
  healed?(how: "re-request" | "reselect"): void;
}

/** The gRPC code name of what a call threw (`Unknown` for a plain Error). */
export function resultCode(err: unknown): string {
  if (err instanceof NsmError) return codeName(err.code);
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "number" ? codeName(code) : "Unknown";
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // The observer must never affect the call.
  }
}

/** The metrics element, see the module doc. */
export function metricsServer(observer: CallObserver): NetworkServiceElement {
  const live = new Set<string>();
  const report = () => safely(() => observer.liveConnections(live.size));
  return {
    name: "metrics",
    async request(req, ctx, next) {
      const start = performance.now();
      const askedId = req.connection?.id ?? "";
      try {
        const conn = await next.request(req, ctx);
        safely(() => observer.observeCall("request", "OK", (performance.now() - start) / 1000));
        if (askedId && askedId !== conn.id && live.delete(askedId)) safely(() => observer.reselected?.());
        if (!live.has(conn.id)) {
          live.add(conn.id);
          report();
        }
        return conn;
      } catch (err) {
        safely(() => observer.observeCall("request", resultCode(err), (performance.now() - start) / 1000));
        throw err;
      }
    },
    async close(conn, ctx, next) {
      const start = performance.now();
      let code = "OK";
      try {
        await next.close(conn, ctx);
      } catch (err) {
        code = resultCode(err);
        throw err;
      } finally {
        safely(() => observer.observeCall("close", code, (performance.now() - start) / 1000));
        if (live.delete(conn.id)) report();
      }
    },
  };
}
